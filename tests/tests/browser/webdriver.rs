//! A minimal WebDriver client (W3C protocol, JSON over HTTP) for chromedriver and Debian's
//! headless Chromium: sessions, navigation, elements, clicks, typing, page source and
//! screenshots. Blocking; every wait is a bounded poll.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::http::request;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are, if installed.
pub(crate) fn tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| {
        names
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| names.join(" or "))
    };
    let browser = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]).map_err(|n| {
        format!("no Chromium ({n}); install the Debian packages chromium and chromium-driver")
    })?;
    let driver =
        find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]).map_err(|n| {
            format!("no chromedriver ({n}); install the Debian package chromium-driver")
        })?;
    Ok((browser, driver))
}

/// A chromedriver process on a free loopback port, killed when dropped.
#[derive(Debug)]
pub(crate) struct Driver {
    child: Child,
    pub(crate) port: u16,
}

impl Driver {
    pub(crate) fn start(driver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Driver { child, port };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && call(port, "GET", "/status", None)["ready"].as_bool() == Some(true);
            if ready {
                return d;
            }
            assert!(
                Instant::now() < end,
                "chromedriver did not get ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver call; the answer's `value`.
fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let a = request(
        port,
        method,
        path,
        &[("content-type", "application/json")],
        &body,
    );
    let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    v.get("value").cloned().unwrap_or(Value::Null)
}

/// One browser (its own profile, so its own cookies).
#[derive(Debug)]
pub(crate) struct Browser {
    port: u16,
    id: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn open(driver: &Driver, binary: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1100,1400", "--no-first-run", "--no-default-browser-check",
                         format!("--user-data-dir={}", profile.path().display())],
            }
        }}});
        let v = call(driver.port, "POST", "/session", Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        Browser {
            port: driver.port,
            id,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }

    pub(crate) fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    pub(crate) fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The elements a CSS selector finds now.
    pub(crate) fn all(&self, css: &str) -> Vec<String> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first element a selector finds, waiting for it (up to `deadline`).
    pub(crate) fn find(&self, css: &str, deadline: Duration) -> String {
        let end = Instant::now() + deadline;
        loop {
            if let Some(e) = self.all(css).into_iter().next() {
                return e;
            }
            assert!(Instant::now() < end, "no {css:?} within {deadline:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn click(&self, el: &str) {
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})));
    }

    pub(crate) fn text(&self, el: &str) -> String {
        self.cmd("GET", &format!("/element/{el}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Replaces an input's value.
    pub(crate) fn fill(&self, el: &str, text: &str) {
        self.cmd("POST", &format!("/element/{el}/clear"), Some(json!({})));
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        );
    }

    pub(crate) fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Saves a PNG of the viewport.
    pub(crate) fn screenshot(&self, to: &Path) {
        let v = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a screenshot"))
            .expect("base64 PNG");
        std::fs::write(to, png).expect("write screenshot");
    }

    /// Sets the window size (for the small-screen screenshot).
    pub(crate) fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(self.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}
