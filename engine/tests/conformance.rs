//! The engine's conformance suite, written once and run against both stores: every test below
//! runs on a fresh Postgres database (`postgres::*`) and a fresh SQLite file (`sqlite::*`).
//!
//! Side effects are counted outside the engine (in a `Probe` the test holds), so "did not run
//! again" is observed, not assumed.
//!
//! (One suite over 600 lines on purpose: each test runs on both stores from one definition.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slate_engine::testing::{fresh_postgres_url, fresh_sqlite_path, test_config};
use slate_engine::{
    Attempt, Cost, Ctx, Engine, EngineError, EventData, RetryPolicy, RunStatus, StartOptions,
    StepError, StepOptions, Store, WfError, Workflow, join_all,
};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Harness

enum Kind {
    Postgres,
    Sqlite,
}

struct H {
    engine: Engine,
    probe: Arc<Probe>,
    stop: CancellationToken,
}

impl Drop for H {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn harness(kind: Kind) -> H {
    let url = match kind {
        Kind::Postgres => fresh_postgres_url().await.expect("create a test database"),
        Kind::Sqlite => format!("sqlite://{}", fresh_sqlite_path().display()),
    };
    let engine = Engine::connect(&url, test_config()).await.expect("connect");
    let probe = Arc::new(Probe::default());
    register_all(&engine, &probe);
    let stop = CancellationToken::new();
    tokio::spawn(engine.worker().concurrency(16).run(stop.clone()));
    H {
        engine,
        probe,
        stop,
    }
}

#[derive(Default)]
struct Probe {
    /// Labels, in the order their runs took a slot.
    order: Mutex<Vec<String>>,
    hits: Mutex<HashMap<String, u32>>,
    flags: Mutex<HashMap<String, bool>>,
    current: AtomicUsize,
    max: AtomicUsize,
}

impl Probe {
    fn hit(&self, k: &str) -> u32 {
        let mut h = self.hits.lock().unwrap();
        let e = h.entry(k.to_string()).or_default();
        *e += 1;
        *e
    }
    fn hits(&self, k: &str) -> u32 {
        self.hits.lock().unwrap().get(k).copied().unwrap_or(0)
    }
    fn flag(&self, k: &str) -> bool {
        self.flags.lock().unwrap().get(k).copied().unwrap_or(false)
    }
    fn set(&self, k: &str, v: bool) {
        self.flags.lock().unwrap().insert(k.to_string(), v);
    }
}

const WAIT: Duration = Duration::from_secs(30);

async fn start<W: Workflow>(h: &H, input: W::Input) -> slate_engine::RunId {
    h.engine
        .start::<W>(&input, StartOptions::default())
        .await
        .expect("start")
        .run
        .id
}

async fn wait_status(engine: &Engine, id: slate_engine::RunId, status: RunStatus) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = engine.get(id).await.ok().map(|r| r.status);
        if now == Some(status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} never reached {status}; it is {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kinds(events: &[slate_engine::EventRecord], step: &str) -> Vec<&'static str> {
    events
        .iter()
        .filter(|e| e.step.as_deref() == Some(step))
        .map(|e| e.data.kind())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Workflows under test

fn fast_retry(n: u32) -> RetryPolicy {
    RetryPolicy {
        jitter: 0.0,
        ..RetryPolicy::attempts(n).backoff(Duration::from_millis(200), Duration::from_secs(5))
    }
}

struct ThreeSteps(Arc<Probe>);
impl Workflow for ThreeSteps {
    const NAME: &'static str = "t.three";
    type Input = ();
    type Output = u32;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<u32, WfError> {
        let p = self.0.clone();
        let a: u32 = ctx
            .step("a", |_| async move {
                p.hit("a");
                Ok(1)
            })
            .await?;
        let p = self.0.clone();
        let b: u32 = ctx
            .step_with(
                "b",
                StepOptions::new().retry(fast_retry(3)),
                |_| async move {
                    let n = p.hit("b");
                    if p.flag("b_fail") {
                        return Err(StepError::fatal("broken", "b is broken"));
                    }
                    if p.flag("b_transient") && n == 1 {
                        return Err(StepError::retryable("flaky", "try again"));
                    }
                    Ok(a + 1)
                },
            )
            .await?;
        ctx.sleep("nap", Duration::from_millis(50)).await?;
        let p = self.0.clone();
        ctx.step("c", |_| async move {
            p.hit("c");
            Ok(b + 1)
        })
        .await
    }
}

#[derive(Serialize, Deserialize)]
struct FlakyIn {
    fail_times: u32,
    kind: String,
    max_attempts: u32,
}

struct Flaky(Arc<Probe>);
impl Workflow for Flaky {
    const NAME: &'static str = "t.flaky";
    type Input = FlakyIn;
    type Output = u32;
    async fn run(&self, ctx: Ctx, i: FlakyIn) -> Result<u32, WfError> {
        let p = self.0.clone();
        let policy = fast_retry(i.max_attempts).never_retry("content_policy_violation");
        ctx.step_with("call", StepOptions::new().retry(policy), |sc| async move {
            p.hit("call");
            let n = p.hit(&format!("call/{}", i.kind));
            assert_eq!(n, sc.attempt(), "the attempt number is the number of calls");
            if n <= i.fail_times {
                Err(StepError::retryable(i.kind, format!("failure {n}")))
            } else {
                Ok(n)
            }
        })
        .await
    }
}

struct Looping(Arc<Probe>);
impl Workflow for Looping {
    const NAME: &'static str = "t.loop";
    type Input = u32;
    type Output = u32;
    async fn run(&self, ctx: Ctx, layers: u32) -> Result<u32, WfError> {
        let mut lp = ctx.bounded("composite", 20);
        for i in 0..layers {
            lp.next().await?;
            let p = self.0.clone();
            ctx.step(format!("layer/{i}"), |_| async move {
                p.hit("layer");
                Ok(())
            })
            .await?;
            if i % 7 == 6 {
                // A suspension mid-loop: the count must come back from the journal.
                ctx.sleep(format!("breathe/{i}"), Duration::from_millis(10))
                    .await?;
            }
        }
        Ok(lp.count())
    }
}

struct Verifying(Arc<Probe>);
impl Workflow for Verifying {
    const NAME: &'static str = "t.verify";
    type Input = bool;
    type Output = u32;
    async fn run(&self, ctx: Ctx, accept_third: bool) -> Result<u32, WfError> {
        let probe = self.0.clone();
        ctx.attempts("verify", 5, |n| {
            let ctx = ctx.clone();
            let p = probe.clone();
            async move {
                let ok: bool = ctx
                    .step(format!("check/{n}"), move |_| async move {
                        p.hit("check");
                        Ok(accept_third && n == 3)
                    })
                    .await?;
                ctx.sleep(format!("pause/{n}"), Duration::from_millis(10))
                    .await?;
                Ok(if ok {
                    Attempt::Done(n)
                } else {
                    Attempt::Retry(format!("attempt {n} rejected"))
                })
            }
        })
        .await
    }
}

#[derive(Serialize, Deserialize)]
struct WaitIn {
    signal: String,
    count: u32,
    timeout_ms: Option<u64>,
    pre_sleep_ms: u64,
}

struct Waiter;
impl Workflow for Waiter {
    const NAME: &'static str = "t.wait";
    type Input = WaitIn;
    type Output = Vec<Option<Value>>;
    async fn run(&self, ctx: Ctx, i: WaitIn) -> Result<Vec<Option<Value>>, WfError> {
        if i.pre_sleep_ms > 0 {
            ctx.sleep("before", Duration::from_millis(i.pre_sleep_ms))
                .await?;
        }
        let mut out = vec![];
        for n in 0..i.count {
            out.push(
                ctx.wait_signal(
                    format!("w{n}"),
                    &i.signal,
                    i.timeout_ms.map(Duration::from_millis),
                )
                .await?,
            );
        }
        Ok(out)
    }
}

/// One active run per project: waits for `go`.
struct Exclusive;
impl Workflow for Exclusive {
    const NAME: &'static str = "t.exclusive";
    type Input = String;
    type Output = Option<Value>;
    fn exclusive_key(project: &String) -> Option<String> {
        Some(project.clone())
    }
    async fn run(&self, ctx: Ctx, _project: String) -> Result<Option<Value>, WfError> {
        ctx.wait_signal("go", "go", None).await
    }
}

struct Fan(Arc<Probe>);
impl Workflow for Fan {
    const NAME: &'static str = "t.fan";
    type Input = u32;
    type Output = Vec<u32>;
    async fn run(&self, ctx: Ctx, n: u32) -> Result<Vec<u32>, WfError> {
        join_all((0..n).map(|i| {
            let p = self.0.clone();
            ctx.step(format!("branch/{i}"), move |_| async move {
                p.hit("branch");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(i * 2)
            })
        }))
        .await
    }
}

struct Child;
impl Workflow for Child {
    const NAME: &'static str = "t.child";
    type Input = u32;
    type Output = u32;
    async fn run(&self, ctx: Ctx, i: u32) -> Result<u32, WfError> {
        if i == 99 {
            return Err(WfError::failed("child_broken", "input 99 is not allowed"));
        }
        if i == 77 {
            ctx.wait_signal::<Value>("hold", "never", None).await?;
        }
        ctx.step("times-ten", move |_| async move { Ok(i * 10) })
            .await
    }
}

struct Parent;
impl Workflow for Parent {
    const NAME: &'static str = "t.parent";
    type Input = Vec<u32>;
    type Output = u32;
    async fn run(&self, ctx: Ctx, inputs: Vec<u32>) -> Result<u32, WfError> {
        let mut handles = vec![];
        for (k, i) in inputs.iter().enumerate() {
            handles.push(ctx.start_child::<Child>(format!("child/{k}"), i).await?);
        }
        let outs = join_all(handles.into_iter().map(|h| h.join())).await?;
        Ok(outs.iter().sum())
    }
}

/// A parent that joins a [`ThreeSteps`] child between two steps of its own.
struct Follower(Arc<Probe>);
impl Workflow for Follower {
    const NAME: &'static str = "t.follower";
    type Input = ();
    type Output = u32;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<u32, WfError> {
        let p = self.0.clone();
        ctx.step("before", |_| async move {
            p.hit("before");
            Ok(())
        })
        .await?;
        let n = ctx.child::<ThreeSteps>("child", &()).await?;
        let p = self.0.clone();
        ctx.step("after", |_| async move {
            p.hit("after");
            Ok(n + 10)
        })
        .await
    }
}

/// Changed in place behind a patch: the old code (probe flag `new_code` off) runs `a`, `b`,
/// waits for `go`, then `c`; the new code runs `b2` in place of `b` for runs that reach that
/// point on it.
struct Patchy(Arc<Probe>);
impl Workflow for Patchy {
    const NAME: &'static str = "t.patchy";
    type Input = ();
    type Output = String;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<String, WfError> {
        let p = self.0.clone();
        ctx.step("a", |_| async move {
            p.hit("patchy-a");
            Ok(())
        })
        .await?;
        let new = self.0.flag("new_code") && ctx.patched("b2").await?;
        let p = self.0.clone();
        let which: String = if new {
            ctx.step("b2", |_| async move {
                p.hit("patchy-b2");
                Ok("b2".to_string())
            })
            .await?
        } else {
            ctx.step("b", |_| async move {
                p.hit("patchy-b");
                Ok("b".to_string())
            })
            .await?
        };
        ctx.wait_signal::<Value>("go", "go", None).await?;
        Ok(which)
    }
}

/// A workflow whose second step is renamed by a deploy (the probe's `new_code`) without a
/// patch: an incompatible change.
struct Renamey(Arc<Probe>);
impl Workflow for Renamey {
    const NAME: &'static str = "t.renamey";
    type Input = ();
    type Output = String;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<String, WfError> {
        let p = self.0.clone();
        ctx.step("a", |_| async move {
            p.hit("renamey-a");
            Ok(())
        })
        .await?;
        let b = if self.0.flag("new_code") { "b2" } else { "b" };
        let p = self.0.clone();
        ctx.step(b, |_| async move {
            p.hit(&format!("renamey-{b}"));
            Ok(())
        })
        .await?;
        ctx.wait_signal::<Value>("go", "go", None).await?;
        let p = self.0.clone();
        ctx.step("c", |_| async move {
            p.hit("renamey-c");
            Ok(b.to_string())
        })
        .await
    }
}

/// A workflow on the third version of its definition.
struct Third;
impl Workflow for Third {
    const NAME: &'static str = "t.third";
    const VERSION: u32 = 3;
    type Input = ();
    type Output = u32;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<u32, WfError> {
        ctx.step("one", |_| async move { Ok(1u32) }).await
    }
}

/// Waits for `go` and returns what it carried.
struct Listener;
impl Workflow for Listener {
    const NAME: &'static str = "t.listener";
    type Input = ();
    type Output = Option<Value>;
    async fn run(&self, ctx: Ctx, _: ()) -> Result<Option<Value>, WfError> {
        ctx.wait_signal("go", "go", None).await
    }
}

/// Starts a [`Listener`], suspends, signals it, suspends again (so the send is replayed), and
/// returns what the listener heard.
struct Relay;
impl Workflow for Relay {
    const NAME: &'static str = "t.relay";
    type Input = u32;
    type Output = (String, Option<Value>);
    async fn run(&self, ctx: Ctx, n: u32) -> Result<(String, Option<Value>), WfError> {
        let child = ctx.start_child::<Listener>("listener", &()).await?;
        ctx.sleep("before", Duration::from_millis(30)).await?;
        ctx.send_signal("tell", child.id(), "go", json!({ "n": n }))
            .await?;
        ctx.sleep("after", Duration::from_millis(30)).await?;
        Ok((child.id().to_string(), child.join_step("heard").await?))
    }
}

struct Blocking(Arc<Probe>);
impl Workflow for Blocking {
    const NAME: &'static str = "t.block";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: Ctx, _: ()) -> Result<(), WfError> {
        let p = self.0.clone();
        ctx.step("long", |sc| async move {
            p.hit("long");
            sc.cancellation().cancelled().await;
            p.set("saw_cancel", true);
            Err::<(), _>(StepError::fatal("cancelled", "stopped on request"))
        })
        .await
    }
}

struct Keyed(Arc<Probe>);
impl Workflow for Keyed {
    const NAME: &'static str = "t.keyed";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: Ctx, _: ()) -> Result<(), WfError> {
        let p = self.0.clone();
        ctx.step_with(
            "call",
            StepOptions::new().concurrency("fal"),
            |_| async move {
                let now = p.current.fetch_add(1, Ordering::SeqCst) + 1;
                p.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(150)).await;
                p.current.fetch_sub(1, Ordering::SeqCst);
                p.hit("keyed");
                Ok(())
            },
        )
        .await
    }
}

