//! Histories: a run's record and journal as a file, replayed without side effects against the
//! code of this build (is it safe to deploy?), and forks (a new run on the current code that
//! keeps what an old one did before a step).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::context::replay::WouldRun;
use crate::engine::Engine;
use crate::error::{EngineError, JournalPoint, Mismatch, Result, WfError};
use crate::journal::{EntryState, Journal};
use crate::model::{EventData, EventRecord, NewRun, RunId, RunRecord};
use crate::runtime::StopFlag;

/// The format tag of a history file.
pub const HISTORY_FORMAT: &str = "slate-history/1";

/// A run and its journal, as `slate history export` writes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    /// [`HISTORY_FORMAT`].
    pub format: String,
    /// The run as stored.
    pub run: RunRecord,
    /// Its events, oldest first.
    pub events: Vec<EventRecord>,
}

/// What replaying a history against this build's code found.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The run.
    pub run: RunId,
    /// Its workflow.
    pub workflow: String,
    /// The version it was started on.
    pub version: u32,
    /// The build that started it.
    pub build: Option<String>,
    /// Journaled operations the code reached: reused as they are.
    pub reused: Vec<String>,
    /// Operations the code would run now (new, or cut short and run again).
    pub would_run: Vec<WouldRun>,
    /// Where the journal and the code part ways, if they do: a live run would block there.
    pub mismatch: Option<Mismatch>,
    /// How the replay ended: `completes`, `waits`, `mismatch`, `fails: ...`, `unknown workflow`.
    pub outcome: String,
}

impl ReplayReport {
    /// True when a live run with this journal would block on this build.
    pub fn blocks(&self) -> bool {
        self.mismatch.is_some() || self.outcome == "unknown workflow"
    }
}

impl Engine {
    /// A run's history, for `slate history export`.
    pub async fn history(&self, id: RunId) -> Result<History> {
        let run = self.get(id).await?;
        let events = self.shared.store.events(id).await?;
        Ok(History {
            format: HISTORY_FORMAT.into(),
            run,
            events,
        })
    }

