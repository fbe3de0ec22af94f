//! Errors by layer.
//!
//! - [`StepError`]: what a step's code returns. It carries its retry intent and serializes as
//!   `{kind, message, retryable, details}` so the journal keeps it across restarts.
//! - [`WfError`]: what the workflow context returns to workflow code. `?` propagates it; the
//!   engine turns the workflow's final `Err` into the run's outcome.
//! - [`RunError`]: the recorded reason a run failed, as stored and shown over the API.
//! - [`EngineError`]: the engine's own failures (database, bad admin request, unknown ids).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::RunId;

/// The result type of the engine's own operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// An error returned by a step's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema)]
#[error("{kind}: {message}")]
pub struct StepError {
    /// A short machine-readable kind (`timeout`, `rate_limited`, `content_policy_violation`...).
    pub kind: String,
    /// What happened, for a person.
    pub message: String,
    /// Whether another attempt may succeed. Final errors are never retried, whatever the policy.
    pub retryable: bool,
    /// The provider asked us to wait at least this long before retrying (`Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Anything else worth keeping (status codes, provider error bodies).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl StepError {
    /// A retryable error.
    pub fn retryable(kind: impl Into<String>, message: impl Into<String>) -> Self {
        StepError {
            kind: kind.into(),
            message: message.into(),
            retryable: true,
            retry_after_ms: None,
            details: Value::Null,
        }
    }
    /// A final error: no further attempt is made.
    pub fn fatal(kind: impl Into<String>, message: impl Into<String>) -> Self {
        StepError {
            kind: kind.into(),
            message: message.into(),
            retryable: false,
            retry_after_ms: None,
            details: Value::Null,
        }
    }
    /// Attach details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
    /// Ask the engine to wait at least `d` before the next attempt.
    pub fn with_retry_after(mut self, d: Duration) -> Self {
        self.retry_after_ms = Some(d.as_millis() as u64);
        self
    }
}

impl From<serde_json::Error> for StepError {
    fn from(e: serde_json::Error) -> Self {
        StepError::fatal("serialization", e.to_string())
    }
}

/// The recorded reason a run did not complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema)]
#[error("{kind}: {message}")]
pub struct RunError {
    /// `step_failed`, `limit_exceeded`, `budget_exceeded`, `cancelled`, `child_failed`,
    /// `nondeterminism`, `unknown_workflow`, `bad_input`, or a workflow's own kind.
    pub kind: String,
    /// What happened, for a person.
    pub message: String,
    /// The step it happened in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Structured details (the step's error, the limit, the budget...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl RunError {
    /// A run error of a kind with a message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RunError {
            kind: kind.into(),
            message: message.into(),
            step: None,
            details: Value::Null,
        }
    }
}

/// What workflow code sees when a context operation does not produce a value.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WfError {
    /// The run must wait (timer, signal, child, retry backoff, concurrency slot). Propagate it
    /// with `?`; the engine persists the wait and frees the worker. Never a failure.
    #[error("the run is suspended until it is woken")]
    Suspended,
    /// The run was cancelled.
    #[error("the run was cancelled")]
    Cancelled,
    /// A step failed for good (a final error, or its retry policy is exhausted).
    #[error("step `{step}` failed: {error}")]
    Step {
        /// The step.
        step: String,
        /// The attempt that failed last (identifies this failure: a retried step that fails
        /// again fails with a higher attempt).
        attempt: u32,
        /// Its last error.
        error: Box<StepError>,
    },
    /// A durable limit was exceeded.
    #[error("limit `{limit}` exceeded: at most {max} allowed")]
    LimitExceeded {
        /// The limit's name.
        limit: String,
        /// Its maximum.
        max: u32,
        /// The last rejection that led to it, if the limit bounds attempts.
        last: Option<String>,
    },
    /// A step would have started after the run's budget was spent, or its estimate would have
    /// taken the spend past the budget.
    #[error(
        "budget exceeded: ${:.4} spent of a ${:.4} budget{}; raise the budget or stop the run",
        *spent_micros as f64 / 1e6,
        *budget_micros as f64 / 1e6,
        match step {
            Some(s) if *next_micros > 0 => format!(", and step `{s}` would cost about ${:.4} more", *next_micros as f64 / 1e6),
            _ => String::new(),
        }
    )]
    BudgetExceeded {
        /// Budget, micro-dollars.
        budget_micros: i64,
        /// Spent, micro-dollars.
        spent_micros: i64,
        /// The step that did not start.
        step: Option<String>,
        /// Its estimated cost, micro-dollars.
        next_micros: i64,
    },
    /// A child run failed or was cancelled.
    #[error("child run {child} (step `{step}`) failed: {error}")]
    ChildFailed {
        /// The step that started it.
        step: String,
        /// The child.
        child: RunId,
        /// Its error.
        error: Box<RunError>,
    },
    /// The workflow's own failure.
    #[error("{kind}: {message}")]
    Workflow {
        /// Kind.
        kind: String,
        /// Message.
        message: String,
        /// Details.
        details: Value,
    },
    /// Workflow code did something replay cannot honour (a step name used twice, a journaled
    /// value that no longer deserializes into the expected type).
    #[error("non-deterministic workflow: {0}")]
    Nondeterminism(String),
    /// The journal holds an entry the code no longer reaches at this point (a step renamed,
    /// removed or moved without a patch): the run stops as blocked, or fails, as its
    /// workflow's [`crate::Workflow::ON_MISMATCH`] says.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// Another worker holds this run now; this execution must stop without writing.
    #[error("lease lost: another worker owns this run")]
    LeaseLost,
    /// The engine could not reach its store; the run is released and retried later.
    #[error("engine error: {0}")]
    Engine(String),
}

