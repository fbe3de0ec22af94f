//! The journal: a run's history folded into "what each named step has done so far".
//!
//! Replay reads only this. A step, a timer, a signal wait, a child start and a limit marker
//! each occupy one name; the name is the durable contract between the code and its journal.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::StepError;
use crate::model::{Cost, EventData, EventRecord, RunId};

/// What a named entry has reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EntryState {
    /// An attempt started and has not finished (the worker may have died inside it).
    Started,
    /// A person asked for the step to run again.
    Pending,
    Succeeded(Value),
    Failed {
        error: StepError,
        retry_at: Option<DateTime<Utc>>,
    },
    Timer {
        until: DateTime<Utc>,
    },
    Waiting {
        signal: String,
        deadline: Option<DateTime<Utc>>,
    },
    Received {
        payload: Value,
        signal_id: i64,
    },
    TimedOut,
    Child {
        child_id: RunId,
    },
    Marker,
    LimitExceeded {
        max: u32,
    },
    Patch(bool),
}

impl EntryState {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            EntryState::Started => "a running step",
            EntryState::Pending => "a step to retry",
            EntryState::Succeeded(_) => "a completed step",
            EntryState::Failed { .. } => "a failed step",
            EntryState::Timer { .. } => "a timer",
            EntryState::Waiting { .. } | EntryState::Received { .. } | EntryState::TimedOut => {
                "a signal wait"
            }
            EntryState::Child { .. } => "a child run",
            EntryState::Marker | EntryState::LimitExceeded { .. } => "a limit marker",
            EntryState::Patch(_) => "a patch marker",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Sequence number of the entry's first event: "after" for reset-to-step.
    pub first_seq: i64,
    /// Attempts started (including ones a crash interrupted): the next attempt's number.
    pub attempts: u32,
    /// Attempts that do not count against anything (before a person's retry).
    pub attempt_base: u32,
    /// Attempts that returned an error since the last person's retry: what the retry policy
    /// counts (decision 0014).
    pub failures: u32,
    /// Attempts in a row that started and never finished before the latest one started: what
    /// the crash-loop guard counts. (The latest one, if it has not finished either, is one
    /// more.)
    pub interrupted: u32,
    /// The latest attempt journaled a checkpoint: it made progress before it was cut short,
    /// so its end is no crash loop (a long step killed again and again still advances).
    pub progressed: bool,
    /// When the latest attempt started.
    pub last_started: Option<DateTime<Utc>>,
    /// What the latest unfinished attempt kept (decision 0015); cleared when an attempt ends.
    pub checkpoint: Option<serde_json::Value>,
    pub state: EntryState,
    pub cost: Cost,
}

/// The fold of a run's events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Journal {
    pub entries: HashMap<String, Entry>,
    pub last_seq: i64,
    /// Claims in a row that took the run over from a dead worker with nothing journaled in
    /// between: the run-level crash-loop guard (decision 0014) for a worker that dies before
    /// even an attempt's start reaches the disk.
    pub stalled_claims: u32,
    /// The step of the latest event that had one.
    pub last_step: Option<String>,
    /// Resumptions that named a failed child: (sequence number, child).
    pub resumed_for: Vec<(i64, RunId)>,
    /// The latest claim's sequence number.
    last_claim: i64,
    /// Executions a person's retry or resumption ended (from their claim to the retry): what
    /// they journaled on their way to the failure (an error report, say) may be left behind
    /// by the path the retried code takes now, and is no sign of changed code.
    retried: Vec<(i64, i64)>,
}

impl Journal {
    pub(crate) fn from_events(events: &[EventRecord]) -> Self {
        let mut j = Journal::default();
        for ev in events {
            j.apply(ev.seq, ev.at, ev.step.as_deref(), &ev.data);
        }
        j
    }

    /// True when the run was resumed for `child`'s sake after the step `name` began: the
    /// failure that step received is not the end of it.
    pub(crate) fn resumed_after(&self, name: &str, child: RunId) -> bool {
        let Some(e) = self.entries.get(name) else {
            return false;
        };
        self.resumed_for
            .iter()
            .any(|(seq, c)| *c == child && *seq > e.first_seq)
    }

    /// True when the entry may be left unreached by a replay: it was journaled by an execution
    /// that a person's retry ended.
    pub(crate) fn may_be_left(&self, e: &Entry) -> bool {
        self.retried
            .iter()
            .any(|(from, to)| e.first_seq > *from && e.first_seq < *to)
    }

