//! The workflow context: how workflow code performs durable operations.
//!
//! A workflow is ordinary async code that receives a [`Ctx`]. Every side effect goes through a
//! named operation on it ([`Ctx::step`], [`Ctx::sleep`], [`Ctx::wait_signal`],
//! [`Ctx::start_child`], [`Ctx::bounded`], [`Ctx::attempts`]). When the run executes again
//! (after a crash, a timer, a signal), the workflow function runs from the top and every
//! operation whose outcome is journaled returns it without executing again; the first one that
//! is not journaled executes. Names are the durable contract: unique within a run, stable
//! across versions of the code.
//!
//! When an operation cannot complete now (a timer, a signal, a retry backoff, a full concurrency
//! key) it returns [`WfError::Suspended`]; propagate it with `?`. The engine then records the
//! wait and frees the worker: a waiting run holds no memory and no task.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::committer::CommitResult;
use crate::error::{RunError, StepError, WfError};
use crate::journal::{EntryState, Journal};
use crate::model::{Cost, EventData, NewEvent, NewRun, RunId, RunRecord, RunStatus};
use crate::runtime::{Shared, StopFlag, StopReason};
use crate::store::{AppendOp, SlotOutcome, child_signal_name};

/// How a step is retried. Delays are durable timers: the run sleeps in the database between
/// attempts, it does not hold a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub initial_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
    /// Share of each delay that is randomized (0.0 to 1.0), so that many runs failing together
    /// do not retry together.
    pub jitter: f64,
    /// Error kinds never retried, whatever the error says.
    pub non_retryable: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
            non_retryable: vec![],
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        }
    }
    /// `n` attempts with the default backoff.
    pub fn attempts(n: u32) -> Self {
        RetryPolicy {
            max_attempts: n.max(1),
            ..Default::default()
        }
    }
    /// Set the first delay and the cap.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max;
        self
    }
    /// Never retry errors of this kind.
    pub fn never_retry(mut self, kind: impl Into<String>) -> Self {
        self.non_retryable.push(kind.into());
        self
    }
    /// The delay after failed attempt `n` (1-based): exponential, capped, jittered downwards.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(n.saturating_sub(1).min(64) as i32);
        let base = (self.initial_delay.as_secs_f64() * exp).min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - jitter * rand::random::<f64>();
        Duration::from_secs_f64((base * factor).max(0.0))
    }
}

/// Options of one step.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// Retry policy.
    pub retry: RetryPolicy,
    /// At most N steps with this key run at once across all workers (see
    /// [`crate::Engine::set_concurrency_limit`]); waiting for a slot is durable.
    pub concurrency_key: Option<String>,
    /// Give up an attempt after this long (a retryable `timeout` error).
    pub timeout: Option<Duration>,
    /// Wait until the attempt's start (with its idempotency key) is committed before calling.
    /// Every attempt's start is journaled; by default it rides along with the next commit
    /// instead of costing one of its own. Turn this on for paid calls, so that the intent is on
    /// disk before any money is spent. Steps with a concurrency key always wait.
    pub durable_start: bool,
}

impl StepOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the retry policy.
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }
    /// Set the concurrency key.
    pub fn concurrency(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self
    }
    /// Set the per-attempt timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Commit the attempt's start before calling (see [`StepOptions::durable_start`]).
    pub fn durable_start(mut self) -> Self {
        self.durable_start = true;
        self
    }
}

/// What a step's code receives.
#[derive(Debug, Clone)]
pub struct StepCtx {
    run_id: RunId,
    step: String,
    attempt: u32,
    idempotency_key: String,
    cancel: CancellationToken,
    cost: Arc<Mutex<Cost>>,
}

impl StepCtx {
    /// The run.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }
    /// The step's name.
    pub fn step(&self) -> &str {
        &self.step
    }
    /// 1-based attempt number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// A key stable across this step's attempts (`<run>/<step>`): hand it to providers that
    /// deduplicate requests, so that a retry after a crash is not paid twice.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    /// Fires when the run is cancelled (or this worker lost the run): stop, and cancel any
    /// remote job you started.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
    /// True once the run has been cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
    /// Report money or units spent; recorded with the step's outcome and added to the run.
    pub fn report_cost(&self, c: Cost) {
        let mut g = self.cost.lock().unwrap_or_else(|e| e.into_inner());
        g.add(c);
    }
}

/// A bounded attempt's verdict (see [`Ctx::attempts`]).
#[derive(Debug, Clone)]
pub enum Attempt<T> {
    /// Accepted: the value is the result.
    Done(T),
    /// Rejected: try again, for this reason.
    Retry(String),
}

