//! The approval gate: when the project asks for it, a scene's verified composite waits for a
//! person before any video is paid for. Approval continues to the video; a rejection with a
//! note redoes the composite's last layer as one more iteration of the same bounded count (so
//! the 20-iteration limit holds across rejections) and asks again.
//!
//! The wait is a durable signal (`approval:{scene_id}`, delivered to the waiting run), so the
//! gate survives restarts; where the scene stands is kept in its record (`approval`) for the
//! API, the CLI and the dashboard.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use slate_engine::WfError;

use super::Take;
use super::composite::{Composite, Refs};
use crate::error::IntoStep;
use crate::model::{Approval, ApprovalDecision, ApprovalState, Scene, SceneStatus};

/// A person's decision, as the signal carries it (a contract with runs in flight).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    /// Approve (go on to the video) or reject (revise the composite).
    pub approve: bool,
    /// What to change (a rejection's note).
    #[serde(default)]
    pub note: Option<String>,
    /// The round decided on.
    pub round: u32,
}

/// The signal a scene's run waits on at the gate.
pub fn signal_name(scene_id: &str) -> String {
    format!("approval:{scene_id}")
}

/// The key that makes a second decision on the same round a duplicate (the first one wins).
pub fn decision_key(run_id: &str, round: u32) -> String {
    format!("approval:{run_id}:{round}")
}

impl Take<'_> {
    /// Whether this scene waits for approval: the project asks for it and the composite has
    /// not gone on to the video yet (a run started before the gate existed, replayed past its
    /// video, is not stopped after the fact).
    pub(super) async fn approval_required(&self) -> Result<bool, WfError> {
        let (repo, slug, id) = (&self.film.repo, self.slug, self.id);
        self.ctx
            .step("approval/required", |_| async move {
                let project = repo.project(slug).await.step()?;
                let scene = repo.scene(id).await.step()?;
                Ok(project.approval_required && scene.status == SceneStatus::VerifyingComposite)
            })
            .await
    }

    /// Put the composite up for approval until a person approves one; each rejection revises
    /// it first.
    pub(super) async fn approve(
        &self,
        scene: &Scene,
        refs: &Refs,
        mut c: Composite,
    ) -> Result<Composite, WfError> {
        for round in 1.. {
            let composite = c.image.image.key().to_string();
            let run_id = self.ctx.run_id().to_string();
            self.record(format!("record/approval/{round}"), move |s| {
                let history = s.approval.take().map(|a| a.history).unwrap_or_default();
                s.status = SceneStatus::VerifyingComposite;
                s.approval = Some(Approval {
                    state: ApprovalState::Awaiting,
                    composite: composite.clone(),
                    round,
                    run_id: run_id.clone(),
                    requested_at: Some(Utc::now()),
                    history,
                });
            })
            .await?;
            let Some(d) = self
                .ctx
                .wait_signal::<Decision>(format!("approval/{round}"), signal_name(self.id), None)
                .await?
            else {
                return Err(WfError::failed(
                    "approval_timeout",
                    "the approval wait ended without a decision",
                ));
            };
            let (approve, note) = (d.approve, d.note.clone());
            self.record(format!("record/approval/{round}/decided"), move |s| {
                let state = if approve {
                    ApprovalState::Approved
                } else {
                    ApprovalState::Rejected
                };
                if !approve {
                    s.status = SceneStatus::GeneratingComposite;
                }
                if let Some(a) = s.approval.as_mut() {
                    a.state = state;
                    a.history.push(ApprovalDecision {
                        state,
                        composite: a.composite.clone(),
                        round,
                        note: note.clone(),
                        decided_at: Some(Utc::now()),
                    });
                }
            })
            .await?;
            if approve {
                return Ok(c);
            }
            c = self
                .revise(
                    scene,
                    refs,
                    c,
                    d.note.as_deref().unwrap_or("no reason given"),
                )
                .await?;
        }
        unreachable!("the loop returns on approval or fails at the iteration limit")
    }
}
