//! SQL of referrals to departments; each status write is a guarded update.

use creditmesh_domain::lifecycle::{Machine, Referral, ReferralEvent};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::transition;

pub struct NewReferral<'a> {
    pub referral_id: &'a str,
    pub tenant: &'a str,
    pub tracking_number: &'a str,
    pub department: &'a str,
    pub department_tenant: &'a str,
    pub reason: &'a str,
    pub referred_at: i64,
    pub referred_by: &'a str,
    /// The encoded `Referral` without the complainant's contact, which is kept sealed in
    /// `sealed_contact` and opened into it when it is sent; `payload_sha256` is of the bytes
    /// sent, as delivered every time.
    pub payload: &'a [u8],
    pub payload_sha256: &'a str,
    pub sealed_contact: &'a str,
    /// Whether the department may open the complaint's evidence.
    pub shares_evidence: bool,
    /// Sent by letter: no node delivers it.
    pub by_letter: bool,
}

pub struct ReferralRow {
    pub referral_id: String,
    pub tenant: String,
    pub tracking_number: String,
    pub department: String,
    pub department_tenant: String,
    pub payload: Vec<u8>,
    pub payload_sha256: String,
    pub status: String,
    pub attempts: i64,
    pub received_at: Option<i64>,
    pub receipt_signature: Vec<u8>,
    pub receipt_certificate: Vec<u8>,
    pub acknowledged_at: Option<i64>,
    pub declined_at: Option<i64>,
    pub decline_reason: String,
    pub sealed_contact: String,
}

const COLUMNS: &str = "referral_id, tenant, tracking_number, department, department_tenant, \
    payload, payload_sha256, status, attempts, last_error, received_at, receipt_signature, \
    receipt_certificate, acknowledged_at, declined_at, decline_reason, sealed_contact";

fn unhex(s: String) -> Result<Vec<u8>, sqlx::Error> {
    hex::decode(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn referral(r: &AnyRow) -> Result<ReferralRow, sqlx::Error> {
    Ok(ReferralRow {
        referral_id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        tracking_number: r.try_get(2)?,
        department: r.try_get(3)?,
        department_tenant: r.try_get(4)?,
        payload: unhex(r.try_get(5)?)?,
        payload_sha256: r.try_get(6)?,
        status: r.try_get(7)?,
        attempts: r.try_get(8)?,
        received_at: r.try_get(10)?,
        receipt_signature: unhex(r.try_get(11)?)?,
        receipt_certificate: unhex(r.try_get(12)?)?,
        acknowledged_at: r.try_get(13)?,
        declined_at: r.try_get(14)?,
        decline_reason: r.try_get(15)?,
        sealed_contact: r.try_get(16)?,
    })
}

fn rows(rows: &[AnyRow]) -> Result<Vec<ReferralRow>, StorageError> {
    rows.iter()
        .map(referral)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

pub async fn insert(conn: &mut AnyConnection, r: &NewReferral<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_referral (referral_id, tenant, tracking_number, department, \
         department_tenant, reason, referred_at, referred_by, payload, payload_sha256, status, \
         next_at, shares_evidence, sealed_contact) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $7, $11, $13)",
    )
    .bind(r.referral_id.to_owned())
    .bind(r.tenant.to_owned())
    .bind(r.tracking_number.to_owned())
    .bind(r.department.to_owned())
    .bind(r.department_tenant.to_owned())
    .bind(r.reason.to_owned())
    .bind(r.referred_at)
    .bind(r.referred_by.to_owned())
    .bind(hex::encode(r.payload))
    .bind(r.payload_sha256.to_owned())
    .bind(i64::from(r.shares_evidence))
    .bind(if r.by_letter {
        Referral::SentByLetter.name()
    } else {
        Referral::Pending.name()
    })
    .bind(r.sealed_contact.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether a referral of `tracking_number` that reached `department` of `department_tenant`,
/// and was not declined, shares the complaint's evidence with it.
pub async fn shares_evidence_with(
    conn: &mut AnyConnection,
    tracking_number: &str,
    department: &str,
    department_tenant: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "SELECT 1 FROM complaints_referral WHERE tracking_number = $1 AND department = $2 \
         AND department_tenant = $3 AND shares_evidence = 1 \
         AND status IN ('delivered', 'acknowledged', 'sent_by_letter')",
    )
    .bind(tracking_number.to_owned())
    .bind(department.to_owned())
    .bind(department_tenant.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

pub async fn find(
    conn: &mut AnyConnection,
    referral_id: &str,
) -> Result<Option<ReferralRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints_referral WHERE referral_id = $1"
    )))
    .bind(referral_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(referral).transpose()?)
}

