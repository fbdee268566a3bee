//! Runs of a one-off job, by name, in a service's job table (`name`, `done_at`, `summary`): a
//! run claims its name in the transaction that does the work, so that of replicas starting
//! together one does it, once.

use sqlx::AnyConnection;

use crate::StorageError;

/// Whether the run `name` is done.
pub async fn done(
    conn: &mut AnyConnection,
    table: &'static str,
    name: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {table} WHERE name = $1"
    )))
    .bind(name.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Claims the run `name`: `false` when another replica claimed it first.
pub async fn claim(
    conn: &mut AnyConnection,
    table: &'static str,
    name: &str,
    now: i64,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (name, done_at, summary) VALUES ($1, $2, '') \
         ON CONFLICT (name) DO NOTHING"
    )))
    .bind(name.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Says what the run `name` did.
pub async fn summarize(
    conn: &mut AnyConnection,
    table: &'static str,
    name: &str,
    summary: &str,
) -> Result<(), StorageError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {table} SET summary = $1 WHERE name = $2"
    )))
    .bind(summary.to_owned())
    .bind(name.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
