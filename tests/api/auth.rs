//! Who may call what: every route the server registers × every kind of
//! caller, on both backends; tokens stored as digests only; revocation takes
//! effect on the next request; the UI keeps tokens out of URLs.
use crate::both_backends;
use crate::common::{TestApp, ADMIN};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoToken,
    /// An Authorization header that is not `Bearer <token>`.
    Malformed,
    /// Well formed, but no such token.
    Unknown,
    Revoked,
    Service,
    Annotator,
    Reviewer,
    Senior,
    Admin,
}

const CALLERS: [Caller; 9] = [
    Caller::NoToken,
    Caller::Malformed,
    Caller::Unknown,
    Caller::Revoked,
    Caller::Service,
    Caller::Annotator,
    Caller::Reviewer,
    Caller::Senior,
    Caller::Admin,
];

/// Who a route lets in (docs/api.md's role table, plus loupe's rules).
#[derive(Debug, Clone, Copy)]
enum Access {
    Public,
    AnyToken,
    /// Read access: annotator (and up) or service.
    Reader,
    Annotator,
    Reviewer,
    /// Escalated cases: senior reviewers and admins.
    Senior,
    Service,
    Admin,
    /// Undo: the label's author (the annotator here) or an admin.
    AuthorOrAdmin,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unauthorized,
    Forbidden,
    /// Neither 401 nor 403.
    Allowed,
}

fn expected(access: Access, caller: Caller) -> Outcome {
    use Caller as C;
    let live = !matches!(caller, C::NoToken | C::Malformed | C::Unknown | C::Revoked);
    let allowed = match access {
        Access::Public => true,
        Access::AnyToken | Access::Reader => live,
        Access::Annotator => matches!(caller, C::Annotator | C::Reviewer | C::Senior | C::Admin),
        Access::Reviewer => matches!(caller, C::Reviewer | C::Senior | C::Admin),
        Access::Senior => matches!(caller, C::Senior | C::Admin),
        Access::Service => matches!(caller, C::Service | C::Admin),
        Access::Admin => caller == C::Admin,
        Access::AuthorOrAdmin => matches!(caller, C::Annotator | C::Admin),
    };
    match (allowed, live) {
        (true, _) => Outcome::Allowed,
        (false, false) => Outcome::Unauthorized,
        (false, true) => Outcome::Forbidden,
    }
}

/// A resource made fresh for each call, so one caller's success cannot change
/// what the next caller meets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fresh {
    Nothing,
    /// An unlabeled item: `{item}`.
    Item,
    /// An item routed to review by a prediction: `{item}`.
    ReviewItem,
    /// An item escalated by a routing rule: `{item}`.
    EscalatedItem,
    /// A label the annotator just made: `{label}`.
    OwnLabel,
    /// A live token to revoke: `{token}`.
    Token,
}

struct Row {
    method: &'static str,
    /// The pattern as registered (with the /api/v1 scope).
    pattern: &'static str,
    /// The path called; `{pid}`, `{item}`, `{label}`, `{token}` are filled in.
    path: &'static str,
    body: Option<fn() -> Value>,
    fresh: Fresh,
    access: Access,
}

const fn row(
    method: &'static str,
    pattern: &'static str,
    path: &'static str,
    body: Option<fn() -> Value>,
    fresh: Fresh,
    access: Access,
) -> Row {
    Row {
        method,
        pattern,
        path,
        body,
        fresh,
        access,
    }
}

