//! Test support for Slate's cross-crate tests.
//!
//! The crash tests need side effects that are counted *outside* the engine and that survive
//! the process that made them: [`Sink`] appends lines to files in a directory (markers say
//! where a worker is, effects are the side effects whose count must be exactly one).
//! [`CrashPipeline`] is a multi-step workflow with every kind of durable point: steps, work
//! between steps, bounded attempts, a bounded loop and a signal wait.

pub mod fake_fal;
pub mod fake_last_frame;
pub mod fake_openrouter;
pub mod fake_tasks;
mod greedy;
pub mod latency;
pub use greedy::GreedyPlanner;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use slate_engine::{Attempt, Ctx, WfError, Workflow};

/// Files of markers and effects shared by a worker process and the test that kills it.
#[derive(Debug, Clone)]
pub struct Sink {
    dir: PathBuf,
}

impl Sink {
    /// A sink writing into `dir` (created if needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).expect("create the sink directory");
        Sink { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn append(&self, file: &str, line: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(file))
            .expect("open sink file");
        // One write per line, flushed at once: a SIGKILL right after leaves it on disk.
        f.write_all(format!("{line}\n").as_bytes())
            .expect("write sink file");
        f.sync_data().expect("sync sink file");
    }

    /// Say where this process is (`pid` is added).
    pub fn marker(&self, what: &str) {
        self.append("markers", &format!("{} {what}", std::process::id()));
    }

    /// Record a side effect.
    pub fn effect(&self, what: &str) {
        self.append("effects", what);
    }

    fn lines(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every effect recorded so far, in order.
    pub fn effects(&self) -> Vec<String> {
        self.lines("effects")
    }

    /// How many times `what` was recorded as an effect.
    pub fn effect_count(&self, what: &str) -> usize {
        self.effects().iter().filter(|l| *l == what).count()
    }

    /// The processes (pids) that wrote marker `what`.
    pub fn marker_pids(&self, what: &str) -> Vec<u32> {
        self.lines("markers")
            .iter()
            .filter_map(|l| {
                let (pid, m) = l.split_once(' ')?;
                (m == what).then(|| pid.parse().ok()).flatten()
            })
            .collect()
    }
}

/// Input of [`CrashPipeline`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashInput {
    /// A label included in every marker and effect, so several runs can share a sink.
    pub label: String,
    /// How long each step (and the work between steps) lasts, ms: the window a test kills in.
    pub pause_ms: u64,
    /// Verification attempts rejected before one is accepted.
    pub rejects: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Loop iterations the workflow wants.
    pub layers: u32,
    /// Iterations the loop allows.
    pub max_layers: u32,
    /// Wait for the `approve` signal before the last step.
    pub wait_for_approval: bool,
    /// Step `a` aborts its process at once, every time: a worker that dies before even the
    /// attempt's start is journaled.
    #[serde(default)]
    pub abort_in_a: bool,
}

/// A multi-step workflow with every kind of durable point (see the module docs).
#[derive(Debug, Clone)]
pub struct CrashPipeline {
    /// Where markers and effects go.
    pub sink: Sink,
}

impl CrashPipeline {
    async fn effectful(
        &self,
        ctx: &Ctx,
        label: &str,
        name: String,
        pause: Duration,
    ) -> Result<(), WfError> {
        let sink = self.sink.clone();
        let tag = format!("{label}:{name}");
        ctx.step(name, move |_| async move {
            sink.marker(&format!("inside:{tag}"));
            tokio::time::sleep(pause).await;
            sink.effect(&tag);
            Ok(())
        })
        .await
    }
}

impl Workflow for CrashPipeline {
    const NAME: &'static str = "test.crash-pipeline";
    type Input = CrashInput;
    type Output = Value;

    async fn run(&self, ctx: Ctx, i: CrashInput) -> Result<Value, WfError> {
        let pause = Duration::from_millis(i.pause_ms);
        let l = i.label.clone();
        if i.abort_in_a {
            let sink = self.sink.clone();
            let tag = format!("{l}:a");
            ctx.step("a", move |_| async move {
                sink.marker(&format!("inside:{tag}"));
                std::process::abort();
                #[allow(unreachable_code)]
                Ok(())
            })
            .await?;
        }
        self.effectful(&ctx, &l, "a".into(), pause).await?;
        // Work between two steps that is not a step: a crash here must not repeat `a`.
        self.sink.marker(&format!("between:{l}:a-b"));
        tokio::time::sleep(pause).await;
        self.effectful(&ctx, &l, "b".into(), pause).await?;

        let accepted = ctx
            .attempts("verify", i.max_attempts, |n| {
                let ctx = ctx.clone();
                let sink = self.sink.clone();
                let tag = format!("{l}:verify/{n}");
                async move {
                    let ok: bool = ctx
                        .step(format!("verify/{n}"), move |_| async move {
                            sink.marker(&format!("inside:{tag}"));
                            tokio::time::sleep(pause).await;
                            sink.effect(&tag);
                            Ok(n > i.rejects)
                        })
                        .await?;
                    Ok(if ok {
                        Attempt::Done(n)
                    } else {
                        Attempt::Retry(format!("attempt {n} rejected"))
                    })
                }
            })
            .await?;

        let mut lp = ctx.bounded("layers", i.max_layers);
        for k in 0..i.layers {
            lp.next().await?;
            self.effectful(&ctx, &l, format!("layer/{k}"), pause)
                .await?;
        }

        let approval = if i.wait_for_approval {
            self.sink.marker(&format!("waiting:{l}"));
            ctx.wait_signal::<Value>("approval", "approve", None)
                .await?
        } else {
            None
        };
        self.effectful(&ctx, &l, "c".into(), Duration::ZERO).await?;
        Ok(serde_json::json!({"accepted_at": accepted, "layers": lp.count(), "approval": approval}))
    }
}

