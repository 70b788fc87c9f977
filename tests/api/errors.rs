//! Every error code of API.md, from the outside; a failed request changes nothing.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

async fn error_codes(app: TestApp) {
    let annotator = app.token("ann", "annotator").await;
    let other = app.token("bob", "annotator").await;
    let service = app.token("svc", "service").await;

    // 401: no token, unknown token, malformed header.
    let r = app.call(Method::GET, "/api/v1/projects", None, None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(&r.json().await.unwrap()), "unauthorized");
    let (s, v) = app.get("/api/v1/projects", "nope").await;
    assert_eq!((s.as_u16(), code(&v)), (401, "unauthorized"));

    // 403: annotator creating a project, service taking work.
    let (s, v) = app
        .post(
            "/api/v1/projects",
            &annotator,
            json!({"name": "x", "labels": ["a", "b"]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (403, "forbidden"));

    let pid = app
        .project(json!({"name": "p", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &service,
            json!({}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (403, "forbidden"));

    // 409: duplicate project name.
    let (s, v) = app
        .post(
            "/api/v1/projects",
            ADMIN,
            json!({"name": "p", "labels": ["a", "b"]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (409, "conflict"));

    // 400: bad project settings.
    for body in [
        json!({"name": "q", "labels": ["a"]}),
        json!({"name": "q", "labels": ["a", "a"]}),
        json!({"name": "q", "labels": ["a", "b"], "strategy": "best"}),
        json!({"name": "q", "labels": ["a", "b"], "retrain_cron": "* * * * *"}),
        json!({"name": "q", "labels": ["a", "b"], "retrain_cron": "banana"}),
        json!({"name": "q", "labels": ["a", "b"], "routing": {"auto_threshold": 0.5, "review_threshold": 0.9}}),
        json!({"name": "q", "labels": ["a", "b"], "min_new_labels": 0}),
        json!({"name": "q", "labels": "a,b"}),
        json!({"name": "", "labels": ["a", "b"]}),
    ] {
        let (s, v) = app.post("/api/v1/projects", ADMIN, body.clone()).await;
        assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{body}");
    }
    let r = app
        .client
        .post(format!("{}/api/v1/projects", app.base))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.json().await.unwrap()), "invalid_request");
    let (s, v) = app
        .json(
            Method::PATCH,
            &format!("/api/v1/projects/{pid}"),
            ADMIN,
            Some(json!({"retrain_cron": "61 * * * * *"})),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));

    // 404s.
    let (s, v) = app.get("/api/v1/projects/9999", ADMIN).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));
    let (s, v) = app
        .get(&format!("/api/v1/projects/{pid}/items/9999"), ADMIN)
        .await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));
    let (s, v) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/nope"),
            ADMIN,
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));
    let (s, v) = app.get("/api/v1/nothing-here", ADMIN).await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));
    let (s, v) = app
        .get(&format!("/api/v1/projects/{pid}/models/active"), ADMIN)
        .await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));
    let (s, v) = app.get("/api/v1/projects/abc", ADMIN).await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));

    // Imports: each bad batch is refused whole, naming the row, and changes nothing.
    let good = json!({"external_id": "g1", "features": [1.0, 2.0]});
    app.import_json(pid, &[good]).await;
    let before = app.counts(pid).await;
    let url = format!("/api/v1/projects/{pid}/items");
    for (ct, body, row) in [
        ("application/json", json!([{"external_id": "n1", "features": [1.0, 2.0]}, {"external_id": "n2", "features": [1.0]}]).to_string(), "row 2"),
        ("application/json", json!([{"external_id": "n1", "text": "x", "label": "zzz"}]).to_string(), "row 1"),
        ("application/json", json!([{"external_id": "n1"}]).to_string(), "row 1"),
        ("application/json", json!([{"external_id": "n1", "text": 5}]).to_string(), "row 1"),
        ("application/x-ndjson", "{\"external_id\":\"n1\",\"features\":[1,2]}\n{\"external_id\":\"n3\",\"features\":[1,2],\"colour\":1}\n".to_string(), "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,2\nn2,NaN,2\n".to_string(), "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,2\nn2,inf,2\n".to_string(), "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,x\n".to_string(), "row 1"),
    ] {
        let (s, v) = app.raw_post(&url, ADMIN, ct, body.clone().into_bytes()).await;
        assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{body}");
        assert!(v["error"]["message"].as_str().unwrap().contains(row), "{v} should name {row}");
    }
    let (s, v) = app
        .raw_post(
            &url,
            ADMIN,
            "text/csv",
            b"external_id,text\nn1,\xff\xfe\n".to_vec(),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
    let (s, v) = app
        .raw_post(&url, ADMIN, "text/plain", b"hello".to_vec())
        .await;
    assert_eq!((s.as_u16(), code(&v)), (415, "unsupported_media_type"));
    let big = vec![b' '; 9 * 1024 * 1024];
    let (s, v) = app.raw_post(&url, ADMIN, "application/json", big).await;
    assert_eq!((s.as_u16(), code(&v)), (413, "payload_too_large"));
    assert_eq!(
        app.counts(pid).await,
        before,
        "failed imports must change nothing"
    );

    // Labels: unknown label, bad duration, lease held by someone else, undo twice.
    let item = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &annotator,
            json!({"n": 1}),
        )
        .await
        .1["items"][0]["item"]["id"]
        .as_i64()
        .unwrap();
    let lurl = format!("/api/v1/projects/{pid}/items/{item}/labels");
    let (s, v) = app.post(&lurl, &annotator, json!({"label": "zzz"})).await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
    let (s, v) = app
        .post(&lurl, &annotator, json!({"label": "a", "duration_ms": -5}))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
    let (s, v) = app.post(&lurl, &other, json!({"label": "a"})).await;
    assert_eq!((s.as_u16(), code(&v)), (409, "conflict"));
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            &annotator,
            json!({"n": 51}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
    let (s, label) = app.post(&lurl, &annotator, json!({"label": "a"})).await;
    assert_eq!(s, 201);
    let del = format!("/api/v1/projects/{pid}/labels/{}", label["id"]);
    let (s, v) = app.json(Method::DELETE, &del, &other, None).await;
    assert_eq!((s.as_u16(), code(&v)), (403, "forbidden"));
    let (s, _) = app.json(Method::DELETE, &del, &annotator, None).await;
    assert_eq!(s, 204);
    let (s, v) = app.json(Method::DELETE, &del, &annotator, None).await;
    assert_eq!((s.as_u16(), code(&v)), (409, "conflict"));
    let (s, v) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/projects/{pid}/labels/99999"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));

    // Models: too few labels to train; predict before a model; bad predict input.
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (409, "not_enough_labels"));
    let (s, v) = app
        .post(&format!("/api/v1/projects/{pid}/train"), ADMIN, json!({}))
        .await;
    assert_eq!((s.as_u16(), code(&v)), (409, "not_enough_labels"));
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"items": [{"features": [1.0, 2.0]}]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (409, "no_model"));
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"items": [{"features": [1.0]}]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"items": []}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));

    // Revoked tokens stop working at once.
    let (_, list) = app.get("/api/v1/tokens", ADMIN).await;
    assert!(
        list.to_string().find("lp_").is_none(),
        "secrets never listed"
    );
    let svc_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "svc")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/tokens/{svc_id}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = app.get("/api/v1/projects", &service).await;
    assert_eq!((s.as_u16(), code(&v)), (401, "unauthorized"));
    let (s, v) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"name": "x", "role": "root"}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
}

