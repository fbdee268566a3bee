//! A transferred filing's review rows, handed from the review of the authority that held it
//! to the receiving authority's (Art. 10, 12). Where both run on one database the rows are
//! there already and nothing changes; where each runs on its own node, this is how the
//! receiving node learns the agency, its open tasks, its risk tier and its credit file.

use creditmesh_proto::events::v1::{AgencyHandedOver, HandedEntry, HandedRisk, HandedTask};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

use crate::store::{self, Entry};
use crate::task_store::{self, TaskRow};

/// Every entry of a credit file goes with it; a file this long would be split first.
const MAX_ENTRIES: i64 = 100_000;

/// What the review of `from` holds of `uscc`, its filing `filing_id` now held by `to` (its
/// rows already moved there by [`task_store::transfer_agency`]).
pub async fn collect(
    conn: &mut AnyConnection,
    uscc: &str,
    filing_id: &str,
    from: &str,
    to: &str,
) -> Result<AgencyHandedOver, StorageError> {
    let agency = sqlx::query(
        "SELECT status, principals, filed_at FROM review_agency WHERE uscc = $1 AND filing_id = $2",
    )
    .bind(uscc.to_owned())
    .bind(filing_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let (status, principals, filed_at) = match agency {
        Some(r) => (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?),
        None => Default::default(),
    };
    let risk = sqlx::query("SELECT tier, updated_at FROM review_risk WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            Ok::<_, sqlx::Error>(HandedRisk {
                tier: r.try_get(0)?,
                updated_at: r.try_get(1)?,
            })
        })
        .transpose()?;
    let open_tasks = task_store::open_of(conn, uscc, to)
        .await?
        .into_iter()
        .map(|t| HandedTask {
            task_id: t.task_id,
            kind: t.kind,
            status: t.status,
            subject_id: t.subject_id,
            agency_name: t.agency_name,
            created_at: t.created_at,
            deadline_from: t.deadline_from,
            deadline_due: t.deadline_due,
            deadline_provisional: t.deadline_provisional,
            calendar_version: t.calendar_version,
            checks: t.checks,
            forwarded_from: t.forwarded_from,
            principals: t.principals,
        })
        .collect();
    let entries = store::entries(conn, uscc, None, None, MAX_ENTRIES)
        .await?
        .into_iter()
        .map(|e| HandedEntry {
            tenant: e.tenant,
            entry_id: e.entry_id,
            kind: e.kind,
            recorded_at: e.recorded_at,
            principal: e.principal,
            summary: e.summary,
            details: e.details,
        })
        .collect();
    Ok(AgencyHandedOver {
        uscc: uscc.to_owned(),
        filing_id: filing_id.to_owned(),
        from_tenant: from.to_owned(),
        to_tenant: to.to_owned(),
        status,
        principals,
        filed_at,
        risk,
        open_tasks,
        entries,
    })
}

/// Stores what was handed over, each row once. The agency is taken over unless a later
/// filing of it is held here already.
pub async fn take_over(conn: &mut AnyConnection, h: &AgencyHandedOver) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_agency (uscc, tenant, filing_id, status, principals, filed_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, \
         filing_id = excluded.filing_id, status = excluded.status, \
         principals = excluded.principals, filed_at = excluded.filed_at \
         WHERE review_agency.filing_id <> excluded.filing_id \
         AND review_agency.filed_at < excluded.filed_at",
    )
    .bind(h.uscc.clone())
    .bind(h.to_tenant.clone())
    .bind(h.filing_id.clone())
    .bind(h.status.clone())
    .bind(h.principals.clone())
    .bind(h.filed_at)
    .execute(&mut *conn)
    .await?;
    if let Some(risk) = &h.risk {
        sqlx::query(
            "INSERT INTO review_risk (uscc, tier, updated_at, tenant) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (uscc) DO UPDATE SET tier = excluded.tier, \
             updated_at = excluded.updated_at, tenant = excluded.tenant \
             WHERE review_risk.updated_at < excluded.updated_at",
        )
        .bind(h.uscc.clone())
        .bind(risk.tier)
        .bind(risk.updated_at)
        .bind(h.to_tenant.clone())
        .execute(&mut *conn)
        .await?;
    }
    for t in &h.open_tasks {
        task_store::insert(
            conn,
            &TaskRow {
                tenant: h.to_tenant.clone(),
                task_id: t.task_id.clone(),
                kind: t.kind.clone(),
                status: t.status.clone(),
                filing_id: h.filing_id.clone(),
                subject_id: t.subject_id.clone(),
                uscc: h.uscc.clone(),
                agency_name: t.agency_name.clone(),
                created_at: t.created_at,
                deadline_from: t.deadline_from.clone(),
                deadline_due: t.deadline_due.clone(),
                deadline_provisional: t.deadline_provisional,
                calendar_version: t.calendar_version.clone(),
                checks: t.checks.clone(),
                forwarded_from: t.forwarded_from.clone(),
                principals: t.principals.clone(),
            },
        )
        .await?;
    }
    for e in &h.entries {
        store::insert_entry(
            conn,
            &Entry {
                tenant: e.tenant.clone(),
                entry_id: e.entry_id.clone(),
                uscc: h.uscc.clone(),
                kind: e.kind.clone(),
                recorded_at: e.recorded_at,
                principal: e.principal.clone(),
                summary: e.summary.clone(),
                details: e.details.clone(),
            },
        )
        .await?;
    }
    Ok(())
}
