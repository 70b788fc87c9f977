//! Two `loupe serve` processes (the real binary) on one PostgreSQL database:
//! they boot together, never lease one item twice, train a project once
//! between them, serve each other's newest model, follow each other's cron
//! changes, and claim every cron tick once.
use crate::common::{dataset, pg_exec, postgres_url, replace_db, ADMIN};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `loupe serve` child process.
struct Replica {
    name: &'static str,
    base: String,
    client: Client,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts the binary; `ready` waits for its "listening" line.
    fn spawn(name: &'static str, db_url: &str) -> crate::binary::Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_loupe"));
        cmd.arg("serve")
            .env("LOUPE_DATABASE_URL", db_url)
            .env("LOUPE_BIND", "127.0.0.1:0")
            .env("LOUPE_ADMIN_TOKEN", ADMIN)
            .env("LOUPE_LOG", "info,sqlx=warn,sea_orm=warn");
        crate::binary::spawn(cmd, Some(name))
    }

    fn ready(name: &'static str, s: crate::binary::Spawned) -> Replica {
        let port = s.port(Duration::from_secs(90));
        let (child, log) = (s.child, s.log);
        Replica {
            name,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::new(),
            child,
            log,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn patch(&self, path: &str, body: Value) {
        let (s, v) = self.call(Method::PATCH, path, ADMIN, Some(body)).await;
        assert_eq!(s, 200, "PATCH {path} on {}: {v}", self.name);
    }

    /// Sum of a counter's samples whose labels contain every pair given.
    async fn counter(&self, name: &str, labels: &[&str]) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .filter(|l| labels.iter().all(|p| l.contains(p)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn versions(&self, pid: i64) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
            .await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.log.lock().unwrap().join("\n"));
        }
    }
}

/// A fresh database, dropped at the end (after the replicas stopped).
struct FreshDb {
    admin_url: String,
    name: String,
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(pg_exec(
                    &url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
        })
        .join();
    }
}

