//! A real browser for the tests of pages people read (the HTML report, the dashboard):
//! Debian's headless Chromium driven through `ChromeDriver`'s `WebDriver` API on loopback.
//!
//! [`Browser::open`] loads a page and gathers what a person's browser would have shown:
//! console messages (any `SEVERE` one is a page error), every network request the page made
//! (a page must not reach past loopback: no CDN, no font service), the DOM, and a screenshot
//! saved under `target/test-artifacts/` for a human to look at. Chromium resolves no name
//! but `localhost` (`--host-resolver-rules`), so a forgotten external URL fails to load and
//! shows up in the request list rather than reaching the network.
//!
//! Needs `apt-get install -y chromium chromium-driver` (`.ci/run` installs them).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A `ChromeDriver` process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

/// What a page load left.
pub struct Page {
    /// Console messages at level `SEVERE` (errors), as Chromium logged them.
    pub errors: Vec<String>,
    /// Every URL the page requested, the page itself included.
    pub requests: Vec<String>,
    /// Where the screenshot was saved.
    pub screenshot: PathBuf,
}

impl Page {
    /// Requests that left loopback: any `http`, `https`, `ws` or `wss` URL whose host is not
    /// 127.0.0.1 or localhost. (`file:`, `data:` and the browser's own `chrome:` resources do
    /// not touch the network.)
    pub fn external_requests(&self) -> Vec<&String> {
        self.requests
            .iter()
            .filter(|u| {
                let Some((scheme, rest)) = u.split_once("://") else {
                    return false;
                };
                let host = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
                matches!(scheme, "http" | "https" | "ws" | "wss")
                    && host != "127.0.0.1"
                    && host != "localhost"
            })
            .collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Start `ChromeDriver` and a headless Chromium session (a fresh profile, no background
    /// networking, no name resolution beyond loopback).
    pub fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `chromedriver` ({e}): apt-get install -y chromium chromium-driver"
                )
            });
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < until,
                "chromedriver did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .and_then(reqwest::blocking::Response::json)
            .expect("a WebDriver session");
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .and_then(reqwest::blocking::Response::json)
            .unwrap();
        assert!(
            v["value"].get("error").is_none(),
            "WebDriver {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    /// Run a script in the page and return its value.
    pub fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Load `url`, wait for the document to be complete, gather errors and requests, save a
    /// screenshot as `target/test-artifacts/<shot>.png`.
    pub fn open(&self, url: &str, shot: &str) -> Page {
        // Drop what earlier loads logged.
        self.logs("browser");
        self.logs("performance");
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})));
        let until = Instant::now() + Duration::from_secs(20);
        while self.script("return document.readyState") != "complete" {
            assert!(
                Instant::now() < until,
                "{url} did not finish loading in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let errors = self
            .logs("browser")
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        let requests = self
            .logs("performance")
            .into_iter()
            .filter_map(|e| {
                let m: Value = serde_json::from_str(e["message"].as_str()?).ok()?;
                (m["message"]["method"] == "Network.requestWillBeSent").then(|| {
                    m["message"]["params"]["request"]["url"]
                        .as_str()
                        .map(str::to_owned)
                })?
            })
            .collect();
        let screenshot = self.screenshot(shot);
        Page {
            errors,
            requests,
            screenshot,
        }
    }

    fn logs(&self, kind: &str) -> Vec<Value> {
        self.call(
            reqwest::Method::POST,
            "/se/log",
            Some(json!({"type": kind})),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Save a PNG of the viewport as `target/test-artifacts/<name>.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
