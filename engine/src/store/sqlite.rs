//! The SQLite store: the embedded default (`slate demo` needs no server).
//!
//! SQLite has one writer at a time, so every write goes through a single-connection writer pool
//! and starts with `BEGIN IMMEDIATE` (no lock upgrades, no `SQLITE_BUSY` inside a transaction);
//! reads use a separate pool and run concurrently thanks to WAL. Claims are compare-and-set
//! under that write lock. Other processes sharing the file (a CLI, a second worker) wait on
//! `busy_timeout`. There is no LISTEN/NOTIFY: workers in other processes poll.
//!
//! Lists are bound as JSON arrays and expanded with `json_each`, so no SQL is built from data.
//!
//! (One file per dialect, over 600 lines on purpose: every `Store` method's SQL sits here in the
//! same order as in `postgres.rs`, so the two can be read side by side, method by method.)

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use super::{
    AppendOp, BareRate, Claimed, Guard, NewSignal, RunPulse, SignalOutcome, SlotOutcome, Store,
    Transition, child_signal_name, event_json, parse_event,
};
use crate::error::{EngineError, Result, RunError};
use crate::model::{EventRecord, NewRun, RunFilter, RunId, RunRecord, RunStatus, SignalRecord};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

fn json_list<T: serde::Serialize>(items: &[T]) -> Result<String> {
    Ok(serde_json::to_string(items)?)
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Invalid(format!(
                    "cannot create the directory {} for the SQLite database: {e}",
                    dir.display()
                ))
            })?;
        }
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit survives power loss, not only a process crash. A checkpoint that
            // is not durable is not a checkpoint.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(opts.read_only(false))
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    /// The writer pool (one connection; the film domain writes through it too).
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The reader pool.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

/// The `runs` table's status CHECK admits `blocked` (issue 25). SQLite cannot alter a CHECK,
/// and rebuilding `runs` would drop the rows the foreign keys of signals and slots point at, so
/// this takes SQLite's own procedure for widening a constraint (its "ALTER TABLE" page, "making
/// other kinds of table schema changes"): the table's text in `sqlite_schema` is rewritten and
/// the schema version raised, so every connection reads the new text. Widening a CHECK leaves
/// every existing row valid. Idempotent: done once, when the text lacks `blocked`.
async fn allow_blocked(pool: &SqlitePool) -> Result<()> {
    const OLD: &str = "'completed','failed','cancelled')";
    const NEW: &str = "'completed','failed','cancelled','blocked')";
    let mut conn = pool.acquire().await?;
    let sql: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'runs'")
            .fetch_one(&mut *conn)
            .await?;
    if sql.contains("'blocked'") {
        return Ok(());
    }
    if !sql.contains(OLD) {
        return Err(EngineError::Invalid(
            "the runs table's status constraint is not the one Slate wrote; cannot admit `blocked`"
                .into(),
        ));
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let version: i64 = sqlx::query_scalar("PRAGMA schema_version")
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query("PRAGMA writable_schema = ON")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2) WHERE type = 'table' AND name = 'runs'",
    )
    .bind(OLD)
    .bind(NEW)
    .execute(&mut *tx)
    .await?;
    // A literal: PRAGMA takes no bound parameters. `version` is the database's own integer.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA schema_version = {}",
        version + 1
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query("PRAGMA writable_schema = OFF")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE INDEX IF NOT EXISTS runs_blocked ON runs (workflow, workflow_version) WHERE status = 'blocked'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let ok: String = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut *conn)
        .await?;
    if ok != "ok" {
        return Err(EngineError::Invalid(format!(
            "the database's check failed after admitting `blocked` runs: {ok}"
        )));
    }
    Ok(())
}

const RUN_COLUMNS: &str = "id, workflow, workflow_version, build, idempotency_key, scope, input, status, output, error, parent_id, parent_step, root_id, budget_micros, cost_micros, cost_units, ready_at, lease_owner, lease_epoch, cancel_reason, claims, created_at, updated_at, finished_at";

fn parse_id(s: &str) -> Result<RunId> {
    s.parse()
        .map_err(|e| EngineError::Invalid(format!("bad run id `{s}` in database: {e}")))
}

