//! SQL of the complaints tables; database errors are translated here.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

pub struct NewComplaint<'a> {
    pub tenant: &'a str,
    pub tracking_number: &'a str,
    pub access_code_sha256: &'a str,
    pub agency_uscc: &'a str,
    pub agency_name: &'a str,
    pub complainant_name: &'a str,
    pub complainant_contact: &'a str,
    pub subject: &'a str,
    pub description: &'a str,
    pub evidence_json: &'a str,
    pub received_at: i64,
}

pub struct ComplaintRow {
    pub tenant: String,
    pub tracking_number: String,
    pub access_code_sha256: String,
    pub status: String,
}

pub struct HistoryRow {
    pub status: String,
    pub changed_at: i64,
    pub note: String,
}

pub async fn insert(conn: &mut AnyConnection, c: &NewComplaint<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_complaint (tenant, tracking_number, access_code_sha256, agency_uscc, \
         agency_name, complainant_name, complainant_contact, subject, description, evidence, status, \
         received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received', $11)",
    )
    .bind(c.tenant.to_owned())
    .bind(c.tracking_number.to_owned())
    .bind(c.access_code_sha256.to_owned())
    .bind(c.agency_uscc.to_owned())
    .bind(c.agency_name.to_owned())
    .bind(c.complainant_name.to_owned())
    .bind(c.complainant_contact.to_owned())
    .bind(c.subject.to_owned())
    .bind(c.description.to_owned())
    .bind(c.evidence_json.to_owned())
    .bind(c.received_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn add_history(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    status: &str,
    changed_at: i64,
    principal: &str,
    note: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_history (tenant, tracking_number, seq, status, changed_at, principal, note) \
         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM complaints_history \
         WHERE tenant = $1 AND tracking_number = $2), $3, $4, $5, $6)",
    )
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .bind(status.to_owned())
    .bind(changed_at)
    .bind(principal.to_owned())
    .bind(note.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut AnyConnection,
    tracking_number: &str,
) -> Result<Option<ComplaintRow>, StorageError> {
    let row = sqlx::query(
        "SELECT tenant, tracking_number, access_code_sha256, status FROM complaints_complaint \
         WHERE tracking_number = $1",
    )
    .bind(tracking_number.to_owned())
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ComplaintRow {
            tenant: r.try_get(0)?,
            tracking_number: r.try_get(1)?,
            access_code_sha256: r.try_get(2)?,
            status: r.try_get(3)?,
        })
    })
    .transpose()
    .map_err(|e: sqlx::Error| e.into())
}

pub async fn history(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
) -> Result<Vec<HistoryRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT status, changed_at, note FROM complaints_history \
         WHERE tenant = $1 AND tracking_number = $2 ORDER BY seq",
    )
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                status: r.try_get(0)?,
                changed_at: r.try_get(1)?,
                note: r.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
