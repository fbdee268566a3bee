//! Status writes as guarded updates: a row moves only from a state its machine allows, however
//! many callers ask at once (the database decides which one, by rows affected).

use creditmesh_domain::lifecycle::Machine;
use sqlx::{AnyConnection, AssertSqlSafe};

use crate::error::StorageError;

/// Moves the row of `table` whose `key` columns hold the given values to where `event`
/// leads, if its `status` is one the event may move. `Some(new state)` when it moved, `None`
/// when the row is missing or in a state the event does not move (the caller reads which).
pub async fn apply<M: Machine>(
    conn: &mut AnyConnection,
    table: &'static str,
    key: &[(&'static str, &str)],
    event: M::Event,
) -> Result<Option<M>, StorageError> {
    let to = M::target(event);
    let guard = M::sources(event)
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let keys = key
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{column} = ${}", i + 2))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!("UPDATE {table} SET status = $1 WHERE {keys} AND status IN ({guard})");
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(to.name().to_owned());
    for (_, value) in key {
        query = query.bind(value.to_string());
    }
    let done = query.execute(&mut *conn).await?;
    Ok((done.rows_affected() == 1).then_some(to))
}
