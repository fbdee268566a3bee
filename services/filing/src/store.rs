//! SQL of the filing tables; database errors are translated here.

use std::collections::HashSet;

use creditmesh_domain::lifecycle::{Change, ChangeEvent, Filing, FilingEvent, Machine};
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::{StorageError, transition};

#[derive(Clone)]
pub struct FilingRow {
    pub tenant: String,
    pub filing_id: String,
    pub uscc: String,
    pub agency_name: String,
    pub status: String,
    pub reviewing_tenant: String,
    pub submitted_at: i64,
    pub review_from: String,
    pub review_due: String,
    pub review_provisional: bool,
    pub calendar_version: String,
    pub facts: String,
    pub documents: String,
}

pub struct HistoryRow {
    pub status: String,
    pub changed_at: i64,
    pub principal: String,
    pub note: String,
}

const FILING_COLUMNS: &str = "tenant, filing_id, uscc, agency_name, status, reviewing_tenant, \
    submitted_at, review_from, review_due, review_provisional, calendar_version, facts, documents";

fn filing(r: &AnyRow) -> Result<FilingRow, sqlx::Error> {
    Ok(FilingRow {
        tenant: r.try_get(0)?,
        filing_id: r.try_get(1)?,
        uscc: r.try_get(2)?,
        agency_name: r.try_get(3)?,
        status: r.try_get(4)?,
        reviewing_tenant: r.try_get(5)?,
        submitted_at: r.try_get(6)?,
        review_from: r.try_get(7)?,
        review_due: r.try_get(8)?,
        review_provisional: r.try_get::<i64, _>(9)? != 0,
        calendar_version: r.try_get(10)?,
        facts: r.try_get(11)?,
        documents: r.try_get(12)?,
    })
}

