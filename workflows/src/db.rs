//! The film domain's tables, on whichever database the engine uses.
//!
//! The statements are written once with `$1` placeholders and portable types (TEXT JSON, BIGINT
//! milliseconds); for SQLite the placeholders become `?1`. Writes on SQLite go through the
//! engine's single writer connection with `BEGIN IMMEDIATE`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use slate_engine::store::SqlPools;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Row, SqlitePool};

use crate::error::{FilmError, Result};

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Text.
    Text(String),
    /// Nullable text.
    OptText(Option<String>),
    /// Integer.
    Int(i64),
    /// Nullable integer.
    OptInt(Option<i64>),
    /// Float.
    Float(f64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_string())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}
impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}
impl From<Option<String>> for Arg {
    fn from(s: Option<String>) -> Self {
        Arg::OptText(s)
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::Int(v as i64)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Float(v)
    }
}

/// Build an argument list.
#[macro_export]
macro_rules! args {
    ($($e:expr),* $(,)?) => { vec![$($crate::db::Arg::from($e)),*] };
}

/// A row from either database.
pub enum FilmRow {
    /// Postgres.
    Pg(PgRow),
    /// SQLite.
    Sqlite(SqliteRow),
}

impl FilmRow {
    /// A text column.
    pub fn text(&self, c: &str) -> Result<String> {
        Ok(match self {
            FilmRow::Pg(r) => r.try_get(c)?,
            FilmRow::Sqlite(r) => r.try_get(c)?,
        })
    }
    /// A nullable text column.
    pub fn opt_text(&self, c: &str) -> Result<Option<String>> {
        Ok(match self {
            FilmRow::Pg(r) => r.try_get(c)?,
            FilmRow::Sqlite(r) => r.try_get(c)?,
        })
    }
    /// An integer column.
    pub fn int(&self, c: &str) -> Result<i64> {
        Ok(match self {
            FilmRow::Pg(r) => r.try_get(c)?,
            FilmRow::Sqlite(r) => r.try_get(c)?,
        })
    }
    /// A nullable integer column.
    pub fn opt_int(&self, c: &str) -> Result<Option<i64>> {
        Ok(match self {
            FilmRow::Pg(r) => r.try_get(c)?,
            FilmRow::Sqlite(r) => r.try_get(c)?,
        })
    }
    /// A JSON column read into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, c: &str) -> Result<T> {
        let s = self.text(c)?;
        serde_json::from_str(&s).map_err(|e| FilmError::Internal(format!("column {c}: {e}")))
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Milliseconds to a time.
pub fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// The film database.
#[derive(Debug, Clone)]
pub enum FilmDb {
    /// Postgres.
    Pg(PgPool),
    /// SQLite.
    Sqlite {
        /// The single writer.
        writer: SqlitePool,
        /// Readers.
        reader: SqlitePool,
    },
}

fn sqlite_sql(sql: &'static str) -> &'static str {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = c.get(sql) {
        return s;
    }
    // `$12` -> `?12`: the statements contain no other dollar signs (no dollar quoting).
    let converted: &'static str = Box::leak(sql.replace('$', "?").into_boxed_str());
    c.insert(sql, converted);
    converted
}

macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::OptText(s) => q.bind(s),
                Arg::Int(v) => q.bind(v),
                Arg::OptInt(v) => q.bind(v),
                Arg::Float(v) => q.bind(v),
            };
        }
        q
    }};
}

impl FilmDb {
    /// The film tables live in the engine's database (one migration sequence, decision 0006),
    /// reached through the engine's own connection pools.
    pub fn of(engine: &slate_engine::Engine) -> Self {
        Self::from_pools(engine.store().pools())
    }

    /// The engine's database, from its pools.
    pub fn from_pools(p: SqlPools) -> Self {
        match p {
            SqlPools::Postgres(p) => FilmDb::Pg(p),
            SqlPools::Sqlite { writer, reader } => FilmDb::Sqlite { writer, reader },
        }
    }

    /// The same pools, for the activities' local knowledge store.
    pub fn activities_db(&self) -> slate_activities::Db {
        match self {
            FilmDb::Pg(p) => slate_activities::Db::Postgres(p.clone()),
            FilmDb::Sqlite { writer, reader } => slate_activities::Db::Sqlite {
                writer: writer.clone(),
                reader: reader.clone(),
            },
        }
    }

    /// Run a write; returns the rows affected.
    pub async fn exec(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64> {
        Ok(match self {
            FilmDb::Pg(p) => bind_all!(sqlx::query(sql), args)
                .execute(p)
                .await?
                .rows_affected(),
            FilmDb::Sqlite { writer, .. } => {
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                let n = bind_all!(sqlx::query(sqlite_sql(sql)), args)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
        })
    }

    /// Run several writes in one transaction; returns the rows affected by each.
    pub async fn exec_all(&self, stmts: Vec<(&'static str, Vec<Arg>)>) -> Result<Vec<u64>> {
        let mut out = vec![];
        match self {
            FilmDb::Pg(p) => {
                let mut tx = p.begin().await?;
                for (sql, args) in stmts {
                    out.push(
                        bind_all!(sqlx::query(sql), args)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected(),
                    );
                }
                tx.commit().await?;
            }
            FilmDb::Sqlite { writer, .. } => {
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                for (sql, args) in stmts {
                    out.push(
                        bind_all!(sqlx::query(sqlite_sql(sql)), args)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected(),
                    );
                }
                tx.commit().await?;
            }
        }
        Ok(out)
    }

    /// Read rows.
    pub async fn fetch(&self, sql: &'static str, args: Vec<Arg>) -> Result<Vec<FilmRow>> {
        Ok(match self {
            FilmDb::Pg(p) => bind_all!(sqlx::query(sql), args)
                .fetch_all(p)
                .await?
                .into_iter()
                .map(FilmRow::Pg)
                .collect(),
            FilmDb::Sqlite { reader, .. } => bind_all!(sqlx::query(sqlite_sql(sql)), args)
                .fetch_all(reader)
                .await?
                .into_iter()
                .map(FilmRow::Sqlite)
                .collect(),
        })
    }

    /// Read rows through the writer (SQLite): sees this process's latest writes at once.
    pub async fn fetch_fresh(&self, sql: &'static str, args: Vec<Arg>) -> Result<Vec<FilmRow>> {
        match self {
            FilmDb::Pg(_) => self.fetch(sql, args).await,
            FilmDb::Sqlite { writer, .. } => Ok(bind_all!(sqlx::query(sqlite_sql(sql)), args)
                .fetch_all(writer)
                .await?
                .into_iter()
                .map(FilmRow::Sqlite)
                .collect()),
        }
    }

    /// Read at most one row.
    pub async fn fetch_one(&self, sql: &'static str, args: Vec<Arg>) -> Result<Option<FilmRow>> {
        Ok(self.fetch(sql, args).await?.into_iter().next())
    }

    /// `postgres` or `sqlite`.
    pub fn dialect(&self) -> &'static str {
        match self {
            FilmDb::Pg(_) => "postgres",
            FilmDb::Sqlite { .. } => "sqlite",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_converted_once() {
        let a = sqlite_sql("SELECT $1, $2, $1");
        assert_eq!(a, "SELECT ?1, ?2, ?1");
        let b = sqlite_sql("SELECT $1, $2, $1");
        assert!(std::ptr::eq(a, b));
    }
}
