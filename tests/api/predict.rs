//! Batch prediction from a NumPy array (`Content-Type: application/x-npy`):
//! the same answers as the JSON route, as JSON or as a structured array.
//! The `.npy` bytes are written and read here by hand, independently of the
//! server's codec.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use serde_json::{json, Value};

/// A `.npy` body: `descr`, `fortran_order`, `shape` and the raw data.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let order = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f64_c_order(rows: &[Vec<f64>]) -> Vec<u8> {
    let shape = format!("({}, {})", rows.len(), rows[0].len());
    let data: Vec<u8> = rows
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    npy("<f8", false, &shape, &data)
}

/// One record of the answer's structured array.
#[derive(Debug)]
struct Record {
    label: String,
    confidence: f64,
    route: String,
    probabilities: Vec<f64>,
}

/// Reads `[('label', '<Un'), ('confidence', '<f8'), ('route', '<U8'),
/// ('probabilities', '<f8', (k,))]` records.
fn records(body: &[u8]) -> Vec<Record> {
    assert_eq!(&body[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([body[8], body[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data aligned to 64 bytes");
    let header = std::str::from_utf8(&body[10..10 + len]).unwrap();
    let num = |after: &str, until: char| -> usize {
        let s = &header[header.find(after).unwrap() + after.len()..];
        s[..s.find(until).unwrap()].parse().unwrap()
    };
    let label_chars = num("('label', '<U", '\'');
    let k = num("('probabilities', '<f8', (", ',');
    let n = num("'shape': (", ',');
    assert!(
        header.contains("('confidence', '<f8'), ('route', '<U8')"),
        "{header}"
    );
    assert!(header.contains("'fortran_order': False"), "{header}");
    let text = |b: &[u8]| -> String {
        b.chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .take_while(|&c| c != 0)
            .map(|c| char::from_u32(c).unwrap())
            .collect()
    };
    let f = |b: &[u8]| f64::from_le_bytes(b.try_into().unwrap());
    let record = 4 * label_chars + 8 + 32 + 8 * k;
    let data = &body[10 + len..];
    assert_eq!(data.len(), n * record);
    data.chunks(record)
        .map(|r| {
            let (l, rest) = r.split_at(4 * label_chars);
            Record {
                label: text(l),
                confidence: f(&rest[..8]),
                route: text(&rest[8..40]),
                probabilities: rest[40..].chunks(8).map(f).collect(),
            }
        })
        .collect()
}

/// A plain `.npy` array's header and its `<f8` values.
fn plain_f64(body: &[u8]) -> (String, Vec<f64>) {
    assert_eq!(&body[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([body[8], body[9]]) as usize;
    let header = String::from_utf8(body[10..10 + len].to_vec()).unwrap();
    let values = body[10 + len..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (header, values)
}

async fn post_npy(
    app: &TestApp,
    pid: i64,
    token: &str,
    accept: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, Vec<u8>) {
    post_npy_query(app, pid, token, accept, "", body).await
}

async fn post_npy_query(
    app: &TestApp,
    pid: i64,
    token: &str,
    accept: &str,
    query: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, Vec<u8>) {
    let r = app
        .client
        .post(format!("{}/api/v1/projects/{pid}/predict{query}", app.base))
        .bearer_auth(token)
        .header("Content-Type", "application/x-npy")
        .header("Accept", accept)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let version = r
        .headers()
        .get("loupe-model-version")
        .map(|v| v.to_str().unwrap().to_string());
    (status, version, r.bytes().await.unwrap().to_vec())
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("a JSON error body");
    v["error"]["code"].as_str().unwrap().to_string()
}

/// Predictions counted in the project's routing volumes, all days and routes.
async fn routed(app: &TestApp, pid: i64) -> i64 {
    let (_, stats) = app
        .get(&format!("/api/v1/projects/{pid}/stats"), ADMIN)
        .await;
    stats["routing_volumes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| ["auto", "review", "escalate"].map(|r| d[r].as_i64().unwrap()))
        .sum()
}

async fn npy_batches(app: TestApp) {
    let svc = app.token("scorer", "service").await;
    let pid = app
        .project(json!({"name": "grid", "labels": ["low", "high"], "retrain_cron": null}))
        .await;
    // No model yet.
    let probe = f64_c_order(&[vec![0.0, 0.0, 0.0]]);
    let (s, _, b) = post_npy(&app, pid, &svc, "application/x-npy", probe.clone()).await;
    assert_eq!((s, error_code(&b).as_str()), (409, "no_model"));

    // Labelled points: "high" when x0 + x1 > 0, a little overlap near 0.
    let rows: Vec<Value> = (0..60)
        .map(|i| {
            let x0 = (i % 12) as f64 / 2.0 - 3.0;
            let x1 = (i / 12) as f64 - 2.0;
            let label = if x0 + x1 + if i % 7 == 0 { 1.0 } else { 0.0 } > 0.0 {
                "high"
            } else {
                "low"
            };
            json!({"external_id": format!("p{i}"), "features": [x0, x1, (i % 5) as f64], "label": label})
        })
        .collect();
    app.import_json(pid, &rows).await;
    let v = app.train(pid).await;
    let version = v["version"].as_i64().unwrap();

    // Points on a quarter grid: exact in float32 as well.
    let test: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            vec![
                (i % 8) as f64 * 0.75 - 3.0,
                (i / 8) as f64 * 0.5 - 1.25,
                (i % 3) as f64,
            ]
        })
        .collect();
    let items: Vec<Value> = test.iter().map(|f| json!({"features": f})).collect();
    let (s, reference) = app
        .post(
            &format!("/api/v1/projects/{pid}/predict"),
            &svc,
            json!({"items": items}),
        )
        .await;
    assert_eq!(s, 200, "{reference}");
    let reference = reference["predictions"].as_array().unwrap().clone();
    let routes: std::collections::BTreeSet<&str> = reference
        .iter()
        .map(|p| p["route"].as_str().unwrap())
        .collect();
    assert!(
        routes.len() >= 2,
        "the grid reaches more than one route: {routes:?}"
    );

    // float64, C order, answered as a structured array.
    let (s, v, body) = post_npy(&app, pid, &svc, "application/x-npy", f64_c_order(&test)).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(v, Some(version.to_string()));
    let recs = records(&body);
    assert_eq!(recs.len(), test.len());
    for (r, p) in recs.iter().zip(&reference) {
        assert_eq!(r.label, p["label"].as_str().unwrap());
        assert_eq!(r.route, p["route"].as_str().unwrap());
        assert!((r.confidence - p["confidence"].as_f64().unwrap()).abs() < 1e-9);
        for (i, l) in ["low", "high"].iter().enumerate() {
            let want = p["probabilities"][l].as_f64().unwrap();
            assert!((r.probabilities[i] - want).abs() < 1e-9, "{r:?} vs {p}");
        }
    }

    // A batch large enough to arrive in many pieces (over 1 MiB): each row
    // scored as the JSON route scores it, in order.
    let many: Vec<Vec<f64>> = (0..5000).map(|i| test[i % test.len()].clone()).collect();
    let (s, _, body) = post_npy(&app, pid, &svc, "application/x-npy", f64_c_order(&many)).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let recs = records(&body);
    assert_eq!(recs.len(), many.len());
    for (i, r) in recs.iter().enumerate() {
        let p = &reference[i % reference.len()];
        assert_eq!(r.label, p["label"].as_str().unwrap(), "row {i}");
        assert_eq!(r.route, p["route"].as_str().unwrap(), "row {i}");
        assert!((r.confidence - p["confidence"].as_f64().unwrap()).abs() < 1e-9);
    }

    // The probabilities alone, as predict_proba gives them: items × labels,
    // the same numbers as the records'.
    let (s, v, body) = post_npy_query(
        &app,
        pid,
        &svc,
        "application/x-npy",
        "?output=probabilities",
        f64_c_order(&many),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(v, Some(version.to_string()));
    let (header, values) = plain_f64(&body);
    assert!(
        header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (5000, 2), }"),
        "{header}"
    );
    let from_records: Vec<f64> = recs.iter().flat_map(|r| r.probabilities.clone()).collect();
    assert_eq!(values, from_records);
    // `?output=` needs an .npy answer, and names one of the two forms; a
    // refused request predicts nothing.
    let before = routed(&app, pid).await;
    for (query, accept) in [
        ("?output=probabilities", "application/json"),
        ("?output=logits", "application/x-npy"),
        ("?outputs=probabilities", "application/x-npy"),
    ] {
        let (s, _, b) = post_npy_query(&app, pid, &svc, accept, query, f64_c_order(&test)).await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (400, "invalid_request"),
            "{query} {accept}"
        );
    }
    assert_eq!(routed(&app, pid).await, before);

    // float32 in Fortran order (what numpy writes for a column-major
    // array), answered as JSON in the usual shape.
    let mut f32_fortran = Vec::new();
    for j in 0..3 {
        for row in &test {
            f32_fortran.extend_from_slice(&(row[j] as f32).to_le_bytes());
        }
    }
    let shape = format!("({}, 3)", test.len());
    let body = npy("<f4", true, &shape, &f32_fortran);
    let (s, _, body) = post_npy(&app, pid, &svc, "application/json", body).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["model_version"], version);
    let got = v["predictions"].as_array().unwrap();
    assert_eq!(got.len(), reference.len());
    for (g, p) in got.iter().zip(&reference) {
        assert_eq!(g["label"], p["label"]);
        assert_eq!(g["route"], p["route"]);
        assert_eq!(g["item_id"], Value::Null);
        let (a, b) = (
            g["confidence"].as_f64().unwrap(),
            p["confidence"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-9, "{g} vs {p}");
    }

    // Every prediction counts in the day's routing volumes (the 5,000 twice:
    // records, then probabilities).
    let total = routed(&app, pid).await;
    assert_eq!(total, 3 * test.len() as i64 + 2 * many.len() as i64);

    // Bad bodies: a clear 400, and nothing counted.
    let nan = f64_c_order(&[vec![0.0, f64::NAN, 1.0]]);
    // Deep in a large batch, after many rows were scored: named exactly.
    let mut late = many.clone();
    late[4321][2] = f64::NEG_INFINITY;
    let late = f64_c_order(&late);
    let wide = f64_c_order(&[vec![0.0, 1.0, 2.0, 3.0]]);
    let ints = npy("<i8", false, "(1, 3)", &[0u8; 24]);
    let flat = npy("<f8", false, "(3,)", &[0u8; 24]);
    let short = npy("<f8", false, "(2, 3)", &[0u8; 24]);
    let empty = npy("<f8", false, "(0, 3)", &[]);
    for (body, needle) in [
        (nan, "item 0, feature 1 is not a finite number"),
        (late, "item 4321, feature 2 is not a finite number"),
        (wide, "expected 3 features, got 4"),
        (ints, "float64"),
        (flat, "2-D"),
        (short, "needs 48"),
        (empty, "1–"),
        (b"{\"items\": []}".to_vec(), ".npy"),
    ] {
        let (s, _, b) = post_npy(&app, pid, &svc, "application/x-npy", body).await;
        assert_eq!(s, 400, "{needle}: {}", String::from_utf8_lossy(&b));
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], "invalid_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    let after = routed(&app, pid).await;
    assert_eq!(after, total);

    // Only services (and admins) predict; unknown projects are 404.
    let annotator = app.token("ann", "annotator").await;
    let (s, _, b) = post_npy(&app, pid, &annotator, "application/x-npy", probe.clone()).await;
    assert_eq!((s, error_code(&b).as_str()), (403, "forbidden"));
    let (s, _, b) = post_npy(&app, pid + 100, &svc, "application/x-npy", probe.clone()).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "not_found"));

    // A text project's model cannot read an array.
    let tp = app
        .project(json!({"name": "words", "labels": ["a", "b"], "retrain_cron": null}))
        .await;
    let docs: Vec<Value> = (0..20)
        .map(|i| {
            let (t, l) = if i % 2 == 0 {
                ("apples and pears", "a")
            } else {
                ("cars and trucks", "b")
            };
            json!({"external_id": format!("t{i}"), "text": format!("{t} {i}"), "label": l})
        })
        .collect();
    app.import_json(tp, &docs).await;
    app.train(tp).await;
    let (s, _, b) = post_npy(&app, tp, &svc, "application/x-npy", probe).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (415, "unsupported_media_type")
    );
}

both_backends!(npy_batch_prediction, super::npy_batches);
