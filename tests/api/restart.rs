//! A restart keeps every label and serves the newest model.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use serde_json::{json, Value};

async fn restart_keeps_state(app: TestApp) {
    let pid = app
        .project(json!({"name": "r", "labels": ["neg", "pos"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"external_id": format!("k{i}"), "features": [i as f64 - 20.0], "label": if i % 4 == 0 { Some(if i < 20 { "neg" } else { "pos" }) } else { None }}))
        .collect();
    app.import_json(pid, &rows).await;
    let ann = app.token("ann", "annotator").await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &ann,
            json!({"n": 3}),
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "{v}");
    for it in v["items"].as_array().unwrap() {
        let id = it["item"]["id"].as_i64().unwrap();
        let x = it["item"]["features"][0].as_f64().unwrap();
        let (s, _) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &ann,
                json!({"label": if x < 0.0 { "neg" } else { "pos" }, "duration_ms": 900}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let trained = app.train(pid).await;
    let probe = json!({"items": [{"features": [15.0]}, {"features": [-15.0]}]});
    let (_, before) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            ADMIN,
            probe.clone(),
        )
        .await;
    let counts = app.counts(pid).await;

    let app = app.restart().await;
    assert_eq!(app.counts(pid).await, counts);
    let (_, active) = app
        .get(&format!("/api/v1/projects/{pid}/models/active"), ADMIN)
        .await;
    assert_eq!(active["version"], trained["version"]);
    let (s, after) = app
        .post(&format!("/api/v1/projects/{pid}/predict"), ADMIN, probe)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        before, after,
        "the reloaded model predicts exactly the same"
    );
    assert_eq!(after["predictions"][0]["label"], "pos");
    assert_eq!(after["predictions"][1]["label"], "neg");
    // The annotator's token and labels survived too.
    let (_, stats) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), &ann)
        .await;
    assert_eq!(stats["annotators"][0]["labels"], 3, "{stats}");
}

both_backends!(restart_keeps_labels_and_model, super::restart_keeps_state);
