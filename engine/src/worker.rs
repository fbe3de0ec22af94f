//! Workers: claim due runs, execute them, keep their leases alive, and give them back.
//!
//! A worker holds at most `concurrency` runs. It claims when it has room and something is due,
//! then sleeps until a wake-up (a local start or signal, a Postgres NOTIFY, a run finishing),
//! the next due time, or the poll interval. A heartbeat extends its leases; a run whose lease
//! it lost is stopped at once, and every write of a stale holder is refused by the store.
//!
//! (Over 600 lines on purpose: the claim loop, heartbeats, execution and the recording of an
//! outcome share the lease and its fencing rules; apart, the rules would be read in pieces.)

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::Ctx;
use crate::error::{Result, RunError, WfError};
use crate::journal::Journal;
use crate::model::{EventData, RunId, RunRecord, RunStatus};
use crate::runtime::{RunHandle, Shared, StopFlag, StopReason};
use crate::store::{Claimed, Finish, Guard, Target, Transition};
use crate::trouble::Trouble;
use crate::workflow::Registry;

struct Ready {
    claimed: Claimed,
    token: CancellationToken,
    stop: Arc<StopFlag>,
}

/// A worker (see the module docs). Build it with [`crate::Engine::worker`].
pub struct Worker {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    id: Arc<str>,
    concurrency: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// True when `owner` (a worker id `host:pid:nonce`) belonged to a process on this host that no
/// longer exists: its runs can be taken over now instead of when its lease lapses.
fn owner_is_dead_local(owner: &str, host: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (_nonce, pid, h) = (parts.next(), parts.next(), parts.next());
    let (Some(pid), Some(h)) = (pid.and_then(|p| p.parse::<u32>().ok()), h) else {
        return false;
    };
    if h != host || pid == std::process::id() {
        return false;
    }
    // Only where /proc exists; elsewhere we cannot tell and wait for the lease.
    std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Worker {
    pub(crate) fn new(shared: Arc<Shared>, registry: Arc<Registry>) -> Self {
        let id = format!(
            "{}:{}:{:04x}",
            hostname(),
            std::process::id(),
            rand::random::<u16>()
        );
        Worker {
            shared,
            registry,
            id: id.into(),
            concurrency: 32,
        }
    }

    /// Runs executed at once by this worker (default 32).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// This worker's id (`host:pid:nonce`), as recorded in leases and claim events.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Execute runs until `shutdown` fires, then stop claiming, let running runs reach a
    /// checkpoint (up to the configured grace), and hand the rest back for other workers.
    #[tracing::instrument(name = "worker", skip_all, fields(id = %self.id))]
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let shared = self.shared.clone();
        shared.ensure_listening().await;
        self.recover_local_orphans().await;
        let running = Arc::new(AtomicUsize::new(0));
        let freed = Arc::new(Notify::new());
        let mut tasks = JoinSet::new();
        let hb_stop = CancellationToken::new();
        let hb = tokio::spawn(heartbeat_loop(
            shared.clone(),
            self.id.clone(),
            hb_stop.clone(),
        ));
        tracing::info!(worker = %self.id, concurrency = self.concurrency, store = shared.store.dialect(), "worker started");
        let mut backoff = Duration::from_millis(100);
        let mut claim_trouble = Trouble::new("claiming runs", Duration::from_secs(30));
        // Claimed runs not started yet: a few are claimed ahead, so that a freed slot starts
        // its next run at once instead of after a claim round trip.
        let mut ready: VecDeque<Ready> = VecDeque::new();
        let prefetch = self.concurrency.div_ceil(4);
        loop {
            let wake = shared.wake.notified();
            let freed_n = freed.notified();
            tokio::pin!(wake, freed_n);
            wake.as_mut().enable();
            freed_n.as_mut().enable();
            while tasks.try_join_next().is_some() {}
            if shutdown.is_cancelled() {
                break;
            }
            self.start_ready(&mut ready, &mut tasks, &running, &freed);
            let held = running.load(Ordering::Acquire) + ready.len();
            let mut free = (self.concurrency + prefetch).saturating_sub(held);
            // Refill the buffer in bulk (one claim for several runs), unless a slot is idle.
            let idle = running.load(Ordering::Acquire) < self.concurrency && ready.is_empty();
            if !idle && ready.len() > prefetch / 2 {
                free = 0;
            }
            let mut more = false;
            if free > 0 {
                let now = Utc::now();
                match shared
                    .store
                    .claim(&self.id, free, now, now + shared.config.lease)
                    .await
                {
                    Ok(claimed) => {
                        claim_trouble.ok(&self.id);
                        backoff = Duration::from_millis(100);
                        more = claimed.len() == free;
                        for c in claimed {
                            ready.push_back(self.register(c));
                        }
                        self.start_ready(&mut ready, &mut tasks, &running, &freed);
                    }
                    Err(e) => {
                        claim_trouble.failed(&self.id, &e);
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            if more && running.load(Ordering::Acquire) < self.concurrency {
                continue;
            }
            let mut wait = shared.config.poll_interval;
            if free > 0
                && let Ok(Some(due)) = shared.store.next_due().await
            {
                let until = (due - Utc::now()).to_std().unwrap_or_default();
                wait = wait.min(until.max(Duration::from_millis(1)));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut wake => {}
                _ = &mut freed_n => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        for r in ready.drain(..) {
            self.shared
                .active
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&r.claimed.run.id);
            let _ = release(
                &self.shared,
                r.claimed.run.id,
                r.claimed.run.lease_epoch,
                Duration::ZERO,
                "the worker shut down before starting it",
            )
            .await;
        }
        self.shutdown(&mut tasks).await;
        hb_stop.cancel();
        let _ = hb.await;
        tracing::info!(worker = %self.id, "worker stopped");
        Ok(())
    }

    /// Take the lease of a claimed run into this worker's books (heartbeats and cancellation
    /// cover it from now on, started or not).
    fn register(&self, claimed: Claimed) -> Ready {
        self.shared.metrics.claims.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let stop = Arc::new(StopFlag::default());
        self.shared
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                claimed.run.id,
                RunHandle {
                    worker: self.id.clone(),
                    epoch: claimed.run.lease_epoch,
                    token: token.clone(),
                    stop: stop.clone(),
                },
            );
        Ready {
            claimed,
            token,
            stop,
        }
    }

    fn start_ready(
        &self,
        ready: &mut VecDeque<Ready>,
        tasks: &mut JoinSet<()>,
        running: &Arc<AtomicUsize>,
        freed: &Arc<Notify>,
    ) {
        while running.load(Ordering::Acquire) < self.concurrency {
            let Some(r) = ready.pop_front() else { return };
            running.fetch_add(1, Ordering::AcqRel);
            let shared = self.shared.clone();
            let registry = self.registry.clone();
            let id = r.claimed.run.id;
            let span = tracing::info_span!("run", run_id = %id, workflow = %r.claimed.run.workflow);
            let slot = Slot {
                running: running.clone(),
                freed: freed.clone(),
                released: std::sync::atomic::AtomicBool::new(false),
            };
            tasks.spawn(tracing::Instrument::instrument(
                async move {
                    struct Done(Arc<Shared>, RunId);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            self.0
                                .active
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .remove(&self.1);
                        }
                    }
                    let _done = Done(shared.clone(), id);
                    execute(shared, registry, r.claimed, r.token, r.stop, &slot).await;
                },
                span,
            ));
        }
    }

    async fn recover_local_orphans(&self) {
        let host = hostname();
        match self.shared.store.lease_owners().await {
            Ok(owners) => {
                let dead: Vec<String> = owners
                    .into_iter()
                    .filter(|o| owner_is_dead_local(o, &host))
                    .collect();
                if !dead.is_empty() {
                    match self.shared.store.expire_leases(&dead, Utc::now()).await {
                        Ok(n) => tracing::info!(
                            worker = %self.id, runs = n, owners = ?dead,
                            "taking over runs of workers on this host that are gone"
                        ),
                        Err(e) => tracing::warn!(error = %e, "could not expire dead leases"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list lease owners"),
        }
    }

    async fn shutdown(&self, tasks: &mut JoinSet<()>) {
        let mine: Vec<RunId> = {
            let active = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
            active
                .iter()
                .filter(|(_, h)| h.worker == self.id)
                .map(|(id, h)| {
                    h.stop(StopReason::Shutdown);
                    *id
                })
                .collect()
        };
        if !mine.is_empty() {
            tracing::info!(worker = %self.id, runs = mine.len(), "waiting for runs to reach a checkpoint");
        }
        let grace = self.shared.config.shutdown_grace;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        // Anything still executing is dropped mid-step and handed back at once, so that another
        // worker need not wait for the lease to lapse.
        let left: Vec<(RunId, i64)> = {
            let active = self.shared.active.lock().unwrap_or_else(|e| e.into_inner());
            active
                .iter()
                .filter(|(_, h)| h.worker == self.id)
                .map(|(id, h)| (*id, h.epoch))
                .collect()
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        for (id, epoch) in left {
            let _ = release(
                &self.shared,
                id,
                epoch,
                Duration::ZERO,
                "the worker shut down",
            )
            .await;
        }
    }
}

async fn heartbeat_loop(shared: Arc<Shared>, worker: Arc<str>, stop: CancellationToken) {
    let every = shared.config.heartbeat_every();
    let mut trouble = Trouble::new("heart-beating", Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let mine: Vec<RunId> = {
            let active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
            active
                .iter()
                .filter(|(_, h)| h.worker == worker)
                .map(|(id, _)| *id)
                .collect()
        };
        if mine.is_empty() {
            continue;
        }
        match shared
            .store
            .heartbeat(&worker, &mine, Utc::now() + shared.config.lease)
            .await
        {
            Ok(held) => {
                trouble.ok(&worker);
                let held_ids: std::collections::HashSet<RunId> =
                    held.iter().map(|(id, _)| *id).collect();
                for (id, reason) in &held {
                    if reason.is_some() {
                        shared.stop_local(*id, StopReason::Cancel);
                    }
                }
                for id in mine.iter().filter(|id| !held_ids.contains(id)) {
                    tracing::warn!(worker = %worker, run = %id, "lease lost; stopping the run here");
                    shared.stop_local(*id, StopReason::LeaseLost);
                }
            }
            Err(e) => {
                trouble.failed(&worker, &e);
            }
        }
    }
}

/// Give a run back without finishing it (shutdown, database trouble).
async fn release(
    shared: &Shared,
    id: RunId,
    epoch: i64,
    delay: Duration,
    why: &str,
) -> Result<bool> {
    let now = Utc::now();
    let at = crate::model::later(now, delay);
    let mut t = Transition::new(id, Guard::Epoch(epoch), Target::Pending { at }, now);
    // Not terminal: the parent (if any) is not signalled, so it need not be known here.
    t.events = vec![(
        None,
        EventData::RunSuspended {
            status: RunStatus::Pending,
            ready_at: Some(at),
            reasons: vec![why.to_string()],
        },
    )];
    shared.store.transition(t).await
}

fn finish(run: &RunRecord, to: Target, now: chrono::DateTime<Utc>) -> Transition {
    let mut t = Transition::new(run.id, Guard::Epoch(run.lease_epoch), to, now);
    t.parent = run.parent_id;
    t
}

/// [`finish`] for an execution that knows whether it took concurrency slots.
fn finish_after(
    run: &RunRecord,
    to: Target,
    now: chrono::DateTime<Utc>,
    took_slots: bool,
) -> Transition {
    let mut t = finish(run, to, now);
    t.cleanup = took_slots;
    t
}

/// A worker's concurrency slot held by one run. It is given back as soon as the workflow code
/// returns, so the worker claims the next run while this one records its outcome.
pub(crate) struct Slot {
    running: Arc<AtomicUsize>,
    freed: Arc<Notify>,
    released: std::sync::atomic::AtomicBool,
}

impl Slot {
    fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.running.fetch_sub(1, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// A run ends cancelled: the request and the cancellation, journaled together.
fn cancelled(run: &RunRecord, reason: String, now: chrono::DateTime<Utc>) -> Transition {
    let mut t = finish(
        run,
        Target::Cancelled {
            error: RunError::new("cancelled", &reason),
        },
        now,
    );
    t.events = vec![
        (
            None,
            EventData::CancelRequested {
                reason: reason.clone(),
            },
        ),
        (None, EventData::RunCancelled { reason }),
    ];
    t
}

/// A run ends failed with `error`.
fn failed(
    run: &RunRecord,
    error: RunError,
    now: chrono::DateTime<Utc>,
    took_slots: bool,
) -> Transition {
    let mut t = finish_after(
        run,
        Target::Failed {
            error: error.clone(),
        },
        now,
        took_slots,
    );
    t.events = vec![(None, EventData::RunFailed { error })];
    t
}

/// A run ends blocked with `error` (its journal no longer fits the code).
fn blocked(
    run: &RunRecord,
    error: RunError,
    now: chrono::DateTime<Utc>,
    took_slots: bool,
) -> Transition {
    let mut t = finish_after(
        run,
        Target::Blocked {
            error: error.clone(),
        },
        now,
        took_slots,
    );
    t.events = vec![(None, EventData::RunBlocked { error })];
    t
}

/// The mismatch between journal and code this execution met, if any: a branch that met one
/// stops the whole execution, whatever the others returned.
fn mismatch<'a>(
    result: &'a std::result::Result<serde_json::Value, WfError>,
    fatal: &'a Option<WfError>,
) -> Option<&'a WfError> {
    let is = |e: &WfError| matches!(e, WfError::Mismatch(_));
    fatal
        .as_ref()
        .filter(|e| is(e))
        .or(result.as_ref().err().filter(|e| is(e)))
}

/// A run whose journal no longer fits the code: blocked, or failed, as its workflow says.
fn mismatched(
    run: &RunRecord,
    e: &WfError,
    policy: crate::workflow::OnMismatch,
    took_slots: bool,
    now: chrono::DateTime<Utc>,
) -> Transition {
    let error = e.to_run_error();
    tracing::warn!(run = %run.id, workflow = %run.workflow, error = %error, "the run's journal does not fit the code");
    match policy {
        crate::workflow::OnMismatch::Block => blocked(run, error, now, took_slots),
        crate::workflow::OnMismatch::Fail => failed(run, error, now, took_slots),
    }
}

/// Execute one claimed run until it completes, fails, suspends or is stopped: admission, the
/// workflow's code, then its outcome.
pub(crate) async fn execute(
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    claimed: Claimed,
    token: CancellationToken,
    stop: Arc<StopFlag>,
    slot: &Slot,
) {
    let run = claimed.run;
    let Some((wf, budget, journal)) = admit(&shared, &registry, &run, &claimed.events).await else {
        return;
    };
    let ctx = Ctx::new(
        shared.clone(),
        run.clone(),
        journal,
        budget,
        token,
        stop.clone(),
    );
    let result = call(&shared, &wf, &ctx, &run).await;
    slot.release();
    let outcome = ctx.take_outcome();
    drop(ctx);
    let now = Utc::now();
    if interrupted(&shared, &run, &result, &outcome.fatal, stop.get(), now).await {
        return;
    }
    let next_seq = outcome.next_seq;
    let t = match mismatch(&result, &outcome.fatal) {
        Some(e) => mismatched(&run, e, wf.on_mismatch(), outcome.took_slots, now),
        None => outcome_transition(&shared, &run, result, outcome, now),
    };
    recorded(&shared, &run, t, next_seq).await;
}

/// Whether a claimed run may execute: not cancelled meanwhile, its workflow registered, its
/// budget readable, not in a crash loop. Otherwise its end (or its release) is recorded here.
async fn admit(
    shared: &Arc<Shared>,
    registry: &Registry,
    run: &RunRecord,
    events: &[crate::model::EventRecord],
) -> Option<(
    Arc<dyn crate::workflow::ErasedWorkflow>,
    Option<i64>,
    Journal,
)> {
    let now = Utc::now();
    if let Some(reason) = run.cancel_reason.clone() {
        log_transition(
            shared,
            run,
            shared.store.transition(cancelled(run, reason, now)).await,
        );
        return None;
    }
    let Some(wf) = registry.get(&run.workflow) else {
        let error = RunError::new(
            "unknown_workflow",
            format!(
                "no workflow named `{}` is registered in this worker; start a worker that registers it, then re-drive the run",
                run.workflow
            ),
        );
        log_transition(
            shared,
            run,
            shared
                .store
                .transition(failed(run, error, now, false))
                .await,
        );
        return None;
    };
    let budget = if run.parent_id.is_none() {
        run.budget_micros
    } else {
        match shared.store.tree_cost(run.root_id).await {
            Ok((_, b)) => b,
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "could not read the budget; releasing the run");
                let _ = release(
                    shared,
                    run.id,
                    run.lease_epoch,
                    Duration::from_secs(2),
                    "database error",
                )
                .await;
                return None;
            }
        }
    };
    let journal = Journal::from_events(events);
    if journal.stalled_claims >= shared.config.crash_loop_limit.max(1) {
        // Its workers died again and again before journaling anything: do not start it once
        // more only to lose another worker (decision 0014).
        let error = RunError::new(
            "crash_loop",
            format!(
                "run {} was taken over from a dead worker {} times in a row without journaling anything in between{}; \
                 its worker dies as soon as it starts. Fix the cause, then re-drive the run",
                run.id,
                journal.stalled_claims,
                journal
                    .last_step
                    .as_deref()
                    .map(|s| format!(" (the last step it journaled is `{s}`)"))
                    .unwrap_or_default()
            ),
        );
        log_transition(
            shared,
            run,
            shared
                .store
                .transition(failed(run, error, now, false))
                .await,
        );
        return None;
    }
    Some((wf, budget, journal))
}

/// The workflow's code, a panic turned into its failure.
async fn call(
    shared: &Shared,
    wf: &Arc<dyn crate::workflow::ErasedWorkflow>,
    ctx: &Ctx,
    run: &RunRecord,
) -> std::result::Result<serde_json::Value, WfError> {
    // Counted only while workflow code runs: the committer waits for executing runs to join a
    // batch, and a run busy claiming or recording its outcome will not.
    struct Executing<'a>(&'a std::sync::atomic::AtomicUsize);
    impl Drop for Executing<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    shared.executing.fetch_add(1, Ordering::AcqRel);
    let _executing = Executing(&shared.executing);
    AssertUnwindSafe(wf.call(ctx.clone(), run.input.clone()))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(WfError::failed(
                "panic",
                format!("the workflow panicked: {msg}"),
            ))
        })
}

/// An execution that ended by no doing of the workflow's: the lease lost (another worker owns
/// the run), the worker shutting down or the database failing (the run is released to run
/// again), or a cancel (recorded). True when it was one of those.
async fn interrupted(
    shared: &Shared,
    run: &RunRecord,
    result: &std::result::Result<serde_json::Value, WfError>,
    fatal: &Option<WfError>,
    stop_reason: Option<StopReason>,
    now: chrono::DateTime<Utc>,
) -> bool {
    if stop_reason == Some(StopReason::LeaseLost) || matches!(fatal, Some(WfError::LeaseLost)) {
        tracing::warn!(run = %run.id, "lease lost during execution; another worker owns the run");
        return true;
    }
    let released = |delay: Duration, why: String| async move {
        let _ = release(shared, run.id, run.lease_epoch, delay, &why).await;
        true
    };
    if stop_reason == Some(StopReason::Shutdown) {
        return released(Duration::ZERO, "the worker shut down".into()).await;
    }
    if let Some(WfError::Engine(msg)) = fatal {
        tracing::warn!(run = %run.id, error = %msg, "database trouble during execution; releasing the run");
        return released(Duration::from_secs(2), msg.clone()).await;
    }
    if stop_reason == Some(StopReason::Cancel) || matches!(result, Err(WfError::Cancelled)) {
        let reason = shared
            .store
            .get_run(run.id)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.cancel_reason)
            .unwrap_or_else(|| "cancelled".into());
        log_transition(
            shared,
            run,
            shared.store.transition(cancelled(run, reason, now)).await,
        );
        return true;
    }
    if let Err(WfError::Engine(msg)) = result {
        return released(Duration::from_secs(2), msg.clone()).await;
    }
    false
}

/// What the workflow's code came to: a suspension, a completion, or a failure.
fn outcome_transition(
    shared: &Shared,
    run: &RunRecord,
    result: std::result::Result<serde_json::Value, WfError>,
    outcome: crate::context::Outcome,
    now: chrono::DateTime<Utc>,
) -> Transition {
    let crate::context::Outcome {
        susp,
        consumed,
        took_slots,
        ..
    } = outcome;
    // A branch that suspended outlives a body that went on without it (a race, a timeout):
    // the run waits for what its branches wait for.
    if matches!(result, Err(WfError::Suspended) | Ok(_)) && !susp.is_empty() {
        let reasons = susp.reasons();
        let target = susp
            .into_target(consumed)
            .expect("a non-empty suspension has a target");
        let (status, ready_at) = (target.status(), target.ready_at());
        let mut t = finish_after(run, target, now, took_slots);
        t.events = vec![(
            None,
            EventData::RunSuspended {
                status,
                ready_at,
                reasons,
            },
        )];
        shared.metrics.suspensions.fetch_add(1, Ordering::Relaxed);
        return t;
    }
    match result {
        // `Suspended` is the context's to return, after it recorded a wait; without one the
        // run would sleep forever.
        Err(WfError::Suspended) => failed(
            run,
            RunError::new(
                "suspended_without_wait",
                "the workflow returned WfError::Suspended without waiting on a timer, signal or slot; \
                 propagate the error of a context call (sleep, signal, step) instead of making one",
            ),
            now,
            took_slots,
        ),
        Ok(output) => {
            let size = serde_json::to_string(&output).map(|s| s.len()).unwrap_or(0);
            if size > shared.config.max_result_bytes {
                let error = RunError::new(
                    "result_too_large",
                    format!(
                        "the workflow returned {size} bytes; a run's output may have at most {} bytes. \
                         Store the data as a blob and return its reference",
                        shared.config.max_result_bytes
                    ),
                );
                return failed(run, error, now, took_slots);
            }
            let mut t = finish_after(
                run,
                Target::Completed {
                    output: output.clone(),
                },
                now,
                took_slots,
            );
            t.events = vec![(None, EventData::RunCompleted { output })];
            t
        }
        Err(e) => {
            let error = e.to_run_error();
            tracing::info!(run = %run.id, error = %error, "run failed");
            failed(run, error, now, took_slots)
        }
    }
}

/// Record the outcome, count it, wake who may be waiting on it, and cancel the children of a
/// run that failed.
async fn recorded(shared: &Shared, run: &RunRecord, t: Transition, next_seq: i64) {
    let to = t.to.status();
    let cancel_children = to == RunStatus::Failed;
    let recorded = record(shared, run, t, next_seq).await;
    if matches!(recorded, Ok(true)) {
        match to {
            RunStatus::Completed => shared
                .metrics
                .runs_completed
                .fetch_add(1, Ordering::Relaxed),
            RunStatus::Failed => shared.metrics.runs_failed.fetch_add(1, Ordering::Relaxed),
            RunStatus::Blocked => shared.metrics.runs_blocked.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
    log_transition(shared, run, recorded);
    if (to.is_terminal() && run.parent_id.is_some()) || !to.is_terminal() {
        // A parent may be waiting for this run in this very process, or this run is due again
        // soon (a short timer): let idle workers look again instead of sleeping a full poll.
        shared.wake.notify_waiters();
    }
    if cancel_children {
        // Children still running for a failed parent would spend for nothing.
        if let Ok(ids) = shared.store.descendants(run.id).await {
            for id in ids.into_iter().filter(|i| *i != run.id) {
                if let Ok(Some(r)) = shared.store.get_run(id).await
                    && !r.status.is_terminal()
                {
                    let _ = shared.cancel_tree(id, "the parent run failed").await;
                }
            }
        }
    }
}

/// Record an execution's outcome. The common ones (completed, failed, sleeping, with no parent
/// to signal and nothing to clean up) ride in the checkpoint batch: no commit of their own.
async fn record(shared: &Shared, run: &RunRecord, t: Transition, next_seq: i64) -> Result<bool> {
    let simple = t.parent.is_none() && !t.cleanup;
    let finish = match &t.to {
        _ if !simple => None,
        Target::Completed { output } => Some(Finish::Completed(output.clone())),
        Target::Failed { error } => Some(Finish::Failed(error.clone())),
        Target::Sleeping { until } => Some(Finish::Sleeping(*until)),
        _ => None,
    };
    let Some(finish) = finish else {
        return shared.store.transition(t).await;
    };
    let now = t.now;
    let events = t
        .events
        .into_iter()
        .enumerate()
        .map(|(i, (step, data))| crate::model::NewEvent {
            seq: next_seq + 1 + i as i64,
            at: now,
            step,
            data,
        })
        .collect();
    let op = crate::store::AppendOp {
        run_id: run.id,
        epoch: run.lease_epoch,
        events,
        cost: crate::model::Cost::default(),
        release_slot: None,
        hold_slot: false,
        finish: Some(finish),
    };
    match shared.committer.commit_outcome(op).await {
        crate::committer::CommitResult::Committed => Ok(true),
        crate::committer::CommitResult::Fenced => Ok(false),
        crate::committer::CommitResult::Failed(m) => Err(crate::error::EngineError::Commit(m)),
    }
}

fn log_transition(_shared: &Shared, run: &RunRecord, r: Result<bool>) {
    match r {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(run = %run.id, "the run changed hands before its outcome was recorded")
        }
        Err(e) => {
            tracing::warn!(run = %run.id, error = %e, "could not record the run's outcome; it will be retried when its lease lapses")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_local_owner_detection() {
        let host = "h1";
        // pid 1 exists on Linux, pid u32::MAX-ish does not.
        assert!(!owner_is_dead_local("h1:1:abcd", host));
        assert!(
            owner_is_dead_local("h1:4294967:abcd", host)
                || !std::path::Path::new("/proc/self").exists()
        );
        assert!(!owner_is_dead_local("other:4294967:abcd", host));
        assert!(!owner_is_dead_local(
            &format!("h1:{}:abcd", std::process::id()),
            host
        ));
        assert!(!owner_is_dead_local("garbage", host));
    }
}
