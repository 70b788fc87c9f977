//! Every error code of docs/api.md, from the outside; a failed request changes nothing.
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
        json!({"items": 51, "unlabeled": 47, "labeled": 4, "review": 0, "escalated": 0, "auto": 0, "gold": 0})
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

/// Bodies of several insert chunks (the server parses one chunk while it
/// stores the one before): a bad row late in the body still refuses all of
/// it, including the feature length the first rows would have fixed;
/// duplicates and labels across chunk boundaries count as in a small body.
async fn long_import(app: TestApp) {
    let pid = app
        .project(json!({"name": "long", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let url = format!("/api/v1/projects/{pid}/items");
    let row =
        |i: usize, feats: &str| format!("{{\"external_id\":\"r{i}\",\"features\":[{feats}]}}");
    let ndjson: String = (1..=3500)
        .map(|i| row(i, if i == 3200 { "1" } else { "1,2" }) + "\n")
        .collect();
    let mut csv = String::from("external_id,x,y\n");
    for i in 1..=2500 {
        csv += &format!("c{i},{},2\n", if i == 2400 { "x" } else { "1" });
    }
    let json_rows: Vec<Value> = (1..=1500)
        .map(|i| json!({"external_id": format!("j{i}"), "features": [1.0, 2.0], "label": if i == 1499 { "zzz" } else { "a" }}))
        .collect();
    for (ct, body, at) in [
        ("application/x-ndjson", ndjson, "row 3200"),
        ("text/csv", csv, "row 2400"),
        (
            "application/json",
            serde_json::to_string(&json_rows).unwrap(),
            "row 1499",
        ),
    ] {
        let (s, v) = app.raw_post(&url, ADMIN, ct, body.into_bytes()).await;
        assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{ct}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(at),
            "{v} should name {at}"
        );
        assert_eq!(app.counts(pid).await["items"], 0, "{ct}: nothing stays");
    }
    // No feature length was fixed: three numbers are as welcome as two were.
    let ndjson: String = (1..=2600)
        .map(|i| {
            // Row 2100 repeats row 5's id; rows 2001–2010 carry labels.
            let id = if i == 2100 { 5 } else { i };
            let label = if (2001..=2010).contains(&i) {
                ",\"label\":\"b\""
            } else {
                ""
            };
            format!("{{\"external_id\":\"r{id}\",\"features\":[1,2,3]{label}}}\n")
        })
        .collect();
    let (s, v) = app
        .raw_post(&url, ADMIN, "application/x-ndjson", ndjson.into_bytes())
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"inserted": 2599, "duplicates": 1, "labeled": 10}));
    let c = app.counts(pid).await;
    assert_eq!(
        (c["items"].as_i64(), c["labeled"].as_i64()),
        (Some(2599), Some(10))
    );
    let (s, v) = app
        .raw_post(
            &url,
            ADMIN,
            "application/x-ndjson",
            row(9999, "1,2").into_bytes(),
        )
        .await;
    assert_eq!(
        (s.as_u16(), code(&v)),
        (400, "invalid_request"),
        "the length is now 3"
    );
}

both_backends!(long_import_is_all_or_nothing, super::long_import);

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

/// What a failed request must leave as it was: projects (with counts),
/// tokens, items, models.
async fn snapshot(app: &TestApp, pids: &[i64]) -> Value {
    let mut out = vec![
        app.get("/api/v1/projects", ADMIN).await.1,
        app.get("/api/v1/tokens", ADMIN).await.1,
    ];
    for pid in pids {
        let mut page = app
            .get(&format!("/api/v1/projects/{pid}/items?limit=1000"), ADMIN)
            .await
            .1;
        // Predictions move when a background rescore ends: not ours to freeze.
        for it in page["items"].as_array_mut().unwrap() {
            it["prediction"] = Value::Null;
        }
        out.push(page);
        out.push(
            app.get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
                .await
                .1,
        );
    }
    Value::Array(out)
}

/// POSTs `mib` MiB of spaces as NDJSON with `Transfer-Encoding: chunked`;
/// the writer runs apart so an early answer is read whatever the writes do.
async fn chunked_post(app: &TestApp, path: &str, mib: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = app.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let mut w = conn.try_clone().unwrap();
        let writer = std::thread::spawn(move || {
            w.write_all(head.as_bytes())?;
            // Good rows (one item, repeated): the server inserts the first
            // chunks while later ones arrive, and must undo them.
            let line = b"{\"external_id\":\"chunked\",\"features\":[1,2]}\n";
            let chunk = line.repeat((1 << 20) / line.len());
            for _ in 0..mib {
                write!(w, "{:x}\r\n", chunk.len())?;
                w.write_all(&chunk)?;
                w.write_all(b"\r\n")?;
            }
            w.write_all(b"0\r\n\r\n")
        });
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                });
                if len.is_some_and(|n| body.len() >= n) {
                    break;
                }
            }
        }
        let _ = conn.shutdown(std::net::Shutdown::Both);
        let _ = writer.join();
        let text = String::from_utf8_lossy(&answer).to_string();
        let (head, body) = text.split_once("\r\n\r\n").expect("an answer");
        let status = head[9..12].parse().unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