/// Every registered route at least once; the label route once per kind of item.
#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Access as A;
    use Fresh as F;
    vec![
        row("GET", "/healthz", "/healthz", None, F::Nothing, A::Public),
        row("GET", "/metrics", "/metrics", None, F::Nothing, A::Public),
        row("GET", "/", "/", None, F::Nothing, A::Public),
        row("GET", "/{path:.*}", "/js/app.js", None, F::Nothing, A::Public),
        row("POST", "/api/v1/tokens", "/api/v1/tokens",
            Some(|| json!({"name": "made-by-table", "role": "annotator"})), F::Nothing, A::Admin),
        row("GET", "/api/v1/tokens", "/api/v1/tokens", None, F::Nothing, A::Admin),
        row("DELETE", "/api/v1/tokens/{id}", "/api/v1/tokens/{token}", None, F::Token, A::Admin),
        row("GET", "/api/v1/me", "/api/v1/me", None, F::Nothing, A::AnyToken),
        row("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, F::Nothing, A::Public),
        row("POST", "/api/v1/projects", "/api/v1/projects",
            Some(|| json!({"name": "made-by-table", "labels": ["a", "b"], "retrain_cron": null})),
            F::Nothing, A::Admin),
        row("GET", "/api/v1/projects", "/api/v1/projects", None, F::Nothing, A::Reader),
        row("GET", "/api/v1/projects/{pid}", "/api/v1/projects/{pid}", None, F::Nothing, A::Reader),
        row("PATCH", "/api/v1/projects/{pid}", "/api/v1/projects/{pid}",
            Some(|| json!({"min_new_labels": 10})), F::Nothing, A::Admin),
        row("POST", "/api/v1/projects/{pid}/items", "/api/v1/projects/{pid}/items",
            Some(|| json!([{"external_id": "by-table", "features": [1.0]}])), F::Nothing, A::Admin),
        row("GET", "/api/v1/projects/{pid}/items", "/api/v1/projects/{pid}/items", None,
            F::Nothing, A::Reader),
        row("POST", "/api/v1/projects/{pid}/gold", "/api/v1/projects/{pid}/gold",
            Some(|| json!([{"external_id": "gold-by-table", "features": [1.0], "label": "neg"}])),
            F::Nothing, A::Admin),
        row("GET", "/api/v1/projects/{pid}/items/by-external/{external_id}",
            "/api/v1/projects/{pid}/items/by-external/seed0", None, F::Nothing, A::Reader),
        row("GET", "/api/v1/projects/{pid}/items/{item_id}", "/api/v1/projects/{pid}/items/{item}",
            None, F::Item, A::Reader),
        row("POST", "/api/v1/projects/{pid}/queue/next", "/api/v1/projects/{pid}/queue/next",
            Some(|| json!({"n": 1})), F::Nothing, A::Annotator),
        row("POST", "/api/v1/projects/{pid}/queue/review", "/api/v1/projects/{pid}/queue/review",
            Some(|| json!({"n": 1})), F::Nothing, A::Reviewer),
        row("POST", "/api/v1/projects/{pid}/items/{item_id}/labels",
            "/api/v1/projects/{pid}/items/{item}/labels",
            Some(|| json!({"label": "neg"})), F::Item, A::Annotator),
        row("POST", "/api/v1/projects/{pid}/items/{item_id}/labels",
            "/api/v1/projects/{pid}/items/{item}/labels",
            Some(|| json!({"label": "neg"})), F::ReviewItem, A::Reviewer),
        row("POST", "/api/v1/projects/{pid}/items/{item_id}/labels",
            "/api/v1/projects/{pid}/items/{item}/labels",
            Some(|| json!({"label": "pos"})), F::EscalatedItem, A::Senior),
        row("POST", "/api/v1/projects/{pid}/queue/release", "/api/v1/projects/{pid}/queue/release",
            Some(|| json!({"item_ids": []})), F::Nothing, A::Annotator),
        row("DELETE", "/api/v1/projects/{pid}/labels/{label_id}",
            "/api/v1/projects/{pid}/labels/{label}", None, F::OwnLabel, A::AuthorOrAdmin),
        row("POST", "/api/v1/projects/{pid}/train", "/api/v1/projects/{pid}/train?wait=true",
            Some(|| json!({})), F::Nothing, A::Admin),
        row("GET", "/api/v1/projects/{pid}/models", "/api/v1/projects/{pid}/models", None,
            F::Nothing, A::Reader),
        row("GET", "/api/v1/projects/{pid}/models/active", "/api/v1/projects/{pid}/models/active",
            None, F::Nothing, A::Reader),
        row("POST", "/api/v1/projects/{pid}/predict", "/api/v1/projects/{pid}/predict",
            Some(|| json!({"items": [{"features": [3.0]}]})), F::Nothing, A::Service),
        row("GET", "/api/v1/projects/{pid}/stats", "/api/v1/projects/{pid}/stats", None,
            F::Nothing, A::Annotator),
        row("GET", "/api/v1/projects/{pid}/export", "/api/v1/projects/{pid}/export", None,
            F::Nothing, A::Admin),
    ]
}

