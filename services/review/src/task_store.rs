//! SQL of review tasks, the agencies they concern and the severe-dishonesty list.

use creditmesh_domain::lifecycle::{Filing, FilingEvent, Machine, Task, TaskEvent};
use creditmesh_storage::sqlx::{self, AnyConnection, Row, any::AnyRow};
use creditmesh_storage::{StorageError, transition};

#[derive(Debug, Clone)]
pub struct TaskRow {
    pub tenant: String,
    pub task_id: String,
    pub kind: String,
    pub status: String,
    pub filing_id: String,
    pub subject_id: String,
    pub uscc: String,
    pub agency_name: String,
    pub created_at: i64,
    pub deadline_from: String,
    pub deadline_due: String,
    pub deadline_provisional: bool,
    pub calendar_version: String,
    pub checks: String,
    pub forwarded_from: String,
    /// Identity numbers of the principals an approval is checked against (Art. 9(2)), JSON.
    pub principals: String,
}

const COLUMNS: &str = "tenant, task_id, kind, status, filing_id, subject_id, uscc, agency_name, \
    created_at, deadline_from, deadline_due, deadline_provisional, calendar_version, checks, \
    forwarded_from, principals";

fn task(r: &AnyRow) -> Result<TaskRow, sqlx::Error> {
    Ok(TaskRow {
        tenant: r.try_get(0)?,
        task_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        status: r.try_get(3)?,
        filing_id: r.try_get(4)?,
        subject_id: r.try_get(5)?,
        uscc: r.try_get(6)?,
        agency_name: r.try_get(7)?,
        created_at: r.try_get(8)?,
        deadline_from: r.try_get(9)?,
        deadline_due: r.try_get(10)?,
        deadline_provisional: r.try_get::<i64, _>(11)? != 0,
        calendar_version: r.try_get(12)?,
        checks: r.try_get(13)?,
        forwarded_from: r.try_get(14)?,
        principals: r.try_get(15)?,
    })
}

/// Stores a task once: a task already stored under its tenant and id is left as it is.
pub async fn insert(conn: &mut AnyConnection, t: &TaskRow) -> Result<(), StorageError> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO review_task ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16) ON CONFLICT (tenant, task_id) DO NOTHING"
    )))
    .bind(t.tenant.clone())
    .bind(t.task_id.clone())
    .bind(t.kind.clone())
    .bind(t.status.clone())
    .bind(t.filing_id.clone())
    .bind(t.subject_id.clone())
    .bind(t.uscc.clone())
    .bind(t.agency_name.clone())
    .bind(t.created_at)
    .bind(t.deadline_from.clone())
    .bind(t.deadline_due.clone())
    .bind(i64::from(t.deadline_provisional))
    .bind(t.calendar_version.clone())
    .bind(t.checks.clone())
    .bind(t.forwarded_from.clone())
    .bind(t.principals.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The open tasks of `uscc` in `tenant`, oldest first.
pub async fn open_of(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
) -> Result<Vec<TaskRow>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM review_task WHERE uscc = $1 AND tenant = $2 AND status = 'open' \
         ORDER BY created_at, task_id"
    )))
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(task)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn get(conn: &mut AnyConnection, task_id: &str) -> Result<Option<TaskRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM review_task WHERE task_id = $1"
    )))
    .bind(task_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(task(&r)?),
        None => None,
    })
}

