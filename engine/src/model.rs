//! The engine's persistent vocabulary: ids, run states, events, and the records stores return.
//!
//! Everything here is part of the durable contract: it is written to the journal by one binary
//! and read back by a later one. Enums that are persisted are internally tagged and tolerate
//! unknown variants (`#[serde(other)]`), so an older binary can read a newer journal.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{RunError, StepError};

pub use crate::id::RunId;

/// The state of a run.
///
/// ```text
/// pending -> running -> (waiting | sleeping)* -> completed | failed | cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created or re-driven; a worker may claim it now.
    Pending,
    /// A worker holds its lease and is executing it.
    Running,
    /// Suspended until a signal, a child run or a concurrency slot (optionally with a deadline).
    Waiting,
    /// Suspended until a timer: a durable sleep or a retry backoff.
    Sleeping,
    /// Finished with an output.
    Completed,
    /// Finished with an error.
    Failed,
    /// Stopped by a person or a parent.
    Cancelled,
    /// Stopped because its journal no longer fits the code (a step renamed, removed or moved
    /// without a patch): nothing runs until a person deploys code that fits and retries it,
    /// forks it from a step, or cancels it. Its error says where and what.
    Blocked,
}

impl RunStatus {
    /// All states, in lifecycle order.
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Sleeping,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Blocked,
    ];

    /// The text stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Sleeping => "sleeping",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Blocked => "blocked",
        }
    }

    /// Completed, failed, cancelled or blocked: nothing more will happen unless a person
    /// intervenes.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Blocked
        )
    }

    /// An outcome a parent is told of. A blocked run is not one: its parent keeps waiting for
    /// the outcome it will have once a person retries it on code that fits (or cancels it).
    pub fn tells_parent(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown run status `{s}` (expected one of: pending, running, waiting, sleeping, completed, failed, cancelled)"
                )
            })
    }
}

/// Money and units a step reported spending.
///
/// Money is kept in micro-dollars (integers) so that sums over thousands of steps are exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cost {
    /// Provider units (billable units, tokens, seconds of video...).
    #[serde(default)]
    pub units: f64,
    /// Money in millionths of a US dollar.
    #[serde(default)]
    pub usd_micros: i64,
    /// The part of `usd_micros` that is an estimate: the provider gave no figure, so what the
    /// call was expected to cost was recorded (never nothing). Zero (and left out) otherwise.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub estimated_usd_micros: i64,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl Cost {
    /// A cost in units and dollars.
    pub fn new(units: f64, usd: f64) -> Self {
        Cost {
            units,
            usd_micros: usd_to_micros(usd),
            estimated_usd_micros: 0,
        }
    }
    /// A cost the provider did not state: `usd` is the estimate, and is marked so.
    pub fn estimated(units: f64, usd: f64) -> Self {
        let micros = usd_to_micros(usd);
        Cost {
            units,
            usd_micros: micros,
            estimated_usd_micros: micros,
        }
    }
    /// Whether any of it is an estimate.
    pub fn is_estimated(&self) -> bool {
        self.estimated_usd_micros != 0
    }
    /// The money part in dollars.
    pub fn usd(&self) -> f64 {
        self.usd_micros as f64 / 1_000_000.0
    }
    /// True when nothing was spent.
    pub fn is_zero(&self) -> bool {
        self.units == 0.0 && self.usd_micros == 0
    }
    pub(crate) fn add(&mut self, other: Cost) {
        self.units += other.units;
        self.usd_micros += other.usd_micros;
        self.estimated_usd_micros += other.estimated_usd_micros;
    }
}

/// `now + d`, saturating at the last day of year 9999: a timer or deadline so far away means
/// "never" to a person, and every store can hold that date (chrono's own maximum overflows
/// PostgreSQL's timestamps, and `now + d` would panic past it).
pub(crate) fn later(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    let end = DateTime::<Utc>::from_naive_utc_and_offset(
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date"),
        Utc,
    );
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|t| now.checked_add_signed(t))
        .map_or(end, |t| t.min(end))
}

/// Dollars to micro-dollars, rounded to the nearest micro-dollar.
pub fn usd_to_micros(usd: f64) -> i64 {
    (usd * 1_000_000.0).round() as i64
}

