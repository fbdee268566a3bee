//! The notification outbox: what complainants and subjects are to be told, each sent once
//! however many senders run.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// A notification to queue; `address` is sealed, or empty for a complaint's notification
/// (sent where the complaint says at the time).
pub struct NewNotification<'a> {
    pub tenant: &'a str,
    pub reference: &'a str,
    pub address: &'a str,
    pub channel: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub now: i64,
}

pub async fn insert(conn: &mut AnyConnection, n: &NewNotification<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_notification (id, tenant, tracking_number, address, subject, \
         body, created_at, next_at, channel) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(n.tenant.to_owned())
    .bind(n.reference.to_owned())
    .bind(n.address.to_owned())
    .bind(n.subject.to_owned())
    .bind(n.body.to_owned())
    .bind(n.now)
    .bind(n.channel.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A notification due, with its complaint's contact as the complaint says now.
pub struct Due {
    pub id: String,
    /// Sealed; empty for a complaint's notification.
    pub address: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
    pub channel: String,
    pub complainant_contact: Option<String>,
    pub reference: String,
}

/// Up to 20 notifications due at `now`, the longest waiting first.
pub async fn due(conn: &mut AnyConnection, now: i64) -> Result<Vec<Due>, StorageError> {
    let rows = sqlx::query(
        "SELECT n.id, n.address, n.subject, n.body, n.attempts, n.channel, \
         c.complainant_contact, n.tracking_number FROM complaints_notification n \
         LEFT JOIN complaints_complaint c ON c.tenant = n.tenant \
         AND c.tracking_number = n.tracking_number \
         WHERE n.sent_at IS NULL AND n.next_at <= $1 ORDER BY n.next_at LIMIT 20",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Due {
                id: r.try_get(0)?,
                address: r.try_get(1)?,
                subject: r.try_get(2)?,
                body: r.try_get(3)?,
                attempts: r.try_get(4)?,
                channel: r.try_get(5)?,
                complainant_contact: r.try_get(6)?,
                reference: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Claims `id` until `until` by a guarded update: `false` when another sender claimed it.
pub async fn claim(
    conn: &mut AnyConnection,
    id: &str,
    now: i64,
    until: i64,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "UPDATE complaints_notification SET next_at = $1 \
         WHERE id = $2 AND sent_at IS NULL AND next_at <= $3",
    )
    .bind(until)
    .bind(id.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Marks `id` done without sending it: nobody to reach.
pub async fn unreachable(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_notification SET sent_at = $1, \
         last_error = 'not sent: no contact to reach' \
         WHERE id = $2 AND sent_at IS NULL",
    )
    .bind(now)
    .bind(id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn sent(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_notification SET sent_at = $1, attempts = attempts + 1 \
         WHERE id = $2 AND sent_at IS NULL",
    )
    .bind(now)
    .bind(id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A failed attempt: tried again at `next`.
pub async fn failed(
    conn: &mut AnyConnection,
    id: &str,
    next: i64,
    error: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_notification SET attempts = attempts + 1, next_at = $1, \
         last_error = $2 WHERE id = $3 AND sent_at IS NULL",
    )
    .bind(next)
    .bind(error.to_owned())
    .bind(id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
