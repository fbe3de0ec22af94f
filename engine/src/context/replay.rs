//! Replay against changed code: where the journal and the code part ways, and the dry replay
//! that checks a build against histories without writing anything.
//!
//! Names are the journal's keys, so an operation the journal does not hold is either new work
//! or the sign of a change: a step renamed, removed or moved leaves entries of the journal that
//! the code never reaches again. Before new work begins, the other branches of the run replay
//! what they can (journaled operations answer at once, so a few turns of the executor reach
//! every one that is reachable); an entry still unreached then is one the code no longer
//! makes, and the run stops there with a [`Mismatch`] instead of doing the work twice under
//! two names.

use super::Ctx;
use crate::error::{JournalPoint, Mismatch, WfError};

/// What a dry replay found the code would do that its journal does not hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WouldRun {
    /// The operation's name.
    pub name: String,
    /// What it is (`a step`, `a timer`, ...).
    pub kind: String,
    /// True when the journal has it unfinished (a step cut short, or to be retried): it would
    /// run again; false when it is new.
    pub again: bool,
}

/// Turns of the executor with no new entry reached after which replay is taken as settled.
const QUIET_TURNS: u32 = 3;
/// How long nothing new must be reached before an unreached entry is taken as a change.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

impl Ctx {
    /// Before the operation `name`, which the journal does not hold, begins: the check that the
    /// journal holds nothing the code skipped, then (in a dry replay) the stop.
    pub(super) async fn fresh(&self, name: &str, kind: &str) -> Result<(), WfError> {
        if self.history_ahead() && !self.replay_settles().await {
            return Err(self.mismatch_at(name, kind));
        }
        self.dry_stop(name, kind, false)
    }

    /// In a dry replay, note that `name` would run (`again`: it ran before and did not finish)
    /// and stop its branch.
    pub(super) fn dry_stop(&self, name: &str, kind: &str, again: bool) -> Result<(), WfError> {
        let Some(dry) = &self.inner.dry else {
            return Ok(());
        };
        let mut d = dry.lock().unwrap_or_else(|e| e.into_inner());
        if !d.iter().any(|w| w.name == name) {
            d.push(WouldRun {
                name: name.to_string(),
                kind: kind.to_string(),
                again,
            });
        }
        Err(WfError::Suspended)
    }

    /// True when the journal holds entries this execution has not reached.
    pub(super) fn history_ahead(&self) -> bool {
        let g = self.lock();
        g.journal
            .entries
            .iter()
            .any(|(k, e)| !g.seen.contains(k) && !g.journal.may_be_left(e))
    }

    /// Let the run's other branches replay: true once nothing of the journal is left unreached,
    /// false when the reached entries stop growing with some still unreached.
    pub(super) async fn replay_settles(&self) -> bool {
        let mut last = self.lock().seen.len();
        let mut changed = tokio::time::Instant::now();
        let mut turns = 0u32;
        loop {
            if self.inner.io.load(std::sync::atomic::Ordering::Acquire) > 0 {
                // A branch waits on the database before its next entry: no verdict yet.
                changed = tokio::time::Instant::now();
            }
            if turns < QUIET_TURNS * 4 {
                tokio::task::yield_now().await;
            } else {
                // Workflow code may await other things between journaled operations (a
                // template read, say): the verdict waits until nothing moved for SETTLE.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            turns += 1;
            if !self.history_ahead() {
                return true;
            }
            let now = self.lock().seen.len();
            if now != last {
                last = now;
                changed = tokio::time::Instant::now();
            } else if changed.elapsed() >= SETTLE && turns >= QUIET_TURNS {
                return false;
            }
        }
    }

    /// A database call on the replay path is under way while this lives.
    pub(super) fn io(&self) -> IoGuard<'_> {
        self.inner
            .io
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        IoGuard(&self.inner.io)
    }

    /// The mismatch met at `name`: the earliest entry of the journal the code did not reach.
    fn mismatch_at(&self, name: &str, kind: &str) -> WfError {
        let expected = {
            let g = self.lock();
            g.journal
                .entries
                .iter()
                .filter(|(k, e)| !g.seen.contains(*k) && !g.journal.may_be_left(e))
                .min_by_key(|(_, e)| e.first_seq)
                .map(|(k, e)| (k.clone(), e.state.label().to_string(), e.first_seq))
        };
        let (ename, ekind, seq) = expected.unwrap_or_default();
        self.set_fatal(WfError::Mismatch(Box::new(Mismatch {
            seq,
            expected: JournalPoint {
                name: ename,
                kind: ekind,
            },
            found: JournalPoint {
                name: name.to_string(),
                kind: kind.to_string(),
            },
            build: self.inner.run.build.clone(),
            replayed_by: Some(self.inner.shared.config.build.clone()),
        })))
    }
}

impl Ctx {
    /// After a dry replay: the names it reached, what it would run, and the mismatch it met.
    pub(crate) fn dry_result(
        &self,
    ) -> (
        std::collections::HashSet<String>,
        Vec<WouldRun>,
        Option<WfError>,
    ) {
        let (seen, fatal) = {
            let g = self.lock();
            (g.seen.clone(), g.fatal.clone())
        };
        let would = self
            .inner
            .dry
            .as_ref()
            .map(|d| d.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default();
        (seen, would, fatal)
    }
}

/// See [`Ctx::io`].
pub(super) struct IoGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for IoGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
