//! Times `learner::train` on a labelled set (the fortunes split of
//! `benches/scale.py`, or numeric rows) for growing labelled-set sizes;
//! prints seconds and test accuracy per size. `benches/text_fit.sh` runs it
//! next to scikit-learn.
//!
//! ```text
//! text_fit DIR [SIZES] [THREADS]
//!     DIR/train.jsonl, DIR/test.jsonl: {"text" and/or "features", "label"} a line;
//!     SIZES: comma-separated, 0 = all (default 1000,2000,5000,0);
//!     THREADS: threads a fit may use (default: the machine's cores)
//! ```
use loupe::learner::{train, Input, TrainParams};
use std::time::Instant;

type Row = (Option<String>, Option<Vec<f64>>);

fn load(path: &str) -> (Vec<Row>, Vec<usize>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let features = v["features"].as_array().map(|a| {
                a.iter()
                    .map(|x| x.as_f64().expect("a number"))
                    .collect::<Vec<f64>>()
            });
            let text = v["text"].as_str().map(str::to_string);
            assert!(text.is_some() || features.is_some(), "text or features");
            (
                (text, features),
                v["label"].as_u64().expect("label") as usize,
            )
        })
        .unzip()
}

fn inputs(v: &[Row]) -> Vec<Input<'_>> {
    v.iter()
        .map(|(t, f)| Input {
            text: t.as_deref(),
            features: f.as_deref(),
        })
        .collect()
}

fn main() {
    // RUST_LOG=loupe::learner=debug shows every solver run.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).map_or("/tmp/fort", String::as_str);
    let sizes: Vec<usize> = args
        .get(2)
        .map_or("1000,2000,5000,0", String::as_str)
        .split(',')
        .map(|s| s.parse().expect("a size"))
        .collect();
    let threads = args.get(3).map(|t| t.parse::<usize>().expect("threads"));
    let params = TrainParams {
        threads: threads.unwrap_or(TrainParams::default().threads),
        ..TrainParams::default()
    };
    let (tx, ty) = load(&format!("{dir}/train.jsonl"));
    let (sx, sy) = load(&format!("{dir}/test.jsonl"));
    let n_classes = ty.iter().chain(&sy).max().map_or(0, |m| m + 1);
    let (ti, si) = (inputs(&tx), inputs(&sx));
    for n in sizes {
        let n = if n == 0 { tx.len() } else { n.min(tx.len()) };
        let t = Instant::now();
        let (m, metrics) = train(&ti[..n], &ty[..n], n_classes, &[], &params).expect("training");
        let secs = t.elapsed().as_secs_f64();
        let p = m.predict_proba(&si).expect("prediction");
        let correct = p
            .rows()
            .into_iter()
            .zip(&sy)
            .filter(|(r, &y)| {
                let best = r
                    .iter()
                    .enumerate()
                    .fold(
                        (0, f64::NEG_INFINITY),
                        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                    );
                best.0 == y
            })
            .count();
        println!(
            "loupe n={n} fit_s={secs:.2} accuracy={:.4} alpha={} T={:.3} converged={} cv_accuracy={:.4}",
            correct as f64 / sy.len() as f64,
            m.alpha(),
            m.temperature(),
            m.converged(),
            metrics.accuracy,
        );
    }
}
