//! The scene workflow (`film.scene`, the spec's phase 3), as straight-line code: the shot agent
//! plans it; the composite image is built one layer per iteration and verified
//! ([`composite`]); the continuity agent compares it with the previous scene's last frame while
//! the video is submitted ([`continuity`], [`video`]); the video is awaited by webhook with a
//! polling fallback, fitted to the scene's length and given its voices; its last frame is kept
//! for the next scene. When the project asks for it, the verified composite waits for a
//! person's approval before the video ([`approval`]).
//!
//! Step names and the shapes of journaled results are a contract with runs in flight: they are
//! the ones this workflow has always written.

pub mod approval;
mod composite;

/// A scene as the planner reads it (the spec's defaults for what people left empty).
pub(crate) fn breakdown_of(scene: &crate::model::Scene) -> slate_activities::model::SceneBreakdown {
    composite::breakdown(scene)
}
mod continuity;
mod video;
pub use video::{VIDEO_SUBMIT, line_start};

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use slate_activities::BlobRef;
use slate_activities::model::{MAX_SCENE_SECONDS, MIN_SCENE_SECONDS, ShotPlan};
use slate_engine::{Ctx, WfError, Workflow, join2};

use crate::error::IntoStep;
use crate::film::{Film, plan_priced, record_failure};
use crate::model::{Scene, SceneStatus};
use crate::qualification::shot_context;
use crate::slug::Slug;

/// The previous scene, as the next one needs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct PreviousScene {
    /// Its id.
    pub scene_id: String,
    /// Its last frame (blob key).
    pub last_frame: String,
    /// Where it was.
    pub location: Option<String>,
    /// When.
    pub time_of_day: Option<String>,
    /// Who was in it.
    pub characters: Vec<String>,
    /// Its clip (blob key), for video-to-video.
    #[serde(default)]
    pub video: Option<String>,
}

/// The priority of a scene a person asked to make (again): ahead of every film's chains, whose
/// scenes' priorities are the scenes left in their chain.
pub const PERSON_PRIORITY: i32 = 1_000_000;

/// Input of [`SceneGeneration`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SceneInput {
    /// Project.
    pub project: Slug,
    /// Scene id.
    pub scene_id: String,
    /// The scene before it, if any.
    pub previous: Option<PreviousScene>,
    /// Its place in line for the providers' slots: the scenes left in its chain of dependent
    /// scenes, this one included, so that the film's longest chains go first (decision 0020;
    /// 0 in runs started before).
    #[serde(default)]
    pub priority: i32,
    /// The previous scene's last frame comes later, by the signal [`PREVIOUS_SIGNAL`]: the
    /// scene plans its shot and gathers its references meanwhile, and waits for the frame
    /// before its composite (decision 0018; false in runs started before).
    #[serde(default)]
    pub previous_by_signal: bool,
}

/// The signal a scene started early waits for: its [`PreviousScene`], sent by the film when
/// the scene before it is done.
pub const PREVIOUS_SIGNAL: &str = crate::names::signal::PREVIOUS_SCENE;

/// A finished scene.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SceneOutput {
    /// Scene id.
    pub scene_id: String,
    /// The clip (blob key).
    pub video: String,
    /// Its last frame (blob key).
    pub last_frame: String,
    /// Its length, seconds.
    pub duration: f64,
}

/// The scene workflow.
#[derive(Clone)]
pub struct SceneGeneration(pub Arc<Film>);

/// One execution of a scene: what every phase needs.
struct Take<'a> {
    film: &'a Arc<Film>,
    ctx: &'a Ctx,
    slug: &'a Slug,
    id: &'a str,
    previous: Option<&'a PreviousScene>,
    priority: i32,
    /// Where this take keeps its blobs (`takes/{run}/`), empty for runs started before takes.
    dir: String,
}