/// A provider's job: the slot is taken when it is submitted and kept (held) across a durable
/// wait until the job is seen done; `fail` ends the run with the slot still held.
struct HeldJob(Arc<Probe>);
impl Workflow for HeldJob {
    const NAME: &'static str = "t.held";
    type Input = bool;
    type Output = ();
    async fn run(&self, ctx: Ctx, fail: bool) -> Result<(), WfError> {
        let p = self.0.clone();
        ctx.step_with(
            "submit",
            StepOptions::new().concurrency_held("gpu"),
            |_| async move {
                let now = p.current.fetch_add(1, Ordering::SeqCst) + 1;
                p.max.fetch_max(now, Ordering::SeqCst);
                Ok(())
            },
        )
        .await?;
        // The run suspends here, as a run waiting for a provider's webhook does.
        ctx.sleep("wait", Duration::from_millis(150)).await?;
        let p = self.0.clone();
        ctx.step("done", |_| async move {
            p.current.fetch_sub(1, Ordering::SeqCst);
            p.hit("held");
            if fail {
                return Err(StepError::fatal("boom", "the job's result was unusable"));
            }
            Ok(())
        })
        .await?;
        ctx.release_slot("gpu", "submit").await?;
        // Another suspension after the release: the replay gives it back again, harmlessly.
        ctx.sleep("after", Duration::from_millis(20)).await?;
        ctx.release_slot("gpu", "submit").await
    }
}

