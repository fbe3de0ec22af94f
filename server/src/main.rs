//! `slate`: the command-line entry point (see `slate --help`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slate_server::{config::Config, demo, runs};

#[derive(Parser)]
#[command(
    name = "slate",
    version,
    about = "Slate: a durable workflow engine for AI film production"
)]
struct Cli {
    /// A TOML configuration file (default: <data dir>/slate.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Project commands open the database themselves (SLATE_DATABASE_URL, SLATE_DATA_DIR)
    /// instead of asking the server at SLATE_URL (default http://127.0.0.1:8080).
    #[arg(long, global = true)]
    direct: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and execute runs.
    Serve {
        /// Serve the API only; `slate worker` processes execute the runs (API processes
        /// behind a load balancer, see docs/deploy.md).
        #[arg(long)]
        api_only: bool,
    },
    /// Execute runs only (scale out: many workers on one Postgres).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configured providers: keys, models served, prices, media they can fetch,
    /// the public URL and webhook path. Exits non-zero when something would fail.
    Doctor {
        /// Only the checks that need no network (what `slate serve` checks at start).
        #[arg(long)]
        offline: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Projects: list, create (optionally from a bundled example), show.
    Projects {
        #[command(subcommand)]
        what: ProjectsCommand,
    },
    /// Each department's readiness and what it misses.
    Readiness {
        /// The project's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Qualify a project (behind the readiness gate).
    Qualify(StartCmd),
    /// Qualify a project and make its film.
    Produce(StartCmd),
    /// Make the film of a qualified project.
    Generate(StartCmd),
    /// Prompt templates: list, show, set a prompt from a file.
    Templates {
        #[command(subcommand)]
        what: TemplatesCommand,
    },
    /// List, inspect and administer runs.
    Runs {
        #[command(subcommand)]
        what: runs::RunsCommand,
    },
    /// What producing a project would cost with the configured providers (nothing runs).
    Estimate {
        /// The project's slug.
        slug: String,
        /// Print the estimate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a project's runs spent, per stage and kind of call, against the estimate.
    Costs {
        /// The project's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A project's gathered ideas: import a file, list the collections.
    Gather {
        #[command(subcommand)]
        what: GatherCommand,
    },
    /// The qualified screenplay: Fountain on standard output, or files (`--fountain`, `--pdf`).
    Screenplay {
        /// The project's slug.
        slug: String,
        /// Write a PDF in the standard layout here.
        #[arg(long)]
        pdf: Option<PathBuf>,
        /// Write the Fountain text here (instead of standard output).
        #[arg(long)]
        fountain: Option<PathBuf>,
    },
    /// How far a project's film has come: scenes done, in flight, failed, waiting.
    Progress {
        /// The project's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The film's versions and whether it is out of date; `--stitch` stitches a new version
    /// from the scenes' current takes; `--remix` mixes its sound again.
    Film {
        /// The project's slug.
        slug: String,
        /// Stitch a new version now (nothing is generated again).
        #[arg(long, conflicts_with = "remix")]
        stitch: bool,
        /// Mix the newest version's sound again with the sound settings and scene switches
        /// as they are now (no picture is made again).
        #[arg(long)]
        remix: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A scene's takes; with a number, make that take the one the film uses.
    Take {
        /// The scene's id.
        scene: String,
        /// The take to use.
        take: Option<u32>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The film for an editing program (OpenTimelineIO, FCP 7 XML, EDL) or its subtitles
    /// (SRT, WebVTT); `otioz` is all of it with the media, in one zip.
    Export {
        /// The project's slug.
        slug: String,
        /// otio, fcpxml, edl, srt, vtt or otioz.
        #[arg(long, default_value = "otio")]
        format: String,
        /// The film version (default: the newest).
        #[arg(long)]
        version: Option<i64>,
        /// Where to write it (default: SLUG-vN.EXT in the current directory).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// The approval gate: what awaits approval, approve, reject with a note, approve all.
    Approval {
        #[command(subcommand)]
        what: slate_server::approvals::ApprovalCommand,
    },
    /// Make the bundled example film end to end, offline.
    Demo(demo::DemoArgs),
    /// Runs' journals as files: `slate history export` (what `slate replay` reads).
    History {
        #[command(subcommand)]
        what: HistoryCommand,
    },
    /// Replay runs' journals against this binary's code, without side effects: per run, what
    /// would be reused, what would run, and where a live run would block. Exits non-zero when
    /// any would block: run it before a deploy (docs/upgrading.md).
    Replay {
        /// History files (`slate history export` writes them).
        files: Vec<PathBuf>,
        /// Runs in the database, by id.
        #[arg(long = "run")]
        runs: Vec<slate_engine::RunId>,
        /// Every run in the database that has not finished (what a deploy would meet).
        #[arg(long)]
        open: bool,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum HistoryCommand {
    /// Write runs' histories as JSON files, one per run.
    Export {
        /// Run ids.
        runs: Vec<slate_engine::RunId>,
        /// Every run of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Every run in this state.
        #[arg(long)]
        status: Option<slate_engine::RunStatus>,
        /// Every run that has not finished.
        #[arg(long)]
        open: bool,
        /// The directory to write them to.
        #[arg(long, default_value = "histories")]
        out: PathBuf,
    },
}

/// `slate replay`: exits 3 when a run would block.
async fn replay(
    config: Config,
    files: Vec<PathBuf>,
    runs: Vec<slate_engine::RunId>,
    open: bool,
    json: bool,
) -> anyhow::Result<()> {
    if files.is_empty() && runs.is_empty() && !open {
        anyhow::bail!("nothing to replay: give history files, --run ID or --open");
    }
    let state = slate_server::build(config).await?;
    let mut histories = vec![];
    for f in &files {
        histories.push((f.display().to_string(), slate_server::history::read(f)?));
    }
    for id in runs {
        histories.push(("database".to_string(), state.engine.history(id).await?));
    }
    if open {
        for h in slate_server::history::open_runs(&state.engine).await? {
            histories.push(("open".to_string(), h));
        }
    }
    let mut reports = vec![];
    for (origin, h) in &histories {
        reports.push((origin.clone(), state.engine.replay(h).await));
    }
    let blocks = if json {
        let list: Vec<&slate_engine::ReplayReport> = reports.iter().map(|(_, r)| r).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        reports.iter().any(|(_, r)| r.blocks())
    } else {
        slate_server::history::print(&reports)
    };
    if blocks {
        say(format_args!(
            "some runs would block on this build: see above (docs/upgrading.md says what to do)"
        ));
        std::process::exit(3);
    }
    Ok(())
}

#[derive(clap::Args)]
struct StartCmd {
    /// The project's slug.
    slug: String,
    /// Qualify even though a department is short of the readiness threshold.
    #[arg(long)]
    force: bool,
    /// Seconds to stop and edit before the departments start.
    #[arg(long)]
    edit_window: Option<u64>,
    /// The run's budget, dollars.
    #[arg(long)]
    budget: Option<f64>,
    /// Wait for the run to end, showing progress.
    #[arg(long)]
    wait: bool,
}

impl StartCmd {
    fn args(&self) -> slate_server::cli::StartArgs {
        slate_server::cli::StartArgs {
            force: self.force,
            edit_window_secs: self.edit_window,
            budget_usd: self.budget,
            wait: self.wait,
        }
    }
}

#[derive(Subcommand)]
enum ProjectsCommand {
    /// Every project.
    Ls {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a project.
    Create {
        /// Its slug (lower case, digits and dashes).
        slug: String,
        /// Its title (the slug when omitted, or the example's).
        #[arg(long)]
        title: Option<String>,
        /// Fill its gather data from a bundled example (`slate demo --example` lists them).
        #[arg(long)]
        example: Option<String>,
    },
    /// A project's status, runs and film.
    Show {
        /// The project's slug.
        slug: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TemplatesCommand {
    /// Every template.
    Ls,
    /// A template's prompt.
    Show {
        /// Its name.
        name: String,
    },
    /// Replace a template's prompt with a file's text.
    Set {
        /// Its name.
        name: String,
        /// The file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum GatherCommand {
    /// The project's collections and how many documents each holds.
    Ls {
        /// The project's slug.
        slug: String,
    },
    /// Import a screenplay (.fountain, .txt), a treatment or notes (.md, .txt) or gather
    /// documents (.json) into a project's gather data.
    Import {
        /// The project's slug.
        slug: String,
        /// The file.
        file: PathBuf,
    },
}

fn telemetry() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLATE_LOG")
        .unwrap_or_else(|_| "warn,slate_server=info,slate_engine=info".into());
    // A log line that cannot be written (stderr a closed pipe: `slate serve 2>&1 | head`) is
    // dropped: the default reports it with `eprintln!`, which panics on that same pipe, and a
    // panic in the signal task would keep the server from ever shutting down.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    // JSON logs in production (not a terminal), readable ones in a terminal.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        builder.init();
    } else {
        builder.json().init();
    }
}

/// Commands that print their own progress log errors only (unless `SLATE_LOG` says more).
fn quiet_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLATE_LOG")
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .init();
}

/// Writes to stderr, ignoring a closed one (`eprint!` would panic on it).
fn say(what: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().write_fmt(what);
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Errors end the program with their chain of causes, one line, and no backtrace: they are
    // for the person at the terminal (RUST_BACKTRACE still works for panics).
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("error: {e:#}\n"));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => {
            quiet_logs();
            demo::run(args).await
        }
        command if !cli.direct && over_http(&command) => {
            quiet_logs();
            let c = slate_server::client::Client::from_env()?;
            http(&c, command).await
        }
        command => {
            telemetry();
            let config = Config::from_env(cli.config.as_deref()).map_err(anyhow::Error::msg)?;
            direct(config, command).await
        }
    }
}

/// A command run in this process, on the database and blobs of `config`.
async fn direct(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { api_only } => serve(config, api_only).await,
        Command::Doctor { offline, json } => doctor(config, offline, json).await,
        Command::Worker => {
            let state = slate_server::build(config).await?;
            slate_server::check_providers(&state)?;
            let w = state.engine.worker().concurrency(state.config.workers);
            say(format_args!(
                "{}",
                slate_server::banner(&state, &format!("worker {}", w.id()))
            ));
            tracing::info!(worker = w.id(), "slate worker");
            w.run(slate_server::shutdown_on_signals())
                .await
                .context("worker")
        }
        Command::Migrate => {
            let state = slate_server::build(config).await?;
            println!(
                "migrations applied to {}",
                slate_engine::store::redact_url(&state.config.database_url)
            );
            Ok(())
        }
        Command::History {
            what:
                HistoryCommand::Export {
                    runs,
                    workflow,
                    status,
                    open,
                    out,
                },
        } => {
            let state = slate_server::build(config).await?;
            let mut ids = runs;
            if open {
                for h in slate_server::history::open_runs(&state.engine).await? {
                    ids.push(h.run.id);
                }
            }
            let filter =
                (workflow.is_some() || status.is_some()).then(|| slate_engine::RunFilter {
                    workflow,
                    status,
                    ..Default::default()
                });
            let files = slate_server::history::export(&state.engine, &ids, filter, &out).await?;
            println!("{} histories written to {}", files.len(), out.display());
            Ok(())
        }
        Command::Replay {
            files,
            runs,
            open,
            json,
        } => replay(config, files, runs, open, json).await,
        Command::Runs { what } => {
            let state = slate_server::build(config).await?;
            runs::run(&state, what).await
        }
        Command::Estimate { slug, json } => {
            let state = slate_server::build(config).await?;
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            state.film.repo.project(&slug).await?;
            let e = slate_workflows::estimate::estimate(&state.film, &slug).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", slate_server::runs::estimate_table(&e));
            }
            Ok(())
        }
        Command::Costs { slug, json } => {
            let state = slate_server::build(config).await?;
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            let c = slate_server::routes::production::project_costs(&state, &slug)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", slate_server::runs::costs_table(&c));
            }
            Ok(())
        }
        Command::Progress { slug, json } => {
            let state = slate_server::build(config).await?;
            let slug = slate_workflows::slug::Slug::parse(&slug)?;
            state.film.repo.project(&slug).await?;
            let p =
                slate_server::routes::scenes::progress_of(&state.film.repo.scenes(&slug).await?);
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                print!("{}", slate_server::runs::progress_text(&p));
            }
            Ok(())
        }
        Command::Gather {
            what: GatherCommand::Import { slug, file },
        } => import(config, &slug, &file).await,
        Command::Screenplay {
            slug,
            pdf,
            fountain,
        } => screenplay(config, &slug, pdf.as_deref(), fountain.as_deref()).await,
        Command::Approval { what } => {
            let state = slate_server::build(config).await?;
            slate_server::approvals::run(&state, what).await
        }
        Command::Demo(_) => unreachable!("handled above"),
        _ => anyhow::bail!(
            "this command asks a running server: leave out --direct (and start `slate serve`)"
        ),
    }
}

async fn serve(config: Config, api_only: bool) -> anyhow::Result<()> {
    config.check_for_serving().map_err(anyhow::Error::msg)?;
    let state = slate_server::build(config).await?;
    slate_server::check_providers(&state)?;
    let role = if api_only {
        "serve --api-only (the API; workers run elsewhere)"
    } else {
        "serve (the API and workers)"
    };
    // Printed, not logged: the default log filter must not hide what runs.
    say(format_args!("{}", slate_server::banner(&state, role)));
    for (what, who) in state.film.studio.settings.describe() {
        tracing::info!(activity = what, implementation = %who, "provider");
    }
    slate_server::serve(state, !api_only, slate_server::shutdown_on_signals()).await
}

async fn doctor(config: Config, offline: bool, json: bool) -> anyhow::Result<()> {
    let state = slate_server::build(config).await?;
    let (settings, blobs) = (&state.film.studio.settings, &state.film.studio.blobs);
    let report = if offline {
        slate_activities::doctor::Report::of(slate_activities::doctor::offline(
            settings,
            blobs,
            &slate_activities::doctor::today(),
        ))
    } else {
        slate_activities::doctor::run(settings, blobs).await
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", slate_server::runs::doctor_table(&report));
    }
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("slate doctor found what would fail (see above)")
    }
}

/// `gather import` with `--direct`: a file's documents added to the project's gather data.
async fn import(config: Config, slug: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let state = slate_server::build(config).await?;
    let slug = slate_workflows::slug::Slug::parse(slug)?;
    state.film.repo.project(&slug).await?;
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    if bytes.len() > state.config.body_limit {
        anyhow::bail!(
            "{} is larger than {} bytes (SLATE_BODY_LIMIT_BYTES)",
            file.display(),
            state.config.body_limit
        );
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let docs = slate_workflows::import::documents_of(name, &bytes)?;
    let added = slate_server::routes::projects::import_documents(&state, &slug, docs)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    for d in &added {
        println!("added {}/{}", d.collection, d.id);
    }
    Ok(())
}

/// `screenplay` with `--direct`: the qualified screenplay as Fountain (printed or written) and PDF.
async fn screenplay(
    config: Config,
    slug: &str,
    pdf: Option<&std::path::Path>,
    fountain: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let state = slate_server::build(config).await?;
    let slug = slate_workflows::slug::Slug::parse(slug)?;
    state.film.repo.project(&slug).await?;
    let text = state
        .film
        .screenplay_fountain(&slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{slug} has no screenplay yet: qualify it first"))?;
    if let Some(path) = pdf {
        let bytes = slate_activities::screenplay::pdf(&text).context("write the PDF")?;
        std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    match fountain {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None if pdf.is_none() => print!("{text}"),
        None => {}
    }
    Ok(())
}

/// The project commands that go to a running server unless `--direct` is given.
fn over_http(c: &Command) -> bool {
    matches!(
        c,
        Command::Projects { .. }
            | Command::Readiness { .. }
            | Command::Qualify(_)
            | Command::Produce(_)
            | Command::Generate(_)
            | Command::Templates { .. }
            | Command::Gather { .. }
            | Command::Estimate { .. }
            | Command::Costs { .. }
            | Command::Progress { .. }
            | Command::Screenplay { .. }
            | Command::Film { .. }
            | Command::Take { .. }
            | Command::Export { .. }
    )
}

async fn http(c: &slate_server::client::Client, command: Command) -> anyhow::Result<()> {
    use slate_server::cli;
    match command {
        Command::Projects { what } => match what {
            ProjectsCommand::Ls { json } => cli::projects_ls(c, json).await,
            ProjectsCommand::Create {
                slug,
                title,
                example,
            } => cli::projects_create(c, &slug, title.as_deref(), example.as_deref()).await,
            ProjectsCommand::Show { slug, json } => cli::projects_show(c, &slug, json).await,
        },
        Command::Readiness { slug, json } => cli::readiness(c, &slug, json).await,
        Command::Qualify(a) => cli::start(c, "qualify", &a.slug, a.args()).await,
        Command::Produce(a) => cli::start(c, "produce", &a.slug, a.args()).await,
        Command::Generate(a) => cli::start(c, "generate", &a.slug, a.args()).await,
        Command::Templates { what } => match what {
            TemplatesCommand::Ls => cli::templates_ls(c).await,
            TemplatesCommand::Show { name } => cli::templates_show(c, &name).await,
            TemplatesCommand::Set { name, file } => cli::templates_set(c, &name, &file).await,
        },
        Command::Gather { what } => match what {
            GatherCommand::Ls { slug } => cli::gather_ls(c, &slug).await,
            GatherCommand::Import { slug, file } => cli::gather_import(c, &slug, &file).await,
        },
        Command::Estimate { slug, json } => cli::estimate(c, &slug, json).await,
        Command::Costs { slug, json } => cli::costs(c, &slug, json).await,
        Command::Progress { slug, json } => cli::progress(c, &slug, json).await,
        Command::Screenplay {
            slug,
            pdf,
            fountain,
        } => cli::screenplay(c, &slug, pdf.as_deref(), fountain.as_deref()).await,
        Command::Film {
            slug,
            stitch,
            remix,
            json,
        } => cli::film(c, &slug, stitch, remix, json).await,
        Command::Take { scene, take, json } => cli::take(c, &scene, take, json).await,
        Command::Export {
            slug,
            format,
            version,
            out,
        } => cli::export(c, &slug, &format, version, out.as_deref()).await,
        _ => unreachable!("over_http chose it"),
    }
}
