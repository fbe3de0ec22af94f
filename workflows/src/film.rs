//! What the film workflows share: the studio, the records, the document store, settings, and
//! the step helpers every department uses (paid generation, failure recording).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use slate_activities::model::{GatherSnapshot, ImageOutput, ImageRequest, Job, JobState};
use slate_activities::{Paid, Spend, Studio};
use slate_engine::{Cost, Ctx, RetryPolicy, StepCtx, StepError, StepOptions, WfError};

use crate::docstore::{DocumentStore, Namespace};
use crate::error::{IntoStep, Result};
use crate::repo::FilmRepo;
use crate::slug::Slug;

/// Settings of the film workflows.
#[derive(Debug, Clone)]
pub struct FilmConfig {
    /// The pause before qualification starts, during which a person may stop it to edit.
    pub edit_window: Duration,
    /// How often an image job is polled.
    pub image_poll: Duration,
    /// The longest an image job may take.
    pub image_timeout: Duration,
    /// How long a video wait lasts before the job is polled again (the webhook usually comes
    /// first).
    pub video_wait: Duration,
    /// Video waits before giving up (`video_wait` x `video_rounds` = the 10-minute deadline).
    pub video_rounds: u32,
    /// Composite iterations allowed per scene.
    pub max_iterations: u32,
    /// Verification attempts allowed per iteration.
    pub max_attempts: u32,
    /// Knowledge confidence a composite needs.
    pub knowledge_threshold: f64,
    /// Generate scenes that do not need their predecessor's last frame at once, each chain of
    /// dependent scenes in order (`docs/decisions/0018`); false: one scene after another.
    pub parallel_scenes: bool,
    /// Cut a scene's clip to length and mix its voices in one ffmpeg pass (behind the patch
    /// `one-pass-cut`: runs that passed that point on two passes keep them). False: the two
    /// passes without the patch point, exactly as builds before it (a rollback switch).
    pub one_pass_cut: bool,
}

impl Default for FilmConfig {
    fn default() -> Self {
        FilmConfig {
            edit_window: Duration::from_secs(10),
            image_poll: Duration::from_secs(1),
            image_timeout: Duration::from_secs(600),
            video_wait: Duration::from_secs(10),
            video_rounds: 60,
            max_iterations: 20,
            max_attempts: 5,
            knowledge_threshold: 0.8,
            parallel_scenes: true,
            one_pass_cut: true,
        }
    }
}

/// Everything a film workflow needs.
#[derive(Clone)]
pub struct Film {
    /// The activities.
    pub studio: Studio,
    /// Structured records.
    pub repo: FilmRepo,
    /// Gather and qualified namespaces.
    pub docs: Arc<dyn DocumentStore>,
    /// Settings.
    pub config: FilmConfig,
}

impl Film {
    /// What one call of `kind` is expected to cost with the configured providers, dollars
    /// (one unit; a video is priced with [`Film::video_price`]).
    pub fn price(&self, kind: slate_activities::pricing::CallKind) -> f64 {
        let s = &self.studio.settings;
        slate_activities::pricing::Prices::new(&s.prices)
            .of(s, kind)
            .unit_usd
    }

    /// What a clip of `seconds` is expected to cost.
    pub fn video_price(&self, seconds: f64) -> f64 {
        let s = &self.studio.settings;
        let p = slate_activities::pricing::Prices::new(&s.prices);
        p.of(s, slate_activities::pricing::CallKind::Video).unit_usd * p.video_units(s, seconds)
    }
}

impl std::fmt::Debug for Film {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Film")
            .field("studio", &self.studio)
            .field("docs", &self.docs.kind())
            .finish()
    }
}

impl Film {
    /// The gather namespace as the planners see it.
    pub async fn gather(&self, slug: &Slug) -> Result<GatherSnapshot> {
        let project = self.repo.project(slug).await?;
        let ns = Namespace::Gather(slug.clone());
        let mut g = GatherSnapshot {
            project: slug.to_string(),
            title: project.title,
            collections: Default::default(),
        };
        for c in self.docs.collections(&ns).await? {
            let docs = self.docs.list(&ns, &c).await?;
            g.collections.insert(
                c,
                docs.into_iter()
                    .map(|d| {
                        let mut b = d.body;
                        if let Some(o) = b.as_object_mut() {
                            o.entry("id").or_insert(Value::String(d.id));
                        }
                        b
                    })
                    .collect(),
            );
        }
        Ok(g)
    }

