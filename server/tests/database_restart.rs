//! PostgreSQL stopped for some seconds under a running workflow, then started again: `/health`
//! says the database is down meanwhile, nothing is lost, and the run completes once the
//! database is back. The test runs its own PostgreSQL cluster (initdb on a free port, as the
//! `postgres` user), so stopping it disturbs no other test.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use slate_activities::ProviderSettings;
use slate_engine::{RunStatus, StartOptions};
use slate_tests::{CrashInput, CrashPipeline, Sink};

fn pg_bin(name: &str) -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .expect(
            "PostgreSQL's server binaries under /usr/lib/postgresql (./scripts/test installs them)",
        )
        .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .unwrap_or_else(|| panic!("no {name} under {}", root.display()))
}

/// Run a PostgreSQL tool as the `postgres` user (initdb refuses root).
fn as_postgres(tool: &str, args: &[&str]) {
    let bin = pg_bin(tool);
    let root = Command::new("id").arg("-u").output().unwrap();
    let is_root = String::from_utf8_lossy(&root.stdout).trim() == "0";
    let status = if is_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&bin)
            .args(args)
            .status()
    } else {
        Command::new(&bin).args(args).status()
    }
    .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    assert!(status.success(), "{tool} {args:?} failed");
}

struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let dir = std::env::temp_dir().join(format!("slate-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let c = Cluster { dir, port };
        c.start();
        c
    }

    fn ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        all.extend_from_slice(&["-o", &opts]);
        all.extend_from_slice(args);
        as_postgres("pg_ctl", &all);
    }

    fn start(&self) {
        self.ctl(&["-w", "start"]);
    }

    fn stop(&self) {
        self.ctl(&["-w", "-m", "fast", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.ctl(&["-w", "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn health(api: &Api) -> StatusCode {
    api.http
        .get(api.url("/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(StatusCode::GATEWAY_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_waits_out_a_database_restart() {
    let pg = Cluster::create();
    let sink = Sink::new(temp_dir("restart-sink"));
    let pipeline = CrashPipeline { sink: sink.clone() };
    let s = TestServer::start_with(
        Db::Sqlite,
        ProviderSettings::default(),
        &[("SLATE_DATABASE_URL", &pg.url())],
        move |st| {
            st.engine.register(pipeline);
        },
    )
    .await;
    assert_eq!(health(&s).await, StatusCode::OK);
    let input = CrashInput {
        label: "p".into(),
        pause_ms: 250,
        rejects: 1,
        max_attempts: 5,
        layers: 6,
        max_layers: 20,
        wait_for_approval: false,
        abort_in_a: false,
    };
    let id = s
        .state
        .engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.effect_count("p:b") == 0 {
        assert!(Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Down for some seconds: /health says so, quickly.
    pg.stop();
    let asked = Instant::now();
    assert_eq!(health(&s).await, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "{:?}",
        asked.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(health(&s).await, StatusCode::SERVICE_UNAVAILABLE);
    pg.start();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = s.state.engine.get(id).await
            && r.status.is_terminal()
        {
            assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not finish after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health(&s).await, StatusCode::OK);
    for e in ["p:a", "p:b", "p:verify/1", "p:verify/2", "p:c"]
        .into_iter()
        .map(String::from)
        .chain((0..6).map(|k| format!("p:layer/{k}")))
    {
        assert!(
            sink.effect_count(&e) >= 1,
            "{e} never happened: {:?}",
            sink.effects()
        );
    }
    s.stop().await;
}
