//! A Slate server on port 0 against a fresh database, and a client that speaks to it.

#![allow(dead_code, unreachable_pub)]

pub mod serve;
pub mod webdriver;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;
use slate_server::app::AppState;
use slate_server::config::Config;
use tokio_util::sync::CancellationToken;

pub const API_KEY: &str = "test-api-key-7f3a";
pub const ADMIN_KEY: &str = "test-admin-key-91c2";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-5d80";

/// Which database.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A client of a Slate server at `base`.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

/// An in-process server.
pub struct TestServer {
    pub api: Api,
    pub state: AppState,
    pub data: PathBuf,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pg: Option<String>,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slate-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub async fn database_url(db: Db, data: &std::path::Path) -> (String, Option<String>) {
    match db {
        Db::Sqlite => (
            format!("sqlite://{}", data.join("slate.db").display()),
            None,
        ),
        Db::Postgres => {
            let url = slate_engine::testing::fresh_postgres_url()
                .await
                .expect("a fresh Postgres database (./scripts/test starts PostgreSQL)");
            (url.clone(), Some(url))
        }
    }
}

impl TestServer {
    /// A server with the API, admin and webhook keys set, and `env` on top.
    pub async fn start(db: Db, settings: ProviderSettings, env: &[(&str, &str)]) -> TestServer {
        Self::start_with(db, settings, env, |_| {}).await
    }

    /// [`TestServer::start`], with `setup` run on the state before the server serves (tests
    /// register workflows of their own there).
    pub async fn start_with(
        db: Db,
        settings: ProviderSettings,
        env: &[(&str, &str)],
        setup: impl FnOnce(&AppState),
    ) -> TestServer {
        let data = temp_dir("http");
        let (url, pg) = database_url(db, &data).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut vars: HashMap<String, String> = [
            ("SLATE_DATA_DIR", data.display().to_string()),
            ("SLATE_DATABASE_URL", url),
            ("SLATE_API_KEY", API_KEY.into()),
            ("SLATE_ADMIN_KEY", ADMIN_KEY.into()),
            ("SLATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ("SLATE_PUBLIC_URL", base.clone()),
            ("SLATE_LEASE_SECS", "3".into()),
            ("SLATE_WORKERS", "8".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let config = Config::load(None, |k| vars.get(k).cloned()).unwrap();
        let state = slate_server::build_with(config, settings).await.unwrap();
        setup(&state);
        let stop = CancellationToken::new();
        let task = tokio::spawn(slate_server::serve_on(
            state.clone(),
            listener,
            true,
            stop.clone(),
        ));
        TestServer {
            api: Api {
                base,
                http: client(),
            },
            state,
            data,
            stop,
            task: Some(task),
            pg,
        }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        if let Some(url) = self.pg.take() {
            let _ = slate_engine::testing::drop_postgres_database(
                &slate_engine::testing::postgres_admin_url(),
                &url,
            )
            .await;
        }
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl std::ops::Deref for TestServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the API key.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(Some(API_KEY), method, path, body).await
    }

    /// A request with the admin key.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(Some(ADMIN_KEY), method, path, body).await
    }

    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> Value {
        let (s, v) = self.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// Wait until a run is terminal; its record.
    pub async fn wait_run(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.get(&format!("/api/runs/{id}")).await;
            let st = v["run"]["status"].as_str().unwrap_or("").to_string();
            if ["completed", "failed", "cancelled", "blocked"].contains(&st.as_str()) {
                return v;
            }
            assert!(Instant::now() < deadline, "run {id} is still {st}: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The bundled example cut to its first `raw_scenes` raw scenes: a short film for tests.
pub fn mini_gather(raw_scenes: usize) -> Value {
    let mut v: Value = serde_json::from_str(slate_workflows::examples::LANTERN_KEEPER).unwrap();
    let scenes = v["collections"]["raw_scenes"].as_array_mut().unwrap();
    scenes.truncate(raw_scenes);
    v
}

/// Create `slug` and add `gather`'s documents over HTTP.
pub async fn create_project(s: &Api, slug: &str, gather: &Value) {
    let (st, v) = s
        .post(
            "/api/projects",
            json!({"slug": slug, "title": gather["project"]["title"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    for (coll, docs) in gather["collections"].as_object().unwrap() {
        for d in docs.as_array().unwrap() {
            let (st, v) = s
                .post(&format!("/api/projects/{slug}/gather/{coll}"), d.clone())
                .await;
            assert_eq!(st, StatusCode::CREATED, "{coll}: {v}");
        }
    }
}

/// `true` if a JSON error body says what was wrong.
pub fn is_error(v: &Value) -> bool {
    v["error"]["code"].is_string()
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
}
