//! What a step is given: its retry policy and options, and the context its code receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::model::{Cost, RunId};

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
    /// Keep the concurrency slot after the step succeeds, until [`crate::Ctx::release_slot`]
    /// or the run's end: for a step that starts work which goes on elsewhere (a provider's
    /// job), so that the limit bounds that work and not only the call that started it.
    pub hold_slot: bool,
    /// Give up an attempt after this long (a retryable `timeout` error).
    pub timeout: Option<Duration>,
    /// Wait until the attempt's start (with its idempotency key) is committed before calling.
    /// Every attempt's start is journaled; by default it rides along with the next commit
    /// instead of costing one of its own. Turn this on for paid calls, so that the intent is on
    /// disk before any money is spent. Steps with a concurrency key always wait.
    pub durable_start: bool,
    /// Consecutive attempts cut short by a dying worker after which the step fails as a crash
    /// loop; `None` takes the engine's (`EngineConfig::crash_loop_limit`).
    pub crash_loop: Option<u32>,
    /// What one attempt is expected to cost, micro-dollars: the step does not start when the
    /// run's spend plus this would pass its budget, so a budget is crossed by at most the
    /// estimate's error, never by a whole step.
    pub estimate_micros: i64,
    /// Among the runs waiting for a slot of the step's concurrency key, the higher goes first
    /// (default 0): a freed slot wakes the highest waiter, and a run reaching the step finds
    /// the slot taken while a higher one waits. Equal priorities are woken in the order they
    /// began waiting. The film gives the scenes of its longest chains of dependent scenes the
    /// highest (decision 0020).
    pub priority: i32,
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
    /// Take a slot of `key` and keep it after the step succeeds (see
    /// [`StepOptions::hold_slot`]); a failed attempt gives it back as usual.
    pub fn concurrency_held(mut self, key: impl Into<String>) -> Self {
        self.concurrency_key = Some(key.into());
        self.hold_slot = true;
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
    /// What one attempt is expected to cost, dollars (see [`StepOptions::estimate_micros`]).
    pub fn estimate(mut self, usd: f64) -> Self {
        self.estimate_micros = (usd.max(0.0) * 1e6).round() as i64;
        self
    }
    /// Set the step's priority for its concurrency slot (see [`StepOptions::priority`]).
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = p;
        self
    }
    /// Fail the step as a crash loop after `n` consecutive interrupted attempts (at least 1).
    pub fn crash_loop(mut self, n: u32) -> Self {
        self.crash_loop = Some(n.max(1));
        self
    }
}

/// What a step's code receives.
#[derive(Debug, Clone)]
pub struct StepCtx {
    pub(super) run_id: RunId,
    pub(super) step: String,
    pub(super) attempt: u32,
    pub(super) idempotency_key: String,
    pub(super) cancel: CancellationToken,
    pub(super) cost: Arc<Mutex<Cost>>,
    pub(super) resumed: Option<serde_json::Value>,
    pub(super) ctx: super::Ctx,
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
    /// What an earlier attempt of this step kept with [`StepCtx::checkpoint`] before its worker
    /// died inside it: a provider's request id to poll instead of submitting (and paying)
    /// again. `None` on a first attempt and after an attempt that returned an error.
    pub fn resumed(&self) -> Option<&serde_json::Value> {
        self.resumed.as_ref()
    }

    /// Keep `data` durably before going on, so that if this worker dies inside the step, the
    /// next attempt gets it from [`StepCtx::resumed`] (a JSON object is merged key by key with
    /// what was kept before). Use it right after a call that pays and cannot be found again:
    /// a provider's job id. Each call is one journal write (decision 0015).
    pub async fn checkpoint(&self, data: serde_json::Value) -> Result<(), crate::StepError> {
        self.ctx
            .commit(
                &self.step,
                vec![crate::model::EventData::StepCheckpoint {
                    attempt: self.attempt,
                    data,
                }],
                Cost::default(),
                None,
            )
            .await
            .map_err(|e| crate::StepError::retryable("checkpoint", e.to_string()))
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