/// The (method, pattern) pairs registered in src/routes, read from the
/// `configure` functions: a route added there and not to `table()` fails
/// `the_table_covers_every_registered_route`.
fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let modfile = std::fs::read_to_string(dir.join("mod.rs")).unwrap();
    let start = modfile
        .find("web::scope(\"/api/v1\")")
        .expect("routes/mod.rs scopes /api/v1");
    let end = start + modfile[start..].find(".default_service").unwrap();
    let scoped: Vec<&str> = modfile[start..end]
        .split(".configure(")
        .skip(1)
        .map(|s| s.split("::").next().unwrap().trim())
        .collect();
    assert!(scoped.len() >= 7, "{scoped:?}");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        // Only `.route("pattern", web::method()…)` is understood here.
        for other in [
            "web::resource(",
            "#[get(",
            "#[post(",
            "#[patch(",
            "#[delete(",
            "#[route(",
        ] {
            assert!(
                !src.contains(other),
                "{}: {other} is not read by this test",
                path.display()
            );
        }
        if src.contains(".route(") && stem != "mod" {
            assert!(
                modfile.contains(&format!("{stem}::configure")),
                "{stem}.rs registers routes that routes/mod.rs does not configure"
            );
        }
        let prefix = if scoped.contains(&stem.as_str()) {
            "/api/v1"
        } else {
            ""
        };
        // Routes are registered in `configure` only.
        let Some(start) = src.find("pub fn configure(") else {
            continue;
        };
        let body = &src[start..start + src[start..].find("\n}\n").unwrap()];
        if stem == "mod" {
            assert!(
                !body.contains(".route("),
                "routes/mod.rs registers routes itself"
            );
            continue;
        }
        let outside = src[..start].to_string() + &src[start + body.len()..];
        assert!(
            !outside.contains("web::get()") && !outside.contains("web::post()"),
            "{stem}.rs registers routes outside configure"
        );
        for piece in body.split(".route(").skip(1) {
            let rest = piece
                .trim_start()
                .strip_prefix('"')
                .expect("a literal pattern");
            let end = rest.find('"').unwrap();
            let pattern = &rest[..end];
            let after = rest[end + 1..]
                .trim_start()
                .trim_start_matches(',')
                .trim_start();
            let m = after.strip_prefix("web::").expect("web::method()");
            let method = m[..m.find('(').unwrap()].to_uppercase();
            out.insert((method, format!("{prefix}{pattern}")));
        }
    }
    out
}

#[test]
fn the_table_covers_every_registered_route() {
    let registered = registered_routes();
    let tabled: BTreeSet<(String, String)> = table()
        .iter()
        .map(|r| (r.method.to_string(), r.pattern.to_string()))
        .collect();
    let missing: Vec<_> = registered.difference(&tabled).collect();
    let stale: Vec<_> = tabled.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the auth table: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "auth table rows for routes that do not exist: {stale:?}"
    );
    assert_eq!(
        registered.len(),
        29,
        "the route count changed: update the table"
    );
}

/// The UI holds the token in sessionStorage and sends it in a header only.
#[test]
fn the_ui_never_puts_the_token_in_a_url() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files = vec![dir.join("index.html")];
    for e in std::fs::read_dir(dir.join("js")).unwrap() {
        files.push(e.unwrap().path());
    }
    let mut all = String::new();
    for f in &files {
        let src = std::fs::read_to_string(f).unwrap();
        for bad in [
            "?token",
            "&token",
            "token=",
            "access_token",
            "localStorage",
            "document.cookie",
        ] {
            assert!(!src.contains(bad), "{}: contains {bad:?}", f.display());
        }
        all.push_str(&src);
    }
    assert!(
        all.contains("sessionStorage"),
        "the token lives in sessionStorage"
    );
    assert!(
        all.contains("Authorization"),
        "the token goes in the Authorization header"
    );
}