/// A run that takes a `lane` slot with a priority: the `hold` one keeps it until signalled.
struct Ranked(Arc<Probe>);
impl Workflow for Ranked {
    const NAME: &'static str = "t.ranked";
    type Input = (String, i32, bool);
    type Output = ();
    async fn run(
        &self,
        ctx: Ctx,
        (label, priority, hold): (String, i32, bool),
    ) -> Result<(), WfError> {
        let p = self.0.clone();
        let opts = if hold {
            StepOptions::new().concurrency_held("lane")
        } else {
            StepOptions::new().concurrency("lane")
        };
        ctx.step_with("take", opts.priority(priority), |_| async move {
            p.order.lock().unwrap().push(label);
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(())
        })
        .await?;
        if hold {
            let _: Option<Value> = ctx.wait_signal("go", "go", None).await?;
            ctx.release_slot("lane", "take").await?;
        }
        Ok(())
    }
}

struct Spender(Arc<Probe>);
impl Workflow for Spender {
    const NAME: &'static str = "t.spend";
    type Input = u32;
    type Output = u32;
    async fn run(&self, ctx: Ctx, steps: u32) -> Result<u32, WfError> {
        for i in 0..steps {
            let p = self.0.clone();
            ctx.step(format!("buy/{i}"), |sc| async move {
                sc.report_cost(Cost::new(1.0, 0.02));
                p.hit("buy");
                Ok(())
            })
            .await?;
        }
        Ok(steps)
    }
}

/// Spends $0.02 a step, and says so before each step.
struct CarefulSpender(Arc<Probe>);
impl Workflow for CarefulSpender {
    const NAME: &'static str = "t.spend-estimated";
    type Input = u32;
    type Output = u32;
    async fn run(&self, ctx: Ctx, steps: u32) -> Result<u32, WfError> {
        for i in 0..steps {
            let p = self.0.clone();
            ctx.step_with(
                format!("buy/{i}"),
                StepOptions::new().estimate(0.02),
                |sc| async move {
                    sc.report_cost(Cost::new(1.0, 0.02));
                    p.hit("careful");
                    Ok(())
                },
            )
            .await?;
        }
        Ok(steps)
    }
}

struct Big;
impl Workflow for Big {
    const NAME: &'static str = "t.big";
    type Input = usize;
    type Output = usize;
    async fn run(&self, ctx: Ctx, n: usize) -> Result<usize, WfError> {
        let s: String = ctx
            .step("make", move |_| async move { Ok("x".repeat(n)) })
            .await?;
        Ok(s.len())
    }
}

struct Twice;
impl Workflow for Twice {
    const NAME: &'static str = "t.twice";
    type Input = ();
    type Output = ();
    async fn run(&self, ctx: Ctx, _: ()) -> Result<(), WfError> {
        ctx.step("same", |_| async { Ok(()) }).await?;
        ctx.step("same", |_| async { Ok(()) }).await
    }
}

/// A nap in one branch and a signal in the other: one execution leaves two waits.
struct NapAndListen;
impl Workflow for NapAndListen {
    const NAME: &'static str = "t.nap-and-listen";
    type Input = u64;
    type Output = Value;
    async fn run(&self, ctx: Ctx, nap_ms: u64) -> Result<Value, WfError> {
        let nap = ctx.sleep("nap", Duration::from_millis(nap_ms));
        let listen = ctx.wait_signal::<Value>("listen", "word", None);
        let (napped, heard) = futures::join!(nap, listen);
        napped?;
        Ok(heard?.unwrap_or(Value::Null))
    }
}

/// One step that works longer than a lease.
struct Long;
impl Workflow for Long {
    const NAME: &'static str = "t.long";
    type Input = u64;
    type Output = u64;
    async fn run(&self, ctx: Ctx, ms: u64) -> Result<u64, WfError> {
        ctx.step("render", move |_| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        })
        .await
    }
}

/// Claims to be suspended without waiting on anything.
struct FakeSuspend;
impl Workflow for FakeSuspend {
    const NAME: &'static str = "t.fake-suspend";
    type Input = ();
    type Output = ();
    async fn run(&self, _ctx: Ctx, _: ()) -> Result<(), WfError> {
        Err(WfError::Suspended)
    }
}

fn register_all(e: &Engine, p: &Arc<Probe>) {
    e.register(ThreeSteps(p.clone()))
        .register(Flaky(p.clone()))
        .register(Looping(p.clone()))
        .register(Verifying(p.clone()))
        .register(Waiter)
        .register(Exclusive)
        .register(Fan(p.clone()))
        .register(Child)
        .register(Parent)
        .register(Follower(p.clone()))
        .register(Third)
        .register(Patchy(p.clone()))
        .register(Renamey(p.clone()))
        .register(Blocking(p.clone()))
        .register(Keyed(p.clone()))
        .register(HeldJob(p.clone()))
        .register(Ranked(p.clone()))
        .register(Listener)
        .register(Relay)
        .register(Spender(p.clone()))
        .register(CarefulSpender(p.clone()))
        .register(Big)
        .register(Twice)
        .register(NapAndListen)
        .register(Long)
        .register(FakeSuspend);
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn replay_does_not_repeat_side_effects(h: H) {
    h.probe.set("b_transient", true);
    let id = start::<ThreeSteps>(&h, ()).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(3)));
    // The run was executed at least three times (retry backoff, then the nap), yet `a` and
    // `c` ran once and `b` twice (one failure, one success).
    assert!(run.claims >= 3, "claims: {}", run.claims);
    assert_eq!(h.probe.hits("a"), 1);
    assert_eq!(h.probe.hits("b"), 2);
    assert_eq!(h.probe.hits("c"), 1);
    let events = h.engine.store().events(id).await.unwrap();
    assert_eq!(kinds(&events, "a"), ["step_started", "step_succeeded"]);
    assert_eq!(
        kinds(&events, "b"),
        [
            "step_started",
            "step_failed",
            "step_started",
            "step_succeeded"
        ]
    );
}

