//! The Postgres store: production, many workers on one database.
//!
//! - Claims use `FOR UPDATE SKIP LOCKED`, so workers never block each other on a run.
//! - A checkpoint batch is one statement (`unnest` arrays in a data-modifying CTE), committed
//!   in autocommit mode: one round trip and one WAL flush for the checkpoints of many runs.
//! - Writers are fenced by `lease_epoch`; the batch takes `FOR SHARE` on the runs it writes so a
//!   concurrent reclaim waits for it instead of racing it.
//! - Signal delivery and wait registration take a transaction-scoped advisory lock on the
//!   signal name, so a signal can never slip between "no signal yet" and "now waiting".
//! - `LISTEN/NOTIFY` wakes idle workers when a run becomes due or is asked to stop.
//!
//! (One file per dialect, over 600 lines on purpose: every `Store` method's SQL sits here in the
//! same order as in `sqlite.rs`, so the two can be read side by side, method by method.)

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{
    AppendOp, BareRate, Claimed, Guard, NewSignal, RunPulse, SignalOutcome, SlotOutcome, Store,
    Transition, Wakeups, child_signal_name, event_json, first_claim_events,
};
use crate::error::{EngineError, Result, RunError};
use crate::model::{EventRecord, NewRun, RunFilter, RunId, RunRecord, RunStatus, SignalRecord};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// Postgres implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Connections with `synchronous_commit = off`, for bookkeeping that is safe to lose in a
    /// database crash because it is re-derived: claims, heartbeats, and a lease holder's own
    /// transitions (a lost "completed" or "waiting" makes the run come back as running; it is
    /// reclaimed when its lease lapses and replays its journal to the same outcome). The
    /// journal, run creation, signals and admin operations always wait for the disk. A later
    /// synchronous commit also hardens every earlier asynchronous one.
    relaxed: PgPool,
}

impl PgStore {
    /// Connect with a pool of `pool_size` connections.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self> {
        let opts: PgConnectOptions = url.parse()?;
        let build = |n: u32| {
            PgPoolOptions::new()
                .max_connections(n)
                .acquire_timeout(Duration::from_secs(30))
                // A ping before every query doubles the round trips of a checkpoint; a broken
                // connection fails its query instead, and the engine retries above it.
                .test_before_acquire(false)
        };
        let pool = build(pool_size.max(4)).connect_with(opts.clone()).await?;
        let relaxed = build((pool_size / 2).max(2))
            .connect_with(opts.options([("synchronous_commit", "off")]))
            .await?;
        Ok(PgStore { pool, relaxed })
    }

    /// Wrap an existing pool (every commit then waits for the disk).
    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            relaxed: pool.clone(),
            pool,
        }
    }

    /// The pool (the film domain keeps its tables in the same database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

const RUN_COLUMNS: &str = "id, workflow, workflow_version, build, idempotency_key, scope, input, status, output, error, parent_id, parent_step, root_id, budget_micros, cost_micros, cost_units, ready_at, lease_owner, lease_epoch, cancel_reason, claims, created_at, updated_at, finished_at";

