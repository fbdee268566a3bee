//! SQL of supervision: annual reports seen, durable jobs, rectification orders, risk tiers and
//! spot-check draws.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

pub async fn report_seen(
    conn: &mut AnyConnection,
    filing_id: &str,
    year: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_annual_report (filing_id, year) VALUES ($1, $2) \
         ON CONFLICT (filing_id, year) DO NOTHING",
    )
    .bind(filing_id.to_owned())
    .bind(year)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_filed_at(
    conn: &mut AnyConnection,
    uscc: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE review_agency SET filed_at = $1 WHERE uscc = $2")
        .bind(at)
        .bind(uscc.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Active agencies filed before `filed_before` without a report for `year`:
/// `(uscc, tenant, filing_id)`.
pub async fn without_report(
    conn: &mut AnyConnection,
    year: i64,
    filed_before: i64,
) -> Result<Vec<(String, String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT a.uscc, a.tenant, a.filing_id FROM review_agency a WHERE a.status = 'active' \
         AND a.filed_at < $2 AND NOT EXISTS (SELECT 1 FROM review_annual_report r \
         WHERE r.filing_id = a.filing_id AND r.year = $1) ORDER BY a.uscc",
    )
    .bind(year)
    .bind(filed_before)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn job_done(conn: &mut AnyConnection, name: &str) -> Result<bool, StorageError> {
    Ok(sqlx::query("SELECT 1 FROM review_job WHERE name = $1")
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
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO review_job (name, done_at, done_by, summary) VALUES ($1, $2, $3, '') \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name.to_owned())
    .bind(at)
    .bind(by.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_job(
    conn: &mut AnyConnection,
    name: &str,
    summary: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE review_job SET summary = $1 WHERE name = $2")
        .bind(summary.to_owned())
        .bind(name.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn insert_order(
    conn: &mut AnyConnection,
    tenant: &str,
    order_id: &str,
    uscc: &str,
    at: i64,
    due: &str,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_rectification (tenant, order_id, uscc, issued_at, due_date, status) \
         VALUES ($1, $2, $3, $4, $5, 'open')",
    )
    .bind(tenant.to_owned())
    .bind(order_id.to_owned())
    .bind(uscc.to_owned())
    .bind(at)
    .bind(due.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `(tenant, uscc, status)` of an order.
pub async fn get_order(
    conn: &mut AnyConnection,
    order_id: &str,
) -> Result<Option<(String, String, String)>, StorageError> {
    let row =
        sqlx::query("SELECT tenant, uscc, status FROM review_rectification WHERE order_id = $1")
            .bind(order_id.to_owned())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)),
        None => None,
    })
}

/// Open orders due before `today`: `(order_id, uscc)`.
pub async fn overdue_orders(
    conn: &mut AnyConnection,
    today: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT order_id, uscc FROM review_rectification WHERE status = 'open' AND due_date < $1 \
         ORDER BY order_id",
    )
    .bind(today.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Closes an order still open; `false` when another run closed it first.
pub async fn close_open_order(
    conn: &mut AnyConnection,
    order_id: &str,
    status: &str,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE review_rectification SET status = $1 WHERE order_id = $2 AND status = 'open'",
    )
    .bind(status.to_owned())
    .bind(order_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn close_order(
    conn: &mut AnyConnection,
    order_id: &str,
    status: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE review_rectification SET status = $1 WHERE order_id = $2")
        .bind(status.to_owned())
        .bind(order_id.to_owned())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn set_tier(
    conn: &mut AnyConnection,
    uscc: &str,
    tier: i64,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_risk (uscc, tier, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (uscc) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at",
    )
    .bind(uscc.to_owned())
    .bind(tier)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn tier(conn: &mut AnyConnection, uscc: &str) -> Result<Option<i64>, StorageError> {
    let row = sqlx::query("SELECT tier FROM review_risk WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    })
}

/// Active agencies of `tenant` (every tenant when empty) with their risk tier (0 unset),
/// sorted by code: `(uscc, tier)`.
pub async fn population(
    conn: &mut AnyConnection,
    tenant: &str,
) -> Result<Vec<(String, i64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT a.uscc, COALESCE(r.tier, 0) FROM review_agency a LEFT JOIN review_risk r \
         ON r.uscc = a.uscc WHERE a.status = 'active' AND ($1 = '' OR a.tenant = $1) ORDER BY a.uscc",
    )
    .bind(tenant.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn insert_draw(
    conn: &mut AnyConnection,
    tenant: &str,
    draw_id: &str,
    seed: &str,
    digest: &str,
    sample: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_draw (tenant, draw_id, seed, population_digest, sample, drawn_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.to_owned())
    .bind(draw_id.to_owned())
    .bind(seed.to_owned())
    .bind(digest.to_owned())
    .bind(sample.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
