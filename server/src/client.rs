//! The `slate` command line's way to Slate: a running server over HTTP (`SLATE_URL`, default
//! `http://127.0.0.1:8080`, with `SLATE_API_KEY` and, for admin routes, `SLATE_ADMIN_KEY`).
//!
//! The command line is one more door to the same use cases as the dashboard and the API, so it
//! goes through the API: it never opens a database of its own unless asked to (`--direct`), and
//! a server it cannot reach is an error that says how to reach one, not an empty database
//! created in the current directory.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where the server is when `SLATE_URL` does not say.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A connection to a running Slate server.
#[derive(Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    admin_key: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// From the environment: `SLATE_URL`, `SLATE_API_KEY`, `SLATE_ADMIN_KEY`.
    pub fn from_env() -> anyhow::Result<Client> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Client::new(
            &var("SLATE_URL").unwrap_or_else(|| DEFAULT_URL.into()),
            var("SLATE_API_KEY"),
            var("SLATE_ADMIN_KEY"),
        )
    }

    /// A client of the server at `base`.
    pub fn new(
        base: &str,
        key: Option<String>,
        admin_key: Option<String>,
    ) -> anyhow::Result<Client> {
        let base = base.trim().trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base)
            .with_context(|| format!("SLATE_URL `{base}` is not a URL such as {DEFAULT_URL}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("SLATE_URL `{base}` must start with http:// or https://");
        }
        Ok(Client {
            base,
            key,
            admin_key,
            // Long enough for a PDF or an import of a large file; the waits poll.
            http: slate_activities::http_client(Duration::from_secs(120)),
        })
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str, admin: bool) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        let key = if admin {
            self.admin_key.as_ref().or(self.key.as_ref())
        } else {
            self.key.as_ref()
        };
        match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn send(&self, r: RequestBuilder, what: &str) -> anyhow::Result<reqwest::Response> {
        let resp = r.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow::anyhow!(
                    "cannot reach Slate at {}: start it with `slate serve`, or set SLATE_URL (use --direct to open the database instead)",
                    self.base
                )
            } else {
                anyhow::anyhow!("{what}: {e}")
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                " (set SLATE_API_KEY, or SLATE_ADMIN_KEY for admin commands)"
            }
            _ => "",
        };
        bail!("{what}: {} {message}{hint}", status.as_u16())
    }

    /// GET a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self
            .send(self.request(Method::GET, path, false), path)
            .await?;
        r.json()
            .await
            .with_context(|| format!("read the answer of {path}"))
    }

    /// GET raw bytes.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let r = self
            .send(self.request(Method::GET, path, false), path)
            .await?;
        Ok(r.bytes()
            .await
            .with_context(|| format!("read {path}"))?
            .to_vec())
    }

    /// POST a JSON body (or none) and read the JSON answer.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.post_as(path, body, false).await
    }

    /// POST to an admin route (the admin key when set).
    pub async fn post_admin(&self, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.post_as(path, body, true).await
    }

    async fn post_as(
        &self,
        path: &str,
        body: Option<&Value>,
        admin: bool,
    ) -> anyhow::Result<Value> {
        let mut r = self.request(Method::POST, path, admin);
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = self.send(r, path).await?;
        let text = resp.text().await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let resp = self
            .send(self.request(Method::PUT, path, false).json(body), path)
            .await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// POST raw bytes (a file).
    pub async fn post_bytes(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        let r = self
            .request(Method::POST, path, false)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        let resp = self.send(r, path).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }
}

/// A path segment, percent-encoded (slugs are safe already; names and file names may not be).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