struct World {
    pid: i64,
    secrets: Vec<(Caller, String)>,
    next: std::sync::atomic::AtomicUsize,
}

impl World {
    fn secret(&self, c: Caller) -> Option<&str> {
        self.secrets
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, s)| s.as_str())
    }
    fn unique(&self) -> usize {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

async fn setup(app: &TestApp) -> World {
    let pid = app
        .project(
            json!({"name": "auth", "labels": ["neg", "pos"], "retrain_cron": null,
            "routing": {"auto_threshold": 0.95, "review_threshold": 0.0,
                        "rules": [{"field": "amount", "op": ">=", "value": 50000}]}}),
        )
        .await;
    let rows: Vec<Value> = (0..40)
        .map(|i| {
            let x = (i as f64 - 19.5) * 2.0;
            json!({"external_id": format!("seed{i}"), "features": [x], "label": if x < 0.0 { "neg" } else { "pos" }})
        })
        .collect();
    app.import_json(pid, &rows).await;
    app.train(pid).await;

    let (s, v) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"name": "sen", "role": "reviewer", "senior": true}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let senior = v["token"].as_str().unwrap().to_string();

    // A token that works, is revoked, and fails on the very next request.
    let (s, v) = app
        .post(
            "/api/v1/tokens",
            ADMIN,
            json!({"name": "gone", "role": "admin"}),
        )
        .await;
    assert_eq!(s, 201);
    let revoked = v["token"].as_str().unwrap().to_string();
    let (s, _) = app.get("/api/v1/me", &revoked).await;
    assert_eq!(s, 200);
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", v["id"]),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = app.get("/api/v1/me", &revoked).await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );

    World {
        pid,
        secrets: vec![
            (Caller::Malformed, "Basic YWRtaW46YWRtaW4=".to_string()),
            (Caller::Unknown, format!("lp_{}", "0".repeat(64))),
            (Caller::Revoked, revoked),
            (Caller::Service, app.token("svc", "service").await),
            (Caller::Annotator, app.token("ann", "annotator").await),
            (Caller::Reviewer, app.token("rev", "reviewer").await),
            (Caller::Senior, senior),
            (Caller::Admin, ADMIN.to_string()),
        ],
        next: 0.into(),
    }
}

/// Makes the resource a row needs; returns (placeholder, value).
async fn fresh(app: &TestApp, w: &World, what: Fresh) -> Option<(&'static str, i64)> {
    let pid = w.pid;
    let n = w.unique();
    let predict = |features: f64, meta: Value| {
        json!({"items": [{"external_id": format!("p{n}"), "features": [features], "meta": meta}],
               "enqueue": true})
    };
    match what {
        Fresh::Nothing => None,
        Fresh::Item | Fresh::OwnLabel => {
            let ext = format!("fresh{n}");
            app.import_json(pid, &[json!({"external_id": ext, "features": [0.5]})])
                .await;
            let (s, item) = app
                .get(
                    &format!("/api/v1/projects/{pid}/items/by-external/{ext}"),
                    ADMIN,
                )
                .await;
            assert_eq!(s, 200, "{item}");
            let id = item["id"].as_i64().unwrap();
            if what == Fresh::Item {
                return Some(("{item}", id));
            }
            let ann = w.secret(Caller::Annotator).unwrap();
            let (s, l) = app
                .post(
                    &format!("/api/v1/projects/{pid}/items/{id}/labels"),
                    ann,
                    json!({"label": "pos"}),
                )
                .await;
            assert_eq!(s, 201, "{l}");
            Some(("{label}", l["id"].as_i64().unwrap()))
        }
        Fresh::ReviewItem | Fresh::EscalatedItem => {
            let body = if what == Fresh::ReviewItem {
                predict(0.1, json!({}))
            } else {
                predict(30.0, json!({"amount": 60000}))
            };
            let (s, v) = app
                .post(&format!("/api/v1/projects/{pid}/predict"), ADMIN, body)
                .await;
            assert_eq!(s, 200, "{v}");
            let p = &v["predictions"][0];
            let want = if what == Fresh::ReviewItem {
                "review"
            } else {
                "escalate"
            };
            assert_eq!(p["route"], want, "{v}");
            Some(("{item}", p["item_id"].as_i64().unwrap()))
        }
        Fresh::Token => {
            let (s, v) = app
                .post(
                    "/api/v1/tokens",
                    ADMIN,
                    json!({"name": format!("t{n}"), "role": "annotator"}),
                )
                .await;
            assert_eq!(s, 201);
            Some(("{token}", v["id"].as_i64().unwrap()))
        }
    }
}

