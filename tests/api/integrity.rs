//! Decisions nobody can quietly rewrite (the outside attack run's first
//! two findings): a decided item changes only at the hands of someone of
//! the tier that decided it, as a recorded override, and an item never has
//! two live labels when the project asks for one.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use serde_json::{json, Value};

async fn setup(app: &TestApp) -> (i64, String, String, String, String) {
    let pid = app
        .project(
            json!({"name": "acct", "labels": ["ham", "spam"], "retrain_cron": null,
                        "routing": {"auto_threshold": 0.95, "review_threshold": 0.0,
                                    "rules": [{"field": "amount", "op": ">=", "value": 50000}]}}),
        )
        .await;
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            let x = (i as f64 - 19.5) * 2.0;
            json!({"external_id": format!("seed{i}"), "features": [x],
                   "label": if x < 0.0 { "ham" } else { "spam" }})
        })
        .collect();
    app.import_json(pid, &rows).await;
    app.train(pid).await;
    let service = app.token("svc", "service").await;
    let annotator = app.token("ann", "annotator").await;
    let reviewer = app.token("rev", "reviewer").await;
    let (s, v) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"name": "sen", "role": "reviewer", "senior": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let senior = v["token"].as_str().unwrap().to_string();
    (pid, service, annotator, reviewer, senior)
}

async fn label(app: &TestApp, pid: i64, id: i64, token: &str, l: &str) -> (u16, Value) {
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{id}/labels"),
            token,
            json!({ "label": l }),
        )
        .await;
    (s.as_u16(), v)
}

async fn by_external(app: &TestApp, pid: i64, ext: &str) -> Value {
    app.get(
        &format!("/api/v1/projects/{pid}/items/by-external/{ext}"),
        ADMIN,
    )
    .await
    .1
}

fn live_labels(item: &Value) -> usize {
    item["labels"].as_array().map_or(0, |l| l.len())
}

async fn decided_items_keep_their_tier(app: TestApp) {
    let (pid, service, annotator, reviewer, senior) = setup(&app).await;
    let (s, out) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"enqueue": true, "items": [
                {"external_id": "big", "features": [60.0], "meta": {"amount": 72000}},
                {"external_id": "sure", "features": [60.0]},
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["predictions"][0]["route"], "escalate", "{out}");
    assert_eq!(out["predictions"][1]["route"], "auto", "{out}");
    let big = out["predictions"][0]["item_id"].as_i64().unwrap();
    let sure = by_external(&app, pid, "sure").await["id"].as_i64().unwrap();

    // A senior decides the escalated case.
    let (s, v) = label(&app, pid, big, &senior, "spam").await;
    assert_eq!(s, 201, "{v}");
    // Neither an annotator nor an ordinary reviewer can change it.
    let (s, v) = label(&app, pid, big, &annotator, "ham").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (s, v) = label(&app, pid, big, &reviewer, "ham").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let item = by_external(&app, pid, "big").await;
    assert_eq!(item["label"], "spam", "{item}");
    // Another senior can, and it is an override, with one live label.
    let (s, v) = label(&app, pid, big, ADMIN, "ham").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["source"], "override", "{v}");
    let item = by_external(&app, pid, "big").await;
    assert_eq!(
        (item["label"].as_str(), live_labels(&item)),
        (Some("ham"), 1),
        "{item}"
    );

    // The model's auto decision: not an annotator's to change.
    let (s, v) = label(&app, pid, sure, &annotator, "ham").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    assert_eq!(by_external(&app, pid, "sure").await["decided_by"], "model");
    let (s, v) = label(&app, pid, sure, &reviewer, "ham").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["source"], "override", "{v}");
    let item = by_external(&app, pid, "sure").await;
    assert_eq!(
        (item["label"].as_str(), item["decided_by"].as_str()),
        (Some("ham"), Some("human")),
        "{item}"
    );
}

both_backends!(
    decided_items_change_only_by_their_tier,
    super::decided_items_keep_their_tier
);

