//! Checkpoints inside a call: where a long activity keeps what it must not lose if its
//! process dies (a provider's request id), and finds what a cut-short attempt kept.
//!
//! fal.ai's queue and the last-frame service cannot be asked "did I already submit this?", so
//! a call that submits and then waits, killed while waiting, would submit (and pay) again on
//! the next attempt. With a checkpoint in scope the call keeps the request id durably right
//! after submitting and, on the next attempt, polls that request instead (decision 0015).
//!
//! The checkpoint travels as a task-local rather than as a parameter of every activity trait:
//! like a tracing span, it is context that only a few calls use, and the caller (a workflow
//! step) sets it around the call without the activities' signatures knowing about steps. With
//! no checkpoint in scope (tests, the CLI) calls behave as before.

use std::future::Future;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ActivityError, ErrorKind, Result};

/// Durable storage for one attempt of one step (a workflow engine's step checkpoint).
#[async_trait]
pub trait Checkpoint: Send + Sync {
    /// What the cut-short attempts kept, a JSON object (empty if nothing).
    fn resumed(&self) -> Option<Value>;
    /// Keep `data` (a JSON object, merged key by key) durably before returning.
    async fn save(&self, data: Value) -> std::result::Result<(), String>;
}

struct Scope {
    store: Arc<dyn Checkpoint>,
    /// What is known in this attempt: the resumed object plus this attempt's saves.
    known: Mutex<Map<String, Value>>,
}

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// Run `fut` with `store` as its checkpoint.
pub async fn scope<F: Future>(store: Arc<dyn Checkpoint>, fut: F) -> F::Output {
    let known = match store.resumed() {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let s = Arc::new(Scope {
        store,
        known: Mutex::new(known),
    });
    SCOPE.scope(s, fut).await
}

/// Whether a checkpoint is in scope (what is kept now outlives this process).
pub fn active() -> bool {
    SCOPE.try_with(|_| ()).is_ok()
}

/// What an earlier attempt kept under `key`, if it can be read as `T`.
pub fn recall<T: DeserializeOwned>(key: &str) -> Option<T> {
    SCOPE
        .try_with(|s| {
            s.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned()
        })
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Keep `value` under `key` durably (nothing without a checkpoint in scope). An error means
/// the engine could not write it: the attempt should fail and be retried, because going on
/// would risk paying twice after a crash.
pub async fn keep<T: Serialize>(provider: &str, key: &str, value: &T) -> Result<()> {
    let Ok(s) = SCOPE.try_with(Arc::clone) else {
        return Ok(());
    };
    let v = serde_json::to_value(value)
        .map_err(|e| ActivityError::new(provider, ErrorKind::Malformed, e.to_string()))?;
    let mut one = Map::new();
    one.insert(key.to_string(), v.clone());
    s.store.save(Value::Object(one)).await.map_err(|e| {
        ActivityError::new(
            provider,
            ErrorKind::Unavailable,
            format!("could not checkpoint the submitted request: {e}"),
        )
    })?;
    s.known
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.to_string(), v);
    Ok(())
}

/// Forget `key` (the request it named turned out unusable: gone, failed).
pub fn forget(key: &str) {
    let _ = SCOPE.try_with(|s| {
        s.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
    });
}

/// A short, stable digest of a request, to tell a step's calls apart.
pub fn digest(v: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}
