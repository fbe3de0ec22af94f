//! Helpers for tests that need a real database of their own: a fresh Postgres database per
//! test (on the server named by `SLATE_TEST_DATABASE_URL`, default the local one) or a fresh
//! SQLite file. Used by this crate's conformance suite and by the other crates' tests.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;

use crate::error::Result;
use crate::runtime::EngineConfig;

/// The Postgres server tests use (a maintenance database on it).
pub fn postgres_admin_url() -> String {
    std::env::var("SLATE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

/// Create an empty database named `slate_t_<random>` on the test server and return its URL.
pub async fn fresh_postgres_url() -> Result<String> {
    fresh_postgres_url_on(&postgres_admin_url()).await
}

/// Create an empty database named `slate_t_<random>` on the server of `admin` (a URL of an
/// existing database there) and return its URL.
pub async fn fresh_postgres_url_on(admin: &str) -> Result<String> {
    let admin = admin.to_string();
    let name = format!("slate_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    // The name is generated here from hex digits, never taken from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(with_database(&admin, &name))
}

/// Drop a database made by [`fresh_postgres_url_on`] (its name must start with `slate_t_`);
/// `admin` is the URL it was made from.
pub async fn drop_postgres_database(admin: &str, url: &str) -> Result<()> {
    let name = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    if !name.starts_with("slate_t_") || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(crate::error::EngineError::Invalid(format!(
            "refusing to drop `{name}`: not a test database"
        )));
    }
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// A path for a fresh SQLite database under the system's temporary directory.
pub fn fresh_sqlite_path() -> PathBuf {
    std::env::temp_dir()
        .join(format!("slate-test-{}", uuid::Uuid::new_v4().simple()))
        .join("slate.db")
}

/// Engine settings for tests: short leases and fast polling.
pub fn test_config() -> EngineConfig {
    EngineConfig {
        lease: Duration::from_secs(3),
        heartbeat: Some(Duration::from_millis(500)),
        poll_interval: Duration::from_millis(50),
        cancel_grace: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
        pool_size: 8,
        ..EngineConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/postgres?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