async fn retries_back_off_durably(h: H) {
    let id = start::<Flaky>(
        &h,
        FlakyIn {
            fail_times: 2,
            kind: "rate_limited".into(),
            max_attempts: 4,
        },
    )
    .await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(3)));
    let events = h.engine.store().events(id).await.unwrap();
    let mut delays = vec![];
    let mut last_fail = None;
    for e in &events {
        match &e.data {
            EventData::StepFailed { retry_at, .. } => {
                let at = retry_at.expect("a retryable failure schedules a retry");
                delays.push((at - e.at).num_milliseconds());
                last_fail = Some(at);
            }
            EventData::StepStarted { attempt, .. } if *attempt > 1 => {
                assert!(
                    e.at >= last_fail.unwrap(),
                    "attempt {attempt} started before its retry time"
                );
            }
            _ => {}
        }
    }
    // 200 ms then 400 ms (jitter off), each a durable timer: the run slept in between.
    assert_eq!(delays.len(), 2);
    assert!((199..=260).contains(&delays[0]), "{delays:?}");
    assert!((399..=460).contains(&delays[1]), "{delays:?}");
    let sleeps = events
        .iter()
        .filter(|e| {
            matches!(
                &e.data,
                EventData::RunSuspended {
                    status: RunStatus::Sleeping,
                    ..
                }
            )
        })
        .count();
    assert_eq!(sleeps, 2);
}

async fn final_errors_and_exhausted_retries_fail_the_run(h: H) {
    let id = start::<Flaky>(
        &h,
        FlakyIn {
            fail_times: 9,
            kind: "content_policy_violation".into(),
            max_attempts: 5,
        },
    )
    .await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        h.probe.hits("call"),
        1,
        "a non-retryable kind is never retried"
    );
    let err = run.error.unwrap();
    assert_eq!(err.kind, "step_failed");
    assert_eq!(err.step.as_deref(), Some("call"));
    assert!(
        err.message.contains("content_policy_violation"),
        "{}",
        err.message
    );

    let id = start::<Flaky>(
        &h,
        FlakyIn {
            fail_times: 9,
            kind: "server_error".into(),
            max_attempts: 3,
        },
    )
    .await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(h.probe.hits("call"), 1 + 3);
    let detail = h.engine.inspect(id).await.unwrap();
    let call = detail.steps.iter().find(|s| s.name == "call").unwrap();
    assert_eq!(call.attempts, 3);
    assert_eq!(call.status, "failed");
}

async fn bounded_loop_stops_at_its_limit(h: H) {
    let ok = start::<Looping>(&h, 20).await;
    let run = h.engine.wait_for(ok, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(20)));
    assert_eq!(h.probe.hits("layer"), 20);

    let id = start::<Looping>(&h, 25).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("composite"));
    assert!(
        err.message.contains("`composite`") && err.message.contains("20"),
        "{}",
        err.message
    );
    assert_eq!(
        h.probe.hits("layer"),
        40,
        "the second run executed exactly 20 layers"
    );
    let events = h.engine.store().events(id).await.unwrap();
    let markers = events
        .iter()
        .filter(|e| matches!(e.data, EventData::Marker { .. }))
        .count();
    assert_eq!(markers, 20);
    assert!(events.iter().any(
        |e| matches!(&e.data, EventData::LimitExceeded { limit, max: 20 } if limit == "composite")
    ));
}

async fn bounded_attempts_stop_at_five(h: H) {
    let id = start::<Verifying>(&h, false).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "limit_exceeded");
    assert_eq!(err.step.as_deref(), Some("verify"));
    assert!(
        err.message.contains("attempt 5 rejected"),
        "{}",
        err.message
    );
    assert_eq!(h.probe.hits("check"), 5);
    // The attempts' pauses suspended the run, so their count was read back from the journal
    // across executions, and still stopped at five. (Not one claim per pause: on a loaded
    // machine a 10 ms pause can be over before its execution ends.)
    assert!(run.claims >= 2, "claims: {}", run.claims);
    let pauses = h
        .engine
        .store()
        .events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.data, EventData::TimerStarted { .. }))
        .count();
    assert_eq!(pauses, 5, "one pause per attempt, none repeated");

    let id = start::<Verifying>(&h, true).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!(3)));
    assert_eq!(h.probe.hits("check"), 5 + 3);
}

async fn durable_sleep(h: H) {
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "x".into(),
            count: 0,
            timeout_ms: None,
            pre_sleep_ms: 400,
        },
    )
    .await;
    wait_status(&h.engine, id, RunStatus::Sleeping).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let events = h.engine.store().events(id).await.unwrap();
    let until = events
        .iter()
        .find_map(|e| match e.data {
            EventData::TimerStarted { until } => Some(until),
            _ => None,
        })
        .unwrap();
    let done = events
        .iter()
        .find(|e| matches!(e.data, EventData::RunCompleted { .. }))
        .unwrap();
    assert!(done.at >= until, "completed before the timer ran out");
}

async fn early_and_duplicate_signals(h: H) {
    // Early: the signal is sent while the run still sleeps before its wait.
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "go".into(),
            count: 1,
            timeout_ms: None,
            pre_sleep_ms: 300,
        },
    )
    .await;
    let out = h
        .engine
        .signal(Some(id), "go", Some("k0".into()), json!({"n": 1}))
        .await
        .unwrap();
    assert!(!out.duplicate);
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!([{"n": 1}])));

    // Duplicate: the same key twice is delivered once; the second wait times out.
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "go".into(),
            count: 2,
            timeout_ms: Some(1500),
            pre_sleep_ms: 0,
        },
    )
    .await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let a = h
        .engine
        .signal(Some(id), "go", Some("k1".into()), json!(1))
        .await
        .unwrap();
    let b = h
        .engine
        .signal(Some(id), "go", Some("k1".into()), json!(2))
        .await
        .unwrap();
    assert!(!a.duplicate);
    assert!(b.duplicate);
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!([1, null])));

    // Addressed by name only (a webhook that knows a task id, not a run id).
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "video-complete/task-7".into(),
            count: 1,
            timeout_ms: None,
            pre_sleep_ms: 0,
        },
    )
    .await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let o = h
        .engine
        .signal(
            None,
            "video-complete/task-7",
            Some("evt-1".into()),
            json!({"url": "u"}),
        )
        .await
        .unwrap();
    assert_eq!(o.woken, 1);
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!([{"url": "u"}])));
}

async fn signal_wait_times_out(h: H) {
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "never".into(),
            count: 1,
            timeout_ms: Some(300),
            pre_sleep_ms: 0,
        },
    )
    .await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!([null])));
}