impl SceneGeneration {
    async fn body(&self, ctx: &Ctx, input: &SceneInput) -> Result<SceneOutput, WfError> {
        // Runs started before takes were kept write where they always did.
        let takes = ctx.patched(crate::names::scene::TAKES).await?;
        let t = Take {
            film: &self.0,
            ctx,
            slug: &input.project,
            id: &input.scene_id,
            previous: input.previous.as_ref(),
            priority: input.priority,
            dir: if takes {
                format!("takes/{}/", ctx.run_id())
            } else {
                String::new()
            },
        };
        let (started_at, scene) = t.start(takes).await?;
        let shot = t.shot_plan(&scene).await?;
        let refs = t.references(&scene).await?;
        // Started before the scene it continues was done: what follows starts from its frame.
        let arrived: Option<PreviousScene>;
        let t = if input.previous_by_signal {
            arrived = Some(t.previous_scene().await?);
            Take {
                previous: arrived.as_ref(),
                ..t
            }
        } else {
            t
        };
        let mut composite = t.composite(&scene, &shot, &refs).await?;
        if t.approval_required().await? {
            composite = t.approve(&scene, &refs, composite).await?;
        }
        let duration = shot.duration.clamp(MIN_SCENE_SECONDS, MAX_SCENE_SECONDS);
        let request = t.video_request(&scene, &shot, &composite, duration).await;
        let (_, job) = join2(t.continuity(&scene, &composite), t.submit_video(&request)).await?;
        let video = t.await_video(&job, &request).await?;
        // Runs that trimmed or voiced their clip in two passes before the patch keep them.
        let one_pass =
            t.film.config.one_pass_cut && t.ctx.patched(crate::names::scene::ONE_PASS_CUT).await?;
        let clip = if one_pass {
            t.cut(&scene, &refs, video, duration).await?
        } else {
            let clip = t.fit(video, duration).await?;
            t.voices(&scene, &refs, clip, duration).await?
        };
        let (last_frame, actual) = t.last_frame(&clip).await?;
        let (c, lf) = (clip.key().to_string(), last_frame.key().to_string());
        let run = ctx.run_id().to_string();
        t.record("record/completed", move |s| {
            s.status = SceneStatus::Completed;
            s.generated_video_url = Some(c.clone());
            s.last_frame_url = Some(lf.clone());
            s.actual_duration = Some(actual);
            complete_take(s, &run, &c, &lf, actual);
            s.processing_time = Some((Utc::now().timestamp_millis() - started_at) as f64 / 1000.0);
            s.error_message = None;
        })
        .await?;
        Ok(SceneOutput {
            scene_id: input.scene_id.clone(),
            video: clip.key().to_string(),
            last_frame: last_frame.key().to_string(),
            duration: actual,
        })
    }
}

impl Take<'_> {
    /// Record a change of the scene as a step of its own, so it is made once.
    async fn record(
        &self,
        step: impl Into<String>,
        change: impl Fn(&mut Scene) + Send + Sync,
    ) -> Result<(), WfError> {
        let (repo, id) = (&self.film.repo, self.id);
        self.ctx
            .step(step, |_| async move {
                repo.modify_scene(id, change).await.step().map(|_| ())
            })
            .await
    }

    /// The scene as it stands when generation starts (people may have edited it), marked as
    /// being generated (with `takes`, as a new take of it), and when that was (ms).
    async fn start(&self, takes: bool) -> Result<(i64, Scene), WfError> {
        let (repo, id) = (&self.film.repo, self.id);
        let run = self.ctx.run_id().to_string();
        let from = self.previous.map(|p| p.last_frame.clone());
        self.ctx
            .step("start", |_| async move {
                let s = repo
                    .modify_scene(id, |s| {
                        s.status = SceneStatus::GeneratingComposite;
                        s.error_message = None;
                        if takes {
                            start_take(s, &run, from.clone());
                        }
                    })
                    .await
                    .step()?;
                Ok((Utc::now().timestamp_millis(), s))
            })
            .await
    }

    /// The shot agent: camera, lighting, pacing and the layers to composite.
    async fn shot_plan(&self, scene: &Scene) -> Result<ShotPlan, WfError> {
        let breakdown = composite::breakdown(scene);
        let (f, slug) = (self.film.clone(), self.slug.clone());
        let shot: ShotPlan = plan_priced(
            self.ctx,
            crate::names::scene::SHOT_PLAN,
            self.film.price(slate_activities::pricing::CallKind::Llm),
            move || async move {
                let sc = shot_context(&f, &slug).await.map_err(|e| {
                    slate_activities::ActivityError::new(
                        "film",
                        slate_activities::ErrorKind::Io,
                        e.to_string(),
                    )
                })?;
                f.studio.planner.shot_plan(&breakdown, &sc).await
            },
        )
        .await?;
        let sh = shot.clone();
        self.record("record/shot-plan", move |s| {
            s.shot_agent_decisions = serde_json::to_value(&sh).ok();
            s.camera_angle = Some(sh.camera_angle.clone());
            s.camera_shot = Some(sh.camera_shot.clone());
            s.camera_movement = Some(sh.camera_movement.clone());
            s.pacing = Some(sh.pacing.clone());
            s.status = SceneStatus::GeneratingComposite;
        })
        .await?;
        Ok(shot)
    }

    /// Wait for the previous scene's last frame (the scene shows as waiting for it meanwhile).
    async fn previous_scene(&self) -> Result<PreviousScene, WfError> {
        self.record("record/waiting-for-previous", |s| {
            s.status = SceneStatus::WaitingForPrevious;
        })
        .await?;
        let previous: Option<PreviousScene> = self
            .ctx
            .wait_signal("previous", PREVIOUS_SIGNAL, None)
            .await?;
        let previous = previous.ok_or_else(|| {
            WfError::failed(
                "no_previous_scene",
                "the wait for the previous scene ended without it",
            )
        })?;
        let (run, from) = (self.ctx.run_id().to_string(), previous.last_frame.clone());
        self.record("record/previous-arrived", move |s| {
            s.status = SceneStatus::GeneratingComposite;
            if let Some(t) = s.takes.iter_mut().find(|t| t.run_id == run) {
                t.started_from = Some(from.clone());
            }
        })
        .await?;
        Ok(previous)
    }

    /// The last frame, for the next scene, and the clip's real length.
    async fn last_frame(&self, clip: &BlobRef) -> Result<(BlobRef, f64), WfError> {
        let media = &self.film.studio.media;
        let k = self.key("last-frame.png");
        self.ctx
            .step(crate::names::scene::LAST_FRAME, |sc| async move {
                let lf = crate::film::checkpointed(&sc, media.last_frame(clip, &k))
                    .await
                    .step()?;
                let d = media.length(clip).await.step()?;
                Ok((lf, d))
            })
            .await
    }

    /// Where this scene's blob `name` is stored: under its take's own key, so that no take
    /// overwrites another's.
    fn key(&self, name: &str) -> String {
        crate::film::key(self.slug, &format!("scenes/{}/{}{name}", self.id, self.dir))
    }
}

