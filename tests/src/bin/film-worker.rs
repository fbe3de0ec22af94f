//! A worker process running the film workflows: `film-worker <database-url> <data-dir>`.
//! Providers come from the environment (as in production); `SLATE_TEST_PROVIDER_LOG` wraps the
//! image provider in a counter. It runs until it is killed.

use slate_tests::{film, quick_film_config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "slate_engine=info,slate_workflows=info",
        ))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let [_, url, data] = args.as_slice() else {
        anyhow::bail!("usage: film-worker <database-url> <data-dir>");
    };
    let (engine, _film) = film(url, std::path::Path::new(data), quick_film_config()).await?;
    engine
        .worker()
        .concurrency(8)
        .run(CancellationToken::new())
        .await?;
    Ok(())
}
