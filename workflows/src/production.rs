//! The production workflow (`film.produce`): from gathered ideas to the film, qualification
//! then generation as child runs (a budget on this run covers both).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slate_engine::{Ctx, WfError, Workflow};

use crate::error::IntoStep;
use crate::film::Film;
use crate::film_workflow::{FilmGeneration, FilmInput, FilmOutput, SCENE_RETRIES};
use crate::slug::Slug;

/// Input of [`Production`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProduceInput {
    /// Project.
    pub project: Slug,
    /// Seconds of the qualification edit window.
    #[serde(default, deserialize_with = "crate::qualification::edit_window")]
    #[schema(maximum = 604800)]
    pub edit_window_secs: Option<u64>,
}

/// What a production made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProduceOutput {
    /// Qualification's figures.
    pub qualification: crate::qualification::QualifyOutput,
    /// The film, unless qualification was stopped for edits.
    pub film: Option<FilmOutput>,
}

/// From gathered ideas to the film: qualification, then generation, as child runs (a budget on
/// this run covers both).
#[derive(Clone)]
pub struct Production(pub Arc<Film>);

impl Workflow for Production {
    const NAME: &'static str = crate::names::workflow::PRODUCE;
    type Input = ProduceInput;
    type Output = ProduceOutput;

    /// One production of a project at a time.
    fn exclusive_key(input: &ProduceInput) -> Option<String> {
        Some(input.project.to_string())
    }

    async fn run(&self, ctx: Ctx, input: ProduceInput) -> Result<ProduceOutput, WfError> {
        let q_in = crate::qualification::QualifyInput {
            project: input.project.clone(),
            edit_window_secs: input.edit_window_secs,
        };
        let q = ctx
            .start_child::<crate::qualification::Qualification>("qualify", &q_in)
            .await?;
        let (fr, s, qid, rid) = (
            self.0.clone(),
            input.project.clone(),
            q.id().to_string(),
            ctx.run_id().to_string(),
        );
        ctx.step("record/runs", move |_| async move {
            fr.repo.set_runs(&s, Some(qid), Some(rid)).await.step()
        })
        .await?;
        let mut qual = q.join_step("qualify/join").await;
        let mut retry = 0;
        while matches!(qual, Err(WfError::ChildFailed { .. })) && retry < SCENE_RETRIES {
            retry += 1;
            qual = q.join_step(format!("qualify/join/{retry}")).await;
        }
        let qualification = qual?;
        if qualification.stopped {
            return Ok(ProduceOutput {
                qualification,
                film: None,
            });
        }
        let film = ctx
            .child::<FilmGeneration>(
                "film",
                &FilmInput {
                    project: input.project.clone(),
                    parallel: self.0.config.parallel_scenes,
                    early: self.0.config.parallel_scenes,
                },
            )
            .await?;
        Ok(ProduceOutput {
            qualification,
            film: Some(film),
        })
    }
}