/// Bad input of every kind: a stable code, and nothing changed.
async fn bad_input(app: TestApp) {
    let pid = app
        .project(json!({"name": "bad", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let other = app
        .project(json!({"name": "other", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let ann = app.token("ann", "annotator").await;
    let svc = app.token("svc", "service").await;
    let rows: Vec<Value> = (0..10)
        .map(|i| json!({"external_id": format!("b{i}"), "features": [i as f64, 1.0],
                         "label": if i < 4 { Some(if i % 2 == 0 { "a" } else { "b" }) } else { None }}))
        .collect();
    app.import_json(pid, &rows).await;
    app.train(pid).await;
    app.import_json(other, &[json!({"external_id": "o1", "text": "hello"})])
        .await;
    let item = app
        .get(
            &format!("/api/v1/projects/{pid}/items/by-external/b7"),
            ADMIN,
        )
        .await
        .1["id"]
        .as_i64()
        .unwrap();
    let (s, label) = app
        .post(
            &format!("/api/v1/projects/{pid}/items/{item}/labels"),
            &ann,
            json!({"label": "a"}),
        )
        .await;
    assert_eq!(s, 201, "{label}");
    let label = label["id"].as_i64().unwrap();

    // The import has its own, larger limit: a body over the JSON limit (4 MiB
    // in tests) but under the import limit (8 MiB) is accepted there.
    let big_rows: Vec<Value> = (0..20_000)
        .map(|i| json!({"external_id": format!("big{i}"), "features": [i as f64, 0.5], "meta": {"pad": "x".repeat(200)}}))
        .collect();
    let big = serde_json::to_vec(&big_rows).unwrap();
    assert!(big.len() > 4 << 20 && big.len() < 8 << 20, "{}", big.len());
    let (s, v) = app
        .raw_post(
            &format!("/api/v1/projects/{pid}/items"),
            ADMIN,
            "application/json",
            big.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["inserted"], 20_000);

    let before = snapshot(&app, &[pid, other]).await;
    let items = format!("/api/v1/projects/{pid}/items");
    let predict = format!("/api/v1/projects/{pid}/predict");
    let labels = format!("/api/v1/projects/{pid}/items/{item}/labels");
    let project = format!("/api/v1/projects/{pid}");
    let next = format!("/api/v1/projects/{pid}/queue/next");
    let release = format!("/api/v1/projects/{pid}/queue/release");
    let post = |path: &str, token: &str, ct: &str, body: Vec<u8>| {
        let r = app
            .client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .header("Content-Type", ct)
            .body(body);
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    // 413: every JSON body over its limit, whatever the route.
    let huge = {
        let mut b = b"{\"name\": \"".to_vec();
        b.extend(std::iter::repeat_n(b'x', 5 << 20));
        b.extend(b"\", \"labels\": [\"a\", \"b\"]}");
        b
    };
    for (path, token) in [
        ("/api/v1/projects", ADMIN),
        (predict.as_str(), svc.as_str()),
        (labels.as_str(), ann.as_str()),
    ] {
        let (s, v) = post(path, token, "application/json", huge.clone()).await;
        assert_eq!((s, code(&v)), (413, "payload_too_large"), "{path}");
    }
    // … and the import over its own limit, also when sent chunked (no length).
    let counted = app.counts(pid).await;
    let (s, v) = chunked_post(&app, &items, 9).await;
    assert_eq!((s, code(&v)), (413, "payload_too_large"));
    assert_eq!(app.counts(pid).await, counted, "nothing of it stays");

    // 400: deeply nested JSON is refused, not a stack overflow.
    let deep = "[".repeat(100_000);
    let deep_meta = format!("{{\"external_id\": \"d\", \"text\": \"t\", \"meta\": {deep}}}");
    for (path, token, ct, body) in [
        ("/api/v1/projects", ADMIN, "application/json", deep.clone()),
        ("/api/v1/tokens", ADMIN, "application/json", deep.clone()),
        (items.as_str(), ADMIN, "application/json", deep.clone()),
        (
            items.as_str(),
            ADMIN,
            "application/json",
            format!("[{deep_meta}]"),
        ),
        (
            items.as_str(),
            ADMIN,
            "application/x-ndjson",
            deep_meta.clone(),
        ),
        (
            items.as_str(),
            ADMIN,
            "text/csv",
            format!("external_id,text,meta\nd,t,\"{deep}\"\n"),
        ),
        (
            predict.as_str(),
            svc.as_str(),
            "application/json",
            format!("{{\"items\": [{deep_meta}]}}"),
        ),
        (
            labels.as_str(),
            ann.as_str(),
            "application/json",
            deep.clone(),
        ),
        (
            next.as_str(),
            ann.as_str(),
            "application/json",
            deep.clone(),
        ),
        (
            release.as_str(),
            ann.as_str(),
            "application/json",
            deep.clone(),
        ),
    ] {
        let (s, v) = post(path, token, ct, body.into_bytes()).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{path} {ct}");
    }
    let r = app
        .client
        .patch(format!("{}{project}", app.base))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body(format!("{{\"routing\": {{\"rules\": {deep}}}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // 400: wrong types, non-finite numbers, wrong lengths, bad encodings;
    // an import names its row.
    for (ct, body, row) in [
        ("application/json", r#"[{"external_id": "n1", "features": ["1", 2]}]"#, "row 1"),
        ("application/json", r#"[{"external_id": 5, "features": [1, 2]}]"#, "row 1"),
        ("application/json", r#"[{"external_id": "n1", "features": [1, 2]}, {"external_id": "n2", "features": [1e999, 2]}]"#, "line 1"),
        ("application/json", r#"[{"external_id": "n1", "features": [-1e999, 2]}]"#, "line 1"),
        ("application/json", r#"[{"external_id": "n1", "features": [NaN, 2]}]"#, "line 1"),
        ("application/json", r#"[{"external_id": "n1", "features": [1, 2, 3]}]"#, "row 1"),
        ("application/json", r#"[{"external_id": "n1", "features": [1, 2], "label": "c"}]"#, "row 1"),
        ("application/x-ndjson", "{\"external_id\":\"n1\",\"features\":[1,2]}\n{\"external_id\":\"n2\",\"features\":[Infinity,2]}\n", "row 2"),
        ("application/x-ndjson", "{\"external_id\":\"n1\",\"features\":[1,2]}\n{\"external_id\":\"n2\",\"features\":1}\n", "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,2\nn2,-inf,2\n", "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,2\nn2,Infinity,2\n", "row 2"),
        ("text/csv", "external_id,features\nn1,1 2\nn2,1 nan\n", "row 2"),
        ("text/csv", "external_id,features\nn1,1 2\nn2,1 2 3\n", "row 2"),
        ("text/csv", "external_id,a,b\nn1,1,2\nn2,1\n", "row 2"),
        ("text/csv", "external_id,a,b,label\nn1,1,2,a\nn2,1,2,c\n", "row 2"),
        ("text/csv", "external_id,a,b,meta\nn1,1,2,{not json\n", "row 1"),
    ] {
        let (s, v) = post(&items, ADMIN, ct, body.as_bytes().to_vec()).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{body}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(row), "{msg:?} should name {row}");
    }
    for (ct, body) in [
        ("text/csv", b"external_id,text,a,b\nn1,fine,1,2\nn2,\xff\xfe,1,2\n".to_vec()),
        ("application/x-ndjson", b"{\"external_id\":\"n1\",\"text\":\"ok\",\"features\":[1,2]}\n{\"external_id\":\"n2\",\"text\":\"\xff\"}\n".to_vec()),
    ] {
        let (s, v) = post(&items, ADMIN, ct, body).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{ct}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains("row 2"), "invalid UTF-8 names its row: {msg:?}");
    }
    let (s, v) = post(
        &items,
        ADMIN,
        "application/json",
        b"[{\"external_id\":\"\xff\"}]".to_vec(),
    )
    .await;
    assert_eq!((s, code(&v)), (400, "invalid_request"));

    for (path, token, body) in [
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": [{"features": [1e999, 1]}]}"#,
        ),
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": [{"features": ["x", 1]}]}"#,
        ),
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": [{"features": [1, 2, 3]}]}"#,
        ),
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": [{"features": [1, 2], "label": "a"}]}"#,
        ),
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": [{"features": [1, 2]}], "enqueue": "yes"}"#,
        ),
        (
            predict.as_str(),
            svc.as_str(),
            r#"{"items": {"features": [1, 2]}}"#,
        ),
        (labels.as_str(), ann.as_str(), r#"{"label": 1}"#),
        (
            labels.as_str(),
            ann.as_str(),
            r#"{"label": "a", "duration_ms": "5"}"#,
        ),
        (
            labels.as_str(),
            ann.as_str(),
            r#"{"label": "a", "duration_ms": 1e999}"#,
        ),
        (labels.as_str(), ann.as_str(), r#"{"label": "c"}"#),
        (
            labels.as_str(),
            ann.as_str(),
            r#"{"label": "a", "colour": "red"}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": ["a", "b"], "routing": {"auto_threshold": 1e999}}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": ["a", "b"], "routing": {"auto_threshold": "0.9"}}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": [1, 2]}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": ["a", "b"], "lease_seconds": -1}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": ["a", "b"], "retrain_cron": "0 0 25 * * *"}"#,
        ),
        (
            "/api/v1/projects",
            ADMIN,
            r#"{"name": "n", "labels": ["a", "b"], "retrain_cron": 5}"#,
        ),
        ("/api/v1/tokens", ADMIN, r#"{"name": "n", "role": 5}"#),
        (
            "/api/v1/tokens",
            ADMIN,
            r#"{"name": "n", "role": "annotator", "senior": true}"#,
        ),
        (
            "/api/v1/tokens",
            ADMIN,
            r#"{"name": "n", "role": "reviewer", "senior": "yes"}"#,
        ),
        (next.as_str(), ann.as_str(), r#"{"n": -1}"#),
        (next.as_str(), ann.as_str(), r#"{"n": 0}"#),
        (release.as_str(), ann.as_str(), r#"{"item_ids": ["x"]}"#),
    ] {
        let (s, v) = post(path, token, "application/json", body.as_bytes().to_vec()).await;
        assert_eq!((s, code(&v)), (400, "invalid_request"), "{path} {body}");
    }
    for body in [
        json!({"retrain_cron": "nonsense"}),
        json!({"min_new_labels": "ten"}),
        json!({"routing": {"review_threshold": 1e300, "auto_threshold": 0.5}}),
        json!({"strategy": 3}),
    ] {
        let (s, v) = app
            .json(Method::PATCH, &project, ADMIN, Some(body.clone()))
            .await;
        assert_eq!((s.as_u16(), code(&v)), (400, "invalid_request"), "{body}");
    }

    // 409: a duplicate name, on create and on rename.
    let (s, v) = app
        .post(
            "/api/v1/projects",
            ADMIN,
            json!({"name": "other", "labels": ["x", "y"]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (409, "conflict"));
    let (s, v) = app
        .json(
            Method::PATCH,
            &project,
            ADMIN,
            Some(json!({"name": "other"})),
        )
        .await;
    assert!(
        (s.as_u16(), code(&v)) == (409, "conflict")
            || (s.as_u16(), code(&v)) == (400, "invalid_request"),
        "rename onto an existing name: {s} {v}"
    );

    // 404: unknown ids everywhere, and ids of another project.
    for (method, path, token) in [
        (
            Method::GET,
            "/api/v1/projects/9999/items".to_string(),
            ADMIN,
        ),
        (
            Method::GET,
            "/api/v1/projects/9999/stats".to_string(),
            ADMIN,
        ),
        (
            Method::GET,
            "/api/v1/projects/9999/export".to_string(),
            ADMIN,
        ),
        (
            Method::GET,
            "/api/v1/projects/9999/models".to_string(),
            ADMIN,
        ),
        (
            Method::POST,
            "/api/v1/projects/9999/train?wait=true".to_string(),
            ADMIN,
        ),
        (
            Method::POST,
            "/api/v1/projects/9999/queue/next".to_string(),
            ann.as_str(),
        ),
        (Method::PATCH, "/api/v1/projects/9999".to_string(), ADMIN),
        (Method::DELETE, "/api/v1/tokens/9999".to_string(), ADMIN),
        (
            Method::POST,
            format!("/api/v1/projects/{pid}/items/99999/labels"),
            ann.as_str(),
        ),
        (
            Method::GET,
            format!("/api/v1/projects/{other}/items/{item}"),
            ADMIN,
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{other}/items/{item}/labels"),
            ADMIN,
        ),
        (
            Method::DELETE,
            format!("/api/v1/projects/{other}/labels/{label}"),
            ADMIN,
        ),
    ] {
        let body = match method {
            Method::POST if path.contains("/labels") => Some(json!({"label": "a"})),
            Method::POST => Some(json!({})),
            Method::PATCH => Some(json!({"min_new_labels": 5})),
            _ => None,
        };
        let (s, v) = app.json(method.clone(), &path, token, body).await;
        assert_eq!(
            (s.as_u16(), code(&v)),
            (404, "not_found"),
            "{method} {path}"
        );
    }
    let (s, v) = app
        .post(
            "/api/v1/projects/9999/predict",
            &svc,
            json!({"items": [{"text": "x"}]}),
        )
        .await;
    assert_eq!((s.as_u16(), code(&v)), (404, "not_found"));

    let (s, _) = app.get("/healthz", ADMIN).await;
    assert_eq!(s, 200, "the server survived all of it");
    assert_eq!(
        snapshot(&app, &[pid, other]).await,
        before,
        "failed requests changed nothing"
    );
}

both_backends!(bad_input_gets_a_code_and_changes_nothing, super::bad_input);

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
