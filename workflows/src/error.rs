//! Errors of the film domain, with what an HTTP API needs to answer them.

use slate_activities::ActivityError;
use slate_engine::{EngineError, StepError};

/// The domain's result type.
pub type Result<T, E = FilmError> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilmError {
    /// The input is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// No such thing.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the current state (an edit based on an old version, a second
    /// qualification...).
    #[error("{0}")]
    Conflict(String),
    /// The gather namespace is read-only once qualification has started.
    #[error("{0}")]
    Locked(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An activity failed.
    #[error(transparent)]
    Activity(#[from] ActivityError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl FilmError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            FilmError::Invalid(_) => "invalid",
            FilmError::NotFound(_) => "not_found",
            FilmError::Conflict(_) => "conflict",
            FilmError::Locked(_) => "gather_locked",
            FilmError::Database(_) => "database",
            FilmError::Engine(EngineError::NotFound(_)) => "not_found",
            FilmError::Engine(EngineError::Conflict(_)) => "conflict",
            FilmError::Engine(EngineError::Invalid(_) | EngineError::UnknownWorkflow(_)) => {
                "invalid"
            }
            FilmError::Engine(_) => "engine",
            FilmError::Activity(_) => "activity",
            FilmError::Internal(_) => "internal",
        }
    }
}

/// Turn an activity's error into a step error, keeping its retry intent.
pub fn step_error(e: ActivityError) -> StepError {
    let mut s = if e.retryable {
        StepError::retryable(e.kind.as_str(), format!("{}: {}", e.provider, e.message))
    } else {
        StepError::fatal(e.kind.as_str(), format!("{}: {}", e.provider, e.message))
    };
    if let Some(d) = e.retry_after {
        s = s.with_retry_after(d);
    }
    s.with_details(
        serde_json::json!({"status": e.status, "provider": e.provider, "details": e.details}),
    )
}

/// Turn a domain error into a step error: database trouble is worth retrying, bad data is not.
pub fn film_step_error(e: FilmError) -> StepError {
    match e {
        FilmError::Activity(a) => step_error(a),
        FilmError::Database(d) => StepError::retryable("database", d.to_string()),
        other => StepError::fatal(other.code(), other.to_string()),
    }
}

/// `?` on activity results inside steps.
pub trait IntoStep<T> {
    /// Map the error into a step error.
    fn step(self) -> std::result::Result<T, StepError>;
}

impl<T> IntoStep<T> for std::result::Result<T, ActivityError> {
    fn step(self) -> std::result::Result<T, StepError> {
        self.map_err(step_error)
    }
}

impl<T> IntoStep<T> for std::result::Result<T, FilmError> {
    fn step(self) -> std::result::Result<T, StepError> {
        self.map_err(film_step_error)
    }
}