/// What an execution left for the executor to record.
pub(crate) struct Outcome {
    pub fatal: Option<WfError>,
    pub susp: Suspension,
    pub consumed: Vec<i64>,
    pub took_slots: bool,
    /// The last sequence number this execution used.
    pub next_seq: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Suspension {
    pub active: bool,
    pub ready_at: Option<DateTime<Utc>>,
    pub signals: BTreeSet<String>,
    pub slots: BTreeSet<String>,
    pub reasons: Vec<String>,
}

impl Suspension {
    fn wake_at(&mut self, t: DateTime<Utc>) {
        self.ready_at = Some(self.ready_at.map_or(t, |r| r.min(t)));
    }
}

pub(crate) struct RunState {
    pub journal: Journal,
    pub next_seq: i64,
    pub seen: HashSet<String>,
    pub susp: Suspension,
    pub fatal: Option<WfError>,
    /// This execution took a concurrency slot (its outcome must release what is left).
    pub took_slots: bool,
}

pub(crate) struct RunInner {
    pub shared: Arc<Shared>,
    pub run: RunRecord,
    pub budget: Option<i64>,
    pub state: Mutex<RunState>,
    /// Fired for cancellation and lost leases; handed to steps.
    pub token: CancellationToken,
    pub stop: Arc<StopFlag>,
}

/// The workflow context. Cheap to clone; clones share the run.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) inner: Arc<RunInner>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("run_id", &self.inner.run.id)
            .field("workflow", &self.inner.run.workflow)
            .finish()
    }
}

fn decode<T: DeserializeOwned>(what: &str, v: &Value) -> Result<T, WfError> {
    T::deserialize(v).map_err(|e| {
        WfError::Nondeterminism(format!(
            "the journaled result of `{what}` no longer fits the type the workflow expects ({e}); \
             the code changed under a running workflow: reset the run to that step to run it again"
        ))
    })
}

struct CountingWriter(usize);
impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_size(v: &Value) -> usize {
    let mut w = CountingWriter(0);
    let _ = serde_json::to_writer(&mut w, v);
    w.0
}

