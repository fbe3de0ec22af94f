//! # slate-engine: durable execution on Postgres and SQLite
//!
//! A workflow is ordinary async Rust that receives a [`Ctx`]. Each side effect runs inside a
//! named step whose result is committed to the run's journal before the workflow continues.
//! When the run executes again (after a crash, a timer, a signal, or on another worker), the
//! workflow function runs from the top: journaled steps return their recorded results without
//! running, and execution continues at the first step that has not finished.
//!
//! What the engine owns, so that no workflow can get it wrong:
//! - **Checkpoint before proceed**: [`Ctx::step`] returns only after its result is committed.
//!   Checkpoints of concurrently executing runs share commits (group commit).
//! - **Retries** as data on the step ([`RetryPolicy`]): exponential backoff with jitter, error
//!   kinds never retried, `Retry-After` honoured; the wait is a durable timer.
//! - **Durable limits**: [`Ctx::bounded`] loops and [`Ctx::attempts`] count from the journal,
//!   so a crash cannot reset them; exceeding one fails the run with `LimitExceeded`.
//! - **Timers and signals**: [`Ctx::sleep`] and [`Ctx::wait_signal`] suspend the run in the
//!   database; early and duplicate signals are handled.
//! - **Fan-out**: parallel steps ([`join_all`]) and child runs ([`Ctx::start_child`]).
//! - **Leases**: many workers share one Postgres; a dead worker's runs are taken over when its
//!   lease lapses (at once when it was on the same host). Heartbeats keep a long step's lease.
//! - **Interrupted is not failed**: an attempt cut short by a dying worker does not use up the
//!   step's retry policy; a crash-loop guard stops a step (or a run) that kills its worker
//!   again and again (`crash_loop`; decision 0014).
//! - **Admin**: cancel, retry a failed step, reset to a step, re-drive; each is an event.
//! - **Concurrency keys**, **result size limits**, a **cost ledger** and **budgets**.
//!
//! Storage is the [`Store`] trait with [`PgStore`] and [`SqliteStore`]; one conformance suite
//! runs against both.

mod committer;
mod context;
mod engine;
mod error;
mod history;
mod id;
mod journal;
mod metrics;
mod model;
mod runtime;
pub mod store;
mod trouble;
mod worker;
mod workflow;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "testing")]
pub mod testing;

pub use context::replay::WouldRun;
pub use context::{
    Attempt, Bounded, ChildHandle, Ctx, RetryPolicy, StepCtx, StepOptions, join_all, join2, join3,
};
pub use engine::{
    Alive, Blocked, CancelOutcome, Engine, MAX_CONCURRENCY_LIMIT, RunDetail, StartOptions, Started,
};
pub use error::{EngineError, JournalPoint, Mismatch, Result, RunError, StepError, WfError};
pub use history::{HISTORY_FORMAT, History, ReplayReport};
pub use journal::{StepView, step_views};
pub use metrics::{Metrics, Quantiles};
pub use model::{
    Cost, EventData, EventRecord, NewEvent, NewRun, RunFilter, RunId, RunRecord, RunStatus,
    SignalRecord, usd_to_micros,
};
pub use runtime::EngineConfig;
pub use store::{PgStore, SignalOutcome, SqliteStore, Store};
pub use worker::Worker;
pub use workflow::{OnMismatch, Workflow};