/// One entry of a run's append-only history. Every state transition of a run or of one of its
/// steps is one event; the journal that replay reads is the fold of these events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventData {
    /// The run was created.
    RunCreated {
        /// Workflow name.
        workflow: String,
    },
    /// A worker took the run's lease.
    RunClaimed {
        /// Worker id.
        worker: String,
        /// Fencing epoch of this lease.
        epoch: i64,
        /// True when the previous holder's lease lapsed (the worker died or stalled).
        recovered: bool,
    },
    /// A step attempt began (its intent is durable before the call is made).
    StepStarted {
        /// 1-based attempt number.
        attempt: u32,
        /// Key an activity can hand to a provider to deduplicate retries of this step.
        idempotency_key: String,
    },
    /// A running attempt kept something it must not lose if its worker dies (a provider's
    /// request id): the next attempt, if this one is cut short, gets it back (decision 0015).
    StepCheckpoint {
        /// Attempt number.
        attempt: u32,
        /// What the attempt kept.
        data: Value,
    },
    /// A step attempt returned a value; the value is the journaled result.
    StepSucceeded {
        /// Attempt number.
        attempt: u32,
        /// The result as JSON.
        output: Value,
        /// What the attempt cost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Cost>,
        /// Wall time of the attempt.
        duration_ms: u64,
    },
    /// A step attempt failed; `retry_at` is set when another attempt is scheduled.
    StepFailed {
        /// Attempt number.
        attempt: u32,
        /// The error, with its retry intent.
        error: StepError,
        /// When the next attempt is due; `None` means the failure is final.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
        /// What the attempt cost (failed calls are often billed too).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost: Option<Cost>,
        /// Wall time of the attempt.
        duration_ms: u64,
    },
    /// A durable sleep began.
    TimerStarted {
        /// When it ends.
        until: DateTime<Utc>,
    },
    /// The workflow began waiting for a named signal.
    WaitStarted {
        /// Signal name.
        signal: String,
        /// When the wait gives up; `None` waits for ever.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
    },
    /// A signal was consumed by a wait; its payload is the wait's journaled result.
    SignalReceived {
        /// Signal name.
        signal: String,
        /// Id of the consumed signal row.
        signal_id: i64,
        /// The signal's payload.
        payload: Value,
    },
    /// A wait reached its deadline without a signal.
    WaitTimedOut {
        /// Signal name.
        signal: String,
    },
    /// A child run was started.
    ChildStarted {
        /// The child's id.
        child_id: RunId,
        /// The child's workflow.
        workflow: String,
    },
    /// A bounded loop began an iteration, or a bounded attempt began.
    Marker {
        /// The limit's name.
        limit: String,
        /// 1-based count.
        n: u32,
    },
    /// A patch point was reached (`Ctx::patched`): whether this run takes the changed code
    /// there. Decided once, the first time the run reaches it, and replayed after.
    Patch {
        /// The patch's name.
        name: String,
        /// True: the new code; false: the run had passed this point on code without it.
        applied: bool,
    },
    /// A durable limit was exceeded.
    LimitExceeded {
        /// The limit's name.
        limit: String,
        /// Its maximum.
        max: u32,
    },
    /// A step would have started after the budget was spent, or its estimate would have taken
    /// the spend past the budget.
    BudgetExceeded {
        /// The budget, micro-dollars.
        budget_micros: i64,
        /// Spent so far, micro-dollars.
        spent_micros: i64,
        /// What the step that did not start was expected to cost, micro-dollars.
        #[serde(default)]
        next_micros: i64,
    },
    /// The run suspended: it holds no worker until `ready_at` or a signal.
    RunSuspended {
        /// `waiting` or `sleeping`.
        status: RunStatus,
        /// When it is due again, if a timer bounds the suspension.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ready_at: Option<DateTime<Utc>>,
        /// Human-readable reasons (signals, slots, timers).
        reasons: Vec<String>,
    },
    /// The run finished with an output.
    RunCompleted {
        /// The output.
        output: Value,
    },
    /// The run finished with an error.
    RunFailed {
        /// The error.
        error: RunError,
    },
    /// The run stopped because its journal no longer fits the code (see [`RunStatus::Blocked`]).
    RunBlocked {
        /// Where and what: `details` holds the sequence number, the entry the journal has, the
        /// one the code asked for, and the build that started the run.
        error: RunError,
    },
    /// The run was forked from another: it keeps what that run journaled before `step`.
    RunForked {
        /// The run it was forked from.
        from: RunId,
        /// The step from which it runs anew.
        step: String,
        /// Why.
        reason: String,
    },
    /// A person or a parent asked a running run to stop.
    CancelRequested {
        /// Why.
        reason: String,
    },
    /// The run was cancelled.
    RunCancelled {
        /// Why.
        reason: String,
    },
    /// A person asked for a failed step to run again (with a fresh attempt budget).
    StepRetryRequested {
        /// Free-form note.
        reason: String,
    },
    /// A person reset the run to a step: that step and everything journaled after it runs again.
    RunReset {
        /// Free-form note.
        reason: String,
    },
    /// A person re-drove a failed run.
    RunResumed {
        /// Free-form note.
        reason: String,
        /// The child run whose failure failed this run, when it did: the join that received
        /// that failure waits for the child's next outcome instead (decision 0025). Absent in
        /// journals written before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        child: Option<RunId>,
    },
    /// An event written by a newer binary that this one does not know.
    #[serde(other)]
    Unknown,
}

