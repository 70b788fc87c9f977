//! `GET /api/v1/openapi.json` documents every route the server registers.
//!
//! The registered routes are read from the server's own route table: the
//! `.route("…", web::METHOD()…)` calls of `src/routes/*.rs`, under `/api/v1`
//! for the modules configured inside that scope. Each one is then called on
//! the running server, so a route the scan missed or invented fails too.
use crate::common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeSet;

/// `(METHOD, path)` pairs, paths as OpenAPI writes them (`{name}`).
type Routes = BTreeSet<(String, String)>;

fn routes_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes")
}

/// The modules that `routes::configure` registers inside `/api/v1`.
fn scoped_modules() -> BTreeSet<String> {
    let src = std::fs::read_to_string(routes_dir().join("mod.rs")).unwrap();
    let start = src
        .find("web::scope(\"/api/v1\")")
        .expect("mod.rs opens the /api/v1 scope");
    let end = start + src[start..].find(".default_service").expect("scope end");
    src[start..end]
        .split(".configure(")
        .skip(1)
        .map(|s| s.split("::configure").next().unwrap().trim().to_string())
        .collect()
}

/// Every `.route("path", web::method()…)` of one source file.
fn routes_in(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in src.split(".route(").skip(1) {
        let part = part.trim_start();
        let Some(rest) = part.strip_prefix('"') else {
            continue;
        };
        let path = &rest[..rest.find('"').unwrap()];
        let after = &rest[path.len() + 1..];
        let m = after.find("web::").expect("a method after the path") + 5;
        let method: String = after[m..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        // actix's `{name:regex}` is `{name}` in OpenAPI.
        let path = path.replace(":.*}", "}");
        out.push((method.to_uppercase(), path));
    }
    out
}

fn registered() -> Routes {
    let scoped = scoped_modules();
    let mut all = Routes::new();
    for entry in std::fs::read_dir(routes_dir()).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let prefix = if scoped.contains(&module) {
            "/api/v1"
        } else {
            ""
        };
        for (m, p) in routes_in(&src) {
            all.insert((m, format!("{prefix}{p}")));
        }
    }
    all
}

fn documented(doc: &Value) -> Routes {
    let mut out = Routes::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_route_scan_reads_multi_line_registrations() {
    let src = r#"cfg.route("/a", web::get().to(x))
        .route(
            "/b/{id}/c",
            web::delete().to(y),
        )
        .route("/{path:.*}", web::post().to(z));"#;
    assert_eq!(
        routes_in(src),
        vec![
            ("GET".to_string(), "/a".to_string()),
            ("DELETE".into(), "/b/{id}/c".into()),
            ("POST".into(), "/{path}".into()),
        ]
    );
    assert!(scoped_modules().contains("projects"));
    assert!(!scoped_modules().contains("health"));
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let r = app
        .client
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the document needs no token");
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let registered = registered();
    assert!(registered.len() >= 25, "the scan found {registered:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = registered.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in openapi.json: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        extra.is_empty(),
        "openapi.json documents routes the server lacks: {extra:?}"
    );

    // The scan is checked against the live server: every route answers (401
    // without a token under /api/v1), none is the "route not found" fallback.
    for (method, path) in &registered {
        let concrete = path
            .replace("{path}", "index.html")
            .replace("{external_id}", "x");
        let concrete = concrete
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = app
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete,
                None,
                None,
            )
            .await;
        let expected = if path.starts_with("/api/v1") && path != "/api/v1/openapi.json" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        assert_eq!(r.status(), expected, "{method} {concrete}");
    }

    // Every operation states its answers; authenticated ones take a bearer
    // token and may answer 401 with the error body.
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["type"], "http");
    assert_eq!(schemes["scheme"], "bearer");
    let err = &doc["components"]["schemas"]["Error"];
    assert_eq!(err["required"][0], "error");
    let codes = err["properties"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.contains(&Value::from("invalid_request")));
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path} has no 2xx"
        );
        for (status, resp) in responses {
            if status.starts_with('4') {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
        let secured = path.starts_with("/api/v1") && path != "/api/v1/openapi.json";
        if secured {
            assert_eq!(
                op["security"][0]["bearer"],
                Value::Array(vec![]),
                "{method} {path}"
            );
            assert!(responses.contains_key("401"), "{method} {path}");
        } else {
            assert_eq!(op["security"], Value::Array(vec![]), "{method} {path}");
        }
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(params, in_path, "{method} {path}");
    }

    // Import takes the three body formats.
    let import = &doc["paths"]["/api/v1/projects/{pid}/items"]["post"]["requestBody"]["content"];
    for ct in ["application/json", "application/x-ndjson", "text/csv"] {
        assert!(import.get(ct).is_some(), "import lacks {ct}");
    }
    // Request bodies carry the bounds the server enforces.
    let next = &doc["paths"]["/api/v1/projects/{pid}/queue/next"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"]["properties"]["n"];
    assert_eq!(
        (next["minimum"].as_i64(), next["maximum"].as_i64()),
        (Some(1), Some(50))
    );
}
