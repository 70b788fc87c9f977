//! Black-box test harness: the real server on a random port against a fresh
//! database (a SQLite file in a temp dir, or a new PostgreSQL database when
//! `LOUPE_TEST_POSTGRES_URL` is set).
#![allow(dead_code)]

use loupe::config::Settings;
use loupe::startup::Application;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};

pub const ADMIN: &str = "test-admin-token-0123456789";

pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db_url: String,
    handle: actix_web::dev::ServerHandle,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

/// The PostgreSQL server to test against, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("LOUPE_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("loupe.db").display());
                Some(Self::start(url, Some(dir), None).await)
            }
            Backend::Postgres => {
                let Some(admin_url) = postgres_url() else {
                    eprintln!("LOUPE_TEST_POSTGRES_URL not set: skipping the PostgreSQL run");
                    return None;
                };
                let name = format!("loupe_test_{}", uuid::Uuid::new_v4().simple());
                pg_exec(&admin_url, &format!("CREATE DATABASE {name}")).await;
                let url = replace_db(&admin_url, &name);
                Some(Self::start(url, None, Some((admin_url, name))).await)
            }
        }
    }

    pub async fn start(
        db_url: String,
        dir: Option<tempfile::TempDir>,
        pg: Option<(String, String)>,
    ) -> TestApp {
        let app = Application::build(Settings::for_tests(&db_url, ADMIN))
            .await
            .expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            client: Client::new(),
            db_url,
            handle,
            _dir: dir,
            pg,
        }
    }

    /// Stops this server and starts a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.handle.stop(true).await;
        let dir = self._dir.take();
        let pg = self.pg.take();
        let url = self.db_url.clone();
        std::mem::forget(self);
        TestApp::start(url, dir, pg).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.expect("request sent")
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.call(method, path, Some(token), body).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.json(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.json(Method::POST, path, token, Some(body)).await
    }

    pub async fn raw_post(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{}", self.base, path))
            .bearer_auth(token)
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A new token of a role; returns the secret.
    pub async fn token(&self, name: &str, role: &str) -> String {
        let (s, v) = self
            .post("/api/v1/tokens", ADMIN, json!({"name": name, "role": role}))
            .await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    pub async fn project(&self, body: Value) -> i64 {
        let (s, v) = self.post("/api/v1/projects", ADMIN, body).await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_i64().unwrap()
    }

    pub async fn import_json(&self, pid: i64, rows: &[Value]) -> Value {
        let (s, v) = self
            .raw_post(
                &format!("/api/v1/projects/{pid}/items"),
                ADMIN,
                "application/json",
                serde_json::to_vec(rows).unwrap(),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Trains the project now (`?wait=true`); returns the new version.
    pub async fn train(&self, pid: i64) -> Value {
        let (s, v) = self
            .post(
                &format!("/api/v1/projects/{pid}/train?wait=true"),
                ADMIN,
                json!({}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    pub async fn counts(&self, pid: i64) -> Value {
        self.get(&format!("/api/v1/projects/{pid}"), ADMIN).await.1["counts"].clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Dropped from a fresh runtime: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pg_exec(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ));
            })
            .join();
        }
    }
}

pub fn replace_db(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let cut = base.rfind('/').unwrap();
    let mut out = format!("{}/{}", &base[..cut], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub async fn pg_exec(url: &str, sql: &str) {
    use sea_orm::{ConnectionTrait, Database};
    let db = Database::connect(url).await.expect("postgres reachable");
    db.execute_unprepared(sql).await.expect(sql);
    db.close().await.ok();
}

/// Rows of a shipped data set (`data/NAME.{pool,test}.jsonl.gz`).
pub fn dataset(name: &str, part: &str) -> Vec<Value> {
    let path = format!("{}/data/{name}.{part}.jsonl.gz", env!("CARGO_MANIFEST_DIR"));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

/// Runs a scenario on SQLite and, when configured, on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $scenario:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite)
                    .await
                    .unwrap();
                $scenario(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await
                {
                    $scenario(app).await;
                }
            }
        }
    };
}
