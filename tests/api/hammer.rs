//! Many annotators at once, for a while: 16 tokens take work (n = 1..4),
//! label, undo, skip (release) and abandon leases (which expire after 2 s)
//! on a real pool, while the scheduler and an admin retrain and an admin
//! corrects labelled items. Every lease and every acknowledged label is
//! recorded, then checked against what the server holds afterwards.
use crate::both_backends;
use crate::common::{dataset, TestApp, ADMIN};
use loupe::db::SqliteSync;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ANNOTATORS: usize = 16;
const RUN: Duration = Duration::from_secs(10);
const LEASE_MS: i64 = 2_000;

/// A lease as the server handed it out, in server milliseconds.
#[derive(Debug, Clone)]
struct Lease {
    item: i64,
    owner: String,
    issued: i64,
    expires: i64,
    /// When the owner sent a label or release for the item: the lease lived
    /// at least until then (or until it expired).
    ended_no_earlier_than: Option<i64>,
}

#[derive(Debug, Clone)]
struct Ack {
    label_id: i64,
    item: i64,
    label: String,
    annotator: String,
}

#[derive(Default)]
struct Log {
    leases: Vec<Lease>,
    acks: Vec<Ack>,
    undone: Vec<i64>,
    /// Unexpected answers: (what, status, body).
    bad: Vec<(String, u16, String)>,
    requests: usize,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(rfc3339: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_millis()
}

impl Log {
    fn expect(&mut self, what: &str, status: u16, body: &Value, allowed: &[u16]) -> bool {
        self.requests += 1;
        if allowed.contains(&status) {
            true
        } else {
            self.bad.push((what.into(), status, body.to_string()));
            false
        }
    }
    fn end_lease(&mut self, item: i64, owner: &str, at: i64) {
        if let Some(l) = self
            .leases
            .iter_mut()
            .rev()
            .find(|l| l.item == item && l.owner == owner)
        {
            l.ended_no_earlier_than.get_or_insert(at);
        }
    }
}

async fn annotator(
    app: Arc<TestApp>,
    pid: i64,
    name: String,
    token: String,
    seed: u64,
    oracle: Arc<HashMap<String, String>>,
    until: Instant,
) -> Log {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = Log::default();
    while Instant::now() < until {
        let n = rng.gen_range(1..=4u64);
        let (s, v) = app
            .post(
                &format!("/api/v1/projects/{pid}/queue/next"),
                &token,
                json!({ "n": n }),
            )
            .await;
        if !log.expect("queue/next", s.as_u16(), &v, &[200]) {
            continue;
        }
        let got = v["items"].as_array().cloned().unwrap_or_default();
        if got.len() as u64 > n {
            log.bad
                .push(("queue/next over n".into(), 200, v.to_string()));
        }
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mut release = vec![];
        for it in &got {
            let id = it["item"]["id"].as_i64().unwrap();
            if it["item"]["status"] != "unlabeled" {
                log.bad
                    .push(("leased a non-queue item".into(), 200, it.to_string()));
            }
            let expires = ms(&it["lease_expires_at"]);
            log.leases.push(Lease {
                item: id,
                owner: name.clone(),
                issued: expires - LEASE_MS,
                expires,
                ended_no_earlier_than: None,
            });
            let r = rng.gen_range(0..100);
            if r < 72 {
                let truth = &oracle[it["item"]["external_id"].as_str().unwrap()];
                log.end_lease(id, &name, now_ms());
                let (s, v) = app
                    .post(
                        &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                        &token,
                        json!({"label": truth, "duration_ms": rng.gen_range(100..5000)}),
                    )
                    .await;
                // 409: the lease ran out and someone else took the item.
                if log.expect("label", s.as_u16(), &v, &[201, 409]) && s == 201 {
                    let label_id = v["id"].as_i64().unwrap();
                    log.acks.push(Ack {
                        label_id,
                        item: id,
                        label: v["label"].as_str().unwrap().into(),
                        annotator: v["annotator"].as_str().unwrap().into(),
                    });
                    if rng.gen_range(0..100) < 12 {
                        let r = app
                            .call(
                                reqwest::Method::DELETE,
                                &format!("/api/v1/projects/{pid}/labels/{label_id}"),
                                Some(&token),
                                None,
                            )
                            .await;
                        let s = r.status().as_u16();
                        let body = Value::String(r.text().await.unwrap_or_default());
                        // 409: an admin's correction has replaced the label
                        // meanwhile (one live label per item).
                        if log.expect("undo", s, &body, &[204, 409]) && s == 204 {
                            log.undone.push(label_id);
                        }
                    }
                }
            } else if r < 86 {
                release.push(id);
            } // else: abandoned, the lease expires.
        }
        if !release.is_empty() {
            let at = now_ms();
            for id in &release {
                log.end_lease(*id, &name, at);
            }
            let r = app
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/projects/{pid}/queue/release"),
                    Some(&token),
                    Some(json!({ "item_ids": release })),
                )
                .await;
            let s = r.status().as_u16();
            let body = Value::String(r.text().await.unwrap_or_default());
            log.expect("release", s, &body, &[204]);
        }
    }
    log
}

