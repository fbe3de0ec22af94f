//! A small W3C WebDriver client over reqwest, driving Debian's `chromium` through
//! `chromedriver` (both installed by `./scripts/test`).
//!
//! Written here rather than taken from fantoccini: fantoccini's `webdriver` dependency brings a
//! second copy of the ICU crates into the build (about 350 lock-file lines on a two-core
//! machine), for the dozen commands these tests use.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn tool(var: &str, name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: the dashboard's browser tests need Debian's chromium and chromium-driver \
         (./scripts/test installs them; or set {var})"
    )
}

/// A browser session. Dropping it ends the session and stops chromedriver.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: Child,
    /// Where screenshots go.
    pub shots: PathBuf,
}

/// An element of the page.
#[derive(Clone)]
pub struct El {
    id: String,
}

impl Browser {
    /// Start chromedriver and a headless Chromium at laptop size.
    pub async fn start(shots: PathBuf) -> Browser {
        let driver_path = tool("SLATE_CHROMEDRIVER", "chromedriver");
        let chromium = tool("SLATE_CHROMIUM", "chromium");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver_path.display()));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--no-first-run", "--window-size=1280,1000",
                         "--autoplay-policy=no-user-gesture-required"]
            }
        }}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("create a browser session")
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            http,
            base,
            session,
            driver,
            shots,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        } else if method == reqwest::Method::POST {
            req = req.json(&json!({}));
        }
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(err) = r["value"]["error"].as_str() {
            panic!(
                "WebDriver {path}: {err}: {}",
                r["value"]["message"].as_str().unwrap_or("")
            );
        }
        r["value"].clone()
    }

    async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let r: Value = self
            .http
            .request(method, &url)
            .json(&body.unwrap_or(json!({})))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match r["value"]["error"].as_str() {
            Some(e) => Err(format!("{e}: {}", r["value"]["message"])),
            None => Ok(r["value"].clone()),
        }
    }

    /// Open a URL.
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Every element matching a CSS selector.
    pub async fn all(&self, css: &str) -> Vec<El> {
        self.cmd(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT].as_str().map(|id| El { id: id.into() }))
        .collect()
    }

    /// The first element matching, waiting up to 20 s for it to appear.
    pub async fn find(&self, css: &str) -> El {
        self.wait_for(css, Duration::from_secs(20)).await
    }

    /// The first element matching, waiting up to `limit`.
    pub async fn wait_for(&self, css: &str, limit: Duration) -> El {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.all(css).await.into_iter().next() {
                return e;
            }
            if Instant::now() >= deadline {
                let html = self
                    .js("return document.documentElement.outerHTML;", json!([]))
                    .await;
                let html = html.as_str().unwrap_or("");
                panic!(
                    "`{css}` did not appear on {}; the page:\n{}",
                    self.url().await,
                    &html[..html.len().min(3000)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until a script returns true (the page is not reloaded meanwhile by this).
    pub async fn wait_js(&self, what: &str, script: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.js(script, json!([])).await == json!(true) {
                return;
            }
            if Instant::now() >= deadline {
                // What the page last told its user, if anything.
                let said = self
                    .js(
                        "const t = document.getElementById('toast'); return t ? t.textContent : '';",
                        json!([]),
                    )
                    .await;
                let shot = self.shot("failure").await;
                panic!(
                    "timed out waiting for {what} on {} (the page's last message: {said}; screenshot {})",
                    self.url().await,
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Run a script (its `return` is the answer).
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Run an asynchronous script: it calls `arguments[arguments.length - 1]` with its answer.
    pub async fn js_async(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/timeouts",
            Some(json!({"script": 30000})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Click.
    pub async fn click(&self, e: &El) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.id),
            None,
        )
        .await;
    }

    /// Empty a field and type into it.
    pub async fn fill(&self, e: &El, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.id),
            None,
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.id),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Set a field's value the way a paste would (long JSON typed key by key is slow).
    pub async fn set_value(&self, e: &El, text: &str) {
        self.js(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            json!([{ELEMENT: e.id}, text]),
        )
        .await;
    }

    /// The element's visible text.
    pub async fn text(&self, e: &El) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.id),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// The text of the first element matching `css`, looked up afresh: a live region may have
    /// swapped the element found a moment ago.
    pub async fn text_of(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        let body = self.find("body").await;
        self.text(&body).await
    }

    /// Accept the confirmation dialog that is open (waits up to 5 s for it), returning its text.
    pub async fn accept_dialog(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(t) = self
                .try_cmd(reqwest::Method::GET, "/alert/text", None)
                .await
            {
                self.cmd(reqwest::Method::POST, "/alert/accept", None).await;
                return t.as_str().unwrap_or("").to_string();
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Save a screenshot as `<name>.png` in the screenshots folder.
    pub async fn shot(&self, name: &str) -> PathBuf {
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64_decode(b64.as_str().unwrap_or(""));
        let p = self.shots.join(format!("{name}.png"));
        std::fs::write(&p, png).unwrap();
        p
    }

    /// The cookies of the current page, `name=value` (WebDriver sees HttpOnly ones too).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.cmd(reqwest::Method::GET, "/cookie", None)
            .await
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(|v| format!("{name}={v}")))
    }

    /// Resize the window (phone widths).
    pub async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session (chromedriver then closes its Chromium), with a plain blocking request:
        // a drop cannot await, and it also runs while a failed test unwinds.
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://").to_string();
        if let Ok(mut c) = std::net::TcpStream::connect(&addr) {
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                c,
                "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let mut sink = vec![];
            let _ = c.read_to_end(&mut sink);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
}
