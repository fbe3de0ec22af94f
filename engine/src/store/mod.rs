//! The storage contract and its two implementations.
//!
//! The engine speaks to its database only through [`Store`]. Operations are coarse: each one is
//! a single transaction (often a single statement) so that a checkpoint costs about one commit,
//! and [`Store::append`] takes a batch so that the checkpoints of concurrent runs share commits.
//!
//! Both implementations pass one conformance suite (`engine/tests/conformance.rs`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::error::{Result, RunError};
use crate::model::{
    Cost, EventData, EventRecord, NewEvent, NewRun, RunFilter, RunId, RunRecord, RunStatus,
    SignalRecord,
};

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A run a worker has just claimed, with its journal.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run, with its new lease epoch.
    pub run: RunRecord,
    /// Its whole history, oldest first (includes the claim event).
    pub events: Vec<EventRecord>,
}

/// A batch item for [`Store::append`]: events of one run, fenced by its lease epoch.
#[derive(Debug, Clone)]
pub struct AppendOp {
    /// The run.
    pub run_id: RunId,
    /// The lease epoch the writer holds; the write is refused if the run's epoch differs.
    pub epoch: i64,
    /// Events, with sequence numbers assigned by the lease holder.
    pub events: Vec<NewEvent>,
    /// Cost to add to the run's total.
    pub cost: Cost,
    /// A concurrency slot `(key, step)` to release in the same commit.
    pub release_slot: Option<(String, String)>,
    /// Keep that slot, marked held, instead of releasing it (a step with
    /// [`crate::StepOptions::concurrency_held`] that succeeded).
    pub hold_slot: bool,
    /// The run's outcome, recorded in the same commit as its events: completed or failed, or
    /// sleeping until `ready_at`. Only for runs with no parent to signal and nothing to clean
    /// up (other outcomes go through [`Store::transition`]).
    pub finish: Option<Finish>,
}

/// A run outcome carried by an [`AppendOp`].
#[derive(Debug, Clone)]
pub enum Finish {
    /// The run completed with this output.
    Completed(Value),
    /// The run failed with this error.
    Failed(RunError),
    /// The run sleeps until this time (a timer or a retry backoff).
    Sleeping(DateTime<Utc>),
}

