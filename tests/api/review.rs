//! Human in the loop: routing tiers and rules, review queues with tiers,
//! overrides that feed training, blind items, audits, the audit trail.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

/// A project whose model is sure far from 0 and unsure near it.
async fn trained_project(app: &TestApp, routing: Value) -> i64 {
    let pid = app
        .project(json!({"name": "hitl", "labels": ["neg", "pos"], "retrain_cron": null, "routing": routing}))
        .await;
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            let x = (i as f64 - 19.5) * 2.0;
            json!({"external_id": format!("seed{i}"), "features": [x], "label": if x < 0.0 { "neg" } else { "pos" }})
        })
        .collect();
    app.import_json(pid, &rows).await;
    app.train(pid).await;
    pid
}

async fn predict(app: &TestApp, pid: i64, token: &str, items: Value) -> Value {
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            token,
            json!({"items": items, "enqueue": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn tiers_rules_and_decisions(app: TestApp) {
    let pid = trained_project(
        &app,
        json!({"auto_threshold": 0.95, "review_threshold": 0.0,
               "rules": [{"field": "amount", "op": ">=", "value": 50000}]}),
    )
    .await;
    // Rules are checked when set.
    let (s, v) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/projects/{pid}"),
            ADMIN,
            Some(json!({"routing": {"rules": [{"field": "amount", "op": "~", "value": 1}]}})),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str().unwrap()),
        (400, "invalid_request")
    );

    let service = app.token("svc", "service").await;
    let junior = app.token("jun", "reviewer").await;
    let (s, v) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"name": "sen", "role": "reviewer", "senior": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let senior = v["token"].as_str().unwrap().to_string();

    let out = predict(
        &app,
        pid,
        &service,
        json!([
            {"external_id": "sure", "features": [60.0]},
            {"external_id": "unsure", "features": [0.3]},
            {"external_id": "big", "features": [60.0], "meta": {"amount": 72000}},
        ]),
    )
    .await;
    let p = out["predictions"].as_array().unwrap();
    assert_eq!(p[0]["route"], "auto");
    assert_eq!(p[1]["route"], "review");
    assert_eq!(
        p[2]["route"], "escalate",
        "a high-stakes rule escalates a confident prediction"
    );
    assert!(p[2]["confidence"].as_f64().unwrap() >= 0.95);
    assert!(p[1]["item_id"].is_i64() && p[2]["item_id"].is_i64());
    // The auto case is stored as decided by the model.
    let (_, sure) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/sure"),
            &service,
        )
        .await;
    assert_eq!(
        (sure["status"].as_str(), sure["decided_by"].as_str()),
        (Some("auto"), Some("model"))
    );

    // The counts tell the escalated cases apart.
    let c = app.counts(pid).await;
    assert_eq!(
        (c["review"].as_i64(), c["escalated"].as_i64()),
        (Some(2), Some(1)),
        "{c}"
    );
    // The junior reviewer gets the review case, never the escalated one.
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &junior,
            json!({"n": 10}),
        )
        .await;
    let got: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"]["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["unsure"]);
    assert_eq!(v["items"][0]["tier"], "review");
    assert!(v["items"][0]["suggestion"]["label"].is_string());
    let esc_id = p[2]["item_id"].as_i64().unwrap();
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{esc_id}/labels"),
            &junior,
            json!({"label": "neg"}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str().unwrap()),
        (403, "forbidden")
    );
    // Annotators do not review.
    let ann = app.token("ann", "annotator").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &ann,
            json!({}),
        )
        .await;
    assert_eq!(s, 403);

    // The senior sees the escalated case and overrides it.
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &senior,
            json!({"n": 10}),
        )
        .await;
    assert_eq!(v["items"][0]["item"]["external_id"], "big");
    assert_eq!(v["items"][0]["tier"], "escalate");
    let (s, l) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{esc_id}/labels"),
            &senior,
            json!({"label": "neg", "duration_ms": 4000}),
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(l["source"], "override");
    // The junior confirms the review case.
    let unsure_id = p[1]["item_id"].as_i64().unwrap();
    let proposal = p[1]["label"].as_str().unwrap();
    let (_, l) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{unsure_id}/labels"),
            &junior,
            json!({"label": proposal, "duration_ms": 2500}),
        )
        .await;
    assert_eq!(l["source"], "review");

    // The service reads the human decision back: what, who, when.
    let (_, big) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/big"),
            &service,
        )
        .await;
    assert_eq!(big["label"], "neg");
    assert_eq!(big["decided_by"], "human");
    assert_eq!(big["labels"][0]["annotator"], "sen");
    assert!(big["labels"][0]["created_at"].is_string());

    // Overrides and reviews are training data for the next model.
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(
        v["n_labels"], 42,
        "40 seeds + the override + the confirmation"
    );

    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    assert_eq!(st["override_rate"], 0.5);
    assert_eq!(st["overrides"]["by_version"][0]["overridden"], 1);
    let cw = st["confident_and_wrong"].as_array().unwrap();
    assert_eq!(cw.len(), 1);
    assert_eq!(cw[0]["external_id"], "big");
    let vols = &st["routing_volumes"][0];
    assert_eq!(
        (
            vols["auto"].as_i64(),
            vols["review"].as_i64(),
            vols["escalate"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let reviewers = st["reviewers"].as_array().unwrap();
    assert_eq!(reviewers.len(), 2);

    // The audit trail goes out with the export.
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/export?format=jsonl"),
            Some(ADMIN),
            None,
        )
        .await;
    let body = r.text().await.unwrap();
    let big_line: Value = body
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["external_id"] == "big")
        .unwrap();
    let actions: Vec<&str> = big_line["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["route_escalate", "override"]);
    assert_eq!(big_line["decisions"][1]["suggestion_shown"], true);
}

both_backends!(
    tiers_rules_overrides_and_trail,
    super::tiers_rules_and_decisions
);

async fn blind_and_audit(app: TestApp) {
    let pid = trained_project(&app, json!({"auto_threshold": 0.95, "review_threshold": 0.0, "audit_share": 1.0, "blind_share": 1.0})).await;
    let service = app.token("svc", "service").await;
    let rev = app.token("rev", "reviewer").await;
    let out = predict(
        &app,
        pid,
        &service,
        json!([
            {"external_id": "a1", "features": [60.0]},
            {"external_id": "a2", "features": [-60.0]},
            {"external_id": "r1", "features": [0.2]},
        ]),
    )
    .await;
    assert_eq!(
        out["predictions"][0]["route"], "auto",
        "the service still gets its answer"
    );
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &rev,
            json!({"n": 10}),
        )
        .await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "audited auto cases are reviewed too");
    for it in items {
        assert!(it["suggestion"].is_null(), "blind: no suggestion");
        assert!(
            it["item"]["prediction"].is_null(),
            "blind: no prediction either"
        );
    }
    for it in items {
        let id = it["item"]["id"].as_i64().unwrap();
        let x = it["item"]["features"][0].as_f64().unwrap();
        let (s, _) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &rev,
                json!({"label": if x < 0.0 { "neg" } else { "pos" }}),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    assert_eq!(st["audit"]["audited"], 2);
    assert_eq!(st["audit"]["precision"], 1.0);
    assert_eq!(st["reviewers"][0]["blind_agreement_rate"], 1.0);
    assert!(st["reviewers"][0]["agree_with_model_rate"].is_null());

    // Released leases go back to the queue at once.
    let more = predict(
        &app,
        pid,
        &service,
        json!([{"external_id": "r2", "features": [0.1]}]),
    )
    .await;
    let id = more["predictions"][0]["item_id"].as_i64().unwrap();
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &rev,
            json!({}),
        )
        .await;
    assert_eq!(v["items"][0]["item"]["id"], id);
    let other = app.token("rev2", "reviewer").await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(v["items"], json!([]));
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/release"),
            &rev,
            json!({"item_ids": [id]}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &other,
            json!({}),
        )
        .await;
    assert_eq!(v["items"][0]["item"]["id"], id);
}