/// The referrals of one complaint, oldest first.
pub async fn of_complaint(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
) -> Result<Vec<ReferralRow>, StorageError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints_referral WHERE tenant = $1 AND tracking_number = $2 \
         ORDER BY referred_at, referral_id"
    )))
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows(&found)
}

/// Referrals addressed to one department of one division that its node has received, or that
/// were sent to it by letter, by id after `after`.
pub async fn addressed_to(
    conn: &mut AnyConnection,
    department: &str,
    department_tenant: &str,
    unanswered_only: bool,
    after: &str,
    limit: i64,
) -> Result<Vec<ReferralRow>, StorageError> {
    let statuses = if unanswered_only {
        "('delivered', 'sent_by_letter')"
    } else {
        "('delivered', 'acknowledged', 'declined', 'sent_by_letter')"
    };
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints_referral WHERE department = $1 \
         AND department_tenant = $2 AND referral_id > $3 AND status IN {statuses} \
         ORDER BY referral_id LIMIT {limit}"
    )))
    .bind(department.to_owned())
    .bind(department_tenant.to_owned())
    .bind(after.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows(&found)
}

/// Pending referrals whose next attempt is due.
pub async fn due(
    conn: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> Result<Vec<ReferralRow>, StorageError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints_referral WHERE status = 'pending' AND next_at <= $1 \
         ORDER BY next_at LIMIT {limit}"
    )))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    rows(&found)
}

/// Claims a due referral for one delivery attempt (moves its next attempt past `until`);
/// false when another sender claimed it first or it is no longer pending.
pub async fn claim(
    conn: &mut AnyConnection,
    referral_id: &str,
    now: i64,
    until: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE complaints_referral SET next_at = $1 \
         WHERE referral_id = $2 AND status = 'pending' AND next_at <= $3",
    )
    .bind(until)
    .bind(referral_id.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A failed attempt: when to try again, and why it failed.
pub async fn retry_at(
    conn: &mut AnyConnection,
    referral_id: &str,
    next_at: i64,
    error: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_referral SET attempts = attempts + 1, next_at = $1, last_error = $2 \
         WHERE referral_id = $3 AND status = 'pending'",
    )
    .bind(next_at)
    .bind(error.chars().take(500).collect::<String>())
    .bind(referral_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a referral by `event` if its state allows; `None` when it did not.
pub async fn transition(
    conn: &mut AnyConnection,
    referral_id: &str,
    event: ReferralEvent,
) -> Result<Option<Referral>, StorageError> {
    transition::apply::<Referral>(
        conn,
        "complaints_referral",
        &[("referral_id", referral_id)],
        event,
    )
    .await
}

pub struct Receipt<'a> {
    pub received_at: i64,
    pub signature: &'a [u8],
    pub certificate: &'a [u8],
}

/// Records the verified receipt of a referral just moved to delivered.
pub async fn set_delivered(
    conn: &mut AnyConnection,
    referral_id: &str,
    r: &Receipt<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_referral SET attempts = attempts + 1, last_error = '', \
         received_at = $1, receipt_signature = $2, receipt_certificate = $3 \
         WHERE referral_id = $4",
    )
    .bind(r.received_at)
    .bind(hex::encode(r.signature))
    .bind(hex::encode(r.certificate))
    .bind(referral_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_acknowledged(
    conn: &mut AnyConnection,
    referral_id: &str,
    at: i64,
    by: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_referral SET acknowledged_at = $1, answered_by = $2 \
         WHERE referral_id = $3",
    )
    .bind(at)
    .bind(by.to_owned())
    .bind(referral_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_declined(
    conn: &mut AnyConnection,
    referral_id: &str,
    at: i64,
    by: &str,
    reason: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_referral SET declined_at = $1, answered_by = $2, decline_reason = $3 \
         WHERE referral_id = $4",
    )
    .bind(at)
    .bind(by.to_owned())
    .bind(reason.to_owned())
    .bind(referral_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Referrals stored before contacts were sealed: their ids and hex payloads.
pub async fn unsealed(conn: &mut AnyConnection) -> Result<Vec<(String, String)>, StorageError> {
    Ok(sqlx::query_as(
        "SELECT referral_id, payload FROM complaints_referral WHERE sealed_contact = ''",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Replaces the referral's payload `was` by `payload` (its contact taken out) and keeps the
/// contact sealed, unless it changed meanwhile; whether it did.
pub async fn seal_contact(
    conn: &mut AnyConnection,
    referral_id: &str,
    was: &str,
    payload: &str,
    sealed_contact: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "UPDATE complaints_referral SET payload = $1, sealed_contact = $2 \
         WHERE referral_id = $3 AND sealed_contact = '' AND payload = $4",
    )
    .bind(payload.to_owned())
    .bind(sealed_contact.to_owned())
    .bind(referral_id.to_owned())
    .bind(was.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}
