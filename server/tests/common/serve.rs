//! `slate serve` (or `slate worker`) as a real process, for the tests that SIGKILL it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::Api;

/// A spawned `slate` process; killed (SIGKILL) when dropped.
pub struct Serve(pub Child);

impl Serve {
    /// `slate serve` with `env`, its log appended to `log`.
    pub fn spawn(env: &[(String, String)], log: &Path) -> Serve {
        Self::spawn_as("serve", env, log)
    }

    /// `slate <what>`: `serve` (the API and workers) or `worker` (workers only).
    pub fn spawn_as(what: &str, env: &[(String, String)], log: &Path) -> Serve {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
        cmd.arg(what).stdout(Stdio::null()).stderr(log);
        scrub(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Serve(cmd.spawn().expect("start slate"))
    }

    /// SIGKILL, and reap it.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Only what a test says: no provider keys from the shell.
pub fn scrub(cmd: &mut Command) {
    for k in [
        "FAL_KEY",
        "OPENROUTER_API_KEY",
        "BRAIN_SERVICE_API_KEY",
        "TASK_API_KEY",
        "LAST_FRAME_TOKEN",
        "SLATE_MEDIA_URL",
        "MONGODB_URI",
    ] {
        cmd.env_remove(k);
    }
}

/// Wait (at most a minute) for `/health` to answer 200; how long it took.
pub async fn healthy(api: &Api, log: &Path) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(r) = api.http.get(api.url("/health")).send().await
            && r.status() == StatusCode::OK
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "slate serve did not come up:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
