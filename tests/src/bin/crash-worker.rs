//! A worker process for the crash tests:
//! `crash-worker <database-url> <sink-dir> <lease-ms> <concurrency>`.
//! It executes `test.crash-pipeline` runs until it is killed.

use std::time::Duration;

use slate_engine::{Engine, EngineConfig};
use slate_tests::{CrashPipeline, Sink};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("slate_engine=info"))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let [_, url, sink, lease_ms, concurrency] = args.as_slice() else {
        anyhow::bail!("usage: crash-worker <database-url> <sink-dir> <lease-ms> <concurrency>");
    };
    let defaults = EngineConfig::default();
    // The crash-loop guard's settings, so that a test can reach them in seconds.
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let config = EngineConfig {
        lease: Duration::from_millis(lease_ms.parse()?),
        poll_interval: Duration::from_millis(50),
        crash_loop_limit: env_num("SLATE_TEST_CRASH_LOOP_LIMIT")
            .map(|n| n as u32)
            .unwrap_or(defaults.crash_loop_limit),
        crash_loop_backoff: env_num("SLATE_TEST_CRASH_LOOP_BACKOFF_MS")
            .map(Duration::from_millis)
            .unwrap_or(defaults.crash_loop_backoff),
        ..defaults
    };
    let engine = Engine::connect(url, config).await?;
    engine.register(CrashPipeline {
        sink: Sink::new(sink),
    });
    engine
        .worker()
        .concurrency(concurrency.parse()?)
        .run(CancellationToken::new())
        .await?;
    Ok(())
}