/// Record run `run` as a new take of `s` (once: a step run again after a crash finds it), its
/// predecessors kept: a scene made before takes were kept has its one clip become take 1. The
/// scene's live history (iterations, verifications, continuity) starts afresh for the take.
fn start_take(s: &mut Scene, run: &str, started_from: Option<String>) {
    if s.takes.iter().any(|t| t.run_id == run) {
        return;
    }
    if s.takes.is_empty() {
        s.takes = s.all_takes();
    }
    let take = s.takes.iter().map(|t| t.take).max().unwrap_or(0) + 1;
    s.takes.push(crate::model::SceneTake {
        take,
        run_id: run.to_string(),
        status: crate::model::TakeStatus::Generating,
        started_at: Some(Utc::now()),
        fields: s.take_fields(),
        started_from,
        ..Default::default()
    });
    s.composite_iterations.clear();
    s.verification_results.clear();
    s.continuity_checks.clear();
}

/// Keep what the take made in its record and make it the scene's current take (the newest
/// completed take is the one the film uses until a person chooses another).
fn complete_take(s: &mut Scene, run: &str, video: &str, last_frame: &str, duration: f64) {
    let (iterations, verifications, checks, composite) = (
        s.composite_iterations.clone(),
        s.verification_results.clone(),
        s.continuity_checks.clone(),
        s.composite_final_url.clone(),
    );
    let Some(t) = s.takes.iter_mut().find(|t| t.run_id == run) else {
        return;
    };
    t.status = crate::model::TakeStatus::Completed;
    t.completed_at = Some(Utc::now());
    t.video = Some(video.to_string());
    t.last_frame = Some(last_frame.to_string());
    t.duration = Some(duration);
    t.composite_iterations = iterations;
    t.verification_results = verifications;
    t.continuity_checks = checks;
    t.composite_final_url = composite;
    t.error_message = None;
    t.dialogue = s.dialogue.clone();
    s.current_take = Some(t.take);
}

/// Keep what a failed take made, and why it failed. The scene's current take (and clip) stay.
fn fail_take(s: &mut Scene, run: &str, message: &str) {
    let (iterations, verifications, checks) = (
        s.composite_iterations.clone(),
        s.verification_results.clone(),
        s.continuity_checks.clone(),
    );
    if let Some(t) = s.takes.iter_mut().find(|t| t.run_id == run) {
        t.status = crate::model::TakeStatus::Failed;
        t.error_message = Some(message.to_string());
        t.composite_iterations = iterations;
        t.verification_results = verifications;
        t.continuity_checks = checks;
    }
}

impl Workflow for SceneGeneration {
    const NAME: &'static str = crate::names::workflow::SCENE;
    type Input = SceneInput;
    type Output = SceneOutput;

    /// One generation of a scene at a time.
    fn exclusive_key(input: &SceneInput) -> Option<String> {
        Some(input.scene_id.clone())
    }

    async fn run(&self, ctx: Ctx, input: SceneInput) -> Result<SceneOutput, WfError> {
        match self.body(&ctx, &input).await {
            Ok(v) => Ok(v),
            Err(e) => {
                let id = input.scene_id.clone();
                let run = ctx.run_id().to_string();
                let number = self
                    .0
                    .repo
                    .scene(&id)
                    .await
                    .map(|s| s.scene_number)
                    .unwrap_or_default();
                Err(record_failure(
                    &ctx,
                    &self.0,
                    &input.project,
                    &format!("scene {number} of `{}`", input.project),
                    e,
                    move |repo, msg| {
                        Box::pin(async move {
                            repo.modify_scene(&id, |s| {
                                s.status = SceneStatus::Failed;
                                s.error_message = Some(msg.clone());
                                fail_take(s, &run, &msg);
                                s.retry_count = s
                                    .composite_iterations
                                    .iter()
                                    .map(|it| it.attempts as i32 - 1)
                                    .sum::<i32>()
                                    + 1;
                            })
                            .await
                            .map(|_| ())
                        })
                    },
                )
                .await)
            }
        }
    }
}
