//! `slate bench engine`: the engine benchmark on Postgres and SQLite, each on a database of its
//! own, against the bare single-row INSERT commit rate of the same database.

use anyhow::Context;
use clap::Subcommand;
use slate_engine::bench::{BenchOptions, BenchReport};
use slate_engine::testing::{fresh_postgres_url_on, fresh_sqlite_path, postgres_admin_url};
use slate_engine::{Engine, EngineConfig};

/// `slate bench ...`
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
}

/// Run a benchmark and print its figures.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Engine {
        runs,
        steps,
        concurrency,
        bare_seconds,
        postgres,
        no_sqlite,
        no_postgres,
        commit_delay_us,
        committers,
    } = cmd;
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
        "slate bench engine: W={runs} runs x S={steps} no-op steps, C={concurrency} concurrent runs \
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