/// Whether the filing `filing_id` of `tenant` refers to the document `sha256` (hex): in its
/// application, a change's materials, an annual report or its deregistration.
pub async fn refers_to(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    sha256: &str,
) -> Result<bool, StorageError> {
    let quoted = format!("%\"{sha256}\"%");
    Ok(sqlx::query(
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM filing_filing WHERE tenant = $1 \
         AND filing_id = $2 AND documents LIKE $3) \
         OR EXISTS (SELECT 1 FROM filing_change WHERE filing_id = $2 AND documents LIKE $3) \
         OR EXISTS (SELECT 1 FROM filing_annual_report WHERE filing_id = $2 AND content LIKE $3) \
         OR EXISTS (SELECT 1 FROM filing_deregistration WHERE filing_id = $2 \
         AND (disposal_plan = $4 OR COALESCE(disposal_record, '') LIKE $3))",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(quoted)
    .bind(sha256.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// What an agency uploaded under `sha256`: kind, media type, size, file name.
pub async fn document(
    conn: &mut AnyConnection,
    uscc: &str,
    sha256: &str,
) -> Result<Option<(String, String, i64, String)>, StorageError> {
    let row = sqlx::query(
        "SELECT kind, media_type, size_bytes, file_name FROM filing_document \
         WHERE uscc = $1 AND sha256 = $2 ORDER BY uploaded_at LIMIT 1",
    )
    .bind(uscc.to_owned())
    .bind(sha256.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
        None => None,
    })
}

/// Records a read of a document of the filing `filing_id`.
#[allow(clippy::too_many_arguments)]
pub async fn insert_document_read(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    sha256: &str,
    principal: &str,
    purpose: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_document_read (tenant, read_id, filing_id, sha256, principal, \
         purpose, read_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.to_owned())
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(filing_id.to_owned())
    .bind(sha256.to_owned())
    .bind(principal.to_owned())
    .bind(purpose.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_document(
    conn: &mut AnyConnection,
    tenant: &str,
    uscc: &str,
    sha256: &str,
    kind: &str,
    media_type: &str,
    size: i64,
    file_name: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_document (tenant, uscc, sha256, kind, media_type, size_bytes, file_name, \
         uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant, uscc, sha256) DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(uscc.to_owned())
    .bind(sha256.to_owned())
    .bind(kind.to_owned())
    .bind(media_type.to_owned())
    .bind(size)
    .bind(file_name.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The hashes of every document `uscc` has uploaded.
pub async fn owned_documents(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<HashSet<String>, StorageError> {
    let rows = sqlx::query("SELECT sha256 FROM filing_document WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// The last day of a re-filing ban on `uscc` still in force on `today` (a ban holds through
/// the end of its last day).
pub async fn ban_in_force(
    conn: &mut AnyConnection,
    uscc: &str,
    today: &str,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT ends_on FROM filing_ban WHERE uscc = $1 AND ends_on >= $2")
        .bind(uscc.to_owned())
        .bind(today.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

pub async fn put_ban(
    conn: &mut AnyConnection,
    tenant: &str,
    uscc: &str,
    ends_on: &str,
    reason: &str,
    source_event: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_ban (uscc, ends_on, reason, source_event, tenant) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (uscc) DO UPDATE SET ends_on = excluded.ends_on, \
         reason = excluded.reason, source_event = excluded.source_event, tenant = excluded.tenant",
    )
    .bind(uscc.to_owned())
    .bind(ends_on.to_owned())
    .bind(reason.to_owned())
    .bind(source_event.to_owned())
    .bind(tenant.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An open filing of `uscc`, if any.
pub async fn open_filing(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query(
        "SELECT filing_id FROM filing_filing WHERE uscc = $1 AND status IN ($2, $3, $4)",
    )
    .bind(uscc.to_owned())
    .bind(Filing::OPEN[0].to_owned())
    .bind(Filing::OPEN[1].to_owned())
    .bind(Filing::OPEN[2].to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// The tenant holding the latest filing of `uscc`, whatever its state.
pub async fn holder(conn: &mut AnyConnection, uscc: &str) -> Result<Option<String>, StorageError> {
    let row = sqlx::query(
        "SELECT tenant FROM filing_filing WHERE uscc = $1 \
         ORDER BY submitted_at DESC, filing_id DESC LIMIT 1",
    )
    .bind(uscc.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

pub async fn insert_filing(conn: &mut AnyConnection, f: &FilingRow) -> Result<(), StorageError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO filing_filing ({FILING_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )))
    .bind(f.tenant.clone())
    .bind(f.filing_id.clone())
    .bind(f.uscc.clone())
    .bind(f.agency_name.clone())
    .bind(f.status.clone())
    .bind(f.reviewing_tenant.clone())
    .bind(f.submitted_at)
    .bind(f.review_from.clone())
    .bind(f.review_due.clone())
    .bind(i64::from(f.review_provisional))
    .bind(f.calendar_version.clone())
    .bind(f.facts.clone())
    .bind(f.documents.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get_filing(
    conn: &mut AnyConnection,
    filing_id: &str,
) -> Result<Option<FilingRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILING_COLUMNS} FROM filing_filing WHERE filing_id = $1"
    )))
    .bind(filing_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(filing(&r)?),
        None => None,
    })
}

/// Filings after `after` (a filing id; ids grow with time), oldest first. Empty filters
/// match everything; `statuses` is a comma-separated list.
pub async fn list_filings(
    conn: &mut AnyConnection,
    tenant: &str,
    uscc: &str,
    statuses: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<FilingRow>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {FILING_COLUMNS} FROM filing_filing \
         WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR uscc = $2) \
         AND ($3 = '' OR $3 LIKE '%,' || status || ',%') AND filing_id > $4 \
         ORDER BY filing_id LIMIT $5"
    )))
    .bind(tenant.to_owned())
    .bind(uscc.to_owned())
    .bind(statuses.to_owned())
    .bind(after.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(filing)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Moves a filing along its lifecycle; `None` when its state does not allow `event`.
pub async fn transition(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    event: FilingEvent,
) -> Result<Option<Filing>, StorageError> {
    transition::apply::<Filing>(
        conn,
        "filing_filing",
        &[("tenant", tenant), ("filing_id", filing_id)],
        event,
    )
    .await
}

/// Moves a change along its lifecycle; `false` when its state does not allow `event`.
pub async fn change_transition(
    conn: &mut AnyConnection,
    change_id: &str,
    event: ChangeEvent,
) -> Result<bool, StorageError> {
    Ok(
        transition::apply::<Change>(conn, "filing_change", &[("change_id", change_id)], event)
            .await?
            .is_some(),
    )
}

/// Withdraws the undecided changes of a filing that ended.
pub async fn withdraw_changes(
    conn: &mut AnyConnection,
    filing_id: &str,
) -> Result<u64, StorageError> {
    let done =
        sqlx::query("UPDATE filing_change SET status = $1 WHERE filing_id = $2 AND status = $3")
            .bind(Change::target(ChangeEvent::Withdraw).name().to_owned())
            .bind(filing_id.to_owned())
            .bind(Change::Submitted.name().to_owned())
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected())
}

pub async fn set_facts(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    agency_name: &str,
    facts: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE filing_filing SET facts = $1, agency_name = $2 WHERE tenant = $3 AND filing_id = $4",
    )
    .bind(facts.to_owned())
    .bind(agency_name.to_owned())
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends to a filing's history. The next number comes from a counter on the filing's row,
/// so concurrent writers queue on that row instead of both taking `MAX(seq) + 1`.
pub async fn add_history(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    status: &str,
    at: i64,
    principal: &str,
    note: &str,
) -> Result<(), StorageError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE filing_filing SET history_seq = history_seq + 1 \
         WHERE tenant = $1 AND filing_id = $2 RETURNING history_seq",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO filing_history (tenant, filing_id, seq, status, changed_at, principal, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(seq)
    .bind(status.to_owned())
    .bind(at)
    .bind(principal.to_owned())
    .bind(note.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The newest `limit` entries of a filing's history, newest first.
pub async fn history(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    limit: i64,
) -> Result<Vec<HistoryRow>, StorageError> {
    let rows = sqlx::query(
        "SELECT status, changed_at, principal, note FROM filing_history \
         WHERE tenant = $1 AND filing_id = $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                status: r.try_get(0)?,
                changed_at: r.try_get(1)?,
                principal: r.try_get(2)?,
                note: r.try_get(3)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub struct ChangeRow {
    pub tenant: String,
    pub change_id: String,
    pub filing_id: String,
    pub changed_on: String,
    pub submitted_at: i64,
    pub working_days_late: i64,
    pub late: bool,
    pub facts: String,
    pub description: String,
    pub status: String,
    pub due_date: String,
    pub due_provisional: bool,
    pub calendar_version: String,
    /// The change materials (变更信息资料), document hashes as JSON.
    pub documents: String,
    /// The authority the filing moves to once the change is approved; empty when it stays.
    pub moves_to: String,
}

pub async fn insert_change(conn: &mut AnyConnection, c: &ChangeRow) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_change (tenant, change_id, filing_id, changed_on, submitted_at, \
         working_days_late, late, facts, description, status, due_date, due_provisional, \
         calendar_version, documents, moves_to) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(c.tenant.clone())
    .bind(c.change_id.clone())
    .bind(c.filing_id.clone())
    .bind(c.changed_on.clone())
    .bind(c.submitted_at)
    .bind(c.working_days_late)
    .bind(i64::from(c.late))
    .bind(c.facts.clone())
    .bind(c.description.clone())
    .bind(c.status.clone())
    .bind(c.due_date.clone())
    .bind(i64::from(c.due_provisional))
    .bind(c.calendar_version.clone())
    .bind(c.documents.clone())
    .bind(c.moves_to.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The authority a change moves its filing to once approved; empty when none.
pub async fn change_moves_to(
    conn: &mut AnyConnection,
    change_id: &str,
) -> Result<String, StorageError> {
    Ok(
        sqlx::query_scalar("SELECT moves_to FROM filing_change WHERE change_id = $1")
            .bind(change_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default(),
    )
}

/// Moves a filing to the tenant `to` with everything kept of it: its history, changes,
/// annual reports, deregistration and the record of who read its documents.
pub async fn transfer(
    conn: &mut AnyConnection,
    filing_id: &str,
    to: &str,
) -> Result<(), StorageError> {
    for sql in [
        "UPDATE filing_filing SET tenant = $1, reviewing_tenant = $1 WHERE filing_id = $2",
        "UPDATE filing_history SET tenant = $1 WHERE filing_id = $2",
        "UPDATE filing_change SET tenant = $1 WHERE filing_id = $2",
        "UPDATE filing_annual_report SET tenant = $1 WHERE filing_id = $2",
        "UPDATE filing_deregistration SET tenant = $1 WHERE filing_id = $2",
        "UPDATE filing_document_read SET tenant = $1 WHERE filing_id = $2",
    ] {
        sqlx::query(sql)
            .bind(to.to_owned())
            .bind(filing_id.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Records that `place` supervises `uscc` where it works (Art. 5), once.
pub async fn add_place(
    conn: &mut AnyConnection,
    place: &str,
    uscc: &str,
    at: i64,
    entry_id: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_place (tenant, uscc, since, entry_id) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant, uscc) DO NOTHING",
    )
    .bind(place.to_owned())
    .bind(uscc.to_owned())
    .bind(at)
    .bind(entry_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Shares the documents of `filing_id` (held by `tenant`) with `department`, once.
pub async fn share(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    department: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_share (tenant, filing_id, department, since) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant, filing_id, department) DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(department.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether the documents of `filing_id` are shared with `department`.
pub async fn shared_with(
    conn: &mut AnyConnection,
    filing_id: &str,
    department: &str,
) -> Result<bool, StorageError> {
    Ok(
        sqlx::query("SELECT 1 FROM filing_share WHERE filing_id = $1 AND department = $2")
            .bind(filing_id.to_owned())
            .bind(department.to_owned())
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Whether `tenant`, or one of its counties, has supervised `uscc` as the authority of a
/// place where it works.
pub async fn supervises_at(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "SELECT 1 FROM filing_place WHERE uscc = $1 AND (tenant = $2 \
         OR (substr($2, 5, 2) = '00' AND substr(tenant, 1, 4) = substr($2, 1, 4)))",
    )
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// `(tenant, filing_id, facts, status)` of a change.
pub async fn get_change(
    conn: &mut AnyConnection,
    change_id: &str,
) -> Result<Option<(String, String, String, String)>, StorageError> {
    let row = sqlx::query(
        "SELECT tenant, filing_id, facts, status FROM filing_change WHERE change_id = $1",
    )
    .bind(change_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)),
        None => None,
    })
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_report(
    conn: &mut AnyConnection,
    tenant: &str,
    report_id: &str,
    filing_id: &str,
    year: i64,
    due_date: &str,
    at: i64,
    content: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_annual_report (tenant, report_id, filing_id, year, due_date, \
         submitted_at, content) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant.to_owned())
    .bind(report_id.to_owned())
    .bind(filing_id.to_owned())
    .bind(year)
    .bind(due_date.to_owned())
    .bind(at)
    .bind(content.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_deregistration(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    reason: &str,
    reason_detail: &str,
    disposal_plan: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO filing_deregistration (tenant, filing_id, reason, reason_detail, \
         disposal_plan, requested_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant, filing_id) DO UPDATE SET reason = excluded.reason, \
         reason_detail = excluded.reason_detail, disposal_plan = excluded.disposal_plan, \
         requested_at = excluded.requested_at, disposal_record = NULL, completed_at = NULL",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(reason.to_owned())
    .bind(reason_detail.to_owned())
    .bind(disposal_plan.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn complete_deregistration(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
    disposal_record: &str,
    at: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE filing_deregistration SET disposal_record = $1, completed_at = $2 \
         WHERE tenant = $3 AND filing_id = $4 AND completed_at IS NULL",
    )
    .bind(disposal_record.to_owned())
    .bind(at)
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_review_deadline(
    conn: &mut AnyConnection,
    filing_id: &str,
    due: &str,
    provisional: bool,
    calendar_version: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE filing_filing SET review_due = $1, review_provisional = $2, calendar_version = $3 \
         WHERE filing_id = $4",
    )
    .bind(due.to_owned())
    .bind(i64::from(provisional))
    .bind(calendar_version.to_owned())
    .bind(filing_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Active filings submitted before `submitted_before` without an annual report for `year`:
/// `(tenant, filing_id, uscc)`.
pub async fn without_report(
    conn: &mut AnyConnection,
    year: i64,
    submitted_before: i64,
) -> Result<Vec<(String, String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT f.tenant, f.filing_id, f.uscc FROM filing_filing f WHERE f.status = $1 \
         AND f.submitted_at < $2 AND NOT EXISTS (SELECT 1 FROM filing_annual_report r \
         WHERE r.filing_id = f.filing_id AND r.year = $3) ORDER BY f.filing_id",
    )
    .bind(Filing::Active.name().to_owned())
    .bind(submitted_before)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn job_done(conn: &mut AnyConnection, name: &str) -> Result<bool, StorageError> {
    Ok(sqlx::query("SELECT 1 FROM filing_job WHERE name = $1")
        .bind(name.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

/// Claims a job by name for this transaction; `false` when it ran already (or another
/// replica holds it and will commit first).
pub async fn claim_job(
    conn: &mut AnyConnection,
    name: &str,
    at: i64,
    by: &str,
    summary: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO filing_job (name, done_at, done_by, summary) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.to_owned())
    .bind(at)
    .bind(by.to_owned())
    .bind(summary.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Changes whose due date another calendar computed provisionally:
/// `(change_id, changed_on, submitted_at)`.
pub async fn provisional_changes(
    conn: &mut AnyConnection,
    calendar_version: &str,
) -> Result<Vec<(String, String, i64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT change_id, changed_on, submitted_at FROM filing_change \
         WHERE due_provisional = 1 AND calendar_version <> $1 ORDER BY change_id",
    )
    .bind(calendar_version.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn set_change_deadline(
    conn: &mut AnyConnection,
    change_id: &str,
    due: &str,
    provisional: bool,
    calendar_version: &str,
    late: bool,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE filing_change SET due_date = $1, due_provisional = $2, calendar_version = $3, \
         late = $4 WHERE change_id = $5",
    )
    .bind(due.to_owned())
    .bind(i64::from(provisional))
    .bind(calendar_version.to_owned())
    .bind(i64::from(late))
    .bind(change_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When the agency `uscc` uploaded each of its documents, by SHA-256.
pub async fn uploaded_at(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<std::collections::HashMap<String, i64>, StorageError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT sha256, uploaded_at FROM filing_document WHERE uscc = $1")
            .bind(uscc.to_owned())
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// When the filing first became active, if it did.
pub async fn first_active_at(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
) -> Result<Option<i64>, StorageError> {
    let row = sqlx::query(
        "SELECT MIN(changed_at) FROM filing_history \
         WHERE tenant = $1 AND filing_id = $2 AND status = $3",
    )
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(Filing::Active.name())
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<Option<i64>, _>(0)?)
}
