//! A scene and the rest of its chain made again (issue 26): when a remade scene's last frame
//! changed under the scenes that start from it, a person may remake them in one go.
//! `film.chain` makes each scene in order as a child run, the next starting from the new last
//! frame of the one before, exactly as a film run makes a chain; each is a new take. Nothing
//! else is touched, and the film follows when the last one is done (the automatic re-stitch,
//! or a person's).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_engine::{Ctx, WfError, Workflow};

use crate::error::IntoStep;
use crate::film::{Film, record_failure};
use crate::model::{Scene, continues_previous};
use crate::scene::{PERSON_PRIORITY, PreviousScene, SceneGeneration, SceneInput, SceneOutput};
use crate::slug::Slug;

/// Input of [`ChainRemake`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainInput {
    /// Project.
    pub project: Slug,
    /// The scenes to make again, by id, in film order: the first and the scenes after it that
    /// start from the one before ([`chain_from`]).
    pub scenes: Vec<String>,
}

/// Scene `id` and the scenes after it in its chain (each starts from the one before's last
/// frame), in film order; empty when `scenes` has no such scene.
pub fn chain_from(scenes: &[Scene], id: &str) -> Vec<String> {
    let Some(i) = scenes.iter().position(|s| s.id == id) else {
        return vec![];
    };
    let mut out = vec![scenes[i].id.clone()];
    for w in scenes[i..].windows(2) {
        if !continues_previous(
            w[0].location.as_deref(),
            w[1].location.as_deref(),
            w[1].video_mode.as_deref(),
        ) {
            break;
        }
        out.push(w[1].id.clone());
    }
    out
}

/// What the previous scene gives the next: its current take's last frame and clip.
fn previous_of(s: &Scene) -> Option<PreviousScene> {
    Some(PreviousScene {
        scene_id: s.id.clone(),
        last_frame: s.last_frame_url.clone()?,
        location: s.location.clone(),
        time_of_day: s.time_of_day.clone(),
        characters: s.characters_present.clone(),
        video: s.generated_video_url.clone(),
    })
}

/// The workflow (`film.chain`).
#[derive(Clone)]
pub struct ChainRemake(pub Arc<Film>);

impl ChainRemake {
    async fn body(&self, ctx: &Ctx, input: &ChainInput) -> Result<Vec<SceneOutput>, WfError> {
        let (f, i) = (self.0.clone(), input.clone());
        // The scenes as they stand, and what the first starts from (its predecessor's take).
        let (mut previous, chain): (Option<PreviousScene>, Vec<Scene>) = ctx
            .step("scenes", move |_| async move {
                let all = f.repo.scenes(&i.project).await.step()?;
                let mut chain = vec![];
                for id in &i.scenes {
                    let s = all.iter().find(|s| &s.id == id).ok_or_else(|| {
                        slate_engine::StepError::fatal(
                            "no_scene",
                            format!("`{}` has no scene `{id}`", i.project),
                        )
                    })?;
                    chain.push(s.clone());
                }
                let before = chain.first().and_then(|first| {
                    all.iter()
                        .filter(|s| s.sequence_number < first.sequence_number)
                        .max_by_key(|s| s.sequence_number)
                        .and_then(previous_of)
                });
                Ok((before, chain))
            })
            .await?;
        let mut outs = vec![];
        for s in &chain {
            let input = SceneInput {
                project: input.project.clone(),
                scene_id: s.id.clone(),
                previous: previous.take(),
                priority: PERSON_PRIORITY,
                previous_by_signal: false,
            };
            let child = ctx
                .start_child::<SceneGeneration>(format!("scene/{}", s.scene_number), &input)
                .await?;
            let out = child
                .join_step(format!("scene/{}/join", s.scene_number))
                .await?;
            previous = Some(PreviousScene {
                scene_id: s.id.clone(),
                last_frame: out.last_frame.clone(),
                location: s.location.clone(),
                time_of_day: s.time_of_day.clone(),
                characters: s.characters_present.clone(),
                video: Some(out.video.clone()),
            });
            outs.push(out);
        }
        Ok(outs)
    }
}

impl Workflow for ChainRemake {
    const NAME: &'static str = crate::names::workflow::CHAIN;
    type Input = ChainInput;
    type Output = Vec<SceneOutput>;

    /// One remake of a chain from a given scene at a time.
    fn exclusive_key(input: &ChainInput) -> Option<String> {
        input.scenes.first().cloned()
    }

    async fn run(&self, ctx: Ctx, input: ChainInput) -> Result<Vec<SceneOutput>, WfError> {
        match self.body(&ctx, &input).await {
            Ok(v) => Ok(v),
            Err(e) => Err(record_failure(
                &ctx,
                &self.0,
                &input.project,
                &format!("the remake of a chain of `{}`", input.project),
                e,
                |_, _| Box::pin(async { Ok(()) }),
            )
            .await),
        }
    }
}
