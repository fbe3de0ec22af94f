//! Group commit of checkpoints.
//!
//! Every step checkpoint of every run executing in this process goes through one queue. A few
//! committer tasks each take whatever has queued up (up to a batch limit) and write it with one
//! [`Store::append`] call: one commit for many runs. A lone run pays one commit per checkpoint,
//! as it would without the queue; sixteen concurrent runs share commits, which is how the engine
//! can checkpoint faster than the database can commit single rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::metrics::Metrics;
use crate::store::{AppendOp, Store};

/// How long a fire-and-forget record waits for company before it is committed alone.
const LINGER: Duration = Duration::from_millis(2);

/// Gather a batch. It goes out as soon as every run executing in this process has a checkpoint
/// waiting in it (nobody else can join), when it is full, or when its first awaited request
/// has waited `commit_delay`. Waiting for the runs the previous commit just released is what
/// lets sixteen runs share one commit instead of splitting into two halves that alternate.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Request>,
    first: Request,
    max_batch: usize,
    active: &AtomicUsize,
    commit_delay: Duration,
) -> Vec<Request> {
    let started = tokio::time::Instant::now();
    let mut first_awaited = first.reply.is_some().then_some(started);
    let mut awaited = usize::from(first.reply.is_some());
    let mut batch = vec![first];
    loop {
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(r) => {
                    if r.reply.is_some() {
                        awaited += 1;
                        first_awaited.get_or_insert_with(tokio::time::Instant::now);
                    }
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        if batch.len() >= max_batch || (awaited > 0 && awaited >= active.load(Ordering::Acquire)) {
            return batch;
        }
        let deadline = match first_awaited {
            Some(t) => t + commit_delay,
            None => started + LINGER,
        };
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => {
                if r.reply.is_some() {
                    awaited += 1;
                    first_awaited.get_or_insert_with(tokio::time::Instant::now);
                }
                batch.push(r);
            }
            Ok(None) | Err(_) => return batch,
        }
    }
}

/// Outcome of one queued append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CommitResult {
    Committed,
    /// The run's lease epoch moved on: another worker owns it.
    Fenced,
    Failed(String),
}

struct Request {
    op: AppendOp,
    queued: Instant,
    /// `None` for fire-and-forget appends (an attempt's start record).
    reply: Option<oneshot::Sender<CommitResult>>,
    /// For a run's outcome: answered, but not counted as a checkpoint a run is blocked on.
    outcome: Option<oneshot::Sender<CommitResult>>,
}

#[derive(Clone)]
pub(crate) struct Committer {
    tx: mpsc::UnboundedSender<Request>,
}

impl Committer {
    pub(crate) fn spawn(
        store: Arc<dyn Store>,
        tasks: usize,
        max_batch: usize,
        commit_delay: Duration,
        active: Arc<AtomicUsize>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel::<Request>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..tasks.max(1) {
            let rx = rx.clone();
            let active = active.clone();
            let store = store.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        collect(&mut rx, first, max_batch, &active, commit_delay).await
                    };
                    let ops: Vec<AppendOp> = batch.iter().map(|r| r.op.clone()).collect();
                    let t0 = Instant::now();
                    let result = store.append(&ops).await;
                    metrics.record_batch(batch.len(), t0.elapsed());
                    match result {
                        Ok(flags) => {
                            for (req, ok) in batch.into_iter().zip(flags) {
                                let r = if ok {
                                    CommitResult::Committed
                                } else {
                                    CommitResult::Fenced
                                };
                                if let Some(reply) = req.reply {
                                    metrics.record_checkpoint(req.queued.elapsed());
                                    let _ = reply.send(r);
                                } else if let Some(reply) = req.outcome {
                                    let _ = reply.send(r);
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, size = batch.len(), "checkpoint batch failed");
                            let msg = e.to_string();
                            for req in batch {
                                if let Some(reply) = req.reply.or(req.outcome) {
                                    let _ = reply.send(CommitResult::Failed(msg.clone()));
                                }
                            }
                        }
                    }
                }
            });
        }
        Committer { tx }
    }

    /// Queue an append without waiting for it. Requests are taken in order, so it is committed
    /// in the same batch as, or an earlier batch than, anything queued after it by this task.
    pub(crate) fn enqueue(&self, op: AppendOp) {
        let _ = self.tx.send(Request {
            op,
            queued: Instant::now(),
            reply: None,
            outcome: None,
        });
    }

    /// Queue an append and wait for its commit; `awaited` requests count toward the batch
    /// trigger, this one does not (a run's outcome: nobody else waits for it to join).
    pub(crate) async fn commit_outcome(&self, op: AppendOp) -> CommitResult {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Request {
                op,
                queued: Instant::now(),
                reply: None,
                outcome: Some(reply),
            })
            .is_err()
        {
            return CommitResult::Failed("the committer has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| CommitResult::Failed("the committer dropped the request".into()))
    }

    pub(crate) async fn commit(&self, op: AppendOp) -> CommitResult {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Request {
                op,
                queued: Instant::now(),
                reply: Some(reply),
                outcome: None,
            })
            .is_err()
        {
            return CommitResult::Failed("the committer has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| CommitResult::Failed("the committer dropped the request".into()))
    }
}
