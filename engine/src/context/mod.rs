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
//!
//! (Over 600 lines on purpose: the workflow-facing context is one API surface (steps, timers,
//! signals, children, slots, patches to come); the step's phases already live in `step.rs`.)

mod child;
mod limits;
mod options;
mod patch;
pub(crate) mod replay;
mod step;

pub use child::ChildHandle;
pub use limits::Bounded;
pub use options::{Attempt, RetryPolicy, StepCtx, StepOptions};

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::committer::CommitResult;
use crate::error::WfError;
use crate::journal::{EntryState, Journal};
use crate::model::{Cost, EventData, NewEvent, RunId, RunRecord};
use crate::runtime::{Shared, StopFlag, StopReason};
use crate::store::{AppendOp, Target};

/// What an execution left for the executor to record.
pub(crate) struct Outcome {
    pub fatal: Option<WfError>,
    pub susp: Suspension,
    pub consumed: Vec<i64>,
    pub took_slots: bool,
    /// The last sequence number this execution used.
    pub next_seq: i64,
}

/// One thing a suspended branch of a run waits for. Parallel branches suspend on their own, so
/// one execution may leave several: a timer in one branch, a signal and a slot in others.
#[derive(Debug, Clone)]
pub(crate) enum Wait {
    /// A durable timer (a sleep, a retry's backoff).
    Timer { at: DateTime<Utc>, reason: String },
    /// A signal, with an optional deadline.
    Signal {
        name: String,
        deadline: Option<DateTime<Utc>>,
        reason: String,
    },
    /// A concurrency slot. Releases wake waiters directly; `recheck` only bounds the damage of
    /// a missed wake.
    Slot {
        key: String,
        priority: i32,
        recheck: DateTime<Utc>,
        reason: String,
    },
}

impl Wait {
    fn due(&self) -> Option<DateTime<Utc>> {
        match self {
            Wait::Timer { at, .. } => Some(*at),
            Wait::Signal { deadline, .. } => *deadline,
            Wait::Slot { recheck, .. } => Some(*recheck),
        }
    }

    fn reason(&self) -> &str {
        match self {
            Wait::Timer { reason, .. }
            | Wait::Signal { reason, .. }
            | Wait::Slot { reason, .. } => reason,
        }
    }
}

/// What an execution left its run waiting for: every branch's [`Wait`], none if it ran to an
/// end.
#[derive(Debug, Default)]
pub(crate) struct Suspension(Vec<Wait>);

