//! The replay corpus (issue 25): journals of real runs, recorded under `tests/histories/`, are
//! replayed against this build's code in its dry mode. A change to a workflow that would block
//! the runs in flight on a deploy fails here, naming the run, the sequence number and both
//! entries. Re-record after a deliberate, patched change:
//!
//! ```text
//! SLATE_RECORD_HISTORIES=1 cargo test -p slate-server --test histories
//! ```

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Db, TestServer, create_project, mini_gather};
use reqwest::StatusCode;
use serde_json::json;
use slate_activities::ProviderSettings;
use slate_engine::{History, RunFilter, RunRecord};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/histories")
}

/// Make a production of the example and keep one history per path: the production, its
/// qualification, the film (its scenes chained by last frames), and the scene with the most
/// journal (its verification iterations).
async fn record(s: &TestServer) {
    create_project(s, "corpus", &mini_gather(4)).await;
    let (st, v) = s
        .post(
            "/api/projects/corpus/produce",
            json!({"force": true, "edit_window_secs": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    for _ in 0..1200 {
        let runs = s
            .state
            .engine
            .list(&RunFilter {
                scope: Some("corpus".into()),
                limit: Some(500),
                ..Default::default()
            })
            .await
            .unwrap();
        if let Some(b) = runs
            .iter()
            .find(|r| r.status == slate_engine::RunStatus::Blocked)
        {
            panic!("{} blocked: {:?}", b.workflow, b.error);
        }
        if runs.iter().all(|r| r.status.is_terminal()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let done = s
        .wait_run(v["run_id"].as_str().unwrap(), Duration::from_secs(600))
        .await;
    assert_eq!(done["run"]["status"], "completed", "{done}");
    let runs: Vec<RunRecord> = s
        .state
        .engine
        .list(&RunFilter {
            scope: Some("corpus".into()),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = corpus();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut scenes = vec![];
    for r in &runs {
        let h = s.state.engine.history(r.id).await.unwrap();
        let name = match r.workflow.as_str() {
            w if w == slate_workflows::names::workflow::SCENE => {
                scenes.push(h);
                continue;
            }
            w => w.replace('.', "-"),
        };
        write(&dir.join(format!("{name}.json")), &h);
    }
    scenes.sort_by_key(|h| std::cmp::Reverse(h.events.len()));
    write(&dir.join("film-scene.json"), &scenes[0]);
}

fn write(path: &std::path::Path, h: &History) {
    std::fs::write(path, serde_json::to_vec_pretty(h).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_recorded_histories_replay_on_this_build() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    if std::env::var_os("SLATE_RECORD_HISTORIES").is_some() {
        record(&s).await;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/histories/ (re-record: SLATE_RECORD_HISTORIES=1 cargo test -p slate-server --test histories)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut workflows = vec![];
    let mut broken = vec![];
    for f in &files {
        let h = slate_server::history::read(f).unwrap();
        workflows.push(h.run.workflow.clone());
        let r = s.state.engine.replay(&h).await;
        let name = f.file_name().unwrap().to_string_lossy();
        match &r.mismatch {
            Some(m) => broken.push(format!(
                "{name}: run {} ({}) would block at seq {}: the journal has `{}` ({}), the code asks for `{}` ({})",
                r.run, r.workflow, m.seq, m.expected.name, m.expected.kind, m.found.name, m.found.kind
            )),
            None if r.outcome != "completes" || !r.would_run.is_empty() => broken.push(format!(
                "{name}: run {} ({}) replays to `{}`, would run {:?}; a completed run's journal should answer everything",
                r.run, r.workflow, r.outcome, r.would_run
            )),
            None => {}
        }
    }
    assert!(
        broken.is_empty(),
        "histories that no longer replay on this build:\n{}",
        broken.join("\n")
    );
    workflows.sort();
    use slate_workflows::names::workflow::{GENERATE, PRODUCE, QUALIFY, SCENE};
    let mut want: Vec<String> = [GENERATE, PRODUCE, QUALIFY, SCENE]
        .iter()
        .map(|w| w.to_string())
        .collect();
    want.sort();
    assert_eq!(workflows, want, "one history per workflow");
    s.stop().await;
}
