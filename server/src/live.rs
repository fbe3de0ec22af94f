//! What moved, for the dashboard's live pages: one poller per server process looks at the runs every half second while
//! someone listens, and tells every open page what moved (server-sent events). A page decides
//! from the message whether it cares and, if so, re-renders its live regions.
//!
//! Polling the store, rather than the engine's own notifications, sees runs moved by workers in
//! other processes and on other hosts, on either database.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use slate_engine::store::RunPulse;
use slate_engine::{Engine, RunId, RunStatus};
use tokio::sync::broadcast;

/// How often the poller looks.
const EVERY: Duration = Duration::from_millis(500);

/// One run that moved.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Moved {
    /// The run.
    pub run: RunId,
    /// Its workflow.
    pub workflow: String,
    /// Its project, for the film workflows.
    pub project: Option<String>,
    /// Its parent.
    pub parent: Option<RunId>,
    /// Its state now.
    pub status: RunStatus,
    /// Its last event.
    pub seq: i64,
}

/// The feed: a broadcast of what moved, and its poller, started by the first listener.
pub struct Feed {
    tx: broadcast::Sender<Arc<str>>,
    started: AtomicBool,
    /// How many looks have found something moved. A page is rendered with the value of the
    /// moment; the stream says the current one when it connects, so a page that missed a move
    /// between its rendering and its connection refreshes at once.
    generation: AtomicU64,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(256).0,
            started: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }
}

impl Feed {
    /// The current generation (see the field).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Listen; starts the poller the first time.
    pub fn subscribe(self: &Arc<Self>, engine: &Engine) -> broadcast::Receiver<Arc<str>> {
        let rx = self.tx.subscribe();
        if !self.started.swap(true, Ordering::AcqRel) {
            let feed = self.clone();
            let engine = engine.clone();
            tokio::spawn(async move { feed.poll(engine).await });
        }
        rx
    }

    async fn poll(&self, engine: Engine) {
        // Empty at the first look, so everything unfinished is reported once: a page that
        // connected between its rendering and that look refreshes and misses nothing.
        let mut last: HashMap<RunId, RunPulse> = HashMap::new();
        // Runs created after this mark are seen even if they finish between two looks.
        let mut mark = RunId::default();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.tx.receiver_count() == 0 {
                // Nobody listens: look again later without reading the database.
                last.clear();
                mark = RunId::default();
                continue;
            }
            let now = match engine.store().pulse(Some(mark)).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "the live feed could not read the runs; trying again");
                    continue;
                }
            };
            let mut moved = vec![];
            let mut seen = HashMap::with_capacity(now.len());
            for p in now {
                if p.id > mark {
                    mark = p.id;
                }
                if last.get(&p.id) != Some(&p) {
                    moved.push(moved_of(&p));
                }
                seen.insert(p.id, p);
            }
            // Runs that left the unfinished set finished: say how.
            for (id, _) in last.iter().filter(|(id, _)| !seen.contains_key(id)) {
                if let Ok(r) = engine.get(*id).await {
                    moved.push(Moved {
                        run: r.id,
                        workflow: r.workflow,
                        project: r.scope,
                        parent: r.parent_id,
                        status: r.status,
                        seq: 0,
                    });
                }
            }
            // Finished runs are kept only while they are new, so the map stays the size of
            // what is in flight.
            seen.retain(|_, p| !p.status.is_terminal());
            last = seen;
            if !moved.is_empty() {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            for m in moved {
                if let Ok(text) = serde_json::to_string(&m) {
                    let _ = self.tx.send(text.into());
                }
            }
        }
    }
}

fn moved_of(p: &RunPulse) -> Moved {
    Moved {
        run: p.id,
        workflow: p.workflow.clone(),
        project: p.scope.clone(),
        parent: p.parent_id,
        status: p.status,
        seq: p.last_seq,
    }
}
