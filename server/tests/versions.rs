//! A deploy that changes a workflow under runs in flight (issue 25), through every door: a step
//! renamed without a patch blocks the live run, which the API, the dashboard, `/metrics` and
//! the CLI all show with the same details (sequence number, the journal's entry, the code's,
//! the build); a fork from the step before the change finishes the work without paying again
//! for what was done; a bulk action clears what is left.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use common::{ADMIN_KEY, Db, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;
use slate_engine::{Ctx, WfError, Workflow};

/// What the test's workflow pays for, and which code is deployed.
#[derive(Default)]
struct World {
    paid: [AtomicU32; 3],
    new_code: AtomicBool,
}

/// Three paid calls around a wait; the deploy renames the second step.
struct Deploy(Arc<World>);
impl Workflow for Deploy {
    const NAME: &'static str = "t.deploy";
    type Input = Value;
    type Output = String;
    async fn run(&self, ctx: Ctx, _: Value) -> Result<String, WfError> {
        let w = self.0.clone();
        ctx.step("render", |_| async move {
            w.paid[0].fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        let name = if self.0.new_code.load(Ordering::SeqCst) {
            "voice-mix"
        } else {
            "voices"
        };
        let w = self.0.clone();
        ctx.step(name, |_| async move {
            w.paid[1].fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await?;
        ctx.wait_signal::<Value>("approved", "approved", None)
            .await?;
        let w = self.0.clone();
        ctx.step("stitch", |_| async move {
            w.paid[2].fetch_add(1, Ordering::SeqCst);
            Ok(name.to_string())
        })
        .await
    }
}

async fn status_of(s: &TestServer, id: &str, want: &str) -> Value {
    for _ in 0..300 {
        let v = s.get(&format!("/api/runs/{id}")).await;
        if v["run"]["status"] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never became {want}");
}

/// The dashboard's page for a run, signed in with the admin key.
async fn page(s: &TestServer, path: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(s.url("/login"))
        .header("origin", &s.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={ADMIN_KEY}&next=%2F"))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .expect("a session")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let res = http
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// `slate` on the same database: its exit code and standard output.
fn cli_status(s: &TestServer, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
    common::serve::scrub(&mut cmd);
    cmd.args(args)
        .env("SLATE_DATA_DIR", &s.data)
        .env("SLATE_DATABASE_URL", &s.state.config.database_url);
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `slate` on the same database.
fn cli(s: &TestServer, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_slate"));
    common::serve::scrub(&mut cmd);
    cmd.args(args)
        .env("SLATE_DATA_DIR", &s.data)
        .env("SLATE_DATABASE_URL", &s.state.config.database_url);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "slate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Before a deploy: the `slate` binary does not register this test's workflow, so a deploy of
/// it would strand the run; its replay says so and exits 3. The corpus replays cleanly.
fn replays_before_a_deploy(s: &TestServer, id: &str) {
    let (code, out) = cli_status(s, &["replay", "--open"]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("t.deploy v1: 1 run(s), 1 would block"),
        "{out}"
    );
    let dir = s.data.join("exported");
    let out = cli(
        s,
        &["history", "export", id, "--out", dir.to_str().unwrap()],
    );
    assert!(out.contains("1 histories written"), "{out}");
    let h = slate_server::history::read(&dir.join(format!("{id}.json"))).unwrap();
    assert_eq!(h.run.status, slate_engine::RunStatus::Blocked);
    // The corpus: this build's recording and, a level down, earlier builds'.
    let top = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/histories"));
    let mut corpus: Vec<String> = vec![];
    for e in std::fs::read_dir(top).unwrap() {
        let p = e.unwrap().path();
        let files = if p.is_dir() {
            std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        } else {
            vec![p]
        };
        corpus.extend(files.iter().map(|p| p.display().to_string()));
    }
    let mut args = vec!["replay"];
    args.extend(corpus.iter().map(String::as_str));
    let (code, out) = cli_status(s, &args);
    assert_eq!(code, Some(0), "{out}");
    // One scene run per scene history kept, from every build recorded.
    let scenes = corpus.iter().filter(|f| f.contains("film-scene")).count();
    assert!(scenes >= 3, "{corpus:?}");
    assert!(
        out.contains(&format!("film.scene v1: {scenes} run(s), 0 would block")),
        "{out}"
    );
}

async fn a_renamed_step_blocks_and_a_fork_finishes(db: Db) {
    let world = Arc::new(World::default());
    let w = world.clone();
    let s = TestServer::start_with(db, ProviderSettings::default(), &[], move |st| {
        st.engine.register(Deploy(w));
    })
    .await;
    let (code, v) = s
        .post("/api/runs", json!({"workflow": "t.deploy", "input": {}}))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let id = v["run"]["id"].as_str().unwrap().to_string();
    status_of(&s, &id, "waiting").await;
    let history = s.state.engine.history(id.parse().unwrap()).await.unwrap();

    // The deploy: `voices` is now `voice-mix`, without a patch.
    world.new_code.store(true, Ordering::SeqCst);
    let dry = s.state.engine.replay(&history).await;
    let m = dry.mismatch.clone().expect("the replay finds the change");
    assert_eq!(
        (m.expected.name.as_str(), m.found.name.as_str()),
        ("voices", "voice-mix")
    );
    let (code, _) = s
        .post(
            &format!("/api/runs/{id}/signals/approved"),
            json!({"payload": {}}),
        )
        .await;
    assert!(code.is_success(), "{code}");
    let v = status_of(&s, &id, "blocked").await;
    let e = &v["run"]["error"];
    assert_eq!(e["kind"], "nondeterminism");
    assert_eq!(e["details"]["seq"], json!(m.seq));
    assert_eq!(e["details"]["expected"]["name"], "voices");
    assert_eq!(e["details"]["found"]["name"], "voice-mix");
    let build = e["details"]["build"].as_str().unwrap().to_string();
    assert!(build.starts_with("slate "), "{build}");
    assert_eq!(
        world.paid[1].load(Ordering::SeqCst),
        1,
        "the renamed step did not run"
    );

    let metrics = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(common::API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("slate_runs_blocked{workflow=\"t.deploy\",version=\"1\"} 1"),
        "{metrics}"
    );
    let html = page(&s, &format!("/runs/{id}")).await;
    for want in [
        "Blocked: the journal no longer fits the code",
        "voice-mix",
        &build,
        &format!("sequence number {}", m.seq),
        "fork-blocked",
    ] {
        assert!(html.contains(want), "the run page shows {want}");
    }
    assert!(page(&s, "/runs").await.contains("blocked-runs"));
    let ls = cli(&s, &["runs", "ls", "--blocked"]);
    assert!(ls.contains(&id) && ls.contains("blocked"), "{ls}");
    let show = cli(&s, &["runs", "show", &id]);
    assert!(
        show.contains("voice-mix") && show.contains(&format!("seq {}", m.seq)),
        "{show}"
    );

    replays_before_a_deploy(&s, &id);

    // The way on: a fork from the step before the change keeps `render`.
    let (code, f) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{id}/fork"),
            Some(json!({"from_step": "voices"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{f}");
    let fork = f["run_id"].as_str().unwrap().to_string();
    status_of(&s, &fork, "waiting").await;
    let (code, _) = s
        .post(
            &format!("/api/runs/{fork}/signals/approved"),
            json!({"payload": {}}),
        )
        .await;
    assert!(code.is_success());
    let done = s.wait_run(&fork, Duration::from_secs(30)).await;
    assert_eq!(done["run"]["status"], "completed", "{done}");
    assert_eq!(done["run"]["output"], "voice-mix");
    let paid: Vec<u32> = world
        .paid
        .iter()
        .map(|p| p.load(Ordering::SeqCst))
        .collect();
    assert_eq!(
        paid,
        [1, 2, 1],
        "render paid once, the renamed step once per code, stitch once"
    );

    // What is left of the old version goes in one action.
    let (code, b) = s
        .admin(
            Method::POST,
            "/api/admin/runs/bulk",
            Some(json!({"action": "cancel", "status": "blocked"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{b}");
    assert_eq!(b["done"], json!([id]));
    let (code, _) = s
        .admin(
            Method::POST,
            "/api/admin/runs/bulk",
            Some(json!({"action": "cancel"})),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "a bulk action needs a filter");
    status_of(&s, &id, "cancelled").await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renamed_step_blocks_and_a_fork_finishes_on_sqlite() {
    a_renamed_step_blocks_and_a_fork_finishes(Db::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_renamed_step_blocks_and_a_fork_finishes_on_postgres() {
    a_renamed_step_blocks_and_a_fork_finishes(Db::Postgres).await
}
