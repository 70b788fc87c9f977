//! `loupe simulate`: replays labeled historical data through the learner, in
//! process, and writes learning curves — to choose a strategy and thresholds
//! before going live, and to benchmark loupe itself.
use crate::learner::{self, CurvePoint, InitOrder, Input, SimOptions, Strategy, TrainParams};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The pool: JSONL (gzip allowed), one {"text" | "features", "label"} a line.
    #[arg(long)]
    pub pool: PathBuf,
    /// Held-out items scored at each budget; without it a seeded quarter of
    /// the pool is held out.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Strategies, comma-separated: auto, entropy, margin, least_confidence,
    /// random. A suffix `:random` or `:cold-start` sets that strategy's seed
    /// labels (e.g. `entropy:random`, the modAL protocol).
    #[arg(long, default_value = "auto,margin,entropy,random")]
    pub strategies: String,
    /// Labeled counts at which the test set is scored.
    #[arg(long, default_value = "100,200,400,800")]
    pub budgets: String,
    /// Labels between refits.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// Seed labels before the first model.
    #[arg(long, default_value_t = 20)]
    pub init: usize,
    /// How the seed labels are chosen: cold-start (the server's k-means++
    /// order) or random.
    #[arg(long, default_value = "cold-start")]
    pub init_order: String,
    /// Runs per strategy, with seeds `seed`, `seed + 1`, …
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Choose α and the temperature again at every refit, as the server does
    /// (default: when the labels grew by 25 % and at every budget — faster,
    /// nearly the same curves).
    #[arg(long)]
    pub exact: bool,
    /// Precision the auto threshold is calibrated to at each budget.
    #[arg(long, default_value_t = 0.97)]
    pub target: f64,
    /// Order of the pool file before the run: as in the file, sorted by
    /// label (the worst case for a cold start), or shuffled by the seed.
    /// The curves must not depend on it.
    #[arg(long, default_value = "file")]
    pub order: String,
    /// Worker threads (default: the number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Directory for NAME.runs.csv, NAME.summary.csv and NAME.svg.
    #[arg(long, default_value = "simulate-out")]
    pub out: PathBuf,
    /// Name of the outputs (default: the pool's file name up to the first dot).
    #[arg(long)]
    pub name: Option<String>,
}

/// One loaded data set.
struct Data {
    texts: Vec<Option<String>>,
    feats: Vec<Option<Vec<f64>>>,
    labels: Vec<String>,
}

impl Data {
    fn inputs(&self) -> Vec<Input<'_>> {
        self.texts
            .iter()
            .zip(&self.feats)
            .map(|(t, f)| Input {
                text: t.as_deref(),
                features: f.as_deref(),
            })
            .collect()
    }
}

fn read_jsonl(path: &Path) -> anyhow::Result<Data> {
    let f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let r: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut d = Data {
        texts: Vec::new(),
        feats: Vec::new(),
        labels: Vec::new(),
    };
    for (n, line) in BufReader::new(r).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), n + 1);
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
        let label = match &v["label"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(x) => x.to_string(),
            _ => anyhow::bail!("{}: no \"label\"", at()),
        };
        let text = v["text"].as_str().map(str::to_string);
        let feats = match v["features"].as_array() {
            Some(a) => Some(
                a.iter()
                    .map(|x| x.as_f64())
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| anyhow::anyhow!("{}: features must be numbers", at()))?,
            ),
            None => None,
        };
        if text.is_none() && feats.is_none() {
            anyhow::bail!("{}: neither \"text\" nor \"features\"", at());
        }
        d.texts.push(text);
        d.feats.push(feats);
        d.labels.push(label);
    }
    Ok(d)
}

/// A run's settings as parsed from the command line.
struct Plan {
    runs: Vec<(String, Strategy, InitOrder)>,
    budgets: Vec<usize>,
}

fn parse_init(s: &str) -> anyhow::Result<InitOrder> {
    match s {
        "cold-start" | "cold_start" | "kmeans" => Ok(InitOrder::ColdStart),
        "random" => Ok(InitOrder::Random),
        o => anyhow::bail!("init order must be cold-start or random (got {o:?})"),
    }
}

