//! Patches: a workflow changed in place, its runs in flight kept on the code they started.

use super::Ctx;
use crate::error::WfError;
use crate::journal::EntryState;
use crate::model::{Cost, EventData};

impl Ctx {
    /// Whether this run takes the changed code at the patch point `name` (journaled as
    /// `patch/{name}`). A run reaching the point for the first time takes it (`true`); a run
    /// that had already passed the point on code without the patch (its journal holds entries
    /// this execution has not reached yet) keeps the old code (`false`). The answer is
    /// journaled, so every later replay gives the same one:
    ///
    /// ```text
    /// if ctx.patched("trim-and-mix").await? { one_pass(...) } else { trim(...); mix(...) }
    /// ```
    ///
    /// Once no run holding `false` remains (`GET /api/runs?patch=trim-and-mix` finds them),
    /// keep only the new code behind [`Ctx::deprecated_patch`], then drop that too.
    pub async fn patched(&self, name: &str) -> Result<bool, WfError> {
        let step = format!("patch/{name}");
        self.claim_name(&step)?;
        self.check_live()?;
        match self.entry_state(&step) {
            Some(EntryState::Patch(applied)) => Ok(applied),
            None => {
                // Runs that passed the point before have entries ahead of it; the other
                // branches replay first so that their entries do not count as ahead.
                let applied = !self.history_ahead() || self.replay_settles().await;
                if self.inner.dry.is_some() {
                    return Ok(applied);
                }
                self.commit(
                    &step,
                    vec![EventData::Patch {
                        name: name.to_string(),
                        applied,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                Ok(applied)
            }
            Some(other) => Err(self.nondeterminism(&step, &other, "a patch marker")),
        }
    }

    /// A patch whose old code is gone: the point accepts the marker runs journaled there and
    /// journals nothing new.
    pub fn deprecated_patch(&self, name: &str) -> Result<(), WfError> {
        let step = format!("patch/{name}");
        self.claim_name(&step)?;
        match self.entry_state(&step) {
            None | Some(EntryState::Patch(_)) => Ok(()),
            Some(other) => Err(self.nondeterminism(&step, &other, "a patch marker")),
        }
    }
}
