//! `slate-bench`: Slate's benchmarks, a binary of their own so that the fake providers and the
//! engine's benchmark hooks never ship in `slate` (decision 0024).

use clap::Parser;

/// Slate's benchmarks (figures in docs/benchmarks.md).
#[derive(Parser)]
#[command(name = "slate-bench", version)]
struct Cli {
    #[command(subcommand)]
    what: slate_bench::BenchCommand,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLATE_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(slate_bench::run(cli.what)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