fn plan(a: &SimulateArgs) -> anyhow::Result<Plan> {
    let default_init = parse_init(&a.init_order)?;
    let mut runs = Vec::new();
    for spec in a
        .strategies
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, init) = match spec.split_once(':') {
            Some((n, i)) => (n, parse_init(i)?),
            None => (spec, default_init),
        };
        let s = Strategy::parse(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown strategy {name:?} (auto, entropy, margin, least_confidence, random)"
            )
        })?;
        runs.push((spec.to_string(), s, init));
    }
    if runs.is_empty() {
        anyhow::bail!("--strategies is empty");
    }
    let budgets = a
        .budgets
        .split(',')
        .map(|b| b.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--budgets: {e}"))?;
    if budgets.is_empty() || a.batch == 0 || a.seeds == 0 {
        anyhow::bail!("--budgets, --batch and --seeds must be non-empty / positive");
    }
    Ok(Plan { runs, budgets })
}

/// Entry point of the subcommand.
pub fn run(a: SimulateArgs) -> std::process::ExitCode {
    match run_inner(&a) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loupe simulate: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run_inner(a: &SimulateArgs) -> anyhow::Result<()> {
    let plan = plan(a)?;
    let pool_all = reorder(read_jsonl(&a.pool)?, &a.order, a.seed)?;
    let (pool, test) = match &a.test {
        Some(t) => (pool_all, read_jsonl(t)?),
        None => split(pool_all, a.seed),
    };
    let mut names: Vec<String> = pool.labels.iter().chain(&test.labels).cloned().collect();
    names.sort();
    names.dedup();
    let index = |l: &String| names.binary_search(l).expect("label among names");
    let py: Vec<usize> = pool.labels.iter().map(index).collect();
    let ty: Vec<usize> = test.labels.iter().map(index).collect();
    let (pi, ti) = (pool.inputs(), test.inputs());
    let name = a.name.clone().unwrap_or_else(|| {
        a.pool
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.split('.').next())
            .unwrap_or("simulation")
            .to_string()
    });
    eprintln!(
        "{name}: pool {}, test {}, {} classes; {} strategies × {} seeds",
        pi.len(),
        ti.len(),
        names.len(),
        plan.runs.len(),
        a.seeds
    );
    let jobs: Vec<(usize, u64)> = (0..plan.runs.len())
        .flat_map(|r| (0..a.seeds).map(move |s| (r, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<(usize, u64), Vec<CurvePoint>>> = Mutex::new(BTreeMap::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len());
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(r, s)) = jobs.get(j) else { break };
                let (label, strategy, init_order) = &plan.runs[r];
                let seed = a.seed + s;
                let opts = SimOptions {
                    strategy: *strategy,
                    init: a.init,
                    init_order: *init_order,
                    batch: a.batch,
                    budgets: plan.budgets.clone(),
                    params: TrainParams {
                        seed,
                        ..Default::default()
                    },
                    reselect_growth: if a.exact { 1.0 } else { 1.25 },
                    target_precision: a.target,
                };
                let t = std::time::Instant::now();
                match learner::simulate_run(&pi, &py, &ti, &ty, names.len(), &opts) {
                    Ok(c) => {
                        let last = c.last().map_or(0.0, |p| p.accuracy);
                        eprintln!(
                            "  {label} seed {seed}: {} points, last accuracy {last:.3} ({:.1} s)",
                            c.len(),
                            t.elapsed().as_secs_f64()
                        );
                        results.lock().expect("results").insert((r, s), c);
                    }
                    Err(e) => errors
                        .lock()
                        .expect("errors")
                        .push(format!("{label} seed {seed}: {e}")),
                }
            });
        }
    });
    let errors = errors.into_inner().expect("errors");
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    let results = results.into_inner().expect("results");
    std::fs::create_dir_all(&a.out)?;
    let labels: Vec<String> = plan.runs.iter().map(|r| r.0.clone()).collect();
    let runs_path = a.out.join(format!("{name}.runs.csv"));
    let mut w = std::fs::File::create(&runs_path)?;
    writeln!(
        w,
        "set,strategy,seed,n_labels,accuracy,macro_f1,ece,ece_uncalibrated,temperature,alpha,classes_labeled,kappa_previous,\
         reported_accuracy,reported_low,reported_high,cv_accuracy,uniform_accuracy,n_uniform,\
         auto_threshold,test_coverage,test_precision,best_coverage"
    )?;
    for ((r, s), c) in &results {
        for p in c {
            writeln!(
                w,
                "{name},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.3},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{:.4},{:.4},{:.4}",
                labels[*r],
                a.seed + s,
                p.n_labels,
                p.accuracy,
                p.macro_f1,
                p.ece,
                p.ece_uncalibrated,
                p.temperature,
                p.alpha,
                p.classes_labeled,
                p.kappa_previous,
                p.reported_accuracy,
                p.reported_low,
                p.reported_high,
                p.cv_accuracy,
                p.uniform_accuracy,
                p.n_uniform,
                p.auto_threshold,
                p.test_coverage,
                p.test_precision,
                p.best_coverage
            )?;
        }
    }
    let summary = summarize(&results, plan.runs.len());
    let sum_path = a.out.join(format!("{name}.summary.csv"));
    let mut w = std::fs::File::create(&sum_path)?;
    writeln!(
        w,
        "set,strategy,n_labels,runs,accuracy_mean,accuracy_sd,accuracy_min,accuracy_max,ece_mean,ece_uncalibrated_mean"
    )?;
    for (r, pts) in summary.iter().enumerate() {
        for p in pts {
            writeln!(
                w,
                "{name},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4}",
                labels[r], p.n, p.runs, p.mean, p.sd, p.min, p.max, p.ece, p.ece_raw
            )?;
        }
    }
    let svg_path = a.out.join(format!("{name}.svg"));
    std::fs::write(&svg_path, svg(&name, &labels, &summary))?;
    print_table(&name, &labels, &summary);
    print_honesty(&name, &labels, &results, a.target);
    eprintln!(
        "wrote {}, {}, {}",
        runs_path.display(),
        sum_path.display(),
        svg_path.display()
    );
    Ok(())
}