both_backends!(every_error_code, super::error_codes);

async fn idempotent_import(app: TestApp) {
    let pid = app
        .project(json!({"name": "p", "labels": ["ham", "spam"], "retrain_cron": null}))
        .await;
    let rows: Vec<Value> = (0..50)
        .map(|i| json!({"external_id": format!("e{i}"), "text": format!("message number {i}"), "label": if i < 4 { Some(if i % 2 == 0 { "ham" } else { "spam" }) } else { None }}))
        .collect();
    let out = app.import_json(pid, &rows).await;
    assert_eq!(out, json!({"inserted": 50, "duplicates": 0, "labeled": 4}));
    let out = app.import_json(pid, &rows).await;
    assert_eq!(out, json!({"inserted": 0, "duplicates": 50, "labeled": 0}));
    // Duplicates inside one batch count too; CSV with a features column.
    let csv = "external_id,text,label\ne1,changed,spam\nc1,new one,\nc1,again,\n";
    let (s, out) = app
        .raw_post(
            &format!("/api/v1/projects/{pid}/items"),
            ADMIN,
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(out, json!({"inserted": 1, "duplicates": 2, "labeled": 0}));
    let (_, item) = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/e1"),
            ADMIN,
        )
        .await;
    assert_eq!(
        item["text"], "message number 1",
        "a duplicate leaves the item as it was"
    );
    assert_eq!(item["label"], "spam");
    assert_eq!(item["labels"][0]["source"], "import");
    let c = app.counts(pid).await;
    assert_eq!(
        c,
        json!({"items": 51, "unlabeled": 47, "labeled": 4, "review": 0, "escalated": 0, "auto": 0})
    );
    // Paging through items.
    let (_, page) = app
        .get(
            &format!("/api/v1/projects/{pid}/items?limit=20&status=unlabeled"),
            ADMIN,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
    let next = page["next"].as_i64().unwrap();
    let (_, page2) = app
        .get(
            &format!("/api/v1/projects/{pid}/items?limit=20&status=unlabeled&after={next}"),
            ADMIN,
        )
        .await;
    assert!(page2["items"][0]["id"].as_i64().unwrap() > next);
    let (s, v) = app
        .get(&format!("/api/v1/projects/{pid}/items?status=gone"), ADMIN)
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
}

both_backends!(reimport_is_idempotent, super::idempotent_import);

/// Errors the framework raises itself still come in our error body.
async fn framework_errors(app: TestApp) {
    let r = app
        .call(Method::PUT, "/api/v1/projects", Some(ADMIN), None)
        .await;
    assert!(r.status() == 405 || r.status() == 404, "{}", r.status());
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
    let pid = app
        .project(json!({"name": "fw", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (s, v) = app
        .raw_post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            ADMIN,
            "application/json",
            huge,
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (413, "payload_too_large"));
    let (s, v) = app
        .raw_post(
            &format!("/api/v1/projects/{pid}/queue/next"),
            ADMIN,
            "application/json",
            b"{\"n\": \"three\"}".to_vec(),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"));
}

both_backends!(framework_errors_use_our_body, super::framework_errors);

/// Fuzz finding: an item with features imported into a text project (or one
/// without into a feature project) made every later training fail with 500.
/// A project's items all have features or none has; a mixed batch is refused
/// and changes nothing.
async fn mixed_features(app: TestApp) {
    let pid = app
        .project(json!({"name": "mix", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let text: Vec<Value> = (0..6)
        .map(|i| json!({"external_id": format!("t{i}"), "text": format!("word{} common", i % 2), "label": if i % 2 == 0 { "a" } else { "b" }}))
        .collect();
    app.import_json(pid, &text).await;
    let before = app.counts(pid).await;
    let url = format!("/api/v1/projects/{pid}/items");
    let with_features = json!([{"external_id": "f1", "features": [1.0], "label": "a"}]);
    let (s, v) = app
        .raw_post(
            &url,
            ADMIN,
            "application/json",
            with_features.to_string().into_bytes(),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(app.counts(pid).await, before);
    let (_, p) = app.get(&format!("/api/v1/projects/{pid}"), ADMIN).await;
    assert_eq!(p["feature_len"], Value::Null);
    // Training still works, and predict refuses features the model lacks.
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/train?wait=true"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let service = app.token("svc-mix", "service").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &service,
            json!({"items": [{"text": "common", "features": [1.0]}], "enqueue": true}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(app.counts(pid).await, before);

    // The other way round: a feature project refuses items without features,
    // and a batch mixing both is refused whole.
    let fpid = app
        .project(json!({"name": "mix-f", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let url = format!("/api/v1/projects/{fpid}/items");
    let mixed = json!([{"external_id": "x1", "features": [1.0, 2.0]}, {"external_id": "x2", "text": "no features"}]);
    let (s, v) = app
        .raw_post(
            &url,
            ADMIN,
            "application/json",
            mixed.to_string().into_bytes(),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("row 2"),
        "{v}"
    );
    assert_eq!(app.counts(fpid).await["items"], 0);
    app.import_json(
        fpid,
        &[json!({"external_id": "x1", "features": [1.0, 2.0]})],
    )
    .await;
    let (s, v) = app
        .raw_post(
            &url,
            ADMIN,
            "text/csv",
            b"external_id,text\nx2,no features\n".to_vec(),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{v}");
    assert_eq!(app.counts(fpid).await["items"], 1);
}

both_backends!(
    mixing_items_with_and_without_features_is_refused,
    super::mixed_features
);