    /// Replay a history against the workflows registered here, without side effects: every
    /// journaled operation answers from the journal, and the first one it does not hold stops
    /// its branch (nothing is executed, written or paid for). The report says what would be
    /// reused, what would run, and where the journal no longer fits the code.
    pub async fn replay(&self, history: &History) -> ReplayReport {
        let run = &history.run;
        let mut report = ReplayReport {
            run: run.id,
            workflow: run.workflow.clone(),
            version: run.workflow_version,
            build: run.build.clone(),
            reused: vec![],
            would_run: vec![],
            mismatch: None,
            outcome: String::new(),
        };
        let Some(wf) = self.registry().get(&run.workflow) else {
            report.outcome = "unknown workflow".into();
            return report;
        };
        let journal = Journal::from_events(&history.events);
        let may_leave: std::collections::HashSet<String> = journal
            .entries
            .iter()
            .filter(|(_, e)| journal.may_be_left(e))
            .map(|(k, _)| k.clone())
            .collect();
        let names: Vec<(String, i64, String)> = journal
            .entries
            .iter()
            .map(|(k, e)| (k.clone(), e.first_seq, e.state.label().to_string()))
            .collect();
        let ctx = Ctx::new(
            self.shared.clone(),
            run.clone(),
            journal,
            None,
            CancellationToken::new(),
            Arc::new(StopFlag::default()),
        )
        .dry();
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            wf.call(ctx.clone(), run.input.clone()),
        )
        .await;
        let (seen, would_run, fatal) = ctx.dry_result();
        report.would_run = would_run;
        let mut reused: Vec<(i64, String)> = names
            .iter()
            .filter(|(n, _, _)| seen.contains(n))
            .map(|(n, s, _)| (*s, n.clone()))
            .collect();
        reused.sort();
        report.reused = reused.into_iter().map(|(_, n)| n).collect();
        let err = match (&fatal, &result) {
            (Some(e @ WfError::Mismatch(_)), _) => Some(e.clone()),
            (_, Ok(Err(e))) => Some(e.clone()),
            _ => None,
        };
        report.outcome = match (&err, &result) {
            (_, Err(_)) => "timed out (the code did not stop within 60 s)".into(),
            (Some(WfError::Mismatch(m)), _) => {
                report.mismatch = Some((**m).clone());
                "mismatch".into()
            }
            (Some(WfError::Suspended), _) => "waits".into(),
            (Some(e), _) => format!("fails: {e}"),
            (None, _) => "completes".into(),
        };
        if report.mismatch.is_none() {
            // Entries the code never reached, though it stopped nowhere before them: removed.
            let mut unreached: Vec<&(String, i64, String)> = names
                .iter()
                .filter(|(n, _, _)| !seen.contains(n) && !may_leave.contains(n))
                .collect();
            unreached.sort_by_key(|(_, s, _)| *s);
            if let Some((name, seq, kind)) = unreached.first()
                && report.would_run.is_empty()
            {
                report.mismatch = Some(Mismatch {
                    seq: *seq,
                    expected: JournalPoint {
                        name: name.clone(),
                        kind: kind.clone(),
                    },
                    found: JournalPoint {
                        name: "(nothing)".into(),
                        kind: format!("the workflow {} without reaching it", report.outcome),
                    },
                    build: run.build.clone(),
                    replayed_by: Some(self.shared.config.build.clone()),
                });
                report.outcome = "mismatch".into();
            }
        }
        report
    }

    /// Fork a stopped top-level run from `from_step`: a new run of the same workflow and input
    /// on the code registered now, whose journal keeps what the old run journaled before that
    /// step (so it is not run or paid for again); that step and everything after run anew. The
    /// new run's first event names the old run. A child started before the point whose outcome
    /// was not journaled there is started afresh (its outcome would go to the old run).
    pub async fn fork(&self, id: RunId, from_step: &str, reason: &str) -> Result<RunRecord> {
        let old = self.get(id).await?;
        if old.parent_id.is_some() {
            return Err(EngineError::Conflict(format!(
                "run {id} is a child run; fork its top-level run {} (or retry this one)",
                old.root_id
            )));
        }
        if !old.status.is_terminal() {
            return Err(EngineError::Conflict(format!(
                "run {id} is {}; cancel it first, or fork it once it has stopped",
                old.status
            )));
        }
        let Some(w) = self.registry().get(&old.workflow) else {
            return Err(EngineError::UnknownWorkflow(old.workflow.clone()));
        };
        let events = self.shared.store.events(id).await?;
        let journal = Journal::from_events(&events);
        let Some(point) = journal.entries.get(from_step) else {
            return Err(EngineError::NotFound(format!(
                "run {id} has no step `{from_step}` in its journal (`slate runs show {id}` lists them)"
            )));
        };
        let below = point.first_seq;
        let unjoined: Vec<&String> = journal
            .entries
            .iter()
            .filter(|(name, e)| {
                matches!(e.state, EntryState::Child { .. })
                    && !journal
                        .entries
                        .get(&format!("{name}/join"))
                        .is_some_and(|j| {
                            j.first_seq < below && matches!(j.state, EntryState::Received { .. })
                        })
            })
            .map(|(name, _)| name)
            .collect();
        let mut kept: Vec<(Option<String>, EventData)> = vec![(
            None,
            EventData::RunForked {
                from: id,
                step: from_step.to_string(),
                reason: reason.to_string(),
            },
        )];
        kept.extend(
            events
                .into_iter()
                .filter(|e| e.seq < below)
                .filter(|e| match &e.step {
                    Some(s) => !unjoined.contains(&s),
                    None => matches!(e.data, EventData::RunResumed { .. }),
                })
                .map(|e| (e.step, e.data)),
        );
        let now = Utc::now();
        let new_id = RunId::new();
        // Created not yet due, so no worker claims it before its journal is in place.
        let (run, created) = self
            .shared
            .store
            .create_run(NewRun {
                id: new_id,
                workflow: old.workflow.clone(),
                workflow_version: w.version(),
                build: self.shared.config.build.clone(),
                exclusive_key: w.exclusive_key(&old.input),
                idempotency_key: None,
                scope: old.scope.clone(),
                input: old.input.clone(),
                parent_id: None,
                parent_step: None,
                root_id: new_id,
                budget_micros: old.budget_micros,
                now,
                ready_at: now + chrono::Duration::days(36500),
            })
            .await?;
        if !created || run.id != new_id {
            return Err(EngineError::Conflict(format!(
                "run {} of `{}` holds the same key and is under way; cancel it or wait for it",
                run.id, old.workflow
            )));
        }
        self.shared.store.seed_journal(new_id, &kept, now).await?;
        self.shared.wake.notify_waiters();
        self.get(new_id).await
    }
}

impl Ctx {
    /// This context, as a dry replay's.
    fn dry(self) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| unreachable!("a new context"));
        let inner = crate::context::RunInner {
            dry: Some(Mutex::new(vec![])),
            ..inner
        };
        Ctx {
            inner: Arc::new(inner),
        }
    }
}
