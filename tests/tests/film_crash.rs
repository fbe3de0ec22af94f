//! Crash tests of the film workflows with real worker processes killed by SIGKILL: no view
//! generated twice, and the spec's limits (20 composite iterations, 5 verification attempts)
//! counted from the journal across the kill.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slate_engine::{EventData, RunStatus, StartOptions};
use slate_tests::{CountingImages, film, quick_film_config};
use slate_workflows::examples;
use slate_workflows::generation::{SceneGeneration, SceneInput};
use slate_workflows::model::SceneStatus;
use slate_workflows::qualification::{Qualification, QualifyInput};

const WAIT: Duration = Duration::from_secs(240);

struct Worker(Child);

impl Worker {
    fn spawn(url: &str, data: &Path, env: &[(&str, String)]) -> Worker {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("worker.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_film-worker"));
        cmd.arg(url).arg(data).stdout(Stdio::null()).stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Worker(cmd.spawn().expect("start film-worker"))
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "slate-film-crash-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn log_of(data: &Path) -> String {
    std::fs::read_to_string(data.join("worker.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_phase_a_regenerates_no_view() {
    let data = data_dir();
    let url = format!("sqlite://{}", data.join("slate.db").display());
    let provider_log = data.join("provider.log");
    let (engine, f) = film(&url, &data, quick_film_config()).await.unwrap();
    let slug = examples::load(&f, examples::LANTERN_KEEPER, None)
        .await
        .unwrap();
    // Two images at a time (the limit is kept in the database, so the worker process holds
    // to it): the views finish a pair at a time, and the kill below lands among them rather
    // than after all eighteen finished together.
    engine
        .set_concurrency_limit("images", Some(2))
        .await
        .unwrap();
    let id = engine
        .start::<Qualification>(
            &QualifyInput {
                project: slug.clone(),
                edit_window_secs: Some(0),
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    let env = [
        (
            "SLATE_TEST_PROVIDER_LOG",
            provider_log.display().to_string(),
        ),
        ("SLATE_TEST_IMAGE_DELAY_MS", "400".to_string()),
    ];
    let w = Worker::spawn(&url, &data, &env);
    let first = w.pid();
    // Mid-phase A: some views are journaled, others are not.
    let journaled_views = |events: &[slate_engine::EventRecord]| -> Vec<String> {
        events
            .iter()
            .filter(|e| matches!(e.data, EventData::StepSucceeded { .. }))
            .filter_map(|e| e.step.clone())
            .filter(|s| {
                s.starts_with("characters/") && s.ends_with("/submit") && !s.contains("/master/")
            })
            .collect()
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let n = journaled_views(&engine.store().events(id).await.unwrap()).len();
        if n >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "phase A never got going:\n{}",
            log_of(&data)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.kill();
    // What the journal holds as generated when the worker died.
    let generated = journaled_views(&engine.store().events(id).await.unwrap());
    assert!(generated.len() < 18, "the kill landed inside phase A");
    let w = Worker::spawn(&url, &data, &env);
    let second = w.pid();
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(
        run.status,
        RunStatus::Completed,
        "{:?}\n{}",
        run.error,
        log_of(&data)
    );
    let calls = CountingImages::read(&provider_log);
    for step in &generated {
        // characters/<id>/<angle>/submit -> projects/<slug>/characters/<id>/<angle>.png
        let parts: Vec<&str> = step.split('/').collect();
        let key = format!("projects/{slug}/characters/{}/{}.png", parts[1], parts[2]);
        let after: Vec<_> = calls
            .iter()
            .filter(|(what, k, pid)| what == "start" && *k == key && *pid == second)
            .collect();
        assert!(
            after.is_empty(),
            "{key} was generated before the crash and again after it"
        );
        assert!(
            calls
                .iter()
                .any(|(what, k, pid)| what == "done" && *k == key && *pid == first)
        );
    }
    // Every view exists exactly once in the qualified data, and none was made three times.
    let profiles = f.qualified(&slug, "character_profiles").await.unwrap();
    assert_eq!(profiles.len(), 3);
    for p in &profiles {
        assert_eq!(p["references_360"].as_object().unwrap().len(), 6);
    }
    let views: Vec<&String> = calls
        .iter()
        .filter(|(w, k, _)| {
            w == "start" && k.contains("/characters/") && !k.ends_with("master.png")
        })
        .map(|(_, k, _)| k)
        .collect();
    let distinct: std::collections::BTreeSet<&&String> = views.iter().collect();
    assert_eq!(distinct.len(), 18);
    assert!(
        views.len() - 18 <= 18 - generated.len(),
        "only views in flight at the kill ran twice"
    );
}

/// Qualify the example under `name` with a worker in this process (no studio tweaks), then
/// stop that worker: what follows runs in worker processes.
async fn qualified(
    url: &str,
    data: &Path,
    name: &str,
) -> (
    slate_engine::Engine,
    std::sync::Arc<slate_workflows::Film>,
    slate_workflows::Slug,
) {
    let (engine, f) = film(url, data, quick_film_config()).await.unwrap();
    let slug = examples::load(&f, examples::LANTERN_KEEPER, Some(name))
        .await
        .unwrap();
    let id = engine
        .start::<Qualification>(
            &QualifyInput {
                project: slug.clone(),
                edit_window_secs: Some(0),
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    let stop = tokio_util::sync::CancellationToken::new();
    let w = tokio::spawn(engine.worker().concurrency(8).run(stop.clone()));
    let run = engine.wait_for(id, WAIT).await.unwrap();
    stop.cancel();
    let _ = w.await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    (engine, f, slug)
}

async fn start_first_scene(
    engine: &slate_engine::Engine,
    f: &slate_workflows::Film,
    slug: &slate_workflows::Slug,
) -> (slate_engine::RunId, String) {
    let scene = f.repo.scenes(slug).await.unwrap().remove(0);
    let id = engine
        .start::<SceneGeneration>(
            &SceneInput {
                project: slug.clone(),
                scene_id: scene.id.clone(),
                previous: None,
                priority: 0,
                previous_by_signal: false,
            },
            StartOptions::default(),
        )
        .await
        .unwrap()
        .run
        .id;
    (id, scene.id)
}

fn succeeded(events: &[slate_engine::EventRecord], pred: impl Fn(&str) -> bool) -> Vec<String> {
    events
        .iter()
        .filter(|e| matches!(e.data, EventData::StepSucceeded { .. }))
        .filter_map(|e| e.step.clone())
        .filter(|s| pred(s))
        .collect()
}

/// Wait until the run's journal satisfies `enough`.
async fn journal_reaches(
    engine: &slate_engine::Engine,
    id: slate_engine::RunId,
    data: &Path,
    enough: impl Fn(&[slate_engine::EventRecord]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        if enough(&engine.store().events(id).await.unwrap()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run never got there:\n{}",
            log_of(data)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_20_iteration_limit_holds_across_a_sigkill() {
    let data = data_dir();
    let url = format!("sqlite://{}", data.join("slate.db").display());
    let (engine, f, slug) = qualified(&url, &data, "greedy").await;
    let (id, scene_id) = start_first_scene(&engine, &f, &slug).await;
    let provider_log = data.join("provider.log");
    let env = [
        (
            "SLATE_TEST_PROVIDER_LOG",
            provider_log.display().to_string(),
        ),
        ("SLATE_TEST_IMAGE_DELAY_MS", "150".to_string()),
        // 25 layers more than the scene needs: the loop must stop at 20.
        ("SLATE_TEST_GREEDY_LAYERS", "25".to_string()),
    ];
    let recorded =
        |e: &[slate_engine::EventRecord]| succeeded(e, |s| s.starts_with("record/composite/"));
    let w = Worker::spawn(&url, &data, &env);
    journal_reaches(&engine, id, &data, |e| recorded(e).len() >= 8).await;
    w.kill();
    let before = recorded(&engine.store().events(id).await.unwrap()).len();
    assert!(
        before < 20,
        "killed in the middle of the loop ({before} iterations)"
    );

    let w = Worker::spawn(&url, &data, &env);
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Failed, "{}", log_of(&data));
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("composite"));
    assert!(err.message.contains("20"), "{}", err.message);
    let events = engine.store().events(id).await.unwrap();
    let markers: Vec<&str> = events
        .iter()
        .filter_map(|e| e.step.as_deref())
        .filter(|s| s.starts_with("composite#"))
        .collect();
    assert_eq!(
        markers.len(),
        21,
        "20 iteration markers, then the 21st: {markers:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.step.as_deref() == Some("composite#21") && e.data.kind() == "limit_exceeded"),
        "the journal records the limit at the 21st iteration"
    );
    let scene = f.repo.scene(&scene_id).await.unwrap();
    assert_eq!(scene.status, SceneStatus::Failed);
    assert_eq!(
        scene.composite_iterations.len(),
        20,
        "twenty iterations in all, across both workers"
    );
    assert!(
        scene
            .composite_iterations
            .iter()
            .all(|it| it.references_used.len() <= 3)
    );
    assert!(scene.error_message.unwrap().contains("limit `composite`"));
    let errors = f.repo.errors(false).await.unwrap();
    assert_eq!(errors.len(), 1, "one global error");
    assert!(errors[0].phase.contains("scene 1"), "{}", errors[0].phase);

    // At the provider: iterations 1 to 20 and no 21st; nothing journaled was made again.
    assert!(
        CountingImages::max_references(&provider_log) <= 3,
        "no request carried more than 3 references"
    );
    let calls = CountingImages::read(&provider_log);
    let iteration_of = |k: &str| -> Option<u32> {
        let name = k.rsplit('/').next()?.strip_prefix("composite-")?;
        name.split('-').next()?.parse().ok()
    };
    let iterations: std::collections::BTreeSet<u32> = calls
        .iter()
        .filter(|(w, _, _)| w == "start")
        .filter_map(|(_, k, _)| iteration_of(k))
        .collect();
    assert_eq!(
        iterations,
        (1..=20).collect(),
        "requests for iterations 1 to 20 only"
    );
    let starts: Vec<&String> = calls
        .iter()
        .filter(|(w, k, _)| w == "start" && k.contains("/composite-"))
        .map(|(_, k, _)| k)
        .collect();
    let distinct: std::collections::BTreeSet<&&String> = starts.iter().collect();
    assert!(
        starts.len() - distinct.len() <= 1,
        "only the image in flight at the kill was asked for twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_5_attempt_limit_holds_across_a_sigkill() {
    let data = data_dir();
    let url = format!("sqlite://{}", data.join("slate.db").display());
    let (engine, f, slug) = qualified(&url, &data, "rejected").await;
    let (id, scene_id) = start_first_scene(&engine, &f, &slug).await;
    let provider_log = data.join("provider.log");
    let env = [
        (
            "SLATE_TEST_PROVIDER_LOG",
            provider_log.display().to_string(),
        ),
        ("SLATE_TEST_IMAGE_DELAY_MS", "300".to_string()),
        // Every frame is rejected: verification must stop at 5 attempts.
        ("SLATE_TEST_VISION_FAIL_RATE", "1.0".to_string()),
    ];
    let candidates = |e: &[slate_engine::EventRecord]| {
        succeeded(e, |s| {
            s.starts_with("composite/1/a") && s.ends_with("/submit")
        })
    };
    let w = Worker::spawn(&url, &data, &env);
    journal_reaches(&engine, id, &data, |e| candidates(e).len() >= 2).await;
    w.kill();
    let before = candidates(&engine.store().events(id).await.unwrap()).len();
    assert!(before < 5, "killed between attempts ({before} made)");

    let w = Worker::spawn(&url, &data, &env);
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Failed, "{}", log_of(&data));
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("composite/1/verify"));
    assert!(
        err.message.contains("failure rate"),
        "the last rejection is named: {}",
        err.message
    );
    let events = engine.store().events(id).await.unwrap();
    assert_eq!(
        candidates(&events).len(),
        5,
        "five candidate images in the journal"
    );
    let calls = CountingImages::read(&provider_log);
    let keys: std::collections::BTreeSet<&String> = calls
        .iter()
        .filter(|(w, k, _)| w == "start" && k.contains("/composite-1-"))
        .map(|(_, k, _)| k)
        .collect();
    assert_eq!(
        keys.len(),
        5,
        "five distinct candidates at the provider: {keys:?}"
    );
    let scene = f.repo.scene(&scene_id).await.unwrap();
    assert_eq!(scene.status, SceneStatus::Failed);
    assert!(scene.composite_iterations.is_empty());
}
