//! SQL of objections and of the access codes subjects file them with.

use creditmesh_domain::lifecycle::{Machine, Objection};
use std::collections::HashMap;

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};

use crate::index::Hashed;

/// The deadlines of open objections, by tenant, for the gauges.
pub const OPEN_DEADLINES: &str = "SELECT tenant, 'objection' AS kind, deadline_due AS due \
     FROM datapush_objection WHERE status = 'open' AND deadline_due <> ''";

/// One objection as stored; its statement and the subject's contact are sealed.
pub struct ObjectionRow {
    pub objection_id: String,
    pub tenant: String,
    pub record_id: String,
    pub agency_uscc: String,
    pub subject_index: String,
    /// The id of the index key `subject_index` is under.
    pub index_key: String,
    pub ground: String,
    pub private_envelope: String,
    pub key_id: String,
    pub filed_by: String,
    pub filed_at: i64,
    pub deadline_from: String,
    pub deadline_due: String,
    pub deadline_provisional: bool,
    pub calendar_version: String,
    pub status: String,
    pub decision_reasons: String,
    pub decided_at: Option<i64>,
    pub subject_statement: String,
    /// What the subject asked for: correct, delete, other, or '' (not stated).
    pub requested_measure: String,
}

impl ObjectionRow {
    /// Its state, by the objection machine's names.
    pub fn state(&self) -> Option<Objection> {
        Objection::parse(&self.status)
    }

    /// Not decided yet.
    pub fn open(&self) -> bool {
        self.state() == Some(Objection::Open)
    }
}

const COLUMNS: &str = "objection_id, tenant, record_id, agency_uscc, subject_index, ground, \
    private_envelope, key_id, filed_by, filed_at, deadline_from, deadline_due, \
    deadline_provisional, calendar_version, status, decision_reasons, decided_at, \
    subject_statement, index_key, requested_measure";

fn row(r: &AnyRow) -> Result<ObjectionRow, sqlx::Error> {
    Ok(ObjectionRow {
        objection_id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        record_id: r.try_get(2)?,
        agency_uscc: r.try_get(3)?,
        subject_index: r.try_get(4)?,
        ground: r.try_get(5)?,
        private_envelope: r.try_get(6)?,
        key_id: r.try_get(7)?,
        filed_by: r.try_get(8)?,
        filed_at: r.try_get(9)?,
        deadline_from: r.try_get(10)?,
        deadline_due: r.try_get(11)?,
        deadline_provisional: r.try_get::<i64, _>(12)? != 0,
        calendar_version: r.try_get(13)?,
        status: r.try_get(14)?,
        decision_reasons: r.try_get(15)?,
        decided_at: r.try_get(16)?,
        subject_statement: r.try_get(17)?,
        index_key: r.try_get(18)?,
        requested_measure: r.try_get(19)?,
    })
}

fn rows(rs: &[AnyRow]) -> Result<Vec<ObjectionRow>, StorageError> {
    Ok(rs.iter().map(row).collect::<Result<_, _>>()?)
}