/// Polls until `f` yields a value, failing after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return (v, start.elapsed());
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Labels items as the data set's oracle would, through a given replica.
async fn label_all(r: &Replica, pid: i64, token: &str, ids: &[(i64, String)]) {
    for (id, label) in ids {
        let (s, v) = r
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                token,
                json!({"label": label}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
}

/// Leases `n` items for `token` on `r`: (id, oracle label).
async fn lease(
    r: &Replica,
    pid: i64,
    token: &str,
    n: usize,
    oracle: &HashMap<String, String>,
) -> Vec<(i64, String)> {
    let (s, v) = r
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            token,
            json!({"n": n}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let ext = it["item"]["external_id"].as_str().unwrap();
            (it["item"]["id"].as_i64().unwrap(), oracle[ext].clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_postgres() {
    let Some(admin_url) = postgres_url() else {
        eprintln!("SKIPPED: two_replicas_share_one_postgres needs LOUPE_TEST_POSTGRES_URL");
        return;
    };
    let name = format!("loupe_test_{}", uuid::Uuid::new_v4().simple());
    pg_exec(&admin_url, &format!("CREATE DATABASE {name}")).await;
    let _db = FreshDb {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let url = replace_db(&admin_url, &name);

    // Both boot at once on the empty database: migrations must not race.
    let (a, b) = (Replica::spawn("A", &url), Replica::spawn("B", &url));
    let a = Arc::new(Replica::ready("A", a));
    let b = Arc::new(Replica::ready("B", b));

    let digits = dataset("digits", "pool");
    let oracle: Arc<HashMap<String, String>> = Arc::new(
        digits
            .iter()
            .map(|r| {
                (
                    r["external_id"].as_str().unwrap().to_string(),
                    r["label"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    );
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let (s, v) = a
        .post(
            "/api/v1/projects",
            ADMIN,
            json!({"name": "digits", "labels": labels, "retrain_cron": null, "min_new_labels": 20}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let pid = v["id"].as_i64().unwrap();
    let rows: Vec<Value> = digits
        .iter()
        .map(|r| json!({"external_id": r["external_id"], "features": r["features"]}))
        .collect();
    let (s, v) = b
        .post(&format!("/api/v1/projects/{pid}/items"), ADMIN, json!(rows))
        .await;
    assert_eq!(s, 200, "{v}");

    // 1. Leases: six annotators, three on each replica, all at once.
    let mut tokens = vec![];
    for i in 0..6 {
        let (s, v) = a
            .post(
                "/api/v1/tokens",
                ADMIN,
                json!({"name": format!("ann{i}"), "role": "annotator"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    let mut tasks = vec![];
    for (i, t) in tokens.iter().enumerate() {
        let r = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (t, oracle) = (t.clone(), oracle.clone());
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            for _ in 0..4 {
                got.extend(lease(&r, pid, &t, 10, &oracle).await);
            }
            (r, t, got)
        }));
    }
    let mut leased = vec![];
    for t in tasks {
        leased.push(t.await.unwrap());
    }
    let all: Vec<i64> = leased
        .iter()
        .flat_map(|(_, _, g)| g.iter().map(|x| x.0))
        .collect();
    assert_eq!(
        all.len(),
        6 * 4 * 10,
        "every lease request was served in full"
    );
    assert_eq!(
        all.iter().collect::<HashSet<_>>().len(),
        all.len(),
        "an item was leased to two annotators across replicas"
    );
    for (r, t, got) in &leased {
        label_all(r, pid, t, got).await;
    }
    let (s, v) = b
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            ADMIN,
            json!({"items": [{"features": digits[0]["features"]}]}),
        )
        .await;
    assert_eq!((s.as_u16(), &v["error"]["code"]), (409, &json!("no_model")));

    // 2. One training for two concurrent requests, one on each replica.
    let train = format!("/api/v1/projects/{pid}/train?wait=true");
    let started = Instant::now();
    let ((sa, va), (sb, vb)) = tokio::join!(
        a.post(&train, ADMIN, json!({})),
        b.post(&train, ADMIN, json!({}))
    );
    let both = started.elapsed();
    assert_eq!((sa.as_u16(), sb.as_u16()), (201, 201), "{va} {vb}");
    assert_eq!(va["version"], 1, "{va}");
    assert_eq!(
        vb["version"], 1,
        "the second request joins the running training: {vb}"
    );
    assert_eq!(a.versions(pid).await.len(), 1);
    let api_trainings = a
        .counter("loupe_trainings_total", &["trigger=\"api\""])
        .await
        + b.counter("loupe_trainings_total", &["trigger=\"api\""])
            .await;
    assert_eq!(api_trainings, 1.0, "exactly one replica trained");
    eprintln!("concurrent train requests answered in {both:?}");

    // 3. A model trained on A is served by B within seconds. B caches v1 first.
    let probe = json!({"items": [{"features": digits[0]["features"]}]});
    let predict = format!("/api/v1/projects/{pid}/predict");
    eventually("B serves version 1", Duration::from_secs(20), || async {
        let (s, v) = b.post(&predict, ADMIN, probe.clone()).await;
        (s == 200 && v["model_version"] == 1).then_some(())
    })
    .await;
    let more = lease(&a, pid, &tokens[0], 30, &oracle).await;
    label_all(&a, pid, &tokens[0], &more).await;
    let (s, v) = a.post(&train, ADMIN, json!({})).await;
    assert_eq!((s.as_u16(), &v["version"]), (201, &json!(2)), "{v}");
    let (_, seen_after) = eventually("B serves version 2", Duration::from_secs(20), || async {
        let (s, v) = b.post(&predict, ADMIN, probe.clone()).await;
        assert_eq!(s, 200, "{v}");
        (v["model_version"] == 2).then_some(())
    })
    .await;
    eprintln!("B served A's new model {seen_after:?} after it was created");

    // 4. The scheduler: a cron set through A runs on both replicas, each tick
    // is claimed once, and the due training happens once.
    let more = lease(&b, pid, &tokens[1], 25, &oracle).await;
    label_all(&b, pid, &tokens[1], &more).await;
    let ticks = |r: Arc<Replica>| async move {
        (
            r.counter("loupe_schedule_ticks_total", &["outcome=\"claimed\""])
                .await,
            r.counter("loupe_schedule_ticks_total", &["outcome=\"other_replica\""])
                .await,
        )
    };
    a.patch(
        &format!("/api/v1/projects/{pid}"),
        json!({"retrain_cron": "*/1 * * * * *"}),
    )
    .await;
    eventually(
        "both replicas fire the cron set through A",
        Duration::from_secs(30),
        || {
            let (a, b) = (a.clone(), b.clone());
            async move {
                let (ca, oa) = ticks(a).await;
                let (cb, ob) = ticks(b).await;
                (ca + oa > 0.0 && cb + ob > 0.0).then_some(())
            }
        },
    )
    .await;
    eventually(
        "the scheduled training",
        Duration::from_secs(30),
        || async { (a.versions(pid).await.len() == 3).then_some(()) },
    )
    .await;
    let ((ca0, oa0), (cb0, ob0)) = (ticks(a.clone()).await, ticks(b.clone()).await);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let ((ca1, oa1), (cb1, ob1)) = (ticks(a.clone()).await, ticks(b.clone()).await);
    let window = t0.elapsed().as_secs_f64();
    let claimed = (ca1 - ca0) + (cb1 - cb0);
    let lost = (oa1 - oa0) + (ob1 - ob0);
    eprintln!(
        "in {window:.1} s: {claimed} ticks claimed, {lost} found claimed by the other replica"
    );
    assert!(
        claimed <= window.ceil() + 2.0,
        "{claimed} claims in {window:.1} s of a once-a-second cron: a tick ran twice"
    );
    assert!(
        lost >= 1.0,
        "both replicas fire each tick; one of them must lose it"
    );
    assert_eq!(
        a.versions(pid).await.len(),
        3,
        "no new labels: no new version"
    );
    let scheduled = a
        .counter(
            "loupe_trainings_total",
            &["outcome=\"ok\"", "trigger=\"schedule\""],
        )
        .await
        + b.counter(
            "loupe_trainings_total",
            &["outcome=\"ok\"", "trigger=\"schedule\""],
        )
        .await;
    assert_eq!(scheduled, 1.0, "the due training ran once across replicas");

    // 5. Switching the cron off through B stops the job on A too.
    b.patch(
        &format!("/api/v1/projects/{pid}"),
        json!({"retrain_cron": null}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (before_a, before_b) = (ticks(a.clone()).await, ticks(b.clone()).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        ticks(a.clone()).await,
        before_a,
        "A still runs a job B removed"
    );
    assert_eq!(ticks(b.clone()).await, before_b);
}

/// In one process too: train requests that arrive together train once.
async fn concurrent_trains_join(app: crate::common::TestApp) {
    let digits = dataset("digits", "pool");
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let pid = app
        .project(json!({"name": "d", "labels": labels, "retrain_cron": null}))
        .await;
    // Every fourth item comes labelled: enough for a training of some length.
    let rows: Vec<Value> = digits
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            if i % 4 != 0 {
                r.as_object_mut().unwrap().remove("label");
            }
            r
        })
        .collect();
    app.import_json(pid, &rows).await;
    let app = Arc::new(app);
    let train = format!("/api/v1/projects/{pid}/train?wait=true");
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let (app, train) = (app.clone(), train.clone());
            tokio::spawn(async move { app.post(&train, ADMIN, json!({})).await })
        })
        .collect();
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!((s.as_u16(), &v["version"]), (201, &json!(1)), "{v}");
    }
    let (_, versions) = app
        .get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");
    // A request after the training finished trains anew, as before.
    let (s, v) = app.post(&train, ADMIN, json!({})).await;
    assert_eq!((s.as_u16(), &v["version"]), (201, &json!(2)), "{v}");
}

crate::both_backends!(
    concurrent_train_requests_train_once,
    super::concurrent_trains_join
);