/// The pool in the order `--order` asks for.
fn reorder(d: Data, order: &str, seed: u64) -> anyhow::Result<Data> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut idx: Vec<usize> = (0..d.labels.len()).collect();
    match order {
        "file" => return Ok(d),
        "sorted" => idx.sort_by(|&i, &j| d.labels[i].cmp(&d.labels[j])),
        "shuffled" => idx.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed)),
        o => anyhow::bail!("--order must be file, sorted or shuffled (got {o:?})"),
    }
    Ok(Data {
        texts: idx.iter().map(|&i| d.texts[i].clone()).collect(),
        feats: idx.iter().map(|&i| d.feats[i].clone()).collect(),
        labels: idx.iter().map(|&i| d.labels[i].clone()).collect(),
    })
}

/// A seeded quarter of the pool held out as the test set.
fn split(d: Data, seed: u64) -> (Data, Data) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..d.labels.len()).collect();
    order.shuffle(&mut rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed));
    let n_test = d.labels.len() / 4;
    let mut is_test = vec![false; d.labels.len()];
    order[..n_test].iter().for_each(|&i| is_test[i] = true);
    let mut pool = Data {
        texts: vec![],
        feats: vec![],
        labels: vec![],
    };
    let mut test = Data {
        texts: vec![],
        feats: vec![],
        labels: vec![],
    };
    for (((t, f), l), &held) in d.texts.into_iter().zip(d.feats).zip(d.labels).zip(&is_test) {
        let part = if held { &mut test } else { &mut pool };
        part.texts.push(t);
        part.feats.push(f);
        part.labels.push(l);
    }
    (pool, test)
}

/// Mean and spread over seeds at one budget.
struct Summary {
    n: usize,
    runs: usize,
    mean: f64,
    sd: f64,
    min: f64,
    max: f64,
    ece: f64,
    ece_raw: f64,
}