pub async fn insert(conn: &mut AnyConnection, o: &ObjectionRow) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_objection (objection_id, tenant, record_id, agency_uscc, \
         subject_index, ground, private_envelope, key_id, filed_by, filed_at, deadline_from, \
         deadline_due, deadline_provisional, calendar_version, status, index_key, \
         requested_measure) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(o.objection_id.clone())
    .bind(o.tenant.clone())
    .bind(o.record_id.clone())
    .bind(o.agency_uscc.clone())
    .bind(o.subject_index.clone())
    .bind(o.ground.clone())
    .bind(o.private_envelope.clone())
    .bind(o.key_id.clone())
    .bind(o.filed_by.clone())
    .bind(o.filed_at)
    .bind(o.deadline_from.clone())
    .bind(o.deadline_due.clone())
    .bind(i64::from(o.deadline_provisional))
    .bind(o.calendar_version.clone())
    .bind(o.status.clone())
    .bind(o.index_key.clone())
    .bind(o.requested_measure.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find(
    conn: &mut AnyConnection,
    objection_id: &str,
) -> Result<Option<ObjectionRow>, StorageError> {
    let sql = format!("SELECT {COLUMNS} FROM datapush_objection WHERE objection_id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(objection_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.as_ref().map(row).transpose()?)
}

/// The objections on a record, oldest first.
pub async fn of_record(
    conn: &mut AnyConnection,
    record_id: &str,
) -> Result<Vec<ObjectionRow>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM datapush_objection WHERE record_id = $1 ORDER BY objection_id"
    );
    rows(
        &sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(record_id.to_owned())
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The objections about each of `record_ids`, by record, oldest first: one query whatever their
/// number.
pub async fn of_records(
    conn: &mut AnyConnection,
    record_ids: &[String],
) -> Result<HashMap<String, Vec<ObjectionRow>>, StorageError> {
    let mut by_record: HashMap<String, Vec<ObjectionRow>> = HashMap::new();
    if record_ids.is_empty() {
        return Ok(by_record);
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM datapush_objection WHERE record_id IN ({{ids}}) \
         ORDER BY objection_id"
    );
    for o in rows(&crate::store::fetch_in(conn, &sql, record_ids).await?)? {
        by_record.entry(o.record_id.clone()).or_default().push(o);
    }
    Ok(by_record)
}

/// Which objections a list shows.
pub struct Filter<'a> {
    /// Only this agency's.
    pub agency: Option<&'a str>,
    /// Only of agencies this authority holds.
    pub tenant: Option<&'a str>,
    pub open_only: bool,
    /// Only those open with a final deadline before this day (YYYY-MM-DD).
    pub due_before: Option<&'a str>,
}

pub async fn list(
    conn: &mut AnyConnection,
    f: &Filter<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<ObjectionRow>, StorageError> {
    let mut sql = format!("SELECT {COLUMNS} FROM datapush_objection WHERE objection_id > $1");
    let mut binds: Vec<String> = vec![after.to_owned()];
    let mut push = |sql: &mut String, clause: &str, value: &str| {
        binds.push(value.to_owned());
        sql.push_str(&format!(" AND {clause} ${}", binds.len()));
    };
    if let Some(a) = f.agency {
        push(&mut sql, "agency_uscc =", a);
    }
    if let Some(t) = f.tenant {
        push(&mut sql, "tenant =", t);
    }
    if f.open_only || f.due_before.is_some() {
        sql.push_str(" AND status = 'open'");
    }
    if let Some(d) = f.due_before {
        sql.push_str(" AND deadline_provisional = 0");
        push(&mut sql, "deadline_due <", d);
    }
    sql.push_str(&format!(" ORDER BY objection_id LIMIT {limit}"));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    rows(&q.fetch_all(&mut *conn).await?)
}

/// Records the agency's decision on an objection that the guarded move has just decided.
pub async fn set_decided(
    conn: &mut AnyConnection,
    objection_id: &str,
    reasons: &str,
    by: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE datapush_objection SET decision_reasons = $1, decided_by = $2, decided_at = $3 \
         WHERE objection_id = $4",
    )
    .bind(reasons.to_owned())
    .bind(by.to_owned())
    .bind(at)
    .bind(objection_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Attaches the subject's statement to an objection decided `kept`; `false` when it is not.
pub async fn set_statement(
    conn: &mut AnyConnection,
    objection_id: &str,
    statement: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "UPDATE datapush_objection SET subject_statement = $1 \
         WHERE objection_id = $2 AND status = 'kept'",
    )
    .bind(statement.to_owned())
    .bind(objection_id.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Open objections past their final deadline whose lateness is not yet in the agency's credit
/// file. An agency whose filing is gone no longer decides, so its file gets none.
pub async fn overdue_unrecorded(
    conn: &mut AnyConnection,
    today: &str,
) -> Result<Vec<ObjectionRow>, StorageError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM datapush_objection WHERE status = 'open' AND deadline_due < $1 \
         AND deadline_provisional = 0 AND overdue_recorded_at IS NULL \
         AND agency_uscc NOT IN (SELECT uscc FROM datapush_agency \
         WHERE status IN ('revoked', 'deregistered')) \
         ORDER BY objection_id LIMIT 100"
    );
    rows(
        &sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(today.to_owned())
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// What is done once for an open objection.
#[derive(Debug, Clone, Copy)]
pub enum Once {
    /// Its lateness recorded in the agency's credit file.
    OverdueRecorded,
    /// Its subject told who decides it now that the agency is gone.
    DeciderTold,
}

/// Marks `what` done for an open objection; `false` when another replica did, or it was
/// decided meanwhile.
pub async fn mark_once(
    conn: &mut AnyConnection,
    what: Once,
    objection_id: &str,
    at: i64,
) -> Result<bool, StorageError> {
    let sql = match what {
        Once::OverdueRecorded => {
            "UPDATE datapush_objection SET overdue_recorded_at = $1 \
             WHERE objection_id = $2 AND status = 'open' AND overdue_recorded_at IS NULL"
        }
        Once::DeciderTold => {
            "UPDATE datapush_objection SET decider_told_at = $1 \
             WHERE objection_id = $2 AND status = 'open' AND decider_told_at IS NULL"
        }
    };
    Ok(sqlx::query(sql)
        .bind(at)
        .bind(objection_id.to_owned())
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1)
}

/// An access code's hash and its subject's, and the id of the index key both are under.
pub struct AccessCode<'a> {
    pub code_index: &'a str,
    pub subject_index: &'a str,
    pub index_key: &'a str,
}

pub async fn insert_access_code(
    conn: &mut AnyConnection,
    code: &AccessCode<'_>,
    tenant: &str,
    issued_by: &str,
    at: i64,
    expires_at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_access_code (code_index, subject_index, tenant, issued_by, \
         issued_at, expires_at, index_key) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code.code_index.to_owned())
    .bind(code.subject_index.to_owned())
    .bind(tenant.to_owned())
    .bind(issued_by.to_owned())
    .bind(at)
    .bind(expires_at)
    .bind(code.index_key.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Whether the code of `code` was issued for `subject` and is still valid at `now`.
pub async fn access_code_valid(
    conn: &mut AnyConnection,
    code: &Hashed,
    subject: &Hashed,
    now: i64,
) -> Result<bool, StorageError> {
    let ((c1, c2), (s1, s2)) = (code.pair(), subject.pair());
    Ok(sqlx::query(
        "SELECT 1 FROM datapush_access_code WHERE code_index IN ($1, $2) \
         AND subject_index IN ($3, $4) AND expires_at > $5",
    )
    .bind(c1)
    .bind(c2)
    .bind(s1)
    .bind(s2)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Open objections whose deadline was computed provisionally by a calendar other than
/// `version`: `(objection_id, deadline_from)`.
pub async fn provisional_deadlines(
    conn: &mut AnyConnection,
    version: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let found = sqlx::query(
        "SELECT objection_id, deadline_from FROM datapush_objection WHERE status = 'open' \
         AND deadline_provisional = 1 AND calendar_version <> $1 ORDER BY objection_id",
    )
    .bind(version.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    found
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// An open objection's deadline, computed again.
pub async fn set_deadline(
    conn: &mut AnyConnection,
    objection_id: &str,
    d: &creditmesh_domain::calendar::Deadline,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE datapush_objection SET deadline_due = $1, deadline_provisional = $2, \
         calendar_version = $3 WHERE objection_id = $4 AND status = 'open'",
    )
    .bind(creditmesh_domain::calendar::format_date(d.due))
    .bind(i64::from(d.provisional))
    .bind(d.calendar_version.clone())
    .bind(objection_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Open objections to what an agency whose filing is revoked or deregistered pushed, whose
/// subject has not been told who decides now: each with the authority holding the filing.
pub async fn decider_untold(
    conn: &mut AnyConnection,
) -> Result<Vec<(ObjectionRow, String)>, StorageError> {
    let cols = COLUMNS
        .split(',')
        .map(|c| format!("o.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {cols}, a.tenant FROM datapush_objection o \
         JOIN datapush_agency a ON a.uscc = o.agency_uscc \
         WHERE o.status = 'open' AND o.decider_told_at IS NULL \
         AND a.status IN ('revoked', 'deregistered') ORDER BY o.objection_id LIMIT 100"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let width = COLUMNS.split(',').count();
    found
        .iter()
        .map(|r| Ok((row(r)?, r.try_get(width)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
