//! The cron job retrains by itself once enough new labels arrived.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn models(app: &TestApp, pid: i64) -> Vec<Value> {
    app.get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
        .await
        .1
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_for_versions(app: &TestApp, pid: i64, n: usize) -> bool {
    for _ in 0..40 {
        if models(app, pid).await.len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

async fn scheduled_retrain(app: TestApp) {
    let pid = app
        .project(json!({"name": "s", "labels": ["low", "high"], "retrain_cron": null, "min_new_labels": 6}))
        .await;
    let rows: Vec<Value> = (0..60).map(|i| json!({"external_id": format!("r{i}"), "features": [i as f64, ((i * 7) % 11) as f64]})).collect();
    app.import_json(pid, &rows).await;
    let ann = app.token("ann", "annotator").await;
    let label_some = |n: usize| {
        let app = &app;
        let ann = ann.clone();
        async move {
            let (_, v) = app
                .post(
                    &format!("/api/v1/projects/{pid}/queue/next"),
                    &ann,
                    json!({"n": n}),
                )
                .await;
            for it in v["items"].as_array().unwrap() {
                let id = it["item"]["id"].as_i64().unwrap();
                let x = it["item"]["features"][0].as_f64().unwrap();
                let label = if x >= 30.0 { "high" } else { "low" };
                let (s, _) = app
                    .post(
                        &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                        &ann,
                        json!({"label": label}),
                    )
                    .await;
                assert_eq!(s, 201);
            }
        }
    };
    // Too few new labels: the job fires but does not train.
    label_some(3).await;
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/projects/{pid}"),
            ADMIN,
            Some(json!({"retrain_cron": "*/1 * * * * *"})),
        )
        .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(models(&app, pid).await.is_empty(), "3 < min_new_labels");
    // Enough: a version appears by itself.
    label_some(12).await;
    assert!(
        wait_for_versions(&app, pid, 1).await,
        "the scheduler should have trained"
    );
    let m = &models(&app, pid).await[0];
    assert!(m["n_labels"].as_i64().unwrap() >= 6);
    // Nothing new: no new version on later ticks.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let n = models(&app, pid).await.len();
    // Switching the cron off stops the job.
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/projects/{pid}"),
            ADMIN,
            Some(json!({"retrain_cron": null})),
        )
        .await;
    assert_eq!(s, 200);
    label_some(10).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        models(&app, pid).await.len(),
        n,
        "no job after the cron was removed"
    );
}

both_backends!(scheduler_retrains_by_itself, super::scheduled_retrain);
