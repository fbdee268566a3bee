//! SQL of the complaints tables; database errors are translated here.

use creditmesh_domain::lifecycle::{Complaint, ComplaintEvent};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::transition;

/// The deadlines running, by tenant and kind, for the gauges: acceptance of complaints received,
/// handling of those accepted.
pub const OPEN_DEADLINES: &str = "SELECT tenant, 'acceptance' AS kind, acceptance_due AS due \
     FROM complaints_complaint WHERE status = 'received' AND acceptance_due <> '' \
     UNION ALL SELECT tenant, 'handling', handling_due FROM complaints_complaint \
     WHERE status = 'accepted' AND handling_due <> ''";

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
    /// Where the conduct took place, as the complainant named it; empty when not named.
    pub place: &'a str,
}

pub struct ComplaintRow {
    pub tenant: String,
    pub tracking_number: String,
    pub access_code_sha256: String,
    pub status: String,
    pub agency_uscc: String,
    pub agency_name: String,
    pub subject: String,
    pub description: String,
    pub received_at: i64,
    pub acceptance_due: String,
    pub acceptance_provisional: bool,
    pub handling_from: String,
    pub handling_due: String,
    pub handling_provisional: bool,
    pub calendar_version: String,
    pub outcome: String,
    pub against_agency: bool,
    pub complainant_name: String,
    pub complainant_contact: String,
    pub repeats: String,
    /// How many later complaints repeat this one.
    pub repeated: i64,
    /// The SHA-256 of each piece of evidence, in the order the complainant gave them.
    pub evidence: Vec<String>,
    /// Where the conduct took place, as the complainant named it (a prefecture or county).
    pub place: String,
}

const COLUMNS: &str = "tenant, tracking_number, access_code_sha256, status, agency_uscc, \
    agency_name, subject, description, received_at, acceptance_due, acceptance_provisional, \
    handling_from, handling_due, handling_provisional, calendar_version, outcome, against_agency, \
    complainant_name, complainant_contact, repeats, evidence, place, \
    (SELECT COUNT(*) FROM complaints_complaint r WHERE r.tenant = complaints_complaint.tenant \
     AND r.repeats = complaints_complaint.tracking_number)";

fn complaint(r: &AnyRow) -> Result<ComplaintRow, sqlx::Error> {
    Ok(ComplaintRow {
        tenant: r.try_get(0)?,
        tracking_number: r.try_get(1)?,
        access_code_sha256: r.try_get(2)?,
        status: r.try_get(3)?,
        agency_uscc: r.try_get(4)?,
        agency_name: r.try_get(5)?,
        subject: r.try_get(6)?,
        description: r.try_get(7)?,
        received_at: r.try_get(8)?,
        acceptance_due: r.try_get(9)?,
        acceptance_provisional: r.try_get::<i64, _>(10)? != 0,
        handling_from: r.try_get(11)?,
        handling_due: r.try_get(12)?,
        handling_provisional: r.try_get::<i64, _>(13)? != 0,
        calendar_version: r.try_get(14)?,
        outcome: r.try_get(15)?,
        against_agency: r.try_get::<i64, _>(16)? != 0,
        complainant_name: r.try_get(17)?,
        complainant_contact: r.try_get(18)?,
        repeats: r.try_get(19)?,
        evidence: serde_json::from_str(&r.try_get::<String, _>(20)?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        place: r.try_get(21)?,
        repeated: r.try_get(22)?,
    })
}

pub struct HistoryRow {
    pub status: String,
    pub changed_at: i64,
    pub principal: String,
    pub note: String,
    pub note_zh: String,
}

pub async fn insert(conn: &mut AnyConnection, c: &NewComplaint<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_complaint (tenant, tracking_number, access_code_sha256, agency_uscc, \
         agency_name, complainant_name, complainant_contact, subject, description, evidence, status, \
         received_at, place) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received', $11, $12)",
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
    .bind(c.place.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends to a complaint's history. The next number comes from a counter on the complaint's
/// row, so two writers of one complaint's history queue on that row, whatever rows they took
/// before, instead of both taking `MAX(seq) + 1`.
pub async fn add_history(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    status: &str,
    changed_at: i64,
    principal: &str,
    (note, note_zh): (&str, &str),
) -> Result<(), StorageError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE complaints_complaint SET history_seq = history_seq + 1 \
         WHERE tenant = $1 AND tracking_number = $2 RETURNING history_seq",
    )
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO complaints_history (tenant, tracking_number, seq, status, changed_at, principal, note, note_zh) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .bind(seq)
    .bind(status.to_owned())
    .bind(changed_at)
    .bind(principal.to_owned())
    .bind(note.to_owned())
    .bind(note_zh.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut AnyConnection,
    tracking_number: &str,
) -> Result<Option<ComplaintRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints_complaint WHERE tracking_number = $1"
    )))
    .bind(tracking_number.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.as_ref().map(complaint).transpose()?)
}

