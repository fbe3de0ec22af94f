//! The film follows its scenes (issue 26): every stitch is a kept [`FilmVersion`] listing the
//! take of each scene it was cut from; [`film_state`] says when the film is out of date (a
//! scene's current take is not the one the newest version used) and which scenes follow a
//! frame that changed; [`FilmStitch`] (`film.stitch`) cuts a new version from the scenes'
//! current takes without making any scene again.
//!
//! The stitch of `film.generate` and of `film.stitch` is the same code ([`stitch_and_keep`]):
//! the film goes to a key of its own run (`films/{run}.mp4`), so no version overwrites another,
//! and its pieces are kept by what they are made of, so a re-stitch makes only the pieces a
//! changed clip is in (decision 0028).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_activities::BlobRef;
use slate_activities::model::ClipSpec;
use slate_engine::{Ctx, WfError, Workflow};

pub use crate::cut::StitchOutput;
pub(crate) use crate::cut::{Cut, version_of};
use crate::error::IntoStep;
use crate::film::{Film, key, record_failure};
use crate::model::{FilmVersion, Scene, SceneStatus};
use crate::slug::Slug;

/// Stitch `cuts` into a new version of the film and make it the project's film (the steps
/// `stitch` and `finish`, as `film.generate` has always named them).
pub(crate) async fn stitch_and_keep(
    ctx: &Ctx,
    f: &Arc<Film>,
    slug: &Slug,
    cuts: &[Cut],
) -> Result<StitchOutput, WfError> {
    let clips: Vec<ClipSpec> = cuts.iter().map(|c| c.clip.clone()).collect();
    // Past the sound's patch point the stitch is the cut (picture and voices) and the film is
    // its mix; a run from before it keeps the film it stitched at the key it always had.
    let sound = ctx.patched(crate::names::sound::PATCH).await?;
    let base = key(slug, &format!("films/{}", ctx.run_id()));
    let k = format!("{base}{}.mp4", if sound { ".cut" } else { "" });
    let (media, c2) = (f.studio.media.clone(), clips.clone());
    let film: BlobRef = ctx
        .step(crate::names::film::STITCH, move |sc| async move {
            crate::film::checkpointed(&sc, media.stitch(&c2, &k))
                .await
                .step()
        })
        .await?;
    let (film, mixed) = if sound {
        let (film, mixed) = crate::film_sound::mix_film(ctx, f, slug, &film, cuts, &base).await?;
        (film, Some(mixed))
    } else {
        (film, None)
    };
    let (fr, s2, fk) = (f.clone(), slug.clone(), film.clone());
    let (run, cuts2) = (ctx.run_id().to_string(), cuts.to_vec());
    let duration: f64 = ctx
        .step(crate::names::film::FINISH, move |_| async move {
            let d = fr.studio.media.length(&fk).await.step()?;
            let scenes = fr.repo.scenes(&s2).await.step()?;
            let mut version = version_of(&run, fk.key(), d, &cuts2, &scenes);
            version.sound = mixed;
            fr.repo.add_film_version(&s2, &version).await.step()?;
            Ok(d)
        })
        .await?;
    Ok(StitchOutput {
        film: film.key().to_string(),
        scenes: cuts.len(),
        duration,
    })
}

/// The film's clips from its scenes' current takes, in film order; an error names the scenes
/// that have none.
pub fn cuts_of(scenes: &[Scene]) -> Result<Vec<(String, i32, ClipSpec)>, String> {
    let missing: Vec<String> = scenes
        .iter()
        .filter(|s| s.take().and_then(|t| t.video).is_none())
        .map(|s| s.scene_number.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "scene{} {} ha{} no finished take: generate {} first",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "s" } else { "ve" },
            if missing.len() == 1 { "it" } else { "them" },
        ));
    }
    let mut out = vec![];
    for s in scenes {
        let t = s.take().expect("checked above");
        let video =
            BlobRef::new(t.video.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
        out.push((
            s.id.clone(),
            s.scene_number,
            ClipSpec {
                video,
                duration: t.duration.unwrap_or(s.expected_duration),
                transition_in: s.transition_in.clone().unwrap_or_else(|| "cut".into()),
                transition_out: s.transition_out.clone().unwrap_or_else(|| "cut".into()),
            },
        ));
    }
    Ok(out)
}

/// Where the film stands against its scenes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct FilmState {
    /// The newest version (none before the first stitch).
    pub version: Option<i64>,
    /// A scene's current take is not the one the newest version used (or a scene was added
    /// or removed): a re-stitch would give a different film.
    pub out_of_date: bool,
    /// The scenes whose take differs from the newest version's, in film order.
    pub changed: Vec<ChangedScene>,
    /// Scenes that started from a previous scene's last frame that is no longer that scene's
    /// (its take changed since): offered to be made again, never made without asking.
    pub continuity_changed: Vec<ContinuityChanged>,
    /// Scenes with no finished take: the film cannot be stitched until they have one.
    pub missing: Vec<i32>,
}

