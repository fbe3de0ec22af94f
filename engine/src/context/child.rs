//! Child runs: started once by a parent's step, joined durably.

use std::marker::PhantomData;

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Ctx, decode};
use crate::error::{RunError, WfError};
use crate::journal::EntryState;
use crate::model::{Cost, EventData, NewRun, RunId, RunStatus};
use crate::store::child_signal_name;

impl Ctx {
    /// Start a child run of workflow `W` (idempotent: a parent's step starts at most one
    /// child, so re-executing it finds the same child). Join it with [`ChildHandle::join`].
    pub async fn start_child<W: crate::Workflow>(
        &self,
        name: impl Into<String>,
        input: &W::Input,
    ) -> Result<ChildHandle<W::Output>, WfError> {
        let input = serde_json::to_value(input)
            .map_err(|e| WfError::failed("bad_input", format!("child input: {e}")))?;
        let h = self.start_child_raw(name, W::NAME, input).await?;
        Ok(ChildHandle {
            step: h.step,
            child_id: h.child_id,
            ctx: h.ctx,
            _t: PhantomData,
        })
    }

    /// [`Ctx::start_child`] by workflow name, with a JSON input.
    pub async fn start_child_raw(
        &self,
        name: impl Into<String>,
        workflow: &str,
        input: Value,
    ) -> Result<ChildHandle<Value>, WfError> {
        let name = name.into();
        self.claim_name(&name)?;
        self.check_live()?;
        let child_id = match self.entry_state(&name) {
            Some(EntryState::Child { child_id }) => child_id,
            None => {
                self.fresh(&name, "a child run").await?;
                let now = Utc::now();
                let (child, _) = self
                    .inner
                    .shared
                    .store
                    .create_run(NewRun {
                        id: RunId::new(),
                        workflow: workflow.to_string(),
                        workflow_version: self.inner.shared.registry.version(workflow),
                        build: self.inner.shared.config.build.clone(),
                        exclusive_key: None,
                        idempotency_key: None,
                        scope: self.inner.run.scope.clone(),
                        input,
                        parent_id: Some(self.inner.run.id),
                        parent_step: Some(name.clone()),
                        root_id: self.inner.run.root_id,
                        budget_micros: None,
                        now,
                        ready_at: now,
                    })
                    .await?;
                let child_id = child.id;
                self.commit(
                    &name,
                    vec![EventData::ChildStarted {
                        child_id,
                        workflow: workflow.to_string(),
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                self.inner.shared.wake.notify_waiters();
                child_id
            }
            Some(other) => return Err(self.nondeterminism(&name, &other, "a child run")),
        };
        Ok(ChildHandle {
            step: name,
            child_id,
            ctx: self.clone(),
            _t: PhantomData,
        })
    }

    /// Start a child run and wait for its output.
    pub async fn child<W: crate::Workflow>(
        &self,
        name: impl Into<String>,
        input: &W::Input,
    ) -> Result<W::Output, WfError> {
        self.start_child::<W>(name, input).await?.join().await
    }
}

/// A started child run.
#[derive(Debug)]
pub struct ChildHandle<O> {
    step: String,
    child_id: RunId,
    ctx: Ctx,
    _t: PhantomData<fn() -> O>,
}

#[derive(serde::Deserialize)]
struct ChildOutcome {
    status: RunStatus,
    output: Option<Value>,
    error: Option<RunError>,
}

impl<O: DeserializeOwned> ChildHandle<O> {
    /// The child's id.
    pub fn id(&self) -> RunId {
        self.child_id
    }

    /// Wait for the child to finish; its failure or cancellation is [`WfError::ChildFailed`].
    ///
    /// A parent follows its child (decision 0025): when the run failed because of this child
    /// and was then resumed for it (the child retried, or the parent retried), the join waits
    /// for the child's next outcome (`{step}/join/1`, `/2`...) instead of failing again. The
    /// resumption is in the journal, so every replay takes the same path.
    pub async fn join(self) -> Result<O, WfError> {
        let mut name = format!("{}/join", self.step);
        let mut again = 0;
        loop {
            let outcome = self.join_step(name.clone()).await;
            if matches!(outcome, Err(WfError::ChildFailed { .. }))
                && self.ctx.resumed_after(&name, self.child_id)
            {
                again += 1;
                name = format!("{}/join/{again}", self.step);
                continue;
            }
            return outcome;
        }
    }

    /// Wait for the child's next outcome under a step name of your choice. A child that failed
    /// and was then retried by a person reports again: join it again with a new name to wait
    /// for that outcome (each outcome is consumed once, oldest first).
    pub async fn join_step(&self, name: impl Into<String>) -> Result<O, WfError> {
        let outcome: ChildOutcome = self
            .ctx
            .wait_signal(name, child_signal_name(self.child_id), None)
            .await?
            .ok_or_else(|| WfError::Engine("a join without deadline timed out".into()))?;
        match outcome.status {
            RunStatus::Completed => decode(
                &format!("{}/join", self.step),
                &outcome.output.unwrap_or(Value::Null),
            ),
            _ => Err(WfError::ChildFailed {
                step: self.step.clone(),
                child: self.child_id,
                error: Box::new(outcome.error.unwrap_or_else(|| {
                    RunError::new(outcome.status.as_str(), "the child did not complete")
                })),
            }),
        }
    }
}