fn run_from_row(row: &PgRow) -> Result<RunRecord> {
    let status: String = row.try_get("status")?;
    let error: Option<Value> = row.try_get("error")?;
    Ok(RunRecord {
        id: RunId(row.try_get("id")?),
        workflow: row.try_get("workflow")?,
        workflow_version: row.try_get::<i32, _>("workflow_version")?.max(0) as u32,
        build: row.try_get("build")?,
        idempotency_key: row.try_get("idempotency_key")?,
        scope: row.try_get("scope")?,
        input: row.try_get("input")?,
        status: status.parse().map_err(EngineError::Invalid)?,
        output: row.try_get("output")?,
        error: error.map(serde_json::from_value::<RunError>).transpose()?,
        parent_id: row.try_get::<Option<Uuid>, _>("parent_id")?.map(RunId),
        parent_step: row.try_get("parent_step")?,
        root_id: RunId(row.try_get("root_id")?),
        budget_micros: row.try_get("budget_micros")?,
        cost_micros: row.try_get("cost_micros")?,
        cost_units: row.try_get("cost_units")?,
        ready_at: row.try_get("ready_at")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_epoch: row.try_get("lease_epoch")?,
        cancel_reason: row.try_get("cancel_reason")?,
        claims: row.try_get("claims")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn event_from_row(row: &PgRow) -> Result<EventRecord> {
    let data: Value = row.try_get("data")?;
    Ok(EventRecord {
        run_id: RunId(row.try_get("run_id")?),
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        step: row.try_get("step")?,
        data: serde_json::from_value(data)?,
    })
}

fn signal_from_row(row: &PgRow) -> Result<SignalRecord> {
    Ok(SignalRecord {
        id: row.try_get("id")?,
        run_id: row.try_get::<Option<Uuid>, _>("run_id")?.map(RunId),
        name: row.try_get("name")?,
        event_key: row.try_get("event_key")?,
        payload: row.try_get("payload")?,
        received_at: row.try_get("received_at")?,
    })
}

fn ok_pairs(rows: &[PgRow]) -> Result<BTreeSet<(Uuid, i64)>> {
    rows.iter()
        .map(|r| Ok((r.try_get::<Uuid, _>("id")?, r.try_get::<i64, _>("epoch")?)))
        .collect()
}

async fn notify_wake(tx: &mut Transaction<'static, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_notify('slate_wake', '')")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Lock concurrency keys' limit rows in a stable order, then wake the runs waiting for them.
/// Wake, for each key, as many of its waiters as it has free slots (less those already woken
/// and not yet back), the highest priority first, then the longest waiting (decision 0020).
/// Waking them all would have every waiter replay to find one slot, and the winner by chance.
async fn wake_slot_waiters(
    tx: &mut Transaction<'static, Postgres>,
    keys: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut woken = 0;
    for key in keys {
        let max: Option<i32> = sqlx::query_scalar(
            "SELECT max_slots FROM concurrency_limits WHERE key = $1 FOR UPDATE",
        )
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
        let wake: i64 = match max {
            None => i64::MAX,
            Some(max) => {
                let held: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM concurrency_slots WHERE key = $1")
                        .bind(key)
                        .fetch_one(&mut **tx)
                        .await?;
                let awake: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM slot_waiters w JOIN runs r ON r.id = w.run_id
                     WHERE w.key = $1 AND r.status = 'waiting' AND r.ready_at <= $2",
                )
                .bind(key)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
                max as i64 - held - awake
            }
        };
        if wake <= 0 {
            continue;
        }
        woken += sqlx::query(
            "UPDATE runs SET ready_at = $2 WHERE id IN (
                 SELECT w.run_id FROM slot_waiters w JOIN runs r ON r.id = w.run_id
                 WHERE w.key = $1 AND r.status = 'waiting' AND (r.ready_at IS NULL OR r.ready_at > $2)
                 ORDER BY w.priority DESC, w.since LIMIT $3)",
        )
        .bind(key)
        .bind(now)
        .bind(wake)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(woken)
}

/// A checkpoint batch as the columns its one statement `unnest`s: one row per (run, epoch) in
/// the batch (costs summed), one per event, one per finishing run. A batch may hold a stale and
/// a current holder of the same run; each is judged by its own epoch.
#[derive(Default)]
struct BatchColumns {
    o_run: Vec<Uuid>,
    o_epoch: Vec<i64>,
    o_micros: Vec<i64>,
    o_units: Vec<f64>,
    e_run: Vec<Uuid>,
    e_epoch: Vec<i64>,
    e_seq: Vec<i64>,
    e_at: Vec<DateTime<Utc>>,
    e_kind: Vec<String>,
    e_step: Vec<Option<String>>,
    e_data: Vec<String>,
    f_run: Vec<Uuid>,
    f_epoch: Vec<i64>,
    f_status: Vec<String>,
    f_ready: Vec<Option<DateTime<Utc>>>,
    f_output: Vec<Option<String>>,
    f_error: Vec<Option<String>>,
    f_at: Vec<DateTime<Utc>>,
}

impl BatchColumns {
    fn of(ops: &[AppendOp]) -> Result<Self> {
        let mut c = BatchColumns::default();
        let mut per_run: HashMap<(Uuid, i64), (i64, f64)> = HashMap::new();
        for op in ops {
            let entry = per_run.entry((op.run_id.0, op.epoch)).or_insert((0, 0.0));
            entry.0 += op.cost.usd_micros;
            entry.1 += op.cost.units;
            for ev in &op.events {
                c.e_run.push(op.run_id.0);
                c.e_epoch.push(op.epoch);
                c.e_seq.push(ev.seq);
                c.e_at.push(ev.at);
                c.e_kind.push(ev.data.kind().to_string());
                c.e_step.push(ev.step.clone());
                c.e_data.push(event_json(&ev.data)?);
            }
            if let Some(f) = &op.finish {
                c.f_run.push(op.run_id.0);
                c.f_epoch.push(op.epoch);
                c.f_status.push(f.status().as_str().to_string());
                c.f_ready.push(f.ready_at());
                c.f_output
                    .push(f.output().map(serde_json::to_string).transpose()?);
                c.f_error
                    .push(f.error().map(serde_json::to_string).transpose()?);
                c.f_at
                    .push(op.events.last().map(|e| e.at).unwrap_or_else(Utc::now));
            }
        }
        for ((id, epoch), (micros, units)) in per_run {
            c.o_run.push(id);
            c.o_epoch.push(epoch);
            c.o_micros.push(micros);
            c.o_units.push(units);
        }
        Ok(c)
    }
}

/// The slots a batch's steps release (or keep, held), for the runs whose write was accepted
/// (`ok`), and the waiters woken for them.
async fn release_slots(
    tx: &mut Transaction<'static, Postgres>,
    ops: &[AppendOp],
    ok: &BTreeSet<(Uuid, i64)>,
) -> Result<()> {
    let mut keys = BTreeSet::new();
    for op in ops {
        let Some((key, step)) = &op.release_slot else {
            continue;
        };
        if !ok.contains(&(op.run_id.0, op.epoch)) {
            continue;
        }
        let sql = if op.hold_slot {
            "UPDATE concurrency_slots SET held = true WHERE key = $1 AND run_id = $2 AND step = $3"
        } else {
            keys.insert(key.clone());
            "DELETE FROM concurrency_slots WHERE key = $1 AND run_id = $2 AND step = $3"
        };
        sqlx::query(sql)
            .bind(key)
            .bind(op.run_id.0)
            .bind(step)
            .execute(&mut **tx)
            .await?;
    }
    let now = ops
        .iter()
        .flat_map(|o| o.events.iter().map(|e| e.at))
        .max()
        .unwrap_or_else(Utc::now);
    if wake_slot_waiters(tx, &keys, now).await? > 0 {
        notify_wake(tx).await?;
    }
    Ok(())
}

// The parts of a full transition (`Store::transition`), each in the transaction that holds the
// run's row.

/// The run's own row; `None` when the guard no longer holds. Returns its parent and its epoch
/// after the change.
async fn update_run(
    tx: &mut Transaction<'static, Postgres>,
    t: &Transition,
) -> Result<Option<(Option<Uuid>, i64)>> {
    let (epoch, statuses): (Option<i64>, Option<Vec<String>>) = match &t.guard {
        Guard::Epoch(e) => (Some(*e), None),
        Guard::Status(s) => (None, Some(s.iter().map(|s| s.to_string()).collect())),
    };
    let error = t.to.error().map(serde_json::to_value).transpose()?;
    let row = sqlx::query(
        "UPDATE runs SET status = $2,
                ready_at = CASE WHEN cancel_reason IS NOT NULL AND $2 IN ('waiting','sleeping')
                                THEN $6 ELSE $3 END,
                output = $4, error = $5, updated_at = $6,
                finished_at = CASE WHEN $7 THEN $6 ELSE NULL END,
                lease_owner = CASE WHEN $2 = 'running' THEN lease_owner ELSE NULL END,
                lease_epoch = lease_epoch + CASE WHEN $8 THEN 1 ELSE 0 END,
                cancel_reason = CASE WHEN $8 THEN NULL ELSE cancel_reason END
         WHERE id = $1
           AND (($9::bigint IS NOT NULL AND lease_epoch = $9 AND status = 'running')
             OR ($10::text[] IS NOT NULL AND status = ANY($10)))
         RETURNING parent_id, lease_epoch",
    )
    .bind(t.run_id.0)
    .bind(t.to.status().as_str())
    .bind(t.to.ready_at())
    .bind(t.to.output())
    .bind(&error)
    .bind(t.now)
    .bind(t.to.status().is_terminal())
    .bind(t.bump_epoch)
    .bind(epoch)
    .bind(&statuses)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        row.try_get("parent_id")?,
        row.try_get("lease_epoch")?,
    )))
}