fn run_from_row(row: &SqliteRow) -> Result<RunRecord> {
    let status: String = row.try_get("status")?;
    let input: String = row.try_get("input")?;
    let output: Option<String> = row.try_get("output")?;
    let error: Option<String> = row.try_get("error")?;
    let parent: Option<String> = row.try_get("parent_id")?;
    Ok(RunRecord {
        id: parse_id(&row.try_get::<String, _>("id")?)?,
        workflow: row.try_get("workflow")?,
        workflow_version: row.try_get::<i64, _>("workflow_version")?.max(0) as u32,
        build: row.try_get("build")?,
        idempotency_key: row.try_get("idempotency_key")?,
        scope: row.try_get("scope")?,
        input: serde_json::from_str(&input)?,
        status: status.parse().map_err(EngineError::Invalid)?,
        output: output.map(|o| serde_json::from_str(&o)).transpose()?,
        error: error
            .map(|e| serde_json::from_str::<RunError>(&e))
            .transpose()?,
        parent_id: parent.map(|p| parse_id(&p)).transpose()?,
        parent_step: row.try_get("parent_step")?,
        root_id: parse_id(&row.try_get::<String, _>("root_id")?)?,
        budget_micros: row.try_get("budget_micros")?,
        cost_micros: row.try_get("cost_micros")?,
        cost_units: row.try_get("cost_units")?,
        ready_at: row.try_get::<Option<i64>, _>("ready_at")?.map(from_ms),
        lease_owner: row.try_get("lease_owner")?,
        lease_epoch: row.try_get("lease_epoch")?,
        cancel_reason: row.try_get("cancel_reason")?,
        claims: row.try_get("claims")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
    })
}

fn event_from_row(row: &SqliteRow) -> Result<EventRecord> {
    let data: String = row.try_get("data")?;
    parse_event(
        parse_id(&row.try_get::<String, _>("run_id")?)?,
        row.try_get("seq")?,
        from_ms(row.try_get("at")?),
        row.try_get("step")?,
        &data,
    )
}

async fn insert_event(
    tx: &mut Transaction<'static, Sqlite>,
    run: RunId,
    seq: i64,
    at: DateTime<Utc>,
    step: Option<&str>,
    data: &crate::model::EventData,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (run_id, seq, at, kind, step, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(run.to_string())
    .bind(seq)
    .bind(ms(at))
    .bind(data.kind())
    .bind(step)
    .bind(event_json(data)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn max_seq(tx: &mut Transaction<'static, Sqlite>, run: RunId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM events WHERE run_id = ?1")
            .bind(run.to_string())
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Wake, for each key, as many of its waiters as it has free slots (less those already woken
/// and not yet back), the highest priority first, then the longest waiting (decision 0020).
/// Waking them all would have every waiter replay to find one slot, and the winner by chance.
async fn wake_slot_waiters(
    tx: &mut Transaction<'static, Sqlite>,
    keys: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut woken = 0;
    for key in keys {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT max_slots FROM concurrency_limits WHERE key = ?1")
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
        let wake: i64 = match max {
            None => i64::MAX,
            Some(max) => {
                let held: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM concurrency_slots WHERE key = ?1")
                        .bind(key)
                        .fetch_one(&mut **tx)
                        .await?;
                let awake: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM slot_waiters w JOIN runs r ON r.id = w.run_id
                     WHERE w.key = ?1 AND r.status = 'waiting' AND r.ready_at <= ?2",
                )
                .bind(key)
                .bind(ms(now))
                .fetch_one(&mut **tx)
                .await?;
                max - held - awake
            }
        };
        if wake <= 0 {
            continue;
        }
        woken += sqlx::query(
            "UPDATE runs SET ready_at = ?2 WHERE id IN (
                 SELECT w.run_id FROM slot_waiters w JOIN runs r ON r.id = w.run_id
                 WHERE w.key = ?1 AND r.status = 'waiting' AND (r.ready_at IS NULL OR r.ready_at > ?2)
                 ORDER BY w.priority DESC, w.since LIMIT ?3)",
        )
        .bind(key)
        .bind(ms(now))
        .bind(wake)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    }
    Ok(woken)
}

// The parts of a transition (`Store::transition`), each in the transaction that holds the
// run's row.

/// The run's own row; `None` when the guard no longer holds. Returns its parent and its epoch
/// after the change.
async fn update_run(
    tx: &mut Transaction<'static, Sqlite>,
    t: &Transition,
) -> Result<Option<(Option<String>, i64)>> {
    let (epoch, statuses): (Option<i64>, Option<String>) = match &t.guard {
        Guard::Epoch(e) => (Some(*e), None),
        Guard::Status(s) => (
            None,
            Some(json_list(
                &s.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            )?),
        ),
    };
    let row = sqlx::query(
        "UPDATE runs SET status = ?2,
                ready_at = CASE WHEN cancel_reason IS NOT NULL AND ?2 IN ('waiting','sleeping')
                                THEN ?6 ELSE ?3 END,
                output = ?4, error = ?5, updated_at = ?6,
                finished_at = CASE WHEN ?7 THEN ?6 ELSE NULL END,
                lease_owner = CASE WHEN ?2 = 'running' THEN lease_owner ELSE NULL END,
                lease_epoch = lease_epoch + CASE WHEN ?8 THEN 1 ELSE 0 END,
                cancel_reason = CASE WHEN ?8 THEN NULL ELSE cancel_reason END
         WHERE id = ?1
           AND ((?9 IS NOT NULL AND lease_epoch = ?9 AND status = 'running')
             OR (?10 IS NOT NULL AND status IN (SELECT value FROM json_each(?10))))
         RETURNING parent_id, lease_epoch",
    )
    .bind(t.run_id.to_string())
    .bind(t.to.status().as_str())
    .bind(opt_ms(t.to.ready_at()))
    .bind(t.to.output().map(serde_json::to_string).transpose()?)
    .bind(t.to.error().map(serde_json::to_string).transpose()?)
    .bind(ms(t.now))
    .bind(t.to.status().is_terminal())
    .bind(t.bump_epoch)
    .bind(epoch)
    .bind(statuses)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        row.try_get("parent_id")?,
        row.try_get("lease_epoch")?,
    )))
}

