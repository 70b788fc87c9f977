//! The browser UI in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`) with fantoccini,
//! against the real server on a random port.
//!
//! Without `/usr/bin/chromedriver` (or `LOUPE_CHROMEDRIVER`) the test says so
//! and passes, unless `CI` is set: then a missing driver is a failure.
//! `LOUPE_SCREENSHOTS=1` writes `docs/screenshot-<page>.png` (1280×800).

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use loupe::config::Settings;
use loupe::startup::Application;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "ui-test-admin-token-0123456789";
const ENTER: char = '\u{e007}';
const BACKSPACE: char = '\u{e003}';

// ------------------------------------------------------------------ server

struct Server {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("loupe.db").display());
        let app = Application::build(Settings::for_tests(&url, ADMIN))
            .await
            .expect("server starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Server {
            base,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send(ADMIN, reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.post_as(ADMIN, path, body).await
    }

    async fn post_as(&self, token: &str, path: &str, body: Value) -> Value {
        let (s, v) = self
            .send(token, reqwest::Method::POST, path, Some(body))
            .await;
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    async fn token(&self, name: &str, role: &str) -> String {
        let v = self
            .post("/tokens", json!({"name": name, "role": role}))
            .await;
        v["token"].as_str().unwrap().to_string()
    }
}

/// Rows of a shipped data set (`data/NAME.{pool,test}.jsonl.gz`).
fn dataset(name: &str, part: &str, n: usize) -> Vec<Value> {
    let path = format!("{}/data/{name}.{part}.jsonl.gz", env!("CARGO_MANIFEST_DIR"));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect()
}

// ------------------------------------------------------------------ browser

struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Ends chromedriver and the browser it started (its own process group,
    /// so a failed test leaves no Chromium behind).
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Result<PathBuf, PathBuf> {
    let p = std::env::var("LOUPE_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/chromedriver"));
    if p.exists() {
        Ok(p)
    } else {
        Err(p)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_browser(driver_path: &PathBuf) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut options = json!({
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            format!("--user-data-dir={}", driver._profile.path().display()),
        ]
    });
    for bin in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(bin).exists() {
            options["binary"] = json!(bin);
            break;
        }
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    // chromedriver listens on localhost: plain HTTP.
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(http)
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Polls a JS expression until it is truthy; returns its value.
async fn wait_js(c: &Client, what: &str, expr: &str) -> Value {
    let script = format!("return ({expr});");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = c.execute(&script, vec![]).await.expect("script runs");
        let truthy = match &v {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return v;
        }
        if Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let page = c
                .execute("return document.body.innerText.slice(0, 2000);", vec![])
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what} ({expr}) on {url}; last value {v}; page: {page}");
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Resizes the window so that the page itself (the viewport) is `w`×`h`.
async fn set_viewport(c: &Client, w: u32, h: u32) {
    c.set_window_size(w, h).await.expect("window resized");
    let extra = js(
        c,
        "[window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
    )
    .await;
    let dw = extra[0].as_u64().unwrap_or(0) as u32;
    let dh = extra[1].as_u64().unwrap_or(0) as u32;
    if dw > 0 || dh > 0 {
        c.set_window_size(w + dw, h + dh)
            .await
            .expect("window resized");
    }
    wait_js(
        c,
        "the viewport size",
        &format!("window.innerWidth === {w} && window.innerHeight === {h}"),
    )
    .await;
}

/// A phone-sized viewport (Chromium windows are at least 500 px wide, so
/// this goes through the DevTools protocol), or back to the window's own.
async fn emulate_phone(c: &Client, driver: &Driver, on: bool) {
    let sid = c.session_id().await.unwrap().expect("a session id");
    let body = if on {
        json!({"cmd": "Emulation.setDeviceMetricsOverride",
               "params": {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}})
    } else {
        json!({"cmd": "Emulation.clearDeviceMetricsOverride", "params": {}})
    };
    let r = reqwest::Client::new()
        .post(format!("{}/session/{sid}/goog/cdp/execute", driver.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "CDP {body}: {}",
        r.text().await.unwrap()
    );
    let want = if on {
        "window.innerWidth === 390"
    } else {
        "window.innerWidth === 1280"
    };
    wait_js(c, "the viewport width", want).await;
}

async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .expect("script runs")
}

/// One key pressed and released, sent to whatever has focus.
async fn press(c: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(keys).await.expect("key pressed");
}

async fn type_text(c: &Client, text: &str) {
    let mut keys = KeyActions::new("keyboard".into());
    for ch in text.chars() {
        keys = keys
            .then(KeyAction::Down { value: ch })
            .then(KeyAction::Up { value: ch });
    }
    c.perform_actions(keys).await.expect("text typed");
}

async fn sign_in(c: &Client, token: &str) {
    wait_js(
        c,
        "the sign-in form",
        "document.activeElement && document.activeElement.id === 'token'",
    )
    .await;
    type_text(c, token).await;
    press(c, ENTER).await;
    wait_js(
        c,
        "the project list",
        "document.querySelector('#projects li')",
    )
    .await;
    let stored = js(c, "sessionStorage.getItem('loupe.token')").await;
    assert_eq!(stored, json!(token), "the token is kept in sessionStorage");
    let url = c.current_url().await.unwrap().to_string();
    assert!(
        !url.contains(token),
        "the token must never be in a URL: {url}"
    );
}

async fn sign_out(c: &Client) {
    c.find(Locator::Css("#signout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(c, "the sign-in form", "document.querySelector('#token')").await;
    assert_eq!(
        js(c, "sessionStorage.getItem('loupe.token')").await,
        Value::Null
    );
}

async fn go(c: &Client, hash: &str) {
    c.execute("location.hash = arguments[0];", vec![json!(hash)])
        .await
        .unwrap();
}

async fn screenshot(c: &Client, name: &str) {
    if std::env::var("LOUPE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    // Let transient notices go and late paints settle.
    wait_js(
        c,
        "no notices",
        "document.querySelector('#toasts').childElementCount === 0",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = c.screenshot().await.expect("screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("screenshot-{name}.png")), png).unwrap();
}

/// Uncaught errors the page collected plus the browser console's errors
/// (chromedriver's log; fetched since the last call).
async fn console_errors(c: &Client, driver: &Driver) -> Vec<String> {
    let mut out: Vec<String> = match js(c, "window.__errors || []").await {
        Value::Array(a) => a.iter().map(|v| format!("page: {v}")).collect(),
        _ => vec![],
    };
    let sid = c.session_id().await.unwrap().expect("a session id");
    let http = reqwest::Client::new();
    for path in ["se/log", "log"] {
        let r = http
            .post(format!("{}/session/{sid}/{path}", driver.url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap();
        if !r.status().is_success() {
            continue;
        }
        let v: Value = r.json().await.unwrap();
        for e in v["value"].as_array().into_iter().flatten() {
            if e["level"] == "SEVERE" {
                out.push(format!("console: {}", e["message"]));
            }
        }
        break;
    }
    out
}

async fn assert_no_errors(c: &Client, driver: &Driver, stage: &str) {
    let errors = console_errors(c, driver).await;
    assert!(
        errors.is_empty(),
        "console errors after {stage}:\n{}",
        errors.join("\n")
    );
}

async fn assert_fits(c: &Client, page: &str) {
    let over = js(
        c,
        "document.documentElement.scrollWidth - window.innerWidth",
    )
    .await;
    assert!(
        over.as_f64().unwrap() <= 1.0,
        "{page} scrolls sideways on a narrow screen by {over}px"
    );
}

async fn session_count(c: &Client) -> i64 {
    js(
        c,
        "+(document.querySelector('#session-count')?.dataset.count ?? -1)",
    )
    .await
    .as_i64()
    .unwrap()
}

// ------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_ui() {
    let driver_path = match chromedriver() {
        Ok(p) => p,
        Err(missing) if std::env::var_os("CI").is_some() => panic!(
            "CI is set but {} is missing: install chromium and chromium-driver",
            missing.display()
        ),
        Err(missing) => {
            eprintln!(
                "SKIPPED: browser UI test: {} not found (apt-get install chromium chromium-driver)",
                missing.display()
            );
            return;
        }
    };

    // A project of real e-mails: 20 seed labels, a first model, items to review.
    let srv = Server::start().await;
    let annotator = srv.token("ann", "annotator").await;
    let reviewer = srv.token("rev", "reviewer").await;
    let p = srv
        .post(
            "/projects",
            json!({"name": "spam-triage", "labels": ["ham", "spam"], "retrain_cron": null,
                   "routing": {"auto_threshold": 0.999, "review_threshold": 0.5}}),
        )
        .await;
    let pid = p["id"].as_i64().unwrap();
    let pool = dataset("spamassassin", "pool", 400);
    let truth: HashMap<String, String> = pool
        .iter()
        .map(|r| {
            (
                r["external_id"].as_str().unwrap().to_string(),
                r["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut seeds: HashMap<String, usize> = HashMap::new();
    let rows: Vec<Value> = pool
        .iter()
        .map(|r| {
            let label = r["label"].as_str().unwrap().to_string();
            let n = seeds.entry(label.clone()).or_default();
            *n += 1;
            let mut row = json!({"external_id": r["external_id"], "text": r["text"]});
            if *n <= 10 {
                row["label"] = json!(label);
            }
            row
        })
        .collect();
    let imported = srv
        .post(&format!("/projects/{pid}/items"), json!(rows))
        .await;
    assert_eq!(imported["labeled"], 20, "{imported}");
    srv.post(&format!("/projects/{pid}/train?wait=true"), json!({}))
        .await;
    let incoming: Vec<Value> = dataset("spamassassin", "test", 6)
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"external_id": format!("incoming-{i}"), "text": r["text"]}))
        .collect();
    srv.post(
        &format!("/projects/{pid}/predict"),
        json!({"items": incoming, "enqueue": true}),
    )
    .await;
    let labeled_before = srv.get(&format!("/projects/{pid}")).await["counts"]["labeled"]
        .as_i64()
        .unwrap();

    let (driver, c) = start_browser(&driver_path).await;
    let base = srv.base.clone();

    // 1. Sign in as an annotator, by keyboard only.
    c.goto(&format!("{base}/")).await.unwrap();
    set_viewport(&c, 1280, 800).await;
    wait_js(&c, "the sign-in form", "document.querySelector('#token')").await;
    screenshot(&c, "signin").await;
    sign_in(&c, &annotator).await;
    assert_no_errors(&c, &driver, "sign-in").await;

    // 2. Annotate: the first link has focus; Enter opens the project.
    wait_js(
        &c,
        "focus on the project link",
        "document.activeElement?.closest('#projects')",
    )
    .await;
    press(&c, ENTER).await;
    wait_js(&c, "an item", "document.querySelector('#item[data-id]')").await;
    assert!(
        js(&c, "!!document.querySelector('#suggestion')")
            .await
            .as_bool()
            .unwrap(),
        "the model's suggestion is shown"
    );
    assert_eq!(session_count(&c).await, 0);
    // The next items are already leased and waiting in the browser.
    wait_js(
        &c,
        "prefetched items",
        "+(document.querySelector('#stage').dataset.buffered ?? 0) >= 2",
    )
    .await;

    let labels = ["ham", "spam"];
    let mut last = String::new();
    for i in 0..20 {
        let ext = js(&c, "document.querySelector('#item').dataset.externalId").await;
        let ext = ext.as_str().unwrap().to_string();
        let id = js(&c, "document.querySelector('#item').dataset.id").await;
        let key = labels.iter().position(|l| *l == truth[&ext]).unwrap() + 1;
        press(&c, char::from(b'0' + key as u8)).await;
        wait_js(
            &c,
            &format!("label {} to be counted", i + 1),
            &format!("+document.querySelector('#session-count').dataset.count === {} && (document.querySelector('#item')?.dataset.id ?? {id}) !== {id}", i + 1),
        )
        .await;
        last = ext;
    }
    let waits = js(&c, "+(document.querySelector('#stage').dataset.waits ?? 0)").await;
    eprintln!("times the next item was not prefetched in time: {waits}");
    wait_js(
        &c,
        "every label saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    let counts = srv.get(&format!("/projects/{pid}")).await["counts"].clone();
    assert_eq!(
        counts["labeled"].as_i64().unwrap(),
        labeled_before + 20,
        "{counts}"
    );
    let shown = js(&c, "document.querySelector('#progress-text').textContent").await;
    assert!(
        shown
            .as_str()
            .unwrap()
            .starts_with(&format!("{} /", labeled_before + 20)),
        "progress: {shown}"
    );

    // Undo (u) brings the last item back and the counts go down; Backspace works too.
    press(&c, 'u').await;
    wait_js(
        &c,
        "the session count to drop to 19",
        "+document.querySelector('#session-count').dataset.count === 19",
    )
    .await;
    wait_js(
        &c,
        "the undone item to be shown again",
        &format!(
            "document.querySelector('#item')?.dataset.externalId === {}",
            json!(last)
        ),
    )
    .await;
    let counts = srv.get(&format!("/projects/{pid}")).await["counts"].clone();
    assert_eq!(
        counts["labeled"].as_i64().unwrap(),
        labeled_before + 19,
        "{counts}"
    );
    let key = labels.iter().position(|l| *l == truth[&last]).unwrap() + 1;
    press(&c, char::from(b'0' + key as u8)).await;
    wait_js(
        &c,
        "the relabel",
        "+document.querySelector('#session-count').dataset.count === 20",
    )
    .await;
    wait_js(
        &c,
        "the relabel saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    press(&c, BACKSPACE).await;
    wait_js(
        &c,
        "Backspace undo",
        "+document.querySelector('#session-count').dataset.count === 19",
    )
    .await;
    press(&c, char::from(b'0' + key as u8)).await;
    wait_js(
        &c,
        "the label again",
        "+document.querySelector('#session-count').dataset.count === 20",
    )
    .await;

    // s skips without labeling.
    let before = js(&c, "document.querySelector('#item').dataset.id").await;
    press(&c, 's').await;
    wait_js(
        &c,
        "the next item after a skip",
        &format!("(document.querySelector('#item')?.dataset.id ?? {before}) !== {before}"),
    )
    .await;
    assert_eq!(session_count(&c).await, 20);
    wait_js(
        &c,
        "every label saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    let counts = srv.get(&format!("/projects/{pid}")).await["counts"].clone();
    assert_eq!(
        counts["labeled"].as_i64().unwrap(),
        labeled_before + 20,
        "{counts}"
    );
    screenshot(&c, "annotate").await;
    assert_no_errors(&c, &driver, "annotating").await;

    // The annotate page on a narrow screen.
    emulate_phone(&c, &driver, true).await;
    assert_fits(&c, "annotate").await;
    screenshot(&c, "annotate-narrow").await;
    emulate_phone(&c, &driver, false).await;

    // 3. The dashboard. A second annotator labels over the API, with a
    // retrain after each batch: more points on the learning curve.
    let bea = srv.token("bea", "annotator").await;
    for round in 0..3 {
        let q = srv
            .post_as(
                &bea,
                &format!("/projects/{pid}/queue/next"),
                json!({"n": 20}),
            )
            .await;
        for (i, e) in q["items"].as_array().unwrap().iter().enumerate() {
            let ext = e["item"]["external_id"].as_str().unwrap();
            let body =
                json!({"label": truth[ext], "duration_ms": 1800 + 250 * ((i * 7 + round) % 11)});
            srv.post_as(
                &bea,
                &format!("/projects/{pid}/items/{}/labels", e["item"]["id"]),
                body,
            )
            .await;
        }
        srv.post(&format!("/projects/{pid}/train?wait=true"), json!({}))
            .await;
    }
    c.find(Locator::Css("#project-nav a[href$='/dashboard']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(&c, "the learning curve", "document.querySelectorAll('#chart-learning svg circle.point[data-series=accuracy]').length === 4").await;
    // The estimate's 95 % interval is drawn as a band behind its line.
    wait_js(
        &c,
        "the accuracy interval band",
        "document.querySelectorAll('#chart-learning svg polygon.series-band').length === 1",
    )
    .await;
    wait_js(
        &c,
        "the label distribution",
        "document.querySelector('#chart-labels svg')?.querySelectorAll('rect.bar').length === 2",
    )
    .await;
    wait_js(
        &c,
        "the confidence histogram",
        "document.querySelectorAll('#chart-confidence svg rect.bar').length >= 1",
    )
    .await;
    // Counted by the active model's rescore, and said so.
    wait_js(
        &c,
        "the histogram's model",
        "/as v4 ranked the pool/.test(document.querySelector('#chart-confidence .chart-foot')?.textContent)",
    )
    .await;
    wait_js(
        &c,
        "the routing panel",
        "document.querySelector('#chart-routing svg, #chart-routing .nodata')",
    )
    .await;
    let table = wait_js(
        &c,
        "the annotator table",
        "document.querySelector('#annotators tbody')?.textContent",
    )
    .await;
    assert!(
        table.as_str().unwrap().contains("ann"),
        "annotators: {table}"
    );
    assert!(
        table.as_str().unwrap().contains("bea"),
        "annotators: {table}"
    );
    emulate_phone(&c, &driver, true).await;
    assert_fits(&c, "dashboard").await;
    emulate_phone(&c, &driver, false).await;
    assert_no_errors(&c, &driver, "the dashboard").await;

    // 4. Review: Enter confirms the proposal, a digit overrides it.
    sign_out(&c).await;
    sign_in(&c, &reviewer).await;
    go(&c, &format!("#/p/{pid}/review")).await;
    wait_js(
        &c,
        "a review item",
        "document.querySelector('#item[data-id]') && document.querySelector('#confirm')",
    )
    .await;
    screenshot(&c, "review").await;
    let first = js(&c, "document.querySelector('#item').dataset.id").await;
    press(&c, ENTER).await;
    wait_js(&c, "the confirmation", &format!("+document.querySelector('#session-count').dataset.count === 1 && (document.querySelector('#item')?.dataset.id ?? {first}) !== {first}")).await;
    let proposed = wait_js(
        &c,
        "a proposal",
        "document.querySelector('#confirm')?.dataset.label",
    )
    .await;
    let other = labels
        .iter()
        .position(|l| *l != proposed.as_str().unwrap())
        .unwrap()
        + 1;
    press(&c, char::from(b'0' + other as u8)).await;
    wait_js(
        &c,
        "the override",
        "+document.querySelector('#session-count').dataset.count === 2",
    )
    .await;
    wait_js(
        &c,
        "the reviews saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    let stats = srv.get(&format!("/projects/{pid}/stats")).await;
    assert_eq!(stats["label_sources"]["review"], 1, "{stats}");
    assert_eq!(stats["label_sources"]["override"], 1, "{stats}");
    assert_no_errors(&c, &driver, "reviewing").await;

    // 5. Admin: the project list, settings, an upload with progress, a token.
    sign_out(&c).await;
    sign_in(&c, ADMIN).await;
    screenshot(&c, "projects").await;
    go(&c, &format!("#/p/{pid}/settings")).await;
    wait_js(
        &c,
        "the settings form",
        "document.querySelector('#settings-form') && document.querySelector('#models-table table')",
    )
    .await;
    let lease = c.find(Locator::Css("#s-lease")).await.unwrap();
    lease.clear().await.unwrap();
    lease.send_keys("900").await.unwrap();
    c.find(Locator::Css("#save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(&c, "the saved settings", "document.querySelector('#settings-saved') || document.querySelector('#settings-msg .error')").await;
    let msg = js(&c, "document.querySelector('#settings-msg').textContent").await;
    assert_eq!(msg, json!("Saved."));
    assert_eq!(
        js(&c, "document.querySelector('#s-lease').value").await,
        json!("900")
    );
    let p = srv.get(&format!("/projects/{pid}")).await;
    assert_eq!(p["lease_seconds"], 900, "{p}");
    // Saving another field keeps the default strategy (the form had no
    // `auto` and sent `entropy`).
    assert_eq!(p["strategy"], "auto", "{p}");

    let upload_dir = tempfile::tempdir().unwrap();
    let csv_path = upload_dir.path().join("more-mail.csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    w.write_record(["external_id", "text"]).unwrap();
    for (i, r) in dataset("spamassassin", "test", 60)
        .iter()
        .enumerate()
        .skip(10)
    {
        w.write_record([
            format!("upload-{i}"),
            r["text"].as_str().unwrap().to_string(),
        ])
        .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let items_before = p["counts"]["items"].as_i64().unwrap();
    c.find(Locator::Css("#upload-file"))
        .await
        .unwrap()
        .send_keys(csv_path.to_str().unwrap())
        .await
        .unwrap();
    // Keyboard: focus the button and press Enter.
    js(&c, "document.querySelector('#upload').focus() ?? true").await;
    press(&c, ENTER).await;
    let done = wait_js(
        &c,
        "the upload result",
        "document.querySelector('#upload-done')?.textContent",
    )
    .await;
    assert!(
        done.as_str().unwrap().contains("50 inserted"),
        "upload: {done}"
    );
    assert_eq!(
        js(&c, "document.querySelector('#upload-progress').value").await,
        json!(100)
    );
    let p = srv.get(&format!("/projects/{pid}")).await;
    assert_eq!(
        p["counts"]["items"].as_i64().unwrap(),
        items_before + 50,
        "{p}"
    );
    wait_js(
        &c,
        "the new item count",
        &format!(
            "document.querySelector('#settings-counts').textContent.startsWith('{} items')",
            items_before + 50
        ),
    )
    .await;
    screenshot(&c, "settings").await;
    // Export goes through fetch with the token in a header, then a Blob.
    js(
        &c,
        "document.querySelector('#export-jsonl').focus() ?? true",
    )
    .await;
    press(&c, ENTER).await;
    wait_js(
        &c,
        "the export",
        "document.querySelector('#toasts')?.textContent.includes('Exported')",
    )
    .await;
    assert_no_errors(&c, &driver, "settings and upload").await;

    // A new project from the admin page lands on its settings.
    go(&c, "#/admin").await;
    wait_js(
        &c,
        "the new-project form",
        "document.querySelector('#np-name')",
    )
    .await;
    c.find(Locator::Css("#np-name"))
        .await
        .unwrap()
        .send_keys("support")
        .await
        .unwrap();
    c.find(Locator::Css("#np-labels"))
        .await
        .unwrap()
        .send_keys("bug, question, praise")
        .await
        .unwrap();
    c.find(Locator::Css("#new-project button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_js(&c, "the new project's settings", "/^#\\/p\\/\\d+\\/settings$/.test(location.hash) && document.querySelector('#settings-form')").await;
    let projects = srv.get("/projects").await;
    let support = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "support")
        .expect("project support");
    assert_eq!(support["labels"], json!(["bug", "question", "praise"]));

    go(&c, "#/admin").await;
    wait_js(
        &c,
        "the token table",
        "document.querySelector('#tokens-table tbody tr')",
    )
    .await;
    c.find(Locator::Css("#tok-name"))
        .await
        .unwrap()
        .send_keys("carol")
        .await
        .unwrap();
    c.find(Locator::Css("#new-token button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let secret = wait_js(
        &c,
        "the new token",
        "document.querySelector('#token-secret code.secret')?.textContent",
    )
    .await;
    let (status, me) = {
        let r = srv
            .http
            .get(format!("{}/api/v1/me", srv.base))
            .bearer_auth(secret.as_str().unwrap())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(me["name"], "carol");
    wait_js(
        &c,
        "carol in the table",
        "document.querySelector('#tokens-table tbody')?.textContent.includes('carol')",
    )
    .await;
    screenshot(&c, "admin").await;
    assert_no_errors(&c, &driver, "the admin page").await;

    // A project of numeric features (8×8 digit images): a table, not text.
    let digits = srv
        .post(
            "/projects",
            json!({"name": "digits", "labels": ["0","1","2","3","4","5","6","7","8","9"], "retrain_cron": null}),
        )
        .await;
    let did = digits["id"].as_i64().unwrap();
    let rows: Vec<Value> = dataset("digits", "pool", 120)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            if i >= 40 {
                r.as_object_mut().unwrap().remove("label");
            }
            r
        })
        .collect();
    srv.post(&format!("/projects/{did}/items"), json!(rows))
        .await;
    srv.post(&format!("/projects/{did}/train?wait=true"), json!({}))
        .await;
    go(&c, &format!("#/p/{did}/annotate")).await;
    wait_js(
        &c,
        "a feature table",
        "document.querySelectorAll('#item .feature-table.square td').length === 64 && document.querySelectorAll('#label-bar .label-btn kbd').length === 10",
    )
    .await;
    // Labels that are digits are their own keys: 0 labels "0".
    let shown = js(&c, "document.querySelector('#item').dataset.id").await;
    press(&c, '0').await;
    wait_js(
        &c,
        "a digit label",
        "+document.querySelector('#session-count').dataset.count === 1",
    )
    .await;
    wait_js(
        &c,
        "the digit label saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    let item = srv
        .get(&format!(
            "/projects/{did}/items/{}",
            shown.as_str().unwrap()
        ))
        .await;
    assert_eq!(item["label"], "0", "key 0 labels \"0\": {item}");
    screenshot(&c, "annotate-features").await;
    assert_no_errors(&c, &driver, "the feature table").await;

    // A lease that runs out, then an empty queue: both say so plainly.
    let tiny = srv
        .post(
            "/projects",
            json!({"name": "tiny", "labels": ["yes", "no"], "retrain_cron": null, "lease_seconds": 2}),
        )
        .await;
    let tid = tiny["id"].as_i64().unwrap();
    srv.post(
        &format!("/projects/{tid}/items"),
        json!([{"external_id": "t1", "text": "Is this short?"}, {"external_id": "t2", "text": "And this?"}]),
    )
    .await;
    go(&c, &format!("#/p/{tid}/annotate")).await;
    wait_js(
        &c,
        "the tiny project's item",
        "document.querySelector('#item[data-id], #state-expired')",
    )
    .await;
    wait_js(
        &c,
        "the expired lease",
        "document.querySelector('#state-expired')",
    )
    .await;
    screenshot(&c, "annotate-expired").await;
    let (s, v) = srv
        .send(
            ADMIN,
            reqwest::Method::PATCH,
            &format!("/projects/{tid}"),
            Some(json!({"lease_seconds": 600})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    press(&c, 'r').await;
    wait_js(
        &c,
        "an item again",
        "document.querySelector('#item[data-id]')",
    )
    .await;
    press(&c, '1').await;
    wait_js(&c, "the second item", "+document.querySelector('#session-count').dataset.count === 1 && document.querySelector('#item[data-id]')").await;
    press(&c, '2').await;
    wait_js(
        &c,
        "the empty queue",
        "document.querySelector('#state-empty')",
    )
    .await;
    wait_js(
        &c,
        "both labels saved",
        "document.querySelector('#annotate').dataset.pending === '0'",
    )
    .await;
    assert_eq!(
        srv.get(&format!("/projects/{tid}")).await["counts"]["labeled"],
        2
    );
    screenshot(&c, "annotate-empty").await;
    assert_no_errors(&c, &driver, "the expired lease and the empty queue").await;

    // The dashboard as it stands at the end (with the reviews), top and bottom.
    go(&c, &format!("#/p/{pid}/dashboard")).await;
    wait_js(
        &c,
        "the dashboard with reviews",
        "document.querySelector('#tile-override .tile-value')?.textContent === '50.0 %' && document.querySelector('#chart-confidence svg')",
    )
    .await;
    screenshot(&c, "dashboard").await;
    js(&c, "window.scrollTo(0, document.body.scrollHeight) ?? true").await;
    screenshot(&c, "dashboard-lower").await;
    assert_no_errors(&c, &driver, "the dashboard at the end").await;

    c.close().await.unwrap();
    drop(driver);
}