async fn fan_out_and_join(h: H) {
    let id = start::<Fan>(&h, 4).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!([0, 2, 4, 6])));
    assert_eq!(h.probe.hits("branch"), 4);
    // The branches overlapped: all four started before the first finished.
    let events = h.engine.store().events(id).await.unwrap();
    let first_done = events
        .iter()
        .position(|e| matches!(e.data, EventData::StepSucceeded { .. }))
        .unwrap();
    let started_before = events[..first_done]
        .iter()
        .filter(|e| matches!(e.data, EventData::StepStarted { .. }))
        .count();
    assert_eq!(started_before, 4);

    let id = start::<Parent>(&h, vec![1, 2, 3]).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(60)));
    let children = h
        .engine
        .list(&slate_engine::RunFilter {
            parent_id: Some(id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(children.len(), 3);
    assert!(
        children
            .iter()
            .all(|c| c.root_id == id && c.status == RunStatus::Completed)
    );

    let id = start::<Parent>(&h, vec![1, 99]).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "child_failed");
    assert!(err.message.contains("input 99"), "{}", err.message);
}

async fn cancel_runs(h: H) {
    // A waiting run is cancelled at once.
    let id = start::<Waiter>(
        &h,
        WaitIn {
            signal: "never".into(),
            count: 1,
            timeout_ms: None,
            pre_sleep_ms: 0,
        },
    )
    .await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let out = h.engine.cancel(id, "changed my mind").await.unwrap();
    assert_eq!(out.cancelled, vec![id]);
    let run = h.engine.get(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(matches!(
        h.engine.cancel(id, "again").await,
        Err(EngineError::Conflict(_))
    ));

    // A running step sees its cancellation token.
    let id = start::<Blocking>(&h, ()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.probe.hits("long") == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let out = h.engine.cancel(id, "stop it").await.unwrap();
    assert_eq!(out.requested, vec![id]);
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    assert!(h.probe.flag("saw_cancel"));
    let events = h.engine.store().events(id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.data, EventData::RunCancelled { reason } if reason == "stop it"))
    );

    // Cancelling a parent cancels its children.
    let id = start::<Parent>(&h, vec![77]).await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let child = h
        .engine
        .list(&slate_engine::RunFilter {
            parent_id: Some(id),
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .id;
    wait_status(&h.engine, child, RunStatus::Waiting).await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    h.engine.cancel(id, "abandon").await.unwrap();
    assert_eq!(
        h.engine.get(child).await.unwrap().status,
        RunStatus::Cancelled
    );
    assert_eq!(h.engine.get(id).await.unwrap().status, RunStatus::Cancelled);
}

async fn retry_a_failed_step(h: H) {
    h.probe.set("b_fail", true);
    let id = start::<ThreeSteps>(&h, ()).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_ref().unwrap().step.as_deref(), Some("b"));
    // Only a failed step can be retried.
    assert!(matches!(
        h.engine.retry_step(id, "a", "no").await,
        Err(EngineError::Conflict(_))
    ));
    assert!(matches!(
        h.engine.retry_step(id, "zzz", "no").await,
        Err(EngineError::NotFound(_))
    ));
    h.probe.set("b_fail", false);
    h.engine
        .retry_step(id, "b", "fixed the cause")
        .await
        .unwrap();
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(3)));
    assert_eq!(
        h.probe.hits("a"),
        1,
        "steps before the retried one are not repeated"
    );
    assert_eq!(h.probe.hits("b"), 2);
    assert_eq!(h.probe.hits("c"), 1);
    let events = h.engine.store().events(id).await.unwrap();
    assert!(kinds(&events, "b").contains(&"step_retry_requested"));
}

/// The only child of `parent`.
async fn only_child(h: &H, parent: slate_engine::RunId) -> slate_engine::RunId {
    let kids = h
        .engine
        .list(&slate_engine::RunFilter {
            parent_id: Some(parent),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(kids.len(), 1);
    kids[0].id
}

/// A parent follows its child (decision 0025). Retrying the parent alone re-joins the child's
/// current outcome (still failed: the parent waits, it does not fail again); retrying the child
/// then completes both. And a failed parent whose child is retried is resumed with it. Nothing
/// before the failure runs twice.
async fn a_retried_child_takes_its_parent_along(h: H) {
    h.probe.set("b_fail", true);
    let id = start::<Follower>(&h, ()).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_ref().unwrap().kind, "child_failed");
    let child = only_child(&h, id).await;
    h.engine.resume(id, "try the parent").await.unwrap();
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    h.probe.set("b_fail", false);
    h.engine.retry_step(child, "b", "fixed b").await.unwrap();
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!(13)));
    for (step, n) in [("before", 1), ("a", 1), ("b", 2), ("c", 1), ("after", 1)] {
        assert_eq!(h.probe.hits(step), n, "{step}");
    }

    // The child alone retried: its failed parent follows.
    h.probe.set("b_fail", true);
    let id = start::<Follower>(&h, ()).await;
    assert_eq!(
        h.engine.wait_for(id, WAIT).await.unwrap().status,
        RunStatus::Failed
    );
    let child = only_child(&h, id).await;
    h.probe.set("b_fail", false);
    h.engine.retry_step(child, "b", "fixed b").await.unwrap();
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(h.probe.hits("before"), 2, "once per parent");
    assert_eq!(h.probe.hits("after"), 2);
    let events = h.engine.store().events(id).await.unwrap();
    let resumed: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.data {
            slate_engine::EventData::RunResumed { child: c, .. } => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(resumed, [Some(child)], "resumed once, for its child");
}

/// Every run records the version of its workflow's definition and the build that started it,
/// children too; runs are found by version.
async fn runs_record_their_versions(h: H) {
    let third = start::<Third>(&h, ()).await;
    let follower = start::<Follower>(&h, ()).await;
    h.engine.wait_for(third, WAIT).await.unwrap();
    h.engine.wait_for(follower, WAIT).await.unwrap();
    let child = only_child(&h, follower).await;
    let build = h.engine.config().build.clone();
    for (id, version) in [(third, 3), (follower, 1), (child, 1)] {
        let r = h.engine.get(id).await.unwrap();
        assert_eq!(r.workflow_version, version, "{}", r.workflow);
        assert_eq!(r.build.as_deref(), Some(build.as_str()));
    }
    let on = |v: u32| slate_engine::RunFilter {
        workflow_version: Some(v),
        limit: Some(500),
        ..Default::default()
    };
    let v3 = h.engine.list(&on(3)).await.unwrap();
    assert_eq!(v3.iter().map(|r| r.id).collect::<Vec<_>>(), [third]);
    assert!(
        h.engine
            .list(&on(1))
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != third && r.workflow_version == 1)
    );
}