impl Finish {
    /// The run's new status.
    pub fn status(&self) -> RunStatus {
        match self {
            Finish::Completed(_) => RunStatus::Completed,
            Finish::Failed(_) => RunStatus::Failed,
            Finish::Sleeping(_) => RunStatus::Sleeping,
        }
    }
    /// When a sleeping run is due.
    pub fn ready_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Finish::Sleeping(t) => Some(*t),
            _ => None,
        }
    }
    /// A completed run's output.
    pub fn output(&self) -> Option<&Value> {
        match self {
            Finish::Completed(v) => Some(v),
            _ => None,
        }
    }
    /// A failed run's error.
    pub fn error(&self) -> Option<&RunError> {
        match self {
            Finish::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// Who may make a transition.
#[derive(Debug, Clone)]
pub enum Guard {
    /// The lease holder with this epoch (the run must be `running`).
    Epoch(i64),
    /// Anyone, if the run is in one of these states (admin operations).
    Status(Vec<RunStatus>),
}

/// Where a transition takes a run, with exactly what that state needs: a completed run has an
/// output and no error, a waiting one has its waits, and no combination in between can be built.
#[derive(Debug, Clone)]
pub enum Target {
    /// Runnable again from `at` (released, retried, reset, re-driven).
    Pending {
        /// When it may be claimed.
        at: DateTime<Utc>,
    },
    /// Asleep on durable timers only.
    Sleeping {
        /// The earliest timer.
        until: DateTime<Utc>,
    },
    /// Waiting for signals or concurrency slots (or both, from parallel branches).
    Waiting {
        /// Wakes it whatever arrives: the earliest deadline or timer, or a slot recheck.
        until: Option<DateTime<Utc>>,
        /// Signal names it waits for.
        signals: Vec<String>,
        /// Signal ids it has already consumed (so they do not count as "already arrived").
        consumed: Vec<i64>,
        /// Concurrency keys it waits for a slot of.
        slots: Vec<String>,
        /// Its place among the runs waiting for those slots (higher first; see
        /// [`crate::StepOptions::priority`]).
        slot_priority: i32,
    },
    /// Finished with an output.
    Completed {
        /// The workflow's result.
        output: Value,
    },
    /// Finished with an error.
    Failed {
        /// Why.
        error: RunError,
    },
    /// Stopped by a person or by its parent.
    Cancelled {
        /// Why (code `cancelled`).
        error: RunError,
    },
    /// Stopped because its journal no longer fits the code.
    Blocked {
        /// Where and what (code `nondeterminism`).
        error: RunError,
    },
}

impl Target {
    /// The run's status after the transition.
    pub fn status(&self) -> RunStatus {
        match self {
            Target::Pending { .. } => RunStatus::Pending,
            Target::Sleeping { .. } => RunStatus::Sleeping,
            Target::Waiting { .. } => RunStatus::Waiting,
            Target::Completed { .. } => RunStatus::Completed,
            Target::Failed { .. } => RunStatus::Failed,
            Target::Cancelled { .. } => RunStatus::Cancelled,
            Target::Blocked { .. } => RunStatus::Blocked,
        }
    }

    /// When the run is due next (`None`: only a signal or a slot wakes it, or it is finished).
    pub fn ready_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Target::Pending { at } => Some(*at),
            Target::Sleeping { until } => Some(*until),
            Target::Waiting { until, .. } => *until,
            _ => None,
        }
    }

    /// The output, for a completed run.
    pub fn output(&self) -> Option<&Value> {
        match self {
            Target::Completed { output } => Some(output),
            _ => None,
        }
    }

    /// The error, for a failed or cancelled run.
    pub fn error(&self) -> Option<&RunError> {
        match self {
            Target::Failed { error } | Target::Cancelled { error } | Target::Blocked { error } => {
                Some(error)
            }
            _ => None,
        }
    }

    /// Signal names a waiting run waits for.
    pub fn signals(&self) -> &[String] {
        match self {
            Target::Waiting { signals, .. } => signals,
            _ => &[],
        }
    }

    /// Signal ids a waiting run has consumed.
    pub fn consumed(&self) -> &[i64] {
        match self {
            Target::Waiting { consumed, .. } => consumed,
            _ => &[],
        }
    }

    /// Its priority among a slot's waiters.
    pub fn slot_priority(&self) -> i32 {
        match self {
            Target::Waiting { slot_priority, .. } => *slot_priority,
            _ => 0,
        }
    }

    /// Concurrency keys a waiting run waits for.
    pub fn slots(&self) -> &[String] {
        match self {
            Target::Waiting { slots, .. } => slots,
            _ => &[],
        }
    }

    /// What a finished child tells its parent.
    pub(crate) fn child_outcome(&self) -> Value {
        serde_json::json!({
            "status": self.status(),
            "output": self.output(),
            "error": self.error(),
        })
    }
}

/// A run as a live view sees it: enough to tell that it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPulse {
    /// The run.
    pub id: RunId,
    /// Its workflow.
    pub workflow: String,
    /// Its scope (a project's slug for the film workflows).
    pub scope: Option<String>,
    /// Its parent.
    pub parent_id: Option<RunId>,
    /// Its state.
    pub status: RunStatus,
    /// Its last event's sequence number (0 before any).
    pub last_seq: i64,
}

/// A change of a run's state, with the events that record it.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The run.
    pub run_id: RunId,
    /// Precondition.
    pub guard: Guard,
    /// New state, with what it needs.
    pub to: Target,
    /// Events to append (sequence numbers are assigned by the store).
    pub events: Vec<(Option<String>, EventData)>,
    /// Increment the lease epoch (admin transitions fence out a stalled former holder).
    pub bump_epoch: bool,
    /// The run's parent, if it has one: a child that finishes signals its parent in the same
    /// commit.
    pub parent: Option<RunId>,
    /// Remove the run's waits and concurrency slots. A claim already removed what a previous
    /// execution left, so a lease holder needs this only if it took slots itself.
    pub cleanup: bool,
    /// Clock.
    pub now: DateTime<Utc>,
}

impl Transition {
    /// A transition to `to` and nothing else.
    pub fn new(run_id: RunId, guard: Guard, to: Target, now: DateTime<Utc>) -> Self {
        Transition {
            run_id,
            guard,
            to,
            events: vec![],
            bump_epoch: false,
            parent: None,
            cleanup: true,
            now,
        }
    }
}

/// A signal to deliver.
#[derive(Debug, Clone)]
pub struct NewSignal {
    /// Addressed run; `None` = anyone waiting for this name.
    pub run_id: Option<RunId>,
    /// Name.
    pub name: String,
    /// Deduplication key: a second signal with the same target, name and key is dropped.
    pub event_key: Option<String>,
    /// Payload.
    pub payload: Value,
    /// Clock.
    pub now: DateTime<Utc>,
}