/// Registers the signals the run now waits for; true when one of them has already arrived
/// (the run is made due at once).
async fn wait_for_signals(tx: &mut Transaction<'static, Postgres>, t: &Transition) -> Result<bool> {
    if t.to.signals().is_empty() {
        return Ok(false);
    }
    let names: Vec<String> =
        t.to.signals()
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    // Sorted, so two transactions never take the same locks in opposite orders.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(n, 0)) FROM unnest($1::text[]) AS n ORDER BY n",
    )
    .bind(&names)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO signal_waits (run_id, name) SELECT $1, unnest($2::text[])")
        .bind(t.run_id.0)
        .bind(&names)
        .execute(&mut **tx)
        .await?;
    let arrived: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM signals WHERE name = ANY($2)
                           AND (run_id = $1 OR run_id IS NULL) AND NOT (id = ANY($3)))",
    )
    .bind(t.run_id.0)
    .bind(&names)
    .bind(t.to.consumed())
    .fetch_one(&mut **tx)
    .await?;
    if arrived {
        sqlx::query("UPDATE runs SET ready_at = $2 WHERE id = $1")
            .bind(t.run_id.0)
            .bind(t.now)
            .execute(&mut **tx)
            .await?;
    }
    Ok(arrived)
}

/// Puts the run in the queues of the slots it waits for; true when a waiter was woken.
async fn queue_for_slots(tx: &mut Transaction<'static, Postgres>, t: &Transition) -> Result<bool> {
    if t.to.slots().is_empty() {
        return Ok(false);
    }
    let keys: BTreeSet<String> = t.to.slots().iter().cloned().collect();
    for key in &keys {
        sqlx::query("SELECT 1 FROM concurrency_limits WHERE key = $1 FOR UPDATE")
            .bind(key)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO slot_waiters (key, run_id, since, priority) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key, run_id) DO UPDATE SET priority = excluded.priority",
        )
        .bind(key)
        .bind(t.run_id.0)
        .bind(t.now)
        .bind(t.to.slot_priority())
        .execute(&mut **tx)
        .await?;
    }
    // A slot freed while this run was on its way here: wake whoever is first for it (this
    // run, unless a higher one waits).
    Ok(wake_slot_waiters(tx, &keys, t.now).await? > 0)
}

/// A run that stops running gives back its slots (held ones only at its end), and the queues it
/// `left` wake their next; true when a waiter was woken.
async fn give_back_slots(
    tx: &mut Transaction<'static, Postgres>,
    t: &Transition,
    left: Vec<String>,
) -> Result<bool> {
    // Held slots stay while the run lives (its provider's jobs run on); its end gives back
    // everything.
    let keys: Vec<String> = sqlx::query_scalar(
        "DELETE FROM concurrency_slots WHERE run_id = $1 AND ($2 OR NOT held) RETURNING key",
    )
    .bind(t.run_id.0)
    .bind(t.to.status().is_terminal())
    .fetch_all(&mut **tx)
    .await?;
    let keys: BTreeSet<String> = keys.into_iter().chain(left).collect();
    Ok(wake_slot_waiters(tx, &keys, t.now).await? > 0)
}

