//! `slate demo`: the bundled example film, end to end, on the embedded default (SQLite, the
//! local studio, no keys, no network), with progress per phase and scene and a summary.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use slate_engine::{Engine, EventData, RunFilter, RunId, RunStatus, StartOptions};
use slate_workflows::generation::{ProduceInput, ProduceOutput, Production};
use slate_workflows::model::SceneStatus;
use slate_workflows::{Film, Slug, examples};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Options of `slate demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the demo's database, blobs and film go (default: a new folder under ./.slate).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seconds of qualification's edit window.
    #[arg(long, default_value_t = 3)]
    pub edit_window: u64,
    /// Share of frames the local vision check rejects on purpose, so the demo shows retries.
    #[arg(long, default_value_t = 0.1)]
    pub vision_fail_rate: f64,
    /// Runs executed at once.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Which bundled example to film: lantern-keeper (tidy), storm-lamp (messy, duplicates and
    /// contradictions), one-liners (one-line ideas only), field-notes (free-text notes),
    /// long-road (26 scene ideas), night-bus (a Fountain screenplay), moor-treatment (a prose
    /// treatment).
    #[arg(long, default_value = "lantern-keeper", value_parser = example_name)]
    pub example: String,
}

fn example_name(s: &str) -> Result<String, String> {
    match examples::named(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!(
            "no example `{s}`; the examples are: {}",
            examples::ALL
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

use slate_workflows::qualification::{PHASES, phase_of};

/// Run the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        PathBuf::from(".slate").join(format!(
            "demo-{}",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ))
    });
    let config = demo_config(&data_dir, &args)?;
    let state = crate::build(config).await?;
    let film = state.film.clone();
    let engine = state.engine.clone();

    let example = examples::named(&args.example).expect("checked by clap");
    println!(
        "Slate demo: \"{}\" (examples/{}), from gathered ideas to a stitched film",
        examples::title(example),
        args.example
    );
    println!("  data      {}", data_dir.display());
    for (what, who) in film.studio.settings.describe() {
        println!("  {what:<14} {who}");
    }
    if film.studio.settings.any_remote() {
        println!("  (provider keys in the environment are used: this demo may call paid services)");
    }
    let slug = match examples::load(&film, example, None).await {
        Ok(s) => s,
        Err(slate_workflows::FilmError::Conflict(_)) => anyhow::bail!(
            "{} already holds a demo film; run `slate demo` without --data-dir (each run gets a new folder) or point --data-dir at an empty one",
            data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    // The demo films whatever the example holds; readiness is shown, not enforced (the API's
    // /qualify and /produce enforce it unless asked to force).
    if let Err(e) = slate_workflows::qualification::gate(&film, &slug, false).await {
        println!("  readiness {e}");
        println!("            (the demo goes on with what is there, as `force` would)");
    } else {
        println!("  readiness every department is ready");
    }
    let run = engine
        .start::<Production>(
            &ProduceInput {
                project: slug.clone(),
                edit_window_secs: Some(args.edit_window),
            },
            StartOptions {
                scope: Some(slug.to_string()),
                ..Default::default()
            },
        )
        .await?
        .run;
    let stop = CancellationToken::new();
    let worker = tokio::spawn(engine.worker().concurrency(args.workers).run(stop.clone()));

    let mut progress = Progress::new();
    let result = loop {
        let r = engine.get(run.id).await?;
        progress.qualification(&engine, run.id).await?;
        progress.scenes(&film, &slug).await;
        if r.status.is_terminal() {
            break r;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            anyhow::bail!(
                "the demo did not finish in 30 minutes; see `slate runs show {}`",
                run.id
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.cancel();
    let _ = worker.await;
    progress.multi.clear().ok();

    if result.status != RunStatus::Completed {
        let errors = film.repo.errors(false).await?;
        for e in errors {
            eprintln!("error: {} — {}", e.phase, e.message);
        }
        anyhow::bail!(
            "the production ended {}: {}. Inspect it with `SLATE_DATA_DIR={} slate runs show {}`",
            result.status,
            result.error.map(|e| e.to_string()).unwrap_or_default(),
            data_dir.display(),
            run.id
        );
    }
    let out: ProduceOutput = serde_json::from_value(result.output.clone().unwrap_or_default())
        .context("read the production's output")?;
    let film_out = out.film.context("the production made no film")?;
    let film_path = film
        .studio
        .blobs
        .local_path(&slate_activities::BlobRef::new(&film_out.film)?)
        .await?;

    summary(
        &engine, &film, &slug, run.id, &film_out, &film_path, &data_dir, started,
    )
    .await?;
    Ok(())
}

/// The demo's settings: the embedded default, whatever the shell says (SQLite in its own
/// folder, no server settings); provider keys still count, so a user can try a real provider.
fn demo_config(data_dir: &std::path::Path, args: &DemoArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(None, |k| match k {
        "SLATE_DATA_DIR" => Some(data_dir.display().to_string()),
        // The demo is the embedded default, whatever the shell says: SQLite in its own folder,
        // no server settings. Provider keys still count, so a user can try a real provider.
        "SLATE_DATABASE_URL" => Some(format!("sqlite://{}", data_dir.join("slate.db").display())),
        k if slate_activities::PROVIDER_VARIABLES
            .iter()
            .any(|(v, _)| *v == k) =>
        {
            std::env::var(k).ok()
        }
        _ => None,
    })
    .map_err(anyhow::Error::msg)?;
    config.edit_window = Duration::from_secs(args.edit_window);
    config.vision_fail_rate = args.vision_fail_rate.clamp(0.0, 0.5);
    Ok(config)
}

/// The demo's progress: a bar for qualification's phases and one per scene on a terminal, lines
/// on a log.
struct Progress {
    tty: bool,
    multi: MultiProgress,
    qbar: ProgressBar,
    scene_bars: BTreeMap<i32, ProgressBar>,
    printed_phase: Option<usize>,
}

impl Progress {
    fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let qbar = multi.add(ProgressBar::new(5));
        qbar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        qbar.set_prefix("qualify");
        Progress {
            tty,
            multi,
            qbar,
            scene_bars: BTreeMap::new(),
            printed_phase: None,
        }
    }

    /// Qualification: the latest phase its journal reached.
    async fn qualification(&mut self, engine: &Engine, run: RunId) -> anyhow::Result<()> {
        let children = engine
            .list(&RunFilter {
                parent_id: Some(run),
                ..Default::default()
            })
            .await?;
        if let Some(q) = children
            .iter()
            .find(|c| c.workflow == slate_workflows::names::workflow::QUALIFY)
        {
            let events = engine.store().events(q.id).await?;
            let phase = if q.status == RunStatus::Completed {
                5
            } else {
                events
                    .iter()
                    .filter_map(|e| e.step.as_deref())
                    .map(phase_of)
                    .max()
                    .unwrap_or(0)
            };
            self.qbar.set_position(phase.min(5) as u64);
            self.qbar.set_message(PHASES[phase].to_string());
            if !self.tty {
                // Phases run in order, so every phase up to the one reached has been passed,
                // even one that began and ended between two polls: a log shows them all.
                let from = self.printed_phase.map_or(0, |p| p + 1);
                for (p, name) in PHASES.iter().enumerate().take(phase + 1).skip(from) {
                    eprintln!("qualification: {name}");
                    self.printed_phase = Some(p);
                }
            }
            if phase == 5 {
                self.qbar.finish_with_message("qualified");
            }
        }
        Ok(())
    }

    /// Each scene's status, layers and retries.
    async fn scenes(&mut self, film: &Film, slug: &Slug) {
        for s in film.repo.scenes(slug).await.unwrap_or_default() {
            let bar = self.scene_bars.entry(s.scene_number).or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(4));
                b.set_style(
                    ProgressStyle::with_template("{prefix:>12} [{bar:30}] {msg}")
                        .expect("template")
                        .progress_chars("=> "),
                );
                b.set_prefix(format!("scene {}", s.scene_number));
                b
            });
            let pos = match s.status {
                SceneStatus::ReadyForGeneration | SceneStatus::WaitingForPrevious => 0,
                SceneStatus::GeneratingComposite => 1,
                SceneStatus::VerifyingComposite => 2,
                SceneStatus::GeneratingVideo => 3,
                SceneStatus::Completed | SceneStatus::Failed => 4,
            };
            let msg = format!(
                "{} — {} layer(s), {} retr{}",
                s.status.as_str().replace('_', " "),
                s.composite_iterations.len(),
                s.retry_count,
                if s.retry_count == 1 { "y" } else { "ies" }
            );
            if bar.position() != pos || bar.message() != msg {
                bar.set_position(pos);
                bar.set_message(msg.clone());
                if !self.tty {
                    eprintln!("scene {}: {msg}", s.scene_number);
                }
            }
            if pos == 4 && !bar.is_finished() {
                bar.finish();
            }
        }
    }
}

/// The summary: a line per scene, the counts, the time, the cost and where the film is.
#[allow(clippy::too_many_arguments)]
async fn summary(
    engine: &Engine,
    film: &Film,
    slug: &Slug,
    run: RunId,
    film_out: &slate_workflows::film_workflow::FilmOutput,
    film_path: &std::path::Path,
    data_dir: &std::path::Path,
    started: Instant,
) -> anyhow::Result<()> {
    // The summary.
    let scenes = film.repo.scenes(slug).await?;
    let runs = engine
        .list(&RunFilter {
            scope: Some(slug.to_string()),
            limit: Some(500),
            ..Default::default()
        })
        .await?;
    let (mut steps, mut step_retries) = (0usize, 0usize);
    for r in &runs {
        for e in engine.store().events(r.id).await? {
            match e.data {
                EventData::StepSucceeded { .. } => steps += 1,
                EventData::StepFailed {
                    retry_at: Some(_), ..
                } => step_retries += 1,
                _ => {}
            }
        }
    }
    let detail = engine.inspect(run).await?;
    println!();
    println!(
        "{:>6} {:>8} {:>7} {:>8}  {:<10}  clip",
        "scene", "seconds", "layers", "retries", "status"
    );
    for s in &scenes {
        println!(
            "{:>6} {:>8.2} {:>7} {:>8}  {:<10}  {}",
            s.scene_number,
            s.actual_duration.unwrap_or_default(),
            s.composite_iterations.len(),
            s.retry_count,
            s.status.as_str(),
            s.generated_video_url.clone().unwrap_or_default()
        );
    }
    let verification_retries: i32 = scenes.iter().map(|s| s.retry_count).sum();
    println!();
    println!("scenes    {}", scenes.len());
    println!("film      {:.2} s", film_out.duration);
    if let Some(snd) = film
        .repo
        .film_versions(slug)
        .await?
        .pop()
        .and_then(|v| v.sound)
    {
        println!(
            "sound     {} music cue{}, {} effect{}, stems {}; mixed to {}",
            snd.cues.len(),
            if snd.cues.len() == 1 { "" } else { "s" },
            snd.effects.len(),
            if snd.effects.len() == 1 { "" } else { "s" },
            snd.stems.keys().cloned().collect::<Vec<_>>().join(", "),
            snd.loudness.map_or("?".into(), |l| format!(
                "{:.1} LUFS, {:.1} dBTP true peak",
                l.integrated_lufs, l.true_peak_dbtp
            ))
        );
    }
    println!("steps     {steps} journaled in {} runs", runs.len());
    println!("retries   {verification_retries} verification, {step_retries} step");
    println!("time      {:.1} s", started.elapsed().as_secs_f64());
    println!("cost      ${:.4}", detail.tree_cost_usd);
    println!();
    println!(
        "The film: {}",
        film_path
            .canonicalize()
            .unwrap_or(film_path.to_path_buf())
            .display()
    );
    println!(
        "Browse it: SLATE_DATA_DIR={} slate serve, then open http://127.0.0.1:8080/",
        data_dir.display()
    );
    Ok(())
}