async fn every_route_every_caller(app: TestApp) {
    let w = setup(&app).await;
    let mut failures = Vec::new();
    let mut calls = 0;
    for r in table() {
        for caller in CALLERS {
            let mut path = r.path.replace("{pid}", &w.pid.to_string());
            if let Some((hole, id)) = fresh(&app, &w, r.fresh).await {
                path = path.replace(hole, &id.to_string());
            }
            let mut rb = app.client.request(
                Method::from_bytes(r.method.as_bytes()).unwrap(),
                format!("{}{path}", app.base),
            );
            match (caller, w.secret(caller)) {
                (Caller::NoToken, _) => {}
                (Caller::Malformed, Some(h)) => rb = rb.header("Authorization", h),
                (_, Some(t)) => rb = rb.bearer_auth(t),
                (_, None) => unreachable!(),
            }
            if let Some(b) = r.body {
                rb = rb.json(&b());
            }
            let res = rb.send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            calls += 1;
            let got = match status {
                401 => Outcome::Unauthorized,
                403 => Outcome::Forbidden,
                _ => Outcome::Allowed,
            };
            let want = expected(r.access, caller);
            let code = body["error"]["code"].as_str();
            let wrong_code = match got {
                Outcome::Unauthorized => code != Some("unauthorized"),
                Outcome::Forbidden => code != Some("forbidden"),
                // An allowed call reaches its handler: not an unknown route or method.
                Outcome::Allowed => {
                    status == 405 || body["error"]["message"] == "route not found" || status >= 500
                }
            };
            if got != want || wrong_code {
                failures.push(format!(
                    "{} {path} as {caller:?}: want {want:?}, got {status} {body}",
                    r.method
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(calls, table().len() * CALLERS.len());

    secrets_are_stored_as_digests(&app, &w).await;
}

/// The tokens table holds SHA-256 digests; no secret is anywhere in the database.
async fn secrets_are_stored_as_digests(app: &TestApp, w: &World) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    use sha2::{Digest, Sha256};
    let live: Vec<&str> = w
        .secrets
        .iter()
        .filter(|(c, _)| !matches!(c, Caller::Malformed | Caller::Unknown))
        .map(|(_, s)| s.as_str())
        .collect();
    let db = Database::connect(app.db_url.as_str()).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT name, role, token_hash FROM tokens",
        ))
        .await
        .unwrap();
    let mut stored = Vec::new();
    for r in &rows {
        for col in ["name", "role", "token_hash"] {
            stored.push(r.try_get::<String>("", col).unwrap());
        }
    }
    if backend == sea_orm::DbBackend::Postgres {
        // Every column of every row, as PostgreSQL prints it.
        for r in db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT t::text AS t FROM tokens t",
            ))
            .await
            .unwrap()
        {
            stored.push(r.try_get::<String>("", "t").unwrap());
        }
    }
    db.close().await.ok();
    let hashes: Vec<&String> = rows
        .iter()
        .enumerate()
        .map(|(i, _)| &stored[i * 3 + 2])
        .collect();
    for s in &live {
        let digest = hex::encode(Sha256::digest(s.as_bytes()));
        assert!(
            hashes.contains(&&digest),
            "the digest of a live token is stored"
        );
        assert!(
            stored.iter().all(|v| !v.contains(s)),
            "a secret is stored in plaintext"
        );
    }
    if let Some(file) = app.db_url.strip_prefix("sqlite://") {
        // Nowhere in the files either (database and write-ahead log).
        for f in [file.to_string(), format!("{file}-wal")] {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            for s in &live {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{f} holds a secret in plaintext"
                );
            }
        }
    }
}

both_backends!(every_route_by_every_caller, super::every_route_every_caller);
