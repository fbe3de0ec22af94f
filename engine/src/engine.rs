//! The engine handle: registry, client API (start, signal, inspect) and admin operations.
//!
//! (Over 600 lines on purpose: the engine handle is the one door for clients and admins (start,
//! signal, inspect, cancel, retry, reset, re-drive, budgets, limits); each operation is short and
//! they share the same guards.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;

use crate::committer::Committer;
use crate::error::{EngineError, Result, RunError};
use crate::journal::{EntryState, Journal, StepView, step_views};
use crate::metrics::Metrics;
use crate::model::{
    EventData, EventRecord, NewRun, RunFilter, RunId, RunRecord, RunStatus, usd_to_micros,
};
pub use crate::runtime::CancelOutcome;
use crate::runtime::{EngineConfig, Shared};
use crate::store::{self, Guard, NewSignal, SignalOutcome, Store, Target, Transition};
use crate::worker::Worker;
use crate::workflow::{Registry, Workflow};

/// Options for starting a run.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Use this id (a second start with the same id returns the first run).
    pub id: Option<RunId>,
    /// Deduplicate starts: a second start with the same key returns the first run.
    pub idempotency_key: Option<String>,
    /// Grouping label (the film pipeline uses the project slug).
    pub scope: Option<String>,
    /// Stop the run (and its children) before a step starts once this much is spent.
    pub budget_usd: Option<f64>,
    /// Do not start before this delay.
    pub delay: Option<Duration>,
}

/// The largest concurrency limit a key can have: more slots than any fleet runs at once, so a
/// typo (an extra zero or three) is refused rather than taken as "unlimited".
pub const MAX_CONCURRENCY_LIMIT: u32 = 10_000;

/// The result of a start.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The run (existing or new).
    pub run: RunRecord,
    /// False when an existing run was returned.
    pub created: bool,
}

/// A run with everything a person needs to understand it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunDetail {
    /// The run.
    pub run: RunRecord,
    /// The step executing or waiting now, if any.
    pub current_step: Option<String>,
    /// Its steps, in the order they began.
    pub steps: Vec<StepView>,
    /// Cost of the run and all its descendants, dollars.
    pub tree_cost_usd: f64,
    /// The root's budget, dollars.
    pub budget_usd: Option<f64>,
    /// Why a waiting run cannot go on by itself, when it waits on a child that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_on: Option<Blocked>,
    /// While the run executes: which worker holds it, how long its current attempt has run,
    /// and until when its lease holds (heartbeats push it forward).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alive: Option<Alive>,
    /// The append-only history.
    pub events: Vec<EventRecord>,
}

/// A run executing now, as its heartbeats show it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Alive {
    /// The worker holding its lease.
    pub worker: String,
    /// Until when the lease holds; the holder's heartbeats push it forward every third of a
    /// lease. Past it, the worker is gone and another takes the run over.
    pub lease_until: DateTime<Utc>,
    /// Whether the lease still holds now.
    pub lease_holds: bool,
    /// The step whose attempt is running, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// That attempt's number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How long that attempt has been running, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_ms: Option<u64>,
}

/// A run waiting on a descendant that failed or was cancelled: nothing will wake it until a
/// person retries the failed step there (the run then goes on) or cancels the run.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Blocked {
    /// The failed run (the deepest one, when a child waits on its own failed child).
    pub run_id: RunId,
    /// Its workflow.
    pub workflow: String,
    /// `failed` or `cancelled`.
    pub status: RunStatus,
    /// The step it failed at, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// What is wrong and what to do, for a person.
    pub message: String,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.shared.store.dialect())
            .finish()
    }
}

impl Engine {
    /// Connect to `postgres://...` or `sqlite://path` and apply migrations.
    pub async fn connect(url: &str, config: EngineConfig) -> Result<Engine> {
        let store = store::connect(url, config.pool_size).await?;
        store.migrate().await?;
        Ok(Engine::new(store, config))
    }

