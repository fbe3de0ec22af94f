//! The film workflow (`film.generate`, the spec's phase 4): every scene as a child run, then
//! the clips stitched with their transitions, in film order.
//!
//! A scene that needs its predecessor's last frame (the action stays in the same place, or it
//! continues the previous clip) waits for it; the others start at once. The film is therefore
//! a set of chains of dependent scenes, run side by side (`docs/decisions/0018`); runs started
//! before this (their input says `parallel: false`) go one scene after another as they always
//! did. A scene that fails stops its chain, which then waits for that scene to be retried by a
//! person (nothing already generated is generated again) instead of failing with it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_activities::BlobRef;
use slate_activities::model::ClipSpec;
use slate_engine::{ChildHandle, Ctx, WfError, Workflow, join_all};

use crate::error::IntoStep;
use crate::film::{Film, record_failure};
use crate::model::{ProjectStatus, SceneStatus};
use crate::scene::{PREVIOUS_SIGNAL, PreviousScene, SceneGeneration, SceneInput, SceneOutput};
use crate::slug::Slug;

/// Input of [`FilmGeneration`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilmInput {
    /// Project.
    pub project: Slug,
    /// Chains of dependent scenes side by side (false, as in runs started before: every scene
    /// after the one before it).
    #[serde(default)]
    pub parallel: bool,
    /// With `parallel`: every scene of a chain starts at once, and the ones after its first
    /// wait for their predecessor's last frame only where they use it (after their shot plan
    /// and references); false in runs started before, which start each scene when the one
    /// before it is done.
    #[serde(default)]
    pub early: bool,
}

/// The finished film.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FilmOutput {
    /// The film (blob key).
    pub film: String,
    /// Scenes in it.
    pub scenes: usize,
    /// Its length, seconds.
    pub duration: f64,
}

/// How many times a person may retry a failed scene before the film gives up.
pub(crate) const SCENE_RETRIES: u32 = 5;

/// The film workflow: every scene in order, then the stitch.
#[derive(Clone)]
pub struct FilmGeneration(pub Arc<Film>);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SceneRef {
    id: String,
    number: i32,
    location: Option<String>,
    time_of_day: Option<String>,
    characters: Vec<String>,
    transition_in: String,
    transition_out: String,
    done: Option<SceneOutput>,
    /// `video_to_video` continues the previous clip (absent in runs started before).
    #[serde(default)]
    video_mode: Option<String>,
}

/// Whether `s` needs the last frame (or clip) of `prev`, the scene before it: it stays in the
/// same place, where the composite is seeded with that frame (an unknown place counts as the
/// same), or it continues the previous clip.
fn needs_previous(prev: &SceneRef, s: &SceneRef) -> bool {
    crate::model::continues_previous(
        prev.location.as_deref(),
        s.location.as_deref(),
        s.video_mode.as_deref(),
    )
}

/// The scenes as chains: each chain's scenes depend on the one before; chains do not depend
/// on each other. In film order.
fn chains(scenes: &[SceneRef]) -> Vec<Vec<&SceneRef>> {
    let mut out: Vec<Vec<&SceneRef>> = vec![];
    for (i, s) in scenes.iter().enumerate() {
        match out.last_mut() {
            Some(chain) if i > 0 && needs_previous(&scenes[i - 1], s) => chain.push(s),
            _ => out.push(vec![s]),
        }
    }
    out
}

/// The film's chains of dependent scenes, by scene number, in film order: the ones a film run
/// makes side by side (decision 0018). What `slate-bench film` takes its lower bound from.
pub fn chains_of(scenes: &[crate::model::Scene]) -> Vec<Vec<i32>> {
    let refs: Vec<SceneRef> = scenes
        .iter()
        .map(|sc| SceneRef {
            id: sc.id.clone(),
            number: sc.scene_number,
            location: sc.location.clone(),
            time_of_day: sc.time_of_day.clone(),
            characters: vec![],
            transition_in: String::new(),
            transition_out: String::new(),
            done: None,
            video_mode: sc.video_mode.clone(),
        })
        .collect();
    chains(&refs)
        .into_iter()
        .map(|c| c.into_iter().map(|s| s.number).collect())
        .collect()
}

fn previous_of(s: &SceneRef, out: &SceneOutput) -> PreviousScene {
    PreviousScene {
        scene_id: s.id.clone(),
        video: Some(out.video.clone()),
        last_frame: out.last_frame.clone(),
        location: s.location.clone(),
        time_of_day: s.time_of_day.clone(),
        characters: s.characters.clone(),
    }
}

