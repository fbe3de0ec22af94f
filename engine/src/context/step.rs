//! A step, in its phases: replay what the journal already holds; refuse an attempt the retry
//! policy no longer allows; admit it (budget, concurrency slot); record its start; run it
//! (timeout, cancellation grace); settle its outcome (success, retry at a durable time, or
//! failure).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Ctx, StepCtx, StepOptions, decode, json_size};
use crate::error::{StepError, WfError};
use crate::journal::EntryState;
use crate::model::{Cost, EventData};
use crate::runtime::StopReason;
use crate::store::SlotOutcome;

/// What the journal says of a step about to run.
enum Replay<T> {
    /// Its outcome is journaled: return it.
    Done(Result<T, WfError>),
    /// Run attempt number `attempt`.
    Attempt(Next),
}

/// The attempt to run, and what came before it (decision 0014).
struct Next {
    /// Its number (every start counts: it names the attempt's events and idempotency key).
    attempt: u32,
    /// Earlier attempts that returned an error: what the retry policy counts.
    failures: u32,
    /// Earlier attempts in a row that never finished: what the crash-loop guard counts.
    interrupted: u32,
    /// When the latest of those began.
    last_started: Option<chrono::DateTime<Utc>>,
    /// What the attempts cut short kept (decision 0015).
    checkpoint: Option<serde_json::Value>,
}

/// How an attempt ended, with what it cost.
struct Ran<T> {
    result: Result<T, StepError>,
    cost: Cost,
    duration_ms: u64,
    stop: Option<StopReason>,
}

