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
/// qualification, the film (its scenes chained by last frames), the scene with the most
/// journal (its verification iterations, some composites refused by vision), and a scene that
/// went through the approval gate (rejected once with a note, then approved).
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
    // The histories of this build replace the last recording; those kept from earlier builds
    // (in subdirectories, such as `before-one-pass/`) stay, so the corpus keeps testing that
    // runs started on them still finish.
    let dir = corpus();
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(f).unwrap();
        }
    }
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
    write(&dir.join("film-scene-approval.json"), &record_gate(s).await);
}

/// A production with the approval gate on: its first scene's composite is rejected with a
/// note, the new one approved, the rest approved as they come. Returns that scene's history.
async fn record_gate(s: &TestServer) -> History {
    let slug = "corpus-gate";
    create_project(s, slug, &mini_gather(1)).await;
    let (st, v) = s
        .call(
            reqwest::Method::PUT,
            &format!("/api/projects/{slug}/approval"),
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"force": true, "edit_window_secs": 0}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let production = v["run_id"].as_str().unwrap().to_string();
    let mut rejected: Option<String> = None;
    for _ in 0..2400 {
        let list = s.get(&format!("/api/projects/{slug}/approvals")).await;
        let awaiting = list["awaiting"].as_array().cloned().unwrap_or_default();
        if let Some(a) = awaiting.first() {
            let scene = a["scene_id"].as_str().unwrap().to_string();
            let decision = if rejected.is_none() {
                rejected = Some(scene.clone());
                json!({"decision": "reject", "note": "the lantern in her left hand", "round": a["round"]})
            } else {
                json!({"decision": "approve", "round": a["round"]})
            };
            let (st, v) = s
                .post(&format!("/api/scenes/{scene}/approval"), decision)
                .await;
            assert!(st.is_success() || st == StatusCode::CONFLICT, "{st} {v}");
        }
        let run = s.get(&format!("/api/runs/{production}")).await;
        if run["run"]["status"] == "completed" {
            break;
        }
        assert_ne!(run["run"]["status"], "failed", "{run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let scene = rejected.expect("a scene waited at the gate");
    let runs = s
        .state
        .engine
        .list(&RunFilter {
            scope: Some(slug.into()),
            limit: Some(500),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut gated = vec![];
    for r in runs
        .iter()
        .filter(|r| r.workflow == slate_workflows::names::workflow::SCENE)
    {
        let h = s.state.engine.history(r.id).await.unwrap();
        if serde_json::to_string(&h.run.input)
            .unwrap()
            .contains(&scene)
        {
            gated.push(h);
        }
    }
    assert_eq!(gated.len(), 1, "one run of scene {scene}");
    gated.remove(0)
}

/// The steps a history journaled, by name.
fn steps(h: &History) -> Vec<String> {
    h.events.iter().filter_map(|e| e.step.clone()).collect()
}

/// Every history of the corpus: this build's recording and those kept from earlier builds.
fn corpus_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(corpus_files(&p));
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    out
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
    let mut files = corpus_files(&corpus());
    files.sort();
    assert!(
        !files.is_empty(),
        "no tests/histories/ (re-record: SLATE_RECORD_HISTORIES=1 cargo test -p slate-server --test histories)"
    );
    let mut workflows = vec![];
    let mut broken = vec![];
    for f in &files {
        let h = slate_server::history::read(f).unwrap();
        workflows.push(h.run.workflow.clone());
        let r = s.state.engine.replay(&h).await;
        let name = f.strip_prefix(corpus()).unwrap().display().to_string();
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
    // Every path the corpus stands for is in it: a scene whose composites vision refused, and
    // one a person rejected at the gate before approving.
    let read = |name: &str| slate_server::history::read(&corpus().join(name)).unwrap();
    let retried = steps(&read("film-scene.json"));
    assert!(
        retried.iter().any(|s| s == "record/composite/2"),
        "film-scene.json has no verification retry: {retried:?}"
    );
    let gated = steps(&read("film-scene-approval.json"));
    assert!(
        gated.iter().filter(|s| s.starts_with("approval/")).count() >= 2,
        "film-scene-approval.json never waited at the gate: {gated:?}"
    );
    workflows.sort();
    workflows.dedup();
    use slate_workflows::names::workflow::{GENERATE, PRODUCE, QUALIFY, SCENE};
    let mut want: Vec<String> = [GENERATE, PRODUCE, QUALIFY, SCENE]
        .iter()
        .map(|w| w.to_string())
        .collect();
    want.sort();
    assert_eq!(workflows, want, "one history per workflow");
    s.stop().await;
}

/// A deliberately incompatible change to a real film: the film's `stitch` step renamed with no
/// patch. The film's recorded journal (made by the code before the rename, where the step was
/// `stitch-film`) no longer fits: `slate replay` names the run, the sequence number, the
/// journal's entry and the code's, and exits 3, as CI would fail before such a deploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_film_step_fails_the_replay_naming_run_sequence_and_entries() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let mut h = slate_server::history::read(&corpus().join("film-generate.json")).unwrap();
    let old = "stitch-film";
    let mut seqs = vec![];
    for e in &mut h.events {
        if e.step.as_deref() == Some(slate_workflows::names::film::STITCH) {
            e.step = Some(old.into());
            seqs.push(e.seq);
        }
    }
    assert!(!seqs.is_empty(), "the film journaled its stitch");
    let dir = common::temp_dir("renamed");
    let file = dir.join("film-generate.json");
    std::fs::write(&file, serde_json::to_vec(&h).unwrap()).unwrap();

    let dry = s.state.engine.replay(&h).await;
    let m = dry.mismatch.expect("the replay finds the rename");
    assert_eq!(m.expected.name, old);
    assert_eq!(m.found.name, slate_workflows::names::film::STITCH);
    assert!(seqs.contains(&m.seq), "seq {} is not the stitch's", m.seq);

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_slate"));
    common::serve::scrub(&mut cmd);
    let out = cmd
        .args(["replay", file.to_str().unwrap()])
        .env("SLATE_DATA_DIR", &s.data)
        .env("SLATE_DATABASE_URL", &s.state.config.database_url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("BLOCKS"))
        .unwrap_or_else(|| panic!("no run blocks: {text}"));
    for want in [
        h.run.id.to_string(),
        format!("at seq {}", m.seq),
        format!("the journal has `{old}`"),
        "the code asks for `stitch`".to_string(),
    ] {
        assert!(line.contains(&want), "`{want}` missing from: {line}");
    }
    assert!(
        text.contains("film.generate v1: 1 run(s), 1 would block"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    s.stop().await;
}