both_backends!(blind_items_and_audits, super::blind_and_audit);

async fn overlap(app: TestApp) {
    let pid = app
        .project(
            json!({"name": "k2", "labels": ["x", "y"], "retrain_cron": null, "labels_per_item": 2}),
        )
        .await;
    app.import_json(
        pid,
        &[
            json!({"external_id": "one", "text": "first"}),
            json!({"external_id": "two", "text": "second"}),
        ],
    )
    .await;
    let a = app.token("a", "annotator").await;
    let b = app.token("b", "annotator").await;
    let rev = app.token("rev", "reviewer").await;
    let next = |t: String| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/projects/{pid}/queue/next"),
                &t,
                json!({"n": 5}),
            )
            .await
            .1
        }
    };
    let label = |t: String, id: i64, l: &'static str| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &t,
                json!({"label": l}),
            )
            .await
        }
    };
    let got = next(a.clone()).await;
    let ids: Vec<(i64, String)> = got["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["item"]["id"].as_i64().unwrap(),
                i["item"]["external_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ids.len(), 2);
    let id_of = |e: &str| ids.iter().find(|(_, x)| x == e).unwrap().0;
    assert_eq!(label(a.clone(), id_of("one"), "x").await.0, 201);
    assert_eq!(label(a.clone(), id_of("two"), "x").await.0, 201);
    assert_eq!(
        app.counts(pid).await["labeled"],
        0,
        "one label of two is not final"
    );
    let (s, v) = label(a.clone(), id_of("one"), "y").await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str().unwrap()),
        (409, "conflict"),
        "never the same person twice"
    );
    assert_eq!(
        next(a.clone()).await["items"],
        json!([]),
        "a has labeled both"
    );
    assert_eq!(next(b.clone()).await["items"].as_array().unwrap().len(), 2);
    assert_eq!(label(b.clone(), id_of("one"), "x").await.0, 201);
    assert_eq!(label(b.clone(), id_of("two"), "y").await.0, 201);
    let (_, one) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/{}", id_of("one")),
            ADMIN,
        )
        .await;
    assert_eq!(
        (one["status"].as_str(), one["label"].as_str()),
        (Some("labeled"), Some("x")),
        "majority"
    );
    let (_, two) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/{}", id_of("two")),
            ADMIN,
        )
        .await;
    assert_eq!(two["status"], "review", "a tie goes to review");
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/review"),
            &rev,
            json!({}),
        )
        .await;
    assert_eq!(v["items"][0]["item"]["external_id"], "two");
    assert_eq!(label(rev.clone(), id_of("two"), "y").await.0, 201);
    let (_, two) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/{}", id_of("two")),
            ADMIN,
        )
        .await;
    assert_eq!(
        (two["status"].as_str(), two["label"].as_str()),
        (Some("labeled"), Some("y"))
    );
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    assert_eq!(st["agreement"]["items"], 2);
    assert_eq!(st["agreement"]["observed"], 0.5);
    assert!(
        st["agreement"]["cohen_kappa"]["kappa"].is_number(),
        "{}",
        st["agreement"]
    );
}

