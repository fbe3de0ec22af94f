//! The runtime layer under the context, the worker and the engine handle: what they share in
//! one process ([`Shared`]), the handles of runs executing here, and why a run must stop. It
//! imports nothing above it, so the modules that use it form no circle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::committer::Committer;
use crate::error::{EngineError, Result, RunError};
use crate::metrics::Metrics;
use crate::model::{EventData, RunId, RunStatus};
use crate::store::{Guard, Store, Target, Transition, Wakeups};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a claimed run is leased before another worker may take it over if this
    /// worker stops heart-beating.
    pub lease: Duration,
    /// How often leases are extended (default: a third of the lease).
    pub heartbeat: Option<Duration>,
    /// How often an idle worker looks for due runs when nothing wakes it.
    pub poll_interval: Duration,
    /// Largest step result the journal accepts, in bytes of JSON.
    pub max_result_bytes: usize,
    /// Tasks committing checkpoint batches concurrently. One is best on a single disk: every
    /// commit waits for the WAL flush, and a second batch in flight splits the first.
    pub committers: usize,
    /// Most checkpoints in one commit.
    pub max_batch: usize,
    /// Longest a checkpoint waits for others to share its commit (it goes out at once when
    /// every executing run has one waiting).
    pub commit_delay: Duration,
    /// How long a cancelled step may take to stop before it is dropped.
    pub cancel_grace: Duration,
    /// How long a stopping worker waits for its runs to reach a checkpoint.
    pub shutdown_grace: Duration,
    /// Database connections (Postgres).
    pub pool_size: u32,
    /// Consecutive attempts of one step cut short by a dying worker after which the step
    /// fails as a crash loop (a step may set its own, `StepOptions::crash_loop`; decision 0014).
    pub crash_loop_limit: u32,
    /// The wait before the second consecutive re-run of an interrupted attempt; it doubles for
    /// each further one, up to a minute. The first re-run is at once.
    pub crash_loop_backoff: Duration,
    /// This build, recorded on every run it starts (the application's version and commit).
    pub build: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease: Duration::from_secs(15),
            heartbeat: None,
            poll_interval: Duration::from_secs(1),
            max_result_bytes: 256 * 1024,
            committers: 1,
            max_batch: 512,
            commit_delay: Duration::from_millis(1),
            cancel_grace: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            pool_size: 24,
            crash_loop_limit: 10,
            crash_loop_backoff: Duration::from_secs(1),
            build: concat!("slate-engine ", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl EngineConfig {
    pub(crate) fn heartbeat_every(&self) -> Duration {
        self.heartbeat.unwrap_or(self.lease / 3)
    }

    /// How long after the last interrupted attempt began the next one may start, when
    /// `streak` attempts in a row were interrupted.
    pub(crate) fn crash_loop_delay(&self, streak: u32) -> Duration {
        if streak <= 1 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (streak - 2).min(16);
        self.crash_loop_backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(60))
    }
}

/// Why a run's execution must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A person or a parent cancelled it.
    Cancel,
    /// Another worker holds the run now: this execution must not write.
    LeaseLost,
    /// The worker is shutting down: finish the step, then let the run go.
    Shutdown,
}

/// A run's stop reason, set once (the first reason wins: a run cancelled by a person is not
/// "lost" afterwards) except that a lost lease always wins, since nothing may be written then.
#[derive(Debug, Default)]
pub(crate) struct StopFlag(AtomicU8);

impl StopFlag {
    const NONE: u8 = 0;

    fn code(r: StopReason) -> u8 {
        match r {
            StopReason::Cancel => 1,
            StopReason::LeaseLost => 2,
            StopReason::Shutdown => 3,
        }
    }

    /// Set the reason unless one is set already.
    pub(crate) fn set(&self, r: StopReason) {
        let _ = self.0.compare_exchange(
            Self::NONE,
            Self::code(r),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The lease is lost, whatever else was asked.
    pub(crate) fn lease_lost(&self) {
        self.0
            .store(Self::code(StopReason::LeaseLost), Ordering::Release);
    }

    /// Why it must stop, if it must.
    pub(crate) fn get(&self) -> Option<StopReason> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(StopReason::Cancel),
            2 => Some(StopReason::LeaseLost),
            3 => Some(StopReason::Shutdown),
            _ => None,
        }
    }
}

/// A run executing in this process, as the rest of the process reaches it.
pub(crate) struct RunHandle {
    pub worker: Arc<str>,
    pub epoch: i64,
    pub token: CancellationToken,
    pub stop: Arc<StopFlag>,
}

