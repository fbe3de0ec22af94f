//! Slate's benchmarks, in a binary of their own (`slate-bench`) so that the fake providers they
//! run against and the engine's benchmark hooks never ship in `slate` (decision 0024).
//!
//! `slate-bench engine`: the engine benchmark on Postgres and SQLite, each on a database of its
//! own, against the bare single-row INSERT commit rate of the same database.
//!
//! `slate-bench film`: a generated film against latency-scaled providers ([`crate::film`]).
//!
//! `slate-bench dashboard`: how long the dashboard takes to serve the page of a run with
//! thousands of events.

pub mod film;

use anyhow::Context;
use clap::Subcommand;
use slate_engine::bench::{BenchOptions, BenchReport};
use slate_engine::testing::{fresh_postgres_url_on, fresh_sqlite_path, postgres_admin_url};
use slate_engine::{Engine, EngineConfig};

/// `slate-bench ...`
#[derive(Subcommand)]
pub enum BenchCommand {
    /// W runs of S no-op steps at concurrency C, on Postgres and SQLite.
    Engine {
        /// Runs (W).
        #[arg(long, default_value_t = 1000)]
        runs: usize,
        /// Steps per run (S).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Runs executing at once (C).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds of the bare-commit baseline.
        #[arg(long, default_value_t = 3)]
        bare_seconds: u64,
        /// Postgres server to create the benchmark database on (a maintenance database URL).
        #[arg(long, env = "SLATE_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Skip SQLite.
        #[arg(long)]
        no_sqlite: bool,
        /// Skip Postgres.
        #[arg(long)]
        no_postgres: bool,
        /// Longest a checkpoint waits for others to share its commit, microseconds.
        #[arg(long, default_value_t = 1000)]
        commit_delay_us: u64,
        /// Committer tasks (each commits its own batches; more overlap commits).
        #[arg(long)]
        committers: Option<usize>,
    },
    /// A generated N-scene film against latency-scaled fake providers: wall time against the
    /// sequential time and the lower bound the providers and limits allow.
    Film(crate::film::FilmBenchArgs),
    /// The run page of a run with E events, served R times, on SQLite and Postgres.
    Dashboard {
        /// Events in the run's history (E).
        #[arg(long, default_value_t = 5000)]
        events: usize,
        /// Requests of its page (R).
        #[arg(long, default_value_t = 20)]
        requests: usize,
        /// Postgres server to create the benchmark database on (a maintenance database URL).
        #[arg(long, env = "SLATE_TEST_DATABASE_URL")]
        postgres: Option<String>,
        /// Skip Postgres.
        #[arg(long)]
        no_postgres: bool,
    },
}