impl Ctx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        run: RunRecord,
        journal: Journal,
        budget: Option<i64>,
        token: CancellationToken,
        stop: Arc<StopFlag>,
    ) -> Self {
        let next_seq = journal.last_seq;
        Ctx {
            inner: Arc::new(RunInner {
                shared,
                run,
                budget,
                state: Mutex::new(RunState {
                    journal,
                    next_seq,
                    seen: HashSet::new(),
                    susp: Suspension::default(),
                    fatal: None,
                    took_slots: false,
                }),
                token,
                stop,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This run's id.
    pub fn run_id(&self) -> RunId {
        self.inner.run.id
    }

    /// This run's workflow name.
    pub fn workflow(&self) -> &str {
        &self.inner.run.workflow
    }

    /// This run's scope (grouping label), if any.
    pub fn scope(&self) -> Option<&str> {
        self.inner.run.scope.as_deref()
    }

    /// The top-level run this run belongs to.
    pub fn root_id(&self) -> RunId {
        self.inner.run.root_id
    }

    /// How many times a worker has claimed this run (1 on the first execution).
    pub fn claims(&self) -> i32 {
        self.inner.run.claims
    }

    /// True once the run has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.stop.get() == Some(StopReason::Cancel)
    }

    fn claim_name(&self, name: &str) -> Result<(), WfError> {
        if name.is_empty() {
            return Err(WfError::Nondeterminism(
                "a step name must not be empty".into(),
            ));
        }
        if !self.lock().seen.insert(name.to_string()) {
            return Err(WfError::Nondeterminism(format!(
                "the name `{name}` was used twice in one execution; names must be unique within a run \
                 (put the loop index or the item's id in the name)"
            )));
        }
        Ok(())
    }

    fn check_live(&self) -> Result<(), WfError> {
        if let Some(f) = &self.lock().fatal {
            return Err(f.clone());
        }
        match self.inner.stop.get() {
            Some(StopReason::Cancel) => Err(WfError::Cancelled),
            Some(StopReason::LeaseLost) => Err(WfError::LeaseLost),
            Some(StopReason::Shutdown) => {
                Err(WfError::Engine("the worker is shutting down".into()))
            }
            None => Ok(()),
        }
    }

    fn set_fatal(&self, e: WfError) -> WfError {
        let mut st = self.lock();
        if st.fatal.is_none() {
            st.fatal = Some(e.clone());
        }
        e
    }

    fn entry_state(&self, name: &str) -> Option<EntryState> {
        self.lock()
            .journal
            .entries
            .get(name)
            .map(|e| e.state.clone())
    }

    fn nondeterminism(name: &str, found: &EntryState, wanted: &str) -> WfError {
        WfError::Nondeterminism(format!(
            "`{name}` is journaled as {}, but the workflow now uses it as {wanted}",
            found.label()
        ))
    }

    fn prepare(
        &self,
        step: &str,
        events: Vec<EventData>,
        cost: Cost,
        release_slot: Option<String>,
    ) -> AppendOp {
        let now = Utc::now();
        let mut st = self.lock();
        let mut out = Vec::with_capacity(events.len());
        for data in events {
            st.next_seq += 1;
            let seq = st.next_seq;
            // Applied before the commit is acknowledged: nothing reads it before we return,
            // and a failed commit ends this execution.
            st.journal.apply(seq, Some(step), &data);
            out.push(NewEvent {
                seq,
                at: now,
                step: Some(step.to_string()),
                data,
            });
        }
        AppendOp {
            run_id: self.inner.run.id,
            epoch: self.inner.run.lease_epoch,
            events: out,
            cost,
            release_slot: release_slot.map(|k| (k, step.to_string())),
            finish: None,
        }
    }

    /// Journal events about `step` and wait until they are committed.
    async fn commit(
        &self,
        step: &str,
        events: Vec<EventData>,
        cost: Cost,
        release_slot: Option<String>,
    ) -> Result<(), WfError> {
        let op = self.prepare(step, events, cost, release_slot);
        match self.inner.shared.committer.commit(op).await {
            CommitResult::Committed => Ok(()),
            CommitResult::Fenced => {
                self.inner.stop.lease_lost();
                self.inner.token.cancel();
                Err(self.set_fatal(WfError::LeaseLost))
            }
            CommitResult::Failed(m) => Err(self.set_fatal(WfError::Engine(m))),
        }
    }

    /// Queue events about `step` for the next commit without waiting for it.
    fn enqueue(&self, step: &str, events: Vec<EventData>) {
        let op = self.prepare(step, events, Cost::default(), None);
        self.inner.shared.committer.enqueue(op);
    }

    fn suspend_until(&self, at: DateTime<Utc>, reason: String) -> WfError {
        let mut st = self.lock();
        st.susp.active = true;
        st.susp.wake_at(at);
        st.susp.reasons.push(reason);
        WfError::Suspended
    }

    fn suspend_signal(
        &self,
        signal: &str,
        deadline: Option<DateTime<Utc>>,
        reason: String,
    ) -> WfError {
        let mut st = self.lock();
        st.susp.active = true;
        st.susp.signals.insert(signal.to_string());
        if let Some(d) = deadline {
            st.susp.wake_at(d);
        }
        st.susp.reasons.push(reason);
        WfError::Suspended
    }

    fn suspend_slot(&self, key: &str, step: &str) -> WfError {
        let mut st = self.lock();
        st.susp.active = true;
        st.susp.slots.insert(key.to_string());
        // Releases wake waiters directly; this only bounds the damage of a missed wake.
        st.susp.wake_at(Utc::now() + Duration::from_secs(10));
        st.susp.reasons.push(format!(
            "step `{step}` waits for a `{key}` concurrency slot"
        ));
        WfError::Suspended
    }

    /// Run a step with the default options (3 attempts, exponential backoff from 1 s).
    ///
    /// The closure runs only if the step is not journaled yet; its result is committed before
    /// this returns.
    pub async fn step<T, F, Fut>(&self, name: impl Into<String>, f: F) -> Result<T, WfError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce(StepCtx) -> Fut + Send,
        Fut: Future<Output = Result<T, StepError>> + Send,
    {
        self.step_with(name, StepOptions::default(), f).await
    }

    /// Run a step with options.
    pub async fn step_with<T, F, Fut>(
        &self,
        name: impl Into<String>,
        opts: StepOptions,
        f: F,
    ) -> Result<T, WfError>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce(StepCtx) -> Fut + Send,
        Fut: Future<Output = Result<T, StepError>> + Send,
    {
        let name = name.into();
        self.claim_name(&name)?;
        self.check_live()?;
        let shared = self.inner.shared.clone();
        let now = Utc::now();
        let (attempt, base) = {
            let st = self.lock();
            match st.journal.entries.get(&name) {
                None => (1, 0),
                Some(e) => match &e.state {
                    EntryState::Succeeded(v) => {
                        let v = decode(&name, v);
                        drop(st);
                        shared
                            .metrics
                            .steps_replayed
                            .fetch_add(1, Ordering::Relaxed);
                        return v;
                    }
                    EntryState::Failed {
                        error,
                        retry_at: None,
                    } => {
                        return Err(WfError::Step {
                            step: name,
                            attempt: e.attempts,
                            error: Box::new(error.clone()),
                        });
                    }
                    EntryState::Failed {
                        retry_at: Some(t), ..
                    } if *t > now => {
                        let t = *t;
                        drop(st);
                        return Err(self.suspend_until(
                            t,
                            format!("step `{name}` retries at {}", t.to_rfc3339()),
                        ));
                    }
                    EntryState::Started | EntryState::Pending | EntryState::Failed { .. } => {
                        (e.attempts + 1, e.attempt_base)
                    }
                    other => return Err(Self::nondeterminism(&name, other, "a step")),
                },
            }
        };
        let policy = &opts.retry;
        if attempt - base > policy.max_attempts {
            // Every allowed attempt started and none finished: the worker died inside them.
            let error = StepError::fatal(
                "attempts_exhausted",
                format!(
                    "step `{name}` started {} attempt(s) that never finished (the worker died inside them); \
                     fix the cause and retry the step",
                    attempt - 1 - base
                ),
            );
            self.commit(
                &name,
                vec![EventData::StepFailed {
                    attempt: attempt - 1,
                    error: error.clone(),
                    retry_at: None,
                    cost: None,
                    duration_ms: 0,
                }],
                Cost::default(),
                None,
            )
            .await?;
            shared.metrics.steps_failed.fetch_add(1, Ordering::Relaxed);
            return Err(WfError::Step {
                step: name,
                attempt: attempt - 1,
                error: Box::new(error),
            });
        }
        if let Some(budget) = self.inner.budget {
            let (spent, current) = shared.store.tree_cost(self.inner.run.root_id).await?;
            let budget = current.unwrap_or(budget);
            if spent >= budget {
                self.commit(
                    &name,
                    vec![EventData::BudgetExceeded {
                        budget_micros: budget,
                        spent_micros: spent,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                return Err(WfError::BudgetExceeded {
                    budget_micros: budget,
                    spent_micros: spent,
                });
            }
        }
        if let Some(key) = &opts.concurrency_key {
            match shared
                .store
                .acquire_slot(
                    key,
                    self.inner.run.id,
                    self.inner.run.lease_epoch,
                    &name,
                    now,
                )
                .await?
            {
                SlotOutcome::Acquired => self.lock().took_slots = true,
                SlotOutcome::Full => return Err(self.suspend_slot(key, &name)),
                SlotOutcome::Fenced => {
                    self.inner.stop.lease_lost();
                    return Err(self.set_fatal(WfError::LeaseLost));
                }
            }
        }
        let idempotency_key = format!("{}/{}", self.inner.run.id, name);
        let start = vec![EventData::StepStarted {
            attempt,
            idempotency_key: idempotency_key.clone(),
        }];
        if opts.durable_start || opts.concurrency_key.is_some() {
            self.commit(&name, start, Cost::default(), None).await?;
        } else {
            // Queued ahead of the step's outcome, so it is committed no later than the outcome
            // (usually in the same commit); a crash inside the step a millisecond after it began
            // still finds the attempt counted.
            self.enqueue(&name, start);
        }
        let cost = Arc::new(Mutex::new(Cost::default()));
        let sc = StepCtx {
            run_id: self.inner.run.id,
            step: name.clone(),
            attempt,
            idempotency_key,
            cancel: self.inner.token.child_token(),
            cost: cost.clone(),
        };
        let started = Instant::now();
        let timeout = opts.timeout;
        let fut = async move {
            match timeout {
                Some(d) => match tokio::time::timeout(d, f(sc)).await {
                    Ok(r) => r,
                    Err(_) => Err(StepError::retryable(
                        "timeout",
                        format!("the attempt took longer than {d:?}"),
                    )),
                },
                None => f(sc).await,
            }
        };
        let mut fut = std::pin::pin!(fut);
        let res = tokio::select! {
            r = &mut fut => r,
            _ = self.inner.token.cancelled() => {
                // The step saw the token too; give it a moment to stop cleanly (and to report
                // what it already spent) before it is dropped.
                match tokio::time::timeout(shared.config.cancel_grace, &mut fut).await {
                    Ok(r) => r,
                    Err(_) => Err(StepError::fatal("cancelled", "the run was cancelled while the step ran")),
                }
            }
        };
        let elapsed = started.elapsed();
        shared.metrics.record_step(elapsed);
        let duration_ms = elapsed.as_millis() as u64;
        let cost = *cost.lock().unwrap_or_else(|e| e.into_inner());
        let stop = self.inner.stop.get();
        if stop == Some(StopReason::LeaseLost) {
            return Err(self.set_fatal(WfError::LeaseLost));
        }
        let release = opts.concurrency_key.clone();
        let cost_opt = (!cost.is_zero()).then_some(cost);
        match res {
            Ok(v) => {
                let out = match serde_json::to_value(&v) {
                    Ok(out) => out,
                    Err(e) => {
                        return self
                            .fail_step(
                                &name,
                                attempt,
                                StepError::from(e),
                                cost,
                                duration_ms,
                                release,
                            )
                            .await;
                    }
                };
                let size = json_size(&out);
                if size > shared.config.max_result_bytes {
                    let error = StepError::fatal(
                        "result_too_large",
                        format!(
                            "step `{name}` returned {size} bytes; the journal keeps at most {} bytes per result. \
                             Store the data as a blob and return its reference (key or URL) instead",
                            shared.config.max_result_bytes
                        ),
                    );
                    return self
                        .fail_step(&name, attempt, error, cost, duration_ms, release)
                        .await;
                }
                let value = decode(&name, &out)?;
                self.commit(
                    &name,
                    vec![EventData::StepSucceeded {
                        attempt,
                        output: out,
                        cost: cost_opt,
                        duration_ms,
                    }],
                    cost,
                    release,
                )
                .await?;
                shared
                    .metrics
                    .steps_succeeded
                    .fetch_add(1, Ordering::Relaxed);
                Ok(value)
            }
            Err(error) => {
                let cancelled = stop == Some(StopReason::Cancel);
                let retry = !cancelled
                    && error.retryable
                    && !policy.non_retryable.contains(&error.kind)
                    && attempt - base < policy.max_attempts;
                if retry {
                    let mut delay = policy.delay(attempt - base);
                    if let Some(ms) = error.retry_after_ms {
                        delay = delay.max(Duration::from_millis(ms));
                    }
                    let at = crate::model::later(Utc::now(), delay);
                    self.commit(
                        &name,
                        vec![EventData::StepFailed {
                            attempt,
                            error: error.clone(),
                            retry_at: Some(at),
                            cost: cost_opt,
                            duration_ms,
                        }],
                        cost,
                        release,
                    )
                    .await?;
                    shared.metrics.steps_retried.fetch_add(1, Ordering::Relaxed);
                    Err(self.suspend_until(
                        at,
                        format!(
                            "step `{name}` failed ({}) and retries at {}",
                            error.kind,
                            at.to_rfc3339()
                        ),
                    ))
                } else {
                    let r = self
                        .fail_step(&name, attempt, error, cost, duration_ms, release)
                        .await;
                    if cancelled {
                        Err(WfError::Cancelled)
                    } else {
                        r
                    }
                }
            }
        }
    }

    async fn fail_step<T>(
        &self,
        name: &str,
        attempt: u32,
        error: StepError,
        cost: Cost,
        duration_ms: u64,
        release: Option<String>,
    ) -> Result<T, WfError> {
        self.commit(
            name,
            vec![EventData::StepFailed {
                attempt,
                error: error.clone(),
                retry_at: None,
                cost: (!cost.is_zero()).then_some(cost),
                duration_ms,
            }],
            cost,
            release,
        )
        .await?;
        self.inner
            .shared
            .metrics
            .steps_failed
            .fetch_add(1, Ordering::Relaxed);
        Err(WfError::Step {
            step: name.to_string(),
            attempt,
            error: Box::new(error),
        })
    }

    /// Sleep durably: the run is suspended in the database until `duration` has passed since
    /// the sleep first began (a crash does not restart the clock).
    pub async fn sleep(&self, name: impl Into<String>, duration: Duration) -> Result<(), WfError> {
        let name = name.into();
        self.claim_name(&name)?;
        self.check_live()?;
        let until = match self.entry_state(&name) {
            Some(EntryState::Timer { until }) => until,
            None => {
                let until = crate::model::later(Utc::now(), duration);
                self.commit(
                    &name,
                    vec![EventData::TimerStarted { until }],
                    Cost::default(),
                    None,
                )
                .await?;
                until
            }
            Some(other) => return Err(Self::nondeterminism(&name, &other, "a timer")),
        };
        if until <= Utc::now() {
            Ok(())
        } else {
            Err(self.suspend_until(
                until,
                format!("`{name}` sleeps until {}", until.to_rfc3339()),
            ))
        }
    }

    /// Wait for the signal `signal` (a run-addressed or name-addressed signal). Returns `None`
    /// when `timeout` passes first. A signal that arrived before the wait began is delivered.
    pub async fn wait_signal<T: DeserializeOwned>(
        &self,
        name: impl Into<String>,
        signal: impl Into<String>,
        timeout: Option<Duration>,
    ) -> Result<Option<T>, WfError> {
        let name = name.into();
        let signal = signal.into();
        self.claim_name(&name)?;
        self.check_live()?;
        let deadline = match self.entry_state(&name) {
            Some(EntryState::Received { payload, .. }) => {
                return decode_signal(&name, &payload).map(Some);
            }
            Some(EntryState::TimedOut) => return Ok(None),
            Some(EntryState::Waiting {
                signal: s,
                deadline,
            }) if s == signal => deadline,
            None => {
                let deadline = timeout.map(|d| crate::model::later(Utc::now(), d));
                self.commit(
                    &name,
                    vec![EventData::WaitStarted {
                        signal: signal.clone(),
                        deadline,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                deadline
            }
            Some(other) => return Err(Self::nondeterminism(&name, &other, "a signal wait")),
        };
        let consumed = self.lock().journal.consumed_signals();
        let found = self
            .inner
            .shared
            .store
            .find_signal(self.inner.run.id, &signal, &consumed)
            .await?;
        if let Some(sig) = found {
            let value = decode_signal(&name, &sig.payload);
            self.commit(
                &name,
                vec![EventData::SignalReceived {
                    signal,
                    signal_id: sig.id,
                    payload: sig.payload,
                }],
                Cost::default(),
                None,
            )
            .await?;
            return value.map(Some);
        }
        if let Some(d) = deadline
            && d <= Utc::now()
        {
            self.commit(
                &name,
                vec![EventData::WaitTimedOut { signal }],
                Cost::default(),
                None,
            )
            .await?;
            return Ok(None);
        }
        let reason = match deadline {
            Some(d) => format!(
                "`{name}` waits for signal `{signal}` until {}",
                d.to_rfc3339()
            ),
            None => format!("`{name}` waits for signal `{signal}`"),
        };
        Err(self.suspend_signal(&signal, deadline, reason))
    }

    /// Start a child run of workflow `W` (idempotent: a parent's step starts at most one
    /// child, so re-executing it finds the same child). Join it with [`ChildHandle::join`].
    pub async fn start_child<W: crate::Workflow>(
        &self,
        name: impl Into<String>,
        input: &W::Input,
    ) -> Result<ChildHandle<W::Output>, WfError> {
        let input = serde_json::to_value(input)
            .map_err(|e| WfError::failed("bad_input", format!("child input: {e}")))?;
        let h = self.start_child_raw(name, W::NAME, input).await?;
        Ok(ChildHandle {
            step: h.step,
            child_id: h.child_id,
            ctx: h.ctx,
            _t: PhantomData,
        })
    }

    /// [`Ctx::start_child`] by workflow name, with a JSON input.
    pub async fn start_child_raw(
        &self,
        name: impl Into<String>,
        workflow: &str,
        input: Value,
    ) -> Result<ChildHandle<Value>, WfError> {
        let name = name.into();
        self.claim_name(&name)?;
        self.check_live()?;
        let child_id = match self.entry_state(&name) {
            Some(EntryState::Child { child_id }) => child_id,
            None => {
                let now = Utc::now();
                let (child, _) = self
                    .inner
                    .shared
                    .store
                    .create_run(NewRun {
                        id: RunId::new(),
                        workflow: workflow.to_string(),
                        exclusive_key: None,
                        idempotency_key: None,
                        scope: self.inner.run.scope.clone(),
                        input,
                        parent_id: Some(self.inner.run.id),
                        parent_step: Some(name.clone()),
                        root_id: self.inner.run.root_id,
                        budget_micros: None,
                        now,
                        ready_at: now,
                    })
                    .await?;
                let child_id = child.id;
                self.commit(
                    &name,
                    vec![EventData::ChildStarted {
                        child_id,
                        workflow: workflow.to_string(),
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                self.inner.shared.wake.notify_waiters();
                child_id
            }
            Some(other) => return Err(Self::nondeterminism(&name, &other, "a child run")),
        };
        Ok(ChildHandle {
            step: name,
            child_id,
            ctx: self.clone(),
            _t: PhantomData,
        })
    }

    /// Start a child run and wait for its output.
    pub async fn child<W: crate::Workflow>(
        &self,
        name: impl Into<String>,
        input: &W::Input,
    ) -> Result<W::Output, WfError> {
        self.start_child::<W>(name, input).await?.join().await
    }

    /// A loop bounded durably by `max` iterations: each [`Bounded::next`] journals a marker, so
    /// the count survives crashes; the iteration after the last allowed one fails the run with
    /// `LimitExceeded` naming `limit`.
    pub fn bounded(&self, limit: impl Into<String>, max: u32) -> Bounded {
        Bounded {
            ctx: self.clone(),
            limit: limit.into(),
            max,
            n: 0,
        }
    }

    /// Run `f` until it returns [`Attempt::Done`], at most `max` times. Each attempt journals a
    /// marker first, so the count survives crashes; when all are spent the run fails with
    /// `LimitExceeded` naming `limit` and the last rejection. Name the steps inside `f` with
    /// the attempt number it receives.
    pub async fn attempts<T, F, Fut>(
        &self,
        limit: impl Into<String>,
        max: u32,
        mut f: F,
    ) -> Result<T, WfError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, WfError>>,
    {
        let limit = limit.into();
        let mut last = None;
        for n in 1.. {
            match self.marker(&limit, n, max).await {
                Ok(()) => {}
                Err(WfError::LimitExceeded { limit, max, .. }) => {
                    return Err(WfError::LimitExceeded { limit, max, last });
                }
                Err(e) => return Err(e),
            }
            match f(n).await? {
                Attempt::Done(v) => return Ok(v),
                Attempt::Retry(reason) => last = Some(reason),
            }
        }
        unreachable!("the marker stops the loop at max + 1")
    }

    async fn marker(&self, limit: &str, n: u32, max: u32) -> Result<(), WfError> {
        let name = format!("{limit}#{n}");
        self.claim_name(&name)?;
        self.check_live()?;
        match self.entry_state(&name) {
            Some(EntryState::Marker) => Ok(()),
            Some(EntryState::LimitExceeded { max }) => Err(WfError::LimitExceeded {
                limit: limit.to_string(),
                max,
                last: None,
            }),
            None if n > max => {
                self.commit(
                    &name,
                    vec![EventData::LimitExceeded {
                        limit: limit.to_string(),
                        max,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                Err(WfError::LimitExceeded {
                    limit: limit.to_string(),
                    max,
                    last: None,
                })
            }
            None => {
                self.commit(
                    &name,
                    vec![EventData::Marker {
                        limit: limit.to_string(),
                        n,
                    }],
                    Cost::default(),
                    None,
                )
                .await
            }
            Some(other) => Err(Self::nondeterminism(&name, &other, "a limit marker")),
        }
    }

    pub(crate) fn take_outcome(&self) -> Outcome {
        let mut st = self.lock();
        Outcome {
            consumed: st.journal.consumed_signals(),
            fatal: st.fatal.clone(),
            susp: std::mem::take(&mut st.susp),
            took_slots: st.took_slots,
            next_seq: st.next_seq,
        }
    }
}

fn decode_signal<T: DeserializeOwned>(name: &str, v: &Value) -> Result<T, WfError> {
    T::deserialize(v).map_err(|e| WfError::Workflow {
        kind: "bad_signal".into(),
        message: format!("the signal received by `{name}` has an unexpected payload: {e}"),
        details: v.clone(),
    })
}

/// A durable loop bound (see [`Ctx::bounded`]).
#[derive(Debug)]
pub struct Bounded {
    ctx: Ctx,
    limit: String,
    max: u32,
    n: u32,
}

impl Bounded {
    /// Begin the next iteration; returns its 1-based number.
    pub async fn next(&mut self) -> Result<u32, WfError> {
        self.n += 1;
        self.ctx.marker(&self.limit, self.n, self.max).await?;
        Ok(self.n)
    }
    /// Iterations begun so far.
    pub fn count(&self) -> u32 {
        self.n
    }
}

/// A started child run.
#[derive(Debug)]
pub struct ChildHandle<O> {
    step: String,
    child_id: RunId,
    ctx: Ctx,
    _t: PhantomData<fn() -> O>,
}

#[derive(serde::Deserialize)]
struct ChildOutcome {
    status: RunStatus,
    output: Option<Value>,
    error: Option<RunError>,
}

impl<O: DeserializeOwned> ChildHandle<O> {
    /// The child's id.
    pub fn id(&self) -> RunId {
        self.child_id
    }

    /// Wait for the child to finish; its failure or cancellation is [`WfError::ChildFailed`].
    pub async fn join(self) -> Result<O, WfError> {
        let name = format!("{}/join", self.step);
        self.join_step(name).await
    }

    /// Wait for the child's next outcome under a step name of your choice. A child that failed
    /// and was then retried by a person reports again: join it again with a new name to wait
    /// for that outcome (each outcome is consumed once, oldest first).
    pub async fn join_step(&self, name: impl Into<String>) -> Result<O, WfError> {
        let outcome: ChildOutcome = self
            .ctx
            .wait_signal(name, child_signal_name(self.child_id), None)
            .await?
            .ok_or_else(|| WfError::Engine("a join without deadline timed out".into()))?;
        match outcome.status {
            RunStatus::Completed => decode(
                &format!("{}/join", self.step),
                &outcome.output.unwrap_or(Value::Null),
            ),
            _ => Err(WfError::ChildFailed {
                step: self.step.clone(),
                child: self.child_id,
                error: Box::new(outcome.error.unwrap_or_else(|| {
                    RunError::new(outcome.status.as_str(), "the child did not complete")
                })),
            }),
        }
    }
}

fn combine_errors(errs: impl IntoIterator<Item = WfError>) -> WfError {
    let mut suspended = false;
    let mut first = None;
    for e in errs {
        match e {
            WfError::Suspended => suspended = true,
            WfError::LeaseLost | WfError::Engine(_) => return e,
            other => {
                if first.is_none() {
                    first = Some(other)
                }
            }
        }
    }
    match first {
        Some(e) => e,
        None if suspended => WfError::Suspended,
        None => WfError::Engine("join of no errors".into()),
    }
}

/// Run branches concurrently and wait for all of them (never cancelling a branch half-way
/// because another suspended). The result is the first real error, else `Suspended` if any
/// branch must wait, else every value in order. Use this instead of `try_join_all`.
pub async fn join_all<T, Fut>(futs: impl IntoIterator<Item = Fut>) -> Result<Vec<T>, WfError>
where
    Fut: Future<Output = Result<T, WfError>>,
{
    let results = futures::future::join_all(futs).await;
    if results.iter().all(|r| r.is_ok()) {
        return Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|_| unreachable!()))
            .collect());
    }
    Err(combine_errors(results.into_iter().filter_map(|r| r.err())))
}

/// Two branches of different types; see [`join_all`].
pub async fn join2<A, B, FA, FB>(a: FA, b: FB) -> Result<(A, B), WfError>
where
    FA: Future<Output = Result<A, WfError>>,
    FB: Future<Output = Result<B, WfError>>,
{
    match futures::join!(a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (ra, rb) => Err(combine_errors([ra.err(), rb.err()].into_iter().flatten())),
    }
}

/// Three branches of different types; see [`join_all`].
pub async fn join3<A, B, C, FA, FB, FC>(a: FA, b: FB, c: FC) -> Result<(A, B, C), WfError>
where
    FA: Future<Output = Result<A, WfError>>,
    FB: Future<Output = Result<B, WfError>>,
    FC: Future<Output = Result<C, WfError>>,
{
    match futures::join!(a, b, c) {
        (Ok(a), Ok(b), Ok(c)) => Ok((a, b, c)),
        (ra, rb, rc) => Err(combine_errors(
            [ra.err(), rb.err(), rc.err()].into_iter().flatten(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default().backoff(Duration::from_millis(100), Duration::from_secs(1))
        };
        assert_eq!(p.delay(1), Duration::from_millis(100));
        assert_eq!(p.delay(2), Duration::from_millis(200));
        assert_eq!(p.delay(3), Duration::from_millis(400));
        assert_eq!(p.delay(10), Duration::from_secs(1));
    }

    #[test]
    fn jitter_only_shortens_within_its_share() {
        let p = RetryPolicy::default().backoff(Duration::from_secs(10), Duration::from_secs(10));
        for _ in 0..100 {
            let d = p.delay(1);
            assert!(
                d <= Duration::from_secs(10) && d >= Duration::from_secs(8),
                "{d:?}"
            );
        }
    }

    #[test]
    fn real_errors_win_over_suspension_in_joins() {
        let e = combine_errors([WfError::Suspended, WfError::failed("x", "boom")]);
        assert!(matches!(e, WfError::Workflow { .. }));
        let e = combine_errors([WfError::Suspended, WfError::Suspended]);
        assert!(e.is_suspended());
        let e = combine_errors([WfError::failed("x", "boom"), WfError::LeaseLost]);
        assert!(matches!(e, WfError::LeaseLost));
    }
}
