//! Stats, export, health and metrics.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

async fn stats_and_export(app: TestApp) {
    let pid = app
        .project(json!({"name": "st", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..30).map(|i| json!({"external_id": format!("s{i}"), "text": format!("text, \"quoted\" {i}"), "features": [i as f64]})).collect();
    app.import_json(pid, &rows).await;
    let alice = app.token("alice", "annotator").await;
    let bob = app.token("bob", "annotator").await;
    for (tok, n, dur) in [(&alice, 5, 1000), (&bob, 3, 3000)] {
        let (_, v) = app
            .post(
                &format!("/api/v1/projects/{pid}/queue/next"),
                tok,
                json!({"n": n}),
            )
            .await;
        for (k, it) in v["items"].as_array().unwrap().iter().enumerate() {
            let id = it["item"]["id"].as_i64().unwrap();
            let label = if k % 2 == 0 { "a" } else { "b" };
            let (s, _) = app
                .post(
                    &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                    tok,
                    json!({"label": label, "duration_ms": dur + k as i64}),
                )
                .await;
            assert_eq!(s, 201);
        }
    }
    app.post(
        &format!("/api/v1/projects/{pid}/train?wait=true"),
        ADMIN,
        json!({}),
    )
    .await;
    let (s, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), &alice)
        .await;
    assert_eq!(s, 200);
    assert_eq!(st["counts"]["labeled"], 8);
    assert_eq!(st["label_distribution"], json!({"a": 5, "b": 3}));
    assert_eq!(st["learning_curve"].as_array().unwrap().len(), 1);
    assert_eq!(st["learning_curve"][0]["n_labels"], 8);
    assert!(st["override_rate"].is_null(), "no reviews yet");
    let ann = st["annotators"].as_array().unwrap();
    assert_eq!(ann.len(), 2);
    assert_eq!(ann[0]["annotator"], "alice");
    assert_eq!(ann[0]["labels"], 5);
    assert_eq!(ann[0]["median_duration_ms"], 1002);
    assert_eq!(ann[1]["median_duration_ms"], 3001);

    // The stopping signal: retraining on the same labels changes nothing.
    for _ in 0..3 {
        let (s, _) = app
            .post(
                &format!("/api/v1/projects/{pid}/train?wait=true"),
                ADMIN,
                json!({}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), &alice)
        .await;
    assert_eq!(
        st["stopping"]["recent_kappa"],
        json!([1.0, 1.0, 1.0]),
        "{}",
        st["stopping"]
    );
    assert_eq!(st["stopping"]["stopped_changing"], true);

    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/export?format=jsonl"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    assert!(lines
        .iter()
        .all(|l| l["label"].is_string() && l["annotators"].as_array().unwrap().len() == 1));
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/export?format=csv"),
            Some(ADMIN),
            None,
        )
        .await;
    let csv = r.text().await.unwrap();
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "id",
            "external_id",
            "label",
            "text",
            "features",
            "annotators"
        ]
    );
    assert_eq!(rdr.records().count(), 8);
    let (s, _) = app
        .get(&format!("/api/v1/projects/{pid}/export?format=xml"), ADMIN)
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .get(&format!("/api/v1/projects/{pid}/export"), &alice)
        .await;
    assert_eq!(s, 403);

    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let metrics = app
        .call(Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    for name in [
        "loupe_http_requests_total",
        "loupe_http_request_duration_seconds",
        "loupe_labels_total 8",
        "loupe_trainings_total",
        "loupe_items{project=",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let r = app.call(Method::GET, "/", None, None).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

both_backends!(stats_export_health_metrics, super::stats_and_export);