async fn one_live_label(app: TestApp) {
    let (pid, _, annotator, reviewer, _) = setup(&app).await;
    let other = app.token("ann2", "annotator").await;
    let rows: Vec<Value> = (0..4)
        .map(|i| json!({"external_id": format!("u{i}"), "features": [i as f64]}))
        .collect();
    app.import_json(pid, &rows).await;
    let id = by_external(&app, pid, "u1").await["id"].as_i64().unwrap();
    let (s, v) = label(&app, pid, id, &annotator, "ham").await;
    assert_eq!(s, 201, "{v}");
    // Someone else's label is not another annotator's to replace.
    let (s, v) = label(&app, pid, id, &other, "spam").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    // Its author corrects it: still one live label.
    let (s, v) = label(&app, pid, id, &annotator, "spam").await;
    assert_eq!(s, 201, "{v}");
    let item = by_external(&app, pid, "u1").await;
    assert_eq!(
        (item["label"].as_str(), live_labels(&item)),
        (Some("spam"), 1),
        "{item}"
    );
    // A reviewer overrides it, recorded as such.
    let (s, v) = label(&app, pid, id, &reviewer, "ham").await;
    assert_eq!((s, v["source"].as_str()), (201, Some("override")), "{v}");
    let item = by_external(&app, pid, "u1").await;
    assert_eq!(live_labels(&item), 1, "{item}");

    // Two annotators racing for the same unleased item: one label wins,
    // the other is refused, never two live labels.
    let id = by_external(&app, pid, "u2").await["id"].as_i64().unwrap();
    let (a, b) = tokio::join!(
        label(&app, pid, id, &annotator, "ham"),
        label(&app, pid, id, &other, "spam")
    );
    let mut codes = [a.0, b.0];
    codes.sort();
    assert_eq!(codes, [201, 409], "{a:?} {b:?}");
    assert_eq!(live_labels(&by_external(&app, pid, "u2").await), 1);
}

both_backends!(one_live_label_per_item, super::one_live_label);

/// A service enqueueing a case under an external id that names an item
/// with other content gets 409, and nothing is stored; the same case sent
/// again (a retry) finds its item.
async fn enqueue_other_content(app: TestApp) {
    let (pid, service, ..) = setup(&app).await;
    let path = format!("/api/v1/projects/{pid}/predict");
    // seed3 is a pool item with features [-33.0].
    let (s, v) = app
        .post(
            &path,
            &service,
            json!({"enqueue": true, "items": [
            {"external_id": "seed3", "features": [50.0]}]}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    // One id twice in a batch with different content: refused whole.
    let (s, v) = app
        .post(
            &path,
            &service,
            json!({"enqueue": true, "items": [
            {"external_id": "c1", "features": [1.0]},
            {"external_id": "c1", "features": [2.0]}]}),
        )
        .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let (s, _) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/c1"),
            ADMIN,
        )
        .await;
    assert_eq!(s, 404, "nothing of the refused batch is stored");
    // A retry of the same case finds the same item.
    let case = json!({"enqueue": true, "items": [{"external_id": "c2", "features": [0.5]}]});
    let (s, a) = app.post(&path, &service, case.clone()).await;
    assert_eq!(s, 200, "{a}");
    let (s, b) = app.post(&path, &service, case).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        a["predictions"][0]["item_id"],
        b["predictions"][0]["item_id"]
    );
    assert!(a["predictions"][0]["item_id"].is_i64());
}

both_backends!(
    enqueue_never_hands_back_other_content,
    super::enqueue_other_content
);

/// An unknown label of a megabyte comes back cut in the error, not whole;
/// a CSV export does not hand spreadsheet formulas over.
async fn echoes_and_formulas(app: TestApp) {
    let (pid, ..) = setup(&app).await;
    let rows = vec![
        json!({"external_id": "=HYPERLINK(\"http://x\")", "features": [1.0], "label": "ham"}),
        json!({"external_id": "plain", "features": [2.0], "label": "spam"}),
    ];
    app.import_json(pid, &rows).await;
    let id = by_external(&app, pid, "plain").await["id"]
        .as_i64()
        .unwrap();
    let huge = "x".repeat(1 << 20);
    let (s, v) = label(&app, pid, id, ADMIN, &huge).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.len() < 1_500, "{} bytes echoed", msg.len());
    let r = app
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/projects/{pid}/export?format=csv"),
            Some(ADMIN),
            None,
        )
        .await;
    let csv = r.text().await.unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");
}

