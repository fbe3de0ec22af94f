//! The engine benchmark: W runs of S no-op steps at concurrency C, against the rate of bare
//! single-row INSERT commits the same database sustains from the same program at the same
//! concurrency (the physical limit a checkpoint is measured against).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{EngineError, Result, WfError};
use crate::{Ctx, Engine, StartOptions, Workflow};

/// The benchmark's workflow: `steps` steps that do nothing but get journaled.
#[derive(Debug, Clone, Copy)]
pub struct NoopSteps;

/// Input of [`NoopSteps`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoopInput {
    /// Steps per run.
    pub steps: usize,
}

impl Workflow for NoopSteps {
    const NAME: &'static str = "bench.noop";
    type Input = NoopInput;
    type Output = usize;
    async fn run(&self, ctx: Ctx, input: NoopInput) -> Result<usize, WfError> {
        let mut sum = 0;
        for i in 0..input.steps {
            sum += ctx
                .step(format!("s{i}"), move |_| async move { Ok(i) })
                .await?;
        }
        Ok(sum)
    }
}

/// Benchmark settings.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Runs (W).
    pub runs: usize,
    /// Steps per run (S).
    pub steps: usize,
    /// Runs executing at once (C): the worker's concurrency.
    pub concurrency: usize,
    /// How long the bare-commit baseline runs.
    pub bare_duration: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            runs: 1000,
            steps: 10,
            concurrency: 16,
            bare_duration: Duration::from_secs(3),
        }
    }
}

/// Figures of one benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `postgres` or `sqlite`.
    pub store: String,
    /// Runs.
    pub runs: usize,
    /// Steps per run.
    pub steps: usize,
    /// Concurrency.
    pub concurrency: usize,
    /// Wall time from the first claim to the last completion, seconds.
    pub seconds: f64,
    /// Steps completed per second.
    pub steps_per_s: f64,
    /// Runs completed per second.
    pub runs_per_s: f64,
    /// Median checkpoint latency (queue + commit), ms.
    pub checkpoint_p50_ms: f64,
    /// 99th percentile checkpoint latency, ms.
    pub checkpoint_p99_ms: f64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Commits that carried them.
    pub commits: u64,
    /// Mean time of one such commit as the engine saw it, ms.
    pub commit_ms: f64,
    /// Bare single-row INSERT commits per second at the same concurrency.
    pub bare_commits_per_s: f64,
    /// `steps_per_s / bare_commits_per_s`.
    pub ratio: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{store:<8} W={w} S={s} C={c}: {sps:.0} steps/s, {rps:.1} runs/s, checkpoint p50 {p50:.2} ms p99 {p99:.2} ms, \
             {cp} checkpoints in {cm} commits ({per:.1}/commit, {cms:.2} ms each); bare INSERT commits {bare:.0}/s; ratio {ratio:.2}",
            store = self.store,
            w = self.runs,
            s = self.steps,
            c = self.concurrency,
            sps = self.steps_per_s,
            rps = self.runs_per_s,
            p50 = self.checkpoint_p50_ms,
            p99 = self.checkpoint_p99_ms,
            cp = self.checkpoints,
            cm = self.commits,
            per = self.checkpoints as f64 / self.commits.max(1) as f64,
            cms = self.commit_ms,
            bare = self.bare_commits_per_s,
            ratio = self.ratio,
        )
    }
}

/// Run the benchmark on `engine` (which should be on a database of its own).
pub async fn run(engine: &Engine, opts: BenchOptions) -> Result<BenchReport> {
    use std::sync::atomic::Ordering;
    engine.register(NoopSteps);
    // Warm up: open the pools' connections and prepare the statements, outside the clock.
    let warm = opts.runs.div_ceil(10).max(opts.concurrency);
    let mut warm_ids = vec![];
    for _ in 0..warm {
        warm_ids.push(
            engine
                .start::<NoopSteps>(&NoopInput { steps: opts.steps }, StartOptions::default())
                .await?
                .run
                .id,
        );
    }
    {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(
            engine
                .worker()
                .concurrency(opts.concurrency)
                .run(stop.clone()),
        );
        for id in warm_ids {
            engine.wait_for(id, Duration::from_secs(120)).await?;
        }
        stop.cancel();
        let _ = handle.await;
    }
    let scope = format!("bench-{}", uuid::Uuid::now_v7());
    let mut ids = Vec::with_capacity(opts.runs);
    for _ in 0..opts.runs {
        let s = engine
            .start::<NoopSteps>(
                &NoopInput { steps: opts.steps },
                StartOptions {
                    scope: Some(scope.clone()),
                    ..Default::default()
                },
            )
            .await?;
        ids.push(s.run.id);
    }
    let m = engine.metrics();
    m.reset_checkpoint_samples();
    let batches0 = m.batches.load(Ordering::Relaxed);
    let checkpoints0 = m.checkpoints.load(Ordering::Relaxed);
    let micros0 = m.commit_micros.load(Ordering::Relaxed);
    let done0 = m.runs_completed.load(Ordering::Relaxed) as i64;
    let stop = CancellationToken::new();
    let started = Instant::now();
    let worker = engine.worker().concurrency(opts.concurrency);
    let handle = tokio::spawn(worker.run(stop.clone()));
    let deadline = started + Duration::from_secs(600);
    loop {
        // Counted in process, so that watching adds no load to the database.
        let done = m.runs_completed.load(Ordering::Relaxed) as i64 - done0;
        if done >= opts.runs as i64 {
            break;
        }
        if Instant::now() > deadline {
            stop.cancel();
            return Err(EngineError::Conflict(format!(
                "benchmark did not finish: {done} of {} runs completed in 10 minutes",
                opts.runs
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = handle.await;
    for id in ids.iter().take(3) {
        let r = engine.get(*id).await?;
        if r.output != Some(serde_json::json!((0..opts.steps).sum::<usize>())) {
            return Err(EngineError::Conflict(format!(
                "benchmark run {id} finished with an unexpected output {:?}",
                r.output
            )));
        }
    }
    let q = m.checkpoint_quantiles();
    let checkpoints = m.checkpoints.load(Ordering::Relaxed) - checkpoints0;
    let commits = m.batches.load(Ordering::Relaxed) - batches0;
    let commit_ms =
        (m.commit_micros.load(Ordering::Relaxed) - micros0) as f64 / 1000.0 / commits.max(1) as f64;
    let bare = engine
        .store()
        .bare_commit_rate(opts.concurrency, opts.bare_duration)
        .await?;
    let steps_per_s = (opts.runs * opts.steps) as f64 / seconds;
    Ok(BenchReport {
        store: engine.store().dialect().to_string(),
        runs: opts.runs,
        steps: opts.steps,
        concurrency: opts.concurrency,
        seconds,
        steps_per_s,
        runs_per_s: opts.runs as f64 / seconds,
        checkpoint_p50_ms: q.p50_ms,
        checkpoint_p99_ms: q.p99_ms,
        checkpoints,
        commits,
        commit_ms,
        bare_commits_per_s: bare.per_second,
        ratio: steps_per_s / bare.per_second,
    })
}