    /// Signals consumed by a wait still in the journal.
    pub(crate) fn consumed_signals(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .entries
            .values()
            .filter_map(|e| match e.state {
                EntryState::Received { signal_id, .. } => Some(signal_id),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn apply(
        &mut self,
        seq: i64,
        at: DateTime<Utc>,
        step: Option<&str>,
        data: &EventData,
    ) {
        self.last_seq = self.last_seq.max(seq);
        if matches!(
            data,
            EventData::RunResumed { .. }
                | EventData::StepRetryRequested { .. }
                | EventData::RunReset { .. }
        ) {
            self.retried.push((self.last_claim, seq));
        }
        if let EventData::RunClaimed { recovered, .. } = data {
            self.last_claim = seq;
            self.stalled_claims = if *recovered {
                self.stalled_claims + 1
            } else {
                0
            };
        } else {
            self.stalled_claims = 0;
        }
        if let EventData::RunResumed {
            child: Some(child), ..
        } = data
        {
            self.resumed_for.push((seq, *child));
        }
        let Some(step) = step else { return };
        self.last_step = Some(step.to_string());
        match data {
            EventData::RunReset { .. } => {
                if let Some(from) = self.entries.get(step).map(|e| e.first_seq) {
                    self.entries.retain(|_, e| e.first_seq < from);
                }
                return;
            }
            EventData::StepRetryRequested { .. } => {
                if let Some(e) = self.entries.get_mut(step) {
                    e.attempt_base = e.attempts;
                    e.failures = 0;
                    e.interrupted = 0;
                    e.progressed = false;
                    e.checkpoint = None;
                    e.state = EntryState::Pending;
                }
                return;
            }
            EventData::BudgetExceeded { .. } | EventData::Unknown => return,
            _ => {}
        }
        self.entries
            .entry(step.to_string())
            .or_insert_with(|| Entry::new(seq))
            .apply(at, data);
    }
}

impl Entry {
    fn new(first_seq: i64) -> Self {
        Entry {
            first_seq,
            attempts: 0,
            attempt_base: 0,
            failures: 0,
            interrupted: 0,
            progressed: false,
            last_started: None,
            checkpoint: None,
            state: EntryState::Started,
            cost: Cost::default(),
        }
    }

    /// A step's own event, applied to its entry.
    fn apply(&mut self, at: DateTime<Utc>, data: &EventData) {
        match data {
            EventData::StepStarted { attempt, .. } => {
                // The attempt before it started and never finished: its worker died inside it.
                // Only interruptions in a row that made no progress count (one that checkpointed
                // starts the count again).
                if self.attempts > self.attempt_base && self.state == EntryState::Started {
                    self.interrupted = if self.progressed {
                        0
                    } else {
                        self.interrupted + 1
                    };
                }
                self.progressed = false;
                self.attempts = self.attempts.max(*attempt);
                self.last_started = Some(at);
                self.state = EntryState::Started;
            }
            // Kept across attempts cut short, merged key by key; the attempt's state stays
            // "started" (the crash-loop guard still counts it if it never finishes).
            EventData::StepCheckpoint { data, .. } => {
                self.progressed = true;
                match (&mut self.checkpoint, data) {
                    (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) => {
                        for (k, v) in new {
                            old.insert(k.clone(), v.clone());
                        }
                    }
                    (slot, data) => *slot = Some(data.clone()),
                }
            }
            EventData::StepSucceeded {
                attempt,
                output,
                cost,
                ..
            } => {
                self.attempts = self.attempts.max(*attempt);
                self.interrupted = 0;
                self.checkpoint = None;
                self.state = EntryState::Succeeded(output.clone());
                if let Some(c) = cost {
                    self.cost.add(*c);
                }
            }
            EventData::StepFailed {
                attempt,
                error,
                retry_at,
                cost,
                ..
            } => {
                self.attempts = self.attempts.max(*attempt);
                self.failures += 1;
                self.interrupted = 0;
                // An attempt that returned an error ended: the next one starts afresh.
                self.checkpoint = None;
                self.state = EntryState::Failed {
                    error: error.clone(),
                    retry_at: *retry_at,
                };
                if let Some(c) = cost {
                    self.cost.add(*c);
                }
            }
            EventData::TimerStarted { until } => self.state = EntryState::Timer { until: *until },
            EventData::WaitStarted { signal, deadline } => {
                self.state = EntryState::Waiting {
                    signal: signal.clone(),
                    deadline: *deadline,
                }
            }
            EventData::SignalReceived {
                payload, signal_id, ..
            } => {
                self.state = EntryState::Received {
                    payload: payload.clone(),
                    signal_id: *signal_id,
                }
            }
            EventData::WaitTimedOut { .. } => self.state = EntryState::TimedOut,
            EventData::ChildStarted { child_id, .. } => {
                self.state = EntryState::Child {
                    child_id: *child_id,
                }
            }
            EventData::Marker { .. } => self.state = EntryState::Marker,
            EventData::Patch { applied, .. } => self.state = EntryState::Patch(*applied),
            EventData::LimitExceeded { max, .. } => {
                self.state = EntryState::LimitExceeded { max: *max }
            }
            _ => {}
        }
    }
}

/// A step as a person sees it: derived from the events, for inspection.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StepView {
    /// Name.
    pub name: String,
    /// `step`, `timer`, `wait`, `child` or `marker`.
    pub kind: &'static str,
    /// `running`, `succeeded`, `failed`, `retrying`, `sleeping`, `waiting`, `received`,
    /// `timed_out`, `started`, `done`, `limit_exceeded`, `pending`.
    pub status: &'static str,
    /// Attempts started.
    pub attempts: u32,
    /// First event time.
    pub started_at: DateTime<Utc>,
    /// Last event time.
    pub updated_at: DateTime<Utc>,
    /// Total wall time of its attempts, milliseconds.
    pub duration_ms: u64,
    /// Last error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// Next attempt time, if a retry is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_at: Option<DateTime<Utc>>,
    /// Cost reported by its attempts.
    pub cost: Cost,
    /// Child run id, for child entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_id: Option<RunId>,
    /// Signal name, for waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// Fold a run's events into the steps a person inspects, in the order they began. Entries
/// removed by a reset are left out, as replay leaves them out.
pub fn step_views(events: &[EventRecord]) -> Vec<StepView> {
    let mut journal = Journal::default();
    let mut views: HashMap<String, StepView> = HashMap::new();
    for ev in events {
        journal.apply(ev.seq, ev.at, ev.step.as_deref(), &ev.data);
        let Some(step) = ev.step.as_deref() else {
            continue;
        };
        let v = views.entry(step.to_string()).or_insert_with(|| StepView {
            name: step.to_string(),
            kind: "step",
            status: "started",
            attempts: 0,
            started_at: ev.at,
            updated_at: ev.at,
            duration_ms: 0,
            error: None,
            retry_at: None,
            cost: Cost::default(),
            child_id: None,
            signal: None,
        });
        v.updated_at = ev.at;
        match &ev.data {
            EventData::StepStarted { attempt, .. } => {
                v.attempts = v.attempts.max(*attempt);
                v.status = "running";
                v.retry_at = None;
            }
            EventData::StepSucceeded {
                attempt,
                cost,
                duration_ms,
                ..
            } => {
                v.attempts = v.attempts.max(*attempt);
                v.status = "succeeded";
                v.duration_ms += duration_ms;
                v.retry_at = None;
                if let Some(c) = cost {
                    v.cost.add(*c);
                }
            }
            EventData::StepFailed {
                attempt,
                error,
                retry_at,
                cost,
                duration_ms,
            } => {
                v.attempts = v.attempts.max(*attempt);
                v.status = if retry_at.is_some() {
                    "retrying"
                } else {
                    "failed"
                };
                v.error = Some(error.clone());
                v.retry_at = *retry_at;
                v.duration_ms += duration_ms;
                if let Some(c) = cost {
                    v.cost.add(*c);
                }
            }
            EventData::TimerStarted { until } => {
                v.kind = "timer";
                v.status = "sleeping";
                v.retry_at = Some(*until);
            }
            EventData::WaitStarted { signal, .. } => {
                v.kind = "wait";
                v.status = "waiting";
                v.signal = Some(signal.clone());
            }
            EventData::SignalReceived { signal, .. } => {
                v.kind = "wait";
                v.status = "received";
                v.signal = Some(signal.clone());
            }
            EventData::WaitTimedOut { .. } => {
                v.kind = "wait";
                v.status = "timed_out";
            }
            EventData::ChildStarted { child_id, .. } => {
                v.kind = "child";
                v.status = "started";
                v.child_id = Some(*child_id);
            }
            EventData::Marker { .. } => {
                v.kind = "marker";
                v.status = "done";
            }
            EventData::LimitExceeded { .. } => {
                v.kind = "marker";
                v.status = "limit_exceeded";
            }
            EventData::Patch { applied, .. } => {
                v.kind = "patch";
                v.status = if *applied { "applied" } else { "not_applied" };
            }
            EventData::StepRetryRequested { .. } => {
                v.status = "pending";
                v.retry_at = None;
            }
            _ => {}
        }
    }
    let mut out: Vec<(i64, StepView)> = views
        .into_iter()
        .filter_map(|(name, v)| journal.entries.get(&name).map(|e| (e.first_seq, v)))
        .collect();
    out.sort_by_key(|(seq, _)| *seq);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Names of the steps in the journal, to validate admin requests.
pub(crate) fn entry_names(events: &[EventRecord]) -> HashSet<String> {
    Journal::from_events(events).entries.into_keys().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, step: &str, data: EventData) -> EventRecord {
        EventRecord {
            run_id: RunId::new(),
            seq,
            at: Utc::now(),
            step: Some(step.into()),
            data,
        }
    }

    #[test]
    fn reset_drops_the_step_and_everything_after_it() {
        let ok = |v: i64| EventData::StepSucceeded {
            attempt: 1,
            output: v.into(),
            cost: None,
            duration_ms: 1,
        };
        let events = vec![
            ev(1, "a", ok(1)),
            ev(2, "b", ok(2)),
            ev(3, "c", ok(3)),
            ev(4, "b", EventData::RunReset { reason: "x".into() }),
        ];
        let j = Journal::from_events(&events);
        assert!(j.entries.contains_key("a"));
        assert!(!j.entries.contains_key("b"));
        assert!(!j.entries.contains_key("c"));
        assert_eq!(j.last_seq, 4);
    }

    #[test]
    fn retry_request_gives_a_fresh_attempt_budget() {
        let events = vec![
            ev(
                1,
                "a",
                EventData::StepStarted {
                    attempt: 3,
                    idempotency_key: "k".into(),
                },
            ),
            ev(
                2,
                "a",
                EventData::StepFailed {
                    attempt: 3,
                    error: StepError::fatal("x", "y"),
                    retry_at: None,
                    cost: None,
                    duration_ms: 0,
                },
            ),
            ev(3, "a", EventData::StepRetryRequested { reason: "r".into() }),
        ];
        let j = Journal::from_events(&events);
        let e = &j.entries["a"];
        assert_eq!(e.attempts, 3);
        assert_eq!(e.attempt_base, 3);
        assert_eq!(e.state, EntryState::Pending);
    }

    #[test]
    fn only_interruptions_without_progress_count_as_a_crash_loop() {
        let start = |a: u32| EventData::StepStarted {
            attempt: a,
            idempotency_key: "k".into(),
        };
        let keep = |a: u32| EventData::StepCheckpoint {
            attempt: a,
            data: serde_json::json!({ "done": a }),
        };
        // Three attempts cut short with nothing kept: two counted before the third started.
        let events = vec![
            ev(1, "s", start(1)),
            ev(2, "s", start(2)),
            ev(3, "s", start(3)),
        ];
        assert_eq!(Journal::from_events(&events).entries["s"].interrupted, 2);
        // A long step that keeps its progress at each attempt is never a crash loop, however
        // often it is cut short; one that then stops advancing counts again from there.
        let mut events = vec![];
        for a in 1..=30u32 {
            events.push(ev(2 * a as i64 - 1, "s", start(a)));
            events.push(ev(2 * a as i64, "s", keep(a)));
        }
        let j = Journal::from_events(&events);
        assert_eq!(j.entries["s"].interrupted, 0);
        events.push(ev(61, "s", start(31)));
        events.push(ev(62, "s", start(32)));
        let j = Journal::from_events(&events);
        assert_eq!(j.entries["s"].interrupted, 1, "attempt 31 kept nothing");
    }

    #[test]
    fn a_checkpoint_survives_attempts_cut_short_and_not_a_failure() {
        let start = |a: u32| EventData::StepStarted {
            attempt: a,
            idempotency_key: "k".into(),
        };
        let keep = |a: u32, v: serde_json::Value| EventData::StepCheckpoint {
            attempt: a,
            data: v,
        };
        let mut events = vec![
            ev(1, "a", start(1)),
            ev(2, "a", keep(1, serde_json::json!({"fal": "req-1"}))),
            // The worker died; attempt 2 resumes and keeps one more thing.
            ev(3, "a", start(2)),
            ev(4, "a", keep(2, serde_json::json!({"lf": "task-9"}))),
        ];
        let j = Journal::from_events(&events);
        let e = &j.entries["a"];
        assert_eq!(
            e.state,
            EntryState::Started,
            "a checkpoint is not an outcome"
        );
        assert_eq!(
            e.interrupted, 0,
            "attempt 1 made progress before it was cut short"
        );
        assert!(e.progressed);
        assert_eq!(
            e.checkpoint,
            Some(serde_json::json!({"fal": "req-1", "lf": "task-9"}))
        );
        events.push(ev(
            5,
            "a",
            EventData::StepFailed {
                attempt: 2,
                error: StepError::retryable("x", "y"),
                retry_at: Some(Utc::now()),
                cost: None,
                duration_ms: 0,
            },
        ));
        let j = Journal::from_events(&events);
        assert_eq!(
            j.entries["a"].checkpoint, None,
            "a returned error starts afresh"
        );
    }
}