/// A patch (`Ctx::patched`): a run that passed the patch point on the old code keeps it when
/// the new code replays its journal; a run reaching the point on the new code takes the new
/// branch; both finish, and both are found by the patch's name.
async fn a_patch_keeps_old_runs_on_their_code(h: H) {
    let old = start::<Patchy>(&h, ()).await;
    wait_status(&h.engine, old, RunStatus::Waiting).await;
    // The deploy: the new code from now on.
    h.probe.set("new_code", true);
    let new = start::<Patchy>(&h, ()).await;
    wait_status(&h.engine, new, RunStatus::Waiting).await;
    for id in [old, new] {
        h.engine
            .signal(Some(id), "go", None, json!({}))
            .await
            .unwrap();
    }
    let o = h.engine.wait_for(old, WAIT).await.unwrap();
    let n = h.engine.wait_for(new, WAIT).await.unwrap();
    assert_eq!(
        (o.status, n.status),
        (RunStatus::Completed, RunStatus::Completed),
        "{:?} {:?}",
        o.error,
        n.error
    );
    assert_eq!(o.output, Some(json!("b")), "the old run kept its code");
    assert_eq!(n.output, Some(json!("b2")), "the new run took the new code");
    assert_eq!(h.probe.hits("patchy-b"), 1, "b ran once, for the old run");
    assert_eq!(h.probe.hits("patchy-b2"), 1);
    let marked = h
        .engine
        .list(&slate_engine::RunFilter {
            patch: Some("b2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<_> = marked.iter().map(|r| r.id).collect();
    ids.sort();
    let mut want = vec![old, new];
    want.sort();
    assert_eq!(ids, want);
    for (id, want) in [(old, false), (new, true)] {
        let applied = h
            .engine
            .store()
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .find_map(|e| match e.data {
                slate_engine::EventData::Patch { applied, .. } => Some(applied),
                _ => None,
            });
        assert_eq!(applied, Some(want));
    }
}

/// A step renamed without a patch under a run in flight: a dry replay of its history names the
/// run, sequence number and both entries; the live run stops `blocked` with the same details
/// and runs nothing of the changed code; a fork from the step before the change finishes the
/// work without running the earlier step again; a rollback and a retry finish a blocked run;
/// a blocked run can be cancelled.
async fn a_renamed_step_blocks_the_run_and_a_fork_finishes_it(h: H) {
    let old = start::<Renamey>(&h, ()).await;
    wait_status(&h.engine, old, RunStatus::Waiting).await;
    let history = h.engine.history(old).await.unwrap();
    let fits = h.engine.replay(&history).await;
    assert!(!fits.blocks(), "{fits:?}");
    assert_eq!(fits.outcome, "waits");
    assert_eq!(fits.reused, ["a", "b", "go"]);

    h.probe.set("new_code", true);
    let dry = h.engine.replay(&history).await;
    let m = dry.mismatch.clone().expect("a mismatch");
    let b_seq = events_of(&h, old)
        .await
        .iter()
        .find(|e| e.step.as_deref() == Some("b"))
        .unwrap()
        .seq;
    assert_eq!(
        (m.seq, m.expected.name.as_str(), m.found.name.as_str()),
        (b_seq, "b", "b2")
    );
    assert_eq!(m.build.as_deref(), Some(h.engine.config().build.as_str()));
    assert!(dry.blocks());
    assert_eq!(h.probe.hits("renamey-b2"), 0, "a dry replay runs nothing");

    h.engine
        .signal(Some(old), "go", None, json!({}))
        .await
        .unwrap();
    let run = h.engine.wait_for(old, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Blocked, "{:?}", run.error);
    let e = run.error.unwrap();
    assert_eq!(e.kind, "nondeterminism");
    assert_eq!(e.details["seq"], json!(b_seq));
    assert_eq!(e.details["expected"]["name"], json!("b"));
    assert_eq!(e.details["found"]["name"], json!("b2"));
    assert!(
        e.message.contains("`b`") && e.message.contains("`b2`"),
        "{}",
        e.message
    );
    assert_eq!(
        h.probe.hits("renamey-b2"),
        0,
        "the blocked run ran none of the new code"
    );
    let blocked = h
        .engine
        .list(&slate_engine::RunFilter {
            status: Some(RunStatus::Blocked),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(blocked.iter().map(|r| r.id).collect::<Vec<_>>(), [old]);

    // The way out on the new code: a fork from `b`, which keeps `a`.
    let fork = h.engine.fork(old, "b", "renamed b").await.unwrap();
    assert!(matches!(
        h.engine.fork(old, "nope", "x").await,
        Err(EngineError::NotFound(_))
    ));
    wait_status(&h.engine, fork.id, RunStatus::Waiting).await;
    h.engine
        .signal(Some(fork.id), "go", None, json!({}))
        .await
        .unwrap();
    let done = h.engine.wait_for(fork.id, WAIT).await.unwrap();
    assert_eq!(done.status, RunStatus::Completed, "{:?}", done.error);
    assert_eq!(done.output, Some(json!("b2")));
    for (step, n) in [("a", 1), ("b", 1), ("b2", 1), ("c", 1)] {
        assert_eq!(h.probe.hits(&format!("renamey-{step}")), n, "{step}");
    }
    assert!(matches!(
        events_of(&h, fork.id).await[1].data,
        slate_engine::EventData::RunForked { from, .. } if from == old
    ));
    h.engine.cancel(old, "forked").await.unwrap();
    assert_eq!(
        h.engine.get(old).await.unwrap().status,
        RunStatus::Cancelled
    );

    // The other way out: code that fits again (a rollback), then a retry.
    h.probe.set("new_code", false);
    let again = start::<Renamey>(&h, ()).await;
    wait_status(&h.engine, again, RunStatus::Waiting).await;
    h.probe.set("new_code", true);
    h.engine
        .signal(Some(again), "go", None, json!({}))
        .await
        .unwrap();
    assert_eq!(
        h.engine.wait_for(again, WAIT).await.unwrap().status,
        RunStatus::Blocked
    );
    h.probe.set("new_code", false);
    h.engine.resume(again, "rolled back").await.unwrap();
    let run = h.engine.wait_for(again, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(h.probe.hits("renamey-b2"), 1, "only the fork's");
    assert_eq!(h.probe.hits("renamey-c"), 2);
}

async fn reset_to_a_step(h: H) {
    let id = start::<ThreeSteps>(&h, ()).await;
    h.engine.wait_for(id, WAIT).await.unwrap();
    assert!(matches!(
        h.engine.reset_to_step(id, "nope", "x").await,
        Err(EngineError::NotFound(_))
    ));
    h.engine
        .reset_to_step(id, "b", "redo from b")
        .await
        .unwrap();
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(h.probe.hits("a"), 1);
    assert_eq!(h.probe.hits("b"), 2);
    assert_eq!(
        h.probe.hits("c"),
        2,
        "steps after the reset point run again"
    );
    let events = h.engine.store().events(id).await.unwrap();
    assert!(kinds(&events, "b").contains(&"run_reset"));
}

async fn idempotent_start(h: H) {
    let opts = StartOptions {
        idempotency_key: Some("order-42".into()),
        ..Default::default()
    };
    let a = h
        .engine
        .start::<ThreeSteps>(&(), opts.clone())
        .await
        .unwrap();
    let b = h.engine.start::<ThreeSteps>(&(), opts).await.unwrap();
    assert!(a.created);
    assert!(!b.created);
    assert_eq!(a.run.id, b.run.id);
    let id = slate_engine::RunId::new();
    let opts = StartOptions {
        id: Some(id),
        ..Default::default()
    };
    let c = h
        .engine
        .start::<ThreeSteps>(&(), opts.clone())
        .await
        .unwrap();
    let d = h.engine.start::<ThreeSteps>(&(), opts).await.unwrap();
    assert!(c.created && !d.created);
    assert_eq!(c.run.id, id);
    assert_eq!(d.run.id, id);
    h.engine.wait_for(a.run.id, WAIT).await.unwrap();
    h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(h.probe.hits("a"), 2, "two distinct runs, not four");
    assert!(matches!(
        h.engine
            .start_raw("no.such", json!(null), StartOptions::default())
            .await,
        Err(EngineError::UnknownWorkflow(_))
    ));
}

async fn per_key_concurrency(h: H) {
    h.engine
        .set_concurrency_limit("fal", Some(2))
        .await
        .unwrap();
    let mut ids = vec![];
    for _ in 0..6 {
        ids.push(start::<Keyed>(&h, ()).await);
    }
    for id in ids {
        let r = h.engine.wait_for(id, WAIT).await.unwrap();
        assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    }
    assert_eq!(h.probe.hits("keyed"), 6);
    assert_eq!(
        h.probe.max.load(Ordering::SeqCst),
        2,
        "at most two `fal` steps at once"
    );
    let usage = h.engine.store().concurrency_usage().await.unwrap();
    assert_eq!(
        usage,
        vec![("fal".to_string(), 0, Some(2))],
        "every slot was released"
    );
}

/// A held slot bounds the work it stands for, not only the step that started it: it survives
/// the run's suspensions, is given back when the work is done, and a run that ends without
/// giving it back frees it.
async fn held_slots_bound_work_across_suspensions(h: H) {
    h.engine
        .set_concurrency_limit("gpu", Some(2))
        .await
        .unwrap();
    let failing = start::<HeldJob>(&h, true).await;
    let mut ids = vec![];
    for _ in 0..6 {
        ids.push(start::<HeldJob>(&h, false).await);
    }
    let r = h.engine.wait_for(failing, WAIT).await.unwrap();
    assert_eq!(r.status, RunStatus::Failed);
    for id in ids {
        let r = h.engine.wait_for(id, WAIT).await.unwrap();
        assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    }
    assert_eq!(h.probe.hits("held"), 7);
    assert_eq!(
        h.probe.max.load(Ordering::SeqCst),
        2,
        "at most two jobs between submission and completion, though each run suspended"
    );
    let usage = h.engine.store().concurrency_usage().await.unwrap();
    assert_eq!(
        usage,
        vec![("gpu".to_string(), 0, Some(2))],
        "every slot was given back, the failed run's too"
    );
}

/// A freed slot goes to the highest-priority waiter, then to the longest waiting among equals,
/// and wakes only the run whose turn it is (not every waiter, to find the slot taken).
async fn a_freed_slot_goes_to_the_highest_waiter(h: H) {
    h.engine
        .set_concurrency_limit("lane", Some(1))
        .await
        .unwrap();
    let ranked = |label: &str, p: i32, hold: bool| (label.to_string(), p, hold);
    let blocker = start::<Ranked>(&h, ranked("blocker", 9, true)).await;
    wait_status(&h.engine, blocker, RunStatus::Waiting).await;
    let mut waiters = vec![];
    for (label, p) in [("low-1", 0), ("low-2", 0), ("high", 5), ("mid", 2)] {
        let id = start::<Ranked>(&h, ranked(label, p, false)).await;
        wait_status(&h.engine, id, RunStatus::Waiting).await;
        waiters.push((label, id));
    }
    h.engine
        .signal(Some(blocker), "go", None, json!(null))
        .await
        .unwrap();
    for (_, id) in waiters.iter().chain([&("blocker", blocker)]) {
        let r = h.engine.wait_for(*id, WAIT).await.unwrap();
        assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    }
    assert_eq!(
        *h.probe.order.lock().unwrap(),
        ["blocker", "high", "mid", "low-1", "low-2"],
        "the highest priority first, then the longest waiting"
    );
    for (label, id) in waiters {
        let r = h.engine.get(id).await.unwrap();
        // Claimed to start, then once more when its turn came.
        assert!(
            r.claims <= 2,
            "{label} was claimed {} times: woken for slots that were not its",
            r.claims
        );
    }
}

/// A run signals another (its child) as a step: delivered once, though the run is replayed
/// after sending it, and keyed so that a second send of that step is a duplicate.
async fn a_run_signals_another_once(h: H) {
    let id = start::<Relay>(&h, 5).await;
    let r = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    let (child, heard): (String, Option<Value>) =
        serde_json::from_value(r.output.unwrap()).unwrap();
    assert_eq!(heard, Some(json!({ "n": 5 })));
    let child = slate_engine::RunId(child.parse().unwrap());
    let again = h
        .engine
        .signal(
            Some(child),
            "go",
            Some(format!("{id}/tell")),
            json!({ "n": 6 }),
        )
        .await
        .unwrap();
    assert!(
        again.duplicate,
        "the step's signal is keyed by run and step"
    );
}

async fn budget_stops_spending(h: H) {
    let s = h
        .engine
        .start::<Spender>(
            &10,
            StartOptions {
                budget_usd: Some(0.05),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let run = h.engine.wait_for(s.run.id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "budget_exceeded");
    assert!(err.message.contains("budget"), "{}", err.message);
    // 0.02 per step: after three steps 0.06 is spent, so the fourth never starts.
    assert_eq!(h.probe.hits("buy"), 3);
    assert_eq!(run.cost_micros, 60_000);
    assert_eq!(run.cost_units, 3.0);
    let d = h.engine.inspect(s.run.id).await.unwrap();
    assert!((d.tree_cost_usd - 0.06).abs() < 1e-9);
    assert_eq!(d.budget_usd, Some(0.05));
    // Raising the budget and re-driving continues where it stopped.
    h.engine.set_budget(s.run.id, Some(1.0)).await.unwrap();
    h.engine.resume(s.run.id, "more money").await.unwrap();
    let run = h.engine.wait_for(s.run.id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(h.probe.hits("buy"), 10);
}

async fn a_budget_is_never_crossed_by_a_step_with_an_estimate(h: H) {
    let s = h
        .engine
        .start::<CarefulSpender>(
            &10,
            StartOptions {
                budget_usd: Some(0.05),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let run = h.engine.wait_for(s.run.id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "budget_exceeded");
    // Two steps spend $0.04; the third would take it to $0.06, so it never starts.
    assert_eq!(h.probe.hits("careful"), 2);
    assert_eq!(run.cost_micros, 40_000, "spent no more than the budget");
    assert_eq!(err.step.as_deref(), Some("buy/2"));
    assert!(err.message.contains("buy/2"), "{}", err.message);
    assert!(err.message.contains("$0.0200"), "{}", err.message);
    assert_eq!(err.details["next_step_estimate_usd"], 0.02);
}

async fn large_results_are_refused(h: H) {
    let id = start::<Big>(&h, 300_000).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert!(err.message.contains("result_too_large"), "{}", err.message);
    assert!(err.message.contains("blob"), "{}", err.message);
    let id = start::<Big>(&h, 1000).await;
    assert_eq!(
        h.engine.wait_for(id, WAIT).await.unwrap().status,
        RunStatus::Completed
    );
}

async fn duplicate_step_names_are_refused(h: H) {
    let id = start::<Twice>(&h, ()).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.kind, "nondeterminism");
    assert!(err.message.contains("`same`"), "{}", err.message);
}

async fn stale_lease_holders_are_fenced(h: H) {
    // Stop the harness worker so that this test claims by hand.
    h.stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store: Arc<dyn Store> = h.engine.store().clone();
    let id = start::<ThreeSteps>(&h, ()).await;
    let now = chrono::Utc::now();
    let first = store.claim("w1", 10, now, now).await.unwrap();
    let first = first.into_iter().find(|c| c.run.id == id).unwrap();
    // Its lease ends "now", so a second worker takes it over.
    let later = now + chrono::Duration::milliseconds(5);
    let second = store
        .claim("w2", 10, later, later + chrono::Duration::seconds(30))
        .await
        .unwrap();
    let second = second.into_iter().find(|c| c.run.id == id).unwrap();
    assert_eq!(second.run.lease_epoch, first.run.lease_epoch + 1);
    assert!(second.events.iter().any(|e| matches!(
        e.data,
        EventData::RunClaimed {
            recovered: true,
            ..
        }
    )));
    let op = |epoch: i64, seq: i64| slate_engine::store::AppendOp {
        run_id: id,
        epoch,
        events: vec![slate_engine::NewEvent {
            seq,
            at: chrono::Utc::now(),
            step: Some("a".into()),
            data: EventData::Marker {
                limit: "x".into(),
                n: 1,
            },
        }],
        cost: Cost::default(),
        release_slot: None,
        hold_slot: false,
        finish: None,
    };
    let last = second.events.last().unwrap().seq;
    let res = store
        .append(&[
            op(first.run.lease_epoch, last + 1),
            op(second.run.lease_epoch, last + 2),
        ])
        .await
        .unwrap();
    assert_eq!(
        res,
        vec![false, true],
        "the stale holder's write is refused"
    );
    let events = store.events(id).await.unwrap();
    assert_eq!(events.last().unwrap().seq, last + 2);
    assert!(!events.iter().any(|e| e.seq == last + 1));
}

/// Parallel branches wait on different things at once: the run waits for all of them, is due
/// at the earliest timer, and a signal that arrives first is not lost while the timer runs.
async fn branches_wait_on_a_timer_and_a_signal_at_once(h: H) {
    let id = start::<NapAndListen>(&h, 600).await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let events = h.engine.store().events(id).await.unwrap();
    let (ready_at, reasons) = events
        .iter()
        .find_map(|e| match &e.data {
            EventData::RunSuspended {
                status: RunStatus::Waiting,
                ready_at,
                reasons,
            } => Some((*ready_at, reasons.clone())),
            _ => None,
        })
        .expect("a RunSuspended event, waiting");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let until = events
        .iter()
        .find_map(|e| match e.data {
            EventData::TimerStarted { until } => Some(until),
            _ => None,
        })
        .unwrap();
    assert_eq!(ready_at, Some(until), "due when the nap ends");
    h.engine
        .signal(Some(id), "word", None, json!("hello"))
        .await
        .unwrap();
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.output, Some(json!("hello")));
    let done = events_of(&h, id).await;
    let completed = done
        .iter()
        .find(|e| matches!(e.data, EventData::RunCompleted { .. }))
        .unwrap();
    assert!(
        completed.at >= until,
        "the signal did not cut the nap short"
    );
}

/// A workflow that says it is suspended without waiting on anything fails with a message,
/// rather than sleeping forever.
async fn a_suspension_without_a_wait_fails_clearly(h: H) {
    let id = start::<FakeSuspend>(&h, ()).await;
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let e = run.error.unwrap();
    assert_eq!(e.kind, "suspended_without_wait");
    assert!(e.message.contains("context"), "{}", e.message);
}

/// What the dashboard's live feed reads: unfinished runs with their last sequence number, new
/// runs even once finished, and a history a page at a time without gaps.
async fn live_views_see_runs_move_and_page_their_history(h: H) {
    let store = h.engine.store();
    // Ids are time-ordered: one made now is older than any run started after it.
    let mark = slate_engine::RunId::default();
    let id = start::<NapAndListen>(&h, 0).await;
    wait_status(&h.engine, id, RunStatus::Waiting).await;
    let seen = store.pulse(None).await.unwrap();
    let me = seen.iter().find(|p| p.id == id).expect("an unfinished run");
    assert_eq!(me.status, RunStatus::Waiting);
    assert_eq!(me.workflow, "t.nap-and-listen");
    let events = store.events(id).await.unwrap();
    assert_eq!(me.last_seq, events.last().unwrap().seq);
    h.engine
        .signal(Some(id), "word", None, json!(1))
        .await
        .unwrap();
    h.engine.wait_for(id, WAIT).await.unwrap();
    // Finished: gone from the unfinished runs, still seen as new after an older id.
    assert!(!store.pulse(None).await.unwrap().iter().any(|p| p.id == id));
    let again = store.pulse(Some(mark)).await.unwrap();
    let me = again.iter().find(|p| p.id == id).expect("a new run");
    assert_eq!(me.status, RunStatus::Completed);
    // The history, two events at a time, is the whole history.
    let all = store.events(id).await.unwrap();
    let mut paged = vec![];
    let mut after = 0;
    loop {
        let page = store.events_page(id, after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().unwrap().seq;
        paged.extend(page);
    }
    assert_eq!(
        paged.iter().map(|e| e.seq).collect::<Vec<_>>(),
        all.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
}

/// A step that works for longer than a lease keeps it by heartbeat: it runs once, and while it
/// runs the run shows its worker, its lease and how long the attempt has run.
async fn a_long_step_keeps_its_lease(h: H) {
    let id = start::<Long>(&h, 4_500).await;
    let mut seen = vec![];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = h.engine.inspect(id).await.unwrap();
        if d.run.status.is_terminal() {
            break;
        }
        if let Some(a) = d.alive {
            assert!(a.lease_holds, "{a:?}");
            if a.step.as_deref() == Some("render") {
                seen.push(a.running_ms.unwrap());
            }
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let run = h.engine.wait_for(id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let starts = h
        .engine
        .store()
        .events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.data, EventData::StepStarted { .. }))
        .count();
    assert_eq!(
        starts, 1,
        "the lease (3 s) never lapsed under the 4.5 s step"
    );
    assert!(
        seen.iter().any(|ms| *ms > 3_000),
        "seen running past the lease: {seen:?}"
    );
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
}

async fn events_of(h: &H, id: slate_engine::RunId) -> Vec<slate_engine::EventRecord> {
    h.engine.store().events(id).await.unwrap()
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::harness(super::Kind::Postgres).await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::harness(super::Kind::Sqlite).await).await
                }
            )*
        }
    };
}

conformance!(
    a_long_step_keeps_its_lease,
    live_views_see_runs_move_and_page_their_history,
    branches_wait_on_a_timer_and_a_signal_at_once,
    a_suspension_without_a_wait_fails_clearly,
    replay_does_not_repeat_side_effects,
    retries_back_off_durably,
    final_errors_and_exhausted_retries_fail_the_run,
    bounded_loop_stops_at_its_limit,
    bounded_attempts_stop_at_five,
    durable_sleep,
    early_and_duplicate_signals,
    signal_wait_times_out,
    fan_out_and_join,
    cancel_runs,
    retry_a_failed_step,
    a_retried_child_takes_its_parent_along,
    runs_record_their_versions,
    a_patch_keeps_old_runs_on_their_code,
    a_renamed_step_blocks_the_run_and_a_fork_finishes_it,
    reset_to_a_step,
    idempotent_start,
    per_key_concurrency,
    held_slots_bound_work_across_suspensions,
    a_freed_slot_goes_to_the_highest_waiter,
    a_run_signals_another_once,
    budget_stops_spending,
    a_budget_is_never_crossed_by_a_step_with_an_estimate,
    large_results_are_refused,
    duplicate_step_names_are_refused,
    stale_lease_holders_are_fenced,
    exclusive_runs_never_overlap,
);

/// Runs with the same exclusive key never overlap, however they are started; the key frees up
/// when the run finishes, and idempotent starts still return their first run.
async fn exclusive_runs_never_overlap(h: H) {
    let opts = |k: Option<&str>| StartOptions {
        idempotency_key: k.map(String::from),
        ..Default::default()
    };
    let first = h
        .engine
        .start::<Exclusive>(&"alpha".to_string(), opts(Some("first")))
        .await
        .unwrap();
    assert!(first.created);
    // A second start for the same project, by name or by type, is refused with the holder.
    for e in [
        h.engine
            .start_raw("t.exclusive", json!("alpha"), opts(None))
            .await
            .unwrap_err(),
        h.engine
            .start::<Exclusive>(&"alpha".to_string(), opts(Some("second")))
            .await
            .unwrap_err(),
    ] {
        match e {
            EngineError::Conflict(m) => {
                assert!(m.contains(&first.run.id.to_string()), "{m}")
            }
            other => panic!("expected a conflict, got {other}"),
        }
    }
    // The same request again is still idempotent; another project is free.
    let again = h
        .engine
        .start::<Exclusive>(&"alpha".to_string(), opts(Some("first")))
        .await
        .unwrap();
    assert_eq!((again.run.id, again.created), (first.run.id, false));
    let beta = start::<Exclusive>(&h, "beta".to_string()).await;
    // Twenty starts at once for one project: exactly one is created.
    let gamma = "gamma".to_string();
    let racers = futures::future::join_all(
        (0..20).map(|_| h.engine.start::<Exclusive>(&gamma, StartOptions::default())),
    )
    .await;
    assert_eq!(racers.iter().filter(|r| r.is_ok()).count(), 1);
    // Once the holder finishes, the key is free again.
    h.engine
        .signal(Some(first.run.id), "go", None, json!(1))
        .await
        .unwrap();
    h.engine.wait_for(first.run.id, WAIT).await.unwrap();
    let next = start::<Exclusive>(&h, "alpha".to_string()).await;
    assert_ne!(next, first.run.id);
    for id in [next, beta] {
        h.engine.cancel(id, "done").await.unwrap();
    }
}
