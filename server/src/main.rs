//! `slate`: the command-line entry point (see `slate --help`).

use clap::{Parser, Subcommand};

mod bench;

#[derive(Parser)]
#[command(
    name = "slate",
    version,
    about = "Slate: a durable workflow engine for AI film production"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLATE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench { what } => bench::run(what).await,
    }
}