impl FilmGeneration {
    async fn body(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        parallel: bool,
        early: bool,
    ) -> Result<FilmOutput, WfError> {
        let f = self.0.clone();
        let (fr, s) = (f.clone(), slug.clone());
        let scenes: Vec<SceneRef> = ctx
            .step("scenes", move |_| async move {
                fr.repo
                    .set_project_status(&s, ProjectStatus::Generating)
                    .await
                    .step()?;
                let scenes = fr.repo.scenes(&s).await.step()?;
                Ok(scenes
                    .into_iter()
                    .map(|sc| SceneRef {
                        done: (sc.status == SceneStatus::Completed)
                            .then(|| {
                                Some(SceneOutput {
                                    scene_id: sc.id.clone(),
                                    video: sc.generated_video_url.clone()?,
                                    last_frame: sc.last_frame_url.clone()?,
                                    duration: sc.actual_duration?,
                                })
                            })
                            .flatten(),
                        id: sc.id,
                        number: sc.scene_number,
                        location: sc.location,
                        time_of_day: sc.time_of_day,
                        characters: sc.characters_present,
                        transition_in: sc.transition_in.unwrap_or_else(|| "cut".into()),
                        transition_out: sc.transition_out.unwrap_or_else(|| "cut".into()),
                        video_mode: sc.video_mode,
                    })
                    .collect())
            })
            .await?;
        if scenes.is_empty() {
            return Err(WfError::failed(
                "no_scenes",
                format!("project `{slug}` has no scenes: qualify it first"),
            ));
        }
        let outputs: Vec<SceneOutput> = if parallel {
            let runs = chains(&scenes).into_iter().map(|chain| async move {
                if early {
                    return self.chain_early(ctx, slug, &chain).await;
                }
                let mut previous = None;
                let mut outs = vec![];
                let len = chain.len();
                for (i, s) in chain.into_iter().enumerate() {
                    // The longest chains bound the film: their scenes go first for the
                    // providers' slots (decision 0020).
                    let priority = i32::try_from(len - i).unwrap_or(i32::MAX);
                    let out = self.scene(ctx, slug, s, previous.take(), priority).await?;
                    previous = Some(previous_of(s, &out));
                    outs.push(out);
                }
                Ok(outs)
            });
            join_all(runs).await?.into_iter().flatten().collect()
        } else {
            let mut previous = None;
            let mut outs = vec![];
            for s in &scenes {
                let out = self.scene(ctx, slug, s, previous.take(), 0).await?;
                previous = Some(previous_of(s, &out));
                outs.push(out);
            }
            outs
        };
        let mut cuts = vec![];
        for (s, out) in scenes.iter().zip(&outputs) {
            cuts.push(crate::film_versions::Cut {
                scene_id: s.id.clone(),
                scene_number: s.number,
                clip: ClipSpec {
                    video: BlobRef::new(&out.video)
                        .map_err(|e| WfError::failed("bad_blob", e.to_string()))?,
                    duration: out.duration,
                    transition_in: s.transition_in.clone(),
                    transition_out: s.transition_out.clone(),
                },
            });
        }
        let out = crate::film_versions::stitch_and_keep(ctx, &f, slug, &cuts).await?;
        Ok(FilmOutput {
            film: out.film,
            scenes: out.scenes,
            duration: out.duration,
        })
    }

