//! Leases: nobody gets an item somebody else holds, also under concurrency.
use crate::both_backends;
use crate::common::{dataset, TestApp, ADMIN};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

async fn concurrent_leases(app: TestApp) {
    let pid = app
        .project(json!({"name": "p", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..400)
        .map(|i| json!({"external_id": format!("x{i}"), "features": [i as f64, (i % 7) as f64]}))
        .collect();
    app.import_json(pid, &rows).await;
    let app = Arc::new(app);
    let mut tokens = vec![];
    for i in 0..8 {
        tokens.push(app.token(&format!("ann{i}"), "annotator").await);
    }
    // 8 annotators × 5 rounds × 5 items = 200 leases, all live at once.
    let mut tasks = vec![];
    for t in tokens {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            for _ in 0..5 {
                let (s, v) = app
                    .post(
                        &format!("/api/v1/projects/{pid}/queue/next"),
                        &t,
                        json!({"n": 5}),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
                for it in v["items"].as_array().unwrap() {
                    assert!(it["lease_expires_at"].is_string());
                    got.push(it["item"]["id"].as_i64().unwrap());
                }
            }
            got
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "every request was served in full");
    assert_eq!(
        distinct.len(),
        all.len(),
        "an item was handed to two annotators"
    );
}

both_backends!(no_double_lease_under_concurrency, super::concurrent_leases);

/// Labels sent at the same moment (queued for SQLite's writer): each
/// gets its own answer, a refused one (someone else's lease) changes
/// nothing and does not hold back the others, and every accepted one is
/// recorded.
async fn labels_sent_together(app: TestApp) {
    let pid = app
        .project(json!({"name": "p", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..60)
        .map(|i| json!({"external_id": format!("x{i}"), "features": [i as f64, 1.0]}))
        .collect();
    app.import_json(pid, &rows).await;
    let app = Arc::new(app);
    let next = format!("/api/v1/projects/{pid}/queue/next");
    let lease = |v: &Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["item"]["id"].as_i64().unwrap())
            .collect()
    };
    // A holder who never labels: its items are refused to everyone else.
    let holder = app.token("holder", "annotator").await;
    let held = lease(&app.post(&next, &holder, json!({"n": 8})).await.1);
    assert_eq!(held.len(), 8);
    let mut tasks = vec![];
    for (i, &foreign) in held.iter().enumerate() {
        let t = app.token(&format!("ann{i}"), "annotator").await;
        let own = lease(&app.post(&next, &t, json!({"n": 4})).await.1);
        assert_eq!(own.len(), 4);
        for (id, mine) in own
            .into_iter()
            .map(|id| (id, true))
            .chain([(foreign, false)])
        {
            let (app, t) = (app.clone(), t.clone());
            tasks.push(tokio::spawn(async move {
                let (s, v) = app
                    .post(
                        &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                        &t,
                        json!({"label": if id % 2 == 0 { "a" } else { "b" }}),
                    )
                    .await;
                (id, mine, s.as_u16(), v)
            }));
        }
    }
    let mut accepted = HashSet::new();
    for task in tasks {
        let (id, mine, status, v) = task.await.unwrap();
        if mine {
            assert_eq!(status, 201, "{v}");
            assert_eq!(v["item_id"], id);
            assert_eq!(v["label"], if id % 2 == 0 { "a" } else { "b" });
            accepted.insert(id);
        } else {
            assert_eq!(status, 409, "{v}");
            assert_eq!(v["error"]["code"], "conflict");
        }
    }
    assert_eq!(accepted.len(), 32);
    let counts = app.counts(pid).await;
    assert_eq!(counts["labeled"], 32, "{counts}");
    for id in &held {
        let (_, it) = app
            .get(&format!("/api/v1/projects/{pid}/items/{id}"), ADMIN)
            .await;
        assert_eq!(it["status"], "unlabeled", "refused labels wrote nothing");
        assert_eq!(it["labels"], json!([]), "{it}");
    }
}

both_backends!(
    labels_sent_together_each_get_their_answer,
    super::labels_sent_together
);

async fn lease_expiry(app: TestApp) {
    let pid = app
        .project(
            json!({"name": "p", "labels": ["a", "b"], "lease_seconds": 1, "retrain_cron": null}),
        )
        .await;
    app.import_json(
        pid,
        &[json!({"external_id": "only", "text": "the one item"})],
    )
    .await;
    let alice = app.token("alice", "annotator").await;
    let bob = app.token("bob", "annotator").await;
    let url = format!("/api/v1/projects/{pid}/queue/next");
    let (_, v) = app.post(&url, &alice, json!({})).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = app.post(&url, &bob, json!({})).await;
    assert_eq!(v["items"], json!([]), "held by alice");
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (_, v) = app.post(&url, &bob, json!({})).await;
    assert_eq!(
        v["items"][0]["item"]["external_id"], "only",
        "alice's lease expired"
    );
    let id = v["items"][0]["item"]["id"].as_i64().unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{id}/labels"),
            &alice,
            json!({"label": "a"}),
        )
        .await;
    assert_eq!(s, 409, "bob holds it now");
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{id}/labels"),
            &bob,
            json!({"label": "a"}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, v) = app.post(&url, &alice, json!({})).await;
    assert_eq!(v["items"], json!([]), "labelled items leave the queue");
}

both_backends!(leases_expire, super::lease_expiry);

/// Before any model, the queue is not insertion order: the cold start
/// spreads the first items over the pool, and covers more classes.
async fn cold_start(app: TestApp) {
    let pool = dataset("digits", "pool");
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let pid = app
        .project(json!({"name": "d", "labels": labels, "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = pool
        .iter()
        .map(|r| json!({"external_id": r["external_id"], "features": r["features"]}))
        .collect();
    app.import_json(pid, &rows).await;
    let ann = app.token("ann", "annotator").await;
    // The cold-start ranking runs in the background after an import.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &ann,
            json!({"n": 20}),
        )
        .await;
    let first = v["items"].as_array().unwrap().clone();
    let ids: Vec<i64> = first
        .iter()
        .map(|i| i["item"]["id"].as_i64().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_ne!(ids, sorted, "cold start must not be insertion order");
    let oracle: std::collections::HashMap<&str, &str> = pool
        .iter()
        .map(|r| {
            (
                r["external_id"].as_str().unwrap(),
                r["label"].as_str().unwrap(),
            )
        })
        .collect();
    let classes: HashSet<&str> = first
        .iter()
        .map(|i| oracle[i["item"]["external_id"].as_str().unwrap()])
        .collect();
    assert!(
        classes.len() >= 7,
        "20 cold-start items cover {} classes",
        classes.len()
    );
}

both_backends!(cold_start_order, super::cold_start);

/// A pool larger than the rank depth (the tests' server writes 5,000 rows
/// of a ranking before it returns, 12,000 in all): the new ranking's head
/// leads the queue at once (newest epoch first, whatever the previous scores
/// were), every unlabelled item shows the new model's prediction at once
/// (deeper ones scored when viewed), and the dashboard's histogram counts the
/// whole pool.
async fn large_pool(app: TestApp) {
    let pid = app
        .project(
            json!({"name": "big", "labels": ["neg", "pos"], "retrain_cron": null,
                        "strategy": "margin"}),
        )
        .await;
    // Two features; the class is the sign of the first (noisy near 0).
    const N: usize = 24_000;
    let rows: Vec<Value> = (0..N)
        .map(|i| {
            let x = (i as f64 * 0.618_033_988_7).fract() * 2.0 - 1.0;
            let y = ((i * 7919) % 1000) as f64 / 1000.0;
            let mut r = json!({"external_id": format!("r{i}"), "features": [x, y]});
            if i < 60 {
                r["label"] = json!(if x > 0.0 { "pos" } else { "neg" });
            }
            r
        })
        .collect();
    for chunk in rows.chunks(8_000) {
        app.import_json(pid, chunk).await;
    }
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let version = v["version"].as_i64().unwrap();
    let ann = app.token("ann", "annotator").await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &ann,
            json!({"n": 50}),
        )
        .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for it in items {
        assert_eq!(
            it["item"]["prediction"]["model_version"].as_i64(),
            Some(version),
            "the head is the new model's: {it}"
        );
        let x = it["item"]["features"][0].as_f64().unwrap();
        assert!(x.abs() < 0.2, "margin puts the boundary first, got x = {x}");
    }
    let (mut seen, mut after) = (0, None::<i64>);
    let mut binned = [0i64; 10];
    loop {
        let mut url = format!("/api/v1/projects/{pid}/items?status=unlabeled&limit=1000");
        if let Some(a) = after {
            url.push_str(&format!("&after={a}"));
        }
        let (_, page) = app.get(&url, &ann).await;
        for it in page["items"].as_array().unwrap() {
            seen += 1;
            let p = &it["prediction"];
            assert_eq!(p["model_version"].as_i64(), Some(version), "{it}");
            let c = p["confidence"].as_f64().unwrap();
            binned[((c * 10.0) as usize).min(9)] += 1;
            // The model is the sign of the first feature, deep rows too.
            let x = it["features"][0].as_f64().unwrap();
            if x.abs() > 0.3 {
                let want = if x > 0.0 { "pos" } else { "neg" };
                assert_eq!(p["label"], want, "{it}");
            }
        }
        match page["next"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // 50 leased, 60 labelled.
    assert_eq!(seen, N - 60, "unlabelled items listed");
    let one = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/r23999"),
            &ann,
        )
        .await
        .1;
    assert_eq!(one["prediction"]["model_version"].as_i64(), Some(version));
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    let h = &st["confidence_histogram"];
    assert_eq!(h["model_version"].as_i64(), Some(version), "{h}");
    let counts: Vec<i64> = serde_json::from_value(h["counts"].clone()).unwrap();
    assert_eq!(counts.iter().sum::<i64>(), (N - 60) as i64, "{h}");
    // The same bins, up to confidences on a bin's edge.
    for (b, (&c, &w)) in counts.iter().zip(&binned).enumerate() {
        assert!((c - w).abs() <= 5, "bin {b}: stats {c}, listed {w}");
    }
}

both_backends!(large_pool_ranking, super::large_pool);