/// Run a benchmark and print its figures.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Engine {
            runs,
            steps,
            concurrency,
            bare_seconds,
            postgres,
            no_sqlite,
            no_postgres,
            commit_delay_us,
            committers,
        } => {
            engine(
                runs,
                steps,
                concurrency,
                bare_seconds,
                postgres,
                no_sqlite,
                no_postgres,
                commit_delay_us,
                committers,
            )
            .await
        }
        BenchCommand::Film(args) => crate::film::run(args).await,
        BenchCommand::Dashboard {
            events,
            requests,
            postgres,
            no_postgres,
        } => dashboard(events, requests, postgres, no_postgres).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn engine(
    runs: usize,
    steps: usize,
    concurrency: usize,
    bare_seconds: u64,
    postgres: Option<String>,
    no_sqlite: bool,
    no_postgres: bool,
    commit_delay_us: u64,
    committers: Option<usize>,
) -> anyhow::Result<()> {
    let defaults = EngineConfig::default();
    let config = EngineConfig {
        commit_delay: std::time::Duration::from_micros(commit_delay_us),
        committers: committers.unwrap_or(defaults.committers).max(1),
        ..defaults
    };
    let admin = postgres.unwrap_or_else(postgres_admin_url);
    let opts = BenchOptions {
        runs,
        steps,
        concurrency,
        bare_duration: std::time::Duration::from_secs(bare_seconds),
    };
    println!(
        "slate-bench engine: W={runs} runs x S={steps} no-op steps, C={concurrency} concurrent runs \
         (after a warm-up of {} runs); baseline: bare single-row INSERT commits from {concurrency} connections for {bare_seconds}s",
        runs.div_ceil(10).max(concurrency)
    );
    if !no_sqlite {
        let path = fresh_sqlite_path();
        let engine = Engine::connect(&format!("sqlite://{}", path.display()), config.clone())
            .await
            .context("open the benchmark SQLite database")?;
        let r = slate_engine::bench::run(&engine, opts).await?;
        println!("{r}");
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if no_postgres {
        return Ok(());
    }
    let url = fresh_postgres_url_on(&admin).await.with_context(|| {
        format!(
            "create a benchmark database on {} (set SLATE_TEST_DATABASE_URL or --postgres)",
            slate_engine::store::redact_url(&admin)
        )
    })?;
    let engine = Engine::connect(&url, config).await?;
    let r: BenchReport = slate_engine::bench::run(&engine, opts).await?;
    println!("{r}");
    drop(engine);
    let _ = slate_engine::testing::drop_postgres_database(&admin, &url).await;
    println!(
        "engine_steps_per_s={:.0} bare_commits_per_s={:.0} ratio={:.2}",
        r.steps_per_s, r.bare_commits_per_s, r.ratio
    );
    Ok(())
}

/// A run of many small steps: a long history.
struct ManySteps;

impl slate_engine::Workflow for ManySteps {
    const NAME: &'static str = "bench.many-steps";
    type Input = usize;
    type Output = usize;
    async fn run(
        &self,
        ctx: slate_engine::Ctx,
        steps: usize,
    ) -> Result<usize, slate_engine::WfError> {
        for i in 0..steps {
            ctx.step(format!("step/{i}"), move |_| async move { Ok(i) })
                .await?;
        }
        Ok(steps)
    }
}

async fn dashboard(
    events: usize,
    requests: usize,
    postgres: Option<String>,
    no_postgres: bool,
) -> anyhow::Result<()> {
    println!(
        "slate-bench dashboard: the page of a run with about {events} events, requested {requests} times (in process, rendering included)"
    );
    let admin = postgres.unwrap_or_else(postgres_admin_url);
    let mut stores = vec![("sqlite", None)];
    if !no_postgres {
        let url = fresh_postgres_url_on(&admin).await.with_context(|| {
            format!(
                "create a benchmark database on {} (set SLATE_TEST_DATABASE_URL or --no-postgres)",
                slate_engine::store::redact_url(&admin)
            )
        })?;
        stores.push(("postgres", Some(url)));
    }
    for (name, url) in stores {
        let dir = std::env::temp_dir().join(format!("slate-bench-ui-{}", uuid::Uuid::new_v4()));
        let db = url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.join("slate.db").display()));
        let config = slate_server::config::Config::load(None, |k| match k {
            "SLATE_DATA_DIR" => Some(dir.display().to_string()),
            "SLATE_DATABASE_URL" => Some(db.clone()),
            _ => None,
        })
        .map_err(anyhow::Error::msg)?;
        let state = slate_server::build(config).await?;
        state.engine.register(ManySteps);
        let stop = tokio_util::sync::CancellationToken::new();
        let worker = state.engine.worker().concurrency(1);
        let w = tokio::spawn(worker.run(stop.clone()));
        // A successful step journals its start and its result: two events.
        let steps = events.div_ceil(2);
        let run = state
            .engine
            .start::<ManySteps>(&steps, slate_engine::StartOptions::default())
            .await?
            .run
            .id;
        let done = state
            .engine
            .wait_for(run, std::time::Duration::from_secs(600))
            .await?;
        anyhow::ensure!(
            done.status == slate_engine::RunStatus::Completed,
            "the benchmark run {}",
            done.status
        );
        let n = state.engine.store().events(run).await?.len();
        let app = slate_server::app::router(state.clone());
        let mut times = vec![];
        let mut bytes = 0;
        for _ in 0..requests.max(1) {
            use tower::ServiceExt;
            let req =
                axum::http::Request::get(format!("/runs/{run}")).body(axum::body::Body::empty())?;
            let t = std::time::Instant::now();
            let res = app.clone().oneshot(req).await?;
            let status = res.status();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
            times.push(t.elapsed());
            anyhow::ensure!(status.is_success(), "the run page answered {status}");
            let text = String::from_utf8_lossy(&body);
            anyhow::ensure!(
                text.contains(&format!("{n} events; showing 100 after #0")),
                "the page does not show the first page of events"
            );
            bytes = body.len();
        }
        times.sort();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<8} events={n} page_bytes={bytes} p50_ms={:.1} p95_ms={:.1} max_ms={:.1}",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 95 / 100).min(times.len() - 1)]),
            ms(*times.last().unwrap())
        );
        stop.cancel();
        let _ = w.await;
        drop(app);
        drop(state);
        if let Some(u) = url {
            let _ = slate_engine::testing::drop_postgres_database(&admin, &u).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