/// An admin who asks for a retraining once and corrects labelled items (also
/// ones an annotator is undoing at that moment).
async fn admin(
    app: Arc<TestApp>,
    pid: i64,
    oracle: Arc<HashMap<String, String>>,
    until: Instant,
) -> (Log, usize) {
    let mut rng = StdRng::seed_from_u64(99);
    let mut log = Log::default();
    let mut trains = 0;
    let mut last_train = Instant::now();
    while Instant::now() < until {
        if trains == 0 && last_train.elapsed() > Duration::from_millis(2500) {
            last_train = Instant::now();
            let (s, v) = app
                .post(&format!("/api/v1/projects/{pid}/train"), ADMIN, json!({}))
                .await;
            if log.expect("train", s.as_u16(), &v, &[202, 409]) && s == 202 {
                trains += 1;
            }
        }
        let (s, v) = app
            .get(
                &format!("/api/v1/projects/{pid}/items?status=labeled&limit=20"),
                ADMIN,
            )
            .await;
        if log.expect("items", s.as_u16(), &v, &[200]) {
            let items = v["items"].as_array().cloned().unwrap_or_default();
            if !items.is_empty() {
                let it = &items[rng.gen_range(0..items.len())];
                let id = it["id"].as_i64().unwrap();
                let truth = &oracle[it["external_id"].as_str().unwrap()];
                let (s, v) = app
                    .post(
                        &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                        ADMIN,
                        json!({ "label": truth }),
                    )
                    .await;
                if log.expect("admin label", s.as_u16(), &v, &[201]) {
                    log.acks.push(Ack {
                        label_id: v["id"].as_i64().unwrap(),
                        item: id,
                        label: truth.clone(),
                        annotator: v["annotator"].as_str().unwrap().into(),
                    });
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..250))).await;
    }
    (log, trains)
}