/// A scene whose take differs from the film's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ChangedScene {
    /// Scene id.
    pub scene_id: String,
    /// Its number.
    pub scene_number: i32,
    /// The take the film has (none: the scene is not in it).
    pub film_take: Option<u32>,
    /// The scene's current take.
    pub current_take: Option<u32>,
}

/// A scene whose starting frame changed under it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ContinuityChanged {
    /// Scene id.
    pub scene_id: String,
    /// Its number.
    pub scene_number: i32,
    /// The scene before it, whose last frame it started from.
    pub previous_scene_number: i32,
    /// The frame its take started from (blob key).
    pub started_from: String,
    /// The previous scene's last frame now (blob key).
    pub previous_last_frame: Option<String>,
}

/// Where the film of `scenes` (in film order) stands against its newest version.
pub fn film_state(scenes: &[Scene], newest: Option<&FilmVersion>) -> FilmState {
    let mut state = FilmState {
        version: newest.map(|v| v.version),
        ..Default::default()
    };
    for s in scenes {
        let take = s.take();
        let video = take.as_ref().and_then(|t| t.video.clone());
        if video.is_none() {
            state.missing.push(s.scene_number);
        }
        let Some(v) = newest else { continue };
        let in_film = v.scenes.iter().find(|x| x.scene_id == s.id);
        if in_film.map(|x| Some(&x.video)) != Some(video.as_ref()) {
            state.changed.push(ChangedScene {
                scene_id: s.id.clone(),
                scene_number: s.scene_number,
                film_take: in_film.and_then(|x| x.take),
                current_take: take.map(|t| t.take),
            });
        }
    }
    if let Some(v) = newest {
        state.out_of_date = !state.changed.is_empty()
            || v.scenes
                .iter()
                .any(|x| scenes.iter().all(|s| s.id != x.scene_id));
    }
    for w in scenes.windows(2) {
        let (prev, s) = (&w[0], &w[1]);
        let Some(from) = s.take().and_then(|t| t.started_from) else {
            continue;
        };
        let continues = crate::model::continues_previous(
            prev.location.as_deref(),
            s.location.as_deref(),
            s.video_mode.as_deref(),
        );
        if continues && prev.last_frame_url.as_ref() != Some(&from) {
            state.continuity_changed.push(ContinuityChanged {
                scene_id: s.id.clone(),
                scene_number: s.scene_number,
                previous_scene_number: prev.scene_number,
                started_from: from,
                previous_last_frame: prev.last_frame_url.clone(),
            });
        }
    }
    state
}

/// Input of [`FilmStitch`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StitchInput {
    /// Project.
    pub project: Slug,
    /// Started on its own (the project's scenes changed) rather than by a person.
    #[serde(default)]
    pub automatic: bool,
    /// The takes it was started for (`scene:take,...`): an automatic stitch that failed is not
    /// started again for the same takes.
    #[serde(default)]
    pub takes: String,
}

/// The takes a film would be cut from, as [`StitchInput::takes`] names them.
pub fn takes_signature(scenes: &[Scene]) -> String {
    scenes
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s.scene_number,
                s.take().map_or(String::from("-"), |t| t.take.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A new version of the film from the scenes' current takes: nothing is generated, and only
/// the pieces of the film a changed clip is in are made again.
#[derive(Clone)]
pub struct FilmStitch(pub Arc<Film>);

impl FilmStitch {
    async fn body(&self, ctx: &Ctx, slug: &Slug) -> Result<StitchOutput, WfError> {
        let (f, s) = (self.0.clone(), slug.clone());
        let cuts: Vec<Cut> = ctx
            .step("scenes", move |_| async move {
                let scenes = f.repo.scenes(&s).await.step()?;
                if scenes.is_empty() {
                    return Err(slate_engine::StepError::fatal(
                        "no_scenes",
                        format!("project `{s}` has no scenes: qualify it first"),
                    ));
                }
                let cuts =
                    cuts_of(&scenes).map_err(|e| slate_engine::StepError::fatal("no_take", e))?;
                Ok(cuts
                    .into_iter()
                    .map(|(scene_id, scene_number, clip)| Cut {
                        scene_id,
                        scene_number,
                        clip,
                    })
                    .collect())
            })
            .await?;
        stitch_and_keep(ctx, &self.0, slug, &cuts).await
    }
}

impl Workflow for FilmStitch {
    const NAME: &'static str = crate::names::workflow::STITCH;
    type Input = StitchInput;
    type Output = StitchOutput;

    /// One stitch of a project's film at a time.
    fn exclusive_key(input: &StitchInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: StitchInput) -> Result<StitchOutput, WfError> {
        match self.body(&ctx, &input.project).await {
            Ok(v) => Ok(v),
            Err(e) => Err(record_failure(
                &ctx,
                &self.0,
                &input.project,
                &format!("the stitch of `{}`", input.project),
                e,
                |_, _| Box::pin(async { Ok(()) }),
            )
            .await),
        }
    }
}

/// Whether a scene in this state is being made.
pub fn busy(status: SceneStatus) -> bool {
    matches!(
        status,
        SceneStatus::WaitingForPrevious
            | SceneStatus::GeneratingComposite
            | SceneStatus::VerifyingComposite
            | SceneStatus::GeneratingVideo
    )
}