impl Ctx {
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
        let next = match self.replay(&name)? {
            Replay::Done(v) => {
                // A slot this step kept may still be held: the run's end must give it back.
                if opts.hold_slot && opts.concurrency_key.is_some() {
                    self.lock().took_slots = true;
                }
                return v;
            }
            Replay::Attempt(next) => next,
        };
        if self.entry_state(&name).is_none() {
            self.fresh(&name, "a step").await?;
        } else {
            self.dry_stop(&name, "a step", true)?;
        }
        self.crash_guard(&name, &opts, &next).await?;
        let attempt = next.attempt;
        let _reservation = self.admit(&name, &opts).await?;
        let mut sc = self.begin(&name, attempt, &opts).await?;
        sc.resumed = next.checkpoint;
        let ran = self.run_attempt(sc, opts.timeout, f).await;
        if ran.stop == Some(StopReason::LeaseLost) {
            return Err(self.set_fatal(WfError::LeaseLost));
        }
        self.settle(&name, attempt, next.failures, &opts, ran).await
    }

    /// The journal's answer for this step: its outcome, a retry still waiting for its time, or
    /// the number of the attempt to run now.
    fn replay<T: DeserializeOwned>(&self, name: &str) -> Result<Replay<T>, WfError> {
        let st = self.lock();
        let Some(e) = st.journal.entries.get(name) else {
            return Ok(Replay::Attempt(Next {
                attempt: 1,
                failures: 0,
                interrupted: 0,
                last_started: None,
                checkpoint: None,
            }));
        };
        match &e.state {
            EntryState::Succeeded(v) => {
                let v = decode(name, v);
                drop(st);
                self.inner
                    .shared
                    .metrics
                    .steps_replayed
                    .fetch_add(1, Ordering::Relaxed);
                Ok(Replay::Done(v))
            }
            EntryState::Failed {
                error,
                retry_at: None,
            } => Ok(Replay::Done(Err(WfError::Step {
                step: name.to_string(),
                attempt: e.attempts,
                error: Box::new(error.clone()),
            }))),
            EntryState::Failed {
                retry_at: Some(t), ..
            } if *t > Utc::now() => {
                let t = *t;
                drop(st);
                Err(self.suspend_until(t, format!("step `{name}` retries at {}", t.to_rfc3339())))
            }
            EntryState::Started | EntryState::Pending | EntryState::Failed { .. } => {
                // An attempt journaled as started and replayed now never finished. It counts for
                // the crash-loop guard only if it made no progress (no checkpoint).
                let cut_short = u32::from(e.state == EntryState::Started);
                let interrupted = if cut_short == 1 && e.progressed {
                    0
                } else {
                    e.interrupted + cut_short
                };
                Ok(Replay::Attempt(Next {
                    attempt: e.attempts + 1,
                    failures: e.failures,
                    interrupted,
                    last_started: e.last_started,
                    checkpoint: if cut_short == 1 {
                        e.checkpoint.clone()
                    } else {
                        None
                    },
                }))
            }
            other => Err(self.nondeterminism(name, other, "a step")),
        }
    }

    /// The crash-loop guard (decision 0014): a step whose worker died inside it `limit` times in
    /// a row fails as a crash loop; before that, re-runs after the first back off durably.
    async fn crash_guard(
        &self,
        name: &str,
        opts: &StepOptions,
        next: &Next,
    ) -> Result<(), WfError> {
        if next.interrupted == 0 {
            return Ok(());
        }
        let config = &self.inner.shared.config;
        let limit = opts.crash_loop.unwrap_or(config.crash_loop_limit).max(1);
        if next.interrupted >= limit {
            let error = StepError::fatal(
                "crash_loop",
                format!(
                    "step `{name}` was cut short {} times in a row: its worker died inside it each time \
                     (out of memory? killed?). Fix the cause, then retry the step",
                    next.interrupted
                ),
            );
            return self
                .fail_step(name, next.attempt - 1, error, Cost::default(), 0, None)
                .await;
        }
        let delay = config.crash_loop_delay(next.interrupted);
        if let Some(started) = next.last_started
            && !delay.is_zero()
        {
            let at = crate::model::later(started, delay);
            if at > Utc::now() {
                tracing::warn!(
                    run = %self.inner.run.id,
                    step = name,
                    interrupted = next.interrupted,
                    "a step's worker died inside it again; backing off before the next attempt"
                );
                return Err(self.suspend_until(
                    at,
                    format!(
                        "step `{name}` was cut short {} times in a row; it runs again at {}",
                        next.interrupted,
                        at.to_rfc3339()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// May the attempt run: is there budget left, and a concurrency slot? Waiting for a slot
    /// suspends the run durably.
    async fn admit(
        &self,
        name: &str,
        opts: &StepOptions,
    ) -> Result<Option<crate::runtime::Reservation>, WfError> {
        let shared = &self.inner.shared;
        let mut reservation = None;
        if let Some(budget) = self.inner.budget {
            let root = self.inner.run.root_id;
            let (committed, current) = shared.store.tree_cost(root).await?;
            let budget = current.unwrap_or(budget);
            // Checked against what the attempt is expected to cost, so that the step that
            // would cross the budget does not start (issue 15); a step without an estimate
            // starts while anything is left. Steps of the same tree running in this process
            // count with their estimates until their cost is committed.
            let next = opts.estimate_micros.max(0);
            let admitted = {
                let mut r = shared.reserved.lock().unwrap_or_else(|e| e.into_inner());
                let held = r.get(&root).copied().unwrap_or(0);
                let ok = committed < budget && committed + held + next <= budget;
                if ok && next > 0 {
                    *r.entry(root).or_default() += next;
                }
                (ok, committed + held)
            };
            let (ok, spent) = admitted;
            if ok && next > 0 {
                // Already counted above under the lock; the guard takes it back when dropped.
                reservation = Some(crate::runtime::Reservation::adopt(
                    &shared.reserved,
                    root,
                    next,
                ));
            }
            if !ok {
                self.commit(
                    name,
                    vec![EventData::BudgetExceeded {
                        budget_micros: budget,
                        spent_micros: spent,
                        next_micros: next,
                    }],
                    Cost::default(),
                    None,
                )
                .await?;
                return Err(WfError::BudgetExceeded {
                    budget_micros: budget,
                    spent_micros: spent,
                    step: Some(name.to_string()),
                    next_micros: next,
                });
            }
        }
        if let Some(key) = &opts.concurrency_key {
            let run = &self.inner.run;
            match shared
                .store
                .acquire_slot(
                    key,
                    run.id,
                    run.lease_epoch,
                    name,
                    opts.priority,
                    Utc::now(),
                )
                .await?
            {
                SlotOutcome::Acquired => self.lock().took_slots = true,
                SlotOutcome::Full => return Err(self.suspend_slot(key, name, opts.priority)),
                SlotOutcome::Fenced => {
                    self.inner.stop.lease_lost();
                    return Err(self.set_fatal(WfError::LeaseLost));
                }
            }
        }
        Ok(reservation)
    }

    /// Journal the attempt's start (with its idempotency key) and build what its code gets.
    async fn begin(
        &self,
        name: &str,
        attempt: u32,
        opts: &StepOptions,
    ) -> Result<StepCtx, WfError> {
        let idempotency_key = format!("{}/{}", self.inner.run.id, name);
        let start = vec![EventData::StepStarted {
            attempt,
            idempotency_key: idempotency_key.clone(),
        }];
        if opts.durable_start || opts.concurrency_key.is_some() {
            self.commit(name, start, Cost::default(), None).await?;
        } else {
            // Queued ahead of the step's outcome, so it is committed no later than the outcome
            // (usually in the same commit); a crash inside the step a millisecond after it began
            // still finds the attempt counted.
            self.enqueue(name, start);
        }
        Ok(StepCtx {
            run_id: self.inner.run.id,
            step: name.to_string(),
            attempt,
            idempotency_key,
            cancel: self.inner.token.child_token(),
            cost: Arc::new(Mutex::new(Cost::default())),
            resumed: None,
            ctx: self.clone(),
        })
    }

    /// Run the attempt under its timeout; on cancellation give it a moment to stop cleanly
    /// (and to report what it already spent) before it is dropped.
    async fn run_attempt<T, F, Fut>(&self, sc: StepCtx, timeout: Option<Duration>, f: F) -> Ran<T>
    where
        F: FnOnce(StepCtx) -> Fut + Send,
        Fut: Future<Output = Result<T, StepError>> + Send,
    {
        let shared = &self.inner.shared;
        let cost = sc.cost.clone();
        let started = Instant::now();
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
        let result = tokio::select! {
            r = &mut fut => r,
            _ = self.inner.token.cancelled() => {
                match tokio::time::timeout(shared.config.cancel_grace, &mut fut).await {
                    Ok(r) => r,
                    Err(_) => Err(StepError::fatal("cancelled", "the run was cancelled while the step ran")),
                }
            }
        };
        let elapsed = started.elapsed();
        shared.metrics.record_step(elapsed);
        let cost = *cost.lock().unwrap_or_else(|e| e.into_inner());
        Ran {
            result,
            cost,
            duration_ms: elapsed.as_millis() as u64,
            stop: self.inner.stop.get(),
        }
    }

    /// Journal the outcome: the result, or a retry at a durable time, or the failure.
    async fn settle<T>(
        &self,
        name: &str,
        attempt: u32,
        failures: u32,
        opts: &StepOptions,
        ran: Ran<T>,
    ) -> Result<T, WfError>
    where
        T: Serialize + DeserializeOwned,
    {
        let shared = &self.inner.shared;
        let release = opts.concurrency_key.clone();
        let Ran {
            result,
            cost,
            duration_ms,
            stop,
        } = ran;
        let cost_opt = (!cost.is_zero()).then_some(cost);
        let error = match result {
            Ok(v) => {
                let out = match serde_json::to_value(&v) {
                    Ok(out) => out,
                    Err(e) => {
                        return self
                            .fail_step(
                                name,
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
                        .fail_step(name, attempt, error, cost, duration_ms, release)
                        .await;
                }
                let value = decode(name, &out)?;
                self.commit_slot(
                    name,
                    vec![EventData::StepSucceeded {
                        attempt,
                        output: out,
                        cost: cost_opt,
                        duration_ms,
                    }],
                    cost,
                    release,
                    opts.hold_slot,
                )
                .await?;
                shared
                    .metrics
                    .steps_succeeded
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(value);
            }
            Err(error) => error,
        };
        let policy = &opts.retry;
        let cancelled = stop == Some(StopReason::Cancel);
        // This failure is number `failures + 1`; attempts cut short by a dying worker do not
        // count (decision 0014).
        let failed = failures + 1;
        let retry = !cancelled
            && error.retryable
            && !policy.non_retryable.contains(&error.kind)
            && failed < policy.max_attempts;
        if !retry {
            let r = self
                .fail_step(name, attempt, error, cost, duration_ms, release)
                .await;
            return if cancelled {
                Err(WfError::Cancelled)
            } else {
                r
            };
        }
        let mut delay = policy.delay(failed);
        if let Some(ms) = error.retry_after_ms {
            delay = delay.max(Duration::from_millis(ms));
        }
        let at = crate::model::later(Utc::now(), delay);
        let reason = format!(
            "step `{name}` failed ({}) and retries at {}",
            error.kind,
            at.to_rfc3339()
        );
        self.commit(
            name,
            vec![EventData::StepFailed {
                attempt,
                error,
                retry_at: Some(at),
                cost: cost_opt,
                duration_ms,
            }],
            cost,
            release,
        )
        .await?;
        shared.metrics.steps_retried.fetch_add(1, Ordering::Relaxed);
        Err(self.suspend_until(at, reason))
    }

    /// Journal a final failure of the step.
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
}