/// Registers the signals the run now waits for, and makes it due at once when one has already
/// arrived.
async fn wait_for_signals(tx: &mut Transaction<'static, Sqlite>, t: &Transition) -> Result<()> {
    let id = t.run_id.to_string();
    let names: Vec<&String> =
        t.to.signals()
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
    for name in &names {
        sqlx::query("INSERT OR IGNORE INTO signal_waits (run_id, name) VALUES (?1, ?2)")
            .bind(&id)
            .bind(name)
            .execute(&mut **tx)
            .await?;
    }
    let arrived: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM signals WHERE name IN (SELECT value FROM json_each(?2))
           AND (run_id = ?1 OR run_id IS NULL) AND id NOT IN (SELECT value FROM json_each(?3)) LIMIT 1",
    )
    .bind(&id)
    .bind(json_list(&names)?)
    .bind(json_list(t.to.consumed())?)
    .fetch_optional(&mut **tx)
    .await?;
    if arrived.is_some() {
        sqlx::query("UPDATE runs SET ready_at = ?2 WHERE id = ?1")
            .bind(&id)
            .bind(ms(t.now))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Puts the run in the queues of the slots it waits for.
async fn queue_for_slots(tx: &mut Transaction<'static, Sqlite>, t: &Transition) -> Result<()> {
    let id = t.run_id.to_string();
    let keys: BTreeSet<String> = t.to.slots().iter().cloned().collect();
    for key in &keys {
        sqlx::query(
            "INSERT INTO slot_waiters (key, run_id, since, priority) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key, run_id) DO UPDATE SET priority = excluded.priority",
        )
        .bind(key)
        .bind(&id)
        .bind(ms(t.now))
        .bind(t.to.slot_priority())
        .execute(&mut **tx)
        .await?;
    }
    // A slot freed while this run was on its way here: wake whoever is first for it
    // (this run, unless a higher one waits).
    wake_slot_waiters(tx, &keys, t.now).await?;
    Ok(())
}

/// A run that stops running gives back its slots (held ones only at its end), and the queues it
/// `left` wake their next.
async fn give_back_slots(
    tx: &mut Transaction<'static, Sqlite>,
    t: &Transition,
    left: Vec<String>,
) -> Result<()> {
    let id = t.run_id.to_string();
    let terminal = t.to.status().is_terminal();
    // Held slots stay while the run lives (its provider's jobs run on); its end gives
    // back everything.
    let keys: Vec<String> = sqlx::query_scalar(
        "DELETE FROM concurrency_slots WHERE run_id = ?1 AND (?2 OR held = 0) RETURNING key",
    )
    .bind(&id)
    .bind(terminal)
    .fetch_all(&mut **tx)
    .await?;
    let keys: BTreeSet<String> = keys.into_iter().chain(left).collect();
    wake_slot_waiters(tx, &keys, t.now).await?;
    Ok(())
}

/// A child's end is a signal to its parent (once per epoch), which wakes it if it waits.
async fn tell_parent(
    tx: &mut Transaction<'static, Sqlite>,
    t: &Transition,
    parent: &str,
    new_epoch: i64,
) -> Result<()> {
    let name = child_signal_name(t.run_id);
    sqlx::query(
        "INSERT INTO signals (run_id, name, event_key, payload, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )
    .bind(parent)
    .bind(&name)
    .bind(format!("finished:{new_epoch}"))
    .bind(serde_json::to_string(&t.to.child_outcome())?)
    .bind(ms(t.now))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE runs SET ready_at = ?3 WHERE id = ?1 AND status IN ('waiting','sleeping')
           AND EXISTS (SELECT 1 FROM signal_waits w WHERE w.run_id = ?1 AND w.name = ?2)",
    )
    .bind(parent)
    .bind(&name)
    .bind(ms(t.now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn dialect(&self) -> &'static str {
        "sqlite"
    }

    fn pools(&self) -> super::SqlPools {
        super::SqlPools::Sqlite {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
        }
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.writer).await?;
        allow_blocked(&self.writer).await
    }

    async fn create_run(&self, run: NewRun) -> Result<(RunRecord, bool)> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO runs (id, workflow, idempotency_key, scope, input, status, parent_id, parent_step,
                               root_id, budget_micros, ready_at, created_at, updated_at, exclusive_key,
                               workflow_version, build)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14)
             ON CONFLICT DO NOTHING",
        )
        .bind(run.id.to_string())
        .bind(&run.workflow)
        .bind(&run.idempotency_key)
        .bind(&run.scope)
        .bind(serde_json::to_string(&run.input)?)
        .bind(run.parent_id.map(|p| p.to_string()))
        .bind(&run.parent_step)
        .bind(run.root_id.to_string())
        .bind(run.budget_micros)
        .bind(ms(run.ready_at))
        .bind(ms(run.now))
        .bind(&run.exclusive_key)
        .bind(run.workflow_version as i64)
        .bind(&run.build)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if inserted {
            insert_event(
                &mut tx,
                run.id,
                1,
                run.now,
                None,
                &crate::model::EventData::RunCreated {
                    workflow: run.workflow.clone(),
                },
            )
            .await?;
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1
                OR (?2 IS NOT NULL AND idempotency_key = ?2)
                OR (?3 IS NOT NULL AND parent_id = ?3 AND parent_step = ?4)
                OR (?5 IS NOT NULL AND workflow = ?6 AND exclusive_key = ?5
                    AND status IN ('pending','running','waiting','sleeping'))
             ORDER BY (id = ?1) DESC, (?2 IS NOT NULL AND idempotency_key IS ?2) DESC,
                      (?3 IS NOT NULL AND parent_id IS ?3) DESC
             LIMIT 1"
        )))
        .bind(run.id.to_string())
        .bind(&run.idempotency_key)
        .bind(run.parent_id.map(|p| p.to_string()))
        .bind(&run.parent_step)
        .bind(&run.exclusive_key)
        .bind(&run.workflow)
        .fetch_one(&mut *tx)
        .await?;
        let rec = run_from_row(&row)?;
        tx.commit().await?;
        Ok((rec, inserted))
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
        // Cheap check on the reader first, so idle polling never takes the write lock.
        let any: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs WHERE status IN ('pending','running','waiting','sleeping') AND ready_at <= ?1 LIMIT 1",
        )
        .bind(ms(now))
        .fetch_optional(&self.reader)
        .await?;
        if any.is_none() {
            return Ok(vec![]);
        }
        let mut tx = self.begin().await?;
        let due = sqlx::query(
            "SELECT id, status FROM runs WHERE status IN ('pending','running','waiting','sleeping') AND ready_at <= ?1
             ORDER BY ready_at LIMIT ?2",
        )
        .bind(ms(now))
        .bind(max as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in &due {
            let id = parse_id(&row.try_get::<String, _>("id")?)?;
            let prev: String = row.try_get("status")?;
            let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE runs SET status = 'running', lease_owner = ?2, ready_at = ?3,
                        lease_epoch = lease_epoch + 1, claims = claims + 1, updated_at = ?4
                 WHERE id = ?1 RETURNING {RUN_COLUMNS}"
            )))
            .bind(id.to_string())
            .bind(worker)
            .bind(ms(lease_until))
            .bind(ms(now))
            .fetch_one(&mut *tx)
            .await?;
            let run = run_from_row(&r)?;
            for q in [
                "DELETE FROM signal_waits WHERE run_id = ?1",
                "DELETE FROM slot_waiters WHERE run_id = ?1",
                // Held slots stay: the provider's job they stand for runs on.
                "DELETE FROM concurrency_slots WHERE run_id = ?1 AND held = 0",
            ] {
                sqlx::query(q)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let seq = max_seq(&mut tx, id).await? + 1;
            insert_event(
                &mut tx,
                id,
                seq,
                now,
                None,
                &crate::model::EventData::RunClaimed {
                    worker: worker.to_string(),
                    epoch: run.lease_epoch,
                    recovered: prev == "running",
                },
            )
            .await?;
            claimed.push(run);
        }
        tx.commit().await?;
        let ids: Vec<String> = claimed.iter().map(|r| r.id.to_string()).collect();
        let rows = sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events
             WHERE run_id IN (SELECT value FROM json_each(?1)) ORDER BY run_id, seq",
        )
        .bind(json_list(&ids)?)
        .fetch_all(&self.reader)
        .await?;
        let mut by_run: HashMap<RunId, Vec<EventRecord>> = HashMap::new();
        for row in &rows {
            let ev = event_from_row(row)?;
            by_run.entry(ev.run_id).or_default().push(ev);
        }
        Ok(claimed
            .into_iter()
            .map(|run| {
                let events = by_run.remove(&run.id).unwrap_or_default();
                Claimed { run, events }
            })
            .collect())
    }

    async fn append(&self, ops: &[AppendOp]) -> Result<Vec<bool>> {
        if ops.is_empty() {
            return Ok(vec![]);
        }
        let mut tx = self.begin().await?;
        // One query checks every writer's fence, one statement inserts every event: a batch
        // costs a few statements, not one per event.
        let ids: BTreeSet<String> = ops.iter().map(|o| o.run_id.to_string()).collect();
        let ids: Vec<String> = ids.into_iter().collect();
        let rows = sqlx::query(
            "SELECT id, lease_epoch FROM runs WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running'",
        )
        .bind(json_list(&ids)?)
        .fetch_all(&mut *tx)
        .await?;
        let mut live: HashMap<String, i64> = HashMap::new();
        for r in &rows {
            live.insert(r.try_get("id")?, r.try_get("lease_epoch")?);
        }
        let results: Vec<bool> = ops
            .iter()
            .map(|o| live.get(&o.run_id.to_string()) == Some(&o.epoch))
            .collect();
        let mut rows = Vec::new();
        let mut keys = BTreeSet::new();
        let mut now = None;
        for (op, ok) in ops.iter().zip(&results) {
            if !ok {
                continue;
            }
            let id = op.run_id.to_string();
            for ev in &op.events {
                rows.push(serde_json::json!([
                    id,
                    ev.seq,
                    ms(ev.at),
                    ev.data.kind(),
                    ev.step,
                    event_json(&ev.data)?
                ]));
                now = Some(ev.at);
            }
            if !op.cost.is_zero() {
                sqlx::query(
                    "UPDATE runs SET cost_micros = cost_micros + ?2, cost_units = cost_units + ?3 WHERE id = ?1",
                )
                .bind(&id)
                .bind(op.cost.usd_micros)
                .bind(op.cost.units)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(f) = &op.finish {
                let at = ms(op.events.last().map(|e| e.at).unwrap_or_else(Utc::now));
                sqlx::query(
                    "UPDATE runs SET status = ?2,
                            ready_at = CASE WHEN cancel_reason IS NOT NULL AND ?2 = 'sleeping' THEN ?6 ELSE ?3 END,
                            output = ?4, error = ?5, updated_at = ?6,
                            lease_owner = NULL,
                            finished_at = CASE WHEN ?2 IN ('completed','failed') THEN ?6 END
                     WHERE id = ?1",
                )
                .bind(&id)
                .bind(f.status().as_str())
                .bind(opt_ms(f.ready_at()))
                .bind(f.output().map(serde_json::to_string).transpose()?)
                .bind(f.error().map(serde_json::to_string).transpose()?)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((key, step)) = &op.release_slot {
                if op.hold_slot {
                    sqlx::query(
                        "UPDATE concurrency_slots SET held = 1 WHERE key = ?1 AND run_id = ?2 AND step = ?3",
                    )
                    .bind(key)
                    .bind(&id)
                    .bind(step)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(
                        "DELETE FROM concurrency_slots WHERE key = ?1 AND run_id = ?2 AND step = ?3",
                    )
                    .bind(key)
                    .bind(&id)
                    .bind(step)
                    .execute(&mut *tx)
                    .await?;
                    keys.insert(key.clone());
                }
            }
        }
        if !rows.is_empty() {
            sqlx::query(
                "INSERT INTO events (run_id, seq, at, kind, step, data)
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5
                 FROM json_each(?1)",
            )
            .bind(serde_json::to_string(&rows)?)
            .execute(&mut *tx)
            .await?;
        }
        wake_slot_waiters(&mut tx, &keys, now.unwrap_or_else(Utc::now)).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn transition(&self, t: Transition) -> Result<bool> {
        let mut tx = self.begin().await?;
        let Some((parent, new_epoch)) = update_run(&mut tx, &t).await? else {
            tx.rollback().await?;
            return Ok(false);
        };
        let id = t.run_id.to_string();
        let cleanup =
            t.cleanup || !matches!(t.guard, Guard::Epoch(_)) || t.to.status() == RunStatus::Waiting;
        if cleanup {
            sqlx::query("DELETE FROM signal_waits WHERE run_id = ?1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        // A run leaving the waiters may have been the one woken for a free slot: the next is
        // woken in its place (below).
        let left: Vec<String> = if cleanup {
            sqlx::query_scalar("DELETE FROM slot_waiters WHERE run_id = ?1 RETURNING key")
                .bind(&id)
                .fetch_all(&mut *tx)
                .await?
        } else {
            vec![]
        };
        if !t.to.signals().is_empty() {
            wait_for_signals(&mut tx, &t).await?;
        }
        if !t.to.slots().is_empty() {
            queue_for_slots(&mut tx, &t).await?;
        }
        if cleanup && t.to.status() != RunStatus::Running {
            give_back_slots(&mut tx, &t, left).await?;
        }
        if !t.events.is_empty() {
            let mut seq = max_seq(&mut tx, t.run_id).await?;
            for (step, data) in &t.events {
                seq += 1;
                insert_event(&mut tx, t.run_id, seq, t.now, step.as_deref(), data).await?;
            }
        }
        if t.to.status().tells_parent()
            && let Some(parent) = parent
        {
            tell_parent(&mut tx, &t, &parent, new_epoch).await?;
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
        let ids: Vec<String> = runs.iter().map(|r| r.to_string()).collect();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "UPDATE runs SET ready_at = ?3 WHERE lease_owner = ?1 AND status = 'running'
               AND id IN (SELECT value FROM json_each(?2))
             RETURNING id, cancel_reason",
        )
        .bind(worker)
        .bind(json_list(&ids)?)
        .bind(ms(lease_until))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse_id(&r.try_get::<String, _>("id")?)?,
                    r.try_get("cancel_reason")?,
                ))
            })
            .collect()
    }

    async fn expire_leases(&self, owners: &[String], now: DateTime<Utc>) -> Result<u64> {
        if owners.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE runs SET ready_at = ?2 WHERE status = 'running' AND lease_owner IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(owners)?)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn lease_owners(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM runs WHERE status = 'running' AND lease_owner IS NOT NULL",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    async fn send_signal(&self, s: NewSignal) -> Result<SignalOutcome> {
        let mut tx = self.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO signals (run_id, name, event_key, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(s.run_id.map(|r| r.to_string()))
        .bind(&s.name)
        .bind(&s.event_key)
        .bind(serde_json::to_string(&s.payload)?)
        .bind(ms(s.now))
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
            "UPDATE runs SET ready_at = ?3 WHERE status IN ('waiting','sleeping')
               AND (ready_at IS NULL OR ready_at > ?3)
               AND id IN (SELECT run_id FROM signal_waits WHERE name = ?1 AND (?2 IS NULL OR run_id = ?2))",
        )
        .bind(&s.name)
        .bind(s.run_id.map(|r| r.to_string()))
        .bind(ms(s.now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
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
             WHERE name = ?2 AND (run_id = ?1 OR run_id IS NULL) AND id NOT IN (SELECT value FROM json_each(?3))
             ORDER BY id LIMIT 1",
        )
        .bind(run.to_string())
        .bind(name)
        .bind(json_list(consumed)?)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload")?;
        let run_id: Option<String> = row.try_get("run_id")?;
        Ok(Some(SignalRecord {
            id: row.try_get("id")?,
            run_id: run_id.map(|r| parse_id(&r)).transpose()?,
            name: row.try_get("name")?,
            event_key: row.try_get("event_key")?,
            payload: serde_json::from_str(&payload)?,
            received_at: from_ms(row.try_get("received_at")?),
        }))
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
        let mut tx = self.begin().await?;
        let max: Option<i64> =
            sqlx::query_scalar("SELECT max_slots FROM concurrency_limits WHERE key = ?1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(max) = max else {
            tx.rollback().await?;
            return Ok(SlotOutcome::Acquired);
        };
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM runs WHERE id = ?1 AND lease_epoch = ?2 AND status = 'running'",
        )
        .bind(run.to_string())
        .bind(epoch)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            tx.rollback().await?;
            return Ok(SlotOutcome::Fenced);
        }
        let row = sqlx::query(
            "SELECT count(*) AS total, COALESCE(sum(run_id = ?2 AND step = ?3), 0) AS mine
             FROM concurrency_slots WHERE key = ?1",
        )
        .bind(key)
        .bind(run.to_string())
        .bind(step)
        .fetch_one(&mut *tx)
        .await?;
        let total: i64 = row.try_get("total")?;
        let mine: i64 = row.try_get("mine")?;
        // A free slot is for the highest run waiting for one: a run of lower priority arriving
        // first waits its turn (and the higher one is woken, if it was not).
        let outranked = mine == 0
            && total < max
            && sqlx::query_scalar::<_, i64>(
                "SELECT 1 FROM slot_waiters WHERE key = ?1 AND run_id <> ?2 AND priority > ?3 LIMIT 1",
            )
            .bind(key)
            .bind(run.to_string())
            .bind(priority)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        let outcome = if mine > 0 {
            SlotOutcome::Acquired
        } else if outranked {
            wake_slot_waiters(&mut tx, &BTreeSet::from([key.to_string()]), now).await?;
            SlotOutcome::Full
        } else if total < max {
            sqlx::query(
                "INSERT INTO concurrency_slots (key, run_id, step, acquired_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .bind(key)
            .bind(run.to_string())
            .bind(step)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM slot_waiters WHERE key = ?1 AND run_id = ?2")
                .bind(key)
                .bind(run.to_string())
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
        let mut tx = self.begin().await?;
        let gone = sqlx::query(
            "DELETE FROM concurrency_slots WHERE key = ?1 AND run_id = ?2 AND step = ?3",
        )
        .bind(key)
        .bind(run.to_string())
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if gone > 0 {
            wake_slot_waiters(&mut tx, &BTreeSet::from([key.to_string()]), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_concurrency_limit(&self, key: &str, max: Option<u32>) -> Result<()> {
        let mut tx = self.begin().await?;
        match max {
            Some(m) => {
                sqlx::query(
                    "INSERT INTO concurrency_limits (key, max_slots) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET max_slots = excluded.max_slots",
                )
                .bind(key)
                .bind(m as i64)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM concurrency_limits WHERE key = ?1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn concurrency_usage(&self) -> Result<Vec<(String, i64, Option<i64>)>> {
        let rows = sqlx::query(
            "SELECT k.key AS key, (SELECT count(*) FROM concurrency_slots s WHERE s.key = k.key) AS held,
                    (SELECT max_slots FROM concurrency_limits l WHERE l.key = k.key) AS max
             FROM (SELECT key FROM concurrency_limits UNION SELECT key FROM concurrency_slots) k ORDER BY k.key",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("held")?, r.try_get("max")?)))
            .collect()
    }

    async fn tree_cost(&self, root: RunId) -> Result<(i64, Option<i64>)> {
        let row = sqlx::query(
            "SELECT (SELECT COALESCE(sum(cost_micros), 0) FROM runs
                     WHERE id = ?1 OR (root_id = ?1 AND parent_id IS NOT NULL)) AS spent,
                    (SELECT budget_micros FROM runs WHERE id = ?1) AS budget",
        )
        .bind(root.to_string())
        .fetch_one(&self.reader)
        .await?;
        Ok((row.try_get("spent")?, row.try_get("budget")?))
    }

    async fn set_budget(&self, run: RunId, budget_micros: Option<i64>) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE runs SET budget_micros = ?2 WHERE id = ?1")
            .bind(run.to_string())
            .bind(budget_micros)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn request_cancel(&self, run: RunId, reason: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE runs SET cancel_reason = ?2 WHERE id = ?1 AND status = 'running'")
                .bind(run.to_string())
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn get_run_by_key(&self, key: &str) -> Result<Option<RunRecord>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE idempotency_key = ?1"
        )))
        .bind(key)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>> {
        let limit = f.limit.unwrap_or(50).clamp(1, 500) as i64;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE (?1 IS NULL OR workflow = ?1)
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR scope = ?3)
               AND (?4 IS NULL OR parent_id = ?4)
               AND (?5 IS NULL OR id < ?5)
               AND (?7 IS NULL OR workflow_version = ?7)
               AND (?8 IS NULL OR EXISTS (SELECT 1 FROM events e WHERE e.run_id = runs.id
                                            AND e.kind = 'patch' AND e.step = 'patch/' || ?8))
             ORDER BY id DESC
             LIMIT ?6"
        )))
        .bind(&f.workflow)
        .bind(f.status.map(|s| s.as_str()))
        .bind(&f.scope)
        .bind(f.parent_id.map(|p| p.to_string()))
        .bind(f.before.map(|b| b.to_string()))
        .bind(limit)
        .bind(f.workflow_version.map(|v| v as i64))
        .bind(&f.patch)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn seed_journal(
        &self,
        run: RunId,
        events: &[(Option<String>, crate::model::EventData)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let mut seq = max_seq(&mut tx, run).await?;
        for (step, data) in events {
            seq += 1;
            insert_event(&mut tx, run, seq, now, step.as_deref(), data).await?;
        }
        // Counted as claimed once: its first claim loads this journal instead of taking it
        // for a fresh run's.
        let n = sqlx::query(
            "UPDATE runs SET claims = 1, ready_at = ?2, updated_at = ?2
             WHERE id = ?1 AND status = 'pending' AND claims = 0",
        )
        .bind(run.to_string())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(EngineError::Conflict(format!(
                "run {run} was claimed before its journal was in place"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn descendants(&self, id: RunId) -> Result<Vec<RunId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE t(id) AS (
                SELECT id FROM runs WHERE id = ?1
                UNION SELECT r.id FROM runs r JOIN t ON r.parent_id = t.id
             ) SELECT id FROM t",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        ids.iter().map(|s| parse_id(s)).collect()
    }

    async fn events(&self, id: RunId) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events WHERE run_id = ?1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn events_page(&self, id: RunId, after: i64, limit: u32) -> Result<Vec<EventRecord>> {
        let rows = sqlx::query(
            "SELECT run_id, seq, at, step, data FROM events WHERE run_id = ?1 AND seq > ?2
             ORDER BY seq LIMIT ?3",
        )
        .bind(id.to_string())
        .bind(after)
        .bind(limit.clamp(1, 5000) as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn pulse(&self, after: Option<RunId>) -> Result<Vec<RunPulse>> {
        let rows = sqlx::query(
            "SELECT id, workflow, scope, parent_id, status,
                    COALESCE((SELECT max(seq) FROM events e WHERE e.run_id = r.id), 0) AS last_seq
             FROM runs r
             WHERE status IN ('pending', 'running', 'waiting', 'sleeping')
                OR (?1 IS NOT NULL AND id > ?1)
             ORDER BY id LIMIT 5000",
        )
        .bind(after.map(|a| a.to_string()))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                let parent: Option<String> = row.try_get("parent_id")?;
                Ok(RunPulse {
                    id: parse_id(&row.try_get::<String, _>("id")?)?,
                    workflow: row.try_get("workflow")?,
                    scope: row.try_get("scope")?,
                    parent_id: parent.as_deref().map(parse_id).transpose()?,
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
        .fetch_all(&self.reader)
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
        .fetch_all(&self.reader)
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
            "SELECT COALESCE(sum(cost_micros), 0) AS m, COALESCE(sum(cost_units), 0.0) AS u FROM runs",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok((row.try_get("m")?, row.try_get("u")?))
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT min(ready_at) FROM runs WHERE status IN ('pending','running','waiting','sleeping')",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(v.map(from_ms))
    }

    async fn bare_commit_rate(&self, concurrency: usize, duration: Duration) -> Result<BareRate> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS slate_bench_bare (id INTEGER PRIMARY KEY AUTOINCREMENT, v INTEGER NOT NULL, at INTEGER NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        // SQLite has one writer: the tasks queue on the writer connection, as the engine does.
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::new();
        for i in 0..concurrency {
            let pool = self.writer.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    sqlx::query("INSERT INTO slate_bench_bare (v, at) VALUES (?1, ?2)")
                        .bind(i as i64)
                        .bind(ms(Utc::now()))
                        .execute(&pool)
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
            .execute(&self.writer)
            .await?;
        Ok(BareRate {
            commits,
            per_second: commits as f64 / secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn millis_round_trip() {
        let now = Utc::now();
        assert_eq!(ms(from_ms(ms(now))), ms(now));
    }

    #[test]
    fn json_list_binds_strings_and_numbers() {
        assert_eq!(json_list(&["a", "b"]).unwrap(), r#"["a","b"]"#);
        assert_eq!(json_list::<i64>(&[]).unwrap(), "[]");
        let v: Value = serde_json::from_str(&json_list(&[1i64, 2]).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!([1, 2]));
    }
}
