//! Crash safety: the real binary (`loupe serve`) on a SQLite file is killed
//! with SIGKILL mid-work and started again on the same file.
use reqwest::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN: &str = "crash-admin-token-0123456789";

#[path = "support/binary.rs"]
mod binary;

struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(db: &std::path::Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_loupe"));
        cmd.args([
            "serve",
            "--database-url",
            &format!("sqlite://{}", db.display()),
            "--bind",
            "127.0.0.1:0",
        ])
        .env("LOUPE_ADMIN_TOKEN", ADMIN)
        .env("LOUPE_LOG", "info");
        let s = binary::spawn(cmd, None);
        let port = s.port(Duration::from_secs(60));
        Server {
            child: s.child,
            base: format!("http://127.0.0.1:{port}"),
            log: s.log,
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    c: &Client,
    s: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = c.request(method, format!("{s}{path}")).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let st = r.status().as_u16();
    let t = r.text().await.unwrap_or_default();
    (st, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

async fn post(c: &Client, s: &Server, path: &str, token: &str, body: Value) -> (u16, Value) {
    call(c, &s.base, reqwest::Method::POST, path, token, Some(body)).await
}

async fn get(c: &Client, s: &Server, path: &str, token: &str) -> (u16, Value) {
    call(c, &s.base, reqwest::Method::GET, path, token, None).await
}

async fn token(c: &Client, s: &Server, name: &str) -> String {
    let (st, v) = post(
        c,
        s,
        "/api/v1/tokens",
        ADMIN,
        json!({"name": name, "role": "annotator"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["token"].as_str().unwrap().into()
}

fn digits() -> Vec<Value> {
    let path = format!("{}/data/digits.pool.jsonl.gz", env!("CARGO_MANIFEST_DIR"));
    let f = std::fs::File::open(path).unwrap();
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

fn digit_labels() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

async fn import(c: &Client, s: &Server, pid: i64, rows: &[Value]) {
    let r = c
        .post(format!("{}/api/v1/projects/{pid}/items", s.base))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(rows).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// (a) labels acknowledged before a SIGKILL are all there after a restart,
/// and every item agrees with its labels; (d) the dead process's leases
/// expire as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_labeling() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loupe.db");
    let c = Client::new();
    let s = Server::start(&db).await;
    assert!(
        s.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("journal_mode=wal") && l.contains("busy_timeout_ms=10000")),
        "the SQLite settings are logged at start"
    );
    let (st, p) = post(
        &c,
        &s,
        "/api/v1/projects",
        ADMIN,
        json!({"name": "k", "labels": digit_labels(), "lease_seconds": 2, "retrain_cron": null}),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["id"].as_i64().unwrap();
    let pool = digits();
    // Four copies of the pool: enough that the labelers are still busy at
    // the kill.
    let rows: Vec<Value> = (0..4)
        .flat_map(|k| {
            pool.iter().map(move |r| {
                json!({"external_id": format!("{}-{k}", r["external_id"].as_str().unwrap()),
                       "features": r["features"]})
            })
        })
        .collect();
    import(&c, &s, pid, &rows).await;

    let acked = Arc::new(Mutex::new(Vec::<(i64, i64, String)>::new()));
    let base = s.base.clone();
    let mut tasks = vec![];
    for i in 0..6 {
        let t = token(&c, &s, &format!("ann{i}")).await;
        let (c, base, acked) = (c.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let r = c
                    .post(format!("{base}/api/v1/projects/{pid}/queue/next"))
                    .bearer_auth(&t)
                    .json(&json!({"n": 2}))
                    .send()
                    .await;
                let Ok(r) = r else { return };
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                for it in v["items"].as_array().cloned().unwrap_or_default() {
                    let id = it["item"]["id"].as_i64().unwrap();
                    let r = c
                        .post(format!("{base}/api/v1/projects/{pid}/items/{id}/labels"))
                        .bearer_auth(&t)
                        .json(&json!({"label": (id % 10).to_string()}))
                        .send()
                        .await;
                    let Ok(r) = r else { return };
                    if r.status() == 201 {
                        let Ok(v) = r.json::<Value>().await else {
                            return;
                        };
                        acked.lock().unwrap().push((
                            v["id"].as_i64().unwrap(),
                            id,
                            v["label"].as_str().unwrap().into(),
                        ));
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Just before the kill, a holder takes the 5 items of a second project:
    // its leases outlive the process.
    let (st, p2) = post(
        &c,
        &s,
        "/api/v1/projects",
        ADMIN,
        json!({"name": "held", "labels": ["a", "b"], "lease_seconds": 2, "retrain_cron": null}),
    )
    .await;
    assert_eq!(st, 201, "{p2}");
    let held_pid = p2["id"].as_i64().unwrap();
    let five: Vec<Value> = (0..5)
        .map(|i| json!({"external_id": format!("h{i}"), "text": format!("held item {i}")}))
        .collect();
    import(&c, &s, held_pid, &five).await;
    let holder = token(&c, &s, "holder").await;
    let (_, v) = post(
        &c,
        &s,
        &format!("/api/v1/projects/{held_pid}/queue/next"),
        &holder,
        json!({"n": 5}),
    )
    .await;
    let held: Vec<(i64, i64)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"]["id"].as_i64().unwrap(),
                chrono::DateTime::parse_from_rfc3339(i["lease_expires_at"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis(),
            )
        })
        .collect();
    assert_eq!(held.len(), 5);
    s.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 10,
        "only {} labels before the kill",
        acked.len()
    );

    let s = Server::start(&db).await;
    for (label_id, item, label) in &acked {
        let (st, v) = get(
            &c,
            &s,
            &format!("/api/v1/projects/{pid}/items/{item}"),
            ADMIN,
        )
        .await;
        assert_eq!(st, 200);
        let found = v["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == *label_id && l["label"] == label.as_str());
        assert!(found, "acknowledged label {label_id} lost: {v}");
        assert_eq!(v["status"], "labeled");
    }
    let (_, proj) = get(&c, &s, &format!("/api/v1/projects/{pid}"), ADMIN).await;
    assert!(proj["counts"]["labeled"].as_u64().unwrap() >= acked.len() as u64);
    eprintln!(
        "kill during labeling: {} acknowledged labels survived, {} of {} items labelled",
        acked.len(),
        proj["counts"]["labeled"],
        rows.len()
    );

    // The holder's leases outlive the process and then expire.
    let other = token(&c, &s, "other").await;
    let mut back: Vec<i64> = vec![];
    let deadline = Instant::now() + Duration::from_secs(30);
    while back.len() < held.len() && Instant::now() < deadline {
        let (st, v) = post(
            &c,
            &s,
            &format!("/api/v1/projects/{held_pid}/queue/next"),
            &other,
            json!({"n": 50}),
        )
        .await;
        assert_eq!(st, 200);
        for it in v["items"].as_array().unwrap() {
            let id = it["item"]["id"].as_i64().unwrap();
            if let Some((_, exp)) = held.iter().find(|(h, _)| *h == id) {
                let issued =
                    chrono::DateTime::parse_from_rfc3339(it["lease_expires_at"].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis()
                        - 2000;
                assert!(
                    issued > *exp,
                    "item {id} handed out before its lease expired"
                );
                back.push(id);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(back.len(), held.len(), "the dead leases came back");
    s.kill();
}

/// (b) an import killed mid-transaction is absent after a restart, never
/// partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_import() {
    const N: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loupe.db");
    let wal = dir.path().join("loupe.db-wal");
    let c = Client::new();
    let s = Server::start(&db).await;
    let (st, p) = post(
        &c,
        &s,
        "/api/v1/projects",
        ADMIN,
        json!({"name": "big", "labels": ["a", "b"], "retrain_cron": null}),
    )
    .await;
    assert_eq!(st, 201);
    let pid = p["id"].as_i64().unwrap();
    let mut body = Vec::with_capacity(N * 60);
    for i in 0..N {
        body.extend_from_slice(
            format!(
                "{{\"external_id\":\"r{i}\",\"features\":[{}.5,{}]}}\n",
                i % 977,
                i % 13
            )
            .as_bytes(),
        );
    }
    let wal_before = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let url = format!("{}/api/v1/projects/{pid}/items", s.base);
    let req = tokio::spawn({
        let c = c.clone();
        async move {
            c.post(url)
                .bearer_auth(ADMIN)
                .header("Content-Type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    // Kill once the transaction is writing: the WAL grows by megabytes.
    let started = Instant::now();
    loop {
        let now = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if now > wal_before + (2 << 20) || req.is_finished() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "import never wrote"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answered = req.is_finished();
    s.kill();
    let res = req.await.unwrap();
    let s = Server::start(&db).await;
    let (_, proj) = get(&c, &s, &format!("/api/v1/projects/{pid}"), ADMIN).await;
    let n = proj["counts"]["items"].as_u64().unwrap();
    eprintln!(
        "kill during import after {:?}: answered={answered} {res:?}, {n} items after restart",
        started.elapsed()
    );
    if matches!(res, Ok(200)) {
        assert_eq!(n, N as u64, "an acknowledged import is whole");
    } else {
        assert!(n == 0 || n == N as u64, "partial import: {n} items");
    }
    // The project still takes imports.
    import(
        &c,
        &s,
        pid,
        &[json!({"external_id": "after", "features": [1.0, 2.0]})],
    )
    .await;
    s.kill();
}

/// (c) a training killed midway leaves the last complete version active,
/// and it predicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_training() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loupe.db");
    let c = Client::new();
    let s = Server::start(&db).await;
    let (st, p) = post(
        &c,
        &s,
        "/api/v1/projects",
        ADMIN,
        json!({"name": "t", "labels": digit_labels(), "retrain_cron": null}),
    )
    .await;
    assert_eq!(st, 201);
    let pid = p["id"].as_i64().unwrap();
    let pool = digits();
    // v1 on 40 labels, then every item labelled for a long v2.
    let seed: Vec<Value> = pool[..40]
        .iter()
        .map(|r| json!({"external_id": r["external_id"], "features": r["features"], "label": r["label"]}))
        .collect();
    import(&c, &s, pid, &seed).await;
    let (st, v1) = post(
        &c,
        &s,
        &format!("/api/v1/projects/{pid}/train?wait=true"),
        ADMIN,
        json!({}),
    )
    .await;
    assert_eq!(st, 201, "{v1}");
    let rest: Vec<Value> = pool[40..]
        .iter()
        .map(|r| json!({"external_id": r["external_id"], "features": r["features"], "label": r["label"]}))
        .collect();
    import(&c, &s, pid, &rest).await;
    let url = format!("{}/api/v1/projects/{pid}/train?wait=true", s.base);
    let req = tokio::spawn({
        let c = c.clone();
        async move {
            c.post(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let answered = req.is_finished();
    s.kill();
    let res = req.await.unwrap();

    let s = Server::start(&db).await;
    let (st, models) = get(&c, &s, &format!("/api/v1/projects/{pid}/models"), ADMIN).await;
    assert_eq!(st, 200);
    let models = models.as_array().unwrap().clone();
    eprintln!(
        "kill during training: answered={answered} {res:?}, {} versions after restart",
        models.len()
    );
    let active: Vec<&Value> = models.iter().filter(|m| m["active"] == true).collect();
    assert_eq!(active.len(), 1, "{models:?}");
    assert_eq!(
        active[0]["version"], models[0]["version"],
        "the newest is active"
    );
    if matches!(res, Ok(201)) {
        assert_eq!(active[0]["version"], 2);
    }
    let (st, pred) = post(
        &c,
        &s,
        &format!("/api/v1/projects/{pid}/predict"),
        ADMIN,
        json!({"items": [{"features": pool[0]["features"]}]}),
    )
    .await;
    assert_eq!(st, 200, "{pred}");
    assert_eq!(pred["model_version"], active[0]["version"]);
    s.kill();
}