/// Tasks after `after`, oldest first; empty filters match all; `statuses` and `kinds` are
/// comma-separated lists; `overdue_before` keeps open tasks with a final deadline before that
/// date (a provisional deadline makes nothing overdue).
#[allow(clippy::too_many_arguments)]
pub async fn list(
    conn: &mut AnyConnection,
    tenant: &str,
    statuses: &str,
    kinds: &str,
    overdue_before: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<TaskRow>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM review_task WHERE ($1 = '' OR tenant = $1) \
         AND ($2 = '' OR $2 LIKE '%,' || status || ',%') \
         AND ($3 = '' OR $3 LIKE '%,' || kind || ',%') \
         AND ($4 = '' OR (status = 'open' AND deadline_provisional = 0 AND deadline_due <> '' \
         AND deadline_due < $4)) \
         AND task_id > $5 ORDER BY task_id LIMIT $6"
    )))
    .bind(tenant.to_owned())
    .bind(statuses.to_owned())
    .bind(kinds.to_owned())
    .bind(overdue_before.to_owned())
    .bind(after.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(task)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

/// Decides an open task: `false` when it is no longer open (another decision came first).
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    event: TaskEvent,
    at: i64,
    by: &str,
    decision: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE review_task SET status = $1, decided_at = $2, decided_by = $3, decision = $4 \
         WHERE tenant = $5 AND task_id = $6 AND status = $7",
    )
    .bind(Task::target(event).name().to_owned())
    .bind(at)
    .bind(by.to_owned())
    .bind(decision.to_owned())
    .bind(tenant.to_owned())
    .bind(task_id.to_owned())
    .bind(Task::Open.name().to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Withdraws the open filing, change and deregistration tasks of a filing that ended;
/// returns their ids.
pub async fn withdraw_open(
    conn: &mut AnyConnection,
    filing_id: &str,
    at: i64,
    by: &str,
) -> Result<Vec<String>, StorageError> {
    let rows = sqlx::query(
        "SELECT task_id FROM review_task WHERE filing_id = $1 AND status = 'open' \
         AND kind IN ('filing', 'change', 'deregistration') ORDER BY task_id",
    )
    .bind(filing_id.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    for id in &ids {
        sqlx::query(
            "UPDATE review_task SET status = $1, decided_at = $2, decided_by = $3, \
             decision = '{\"withdrawn\":\"the filing ended\"}' WHERE task_id = $4 AND status = 'open'",
        )
        .bind(Task::target(TaskEvent::Withdraw).name().to_owned())
        .bind(at)
        .bind(by.to_owned())
        .bind(id.clone())
        .execute(&mut *conn)
        .await?;
    }
    Ok(ids)
}

/// Remembers the agency a new filing concerns and who its principals are. An agency whose
/// earlier filing is still open keeps it: `false` then.
pub async fn put_agency(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
    filing_id: &str,
    principals: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO review_agency (uscc, tenant, filing_id, status, principals) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, \
         filing_id = excluded.filing_id, status = excluded.status, principals = excluded.principals \
         WHERE review_agency.status NOT IN ($6, $7, $8)",
    )
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .bind(filing_id.to_owned())
    .bind(Filing::Submitted.name().to_owned())
    .bind(principals.to_owned())
    .bind(Filing::OPEN[0].to_owned())
    .bind(Filing::OPEN[1].to_owned())
    .bind(Filing::OPEN[2].to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves review's record of an agency's filing along its lifecycle: `false` when the filing
/// is not (or no longer) in a state the event moves.
pub async fn agency_transition(
    conn: &mut AnyConnection,
    uscc: &str,
    filing_id: &str,
    event: FilingEvent,
) -> Result<bool, StorageError> {
    Ok(transition::apply::<Filing>(
        conn,
        "review_agency",
        &[("uscc", uscc), ("filing_id", filing_id)],
        event,
    )
    .await?
    .is_some())
}

/// The agency's name as its latest task has it; empty when it has none.
pub async fn agency_name(conn: &mut AnyConnection, uscc: &str) -> Result<String, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT agency_name FROM review_task WHERE uscc = $1 AND agency_name <> '' \
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(uscc.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or_default())
}

/// Moves the agency `uscc` of `filing_id`, held by `from`, to `to` (Art. 10, 12: its
/// registered address moved into `to`'s area): its risk tier and its open tasks go with it;
/// decided tasks stay `from`'s record. `false` when `from` does not hold it.
pub async fn transfer_agency(
    conn: &mut AnyConnection,
    uscc: &str,
    filing_id: &str,
    from: &str,
    to: &str,
) -> Result<bool, StorageError> {
    let moved = sqlx::query(
        "UPDATE review_agency SET tenant = $1 WHERE uscc = $2 AND filing_id = $3 AND tenant = $4",
    )
    .bind(to.to_owned())
    .bind(uscc.to_owned())
    .bind(filing_id.to_owned())
    .bind(from.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(false);
    }
    for sql in [
        "UPDATE review_risk SET tenant = $1 WHERE uscc = $2 AND tenant = $3",
        "UPDATE review_task SET tenant = $1 WHERE uscc = $2 AND tenant = $3 AND status = 'open'",
    ] {
        sqlx::query(sql)
            .bind(to.to_owned())
            .bind(uscc.to_owned())
            .bind(from.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    Ok(true)
}

pub async fn set_agency_principals(
    conn: &mut AnyConnection,
    uscc: &str,
    principals: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE review_agency SET principals = $1 WHERE uscc = $2")
        .bind(principals.to_owned())
        .bind(uscc.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Agencies with an open filing whose code, or one of whose principals, is `identifier`:
/// `(uscc, tenant, filing_id, status)`.
pub async fn open_agencies_naming(
    conn: &mut AnyConnection,
    identifier: &str,
) -> Result<Vec<(String, String, String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT uscc, tenant, filing_id, status FROM review_agency \
         WHERE status IN ($2, $3, $4) \
         AND (uscc = $1 OR principals LIKE '%\"' || $1 || '\"%') ORDER BY uscc",
    )
    .bind(identifier.to_owned())
    .bind(Filing::OPEN[0].to_owned())
    .bind(Filing::OPEN[1].to_owned())
    .bind(Filing::OPEN[2].to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Open filing and change tasks naming `identifier` as agency or principal: `(tenant,
/// task_id, uscc, checks)`.
pub async fn open_tasks_naming(
    conn: &mut AnyConnection,
    identifier: &str,
) -> Result<Vec<(String, String, String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT tenant, task_id, uscc, checks FROM review_task WHERE status = 'open' \
         AND kind IN ('filing', 'change') \
         AND (uscc = $1 OR principals LIKE '%\"' || $1 || '\"%') ORDER BY task_id",
    )
    .bind(identifier.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn set_checks(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    checks: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE review_task SET checks = $1 WHERE tenant = $2 AND task_id = $3")
        .bind(checks.to_owned())
        .bind(tenant.to_owned())
        .bind(task_id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the deregistration of `filing_id` was approved.
pub async fn deregistration_approved(
    conn: &mut AnyConnection,
    filing_id: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "SELECT 1 FROM review_task WHERE filing_id = $1 AND kind = 'deregistration' \
         AND status = 'approved'",
    )
    .bind(filing_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

pub struct Listing {
    pub identifier: String,
    pub party: String,
    pub name: String,
    pub source: String,
    pub listed_on: String,
}

/// Adds or updates an entry; `true` when it was new.
pub async fn put_listing(
    conn: &mut AnyConnection,
    l: &Listing,
    at: i64,
) -> Result<bool, StorageError> {
    let existed = sqlx::query("SELECT 1 FROM review_dishonesty WHERE identifier = $1")
        .bind(l.identifier.clone())
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    sqlx::query(
        "INSERT INTO review_dishonesty (identifier, party, name, source, listed_on, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (identifier) DO UPDATE SET \
         party = excluded.party, name = excluded.name, source = excluded.source, \
         listed_on = excluded.listed_on, updated_at = excluded.updated_at",
    )
    .bind(l.identifier.clone())
    .bind(l.party.clone())
    .bind(l.name.clone())
    .bind(l.source.clone())
    .bind(l.listed_on.clone())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(!existed)
}

pub async fn remove_listing(
    conn: &mut AnyConnection,
    identifier: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM review_dishonesty WHERE identifier = $1")
        .bind(identifier.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The listings among `identifiers`.
pub async fn listed(
    conn: &mut AnyConnection,
    identifier: &str,
) -> Result<Option<Listing>, StorageError> {
    let row = sqlx::query(
        "SELECT identifier, party, name, source, listed_on FROM review_dishonesty WHERE identifier = $1",
    )
    .bind(identifier.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(Listing {
            identifier: r.try_get(0)?,
            party: r.try_get(1)?,
            name: r.try_get(2)?,
            source: r.try_get(3)?,
            listed_on: r.try_get(4)?,
        }),
        None => None,
    })
}

pub async fn listings(
    conn: &mut AnyConnection,
    identifier: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Listing>, StorageError> {
    let rows = sqlx::query(
        "SELECT identifier, party, name, source, listed_on FROM review_dishonesty \
         WHERE ($1 = '' OR identifier = $1) AND identifier > $2 ORDER BY identifier LIMIT $3",
    )
    .bind(identifier.to_owned())
    .bind(after.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Listing {
                identifier: r.try_get(0)?,
                party: r.try_get(1)?,
                name: r.try_get(2)?,
                source: r.try_get(3)?,
                listed_on: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// `(tenant, filing_id, status)` of the agency with code `uscc`.
pub async fn agency(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<Option<(String, String, String)>, StorageError> {
    let row = sqlx::query("SELECT tenant, filing_id, status FROM review_agency WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        None => None,
    })
}

/// The code of the agency whose filing is `filing_id`.
pub async fn agency_of_filing(
    conn: &mut AnyConnection,
    filing_id: &str,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT uscc FROM review_agency WHERE filing_id = $1")
        .bind(filing_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// Open tasks whose deadline a different calendar computed provisionally:
/// `(tenant, task_id, deadline_from, kind, filing_id)`.
pub async fn provisional_deadlines(
    conn: &mut AnyConnection,
    calendar_version: &str,
) -> Result<Vec<(String, String, String, String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT tenant, task_id, deadline_from, kind, filing_id FROM review_task \
         WHERE status = 'open' AND deadline_provisional = 1 AND calendar_version <> $1",
    )
    .bind(calendar_version.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn set_deadline(
    conn: &mut AnyConnection,
    tenant: &str,
    task_id: &str,
    due: &str,
    provisional: bool,
    calendar_version: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE review_task SET deadline_due = $1, deadline_provisional = $2, calendar_version = $3 \
         WHERE tenant = $4 AND task_id = $5",
    )
    .bind(due.to_owned())
    .bind(i64::from(provisional))
    .bind(calendar_version.to_owned())
    .bind(tenant.to_owned())
    .bind(task_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Opens a supervision task for the authority holding an agency's filing (Art. 14): no
/// statutory deadline, `checks` holding what prompted it. Returns its id.
pub async fn open_supervision(
    conn: &mut AnyConnection,
    tenant: &str,
    uscc: &str,
    filing_id: &str,
    at: i64,
    what: &str,
) -> Result<String, StorageError> {
    let task_id = uuid::Uuid::now_v7().to_string();
    insert(
        conn,
        &TaskRow {
            tenant: tenant.to_owned(),
            task_id: task_id.clone(),
            kind: "supervision".into(),
            status: Task::Open.name().into(),
            filing_id: filing_id.to_owned(),
            subject_id: filing_id.to_owned(),
            uscc: uscc.to_owned(),
            agency_name: String::new(),
            created_at: at,
            deadline_from: String::new(),
            deadline_due: String::new(),
            deadline_provisional: false,
            calendar_version: String::new(),
            checks: serde_json::json!([{ "ground": 0, "evidence": what }]).to_string(),
            forwarded_from: String::new(),
            principals: "[]".into(),
        },
    )
    .await?;
    Ok(task_id)
}
