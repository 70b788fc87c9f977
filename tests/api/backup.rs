//! `loupe backup` copies a live SQLite database; a server started on the copy
//! finds every label and the active model.
use crate::common::{Backend, TestApp, ADMIN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Output;

async fn loupe(args: Vec<String>, db_url: &str) -> Output {
    let url = db_url.to_string();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_loupe"))
            .args(&args)
            .env("LOUPE_DATABASE_URL", url)
            .env("LOUPE_LOG", "warn")
            .output()
            .expect("loupe runs")
    })
    .await
    .unwrap()
}

/// external_id → its labels (id, label, annotator, source), for every item.
async fn labels_by_item(app: &TestApp, pid: i64) -> BTreeMap<String, Value> {
    let (s, page) = app
        .get(&format!("/api/v1/projects/{pid}/items?limit=1000"), ADMIN)
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(page["next"].is_null());
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| {
            let labels: Vec<Value> = it["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    json!([
                        l["id"],
                        l["label"],
                        l["annotator"],
                        l["source"],
                        l["created_at"]
                    ])
                })
                .collect();
            (
                it["external_id"].as_str().unwrap().to_string(),
                json!({"status": it["status"], "label": it["label"], "labels": labels}),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_running_server_keeps_every_label_and_the_model() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let pid = app
        .project(json!({"name": "b", "labels": ["neg", "pos"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..120)
        .map(|i| {
            let x = i as f64 - 59.5;
            json!({"external_id": format!("e{i}"), "features": [x],
                   "label": if i % 10 == 0 { Some(if x < 0.0 { "neg" } else { "pos" }) } else { None }})
        })
        .collect();
    app.import_json(pid, &rows).await;
    let ann = app.token("ann", "annotator").await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &ann,
            json!({"n": 8}),
        )
        .await;
    for it in v["items"].as_array().unwrap() {
        let id = it["item"]["id"].as_i64().unwrap();
        let x = it["item"]["features"][0].as_f64().unwrap();
        let (s, _) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &ann,
                json!({"label": if x < 0.0 { "neg" } else { "pos" }}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let model = app.train(pid).await;
    let labels = labels_by_item(&app, pid).await;
    let n_labels: usize = labels
        .values()
        .map(|v| v["labels"].as_array().unwrap().len())
        .sum();
    assert_eq!(n_labels, 12 + 8);
    let probe =
        json!({"items": [{"features": [-30.0]}, {"features": [0.4]}, {"features": [30.0]}]});
    let (_, predicted) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            ADMIN,
            probe.clone(),
        )
        .await;

    // The server is running (its write-ahead log holds recent writes) while
    // the copy is taken.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("copy.db");
    let dest_s = dest.display().to_string();
    let out = loupe(vec!["backup".into(), dest_s.clone()], &app.db_url).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("120 items") && stdout.contains("integrity ok"),
        "{stdout}"
    );

    // An existing path is refused and left alone.
    let bytes = std::fs::read(&dest).unwrap();
    let out = loupe(vec!["backup".into(), dest_s.clone()], &app.db_url).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    // PostgreSQL: pointed to pg_dump, non-zero.
    let elsewhere = dir.path().join("pg.db").display().to_string();
    let out = loupe(
        vec!["backup".into(), elsewhere.clone()],
        "postgres://u@localhost/db",
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
    // A database that does not exist is not created, and nothing is written.
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let out = loupe(vec!["backup".into(), elsewhere.clone()], &missing).await;
    assert!(!out.status.success());
    assert!(!dir.path().join("missing.db").exists() && !std::path::Path::new(&elsewhere).exists());

    // A label made after the backup is not in it: the copy is a snapshot.
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &ann,
            json!({"n": 1}),
        )
        .await;
    let late = v["items"][0]["item"]["id"].as_i64().unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{late}/labels"),
            &ann,
            json!({"label": "neg"}),
        )
        .await;
    assert_eq!(s, 201);

    let copy = TestApp::start(format!("sqlite://{dest_s}"), Some(dir), None).await;
    assert_eq!(
        labels_by_item(&copy, pid).await,
        labels,
        "every label is in the copy"
    );
    let (s, active) = copy
        .get(&format!("/api/v1/projects/{pid}/models/active"), ADMIN)
        .await;
    assert_eq!(s, 200, "{active}");
    assert_eq!(active, model, "the active model is in the copy");
    let (s, again) = copy
        .post(&format!("/api/v1/projects/{pid}/predict"), ADMIN, probe)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        again, predicted,
        "the copied model predicts exactly the same"
    );
    // The tokens came along too.
    let (s, _) = copy
        .get(&format!("/api/v1/projects/{pid}/stats"), &ann)
        .await;
    assert_eq!(s, 200);
}