impl WfError {
    /// The workflow's own failure with a kind and a message.
    pub fn failed(kind: impl Into<String>, message: impl Into<String>) -> Self {
        WfError::Workflow {
            kind: kind.into(),
            message: message.into(),
            details: Value::Null,
        }
    }

    /// True for the suspension marker.
    pub fn is_suspended(&self) -> bool {
        matches!(self, WfError::Suspended)
    }

    /// The run error this becomes when a run ends with it.
    pub fn to_run_error(&self) -> RunError {
        match self {
            WfError::Step { step, error, .. } => RunError {
                kind: "step_failed".into(),
                message: format!("step `{step}` failed: {error}"),
                step: Some(step.clone()),
                details: serde_json::to_value(&**error).unwrap_or(Value::Null),
            },
            WfError::LimitExceeded { limit, max, last } => RunError {
                kind: "limit_exceeded".into(),
                message: match last {
                    Some(l) => {
                        format!("limit `{limit}` exceeded: at most {max} allowed; last: {l}")
                    }
                    None => format!("limit `{limit}` exceeded: at most {max} allowed"),
                },
                step: Some(limit.clone()),
                details: serde_json::json!({"limit": limit, "max": max, "last": last}),
            },
            WfError::BudgetExceeded {
                budget_micros,
                spent_micros,
                step,
                next_micros,
            } => RunError {
                kind: "budget_exceeded".into(),
                message: self.to_string(),
                step: step.clone(),
                details: serde_json::json!({
                    "budget_usd": *budget_micros as f64 / 1e6,
                    "spent_usd": *spent_micros as f64 / 1e6,
                    "next_step_estimate_usd": *next_micros as f64 / 1e6,
                }),
            },
            WfError::ChildFailed { step, child, error } => RunError {
                kind: "child_failed".into(),
                message: self.to_string(),
                step: Some(step.clone()),
                details: serde_json::json!({"child": child, "error": error}),
            },
            WfError::Workflow {
                kind,
                message,
                details,
            } => RunError {
                kind: kind.clone(),
                message: message.clone(),
                step: None,
                details: details.clone(),
            },
            WfError::Cancelled => RunError::new("cancelled", "the run was cancelled"),
            WfError::Nondeterminism(m) => RunError::new("nondeterminism", m.clone()),
            WfError::Mismatch(m) => RunError {
                kind: "nondeterminism".into(),
                message: m.to_string(),
                step: Some(m.found.name.clone()),
                details: serde_json::to_value(m.as_ref()).unwrap_or_default(),
            },
            other => RunError::new("engine", other.to_string()),
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        // Reviving a run (retry, reset, re-drive) while another run holds its exclusive key is
        // refused by the database's `runs_exclusive` index: a conflict, not a failure.
        if let sqlx::Error::Database(d) = &e
            && d.is_unique_violation()
            && (d.constraint() == Some("runs_exclusive") || d.message().contains("exclusive_key"))
        {
            return EngineError::Conflict(
                "another run of this workflow with the same key is under way; wait for it or cancel it first"
                    .into(),
            );
        }
        EngineError::Database(e)
    }
}

impl From<EngineError> for WfError {
    fn from(e: EngineError) -> Self {
        WfError::Engine(e.to_string())
    }
}

/// An operation of a run, as the journal or the code names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JournalPoint {
    /// Its durable name (`video/trim`, `patch/one-pass`, `scene/3/join`).
    pub name: String,
    /// What it is: `a completed step`, `a timer`, `a child run`...
    pub kind: String,
}

/// Where a run's journal and this build's code part ways: what replay expected at sequence
/// number `seq`, what the code asked for there, and which build wrote the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Mismatch {
    /// The sequence number of the journal's entry (its first event).
    pub seq: i64,
    /// The entry the journal has there, which the code no longer reaches.
    pub expected: JournalPoint,
    /// What the code asked for instead.
    pub found: JournalPoint,
    /// The build that started the run and wrote its journal (`slate 0.1.0 (abc1234)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// The build replaying it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_by: Option<String>,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the journal has `{}` ({}) at seq {}{}, but the code now asks for `{}` ({}): the workflow \
             changed under a running run. Deploy code that fits (guard the change with \
             ctx.patched) and retry the run, fork it from a step before the change, or cancel it",
            self.expected.name,
            self.expected.kind,
            self.seq,
            self.build
                .as_deref()
                .map(|b| format!(", written by {b}"))
                .unwrap_or_default(),
            self.found.name,
            self.found.kind,
        )
    }
}

/// The engine's own errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value could not be (de)serialized.
    #[error("serialization error: {0}")]
    Serde(#[from] serde_json::Error),
    /// An id that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The operation does not fit the run's current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No workflow of that name is registered.
    #[error("unknown workflow `{0}`: register it with Engine::register before starting runs")]
    UnknownWorkflow(String),
    /// The engine is shutting down.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A write could not be committed.
    #[error("could not commit: {0}")]
    Commit(String),
}