    /// The documents of a qualified collection.
    pub async fn qualified(&self, slug: &Slug, collection: &str) -> Result<Vec<Value>> {
        Ok(self
            .docs
            .list(&Namespace::Qualified(slug.clone()), collection)
            .await?
            .into_iter()
            .map(|d| d.body)
            .collect())
    }

    /// The qualified screenplay as Fountain (its title page, scene headings, action, cues with
    /// the characters' names and parentheticals, transitions); `None` before the story
    /// department has written it.
    pub async fn screenplay_fountain(&self, slug: &Slug) -> Result<Option<String>> {
        let Some(doc) = self
            .qualified(slug, crate::names::collection::SCREENPLAY)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let sp: slate_activities::model::Screenplay = serde_json::from_value(doc).map_err(|e| {
            crate::error::FilmError::Internal(format!("the stored screenplay: {e}"))
        })?;
        let names: std::collections::BTreeMap<String, String> = self
            .qualified(slug, crate::names::collection::CHARACTER_PROFILES)
            .await?
            .into_iter()
            .filter_map(|c| {
                Some((
                    c.get("character_id")?.as_str()?.to_string(),
                    c.get("name")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let credits = vec![(
            "Source".to_string(),
            format!("qualified by Slate from the gather data of {slug}"),
        )];
        Ok(Some(slate_activities::screenplay::fountain(
            &sp, &names, &credits,
        )))
    }

    /// Store a qualified document (idempotent by id).
    pub async fn put_qualified<T: Serialize>(
        &self,
        slug: &Slug,
        collection: &str,
        id: &str,
        v: &T,
    ) -> Result<()> {
        let body = serde_json::to_value(v)
            .map_err(|e| crate::error::FilmError::Internal(e.to_string()))?;
        self.docs
            .put(&Namespace::Qualified(slug.clone()), collection, id, body)
            .await
    }
}

/// The engine's step checkpoint, handed to the activities (decision 0015).
struct StepCheckpoint(StepCtx);

#[async_trait::async_trait]
impl slate_activities::checkpoint::Checkpoint for StepCheckpoint {
    fn resumed(&self) -> Option<serde_json::Value> {
        self.0.resumed().cloned()
    }
    async fn save(&self, data: serde_json::Value) -> std::result::Result<(), String> {
        self.0.checkpoint(data).await.map_err(|e| e.to_string())
    }
}

/// Run an activity call with the step's checkpoint in scope: a call that submits to a
/// provider without a lookup (fal's queue, the last-frame service) keeps its request id there,
/// and an attempt after a crash polls that request instead of paying for another.
pub async fn checkpointed<F: std::future::Future>(sc: &StepCtx, fut: F) -> F::Output {
    slate_activities::checkpoint::scope(std::sync::Arc::new(StepCheckpoint(sc.clone())), fut).await
}

/// Report a provider's spend on the step.
pub fn report(sc: &StepCtx, s: Spend) {
    if s.units != 0.0 || s.usd != 0.0 {
        sc.report_cost(if s.estimated {
            Cost::estimated(s.units, s.usd)
        } else {
            Cost::new(s.units, s.usd)
        });
    }
}

/// Options for paid calls: the attempt is on disk before the call, retried with backoff.
pub fn paid() -> StepOptions {
    StepOptions::new()
        .durable_start()
        .retry(RetryPolicy::attempts(4).backoff(Duration::from_secs(2), Duration::from_secs(60)))
}

/// A language-model step: retried, its cost reported.
pub async fn plan<T, F, Fut>(ctx: &Ctx, name: impl Into<String>, f: F) -> Result<T, WfError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = slate_activities::Result<Paid<T>>> + Send,
{
    plan_priced(ctx, name, 0.0, f).await
}

/// [`plan`] for a call expected to cost `usd`: it does not start if that would take the run
/// tree's spend past its budget.
pub async fn plan_priced<T, F, Fut>(
    ctx: &Ctx,
    name: impl Into<String>,
    usd: f64,
    f: F,
) -> Result<T, WfError>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = slate_activities::Result<Paid<T>>> + Send,
{
    ctx.step_with(name, paid().estimate(usd), move |sc| async move {
        let p = checkpointed(&sc, f()).await.step()?;
        report(&sc, p.spend);
        Ok(p.value)
    })
    .await
}

/// Generate an image: submit in one step (the job is journaled), wait in another, so that a
/// crash re-attaches to the job instead of paying for it again.
pub async fn image(
    ctx: &Ctx,
    film: &Film,
    name: impl Into<String>,
    req: ImageRequest,
) -> Result<ImageOutput, WfError> {
    image_with(ctx, film, name, req, 0).await
}

/// [`image`], first in line for an `images` slot among runs of lower `priority` (see
/// [`slate_engine::StepOptions::priority`]).
pub async fn image_with(
    ctx: &Ctx,
    film: &Film,
    name: impl Into<String>,
    req: ImageRequest,
    priority: i32,
) -> Result<ImageOutput, WfError> {
    let name = name.into();
    let images = film.studio.images.clone();
    let r = req.clone();
    let kind = if req.base.is_some() || !req.references.is_empty() {
        slate_activities::pricing::CallKind::ImageEdit
    } else {
        slate_activities::pricing::CallKind::Image
    };
    // The slot is kept from the submission until the image is seen done, so the `images`
    // limit bounds the jobs running at the provider, across the run's waits and crashes.
    let submit = format!("{name}/submit");
    let job: Job = ctx
        .step_with(
            submit.clone(),
            paid()
                .concurrency_held(IMAGES)
                .priority(priority)
                .estimate(film.price(kind)),
            move |_| async move { images.submit(&r).await.step() },
        )
        .await?;
    let images = film.studio.images.clone();
    let (every, timeout) = (film.config.image_poll, film.config.image_timeout);
    let out = ctx
        .step_with(
            format!("{name}/await"),
            StepOptions::new().timeout(timeout).retry(
                RetryPolicy::attempts(5).backoff(Duration::from_secs(2), Duration::from_secs(60)),
            ),
            move |sc| async move {
                loop {
                    let p = images.poll(&job, &req).await.step()?;
                    report(&sc, p.spend);
                    match p.value {
                        JobState::Completed { output } => return Ok(output),
                        _ => tokio::time::sleep(every).await,
                    }
                }
            },
        )
        .await?;
    ctx.release_slot(IMAGES, &submit).await?;
    Ok(out)
}

/// The concurrency key of image generations (a job at the provider holds one).
pub const IMAGES: &str = "images";
/// The concurrency key of video generations (a job at the provider holds one).
pub const VIDEO: &str = "video";

/// The identity of a failure, stable across replays: a failure recorded once is not recorded
/// again when the run re-executes, and a later, different failure is.
pub fn failure_key(e: &WfError) -> Option<String> {
    Some(match e {
        WfError::Step { step, attempt, .. } => format!("step/{step}#{attempt}"),
        WfError::LimitExceeded { limit, max, .. } => format!("limit/{limit}/{max}"),
        WfError::BudgetExceeded { budget_micros, .. } => format!("budget/{budget_micros}"),
        WfError::ChildFailed { step, child, .. } => format!("child/{step}/{child}"),
        WfError::Workflow { kind, .. } => format!("workflow/{kind}"),
        WfError::Nondeterminism(_) => "nondeterminism".into(),
        WfError::Suspended | WfError::Cancelled | WfError::LeaseLost | WfError::Engine(_) => {
            return None;
        }
        _ => "other".into(),
    })
}

/// Record a failure as a global error (once), run `also` on the records, and return the error.
pub async fn record_failure(
    ctx: &Ctx,
    film: &Film,
    slug: &Slug,
    phase: &str,
    e: WfError,
    also: impl FnOnce(FilmRepo, String) -> futures::future::BoxFuture<'static, Result<()>>
    + Send
    + 'static,
) -> WfError {
    let Some(key) = failure_key(&e) else { return e };
    let message = format!("{phase} failed: {}", e.to_run_error().message);
    let details = serde_json::json!({
        "run_id": ctx.run_id(),
        "workflow": ctx.workflow(),
        "error": e.to_run_error(),
        "fix": "fix the cause, then retry the failed step (POST /api/admin/runs/{run}/retry) or dismiss this error",
    });
    let (repo, slug2, phase2) = (film.repo.clone(), slug.clone(), phase.to_string());
    let dedupe = format!("{}/{key}", ctx.run_id());
    let msg2 = message.clone();
    let recorded = ctx
        .step(format!("errors/{key}"), move |_| async move {
            repo.record_error(Some(&slug2), &phase2, &msg2, &details, &dedupe)
                .await
                .step()?;
            also(repo, msg2).await.step()
        })
        .await;
    match recorded {
        Ok(()) => e,
        Err(other) if other.is_suspended() => other,
        Err(_) => e,
    }
}

/// A blob key under the project.
pub fn key(slug: &Slug, rest: &str) -> String {
    format!("projects/{slug}/{rest}")
}

/// Errors of steps that could not be decoded as step errors.
pub fn fatal(kind: &str, msg: impl Into<String>) -> StepError {
    StepError::fatal(kind, msg)
}
