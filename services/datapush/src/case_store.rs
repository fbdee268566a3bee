//! The cases in which a department may read non-public records (Art. 23).

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// A referral a department received, opening a case.
pub struct NewCase<'a> {
    pub referral_id: &'a str,
    pub tenant: &'a str,
    pub tracking_number: &'a str,
    pub agency_uscc: &'a str,
    pub department: &'a str,
    pub department_tenant: &'a str,
    pub received_on: &'a str,
    pub ends_on: &'a str,
    pub opened_at: i64,
}

/// Opens the case once; a case its decline closed first stays closed.
pub async fn open(conn: &mut AnyConnection, c: &NewCase<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_case (referral_id, tenant, tracking_number, agency_uscc, \
         department, department_tenant, received_on, ends_on, opened_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (referral_id) DO NOTHING",
    )
    .bind(c.referral_id.to_owned())
    .bind(c.tenant.to_owned())
    .bind(c.tracking_number.to_owned())
    .bind(c.agency_uscc.to_owned())
    .bind(c.department.to_owned())
    .bind(c.department_tenant.to_owned())
    .bind(c.received_on.to_owned())
    .bind(c.ends_on.to_owned())
    .bind(c.opened_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A declined referral: its case closed at `at`, or, when the decline arrives before the
/// receipt, a closed case left behind so that the receipt opens nothing.
pub struct Declined<'a> {
    pub referral_id: &'a str,
    pub tenant: &'a str,
    pub agency_uscc: &'a str,
    pub department: &'a str,
    pub department_tenant: &'a str,
    pub at: i64,
}

pub async fn close_declined(
    conn: &mut AnyConnection,
    d: &Declined<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_case (referral_id, tenant, tracking_number, agency_uscc, \
         department, department_tenant, received_on, ends_on, opened_at, closed_at, \
         close_reason) VALUES ($1, $2, '', $3, $4, $5, '', '', $6, $6, 'declined') \
         ON CONFLICT (referral_id) DO UPDATE SET closed_at = excluded.closed_at, \
         close_reason = excluded.close_reason WHERE datapush_case.closed_at IS NULL",
    )
    .bind(d.referral_id.to_owned())
    .bind(d.tenant.to_owned())
    .bind(d.agency_uscc.to_owned())
    .bind(d.department.to_owned())
    .bind(d.department_tenant.to_owned())
    .bind(d.at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A stored case as its department may use it.
pub struct CaseRow {
    pub agency_uscc: String,
    pub ends_on: String,
    pub closed_at: Option<i64>,
    pub close_reason: String,
}

/// The case of `referral_id` that `department` of `department_tenant` received.
pub async fn find(
    conn: &mut AnyConnection,
    referral_id: &str,
    department: &str,
    department_tenant: &str,
) -> Result<Option<CaseRow>, StorageError> {
    let row = sqlx::query(
        "SELECT agency_uscc, ends_on, closed_at, close_reason FROM datapush_case \
         WHERE referral_id = $1 AND department = $2 AND department_tenant = $3",
    )
    .bind(referral_id.to_owned())
    .bind(department.to_owned())
    .bind(department_tenant.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(CaseRow {
        agency_uscc: r.try_get(0)?,
        ends_on: r.try_get(1)?,
        closed_at: r.try_get(2)?,
        close_reason: r.try_get(3)?,
    }))
}