/// An image provider that records every call in a file (`start <key> <pid> <references>` when
/// a request arrives, `done <key> <pid> <references>` when its image exists) and takes `delay`
/// per image: what a test counts "at the provider".
pub struct CountingImages {
    /// The real provider.
    pub inner: std::sync::Arc<dyn slate_activities::ImageGen>,
    /// The log file.
    pub log: PathBuf,
    /// Time per image.
    pub delay: Duration,
}

impl CountingImages {
    fn write(&self, what: &str, key: &str, references: usize) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open provider log");
        f.write_all(format!("{what} {key} {} {references}\n", std::process::id()).as_bytes())
            .expect("write provider log");
        f.sync_data().expect("sync provider log");
    }

    /// The most references any request of a provider log carried.
    pub fn max_references(log: &Path) -> usize {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(3)?.parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// `(what, key, pid)` lines of a provider log.
    pub fn read(log: &Path) -> Vec<(String, String, u32)> {
        std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut p = l.split(' ');
                Some((
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()?.parse().ok()?,
                ))
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl slate_activities::ImageGen for CountingImages {
    fn name(&self) -> &'static str {
        "counting storyboard"
    }
    async fn submit(
        &self,
        req: &slate_activities::model::ImageRequest,
    ) -> slate_activities::Result<slate_activities::model::Job> {
        self.write("start", &req.output_key, req.references.len());
        tokio::time::sleep(self.delay).await;
        let job = self.inner.submit(req).await?;
        self.write("done", &req.output_key, req.references.len());
        Ok(job)
    }
    async fn poll(
        &self,
        job: &slate_activities::model::Job,
        req: &slate_activities::model::ImageRequest,
    ) -> slate_activities::Result<
        slate_activities::Paid<
            slate_activities::model::JobState<slate_activities::model::ImageOutput>,
        >,
    > {
        self.inner.poll(job, req).await
    }
    async fn cancel(&self, job: &slate_activities::model::Job) -> slate_activities::Result<()> {
        self.inner.cancel(job).await
    }
}

/// A film bench for a worker process and the test that drives it: the same database, the same
/// blob directory. For worker processes, the environment can bend the studio:
/// `SLATE_TEST_PROVIDER_LOG` and `SLATE_TEST_IMAGE_DELAY_MS` count and slow the image provider,
/// `SLATE_TEST_VISION_FAIL_RATE` makes the vision check reject frames, and
/// `SLATE_TEST_GREEDY_LAYERS` makes the shot agent ask for that many extra layers.
pub async fn film(
    url: &str,
    data: &Path,
    config: slate_workflows::FilmConfig,
) -> anyhow::Result<(slate_engine::Engine, std::sync::Arc<slate_workflows::Film>)> {
    let engine = slate_engine::Engine::connect(
        url,
        slate_engine::EngineConfig {
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .await?;
    let db = slate_workflows::db::FilmDb::of(&engine);
    let blobs = slate_activities::Blobs::local(data.join("blobs"), None)?;
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let mut studio = slate_activities::Studio::build(
        // The local studio, whatever keys the shell holds: tests never reach a paid service.
        slate_activities::ProviderSettings::default(),
        blobs,
        db.activities_db(),
        slate_activities::StudioOptions {
            vision_fail_rate: env_num("SLATE_TEST_VISION_FAIL_RATE").unwrap_or(0.0),
        },
    );
    if let Some(n) = env_num("SLATE_TEST_GREEDY_LAYERS") {
        studio.planner = std::sync::Arc::new(GreedyPlanner(studio.planner.clone(), n as usize));
    }
    if let Ok(log) = std::env::var("SLATE_TEST_PROVIDER_LOG") {
        let delay = std::env::var("SLATE_TEST_IMAGE_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        studio.images = std::sync::Arc::new(CountingImages {
            inner: studio.images.clone(),
            log: log.into(),
            delay: Duration::from_millis(delay),
        });
    }
    let film = std::sync::Arc::new(slate_workflows::Film {
        studio,
        repo: slate_workflows::repo::FilmRepo::new(db.clone()),
        docs: std::sync::Arc::new(slate_workflows::docstore::SqlDocuments::new(db)),
        config,
    });
    film.repo.seed_templates().await?;
    slate_workflows::register(&engine, film.clone());
    Ok((engine, film))
}

/// Film settings for tests: short waits.
pub fn quick_film_config() -> slate_workflows::FilmConfig {
    slate_workflows::FilmConfig {
        edit_window: Duration::from_millis(100),
        image_poll: Duration::from_millis(20),
        video_wait: Duration::from_millis(300),
        video_rounds: 100,
        ..Default::default()
    }
}
