//! The department's own record of the referrals it received, with the receipt it gave for each.

use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::{Migration, StorageError};

pub fn migrations() -> Vec<Migration> {
    vec![Migration::new(
        100,
        "referrals received",
        include_str!("../migrations/100_inbox.sql"),
        include_str!("../migrations/100_inbox.sql"),
    )]
}

/// One referral as received.
#[derive(Debug, Clone)]
pub struct Entry {
    pub referral_id: String,
    /// The encoded `Referral`, as it arrived.
    pub payload: Vec<u8>,
    pub sha256: String,
    pub received_at: i64,
    pub signature: Vec<u8>,
    /// `received`, `acknowledged` or `declined`.
    pub status: String,
    pub answered_at: Option<i64>,
    pub reason: String,
}

const COLUMNS: &str =
    "referral_id, payload, sha256, received_at, signature, status, answered_at, reason";

fn entry(r: &AnyRow) -> Result<Entry, sqlx::Error> {
    let unhex = |s: String| hex::decode(s).map_err(|e| sqlx::Error::Decode(Box::new(e)));
    Ok(Entry {
        referral_id: r.try_get(0)?,
        payload: unhex(r.try_get(1)?)?,
        sha256: r.try_get(2)?,
        received_at: r.try_get(3)?,
        signature: unhex(r.try_get(4)?)?,
        status: r.try_get(5)?,
        answered_at: r.try_get(6)?,
        reason: r.try_get(7)?,
    })
}

/// Keeps the first copy of a referral; false when its id was received before.
pub async fn insert_first(
    conn: &mut AnyConnection,
    e: &Entry,
    sent_by: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO department_referral (referral_id, payload, sha256, received_at, signature, \
         sent_by, status) VALUES ($1, $2, $3, $4, $5, $6, 'received') \
         ON CONFLICT (referral_id) DO NOTHING",
    )
    .bind(e.referral_id.clone())
    .bind(hex::encode(&e.payload))
    .bind(e.sha256.clone())
    .bind(e.received_at)
    .bind(hex::encode(&e.signature))
    .bind(sent_by.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find(
    conn: &mut AnyConnection,
    referral_id: &str,
) -> Result<Option<Entry>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM department_referral WHERE referral_id = $1"
    )))
    .bind(referral_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(entry).transpose()?)
}

/// Every referral received, oldest first; only unanswered ones when asked.
pub async fn list(
    conn: &mut AnyConnection,
    unanswered_only: bool,
) -> Result<Vec<Entry>, StorageError> {
    let filter = if unanswered_only {
        " WHERE status = 'received'"
    } else {
        ""
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM department_referral{filter} ORDER BY received_at, referral_id"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(entry)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Records the department's answer once the platform has taken it: from `received` only, or
/// `acknowledged` to `declined`.
pub async fn answer(
    conn: &mut AnyConnection,
    referral_id: &str,
    status: &str,
    at: i64,
    reason: &str,
) -> Result<bool, StorageError> {
    let from = if status == "declined" {
        "('received', 'acknowledged')"
    } else {
        "('received')"
    };
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE department_referral SET status = $1, answered_at = $2, reason = $3 \
         WHERE referral_id = $4 AND status IN {from}"
    )))
    .bind(status.to_owned())
    .bind(at)
    .bind(reason.to_owned())
    .bind(referral_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