impl Suspension {
    fn push(&mut self, w: Wait) {
        self.0.push(w);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Why the run waits, one line per wait (recorded in its `RunSuspended` event).
    pub(crate) fn reasons(&self) -> Vec<String> {
        self.0.iter().map(|w| w.reason().to_string()).collect()
    }

    /// The state the run is left in: asleep when it waits on timers only, else waiting for its
    /// signals and slots, due at the earliest timer, deadline or recheck. `None` if nothing
    /// waits.
    pub(crate) fn into_target(self, consumed: Vec<i64>) -> Option<Target> {
        let until = self.0.iter().filter_map(Wait::due).min();
        let mut signals = BTreeSet::new();
        let mut slots = BTreeSet::new();
        let mut slot_priority: Option<i32> = None;
        for w in self.0 {
            match w {
                Wait::Signal { name, .. } => {
                    signals.insert(name);
                }
                Wait::Slot { key, priority, .. } => {
                    slots.insert(key);
                    slot_priority = Some(slot_priority.map_or(priority, |p| p.max(priority)));
                }
                Wait::Timer { .. } => {}
            }
        }
        if signals.is_empty() && slots.is_empty() {
            return until.map(|until| Target::Sleeping { until });
        }
        Some(Target::Waiting {
            until,
            signals: signals.into_iter().collect(),
            consumed,
            slots: slots.into_iter().collect(),
            slot_priority: slot_priority.unwrap_or_default(),
        })
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
    /// A dry replay (`Engine::replay`): nothing is written, and every operation the journal
    /// does not hold stops its branch, noted here.
    pub dry: Option<Mutex<Vec<replay::WouldRun>>>,
    /// Database calls under way on the replay path (a slot given back, a signal looked for):
    /// a branch awaiting one has not reached its next journaled entry yet.
    pub io: std::sync::atomic::AtomicUsize,
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
                dry: None,
                io: std::sync::atomic::AtomicUsize::new(0),
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

    fn resumed_after(&self, name: &str, child: RunId) -> bool {
        self.lock().journal.resumed_after(name, child)
    }

    fn entry_state(&self, name: &str) -> Option<EntryState> {
        self.lock()
            .journal
            .entries
            .get(name)
            .map(|e| e.state.clone())
    }

    /// The journal has `name` as `found`, and the code uses it as `wanted`.
    fn nondeterminism(&self, name: &str, found: &EntryState, wanted: &str) -> WfError {
        let seq = self
            .lock()
            .journal
            .entries
            .get(name)
            .map_or(0, |e| e.first_seq);
        self.set_fatal(WfError::Mismatch(Box::new(crate::error::Mismatch {
            seq,
            expected: crate::error::JournalPoint {
                name: name.to_string(),
                kind: found.label().to_string(),
            },
            found: crate::error::JournalPoint {
                name: name.to_string(),
                kind: wanted.to_string(),
            },
            build: self.inner.run.build.clone(),
            replayed_by: Some(self.inner.shared.config.build.clone()),
        })))
    }

    fn prepare(
        &self,
        step: &str,
        events: Vec<EventData>,
        cost: Cost,
        release_slot: Option<String>,
        hold_slot: bool,
    ) -> AppendOp {
        let now = Utc::now();
        let mut st = self.lock();
        let mut out = Vec::with_capacity(events.len());
        for data in events {
            st.next_seq += 1;
            let seq = st.next_seq;
            // Applied before the commit is acknowledged: nothing reads it before we return,
            // and a failed commit ends this execution.
            st.journal.apply(seq, now, Some(step), &data);
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
            hold_slot: hold_slot && release_slot.is_some(),
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
        self.commit_slot(step, events, cost, release_slot, false)
            .await
    }

    /// [`Ctx::commit`], keeping the step's slot (held) instead of releasing it when `hold`.
    async fn commit_slot(
        &self,
        step: &str,
        events: Vec<EventData>,
        cost: Cost,
        release_slot: Option<String>,
        hold: bool,
    ) -> Result<(), WfError> {
        self.dry_stop(step, "an entry", true)?;
        let frees = release_slot.is_some() && !hold;
        let op = self.prepare(step, events, cost, release_slot, hold);
        match self.inner.shared.committer.commit(op).await {
            CommitResult::Committed => {
                if frees {
                    // A run of this process may be waiting for the slot: look now, not at the
                    // next poll.
                    self.inner.shared.wake.notify_waiters();
                }
                Ok(())
            }
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
        if self.inner.dry.is_some() {
            return;
        }
        let op = self.prepare(step, events, Cost::default(), None, false);
        self.inner.shared.committer.enqueue(op);
    }

    fn suspend(&self, wait: Wait) -> WfError {
        self.lock().susp.push(wait);
        WfError::Suspended
    }

    fn suspend_until(&self, at: DateTime<Utc>, reason: String) -> WfError {
        self.suspend(Wait::Timer { at, reason })
    }

    fn suspend_signal(
        &self,
        signal: &str,
        deadline: Option<DateTime<Utc>>,
        reason: String,
    ) -> WfError {
        self.suspend(Wait::Signal {
            name: signal.to_string(),
            deadline,
            reason,
        })
    }

    fn suspend_slot(&self, key: &str, step: &str, priority: i32) -> WfError {
        self.suspend(Wait::Slot {
            key: key.to_string(),
            priority,
            recheck: Utc::now() + Duration::from_secs(10),
            reason: format!("step `{step}` waits for a `{key}` concurrency slot"),
        })
    }

    /// Give back the slot of `key` that step `step` kept (see
    /// [`StepOptions::concurrency_held`]): the work it stood for is done. Call it right after
    /// the step that saw the work finish; it is idempotent, so a replay calls it again
    /// harmlessly. A slot not given back is given back when the run ends.
    pub async fn release_slot(&self, key: &str, step: &str) -> Result<(), WfError> {
        self.check_live()?;
        if self.inner.dry.is_some() {
            return Ok(());
        }
        let _io = self.io();
        self.inner
            .shared
            .store
            .release_held_slot(key, self.inner.run.id, step, Utc::now())
            .await?;
        self.inner.shared.wake.notify_waiters();
        Ok(())
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
                self.fresh(&name, "a timer").await?;
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
            Some(other) => return Err(self.nondeterminism(&name, &other, "a timer")),
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

    /// Send the signal `signal` with `payload` to the run `target` (its child, say), as the
    /// step `name`: journaled, and keyed by this run and step, so a replay or a retry of the
    /// step delivers it at most once. The target waits for it with [`Ctx::wait_signal`]; a
    /// signal sent before the wait began is delivered when it does.
    pub async fn send_signal(
        &self,
        name: impl Into<String>,
        target: RunId,
        signal: &str,
        payload: Value,
    ) -> Result<(), WfError> {
        let name = name.into();
        let event_key = format!("{}/{name}", self.inner.run.id);
        let shared = self.inner.shared.clone();
        let signal = signal.to_string();
        self.step(name, move |_| async move {
            let out = shared
                .store
                .send_signal(crate::store::NewSignal {
                    run_id: Some(target),
                    name: signal,
                    event_key: Some(event_key),
                    payload,
                    now: Utc::now(),
                })
                .await
                .map_err(|e| crate::StepError::retryable("signal", e.to_string()))?;
            if out.woken > 0 {
                shared.wake.notify_waiters();
            }
            Ok(())
        })
        .await
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
                self.fresh(&name, "a signal wait").await?;
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
            Some(other) => return Err(self.nondeterminism(&name, &other, "a signal wait")),
        };
        let consumed = self.lock().journal.consumed_signals();
        let found = {
            let _io = self.io();
            self.inner
                .shared
                .store
                .find_signal(self.inner.run.id, &signal, &consumed)
                .await?
        };
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