/// What happened to a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SignalOutcome {
    /// The stored signal's id (`None` when it was a duplicate).
    pub id: Option<i64>,
    /// True when a signal with the same key had already been delivered.
    pub duplicate: bool,
    /// How many waiting runs this signal woke. A run that an earlier signal already woke and
    /// that has not resumed yet is not counted again: its wake-up was not this signal's doing.
    pub woken: u64,
}

/// Result of [`Store::acquire_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The step may run.
    Acquired,
    /// All slots are taken; the run must wait.
    Full,
    /// The run's lease was lost.
    Fenced,
}

/// Wakes delivered by the database to workers (Postgres LISTEN/NOTIFY).
#[derive(Debug, Clone)]
pub struct Wakeups {
    /// Something became due: a worker should try to claim.
    pub wake: Arc<Notify>,
    /// A running run was asked to stop.
    pub cancel: mpsc::UnboundedSender<RunId>,
}

/// The connection pools behind a store, for data that lives next to the engine's tables (the
/// film domain keeps its tables in the same database).
#[derive(Debug, Clone)]
pub enum SqlPools {
    /// Postgres.
    Postgres(sqlx::PgPool),
    /// SQLite: the single writer connection and the readers.
    Sqlite {
        /// Writes (one connection; begin with `BEGIN IMMEDIATE`).
        writer: sqlx::SqlitePool,
        /// Reads.
        reader: sqlx::SqlitePool,
    },
}