impl EventData {
    /// The stored `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            EventData::RunCreated { .. } => "run_created",
            EventData::RunClaimed { .. } => "run_claimed",
            EventData::StepStarted { .. } => "step_started",
            EventData::StepCheckpoint { .. } => "step_checkpoint",
            EventData::StepSucceeded { .. } => "step_succeeded",
            EventData::StepFailed { .. } => "step_failed",
            EventData::TimerStarted { .. } => "timer_started",
            EventData::WaitStarted { .. } => "wait_started",
            EventData::SignalReceived { .. } => "signal_received",
            EventData::WaitTimedOut { .. } => "wait_timed_out",
            EventData::ChildStarted { .. } => "child_started",
            EventData::Marker { .. } => "marker",
            EventData::Patch { .. } => "patch",
            EventData::LimitExceeded { .. } => "limit_exceeded",
            EventData::BudgetExceeded { .. } => "budget_exceeded",
            EventData::RunSuspended { .. } => "run_suspended",
            EventData::RunCompleted { .. } => "run_completed",
            EventData::RunFailed { .. } => "run_failed",
            EventData::RunBlocked { .. } => "run_blocked",
            EventData::RunForked { .. } => "run_forked",
            EventData::CancelRequested { .. } => "cancel_requested",
            EventData::RunCancelled { .. } => "run_cancelled",
            EventData::StepRetryRequested { .. } => "step_retry_requested",
            EventData::RunReset { .. } => "run_reset",
            EventData::RunResumed { .. } => "run_resumed",
            EventData::Unknown => "unknown",
        }
    }
}

/// An event about to be written. `step` names the step (or wait, timer, marker) it is about.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Position in the run's history, assigned by the lease holder.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The step it concerns, if any.
    pub step: Option<String>,
    /// What happened.
    pub data: EventData,
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// The run.
    pub run_id: RunId,
    /// Position in the run's history.
    pub seq: i64,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The step it concerns, if any.
    pub step: Option<String>,
    /// What happened.
    pub data: EventData,
}

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// Id.
    pub id: RunId,
    /// Registered workflow name.
    pub workflow: String,
    /// The version of the workflow's definition it was started on ([`crate::Workflow::VERSION`]).
    pub workflow_version: u32,
    /// The build that started it (crate version and commit); none for runs started before
    /// builds were recorded.
    pub build: Option<String>,
    /// Idempotency key given at start, if any.
    pub idempotency_key: Option<String>,
    /// Free-form grouping (the film pipeline uses the project slug).
    pub scope: Option<String>,
    /// Input as JSON.
    pub input: Value,
    /// Current state.
    pub status: RunStatus,
    /// Output when completed.
    pub output: Option<Value>,
    /// Error when failed or cancelled.
    pub error: Option<RunError>,
    /// Parent run, for child runs.
    pub parent_id: Option<RunId>,
    /// The parent's step that started this run.
    pub parent_step: Option<String>,
    /// The top-most ancestor (itself for a top-level run); budgets apply per root.
    pub root_id: RunId,
    /// Budget in micro-dollars (set on the root).
    pub budget_micros: Option<i64>,
    /// Money this run's own steps reported, micro-dollars.
    pub cost_micros: i64,
    /// Units this run's own steps reported.
    pub cost_units: f64,
    /// When it is due (see the `runs` table).
    pub ready_at: Option<DateTime<Utc>>,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// Fencing epoch: incremented at every claim.
    pub lease_epoch: i64,
    /// Why a cancellation was asked for while it ran, if one was.
    pub cancel_reason: Option<String>,
    /// How many times a worker has claimed it.
    pub claims: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last state change.
    pub updated_at: DateTime<Utc>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
}

/// What `Store::create_run` inserts.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Id.
    pub id: RunId,
    /// Workflow name.
    pub workflow: String,
    /// Its definition's version.
    pub workflow_version: u32,
    /// The build starting it.
    pub build: String,
    /// Idempotency key.
    pub idempotency_key: Option<String>,
    /// At most one active run of this workflow has this key ([`crate::Workflow::exclusive_key`]).
    pub exclusive_key: Option<String>,
    /// Grouping.
    pub scope: Option<String>,
    /// Input.
    pub input: Value,
    /// Parent.
    pub parent_id: Option<RunId>,
    /// Parent's step.
    pub parent_step: Option<String>,
    /// Root.
    pub root_id: RunId,
    /// Budget, micro-dollars.
    pub budget_micros: Option<i64>,
    /// Creation time.
    pub now: DateTime<Utc>,
    /// When it may first be claimed (usually `now`).
    pub ready_at: DateTime<Utc>,
}

/// A signal as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignalRecord {
    /// Row id; a wait journals it when it consumes the signal.
    pub id: i64,
    /// Addressed run, if any.
    pub run_id: Option<RunId>,
    /// Name.
    pub name: String,
    /// Deduplication key.
    pub event_key: Option<String>,
    /// Payload.
    pub payload: Value,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
}

/// Filter for listing runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunFilter {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only these states.
    pub status: Option<RunStatus>,
    /// Only runs started on this version of their workflow's definition.
    pub workflow_version: Option<u32>,
    /// Only runs that reached the patch point of this name (`Ctx::patched`), either way.
    #[serde(default)]
    pub patch: Option<String>,
    /// Only this scope.
    pub scope: Option<String>,
    /// Only children of this run.
    pub parent_id: Option<RunId>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u32>,
    /// Keyset paging: only runs older than this one (ids are time-ordered).
    pub before: Option<RunId>,
}