both_backends!(k_labels_per_item_majority_and_kappa, super::overlap);

/// Thresholds calibrated to a target precision on held-out human labels
/// meet it on a separate test split; with too few labels nothing is auto.
async fn calibrated_thresholds(app: TestApp) {
    use crate::common::dataset;
    let pool = dataset("digits", "pool");
    let test = dataset("digits", "test");
    let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let pid = app
        .project(
            json!({"name": "cal", "labels": labels, "retrain_cron": null,
                        "routing": {"target_precision": 0.97}}),
        )
        .await;
    // Too few labels: everything goes to people, and the version says why.
    app.import_json(pid, &pool[..20]).await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(v["thresholds"]["auto"], 1.0, "{v}");
    assert!(v["metrics"]["calibration"]["reason"].is_string(), "{v}");
    let items: Vec<Value> = test
        .iter()
        .map(|r| json!({"features": r["features"]}))
        .collect();
    let (_, out) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            ADMIN,
            json!({"items": items}),
        )
        .await;
    assert!(out["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["route"] != "auto"));

    // 800 random human labels: a threshold with a bound.
    app.import_json(pid, &pool[20..800]).await;
    let (_, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    let cal = &v["metrics"]["calibration"];
    let t = v["thresholds"]["auto"].as_f64().unwrap();
    assert!(t < 1.0, "{cal}");
    assert!(
        cal["precision_lower_bound"].as_f64().unwrap() >= 0.97,
        "{cal}"
    );
    assert_eq!(cal["auto_threshold"].as_f64(), Some(t));
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    assert_eq!(&st["calibration"], cal, "stats show the active calibration");
    let (_, out) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            ADMIN,
            json!({"items": items}),
        )
        .await;
    let preds = out["predictions"].as_array().unwrap();
    let auto: Vec<(&Value, &Value)> = preds
        .iter()
        .zip(&test)
        .filter(|(p, _)| p["route"] == "auto")
        .collect();
    let right = auto
        .iter()
        .filter(|(p, t)| p["label"] == t["label"])
        .count();
    let precision = right as f64 / auto.len() as f64;
    eprintln!(
        "target 0.97: threshold {t}, auto coverage {}/{}, precision {precision:.3}",
        auto.len(),
        preds.len()
    );
    assert!(auto.len() >= preds.len() / 4, "some coverage");
    assert!(
        precision >= 0.95,
        "auto precision {precision} on the test split"
    );
}

both_backends!(
    thresholds_calibrated_to_target,
    super::calibrated_thresholds
);

/// Gold items: known answers reviewers meet in their queue without knowing
/// it, some with a deliberately wrong suggestion; reviewers are judged on them.
async fn gold_items(app: TestApp) {
    let pid = trained_project(
        &app,
        json!({"auto_threshold": 0.999, "review_threshold": 0.0, "gold_share": 1.0}),
    )
    .await;
    let before = app.counts(pid).await;
    let gold_path = format!("/api/v1/projects/{pid}/gold");
    // Bad gold changes nothing, and only admins add gold.
    for bad in [
        json!([{"external_id": "gx", "features": [1.0], "label": "maybe"}]),
        json!([{"external_id": "gx", "features": [1.0], "label": "neg", "suggest": "maybe"}]),
        json!([{"external_id": "gx", "features": [1.0, 2.0], "label": "neg"}]),
        json!([{"external_id": "gx", "features": [1.0], "label": "neg", "confidence": 2}]),
        json!([]),
    ] {
        let (s, v) = app.post(&gold_path, ADMIN, bad.clone()).await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {v}"
        );
    }
    let stamper = app.token("stamp", "reviewer").await;
    let careful = app.token("care", "reviewer").await;
    let gold = json!([
        {"external_id": "g1", "features": [-30.0], "label": "neg", "suggest": "pos"},
        {"external_id": "g2", "features": [-25.0], "label": "neg", "suggest": "pos"},
        {"external_id": "g3", "features": [25.0], "label": "pos", "suggest": "neg"},
        {"external_id": "g4", "features": [30.0], "label": "pos"},
    ]);
    let (s, _) = app.post(&gold_path, &stamper, gold.clone()).await;
    assert_eq!(s, 403);
    assert_eq!(
        app.counts(pid).await,
        before,
        "rejected gold changed nothing"
    );
    let (s, v) = app.post(&gold_path, ADMIN, gold.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"inserted": 4, "duplicates": 0, "wrong_suggestions": 3})
    );
    let (_, v) = app.post(&gold_path, ADMIN, json!({"items": gold})).await;
    assert_eq!(v["duplicates"], 4, "gold is idempotent on external_id");
    let c = app.counts(pid).await;
    assert_eq!(
        (c["gold"].as_i64(), &c["items"]),
        (Some(4), &before["items"])
    );

    // No real review item yet: gold never shows in an empty queue.
    let next = |tok: String| {
        let app = &app;
        async move {
            let (s, v) = app
                .post(
                    &format!("/api/v1/projects/{pid}/queue/review"),
                    &tok,
                    json!({"n": 4}),
                )
                .await;
            assert_eq!(s, 200, "{v}");
            v["items"].as_array().unwrap().clone()
        }
    };
    assert!(next(stamper.clone()).await.is_empty());
    let service = app.token("svc", "service").await;
    let real: Vec<Value> = (0..6)
        .map(|i| json!({"external_id": format!("r{i}"), "features": [0.1 * i as f64]}))
        .collect();
    predict(&app, pid, &service, json!(real)).await;

    // Every slot is gold here (gold_share 1): the stamper gets the four, and
    // they look like any review item.
    let got = next(stamper.clone()).await;
    let mut ext: Vec<&str> = got
        .iter()
        .map(|e| e["item"]["external_id"].as_str().unwrap())
        .collect();
    ext.sort_unstable();
    assert_eq!(ext, ["g1", "g2", "g3", "g4"]);
    for e in &got {
        assert_eq!(e["item"]["status"], "review", "{e}");
        assert_eq!(e["tier"], "review");
        assert!(
            e["suggestion"]["label"].is_string() && e["lease_expires_at"].is_string(),
            "{e}"
        );
        assert_eq!(e["item"]["labels"], json!([]));
        assert!(e["item"].get("gold_label").is_none());
    }
    // The stamper accepts every suggestion, fast.
    let mut stamped = vec![];
    for e in &got {
        let id = e["item"]["id"].as_i64().unwrap();
        let (s, l) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &stamper,
                json!({"label": e["suggestion"]["label"], "duration_ms": 400}),
            )
            .await;
        assert_eq!(s, 201, "{l}");
        assert_eq!(l["source"], "review", "a gold answer reads like a review");
        stamped.push((id, l["id"].as_i64().unwrap()));
    }
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{}/labels", stamped[0].0),
            &stamper,
            json!({"label": "neg"}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let ann = app.token("ann", "annotator").await;
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{}/labels", stamped[0].0),
            &ann,
            json!({"label": "neg"}),
        )
        .await;
    assert_eq!(s, 403, "annotators do not answer review (or gold) items");
    // A reviewer reading the item learns nothing more.
    let (_, item) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/{}", stamped[0].0),
            &stamper,
        )
        .await;
    assert_eq!(
        (item["status"].as_str(), &item["label"]),
        (Some("review"), &Value::Null)
    );
    assert_eq!(item["labels"], json!([]));

    // The stamper has seen all gold: real items now.
    let got = next(stamper.clone()).await;
    assert!(!got.is_empty());
    assert!(got
        .iter()
        .all(|e| e["item"]["external_id"].as_str().unwrap().starts_with('r')));
    // One real case decided (it becomes training data), the rest given back.
    let first = got[0]["item"]["id"].as_i64().unwrap();
    let (s, l) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{first}/labels"),
            &stamper,
            json!({"label": got[0]["suggestion"]["label"]}),
        )
        .await;
    assert_eq!(s, 201, "{l}");
    let rest: Vec<i64> = got[1..]
        .iter()
        .map(|e| e["item"]["id"].as_i64().unwrap())
        .collect();
    let (s, _) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/release"),
            &stamper,
            json!({ "item_ids": rest }),
        )
        .await;
    assert_eq!(s, 204);
    // The careful reviewer gets the gold too and gives the known answers.
    let got = next(careful.clone()).await;
    assert_eq!(got.len(), 4);
    let truth = |x: &str| {
        if x.starts_with("g1") || x.starts_with("g2") {
            "neg"
        } else {
            "pos"
        }
    };
    for e in &got {
        let ext = e["item"]["external_id"].as_str().unwrap();
        assert!(ext.starts_with('g'), "{e}");
        let id = e["item"]["id"].as_i64().unwrap();
        let (s, l) = app
            .post(
                &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                &careful,
                json!({"label": truth(ext), "duration_ms": 6000}),
            )
            .await;
        assert_eq!(s, 201, "{l}");
    }

    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    let reviewer = |name: &str| {
        st["reviewers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["reviewer"] == name)
            .unwrap_or_else(|| panic!("{name} in {st}"))
            .clone()
    };
    let s_ = reviewer("stamp");
    assert_eq!(
        s_["gold"],
        json!({"answered": 4, "correct": 1, "accuracy": 0.25,
               "wrong_suggestions_shown": 3, "wrong_suggestions_accepted": 3}),
        "{s_}"
    );
    assert_eq!(s_["rubber_stamp_suspected"], true, "{s_}");
    assert!(s_["rubber_stamp_reasons"][0]
        .as_str()
        .unwrap()
        .contains("accepted 3 of 3 deliberately wrong"));
    let c_ = reviewer("care");
    assert_eq!(c_["gold"]["accuracy"], 1.0, "{c_}");
    assert_eq!(c_["rubber_stamp_suspected"], false, "{c_}");
    assert_eq!(
        st["gold"],
        json!({"items": 4, "answers": 8, "accuracy": 0.625,
               "wrong_suggestions_shown": 6, "wrong_suggestions_accepted": 3})
    );

    // Undoing a gold answer takes back the answer only; gold stays gold and
    // never becomes training data.
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/projects/{pid}/labels/{}", stamped[0].1),
            &stamper,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.counts(pid).await["gold"], 4);
    let (_, st) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    assert_eq!(st["gold"]["answers"], 7);
    let m = app.train(pid).await;
    assert_eq!(
        m["n_labels"], 41,
        "40 seeds and the one real review decision: {m}"
    );
}

both_backends!(gold_items_measure_reviewers, super::gold_items);