    /// An engine over an opened store. Must be called inside a Tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Engine {
        let metrics = Arc::new(Metrics::default());
        let executing = Arc::new(AtomicUsize::new(0));
        let committer = Committer::spawn(
            store.clone(),
            config.committers,
            config.max_batch,
            config.commit_delay,
            executing.clone(),
            metrics.clone(),
        );
        let registry = Arc::new(Registry::default());
        Engine {
            shared: Arc::new(Shared {
                store,
                registry: registry.clone(),
                committer,
                config,
                metrics,
                wake: Arc::new(Notify::new()),
                active: Mutex::new(HashMap::new()),
                executing,
                listening: AtomicBool::new(false),
                reserved: Default::default(),
            }),
            registry,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Metrics of this process.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// Register a workflow so that workers of this engine can execute its runs.
    pub fn register<W: Workflow>(&self, workflow: W) -> &Self {
        self.registry.insert(workflow);
        self
    }

    /// Registered workflow names, sorted.
    pub fn workflows(&self) -> Vec<String> {
        self.registry.names()
    }

    /// A worker that executes this engine's runs; see [`Worker::run`].
    pub fn worker(&self) -> Worker {
        Worker::new(self.shared.clone(), self.registry.clone())
    }

    /// Start a run of `W`.
    pub async fn start<W: Workflow>(
        &self,
        input: &W::Input,
        opts: StartOptions,
    ) -> Result<Started> {
        self.start_raw(W::NAME, serde_json::to_value(input)?, opts)
            .await
    }

    /// Start a run by workflow name with a JSON input.
    #[tracing::instrument(level = "debug", skip(self, input, opts), fields(key = opts.idempotency_key.as_deref()))]
    pub async fn start_raw(
        &self,
        workflow: &str,
        input: Value,
        opts: StartOptions,
    ) -> Result<Started> {
        let Some(w) = self.registry.get(workflow) else {
            return Err(EngineError::UnknownWorkflow(workflow.to_string()));
        };
        w.check_input(&input).map_err(|e| {
            EngineError::Invalid(format!("the input does not fit workflow `{workflow}`: {e}"))
        })?;
        if let Some(k) = &opts.idempotency_key
            && (k.is_empty() || k.chars().count() > 200)
        {
            return Err(EngineError::Invalid(
                "an idempotency key must have 1 to 200 characters".into(),
            ));
        }
        if let Some(b) = opts.budget_usd
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(EngineError::Invalid(
                "a budget must be a finite, non-negative amount of dollars".into(),
            ));
        }
        let now = Utc::now();
        let id = opts.id.unwrap_or_default();
        let exclusive_key = w.exclusive_key(&input);
        let asked_key = opts.idempotency_key.clone();
        let (run, created) = self
            .shared
            .store
            .create_run(NewRun {
                id,
                workflow: workflow.to_string(),
                workflow_version: w.version(),
                build: self.shared.config.build.clone(),
                exclusive_key: exclusive_key.clone(),
                idempotency_key: opts.idempotency_key,
                scope: opts.scope,
                input,
                parent_id: None,
                parent_step: None,
                root_id: id,
                budget_micros: opts.budget_usd.map(usd_to_micros),
                now,
                ready_at: crate::model::later(now, opts.delay.unwrap_or_default()),
            })
            .await?;
        if created {
            self.shared.wake.notify_waiters();
        }
        let same_request =
            run.id == id || (asked_key.is_some() && run.idempotency_key == asked_key);
        if !same_request {
            return Err(EngineError::Conflict(format!(
                "a `{workflow}` run for `{}` is already under way: run {} ({}); wait for it, or cancel it first",
                exclusive_key.unwrap_or_default(),
                run.id,
                run.status.as_str()
            )));
        }
        Ok(Started { run, created })
    }

    /// Deliver a signal to a run (`target`) or to whichever runs wait for `name`. A second
    /// signal with the same target, name and `event_key` is dropped.
    #[tracing::instrument(level = "debug", skip(self, payload))]
    pub async fn signal(
        &self,
        target: Option<RunId>,
        name: &str,
        event_key: Option<String>,
        payload: Value,
    ) -> Result<SignalOutcome> {
        if name.is_empty() || name.chars().count() > 300 {
            return Err(EngineError::Invalid(
                "a signal name must have 1 to 300 characters".into(),
            ));
        }
        if let Some(id) = target {
            self.get(id).await?;
        }
        let out = self
            .shared
            .store
            .send_signal(NewSignal {
                run_id: target,
                name: name.to_string(),
                event_key,
                payload,
                now: Utc::now(),
            })
            .await?;
        if out.woken > 0 {
            self.shared.wake.notify_waiters();
        }
        Ok(out)
    }

    /// A run.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The version of workflow `name` registered here, if it is.
    pub fn registered_version(&self, name: &str) -> Option<u32> {
        self.registry.get(name).map(|w| w.version())
    }

