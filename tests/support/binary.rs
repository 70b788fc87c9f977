//! The real `loupe` binary as a child process, for tests that kill it,
//! signal it or run several at once. Included by path from each test crate.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Spawned {
    pub child: Child,
    /// Every line the process logged (stdout and stderr), colours removed,
    /// each prefixed with `[tag] ` when a tag was given.
    pub log: Arc<Mutex<Vec<String>>>,
    port: Receiver<u16>,
}

/// Starts `cmd` (the binary with its arguments and environment) with its
/// output piped: both pipes are drained for the child's whole life (a full
/// pipe would block it), and the port of its "loupe is listening" line is
/// reported to [`Spawned::port`].
pub fn spawn(mut cmd: Command, tag: Option<&'static str>) -> Spawned {
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the loupe binary starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, port) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let log = log.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if line.contains("loupe is listening") {
                    if let Some(p) = line
                        .split("port=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        let _ = tx.send(p);
                    }
                }
                log.lock().unwrap().push(match tag {
                    Some(t) => format!("[{t}] {line}"),
                    None => line,
                });
            }
        });
    }
    Spawned { child, log, port }
}

impl Spawned {
    /// The port the process listens on; panics with its log if it has not
    /// said within `timeout`.
    pub fn port(&self, timeout: Duration) -> u16 {
        self.port.recv_timeout(timeout).unwrap_or_else(|_| {
            panic!(
                "the server did not say where it listens:\n{}",
                self.log.lock().unwrap().join("\n")
            )
        })
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
