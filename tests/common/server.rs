//! [`Server`]: a running `runbook serve` and requests to it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use reqwest::Method;
use reqwest::blocking::RequestBuilder;
use serde_json::Value;

/// The longest any wait of the harness lasts: for the first line, a request, runs to finish.
const WAIT: Duration = Duration::from_secs(20);

/// A `runbook serve` process; killed (and reaped) on drop.
pub struct Server {
    /// The process, for tests that signal or kill it themselves.
    pub child: Child,
    /// `http://127.0.0.1:PORT`, from the first line it prints.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status and the reply: its JSON, else its text as a JSON string.
fn reply(resp: reqwest::blocking::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Server {
    /// `runbook --runbooks RUNBOOKS --db DB serve --listen 127.0.0.1:0 ARGS`, its stderr
    /// appended to `log`; waits (bounded) for `listening on URL`.
    pub fn start(runbooks: &Path, db: &Path, log: &Path, args: &[&str]) -> Server {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(get_cargo_bin("runbook"))
            .arg("--runbooks")
            .arg(runbooks)
            .arg("--db")
            .arg(db)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // Read on another thread: a server that hangs before printing must not hang the test.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let first = rx.recv_timeout(WAIT).unwrap_or_default();
        let Some(base) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("first line: {first:?}; stderr:\n{log}");
        };
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let base = base.to_owned();
        Server { child, base }
    }

    /// A request to `path` on this server, for what [`Server::post`] and [`Server::get`] do
    /// not send (other headers or media types). It goes straight to the loopback address,
    /// whatever the proxy variables say, and gives up after the harness's wait.
    pub fn http(&self, method: Method, path: &str) -> RequestBuilder {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .build()
            .unwrap()
            .request(method, format!("{}{path}", self.base))
    }

    /// `POST path` with `body` declared as JSON, and a bearer token if given.
    pub fn post(&self, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut req = self
            .http(Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        reply(req.send().unwrap())
    }

    /// `GET path`, with a bearer token if given.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http(Method::GET, path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        reply(req.send().unwrap())
    }

    /// Finished runs with this trigger (`webhook`, `schedule`, ...), from `/api/runs`,
    /// waiting (bounded) until there are at least `n` (0: the runs now).
    pub fn runs(&self, trigger: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, all) = self.get("/api/runs", Some(super::TOKEN));
            assert_eq!(code, 200, "{all}");
            let runs: Vec<Value> = all
                .as_array()
                .unwrap_or_else(|| panic!("/api/runs is not a list: {all}"))
                .iter()
                .filter(|r| r["trigger"] == trigger && r["finished_at"].is_string())
                .cloned()
                .collect();
            if runs.len() >= n || Instant::now() > deadline {
                return runs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