impl RunHandle {
    pub(crate) fn stop(&self, reason: StopReason) {
        self.stop.set(reason);
        // A shutdown lets the running step finish; the others interrupt it.
        if reason != StopReason::Shutdown {
            self.token.cancel();
        }
    }
}

/// What every part of the engine in this process shares: the store, the committer, settings,
/// metrics, wake-ups and the runs executing here.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    /// The workflows registered here (their versions are recorded on the runs they start).
    pub registry: Arc<crate::workflow::Registry>,
    pub committer: Committer,
    pub config: EngineConfig,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    pub active: Mutex<HashMap<RunId, RunHandle>>,
    /// Runs executing in this process (all workers); the committer reads it.
    pub executing: Arc<AtomicUsize>,
    pub listening: AtomicBool,
    /// Estimated costs of the steps running in this process, by top-level run: what a budget
    /// check adds to what is already spent, so that parallel branches do not all pass it.
    pub reserved: Arc<Mutex<HashMap<RunId, i64>>>,
}

/// A step's estimate held against its run tree's budget until its outcome (and cost) is
/// committed.
pub(crate) struct Reservation {
    reserved: Arc<Mutex<HashMap<RunId, i64>>>,
    root: RunId,
    micros: i64,
}

impl Reservation {
    /// Take charge of `micros` already added to `reserved` for `root`.
    pub(crate) fn adopt(
        reserved: &Arc<Mutex<HashMap<RunId, i64>>>,
        root: RunId,
        micros: i64,
    ) -> Self {
        Reservation {
            reserved: reserved.clone(),
            root,
            micros,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut r = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = r.get_mut(&self.root) {
            *v -= self.micros;
            if *v <= 0 {
                r.remove(&self.root);
            }
        }
    }
}

impl Shared {
    pub(crate) fn stop_local(&self, run: RunId, reason: StopReason) -> bool {
        let active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        match active.get(&run) {
            Some(h) => {
                h.stop(reason);
                true
            }
            None => false,
        }
    }

    /// Start the database's wake-ups once per process.
    pub(crate) async fn ensure_listening(self: &Arc<Self>) {
        if self.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<RunId>();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Some(shared) = weak.upgrade() else { break };
                shared.stop_local(id, StopReason::Cancel);
            }
        });
        if let Err(e) = self
            .store
            .listen(Wakeups {
                wake: self.wake.clone(),
                cancel: tx,
            })
            .await
        {
            tracing::warn!(error = %e, "could not LISTEN for wake-ups; workers will poll");
            self.listening.store(false, Ordering::Release);
        }
    }
}

/// Outcome of a cancellation.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CancelOutcome {
    /// Runs cancelled at once (they were not executing).
    pub cancelled: Vec<RunId>,
    /// Runs executing now, asked to stop at their next step.
    pub requested: Vec<RunId>,
}

impl Shared {
    /// Cancel a run and its descendants (see [`crate::Engine::cancel`]).
    pub(crate) async fn cancel_tree(&self, id: RunId, reason: &str) -> Result<CancelOutcome> {
        let run = self
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))?;
        if run.status.is_terminal() && run.status != RunStatus::Blocked {
            return Err(EngineError::Conflict(format!(
                "run {id} is already {}; there is nothing to cancel",
                run.status
            )));
        }
        let mut out = CancelOutcome::default();
        for rid in self.store.descendants(id).await? {
            if self.cancel_one(rid, reason).await? {
                out.cancelled.push(rid);
            } else if self.store.request_cancel(rid, reason).await? {
                self.stop_local(rid, StopReason::Cancel);
                out.requested.push(rid);
            } else if let Some(r) = self.store.get_run(rid).await?
                && !r.status.is_terminal()
            {
                // It changed state between the two attempts; try once more.
                if self.cancel_one(rid, reason).await? {
                    out.cancelled.push(rid);
                } else if self.store.request_cancel(rid, reason).await? {
                    self.stop_local(rid, StopReason::Cancel);
                    out.requested.push(rid);
                }
            }
        }
        self.wake.notify_waiters();
        Ok(out)
    }

    async fn cancel_one(&self, id: RunId, reason: &str) -> Result<bool> {
        let parent = self
            .store
            .get_run(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {id}")))?
            .parent_id;
        let mut t = Transition::new(
            id,
            Guard::Status(vec![
                RunStatus::Pending,
                RunStatus::Waiting,
                RunStatus::Sleeping,
                RunStatus::Blocked,
            ]),
            Target::Cancelled {
                error: RunError::new("cancelled", reason),
            },
            Utc::now(),
        );
        t.events = vec![(
            None,
            EventData::RunCancelled {
                reason: reason.to_string(),
            },
        )];
        t.bump_epoch = true;
        t.parent = parent;
        self.store.transition(t).await
    }
}
