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
    let config = EngineConfig {
        lease: Duration::from_millis(lease_ms.parse()?),
        poll_interval: Duration::from_millis(50),
        ..EngineConfig::default()
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