/// Appends a transition's events after the run's last.
async fn insert_events(
    tx: &mut Transaction<'static, Postgres>,
    run: RunId,
    now: DateTime<Utc>,
    events: &[(Option<String>, crate::model::EventData)],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut kinds = vec![];
    let mut steps = vec![];
    let mut datas = vec![];
    for (step, data) in events {
        kinds.push(data.kind().to_string());
        steps.push(step.clone());
        datas.push(event_json(data)?);
    }
    sqlx::query(
        "INSERT INTO events (run_id, seq, at, kind, step, data)
         SELECT $1, m.base + e.ord, $2, e.kind, e.step, e.data::jsonb
         FROM (SELECT COALESCE(max(seq), 0) AS base FROM events WHERE run_id = $1) m,
              unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS e(kind, step, data, ord)",
    )
    .bind(run.0)
    .bind(now)
    .bind(&kinds)
    .bind(&steps)
    .bind(&datas)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A child's end is a signal to its parent (once per epoch); true when the parent was waiting
/// for it and is woken.
async fn tell_parent(
    tx: &mut Transaction<'static, Postgres>,
    t: &Transition,
    parent: Uuid,
    new_epoch: i64,
) -> Result<bool> {
    let name = child_signal_name(t.run_id);
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&name)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO signals (run_id, name, event_key, payload, received_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(parent)
    .bind(&name)
    .bind(format!("finished:{new_epoch}"))
    .bind(t.to.child_outcome())
    .bind(t.now)
    .execute(&mut **tx)
    .await?;
    let n = sqlx::query(
        "UPDATE runs SET ready_at = $3 WHERE id = $1 AND status IN ('waiting','sleeping')
           AND EXISTS (SELECT 1 FROM signal_waits w WHERE w.run_id = $1 AND w.name = $2)",
    )
    .bind(parent)
    .bind(&name)
    .bind(t.now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

impl PgStore {
    /// Lease holders' transitions may skip the disk wait (see [`PgStore::relaxed`]); admin
    /// operations answer a person and must not.
    fn pool_for(&self, guard: &Guard) -> &PgPool {
        match guard {
            Guard::Epoch(_) => &self.relaxed,
            Guard::Status(_) => &self.pool,
        }
    }

    /// A transition with no waits to register and no parent to signal: one statement, one
    /// commit. Slots it frees wake their waiters in a second transaction, which cannot miss a
    /// waiter: one that registered before it sees the freed slot's waiters list, one that
    /// registers after it sees the slot gone.
    async fn transition_simple(&self, t: Transition) -> Result<bool> {
        let (epoch, statuses): (Option<i64>, Option<Vec<String>>) = match &t.guard {
            Guard::Epoch(e) => (Some(*e), None),
            Guard::Status(s) => (None, Some(s.iter().map(|s| s.to_string()).collect())),
        };
        let error = t.to.error().map(serde_json::to_value).transpose()?;
        let mut kinds = vec![];
        let mut steps = vec![];
        let mut datas = vec![];
        for (step, data) in &t.events {
            kinds.push(data.kind().to_string());
            steps.push(step.clone());
            datas.push(event_json(data)?);
        }
        let row = sqlx::query(
            "WITH u AS (
                UPDATE runs SET status = $2,
                        ready_at = CASE WHEN cancel_reason IS NOT NULL AND $2 IN ('waiting','sleeping')
                                        THEN $6 ELSE $3 END,
                        output = $4, error = $5, updated_at = $6,
                        finished_at = CASE WHEN $7 THEN $6 ELSE NULL END,
                        lease_owner = CASE WHEN $2 = 'running' THEN lease_owner ELSE NULL END,
                        lease_epoch = lease_epoch + CASE WHEN $8 THEN 1 ELSE 0 END,
                        cancel_reason = CASE WHEN $8 THEN NULL ELSE cancel_reason END
                WHERE id = $1
                  AND (($9::bigint IS NOT NULL AND lease_epoch = $9 AND status = 'running')
                    OR ($10::text[] IS NOT NULL AND status = ANY($10)))
                RETURNING id
             ), dw AS (
                DELETE FROM signal_waits WHERE $14 AND run_id IN (SELECT id FROM u)
             ), ds AS (
                DELETE FROM slot_waiters WHERE $14 AND run_id IN (SELECT id FROM u)
                RETURNING key
             ), sl AS (
                DELETE FROM concurrency_slots WHERE $14 AND $2 <> 'running' AND ($7 OR NOT held)
                  AND run_id IN (SELECT id FROM u)
                RETURNING key
             ), ev AS (
                INSERT INTO events (run_id, seq, at, kind, step, data)
                SELECT u.id, m.base + e.ord, $6, e.kind, e.step, e.data::jsonb
                FROM u,
                     (SELECT COALESCE(max(seq), 0) AS base FROM events WHERE run_id = $1) m,
                     unnest($11::text[], $12::text[], $13::text[]) WITH ORDINALITY AS e(kind, step, data, ord)
             ), n AS (
                SELECT pg_notify('slate_wake', '') FROM u WHERE $2 = 'pending'
             )
             SELECT (SELECT count(*) FROM u) AS updated,
                    ARRAY(SELECT key FROM sl UNION SELECT key FROM ds) AS keys,
                    (SELECT count(*) FROM n) AS notified",
        )
        .bind(t.run_id.0)
        .bind(t.to.status().as_str())
        .bind(t.to.ready_at())
        .bind(t.to.output())
        .bind(&error)
        .bind(t.now)
        .bind(t.to.status().is_terminal())
        .bind(t.bump_epoch)
        .bind(epoch)
        .bind(&statuses)
        .bind(&kinds)
        .bind(&steps)
        .bind(&datas)
        .bind(t.cleanup || !matches!(t.guard, Guard::Epoch(_)))
        .fetch_one(self.pool_for(&t.guard))
        .await?;
        let updated: i64 = row.try_get("updated")?;
        let keys: Vec<String> = row.try_get("keys")?;
        if !keys.is_empty() {
            let mut tx = self.pool.begin().await?;
            let keys: BTreeSet<String> = keys.into_iter().collect();
            if wake_slot_waiters(&mut tx, &keys, t.now).await? > 0 {
                notify_wake(&mut tx).await?;
            }
            tx.commit().await?;
        }
        Ok(updated > 0)
    }
}

#[async_trait]
impl Store for PgStore {
    fn dialect(&self) -> &'static str {
        "postgres"
    }

    fn pools(&self) -> super::SqlPools {
        super::SqlPools::Postgres(self.pool.clone())
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn create_run(&self, run: NewRun) -> Result<(RunRecord, bool)> {
        let created = serde_json::json!({"type": "run_created", "workflow": run.workflow});
        let row = sqlx::query(
            "WITH ins AS (
                INSERT INTO runs (id, workflow, idempotency_key, scope, input, status, parent_id, parent_step,
                                  root_id, budget_micros, ready_at, created_at, updated_at, exclusive_key,
                                  workflow_version, build)
                VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9, $10, $11, $11, $13, $14, $15)
                ON CONFLICT DO NOTHING
                RETURNING id
             ), ev AS (
                INSERT INTO events (run_id, seq, at, kind, step, data)
                SELECT id, 1, $11, 'run_created', NULL, $12 FROM ins
             ), wake AS (
                SELECT pg_notify('slate_wake', '') FROM ins
             )
             SELECT id, (SELECT count(*) FROM wake) AS n FROM ins",
        )
        .bind(run.id.0)
        .bind(&run.workflow)
        .bind(&run.idempotency_key)
        .bind(&run.scope)
        .bind(&run.input)
        .bind(run.parent_id.map(|p| p.0))
        .bind(&run.parent_step)
        .bind(run.root_id.0)
        .bind(run.budget_micros)
        .bind(run.ready_at)
        .bind(run.now)
        .bind(created)
        .bind(&run.exclusive_key)
        .bind(run.workflow_version as i32)
        .bind(&run.build)
        .fetch_optional(&self.pool)
        .await?;
        let created = row.is_some();
        // This run, or the one that kept it from being created: the same idempotency key or
        // parent step first, else the active run holding the exclusive key.
        let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1
                OR ($2::text IS NOT NULL AND idempotency_key = $2)
                OR ($3::uuid IS NOT NULL AND parent_id = $3 AND parent_step = $4)
                OR ($5::text IS NOT NULL AND workflow = $6 AND exclusive_key = $5
                    AND status IN ('pending','running','waiting','sleeping'))
             ORDER BY (id = $1) DESC, ($2::text IS NOT NULL AND idempotency_key IS NOT DISTINCT FROM $2) DESC,
                      ($3::uuid IS NOT NULL AND parent_id IS NOT DISTINCT FROM $3) DESC
             LIMIT 1"
        )))
        .bind(run.id.0)
        .bind(&run.idempotency_key)
        .bind(run.parent_id.map(|p| p.0))
        .bind(&run.parent_step)
        .bind(&run.exclusive_key)
        .bind(&run.workflow)
        .fetch_one(&self.pool)
        .await?;
        Ok((run_from_row(&existing)?, created))
    }

    async fn claim(
        &self,
        worker: &str,
        max: usize,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>> {
        if max == 0 {
            return Ok(vec![]);
        }
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH c AS (
                SELECT id, status AS prev_status FROM runs
                WHERE status IN ('pending','running','waiting','sleeping') AND ready_at <= $1
                ORDER BY ready_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED
             ), u AS (
                UPDATE runs r SET status = 'running', lease_owner = $3, ready_at = $4,
                       lease_epoch = r.lease_epoch + 1, claims = r.claims + 1, updated_at = $1
                FROM c WHERE r.id = c.id
                RETURNING {cols}, c.prev_status
             ), dw AS (
                DELETE FROM signal_waits WHERE run_id IN (SELECT id FROM u)
             ), ds AS (
                DELETE FROM slot_waiters WHERE run_id IN (SELECT id FROM u)
             ), sl AS (
                DELETE FROM concurrency_slots WHERE NOT held AND run_id IN (SELECT id FROM u)
             ), ev AS (
                INSERT INTO events (run_id, seq, at, kind, step, data)
                SELECT u.id,
                       CASE WHEN u.claims = 1 AND u.prev_status = 'pending' THEN 2
                            ELSE COALESCE((SELECT max(e.seq) FROM events e WHERE e.run_id = u.id), 0) + 1 END,
                       $1,
                       'run_claimed', NULL,
                       jsonb_build_object('type', 'run_claimed', 'worker', $3::text,
                                          'epoch', u.lease_epoch, 'recovered', u.prev_status = 'running')
                FROM u
             )
             SELECT * FROM u",
            cols = RUN_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(now)
        .bind(max as i64)
        .bind(worker)
        .bind(lease_until)
        .fetch_all(&self.relaxed)
        .await?;
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let mut runs = Vec::with_capacity(rows.len());
        for row in &rows {
            runs.push(run_from_row(row)?);
        }
        let mut by_run: HashMap<Uuid, Vec<EventRecord>> = HashMap::new();
        let mut ids: Vec<Uuid> = vec![];
        for (run, row) in runs.iter().zip(&rows) {
            let prev: String = row.try_get("prev_status")?;
            if run.claims == 1 && prev == "pending" {
                // A first claim: its history is its creation and this claim, nothing to load.
                by_run.insert(run.id.0, first_claim_events(run, worker));
            } else {
                ids.push(run.id.0);
            }
        }
        let ev_rows = if ids.is_empty() {
            vec![]
        } else {
            sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events WHERE run_id = ANY($1) ORDER BY run_id, seq",
        )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?
        };
        for row in &ev_rows {
            let ev = event_from_row(row)?;
            by_run.entry(ev.run_id.0).or_default().push(ev);
        }
        Ok(runs
            .into_iter()
            .map(|run| {
                let events = by_run.remove(&run.id.0).unwrap_or_default();
                Claimed { run, events }
            })
            .collect())
    }

    async fn append(&self, ops: &[AppendOp]) -> Result<Vec<bool>> {
        if ops.is_empty() {
            return Ok(vec![]);
        }
        let c = BatchColumns::of(ops)?;
        let query = sqlx::query(
            "WITH ops AS (
                SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::float8[])
                    AS o(run_id, epoch, cost_micros, cost_units)
             ), ok AS (
                SELECT r.id, r.lease_epoch AS epoch FROM runs r
                WHERE r.id = ANY($1::uuid[]) AND r.status = 'running'
                  AND (r.id, r.lease_epoch) IN (SELECT run_id, epoch FROM ops)
                FOR SHARE OF r
             ), fin AS (
                SELECT * FROM unnest($12::uuid[], $13::bigint[], $14::text[], $15::timestamptz[],
                                     $16::text[], $17::text[], $18::timestamptz[])
                    AS f(run_id, epoch, status, ready_at, output, error, at)
             ), cost AS (
                UPDATE runs r SET cost_micros = r.cost_micros + o.cost_micros,
                                  cost_units = r.cost_units + o.cost_units
                FROM ops o
                WHERE r.id = o.run_id AND o.epoch = r.lease_epoch
                  AND (o.cost_micros <> 0 OR o.cost_units <> 0)
                  AND r.id IN (SELECT id FROM ok)
                  AND r.id NOT IN (SELECT run_id FROM fin)
             ), done AS (
                -- A row is updated once per statement, so the finishing runs' costs are added here.
                UPDATE runs r SET status = f.status,
                                  ready_at = CASE WHEN r.cancel_reason IS NOT NULL AND f.status = 'sleeping'
                                                  THEN f.at ELSE f.ready_at END,
                                  output = f.output::jsonb, error = f.error::jsonb,
                                  updated_at = f.at, lease_owner = NULL,
                                  finished_at = CASE WHEN f.status IN ('completed','failed') THEN f.at END,
                                  cost_micros = r.cost_micros + COALESCE(o.cost_micros, 0),
                                  cost_units = r.cost_units + COALESCE(o.cost_units, 0)
                FROM fin f LEFT JOIN ops o ON o.run_id = f.run_id AND o.epoch = f.epoch
                WHERE r.id = f.run_id AND (f.run_id, f.epoch) IN (SELECT id, epoch FROM ok)
             ), ins AS (
                INSERT INTO events (run_id, seq, at, kind, step, data)
                SELECT e.run_id, e.seq, e.at, e.kind, e.step, e.data::jsonb
                FROM unnest($5::uuid[], $6::bigint[], $7::bigint[], $8::timestamptz[], $9::text[], $10::text[], $11::text[])
                    AS e(run_id, epoch, seq, at, kind, step, data)
                WHERE (e.run_id, e.epoch) IN (SELECT id, epoch FROM ok)
             )
             SELECT id, epoch FROM ok",
        )
        .bind(&c.o_run)
        .bind(&c.o_epoch)
        .bind(&c.o_micros)
        .bind(&c.o_units)
        .bind(&c.e_run)
        .bind(&c.e_epoch)
        .bind(&c.e_seq)
        .bind(&c.e_at)
        .bind(&c.e_kind)
        .bind(&c.e_step)
        .bind(&c.e_data)
        .bind(&c.f_run)
        .bind(&c.f_epoch)
        .bind(&c.f_status)
        .bind(&c.f_ready)
        .bind(&c.f_output)
        .bind(&c.f_error)
        .bind(&c.f_at);
        let ok_rows = if ops.iter().all(|o| o.release_slot.is_none()) {
            // A single statement is its own transaction: one round trip, one commit.
            query.fetch_all(&self.pool).await?
        } else {
            let mut tx = self.pool.begin().await?;
            let rows = query.fetch_all(&mut *tx).await?;
            release_slots(&mut tx, ops, &ok_pairs(&rows)?).await?;
            tx.commit().await?;
            rows
        };
        let ok = ok_pairs(&ok_rows)?;
        Ok(ops
            .iter()
            .map(|op| ok.contains(&(op.run_id.0, op.epoch)))
            .collect())
    }

    async fn transition(&self, t: Transition) -> Result<bool> {
        if t.to.signals().is_empty()
            && t.to.slots().is_empty()
            && !(t.to.status().tells_parent() && t.parent.is_some())
        {
            return self.transition_simple(t).await;
        }
        let mut tx = self.pool_for(&t.guard).begin().await?;
        let Some((parent, new_epoch)) = update_run(&mut tx, &t).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let mut woke_any = t.to.status() == RunStatus::Pending;
        sqlx::query("DELETE FROM signal_waits WHERE run_id = $1")
            .bind(t.run_id.0)
            .execute(&mut *tx)
            .await?;
        // A run leaving the waiters may have been the one woken for a free slot: the next is
        // woken in its place (below).
        let left: Vec<String> =
            sqlx::query_scalar("DELETE FROM slot_waiters WHERE run_id = $1 RETURNING key")
                .bind(t.run_id.0)
                .fetch_all(&mut *tx)
                .await?;
        woke_any |= wait_for_signals(&mut tx, &t).await?;
        woke_any |= queue_for_slots(&mut tx, &t).await?;
        if t.to.status() != RunStatus::Running {
            woke_any |= give_back_slots(&mut tx, &t, left).await?;
        }
        insert_events(&mut tx, t.run_id, t.now, &t.events).await?;
        if t.to.status().tells_parent()
            && let Some(parent) = parent
        {
            woke_any |= tell_parent(&mut tx, &t, parent, new_epoch).await?;
        }
        if woke_any {
            notify_wake(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        runs: &[RunId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<(RunId, Option<String>)>> {
        if runs.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = runs.iter().map(|r| r.0).collect();
        let rows = sqlx::query(
            "UPDATE runs SET ready_at = $3 WHERE lease_owner = $1 AND status = 'running' AND id = ANY($2)
             RETURNING id, cancel_reason",
        )
        .bind(worker)
        .bind(&ids)
        .bind(lease_until)
        .fetch_all(&self.relaxed)
        .await?;
        rows.iter()
            .map(|r| Ok((RunId(r.try_get("id")?), r.try_get("cancel_reason")?)))
            .collect()
    }

    async fn expire_leases(&self, owners: &[String], now: DateTime<Utc>) -> Result<u64> {
        if owners.is_empty() {
            return Ok(0);
        }
        let n = sqlx::query(
            "UPDATE runs SET ready_at = $2 WHERE status = 'running' AND lease_owner = ANY($1)",
        )
        .bind(owners)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn lease_owners(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn send_signal(&self, s: NewSignal) -> Result<SignalOutcome> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&s.name)
            .execute(&mut *tx)
            .await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO signals (run_id, name, event_key, payload, received_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(s.run_id.map(|r| r.0))
        .bind(&s.name)
        .bind(&s.event_key)
        .bind(&s.payload)
        .bind(s.now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.rollback().await?;
            return Ok(SignalOutcome {
                id: None,
                duplicate: true,
                woken: 0,
            });
        };
        let woken = sqlx::query(
            "UPDATE runs SET ready_at = $3 WHERE status IN ('waiting','sleeping')
               AND (ready_at IS NULL OR ready_at > $3)
               AND id IN (SELECT run_id FROM signal_waits WHERE name = $1 AND ($2::uuid IS NULL OR run_id = $2))",
        )
        .bind(&s.name)
        .bind(s.run_id.map(|r| r.0))
        .bind(s.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if woken > 0 {
            notify_wake(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(SignalOutcome {
            id: Some(id),
            duplicate: false,
            woken,
        })
    }

    async fn find_signal(
        &self,
        run: RunId,
        name: &str,
        consumed: &[i64],
    ) -> Result<Option<SignalRecord>> {
        let row = sqlx::query(
            "SELECT id, run_id, name, event_key, payload, received_at FROM signals
             WHERE name = $2 AND (run_id = $1 OR run_id IS NULL) AND NOT (id = ANY($3))
             ORDER BY id LIMIT 1",
        )
        .bind(run.0)
        .bind(name)
        .bind(consumed)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(signal_from_row).transpose()
    }

    async fn acquire_slot(
        &self,
        key: &str,
        run: RunId,
        epoch: i64,
        step: &str,
        priority: i32,
        now: DateTime<Utc>,
    ) -> Result<SlotOutcome> {
        let mut tx = self.pool.begin().await?;
        let max: Option<i32> = sqlx::query_scalar(
            "SELECT max_slots FROM concurrency_limits WHERE key = $1 FOR UPDATE",
        )
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(max) = max else {
            tx.rollback().await?;
            return Ok(SlotOutcome::Acquired);
        };
        let live: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_epoch = $2 AND status = 'running')",
        )
        .bind(run.0)
        .bind(epoch)
        .fetch_one(&mut *tx)
        .await?;
        if !live {
            tx.rollback().await?;
            return Ok(SlotOutcome::Fenced);
        }
        let row = sqlx::query(
            "SELECT count(*) AS total, count(*) FILTER (WHERE run_id = $2 AND step = $3) AS mine
             FROM concurrency_slots WHERE key = $1",
        )
        .bind(key)
        .bind(run.0)
        .bind(step)
        .fetch_one(&mut *tx)
        .await?;
        let total: i64 = row.try_get("total")?;
        let mine: i64 = row.try_get("mine")?;
        // A free slot is for the highest run waiting for one: a run of lower priority arriving
        // first waits its turn (and the higher one is woken, if it was not).
        let outranked = mine == 0
            && total < max as i64
            && sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM slot_waiters WHERE key = $1 AND run_id <> $2 AND priority > $3)",
            )
            .bind(key)
            .bind(run.0)
            .bind(priority)
            .fetch_one(&mut *tx)
            .await?;
        let outcome = if mine > 0 {
            SlotOutcome::Acquired
        } else if outranked {
            if wake_slot_waiters(&mut tx, &BTreeSet::from([key.to_string()]), now).await? > 0 {
                notify_wake(&mut tx).await?;
            }
            SlotOutcome::Full
        } else if total < max as i64 {
            sqlx::query(
                "INSERT INTO concurrency_slots (key, run_id, step, acquired_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(key)
            .bind(run.0)
            .bind(step)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM slot_waiters WHERE key = $1 AND run_id = $2")
                .bind(key)
                .bind(run.0)
                .execute(&mut *tx)
                .await?;
            SlotOutcome::Acquired
        } else {
            SlotOutcome::Full
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn release_held_slot(
        &self,
        key: &str,
        run: RunId,
        step: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query(
            "DELETE FROM concurrency_slots WHERE key = $1 AND run_id = $2 AND step = $3",
        )
        .bind(key)
        .bind(run.0)
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone > 0
            && wake_slot_waiters(&mut tx, &BTreeSet::from([key.to_string()]), now).await? > 0
        {
            notify_wake(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_concurrency_limit(&self, key: &str, max: Option<u32>) -> Result<()> {
        match max {
            Some(m) => {
                sqlx::query(
                    "INSERT INTO concurrency_limits (key, max_slots) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET max_slots = EXCLUDED.max_slots",
                )
                .bind(key)
                .bind(m as i32)
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM concurrency_limits WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn concurrency_usage(&self) -> Result<Vec<(String, i64, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT k.key, (SELECT count(*) FROM concurrency_slots s WHERE s.key = k.key) AS held,
                    (SELECT max_slots::bigint FROM concurrency_limits l WHERE l.key = k.key) AS max
             FROM (SELECT key FROM concurrency_limits UNION SELECT key FROM concurrency_slots) k ORDER BY k.key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("held")?, r.try_get("max")?)))
            .collect()
    }

    async fn tree_cost(&self, root: RunId) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(sum(cost_micros), 0)::bigint FROM runs
                     WHERE id = $1 OR (root_id = $1 AND parent_id IS NOT NULL)) AS spent,
                    (SELECT budget_micros FROM runs WHERE id = $1) AS budget",
        )
        .bind(root.0)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("spent")?, row.try_get("budget")?))
    }

    async fn set_budget(&self, run: RunId, budget_micros: Option<i64>) -> Result<bool> {
        Ok(
            sqlx::query("UPDATE runs SET budget_micros = $2 WHERE id = $1")
                .bind(run.0)
                .bind(budget_micros)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn request_cancel(&self, run: RunId, reason: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n =
            sqlx::query("UPDATE runs SET cancel_reason = $2 WHERE id = $1 AND status = 'running'")
                .bind(run.0)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n > 0 {
            sqlx::query("SELECT pg_notify('slate_cancel', $1)")
                .bind(run.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"
        )))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn get_run_by_key(&self, key: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let limit = f.limit.unwrap_or(50).clamp(1, 500) as i64;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE ($1::text IS NULL OR workflow = $1)
               AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR scope = $3)
               AND ($4::uuid IS NULL OR parent_id = $4)
               AND ($5::uuid IS NULL OR id < $5)
               AND ($7::int IS NULL OR workflow_version = $7)
               AND ($8::text IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.run_id = runs.id
                                                  AND e.kind = 'patch' AND e.step = 'patch/' || $8))
             ORDER BY id DESC
             LIMIT $6"
        )))
        .bind(&f.workflow)
        .bind(f.status.map(|s| s.as_str()))
        .bind(&f.scope)
        .bind(f.parent_id.map(|p| p.0))
        .bind(f.before.map(|b| b.0))
        .bind(limit)
        .bind(f.workflow_version.map(|v| v as i32))
        .bind(&f.patch)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn seed_journal(
        &self,
        run: RunId,
        events: &[(Option<String>, crate::model::EventData)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_events(&mut tx, run, now, events).await?;
        // Counted as claimed once: its first claim loads this journal instead of taking it
        // for a fresh run's.
        let n = sqlx::query(
            "UPDATE runs SET claims = 1, ready_at = $2, updated_at = $2
             WHERE id = $1 AND status = 'pending' AND claims = 0",
        )
        .bind(run.0)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(EngineError::Conflict(format!(
                "run {run} was claimed before its journal was in place"
            )));
        }
        notify_wake(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn descendants(&self, id: RunId) -> Result<Vec<RunId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "WITH RECURSIVE t(id) AS (
                SELECT id FROM runs WHERE id = $1
                UNION SELECT r.id FROM runs r JOIN t ON r.parent_id = t.id
             ) SELECT id FROM t",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(RunId).collect())
    }

    async fn events(&self, id: RunId) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events WHERE run_id = $1 ORDER BY seq",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_page(&self, id: RunId, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events WHERE run_id = $1 AND seq > $2
             ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(after)
        .bind(limit.clamp(1, 5000) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn pulse(&self, after: Option<RunId>) -> Result<Vec<RunPulse>> {
        let rows = sqlx::query(
            "SELECT id, workflow, scope, parent_id, status,
                    COALESCE((SELECT max(seq) FROM events e WHERE e.run_id = r.id), 0) AS last_seq
             FROM runs r
             WHERE status IN ('pending', 'running', 'waiting', 'sleeping')
                OR ($1::uuid IS NOT NULL AND id > $1)
             ORDER BY id LIMIT 5000",
        )
        .bind(after.map(|a| a.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(RunPulse {
                    id: RunId(row.try_get("id")?),
                    workflow: row.try_get("workflow")?,
                    scope: row.try_get("scope")?,
                    parent_id: row.try_get::<Option<Uuid>, _>("parent_id")?.map(RunId),
                    status: status.parse().map_err(EngineError::Invalid)?,
                    last_seq: row.try_get("last_seq")?,
                })
            })
            .collect()
    }

    async fn count_by_status(&self) -> Result<Vec<(String, RunStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT workflow, status, count(*) AS n FROM runs GROUP BY workflow, status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("status")?;
                Ok((
                    r.try_get("workflow")?,
                    s.parse().map_err(EngineError::Invalid)?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    async fn count_by_version(&self) -> Result<Vec<(String, u32, RunStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT workflow, workflow_version, status, count(*) AS n FROM runs
             WHERE status IN ('pending','running','waiting','sleeping','blocked')
             GROUP BY workflow, workflow_version, status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let s: String = r.try_get("status")?;
                Ok((
                    r.try_get("workflow")?,
                    r.try_get::<i64, _>("workflow_version")
                        .or_else(|_| r.try_get::<i32, _>("workflow_version").map(i64::from))?
                        .max(0) as u32,
                    s.parse().map_err(EngineError::Invalid)?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    async fn total_cost(&self) -> Result<(i64, f64)> {
        let row = sqlx::query(
            "SELECT COALESCE(sum(cost_micros), 0)::bigint AS m, COALESCE(sum(cost_units), 0)::float8 AS u FROM runs",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("m")?, row.try_get("u")?))
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(
            "SELECT min(ready_at) FROM runs WHERE status IN ('pending','running','waiting','sleeping')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn listen(&self, wakeups: Wakeups) -> Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen_all(["slate_wake", "slate_cancel"]).await?;
        tokio::spawn(async move {
            loop {
                // `recv` reconnects by itself after a lost connection; a wake after reconnecting
                // covers anything missed meanwhile.
                match listener.recv().await {
                    Ok(n) => {
                        if n.channel() == "slate_cancel" {
                            if let Ok(id) = n.payload().parse() {
                                let _ = wakeups.cancel.send(id);
                            }
                        } else {
                            wakeups.wake.notify_waiters();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        wakeups.wake.notify_waiters();
                    }
                }
                if wakeups.cancel.is_closed() {
                    break;
                }
            }
        });
        Ok(())
    }

    async fn bare_commit_rate(&self, concurrency: usize, duration: Duration) -> Result<BareRate> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS slate_bench_bare (id BIGSERIAL PRIMARY KEY, v BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::new();
        for i in 0..concurrency {
            let pool = self.pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = pool.acquire().await?;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    sqlx::query("INSERT INTO slate_bench_bare (v, at) VALUES ($1, $2)")
                        .bind(i as i64)
                        .bind(Utc::now())
                        .execute(&mut *conn)
                        .await?;
                    n += 1;
                }
                Ok::<u64, sqlx::Error>(n)
            }));
        }
        let mut commits = 0;
        for t in tasks {
            commits += t.await.map_err(|e| EngineError::Invalid(e.to_string()))??;
        }
        let secs = start.elapsed().as_secs_f64();
        sqlx::query("DROP TABLE IF EXISTS slate_bench_bare")
            .execute(&self.pool)
            .await?;
        Ok(BareRate {
            commits,
            per_second: commits as f64 / secs,
        })
    }
}