/// The storage contract. See the module docs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn dialect(&self) -> &'static str;

    /// The pools, for other data in the same database.
    fn pools(&self) -> SqlPools;

    /// Apply pending migrations.
    async fn migrate(&self) -> Result<()>;

    /// Insert a run unless one with the same id or idempotency key exists. Returns the run and
    /// whether it was created by this call.
    async fn create_run(&self, run: NewRun) -> Result<(RunRecord, bool)>;

    /// Claim up to `max` due runs (pending or waking, or running with a lapsed lease) for
    /// `worker`, with a lease until `lease_until`. Records a claim event for each, and clears
    /// what a previous execution left behind (signal and slot waits, slots of a dead worker).
    async fn claim(
        &self,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>>;

    /// Append events of several runs in one commit. Returns, per op, whether it was written
    /// (false: the writer's lease epoch is stale and nothing of that op was written).
    async fn append(&self, ops: &[AppendOp]) -> Result<Vec<bool>>;

    /// Change a run's state if the guard holds. Returns false when it does not.
    async fn transition(&self, t: Transition) -> Result<bool>;

    /// Extend the leases of runs `worker` holds. Returns the ones still held, with the reason
    /// of a pending cancellation request if any.
    async fn heartbeat(
        &self,
        worker: &str,
        runs: &[RunId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<(RunId, Option<String>)>>;

    /// Make runs held by `owners` (workers known to be dead) due now.
    async fn expire_leases(&self, owners: &[String], now: DateTime<Utc>) -> Result<u64>;

    /// Worker ids holding leases on running runs.
    async fn lease_owners(&self) -> Result<Vec<String>>;

    /// Store a signal (dropping a duplicate) and wake the runs waiting for it.
    async fn send_signal(&self, signal: NewSignal) -> Result<SignalOutcome>;

    /// The oldest signal for `run` named `name` (addressed to it or to no run) that it has not
    /// consumed.
    async fn find_signal(
        &self,
        run: RunId,
        name: &str,
        consumed: &[i64],
    ) -> Result<Option<SignalRecord>>;

    /// Take a slot of `key` for `(run, step)` if one is free (re-entrant for the same holder)
    /// and no run of a higher `priority` waits for one.
    async fn acquire_slot(
        &self,
        key: &str,
        run: RunId,
        epoch: i64,
        step: &str,
        priority: i32,
        now: DateTime<Utc>,
    ) -> Result<SlotOutcome>;

    /// Give back the slot `(key, run, step)` a step kept (held) past its end, and wake the runs
    /// waiting for one. Idempotent: a slot already given back is nothing to do.
    async fn release_held_slot(
        &self,
        key: &str,
        run: RunId,
        step: &str,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Set (or, with `None`, remove) the number of slots of a concurrency key.
    async fn set_concurrency_limit(&self, key: &str, max: Option<u32>) -> Result<()>;

    /// Slots held per key: `(key, held, max)`.
    async fn concurrency_usage(&self) -> Result<Vec<(String, i64, Option<i64>)>>;

    /// A run's tree cost (the root and all its descendants) and the root's budget.
    async fn tree_cost(&self, root: RunId) -> Result<(i64, Option<i64>)>;

    /// Set a run's budget (micro-dollars); `None` removes it.
    async fn set_budget(&self, run: RunId, budget_micros: Option<i64>) -> Result<bool>;

    /// Ask a running run to stop. Returns false if the run is not running.
    async fn request_cancel(&self, run: RunId, reason: &str) -> Result<bool>;

    /// A run.
    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>>;

    /// A run by idempotency key.
    async fn get_run_by_key(&self, key: &str) -> Result<Option<RunRecord>>;

    /// Runs matching a filter, newest first.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>>;

    /// Give a forked run (created not yet due, never claimed) the journal it keeps, and make it
    /// due now. Its events follow its creation, in order.
    async fn seed_journal(
        &self,
        run: RunId,
        events: &[(Option<String>, EventData)],
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Runs not finished (and blocked ones) by workflow, version of its definition and state.
    async fn count_by_version(&self) -> Result<Vec<(String, u32, RunStatus, i64)>>;

    /// A run and all its descendants' ids.
    async fn descendants(&self, id: RunId) -> Result<Vec<RunId>>;

    /// A run's history, oldest first.
    async fn events(&self, id: RunId) -> Result<Vec<EventRecord>>;

    /// A page of a run's history: at most `limit` events after sequence number `after`,
    /// oldest first (a history of thousands is read a page at a time).
    async fn events_page(&self, id: RunId, after: i64, limit: u32) -> Result<Vec<EventRecord>>;

    /// Every unfinished run and every run created after `after`, with its last sequence
    /// number: what a live view compares from one look to the next (at most 5,000, oldest
    /// first).
    async fn pulse(&self, after: Option<RunId>) -> Result<Vec<RunPulse>>;

    /// Counts of runs by state (for metrics).
    async fn count_by_status(&self) -> Result<Vec<(String, RunStatus, i64)>>;

    /// Total cost of every run (micro-dollars, units).
    async fn total_cost(&self) -> Result<(i64, f64)>;

    /// The earliest time a non-running run becomes due, if any.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>>;

    /// Start delivering database wake-ups (no-op where the database has none).
    async fn listen(&self, _wakeups: Wakeups) -> Result<()> {
        Ok(())
    }

    /// The rate of bare single-row INSERT commits this database sustains from `concurrency`
    /// connections over `duration`: the physical limit a checkpoint is measured against.
    async fn bare_commit_rate(&self, concurrency: usize, duration: Duration) -> Result<BareRate>;
}

/// Result of [`Store::bare_commit_rate`].
#[derive(Debug, Clone, Copy)]
pub struct BareRate {
    /// Commits done.
    pub commits: u64,
    /// Commits per second.
    pub per_second: f64,
}

/// Open a store from a URL: `postgres://...` or `sqlite://path` (created if missing).
pub async fn connect(url: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, pool_size).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else {
        Err(crate::error::EngineError::Invalid(format!(
            "unsupported database URL `{}`: use postgres://user@host/db or sqlite://path/to/file.db",
            redact_url(url)
        )))
    }
}

/// A URL with any password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    // scheme://user:password@host/... -> scheme://user:***@host/...
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _pw)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

pub(crate) fn event_json(data: &EventData) -> Result<String> {
    Ok(serde_json::to_string(data)?)
}

pub(crate) fn parse_event(
    run_id: RunId,
    seq: i64,
    at: DateTime<Utc>,
    step: Option<String>,
    data: &str,
) -> Result<EventRecord> {
    Ok(EventRecord {
        run_id,
        seq,
        at,
        step,
        data: serde_json::from_str(data)?,
    })
}

/// The history of a run at its first claim, built instead of read: its creation and the claim.
pub(crate) fn first_claim_events(run: &RunRecord, worker: &str) -> Vec<EventRecord> {
    vec![
        EventRecord {
            run_id: run.id,
            seq: 1,
            at: run.created_at,
            step: None,
            data: EventData::RunCreated {
                workflow: run.workflow.clone(),
            },
        },
        EventRecord {
            run_id: run.id,
            seq: 2,
            at: run.updated_at,
            step: None,
            data: EventData::RunClaimed {
                worker: worker.to_string(),
                epoch: run.lease_epoch,
                recovered: false,
            },
        },
    ]
}

/// The name of the signal a child sends its parent when it finishes.
pub fn child_signal_name(child: RunId) -> String {
    format!("child:{child}")
}