both_backends!(no_floods_no_formulas, super::echoes_and_formulas);

/// Extreme finite features (±1e300) must not give an active model that
/// answers NaN: the training is refused and nothing is activated.
async fn extreme_features(app: TestApp) {
    let pid = app
        .project(json!({"name": "huge", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..30)
        .map(|i| {
            let x = if i % 2 == 0 { 1e300 } else { -1e300 };
            json!({"external_id": format!("h{i}"), "features": [x, i as f64],
                   "label": if i % 2 == 0 { "a" } else { "b" }})
        })
        .collect();
    app.import_json(pid, &rows).await;
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    if s == 201 {
        // A model that did train must answer finite confidences.
        let (s, out) = app
            .post(
                &format!("/api/v1/projects/{pid}/predict"),
                ADMIN,
                json!({"items": [{"features": [1e300, 3.0]}, {"features": [0.0, 1.0]}]}),
            )
            .await;
        assert_eq!(s, 200, "{out}");
        for p in out["predictions"].as_array().unwrap() {
            assert!(
                p["confidence"].as_f64().is_some_and(f64::is_finite),
                "{out}"
            );
        }
    } else {
        assert_eq!(
            (s.as_u16(), v["error"]["code"].as_str()),
            (409, Some("conflict")),
            "{v}"
        );
        let (s, _) = app
            .get(&format!("/api/v1/projects/{pid}/models/active"), ADMIN)
            .await;
        assert_eq!(s, 404, "no model was activated");
    }
}

both_backends!(extreme_features_never_serve_nan, super::extreme_features);

/// The last live admin token cannot be revoked (nobody could manage the
/// server after it); with a second admin, it can.
async fn last_admin(app: TestApp) {
    let (_, list) = app.get("/api/v1/tokens", ADMIN).await;
    let admin_id = list
        .as_array()
        .or_else(|| list["tokens"].as_array())
        .unwrap()
        .iter()
        .find(|t| t["role"] == "admin")
        .and_then(|t| t["id"].as_i64())
        .unwrap();
    let revoke = |id: i64, token: String| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                Some(&token),
                None,
            )
            .await
            .status()
            .as_u16()
        }
    };
    assert_eq!(revoke(admin_id, ADMIN.into()).await, 409);
    assert_eq!(app.get("/api/v1/me", ADMIN).await.0, 200, "still an admin");
    let second = app.token("admin2", "admin").await;
    assert_eq!(revoke(admin_id, second.clone()).await, 204);
    assert_eq!(app.get("/api/v1/me", ADMIN).await.0, 401);
}

both_backends!(the_last_admin_stays, super::last_admin);

/// Gold items read like the review items they are mixed with, in every
/// view a reviewer reaches: listed under `status=review`, with the active
/// model's version on their suggestion (the attack run told them apart by
/// both).
async fn gold_undetectable(app: TestApp) {
    let (pid, service, _, reviewer, _) = setup(&app).await;
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/gold"),
            ADMIN,
            json!([{"external_id": "g1", "features": [0.2], "label": "spam", "suggest": "ham"}]),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, out) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"enqueue": true, "items": [{"external_id": "real", "features": [0.3]}]}),
        )
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["predictions"][0]["route"], "review", "{out}");
    let (s, v) = app
        .get(
            &format!("/api/v1/projects/{pid}/items?status=review"),
            &reviewer,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    let find = |ext: &str| {
        items
            .iter()
            .find(|i| i["external_id"] == ext)
            .unwrap_or_else(|| panic!("{ext} not listed under status=review: {v}"))
            .clone()
    };
    let (gold, real) = (find("g1"), find("real"));
    assert_eq!(gold["status"], real["status"]);
    assert_eq!(
        gold["prediction"]["model_version"], real["prediction"]["model_version"],
        "{gold} {real}"
    );
    assert!(gold["prediction"]["model_version"].is_i64(), "{gold}");
    let keys = |i: &Value| {
        let mut k: Vec<String> = i.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&gold), keys(&real));
}

both_backends!(gold_items_pass_for_review_items, super::gold_undetectable);