async fn hammer(app: TestApp) {
    let pool = dataset("satellite", "pool");
    let mut labels: Vec<String> = pool
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    labels.sort();
    let oracle: Arc<HashMap<String, String>> = Arc::new(
        pool.iter()
            .map(|r| {
                (
                    r["external_id"].as_str().unwrap().to_string(),
                    r["label"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
    );
    let pid = app
        .project(json!({
            "name": "hammer", "labels": labels, "strategy": "margin",
            "lease_seconds": LEASE_MS / 1000,
            "retrain_cron": "*/3 * * * * *", "min_new_labels": 100,
        }))
        .await;
    let rows: Vec<Value> = pool
        .iter()
        .map(|r| json!({"external_id": r["external_id"], "features": r["features"]}))
        .collect();
    app.import_json(pid, &rows).await;
    let mut tokens = vec![];
    for i in 0..ANNOTATORS {
        let name = format!("ann{i:02}");
        tokens.push((name.clone(), app.token(&name, "annotator").await));
    }
    let app = Arc::new(app);
    let started = Instant::now();
    let until = started + RUN;
    let mut tasks = vec![];
    for (i, (name, token)) in tokens.into_iter().enumerate() {
        tasks.push(tokio::spawn(annotator(
            app.clone(),
            pid,
            name,
            token,
            i as u64 + 1,
            oracle.clone(),
            until,
        )));
    }
    let admin_task = tokio::spawn(admin(app.clone(), pid, oracle.clone(), until));
    let mut log = Log::default();
    for t in tasks {
        let l = t.await.expect("annotator task");
        log.leases.extend(l.leases);
        log.acks.extend(l.acks);
        log.undone.extend(l.undone);
        log.bad.extend(l.bad);
        log.requests += l.requests;
    }
    let (admin_log, trains) = admin_task.await.expect("admin task");
    log.acks.extend(admin_log.acks);
    log.bad.extend(admin_log.bad);
    log.requests += admin_log.requests;
    let elapsed = started.elapsed();
    eprintln!(
        "hammer: {} requests in {:.1} s ({:.0}/s), {} leases, {} labels, {} undone, {} trainings asked",
        log.requests,
        elapsed.as_secs_f64(),
        log.requests as f64 / elapsed.as_secs_f64(),
        log.leases.len(),
        log.acks.len(),
        log.undone.len(),
        trains
    );
    assert!(log.bad.is_empty(), "unexpected answers: {:?}", log.bad);
    assert!(
        log.acks.len() > 100,
        "the run labelled too little to mean much"
    );

    // No item was held by two people at once.
    let mut by_item: BTreeMap<i64, Vec<&Lease>> = BTreeMap::new();
    for l in &log.leases {
        by_item.entry(l.item).or_default().push(l);
    }
    let mut re_leased = 0;
    for leases in by_item.values_mut() {
        leases.sort_by_key(|l| l.issued);
        for (i, a) in leases.iter().enumerate() {
            let alive_until = a.expires.min(a.ended_no_earlier_than.unwrap_or(i64::MAX));
            for b in &leases[i + 1..] {
                if b.owner != a.owner {
                    re_leased += 1;
                    assert!(
                        b.issued >= alive_until,
                        "item {} leased to {} at {} while {}'s lease (from {}) lived until {}",
                        a.item,
                        b.owner,
                        b.issued,
                        a.owner,
                        a.issued,
                        alive_until
                    );
                }
            }
        }
    }
    eprintln!("hammer: {re_leased} later leases of an item to someone else, none overlapping");

    // Every acknowledged label is stored, and nothing else: each item's live
    // label is the newest acknowledged one not undone (a later label
    // replaces an earlier one: one live label per item).
    let mut items = vec![];
    let mut after: Option<i64> = None;
    loop {
        let q = match after {
            Some(a) => format!("/api/v1/projects/{pid}/items?limit=1000&after={a}"),
            None => format!("/api/v1/projects/{pid}/items?limit=1000"),
        };
        let (s, v) = app.get(&q, ADMIN).await;
        assert_eq!(s, 200, "{v}");
        items.extend(v["items"].as_array().unwrap().iter().cloned());
        match v["next"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(items.len(), pool.len());
    let undone: BTreeSet<i64> = log.undone.iter().copied().collect();
    let expected: BTreeMap<i64, &Ack> = log
        .acks
        .iter()
        .filter(|a| !undone.contains(&a.label_id))
        .map(|a| (a.label_id, a))
        .collect();
    let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
    for a in expected.values() {
        let n = newest.entry(a.item).or_insert(a.label_id);
        *n = (*n).max(a.label_id);
    }
    let expected: BTreeMap<i64, &Ack> = expected
        .into_iter()
        .filter(|(id, a)| newest[&a.item] == *id)
        .collect();
    let mut stored: BTreeMap<i64, (i64, String, String)> = BTreeMap::new();
    let mut labelled = BTreeMap::new();
    for it in &items {
        let id = it["id"].as_i64().unwrap();
        let live = it["labels"].as_array().unwrap();
        for l in live {
            stored.insert(
                l["id"].as_i64().unwrap(),
                (
                    id,
                    l["label"].as_str().unwrap().into(),
                    l["annotator"].as_str().unwrap().into(),
                ),
            );
        }
        // labels_per_item = 1: the latest live label is the item's label.
        match live.last() {
            Some(last) => {
                assert_eq!(it["status"], "labeled", "{it}");
                assert_eq!(it["label"], last["label"], "{it}");
                labelled.insert(id, it["label"].as_str().unwrap().to_string());
            }
            None => {
                assert_eq!(it["status"], "unlabeled", "{it}");
                assert_eq!(it["label"], Value::Null, "{it}");
            }
        }
    }
    let lost: Vec<_> = expected
        .keys()
        .filter(|id| !stored.contains_key(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged labels missing: {lost:?}");
    let phantom: Vec<_> = stored
        .keys()
        .filter(|id| !expected.contains_key(id))
        .collect();
    assert!(
        phantom.is_empty(),
        "live labels nobody was told about (or undone ones): {phantom:?}"
    );
    for (id, a) in &expected {
        assert_eq!(stored[id], (a.item, a.label.clone(), a.annotator.clone()));
    }

    // The export has every labelled item once, with its final label.
    let r = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/projects/{pid}/export?format=jsonl"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let mut exported = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let prev = exported.insert(
            v["id"].as_i64().unwrap(),
            v["label"].as_str().unwrap().to_string(),
        );
        assert!(prev.is_none(), "exported twice: {line}");
    }
    assert_eq!(exported, labelled);
    let counts = app.counts(pid).await;
    assert_eq!(counts["labeled"], labelled.len());

    // Trainings ran alongside (one may still be running: a training on
    // thousands of labels takes longer than the run in a debug build).
    let (s, models) = app
        .get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
        .await;
    assert_eq!(s, 200);
    let active = models
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["active"] == true)
        .count();
    assert!(active <= 1, "{models}");
    eprintln!(
        "hammer: {} model versions trained during the run",
        models.as_array().unwrap().len()
    );

    if let Some(path) = app.db_url.strip_prefix("sqlite://") {
        check_sqlite_settings(path).await;
    }
}

/// SQLite: the database file is in WAL mode, and the connection loupe opens
/// has the busy timeout and the synchronous mode asked for in effect.
async fn check_sqlite_settings(path: &str) {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    async fn pragma(db: &sea_orm::DatabaseConnection, name: &str) -> String {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|n| n.to_string()))
            .unwrap()
    }
    let plain = Database::connect(format!("sqlite://{path}")).await.unwrap();
    assert_eq!(pragma(&plain, "journal_mode").await, "wal");
    plain.close().await.ok();
    let ours = loupe::db::connect(&format!("sqlite://{path}"), SqliteSync::Full)
        .await
        .unwrap();
    assert_eq!(pragma(&ours, "busy_timeout").await, "10000");
    assert_eq!(pragma(&ours, "synchronous").await, "2", "FULL");
    ours.close().await.ok();
    let normal = loupe::db::connect(&format!("sqlite://{path}"), SqliteSync::Normal)
        .await
        .unwrap();
    assert_eq!(pragma(&normal, "synchronous").await, "1", "NORMAL");
    assert_eq!(pragma(&normal, "journal_mode").await, "wal");
    normal.close().await.ok();
}

both_backends!(hammer_queue_and_labels, super::hammer);

/// An undo and another person's label on the same item at the same moment:
/// afterwards the item agrees with its live labels (the other label stands).
async fn undo_races_label(app: TestApp) {
    let pid = app
        .project(json!({"name": "race", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"external_id": format!("r{i}"), "features": [i as f64]}))
        .collect();
    app.import_json(pid, &rows).await;
    let ann = app.token("ann", "annotator").await;
    let app = Arc::new(app);
    for round in 0..40 {
        let (_, v) = app
            .post(
                &format!("/api/v1/projects/{pid}/queue/next"),
                &ann,
                json!({}),
            )
            .await;
        let id = v["items"][0]["item"]["id"].as_i64().expect("an item");
        let (s, l) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &ann,
                json!({"label": "a"}),
            )
            .await;
        assert_eq!(s, 201, "{l}");
        let label_id = l["id"].as_i64().unwrap();
        let (a1, a2, t) = (app.clone(), app.clone(), ann.clone());
        let undo = tokio::spawn(async move {
            a1.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/projects/{pid}/labels/{label_id}"),
                Some(&t),
                None,
            )
            .await
            .status()
        });
        let other = tokio::spawn(async move {
            a2.post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                ADMIN,
                json!({"label": "b"}),
            )
            .await
            .0
        });
        // The undo comes first (204), or the other label has replaced the
        // undone one already (409: nothing left to undo).
        let undone = undo.await.unwrap();
        assert!(undone == 204 || undone == 409, "{undone}");
        assert_eq!(other.await.unwrap(), 201);
        let (_, it) = app
            .get(&format!("/api/v1/projects/{pid}/items/{id}"), ADMIN)
            .await;
        assert_eq!(it["labels"].as_array().unwrap().len(), 1, "{it}");
        assert_eq!(it["status"], "labeled", "round {round}: {it}");
        assert_eq!(it["label"], "b", "round {round}: {it}");
    }
}

both_backends!(undo_racing_a_label, super::undo_races_label);
