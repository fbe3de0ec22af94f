//! Activity errors carry their retry intent.
//!
//! Every provider error is classified once, where it is received, into a kind and a
//! `retryable` flag. The workflows hand both to the engine, which retries or stops accordingly;
//! nothing above this layer guesses from status codes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Result of an activity.
pub type Result<T, E = ActivityError> = std::result::Result<T, E>;

/// What went wrong, in the terms that decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider did not answer in time (or said its request timed out).
    Timeout,
    /// 429: slow down; `retry_after` says how long.
    RateLimited,
    /// 5xx, scheduling failures, connection resets: try again later.
    Unavailable,
    /// The provider refused the content (moderation). Never retried.
    ContentPolicy,
    /// The request was wrong (4xx, validation). Never retried.
    BadRequest,
    /// Missing or wrong credentials (401/403). Never retried.
    Unauthorized,
    /// Out of credit (402). Never retried.
    PaymentRequired,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The answer could not be read (malformed JSON, an answer that does not fit our types).
    Malformed,
    /// The connection failed.
    Network,
    /// The job was cancelled.
    Cancelled,
    /// A local tool (ffmpeg, espeak-ng) failed.
    Tool,
    /// Configuration is missing or wrong.
    Config,
    /// A local file or database operation failed.
    Io,
    /// The answer was cut off (a language model's `max_tokens`). Never retried as is.
    Truncated,
}

impl ErrorKind {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ContentPolicy => "content_policy_violation",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::PaymentRequired => "payment_required",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Malformed => "malformed_response",
            ErrorKind::Network => "network",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Tool => "tool_failed",
            ErrorKind::Config => "config",
            ErrorKind::Io => "io",
            ErrorKind::Truncated => "truncated",
        }
    }

    /// Whether errors of this kind are worth another attempt by default.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::RateLimited
                | ErrorKind::Unavailable
                | ErrorKind::Malformed
                | ErrorKind::Network
                | ErrorKind::Io
        )
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An activity's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{provider}: {kind}: {message}")]
pub struct ActivityError {
    /// Classification.
    pub kind: ErrorKind,
    /// What happened, for a person. Never contains a secret.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The provider asked to wait this long first.
    #[serde(default, with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
    /// HTTP status, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `fal`, `openrouter`, `brain`, `tasks`, `last-frame`, `local`...
    pub provider: String,
    /// The provider's error body or other context.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl ActivityError {
    /// An error of `kind` with its default retry intent.
    pub fn new(provider: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        ActivityError {
            kind,
            message: message.into(),
            retryable: kind.default_retryable(),
            retry_after: None,
            status: None,
            provider: provider.to_string(),
            details: Value::Null,
        }
    }
    /// Set the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// Attach details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
    /// Override the retry intent.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
    /// A local tool failure.
    pub fn tool(message: impl Into<String>) -> Self {
        ActivityError::new("local", ErrorKind::Tool, message).retryable(false)
    }
    /// A local I/O failure.
    pub fn io(message: impl Into<String>) -> Self {
        ActivityError::new("local", ErrorKind::Io, message)
    }
    /// A configuration problem (never retried: a person must fix it).
    pub fn config(message: impl Into<String>) -> Self {
        ActivityError::new("config", ErrorKind::Config, message).retryable(false)
    }
    /// A request we refuse to send (never retried).
    pub fn bad_request(provider: &str, message: impl Into<String>) -> Self {
        ActivityError::new(provider, ErrorKind::BadRequest, message)
    }
}

impl From<std::io::Error> for ActivityError {
    fn from(e: std::io::Error) -> Self {
        ActivityError::io(e.to_string())
    }
}

impl From<sqlx::Error> for ActivityError {
    fn from(e: sqlx::Error) -> Self {
        ActivityError::new("database", ErrorKind::Io, e.to_string())
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