fn summarize(
    results: &BTreeMap<(usize, u64), Vec<CurvePoint>>,
    n_runs: usize,
) -> Vec<Vec<Summary>> {
    (0..n_runs)
        .map(|r| {
            let curves: Vec<&Vec<CurvePoint>> = results
                .iter()
                .filter(|((rr, _), _)| *rr == r)
                .map(|(_, c)| c)
                .collect();
            let len = curves.iter().map(|c| c.len()).min().unwrap_or(0);
            (0..len)
                .map(|i| {
                    let acc: Vec<f64> = curves.iter().map(|c| c[i].accuracy).collect();
                    let k = acc.len() as f64;
                    let mean = acc.iter().sum::<f64>() / k;
                    let var =
                        acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (k - 1.0).max(1.0);
                    Summary {
                        n: curves[0][i].n_labels,
                        runs: acc.len(),
                        mean,
                        sd: var.sqrt(),
                        min: acc.iter().copied().fold(f64::INFINITY, f64::min),
                        max: acc.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        ece: curves.iter().map(|c| c[i].ece).sum::<f64>() / k,
                        ece_raw: curves.iter().map(|c| c[i].ece_uncalibrated).sum::<f64>() / k,
                    }
                })
                .collect()
        })
        .collect()
}

fn print_table(name: &str, labels: &[String], summary: &[Vec<Summary>]) {
    let budgets: Vec<usize> = summary
        .iter()
        .max_by_key(|s| s.len())
        .map(|s| s.iter().map(|p| p.n).collect())
        .unwrap_or_default();
    print!("| {name} |");
    for b in &budgets {
        print!(" {b} |");
    }
    println!();
    println!("|---|{}", "---|".repeat(budgets.len()));
    for (l, pts) in labels.iter().zip(summary) {
        print!("| {l} |");
        for p in pts {
            print!(" {:.3} ± {:.3} |", p.mean, p.sd);
        }
        println!();
    }
}

/// What the server would report against the truth, per strategy and
/// budget over the seeds: reported (stratified) and cross-validated accuracy
/// against test accuracy, how often the reported interval covers it, and
/// the calibrated auto threshold's coverage (against the best any threshold
/// reaches on the test labels) and test precision.
fn print_honesty(
    name: &str,
    labels: &[String],
    results: &BTreeMap<(usize, u64), Vec<CurvePoint>>,
    target: f64,
) {
    println!(
        "\n| {name} | labels | test acc | reported | abs err | interval covers | CV acc | uniform labels | coverage / best | auto precision (min) | misses < target / < 0.95 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (r, l) in labels.iter().enumerate() {
        let curves: Vec<&Vec<CurvePoint>> = results
            .iter()
            .filter(|((rr, _), _)| *rr == r)
            .map(|(_, c)| c)
            .collect();
        let len = curves.iter().map(|c| c.len()).min().unwrap_or(0);
        for i in 0..len {
            let pts: Vec<&CurvePoint> = curves.iter().map(|c| &c[i]).collect();
            let k = pts.len() as f64;
            let mean = |f: &dyn Fn(&CurvePoint) -> f64| pts.iter().map(|p| f(p)).sum::<f64>() / k;
            let covers = pts
                .iter()
                .filter(|p| p.reported_low <= p.accuracy && p.accuracy <= p.reported_high)
                .count();
            let auto: Vec<&&CurvePoint> = pts.iter().filter(|p| p.test_coverage > 0.0).collect();
            let min_prec = auto
                .iter()
                .map(|p| p.test_precision)
                .fold(f64::NAN, f64::min);
            let miss_target = auto.iter().filter(|p| p.test_precision < target).count();
            let miss_95 = auto.iter().filter(|p| p.test_precision < 0.95).count();
            println!(
                "| {l} | {} | {:.3} | {:.3} | {:.3} | {}/{} | {:.3} | {:.0} | {:.2} ({:.2}/{:.2}) | {:.3} | {}/{} |",
                pts[0].n_labels,
                mean(&|p| p.accuracy),
                mean(&|p| p.reported_accuracy),
                mean(&|p| (p.reported_accuracy - p.accuracy).abs()),
                covers,
                pts.len(),
                mean(&|p| p.cv_accuracy),
                mean(&|p| p.n_uniform as f64),
                mean(&|p| p.test_coverage) / mean(&|p| p.best_coverage).max(1e-9),
                mean(&|p| p.test_coverage),
                mean(&|p| p.best_coverage),
                min_prec,
                miss_target,
                miss_95,
            );
        }
    }
}

