//! Workflows: named async functions of a [`Ctx`] and a typed input.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::Ctx;
use crate::error::WfError;

/// A workflow. `NAME` is part of the durable contract: runs in the database refer to it.
///
/// ```
/// use slate_engine::{Ctx, WfError, Workflow};
///
/// struct Greet;
/// impl Workflow for Greet {
///     const NAME: &'static str = "greet";
///     type Input = String;
///     type Output = String;
///     async fn run(&self, ctx: Ctx, name: String) -> Result<String, WfError> {
///         ctx.step("compose", |_| async move { Ok(format!("hello {name}")) }).await
///     }
/// }
/// ```
pub trait Workflow: Send + Sync + 'static {
    /// Stable name.
    const NAME: &'static str;
    /// The version of the definition: raise it when a change to the body would not replay the
    /// journals of runs started before (or guard the change with a patch). Recorded on
    /// every run it starts, so runs on an old version can be found and drained before a deploy.
    const VERSION: u32 = 1;
    /// What a run does when replay finds its journal no longer fits this code (a step renamed,
    /// removed or moved without a patch): stop as `blocked` until a person acts (the default),
    /// or fail like any other error.
    const ON_MISMATCH: OnMismatch = OnMismatch::Block;
    /// Input (stored as JSON with the run).
    type Input: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Output (stored as JSON when the run completes).
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs whose inputs give the same key never overlap: starting one while another is
    /// pending, running, waiting or sleeping is refused with [`crate::EngineError::Conflict`],
    /// however it is started (the API's own routes or `POST /api/runs`). `None` (the default):
    /// any number at once. Child runs are not checked; their parent already is.
    fn exclusive_key(_input: &Self::Input) -> Option<String> {
        None
    }

    /// The workflow's body.
    fn run(
        &self,
        ctx: Ctx,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, WfError>> + Send;
}

/// See [`Workflow::ON_MISMATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMismatch {
    /// Stop in the `blocked` state, with the mismatch in the run's error, and wait for a
    /// person: retry it on code that fits, fork it from a step, or cancel it. Its parent keeps
    /// waiting.
    #[default]
    Block,
    /// Fail the run (and tell its parent), as for any other error.
    Fail,
}

pub(crate) trait ErasedWorkflow: Send + Sync {
    /// [`Workflow::ON_MISMATCH`].
    fn on_mismatch(&self) -> OnMismatch;

    /// [`Workflow::VERSION`].
    fn version(&self) -> u32;

    /// Whether `input` fits the workflow's input type (checked when a run is started, so bad
    /// input is refused at the door instead of failing the run later).
    fn check_input(&self, input: &Value) -> Result<(), String>;

    /// [`Workflow::exclusive_key`] of a JSON input that fits.
    fn exclusive_key(&self, input: &Value) -> Option<String>;

    fn call(&self, ctx: Ctx, input: Value) -> BoxFuture<'static, Result<Value, WfError>>;
}

pub(crate) struct Erased<W>(pub Arc<W>);

impl<W: Workflow> ErasedWorkflow for Erased<W> {
    fn on_mismatch(&self) -> OnMismatch {
        W::ON_MISMATCH
    }

    fn version(&self) -> u32 {
        W::VERSION
    }

    fn check_input(&self, input: &Value) -> Result<(), String> {
        W::Input::deserialize(input)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn exclusive_key(&self, input: &Value) -> Option<String> {
        W::Input::deserialize(input)
            .ok()
            .and_then(|i| W::exclusive_key(&i))
    }

    fn call(&self, ctx: Ctx, input: Value) -> BoxFuture<'static, Result<Value, WfError>> {
        let w = self.0.clone();
        Box::pin(async move {
            let input: W::Input = serde_json::from_value(input).map_err(|e| {
                WfError::failed(
                    "bad_input",
                    format!("the input does not fit workflow `{}`: {e}", W::NAME),
                )
            })?;
            let out = w.run(ctx, input).await?;
            serde_json::to_value(out).map_err(|e| {
                WfError::failed("serialization", format!("the workflow's output: {e}"))
            })
        })
    }
}

/// The workflows an engine's workers execute, by name.
#[derive(Default)]
pub(crate) struct Registry(RwLock<HashMap<String, Arc<dyn ErasedWorkflow>>>);

impl Registry {
    pub(crate) fn insert<W: Workflow>(&self, workflow: W) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(W::NAME.to_string(), Arc::new(Erased(Arc::new(workflow))));
    }

    /// The registered definition's version of `name` (1 when it is not registered here).
    pub(crate) fn version(&self, name: &str) -> u32 {
        self.get(name).map_or(1, |w| w.version())
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn ErasedWorkflow>> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Names, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}
