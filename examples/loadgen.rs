//! A small HTTP load generator for `benches/scale.py` (not part of the server).
//!
//! ```text
//! loadgen annotate URL PID SECONDS TOKEN...
//!     one annotator per token, each looping queue/next (n = 1) → label until
//!     SECONDS pass or the queue is empty; the oracle label is the part of the
//!     item's external_id after its last "__". `next_by_second` has the
//!     queue/next latencies of each second of the run.
//! loadgen predict URL PID TOKEN CONCURRENCY SECONDS BODIES [QUERY]
//!     CONCURRENCY workers POST …/predict[QUERY] with the request bodies of
//!     BODIES (in turn) until SECONDS pass: a .jsonl file, one JSON body a
//!     line, or a directory of .npy files, each sent as
//!     `Content-Type: application/x-npy` with `Accept: application/x-npy`.
//!     QUERY: e.g. `?output=probabilities`.
//! loadgen predict-raw URL PID TOKEN CONCURRENCY SECONDS BODIES [QUERY]
//!     the same requests from a minimal HTTP/1.1 client, as wrk sends them:
//!     one blocking thread a connection, each request's bytes made once
//!     and written with one call, the answer read by its Content-Length
//!     into a reused buffer. It spends far less of the shared cores than
//!     reqwest on 5 MB bodies, so more of them measure the server.
//! ```
//! Prints one JSON object: counts, rates and latency percentiles (ms).
//! Runs on one thread (predict-raw: one blocking thread a connection) so that
//! the server under test keeps the other core.
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentiles(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    json!({
        "count": v.len(),
        "mean_ms": v.iter().sum::<f64>() / v.len() as f64,
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn annotator(
    client: reqwest::Client,
    base: Arc<String>,
    token: String,
    start: Instant,
    deadline: Instant,
) -> anyhow::Result<(Vec<(f64, f64)>, Vec<f64>, u64)> {
    let (mut next_ms, mut label_ms, mut errors) = (Vec::new(), Vec::new(), 0u64);
    while Instant::now() < deadline {
        let t = Instant::now();
        let r = client
            .post(format!("{base}/queue/next"))
            .bearer_auth(&token)
            .json(&json!({"n": 1}))
            .send()
            .await?;
        let ok = r.status().is_success();
        let body: Value = r.json().await?;
        next_ms.push((t.duration_since(start).as_secs_f64(), ms(t.elapsed())));
        if !ok {
            errors += 1;
            continue;
        }
        let Some(entry) = body["items"].as_array().and_then(|a| a.first()) else {
            break;
        };
        let id = entry["item"]["id"].as_i64().unwrap_or_default();
        let ext = entry["item"]["external_id"].as_str().unwrap_or_default();
        let label = ext.rsplit("__").next().unwrap_or_default().to_string();
        let t = Instant::now();
        let r = client
            .post(format!("{base}/items/{id}/labels"))
            .bearer_auth(&token)
            .json(&json!({"label": label, "duration_ms": 1000}))
            .send()
            .await?;
        if !r.status().is_success() {
            errors += 1;
        }
        r.bytes().await?;
        label_ms.push(ms(t.elapsed()));
    }
    Ok((next_ms, label_ms, errors))
}

/// Request bodies of one content type (shared, never copied per request).
struct Bodies {
    content_type: &'static str,
    list: Vec<actix_web::web::Bytes>,
}

impl Bodies {
    fn read(path: &str) -> anyhow::Result<Bodies> {
        let out = if std::path::Path::new(path).is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.retain(|f| f.extension().is_some_and(|e| e == "npy"));
            files.sort();
            Bodies {
                content_type: "application/x-npy",
                list: files
                    .iter()
                    .map(|f| std::fs::read(f).map(Into::into))
                    .collect::<Result<_, _>>()?,
            }
        } else {
            Bodies {
                content_type: "application/json",
                list: std::fs::read_to_string(path)?
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.to_string().into())
                    .collect(),
            }
        };
        anyhow::ensure!(!out.list.is_empty(), "no request bodies in {path}");
        Ok(out)
    }
}

async fn predictor(
    client: reqwest::Client,
    url: Arc<String>,
    token: Arc<String>,
    bodies: Arc<Bodies>,
    start: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let (mut lat, mut errors) = (Vec::new(), 0u64);
    let mut i = start;
    while Instant::now() < deadline {
        let t = Instant::now();
        let r = client
            .post(url.as_str())
            .bearer_auth(token.as_str())
            .header("content-type", bodies.content_type)
            .header("accept", bodies.content_type)
            .body(bodies.list[i % bodies.list.len()].clone())
            .send()
            .await?;
        if !r.status().is_success() {
            errors += 1;
        }
        r.bytes().await?;
        lat.push(ms(t.elapsed()));
        i += 1;
    }
    Ok((lat, errors))
}

/// One connection's loop of [`Bodies`] requests, made by hand: `reqs[i]`
/// is the whole request (head and body) for `bodies.list[i]`.
fn raw_predictor(
    addr: &str,
    reqs: &[Vec<u8>],
    start: usize,
    deadline: Instant,
) -> anyhow::Result<(Vec<f64>, u64)> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_nodelay(true)?;
    let (mut lat, mut errors) = (Vec::new(), 0u64);
    let mut buf = vec![0u8; 1 << 16];
    let mut i = start;
    while Instant::now() < deadline {
        let t = Instant::now();
        conn.write_all(&reqs[i % reqs.len()])?;
        // The head, then as many bytes as it announces.
        let mut have = 0;
        let head_end = loop {
            if have == buf.len() {
                buf.resize(buf.len() * 2, 0);
            }
            let n = conn.read(&mut buf[have..])?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            have += n;
            if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = std::str::from_utf8(&buf[..head_end])?;
        let status: u16 = head.get(9..12).unwrap_or("").parse()?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .ok_or_else(|| anyhow::anyhow!("no Content-Length in {head:?}"))?;
        let mut left = (head_end + len).saturating_sub(have);
        while left > 0 {
            let n = conn.read(&mut buf[..left.min(1 << 16)])?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            left -= n;
        }
        if !(200..300).contains(&status) {
            errors += 1;
        }
        lat.push(ms(t.elapsed()));
        i += 1;
    }
    Ok((lat, errors))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let out = match args.first().map(String::as_str) {
        Some("annotate") if args.len() >= 5 => {
            let base = Arc::new(format!("{}/api/v1/projects/{}", args[1], args[2]));
            let secs: f64 = args[3].parse()?;
            rt.block_on(async {
                let start = Instant::now();
                let deadline = start + Duration::from_secs_f64(secs);
                let tasks: Vec<_> = args[4..]
                    .iter()
                    .map(|tok| {
                        tokio::spawn(annotator(
                            client.clone(),
                            base.clone(),
                            tok.clone(),
                            start,
                            deadline,
                        ))
                    })
                    .collect();
                let (mut next, mut label, mut errors) = (Vec::new(), Vec::new(), 0);
                for t in tasks {
                    let (n, l, e) = t.await??;
                    next.extend(n);
                    label.extend(l);
                    errors += e;
                }
                let wall = start.elapsed().as_secs_f64();
                // queue/next second by second (by when each request began),
                // to line slow ones up with what the server was doing.
                let mut by_second: Vec<Vec<f64>> = vec![Vec::new(); wall.ceil() as usize + 1];
                for &(at, ms) in &next {
                    by_second[at as usize].push(ms);
                }
                let timeline: Vec<Value> = by_second.into_iter().map(percentiles).collect();
                let next: Vec<f64> = next.into_iter().map(|(_, ms)| ms).collect();
                anyhow::Ok(json!({
                    "next_by_second": timeline,
                    "annotators": args.len() - 4,
                    "seconds": wall,
                    "labels_per_s": label.len() as f64 / wall,
                    "errors": errors,
                    "next": percentiles(next),
                    "label": percentiles(label),
                }))
            })?
        }
        Some("predict") if matches!(args.len(), 7 | 8) => {
            let query = args.get(7).map_or("", String::as_str);
            let url = Arc::new(format!(
                "{}/api/v1/projects/{}/predict{query}",
                args[1], args[2]
            ));
            let token = Arc::new(args[3].clone());
            let conc: usize = args[4].parse()?;
            let secs: f64 = args[5].parse()?;
            let bodies = Arc::new(Bodies::read(&args[6])?);
            rt.block_on(async {
                let start = Instant::now();
                let deadline = start + Duration::from_secs_f64(secs);
                let tasks: Vec<_> = (0..conc)
                    .map(|w| {
                        tokio::spawn(predictor(
                            client.clone(),
                            url.clone(),
                            token.clone(),
                            bodies.clone(),
                            w * 7919,
                            deadline,
                        ))
                    })
                    .collect();
                let (mut lat, mut errors) = (Vec::new(), 0);
                for t in tasks {
                    let (l, e) = t.await??;
                    lat.extend(l);
                    errors += e;
                }
                let wall = start.elapsed().as_secs_f64();
                anyhow::Ok(json!({
                    "concurrency": conc,
                    "seconds": wall,
                    "requests_per_s": lat.len() as f64 / wall,
                    "errors": errors,
                    "latency": percentiles(lat),
                }))
            })?
        }
        Some("predict-raw") if matches!(args.len(), 7 | 8) => {
            let query = args.get(7).map_or("", String::as_str);
            let addr = args[1]
                .strip_prefix("http://")
                .ok_or_else(|| anyhow::anyhow!("predict-raw takes an http:// URL"))?
                .trim_end_matches('/')
                .to_string();
            let path = format!("/api/v1/projects/{}/predict{query}", args[2]);
            let conc: usize = args[4].parse()?;
            let secs: f64 = args[5].parse()?;
            let bodies = Bodies::read(&args[6])?;
            let reqs: Arc<Vec<Vec<u8>>> = Arc::new(
                bodies
                    .list
                    .iter()
                    .map(|b| {
                        let mut r = format!(
                            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
                             Content-Type: {ct}\r\nAccept: {ct}\r\nContent-Length: {}\r\n\r\n",
                            args[3],
                            b.len(),
                            ct = bodies.content_type,
                        )
                        .into_bytes();
                        r.extend_from_slice(b);
                        r
                    })
                    .collect(),
            );
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(secs);
            let threads: Vec<_> = (0..conc)
                .map(|w| {
                    let (addr, reqs) = (addr.clone(), reqs.clone());
                    std::thread::spawn(move || raw_predictor(&addr, &reqs, w * 7919, deadline))
                })
                .collect();
            let (mut lat, mut errors) = (Vec::new(), 0);
            for t in threads {
                let (l, e) = t.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
                lat.extend(l);
                errors += e;
            }
            let wall = start.elapsed().as_secs_f64();
            json!({
                "concurrency": conc,
                "client": "raw",
                "seconds": wall,
                "requests_per_s": lat.len() as f64 / wall,
                "errors": errors,
                "latency": percentiles(lat),
            })
        }
        _ => anyhow::bail!(
            "usage: loadgen annotate URL PID SECONDS TOKEN... | \
             loadgen predict[-raw] URL PID TOKEN CONCURRENCY SECONDS BODIES(.jsonl|dir of .npy) [QUERY]"
        ),
    };
    println!("{out}");
    Ok(())
}