const COLOURS: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e", "#8c564b", "#17becf",
];

/// Mean test accuracy per strategy against labels, with a band from the
/// lowest to the highest seed. Hand-written SVG, no dependency.
fn svg(name: &str, labels: &[String], summary: &[Vec<Summary>]) -> String {
    let (w, h) = (640.0, 420.0);
    let (l, r, t, b) = (60.0, 170.0, 40.0, 50.0);
    let pts = summary.iter().flatten();
    let x_max = pts.clone().map(|p| p.n).max().unwrap_or(1) as f64;
    let y_lo_data = pts.clone().map(|p| p.min).fold(1.0, f64::min);
    let y_lo = ((y_lo_data * 20.0).floor() / 20.0).clamp(0.0, 0.95);
    let y_hi = 1.0;
    let px = |x: f64| l + x / x_max * (w - l - r);
    let py = |y: f64| t + (y_hi - y) / (y_hi - y_lo) * (h - t - b);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{name}: test accuracy (mean; band = min–max over seeds)</text>\n",
        (w - r + l) / 2.0
    );
    // Grid and axes.
    let mut y = y_lo;
    while y <= y_hi + 1e-9 {
        s += &format!(
            "<line x1=\"{l}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{y:.2}</text>\n",
            w - r,
            py(y),
            py(y),
            l - 6.0,
            py(y) + 4.0
        );
        y += 0.05;
    }
    let step = if x_max > 1000.0 { 200.0 } else { 100.0 };
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        s += &format!(
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{t}\" y2=\"{}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x}</text>\n",
            px(x),
            px(x),
            h - b,
            px(x),
            h - b + 16.0
        );
        x += step;
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">labels</text>\n",
        (w - r + l) / 2.0,
        h - 12.0
    );
    s += &format!(
        "<rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n",
        w - l - r,
        h - t - b
    );
    for (i, (name, pts)) in labels.iter().zip(summary).enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        if pts.is_empty() {
            continue;
        }
        let upper: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.n as f64), py(p.max)))
            .collect();
        let lower: Vec<String> = pts
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", px(p.n as f64), py(p.min)))
            .collect();
        s += &format!(
            "<polygon points=\"{} {}\" fill=\"{c}\" fill-opacity=\"0.12\" stroke=\"none\"/>\n",
            upper.join(" "),
            lower.join(" ")
        );
        let line: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.n as f64), py(p.mean)))
            .collect();
        s += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>\n",
            line.join(" ")
        );
        for p in pts {
            s += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>\n",
                px(p.n as f64),
                py(p.mean)
            );
        }
        let ly = t + 10.0 + 20.0 * i as f64;
        s += &format!(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            w - r + 12.0,
            w - r + 34.0,
            w - r + 40.0,
            ly + 4.0,
            xml_escape(name)
        );
    }
    s += "</svg>\n";
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_strategies_with_init_overrides() {
        let a = SimulateArgs {
            pool: "x".into(),
            test: None,
            strategies: "auto, entropy:random".into(),
            budgets: "100,200".into(),
            batch: 10,
            init: 20,
            init_order: "cold-start".into(),
            seeds: 2,
            seed: 0,
            exact: false,
            target: 0.97,
            order: "file".into(),
            threads: None,
            out: "o".into(),
            name: None,
        };
        let p = plan(&a).unwrap();
        assert_eq!(p.budgets, vec![100, 200]);
        assert_eq!(p.runs[0].1, Strategy::Auto);
        assert_eq!(p.runs[0].2, InitOrder::ColdStart);
        assert_eq!(p.runs[1].1, Strategy::Entropy);
        assert_eq!(p.runs[1].2, InitOrder::Random);
        let bad = SimulateArgs {
            strategies: "smart".into(),
            ..a
        };
        assert!(plan(&bad).is_err());
    }
}