    /// A chain whose scenes all start at once. Each scene after the first plans its shot and
    /// gathers its references meanwhile, then waits for its predecessor's last frame, which
    /// this run sends it (`scene/{n}/previous`) as soon as the predecessor is done.
    async fn chain_early(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        chain: &[&SceneRef],
    ) -> Result<Vec<SceneOutput>, WfError> {
        let len = chain.len();
        let mut children = Vec::with_capacity(len);
        let mut by_signal = Vec::with_capacity(len);
        for (i, s) in chain.iter().enumerate() {
            let before = i.checked_sub(1).map(|j| chain[j]);
            // A predecessor already done gives its frame at once; one still to make, by signal.
            let (previous, signal) = match before {
                None => (None, false),
                Some(p) => match &p.done {
                    Some(out) => (Some(previous_of(p, out)), false),
                    None => (None, true),
                },
            };
            by_signal.push(signal);
            if s.done.is_some() {
                children.push(None);
                continue;
            }
            let input = SceneInput {
                project: slug.clone(),
                scene_id: s.id.clone(),
                previous,
                priority: i32::try_from(len - i).unwrap_or(i32::MAX),
                previous_by_signal: signal,
            };
            children.push(Some(
                ctx.start_child::<SceneGeneration>(format!("scene/{}", s.number), &input)
                    .await?,
            ));
        }
        let ids: Vec<_> = children
            .iter()
            .map(|c| c.as_ref().map(|c| c.id()))
            .collect();
        let mut outs = Vec::with_capacity(len);
        for (i, (s, child)) in chain.iter().zip(children).enumerate() {
            let out = match (&s.done, child) {
                (Some(done), _) => done.clone(),
                (None, Some(child)) => self.join_scene(ctx, slug, s, child).await?,
                (None, None) => {
                    return Err(WfError::failed(
                        "no_scene_run",
                        format!("scene {} has no run and is not done", s.number),
                    ));
                }
            };
            if let (Some(true), Some(Some(next)), Some(n)) =
                (by_signal.get(i + 1), ids.get(i + 1), chain.get(i + 1))
            {
                let previous = serde_json::to_value(previous_of(s, &out))
                    .map_err(|e| WfError::failed("bad_previous", e.to_string()))?;
                ctx.send_signal(
                    format!("scene/{}/previous", n.number),
                    *next,
                    PREVIOUS_SIGNAL,
                    previous,
                )
                .await?;
            }
            outs.push(out);
        }
        Ok(outs)
    }

    /// One scene: its earlier output, or a child run of it (waiting for a person to retry it
    /// when it fails, at most SCENE_RETRIES times).
    async fn scene(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        s: &SceneRef,
        previous: Option<PreviousScene>,
        priority: i32,
    ) -> Result<SceneOutput, WfError> {
        // A scene finished by an earlier run is not generated again.
        if let Some(done) = &s.done {
            return Ok(done.clone());
        }
        let input = SceneInput {
            project: slug.clone(),
            scene_id: s.id.clone(),
            previous,
            priority,
            previous_by_signal: false,
        };
        let child = ctx
            .start_child::<SceneGeneration>(format!("scene/{}", s.number), &input)
            .await?;
        self.join_scene(ctx, slug, s, child).await
    }

    /// Join a scene's run; when it fails, wait for a person to retry it, at most
    /// SCENE_RETRIES times.
    async fn join_scene(
        &self,
        ctx: &Ctx,
        slug: &Slug,
        s: &SceneRef,
        child: ChildHandle<SceneOutput>,
    ) -> Result<SceneOutput, WfError> {
        let f = &self.0;
        let mut outcome = child.join_step(format!("scene/{}/join", s.number)).await;
        // A failed scene is not the end of the film: wait for a person to fix and retry it
        // (the run holds nothing meanwhile), at most SCENE_RETRIES times.
        let mut retry = 0;
        while let Err(WfError::ChildFailed { .. }) = &outcome {
            retry += 1;
            if retry > SCENE_RETRIES {
                break;
            }
            let (fr, sl) = (f.clone(), slug.clone());
            ctx.step(
                format!("scene/{}/failed/{retry}", s.number),
                move |_| async move {
                    fr.repo
                        .set_project_status(&sl, ProjectStatus::Failed)
                        .await
                        .step()
                },
            )
            .await?;
            outcome = child
                .join_step(format!("scene/{}/join/{retry}", s.number))
                .await;
            if outcome.is_ok() {
                let (fr, sl) = (f.clone(), slug.clone());
                ctx.step(
                    format!("scene/{}/resumed/{retry}", s.number),
                    move |_| async move {
                        fr.repo
                            .set_project_status(&sl, ProjectStatus::Generating)
                            .await
                            .step()
                    },
                )
                .await?;
            }
        }
        outcome
    }
}

impl Workflow for FilmGeneration {
    const NAME: &'static str = crate::names::workflow::GENERATE;
    type Input = FilmInput;
    type Output = FilmOutput;

    /// One film of a project at a time.
    fn exclusive_key(input: &FilmInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: FilmInput) -> Result<FilmOutput, WfError> {
        match self
            .body(&ctx, &input.project, input.parallel, input.early)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) => {
                let s = input.project.clone();
                Err(record_failure(
                    &ctx,
                    &self.0,
                    &input.project,
                    &format!("film of `{}`", input.project),
                    e,
                    move |repo, _| {
                        Box::pin(
                            async move { repo.set_project_status(&s, ProjectStatus::Failed).await },
                        )
                    },
                )
                .await)
            }
        }
    }
}
