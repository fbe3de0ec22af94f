//! Crash tests of the film workflows with real worker processes killed by SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slate_engine::{EventData, RunStatus, StartOptions};
use slate_tests::{CountingImages, film, quick_film_config};
use slate_workflows::examples;
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