    /// A run by id.
    pub async fn get(&self, id: RunId) -> Result<RunRecord> {
        self.shared
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))
    }

    /// Runs matching a filter, newest first.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<RunRecord>> {
        self.shared.store.list_runs(filter).await
    }

    /// A run with its steps, costs and history.
    pub async fn inspect(&self, id: RunId) -> Result<RunDetail> {
        let run = self.get(id).await?;
        let events = self.shared.store.events(id).await?;
        let steps = step_views(&events);
        let current_step = if run.status.is_terminal() {
            None
        } else {
            steps
                .iter()
                .rev()
                .find(|s| {
                    matches!(
                        s.status,
                        "running" | "retrying" | "waiting" | "sleeping" | "pending" | "started"
                    )
                })
                .map(|s| s.name.clone())
        };
        let alive = alive(&run, &events);
        let (spent, budget) = self.shared.store.tree_cost(run.root_id).await?;
        let blocked_on = if run.status.is_terminal() {
            None
        } else {
            self.blocked(&steps, 0).await?
        };
        Ok(RunDetail {
            run,
            current_step,
            steps,
            tree_cost_usd: spent as f64 / 1e6,
            budget_usd: budget.map(|b| b as f64 / 1e6),
            blocked_on,
            alive,
            events,
        })
    }

    /// Follow the waits on children down to a failed or cancelled one.
    async fn blocked(&self, steps: &[StepView], depth: usize) -> Result<Option<Blocked>> {
        if depth > 8 {
            return Ok(None);
        }
        for s in steps.iter().filter(|s| s.status == "waiting") {
            let Some(child) = s
                .signal
                .as_deref()
                .and_then(|n| n.strip_prefix("child:"))
                .and_then(|id| id.parse::<RunId>().ok())
            else {
                continue;
            };
            let Some(c) = self.shared.store.get_run(child).await? else {
                continue;
            };
            if matches!(c.status, RunStatus::Failed | RunStatus::Cancelled) {
                let step = c.error.as_ref().and_then(|e| e.step.clone());
                let what = c
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| "no error recorded".into());
                let message = format!(
                    "blocked: child run {} ({}) {}{}: {what}. Fix the cause, then retry that step (POST /api/admin/runs/{}/retry, or `slate runs retry {}`) and this run goes on; or cancel this run",
                    c.id,
                    c.workflow,
                    c.status,
                    step.as_deref()
                        .map(|s| format!(" at step `{s}`"))
                        .unwrap_or_default(),
                    c.id,
                    c.id
                );
                return Ok(Some(Blocked {
                    run_id: c.id,
                    workflow: c.workflow.clone(),
                    status: c.status,
                    step,
                    error: c.error.clone(),
                    message,
                }));
            }
            if !c.status.is_terminal() {
                let events = self.shared.store.events(c.id).await?;
                if let Some(b) = Box::pin(self.blocked(&step_views(&events), depth + 1)).await? {
                    return Ok(Some(b));
                }
            }
        }
        Ok(None)
    }

    /// Wait until a run is terminal (polling), or until `timeout`.
    pub async fn wait_for(&self, id: RunId, timeout: Duration) -> Result<RunRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let run = self.get(id).await?;
            if run.status.is_terminal() {
                return Ok(run);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::Conflict(format!(
                    "run {id} is still {} after {timeout:?}",
                    run.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Cancel a run and its descendants. Runs that are not executing are cancelled at once;
    /// executing ones are asked to stop (their running step sees its cancellation token).
    #[tracing::instrument(skip(self))]
    pub async fn cancel(&self, id: RunId, reason: &str) -> Result<CancelOutcome> {
        self.shared.cancel_tree(id, reason).await
    }

    /// Run a failed step again, with a fresh attempt budget; the run continues from there.
    #[tracing::instrument(skip(self))]
    pub async fn retry_step(&self, id: RunId, step: &str, reason: &str) -> Result<()> {
        let run = self.get(id).await?;
        let events = self.shared.store.events(id).await?;
        let journal = Journal::from_events(&events);
        let Some(entry) = journal.entries.get(step) else {
            return Err(EngineError::NotFound(format!(
                "run {id} has no step `{step}` in its journal"
            )));
        };
        let retriable = matches!(
            entry.state,
            EntryState::Failed { retry_at: None, .. } | EntryState::LimitExceeded { .. }
        );
        if !retriable {
            return Err(EngineError::Conflict(format!(
                "step `{step}` of run {id} is {}, not failed; only a failed step can be retried",
                entry.state.label()
            )));
        }
        if run.status != RunStatus::Failed {
            return Err(EngineError::Conflict(format!(
                "run {id} is {}; a step can be retried once the run has failed",
                run.status
            )));
        }
        let now = Utc::now();
        let mut t = Transition::new(
            id,
            Guard::Status(vec![RunStatus::Failed]),
            Target::Pending { at: now },
            now,
        );
        t.bump_epoch = true;
        t.events = vec![(
            Some(step.to_string()),
            EventData::StepRetryRequested {
                reason: reason.to_string(),
            },
        )];
        if !self.shared.store.transition(t).await? {
            return Err(EngineError::Conflict(format!(
                "run {id} changed state meanwhile; look at it again"
            )));
        }
        self.shared.wake.notify_waiters();
        self.resume_parents(&run, reason).await
    }

    /// Reset a run to a step: that step and everything journaled after it runs again. The run
    /// must not be executing at this moment (cancel it first, or reset while it waits).
    #[tracing::instrument(skip(self))]
    pub async fn reset_to_step(&self, id: RunId, step: &str, reason: &str) -> Result<()> {
        let run = self.get(id).await?;
        if run.status == RunStatus::Running {
            return Err(EngineError::Conflict(format!(
                "run {id} is executing; reset it while it waits or after it stops"
            )));
        }
        let events = self.shared.store.events(id).await?;
        if !crate::journal::entry_names(&events).contains(step) {
            return Err(EngineError::NotFound(format!(
                "run {id} has no step `{step}` in its journal"
            )));
        }
        let now = Utc::now();
        let mut t = Transition::new(
            id,
            Guard::Status(vec![
                RunStatus::Pending,
                RunStatus::Waiting,
                RunStatus::Sleeping,
                RunStatus::Completed,
                RunStatus::Failed,
                RunStatus::Cancelled,
                RunStatus::Blocked,
            ]),
            Target::Pending { at: now },
            now,
        );
        t.bump_epoch = true;
        t.events = vec![(
            Some(step.to_string()),
            EventData::RunReset {
                reason: reason.to_string(),
            },
        )];
        if !self.shared.store.transition(t).await? {
            return Err(EngineError::Conflict(format!(
                "run {id} started executing meanwhile; try again when it waits or stops"
            )));
        }
        self.shared.wake.notify_waiters();
        Ok(())
    }

    /// Re-drive a failed run: retry the step its error names if that step failed, otherwise
    /// run it again from its journal (for failures outside steps, such as an exhausted budget
    /// that has since been raised).
    #[tracing::instrument(skip(self))]
    pub async fn resume(&self, id: RunId, reason: &str) -> Result<()> {
        let run = self.get(id).await?;
        if !matches!(run.status, RunStatus::Failed | RunStatus::Blocked) {
            return Err(EngineError::Conflict(format!(
                "run {id} is {}; only failed and blocked runs can be re-driven",
                run.status
            )));
        }
        if let Some(step) = run.error.as_ref().and_then(|e| e.step.clone()) {
            match self.retry_step(id, &step, reason).await {
                Err(EngineError::Conflict(_)) | Err(EngineError::NotFound(_)) => {}
                other => return other,
            }
        }
        self.resume_run(&run, reason).await?;
        self.resume_parents(&run, reason).await
    }

    /// A failed run made pending again. When a child's failure failed it, the resumption names
    /// that child, and the join that received the failure waits for the child's next outcome.
    async fn resume_run(&self, run: &RunRecord, reason: &str) -> Result<()> {
        let id = run.id;
        let now = Utc::now();
        let mut t = Transition::new(
            id,
            Guard::Status(vec![RunStatus::Failed, RunStatus::Blocked]),
            Target::Pending { at: now },
            now,
        );
        t.bump_epoch = true;
        t.events = vec![(
            None,
            EventData::RunResumed {
                reason: reason.to_string(),
                child: failed_child(run),
            },
        )];
        if !self.shared.store.transition(t).await? {
            return Err(EngineError::Conflict(format!(
                "run {id} changed state meanwhile; look at it again"
            )));
        }
        self.shared.wake.notify_waiters();
        Ok(())
    }

    /// A parent follows its child (decision 0025): the ancestors of a retried run that failed
    /// only because of it (their error is that child's failure) are resumed with it, and wait
    /// for its new outcome. An ancestor that failed for another reason is left as it is.
    async fn resume_parents(&self, child: &RunRecord, reason: &str) -> Result<()> {
        let mut cur = child.clone();
        while let Some(pid) = cur.parent_id {
            let parent = self.get(pid).await?;
            if parent.status != RunStatus::Failed || failed_child(&parent) != Some(cur.id) {
                break;
            }
            let why = format!("{reason} (its child {} was retried)", cur.id);
            match self.resume_run(&parent, &why).await {
                // Someone else moved it meanwhile: theirs stands.
                Err(EngineError::Conflict(_)) => break,
                other => other?,
            }
            cur = parent;
        }
        Ok(())
    }

    /// Re-drive every failed top-level run of a workflow. Returns the runs re-driven.
    #[tracing::instrument(skip(self))]
    pub async fn redrive_failed(&self, workflow: &str, reason: &str) -> Result<Vec<RunId>> {
        let mut out = vec![];
        let mut before = None;
        loop {
            let page = self
                .list(&RunFilter {
                    workflow: Some(workflow.to_string()),
                    status: Some(RunStatus::Failed),
                    before,
                    limit: Some(200),
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            for r in &page {
                if r.parent_id.is_none() && self.resume(r.id, reason).await.is_ok() {
                    out.push(r.id);
                }
            }
        }
        Ok(out)
    }

    /// Set or remove a top-level run's budget (dollars).
    #[tracing::instrument(skip(self))]
    pub async fn set_budget(&self, id: RunId, usd: Option<f64>) -> Result<()> {
        if let Some(b) = usd
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(EngineError::Invalid(
                "a budget must be a finite, non-negative amount of dollars".into(),
            ));
        }
        let run = self.get(id).await?;
        if run.parent_id.is_some() {
            // A conflict with the run's place in its tree, not a malformed request.
            return Err(EngineError::Conflict(format!(
                "run {id} is a child run; budgets are set on the top-level run {}",
                run.root_id
            )));
        }
        self.shared
            .store
            .set_budget(id, usd.map(usd_to_micros))
            .await?;
        Ok(())
    }

    /// Allow at most `max` steps with concurrency key `key` to run at once, across every worker
    /// on this database (`None` removes the limit).
    #[tracing::instrument(skip(self))]
    pub async fn set_concurrency_limit(&self, key: &str, max: Option<u32>) -> Result<()> {
        if key.is_empty() || key.chars().count() > 100 {
            return Err(EngineError::Invalid(
                "a concurrency key must have 1 to 100 characters".into(),
            ));
        }
        if max.is_some_and(|m| !(1..=MAX_CONCURRENCY_LIMIT).contains(&m)) {
            return Err(EngineError::Invalid(format!(
                "a concurrency limit is 1 to {MAX_CONCURRENCY_LIMIT} (remove it instead of 0)"
            )));
        }
        self.shared.store.set_concurrency_limit(key, max).await
    }
}

/// A running run's lease and the attempt under way: the latest step started and not finished.
fn alive(run: &RunRecord, events: &[EventRecord]) -> Option<Alive> {
    if run.status != RunStatus::Running {
        return None;
    }
    let worker = run.lease_owner.clone()?;
    let lease_until = run.ready_at?;
    let now = Utc::now();
    let mut open: Option<(&str, u32, DateTime<Utc>)> = None;
    for e in events {
        match (&e.data, e.step.as_deref()) {
            (EventData::StepStarted { attempt, .. }, Some(step)) => {
                open = Some((step, *attempt, e.at))
            }
            (EventData::StepSucceeded { .. } | EventData::StepFailed { .. }, Some(step))
                if open.is_some_and(|(s, _, _)| s == step) =>
            {
                open = None
            }
            _ => {}
        }
    }
    Some(Alive {
        worker,
        lease_until,
        lease_holds: lease_until > now,
        step: open.map(|(s, _, _)| s.to_string()),
        attempt: open.map(|(_, a, _)| a),
        running_ms: open.map(|(_, _, at)| (now - at).num_milliseconds().max(0) as u64),
    })
}

/// The child whose failure failed `run`, if that is why it failed.
fn failed_child(run: &RunRecord) -> Option<RunId> {
    let e = run.error.as_ref()?;
    if e.kind != "child_failed" {
        return None;
    }
    serde_json::from_value(e.details["child"].clone()).ok()
}
