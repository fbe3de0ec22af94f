//! Crash tests with real processes: a worker is killed with SIGKILL at every kind of point of a
//! multi-step run and a new one is started; the run must complete with every side effect done
//! exactly once (counted in files outside the engine) and its limit counters intact. A second
//! test runs two workers on one Postgres and kills one: the other takes its runs over when
//! their leases lapse.
//!
//! (Over 600 lines on purpose: the SIGKILL tests share one spawned-process harness; each test
//! kills at a different point of the same pipeline.)

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use slate_engine::testing::{fresh_postgres_url, fresh_sqlite_path, test_config};
use slate_engine::{Engine, EventData, RunId, RunStatus, StartOptions};
use slate_tests::{CrashInput, CrashPipeline, Sink};

const WAIT: Duration = Duration::from_secs(60);

struct Worker {
    child: Child,
}

impl Worker {
    fn spawn(url: &str, sink: &Sink, lease_ms: u64, concurrency: usize) -> Worker {
        Self::spawn_with(url, sink, lease_ms, concurrency, &[])
    }

    fn spawn_with(
        url: &str,
        sink: &Sink,
        lease_ms: u64,
        concurrency: usize,
        env: &[(&str, &str)],
    ) -> Worker {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sink.dir().join("worker.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_crash-worker"))
            .arg(url)
            .arg(sink.dir())
            .arg(lease_ms.to_string())
            .arg(concurrency.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start crash-worker");
        Worker { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has died by itself.
    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGKILL: no destructor, no graceful shutdown, no lease release.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_marker(sink: &Sink, marker: &str, pid: u32) {
    let deadline = Instant::now() + WAIT;
    while !sink.marker_pids(marker).contains(&pid) {
        assert!(
            Instant::now() < deadline,
            "worker {pid} never reached `{marker}`; log:\n{}",
            std::fs::read_to_string(sink.dir().join("worker.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_status(engine: &Engine, id: RunId, status: RunStatus) {
    let deadline = Instant::now() + WAIT;
    loop {
        if engine.get(id).await.unwrap().status == status {
            return;
        }
        assert!(Instant::now() < deadline, "run {id} never reached {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn database(postgres: bool) -> String {
    if postgres {
        fresh_postgres_url().await.unwrap()
    } else {
        format!("sqlite://{}", fresh_sqlite_path().display())
    }
}

fn sink() -> Sink {
    Sink::new(std::env::temp_dir().join(format!("slate-crash-{}", uuid_like())))
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

async fn client(url: &str, sink: &Sink) -> Engine {
    // Only starts runs and reads them: no worker runs in the test process.
    let engine = Engine::connect(url, test_config()).await.unwrap();
    engine.register(CrashPipeline { sink: sink.clone() });
    engine
}

async fn kill_at_every_point(postgres: bool) {
    let url = database(postgres).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let input = CrashInput {
        label: "r".into(),
        pause_ms: 1500,
        rejects: 2,
        max_attempts: 5,
        layers: 3,
        max_layers: 20,
        wait_for_approval: true,
        abort_in_a: false,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    // A long lease: taking the run over must not wait for it to lapse.
    let lease_ms = 60_000;
    let mut w = Worker::spawn(&url, &sink, lease_ms, 4);
    for point in [
        "inside:r:a",        // inside a step
        "between:r:a-b",     // between two steps
        "inside:r:verify/2", // inside the second of the bounded attempts
        "inside:r:layer/1",  // inside the bounded loop
    ] {
        wait_marker(&sink, point, w.pid()).await;
        w.kill();
        w = Worker::spawn(&url, &sink, lease_ms, 4);
    }
    // While it waits for a signal: no process holds the run, and none needs to.
    wait_marker(&sink, "waiting:r", w.pid()).await;
    wait_status(&engine, id, RunStatus::Waiting).await;
    w.kill();
    let w = Worker::spawn(&url, &sink, lease_ms, 4);
    engine
        .signal(
            Some(id),
            "approve",
            Some("approval-1".into()),
            json!({"by": "test"}),
        )
        .await
        .unwrap();
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(
        run.output,
        Some(json!({"accepted_at": 3, "layers": 3, "approval": {"by": "test"}}))
    );

    // Every side effect exactly once, and nothing else.
    let expected = [
        "r:a",
        "r:b",
        "r:verify/1",
        "r:verify/2",
        "r:verify/3",
        "r:layer/0",
        "r:layer/1",
        "r:layer/2",
        "r:c",
    ];
    for e in expected {
        assert_eq!(sink.effect_count(e), 1, "effect {e}: {:?}", sink.effects());
    }
    assert_eq!(sink.effects().len(), expected.len(), "{:?}", sink.effects());
    // The two steps killed mid-way ran twice; their effect still happened once.
    assert_eq!(sink.marker_pids("inside:r:a").len(), 2);
    assert_eq!(sink.marker_pids("inside:r:verify/2").len(), 2);
    // The attempt counter survived the kill in attempt 2: attempt 1 was never run again, and
    // the run did not start over at attempt 1.
    assert_eq!(sink.marker_pids("inside:r:verify/1").len(), 1);

    let events = engine.store().events(id).await.unwrap();
    let recovered: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e.data,
                EventData::RunClaimed {
                    recovered: true,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(recovered.len(), 4, "one takeover per kill while running");
    // Each takeover came from the restarted worker noticing the dead one, not from the 60 s
    // lease lapsing.
    for r in &recovered {
        let before = events.iter().rev().find(|e| e.seq < r.seq).unwrap();
        let gap = (r.at - before.at).to_std().unwrap();
        assert!(
            gap < Duration::from_millis(lease_ms),
            "took over after {gap:?}"
        );
    }
}

/// A step whose worker is SIGKILLed inside it seven times in a row, more than its five allowed
/// attempts, still completes: attempts cut short by a dying worker are not failures (decision
/// 0014). Re-runs after the first back off.
async fn interrupted_attempts_are_not_failures(postgres: bool) {
    let url = database(postgres).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let input = CrashInput {
        label: "i".into(),
        pause_ms: 600,
        rejects: 0,
        max_attempts: 5,
        layers: 0,
        max_layers: 20,
        wait_for_approval: false,
        abort_in_a: false,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    let env = [("SLATE_TEST_CRASH_LOOP_BACKOFF_MS", "40")];
    let mut w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
    let kills = 7;
    for k in 0..kills {
        wait_marker(&sink, "inside:i:a", w.pid()).await;
        // Killed once this attempt's start is on disk, as it is for any step that runs more
        // than a few milliseconds (a quicker death is the run-level guard's, below).
        wait_starts(&engine, id, "a", k + 1).await;
        w.kill();
        w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
    }
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(sink.effect_count("i:a"), 1);
    assert_eq!(sink.marker_pids("inside:i:a").len(), kills + 1);
    let events = engine.store().events(id).await.unwrap();
    let starts: Vec<_> = events
        .iter()
        .filter(|e| {
            e.step.as_deref() == Some("a") && matches!(e.data, EventData::StepStarted { .. })
        })
        .collect();
    assert_eq!(starts.len(), kills + 1, "one start per attempt");
    assert!(
        !events
            .iter()
            .any(|e| e.step.as_deref() == Some("a")
                && matches!(e.data, EventData::StepFailed { .. })),
        "no attempt of `a` is recorded as failed"
    );
    // The re-runs backed off: the n-th re-run in a row waited 40 ms x 2^(n-2) after the last
    // start (the first re-run went at once).
    for (n, pair) in starts.windows(2).enumerate().skip(1) {
        let gap = (pair[1].at - pair[0].at).to_std().unwrap();
        let want = Duration::from_millis(40 << (n - 1));
        assert!(
            gap >= want,
            "re-run {} after {gap:?}, wanted {want:?}",
            n + 1
        );
    }
}

/// A step that kills its worker every time is stopped after the crash-loop limit, with a
/// failure that names it, and is not started again.
async fn a_crash_loop_is_stopped(postgres: bool) {
    let url = database(postgres).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let input = CrashInput {
        label: "c".into(),
        pause_ms: 600,
        rejects: 0,
        max_attempts: 5,
        layers: 0,
        max_layers: 20,
        wait_for_approval: false,
        abort_in_a: false,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    let env = [
        ("SLATE_TEST_CRASH_LOOP_LIMIT", "3"),
        ("SLATE_TEST_CRASH_LOOP_BACKOFF_MS", "20"),
    ];
    let mut w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
    for k in 0..3 {
        wait_marker(&sink, "inside:c:a", w.pid()).await;
        wait_starts(&engine, id, "a", k + 1).await;
        w.kill();
        w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
    }
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Failed);
    let e = run.error.unwrap();
    // The step's failure, as every step failure reaches its run: the step's own error inside.
    assert_eq!(e.details["kind"], "crash_loop", "{e:?}");
    assert_eq!(e.step.as_deref(), Some("a"));
    assert!(e.message.contains("3 times in a row"), "{}", e.message);
    assert_eq!(
        sink.marker_pids("inside:c:a").len(),
        3,
        "not started a 4th time"
    );
    assert_eq!(sink.effect_count("c:a"), 0);
}

async fn wait_starts(engine: &Engine, id: RunId, step: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let events = engine.store().events(id).await.unwrap();
        let starts = events
            .iter()
            .filter(|e| {
                e.step.as_deref() == Some(step) && matches!(e.data, EventData::StepStarted { .. })
            })
            .count();
        if starts >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "attempt {n} of `{step}` never journaled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A step that aborts its process at once, every time, before its start reaches the disk:
/// the run-level guard stops the run after the limit, however the deaths fall between the two
/// guards, and no worker is started for it again.
async fn a_worker_that_dies_at_once_is_stopped(postgres: bool) {
    let url = database(postgres).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let input = CrashInput {
        label: "x".into(),
        pause_ms: 0,
        rejects: 0,
        max_attempts: 5,
        layers: 0,
        max_layers: 20,
        wait_for_approval: false,
        abort_in_a: true,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    let env = [
        ("SLATE_TEST_CRASH_LOOP_LIMIT", "3"),
        ("SLATE_TEST_CRASH_LOOP_BACKOFF_MS", "20"),
    ];
    let mut deaths = 0;
    let mut w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
    let deadline = Instant::now() + WAIT;
    loop {
        let run = engine.get(id).await.unwrap();
        if run.status.is_terminal() {
            assert_eq!(run.status, RunStatus::Failed);
            // Either guard may have stopped it, by how the deaths fell: the run's (nothing
            // journaled between takeovers) or the step's (its starts journaled).
            let e = run.error.unwrap();
            let kind = if e.kind == "crash_loop" {
                e.kind.clone()
            } else {
                e.details["kind"].as_str().unwrap_or("").to_string()
            };
            assert_eq!(kind, "crash_loop", "{e:?}");
            break;
        }
        if w.exited() {
            deaths += 1;
            // Each guard needs at most `limit` deaths in a row; interleaved, at most twice.
            assert!(deaths <= 6, "{deaths} deaths and the run still goes on");
            w = Worker::spawn_with(&url, &sink, 60_000, 4, &env);
        }
        assert!(Instant::now() < deadline, "the run never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        deaths >= 3,
        "stopped after {deaths} deaths, before the limit"
    );
    // The worker that found the loop is alive and well.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!w.exited(), "a worker died after the run was stopped");
}

async fn limits_survive_a_crash(postgres: bool) {
    let url = database(postgres).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let input = CrashInput {
        label: "l".into(),
        pause_ms: 800,
        rejects: 0,
        max_attempts: 5,
        layers: 6,
        max_layers: 4,
        wait_for_approval: false,
        abort_in_a: false,
    };
    let id = engine
        .start::<CrashPipeline>(&input, StartOptions::default())
        .await
        .unwrap()
        .run
        .id;
    let w = Worker::spawn(&url, &sink, 60_000, 4);
    wait_marker(&sink, "inside:l:layer/2", w.pid()).await;
    w.kill();
    let w = Worker::spawn(&url, &sink, 60_000, 4);
    let run = engine.wait_for(id, WAIT).await.unwrap();
    drop(w);
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("layers"));
    // Four layers in all, two before the crash and two after: the count did not restart.
    for k in 0..4 {
        assert_eq!(sink.effect_count(&format!("l:layer/{k}")), 1);
    }
    assert_eq!(sink.effect_count("l:layer/4"), 0);
    assert_eq!(sink.effect_count("l:c"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_at_every_point() {
    kill_at_every_point(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_at_every_point() {
    kill_at_every_point(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_interrupted_attempts_are_not_failures() {
    interrupted_attempts_are_not_failures(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_interrupted_attempts_are_not_failures() {
    interrupted_attempts_are_not_failures(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_crash_loop_is_stopped() {
    a_crash_loop_is_stopped(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_crash_loop_is_stopped() {
    a_crash_loop_is_stopped(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_worker_that_dies_at_once_is_stopped() {
    a_worker_that_dies_at_once_is_stopped(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_worker_that_dies_at_once_is_stopped() {
    a_worker_that_dies_at_once_is_stopped(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_limits_survive_a_crash() {
    limits_survive_a_crash(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_limits_survive_a_crash() {
    limits_survive_a_crash(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_second_worker_takes_over_after_the_lease_lapses() {
    let url = database(true).await;
    let sink = sink();
    let engine = client(&url, &sink).await;
    let mut ids = vec![];
    for k in 0..8 {
        let input = CrashInput {
            label: format!("w{k}"),
            pause_ms: 1500,
            rejects: 0,
            max_attempts: 3,
            layers: 1,
            max_layers: 5,
            wait_for_approval: false,
            abort_in_a: false,
        };
        ids.push(
            engine
                .start::<CrashPipeline>(&input, StartOptions::default())
                .await
                .unwrap()
                .run
                .id,
        );
    }
    let lease_ms = 2_000;
    let a = Worker::spawn(&url, &sink, lease_ms, 4);
    let b = Worker::spawn(&url, &sink, lease_ms, 4);
    let (a_pid, b_pid) = (a.pid(), b.pid());
    // Both hold runs inside their first step.
    let deadline = Instant::now() + WAIT;
    let started_by = |pid: u32| {
        (0..8)
            .filter(|k| sink.marker_pids(&format!("inside:w{k}:a")).contains(&pid))
            .count()
    };
    while started_by(a_pid) == 0 || started_by(b_pid) == 0 {
        assert!(Instant::now() < deadline, "both workers should get runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = chrono::Utc::now();
    a.kill();
    for id in &ids {
        let run = engine.wait_for(*id, WAIT).await.unwrap();
        assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    }
    drop(b);
    for k in 0..8 {
        for step in ["a", "b", "verify/1", "layer/0", "c"] {
            assert_eq!(sink.effect_count(&format!("w{k}:{step}")), 1, "w{k}:{step}");
        }
    }
    // The runs the killed worker held were taken over by the survivor, once their leases had
    // lapsed (the survivor was already running, so it learned of the death from the lease).
    let mut taken_over = 0;
    for id in &ids {
        let events = engine.store().events(*id).await.unwrap();
        for e in &events {
            if let EventData::RunClaimed {
                worker,
                recovered: true,
                ..
            } = &e.data
            {
                assert!(
                    worker.contains(&format!(":{b_pid}:")),
                    "taken over by {worker}"
                );
                let waited = (e.at - killed_at).to_std().unwrap_or_default();
                assert!(
                    waited >= Duration::from_millis(lease_ms / 2),
                    "took over after {waited:?}"
                );
                taken_over += 1;
            }
        }
    }
    assert!(
        taken_over >= 1,
        "the survivor took over the killed worker's runs"
    );
}
