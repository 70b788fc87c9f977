//! SIGTERM on the real binary: new connections are refused, a request in
//! flight gets its answer, the process exits 0, and a restart on the same
//! database sees everything. The logs never show a token.
use crate::common::{TestApp, ADMIN};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

fn serve(db_url: &str) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loupe"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .env("LOUPE_DATABASE_URL", db_url)
        .env("LOUPE_ADMIN_TOKEN", ADMIN)
        .env("LOUPE_LOG", "debug");
    let s = crate::binary::spawn(cmd, None);
    let port = s.port(Duration::from_secs(120));
    Server {
        child: s.child,
        port,
        log: s.log,
    }
}

/// Reads one HTTP/1.1 answer (head and Content-Length body) from a stream.
fn read_answer(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "connection closed in the head");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("loupe.db").display());
    let mut server = serve(&url);
    let base = format!("http://127.0.0.1:{}", server.port);
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Value| {
        client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let r = call(
        reqwest::Method::POST,
        "/api/v1/projects",
        ADMIN,
        json!({"name": "s", "labels": ["neg", "pos"], "retrain_cron": null}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let pid = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let seed: Vec<Value> = (0..200)
        .map(|i| {
            let x = i as f64 - 99.5;
            json!({"external_id": format!("s{i}"), "features": [x, (i % 7) as f64],
                   "label": if i % 10 == 0 { Some(if x < 0.0 { "neg" } else { "pos" }) } else { None }})
        })
        .collect();
    let r = call(
        reqwest::Method::POST,
        &format!("/api/v1/projects/{pid}/items"),
        ADMIN,
        json!(seed),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = call(
        reqwest::Method::POST,
        "/api/v1/tokens",
        ADMIN,
        json!({"name": "ann", "role": "annotator"}),
    )
    .await
    .unwrap();
    let ann = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(reqwest::Method::GET, "/api/v1/me", &ann, Value::Null)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = call(
        reqwest::Method::GET,
        "/api/v1/me",
        "lp_not-a-token",
        Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);

    // An import in flight: the server has read its head (it answered
    // `100 Continue`) and half its body when SIGTERM arrives.
    let rows: Vec<Value> = (0..3000)
        .map(|i| json!({"external_id": format!("f{i}"), "features": [i as f64 / 10.0, 1.0]}))
        .collect();
    let body = serde_json::to_vec(&rows).unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "POST /api/v1/projects/{pid}/items HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (head, _) = read_answer(&mut conn);
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    let half = body.len() / 2;
    conn.write_all(&body[..half]).unwrap();
    conn.flush().unwrap();
    // A training started just before, too: it finishes or leaves nothing.
    let r = call(
        reqwest::Method::POST,
        &format!("/api/v1/projects/{pid}/train"),
        ADMIN,
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);

    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // New connections are no longer served (refused, or never answered).
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let t = Instant::now();
    loop {
        match probe.get(format!("{base}/healthz")).send().await {
            Err(_) => break,
            Ok(_) if t.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(r) => panic!(
                "still serving new connections after SIGTERM: {}",
                r.status()
            ),
        }
    }

    conn.write_all(&body[half..]).unwrap();
    conn.flush().unwrap();
    let (head, answer) = read_answer(&mut conn);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(answer["inserted"], 3000, "{answer}");

    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "still running 90 s after SIGTERM:\n{}",
            server.log.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = server.log.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("SIGTERM received") && log.contains("loupe stopped"),
        "{log}"
    );
    for secret in [ADMIN, ann.as_str(), "lp_not-a-token"] {
        assert!(!log.contains(secret), "a token is in the log:\n{log}");
    }

    // A restart on the same file sees it all; a model, if the training
    // finished, is whole and serves.
    let app = TestApp::start(url, Some(dir), None).await;
    let counts = app.counts(pid).await;
    assert_eq!(counts["items"], 3200, "{counts}");
    assert_eq!(counts["labeled"], 20, "{counts}");
    let (s, models) = app
        .get(&format!("/api/v1/projects/{pid}/models"), ADMIN)
        .await;
    assert_eq!(s, 200);
    if let Some(m) = models.as_array().unwrap().first() {
        assert_eq!(m["active"], true, "{models}");
        assert!(m["metrics"]["accuracy"].is_number(), "{models}");
        let (s, v) = app
            .post(
                &format!("/api/v1/projects/{pid}/predict"),
                ADMIN,
                json!({"items": [{"features": [-50.0, 1.0]}]}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["model_version"], m["version"]);
    }
}