pub async fn history(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
) -> Result<Vec<HistoryRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT status, changed_at, note, principal, note_zh FROM complaints_history \
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
                principal: r.try_get(3)?,
                note_zh: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Where the acceptance deadline of a complaint just received falls.
pub async fn set_acceptance_due(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    due: &str,
    provisional: bool,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_complaint SET acceptance_due = $1, acceptance_provisional = $2 \
         WHERE tenant = $3 AND tracking_number = $4",
    )
    .bind(due.to_owned())
    .bind(i64::from(provisional))
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A complaint whose open deadline was computed provisionally.
pub struct Provisional {
    pub tenant: String,
    pub tracking_number: String,
    pub status: String,
    pub received_at: i64,
    pub handling_from: String,
}

/// Complaints waiting to be accepted under a provisional acceptance deadline, and accepted
/// ones under a provisional handling deadline computed by a calendar other than `version`.
pub async fn provisional_deadlines(
    conn: &mut AnyConnection,
    version: &str,
) -> Result<Vec<Provisional>, StorageError> {
    let found = sqlx::query(
        "SELECT tenant, tracking_number, status, received_at, handling_from \
         FROM complaints_complaint WHERE (status = 'received' AND acceptance_provisional = 1) \
         OR (status = 'accepted' AND handling_provisional = 1 AND calendar_version <> $1) \
         ORDER BY tenant, tracking_number",
    )
    .bind(version.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    found
        .iter()
        .map(|r| {
            Ok(Provisional {
                tenant: r.try_get(0)?,
                tracking_number: r.try_get(1)?,
                status: r.try_get(2)?,
                received_at: r.try_get(3)?,
                handling_from: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// An accepted complaint's handling deadline, computed again.
pub async fn set_handling_due(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    d: &creditmesh_domain::calendar::Deadline,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_complaint SET handling_due = $1, handling_provisional = $2, \
         calendar_version = $3 WHERE tenant = $4 AND tracking_number = $5 AND status = 'accepted'",
    )
    .bind(creditmesh_domain::calendar::format_date(d.due))
    .bind(i64::from(d.provisional))
    .bind(d.calendar_version.clone())
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a complaint by `event` if its state allows; `None` when it did not.
pub async fn transition(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    event: ComplaintEvent,
) -> Result<Option<Complaint>, StorageError> {
    transition::apply::<Complaint>(
        conn,
        "complaints_complaint",
        &[("tenant", tenant), ("tracking_number", tracking_number)],
        event,
    )
    .await
}

pub struct Accepted<'a> {
    pub at: i64,
    pub from: &'a str,
    pub due: &'a str,
    pub provisional: bool,
    pub calendar_version: &'a str,
}

pub async fn set_accepted(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    a: &Accepted<'_>,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_complaint SET accepted_at = $1, handling_from = $2, handling_due = $3, \
         handling_provisional = $4, calendar_version = $5 WHERE tenant = $6 AND tracking_number = $7",
    )
    .bind(a.at)
    .bind(a.from.to_owned())
    .bind(a.due.to_owned())
    .bind(i64::from(a.provisional))
    .bind(a.calendar_version.to_owned())
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_resolved(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    at: i64,
    outcome: &str,
    verified: &str,
    against_agency: bool,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE complaints_complaint SET resolved_at = $1, outcome = $2, verified = $3, \
         against_agency = $4 WHERE tenant = $5 AND tracking_number = $6",
    )
    .bind(at)
    .bind(outcome.to_owned())
    .bind(verified.to_owned())
    .bind(i64::from(against_agency))
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub struct Listing<'a> {
    /// Empty: every tenant (the region).
    pub tenant: &'a str,
    pub statuses: Vec<&'static str>,
    /// Only complaints past a deadline on `today` (YYYY-MM-DD) that is not provisional.
    pub overdue_on: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

/// Complaints by tracking number after `after`.
pub async fn list(
    conn: &mut AnyConnection,
    l: &Listing<'_>,
) -> Result<Vec<ComplaintRow>, StorageError> {
    let mut sql = format!("SELECT {COLUMNS} FROM complaints_complaint WHERE tracking_number > $1");
    let mut binds: Vec<String> = vec![l.after.to_owned()];
    if !l.tenant.is_empty() {
        binds.push(l.tenant.to_owned());
        sql.push_str(&format!(" AND tenant = ${}", binds.len()));
    }
    if !l.statuses.is_empty() {
        let mut places = Vec::new();
        for st in &l.statuses {
            binds.push((*st).to_owned());
            places.push(format!("${}", binds.len()));
        }
        sql.push_str(&format!(" AND status IN ({})", places.join(", ")));
    }
    if let Some(today) = l.overdue_on {
        binds.push(today.to_owned());
        let t = binds.len();
        sql.push_str(&format!(
            " AND ((status = 'received' AND acceptance_due <> '' AND acceptance_provisional = 0 \
             AND acceptance_due < ${t}) OR (status = 'accepted' AND handling_provisional = 0 \
             AND handling_due < ${t}))"
        ));
    }
    sql.push_str(&format!(" ORDER BY tracking_number LIMIT {}", l.limit));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(complaint)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Marks a complaint just received as repeating the oldest open one of its tenant with the same
/// fingerprint (agency, subject, description), and records its fingerprint. Complaints with one
/// fingerprint are linked one at a time (the fingerprint's row is locked first), so identical
/// complaints arriving together still find each other on PostgreSQL.
pub async fn link_repeat(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Option<String>, StorageError> {
    sqlx::query(
        "INSERT INTO complaints_fingerprint (tenant, fingerprint, touched_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, fingerprint) DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(fingerprint.to_owned())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE complaints_fingerprint SET touched_at = $1 WHERE tenant = $2 AND fingerprint = $3",
    )
    .bind(now)
    .bind(tenant.to_owned())
    .bind(fingerprint.to_owned())
    .execute(&mut *conn)
    .await?;
    let first = sqlx::query(
        "SELECT tracking_number FROM complaints_complaint WHERE tenant = $1 AND fingerprint = $2 \
         AND repeats = '' AND status IN ('received', 'accepted', 'referred') \
         AND tracking_number <> $3 ORDER BY received_at, tracking_number LIMIT 1",
    )
    .bind(tenant.to_owned())
    .bind(fingerprint.to_owned())
    .bind(tracking_number.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.try_get::<String, _>(0))
    .transpose()?;
    sqlx::query(
        "UPDATE complaints_complaint SET fingerprint = $1, repeats = $2 \
         WHERE tenant = $3 AND tracking_number = $4",
    )
    .bind(fingerprint.to_owned())
    .bind(first.clone().unwrap_or_default())
    .bind(tenant.to_owned())
    .bind(tracking_number.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(first)
}

/// Records who holds `uscc`'s filing as of `at`; a notice older than what is known changes
/// nothing.
pub async fn put_holder(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO complaints_holder (uscc, tenant, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, \
         updated_at = excluded.updated_at WHERE complaints_holder.updated_at <= excluded.updated_at",
    )
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The authority holding `uscc`'s filing, when the register knows it.
pub async fn holder(conn: &mut AnyConnection, uscc: &str) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT tenant FROM complaints_holder WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
