//! SQL of supervision: rectification orders, risk tiers and spot-check
//! draws.

use creditmesh_domain::calendar::{Deadline, format_date};
use creditmesh_domain::lifecycle::{Machine, Order, OrderEvent};
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use creditmesh_storage::{StorageError, transition};

pub async fn insert_order(
    conn: &mut AnyConnection,
    tenant: &str,
    order_id: &str,
    uscc: &str,
    at: i64,
    deadline: &Deadline,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_rectification (tenant, order_id, uscc, issued_at, due_date, status, \
         deadline_from, working_days, provisional, calendar_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant.to_owned())
    .bind(order_id.to_owned())
    .bind(uscc.to_owned())
    .bind(at)
    .bind(format_date(deadline.due))
    .bind(Order::Open.name().to_owned())
    .bind(format_date(deadline.from))
    .bind(i64::from(deadline.working_days))
    .bind(i64::from(deadline.provisional))
    .bind(deadline.calendar_version.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves an order along its lifecycle; `false` when its state does not allow `event`.
pub async fn order_transition(
    conn: &mut AnyConnection,
    order_id: &str,
    event: OrderEvent,
) -> Result<bool, StorageError> {
    Ok(transition::apply::<Order>(
        conn,
        "review_rectification",
        &[("order_id", order_id)],
        event,
    )
    .await?
    .is_some())
}

/// Whether the holding authority recorded that `uscc` refused an order (Art. 15(2)).
pub async fn refused_order(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "SELECT 1 FROM review_rectification WHERE uscc = $1 AND tenant = $2 AND status = $3",
    )
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .bind(Order::Refused.name().to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Open orders whose deadline another calendar computed provisionally:
/// `(order_id, deadline_from, working_days)`.
pub async fn provisional_orders(
    conn: &mut AnyConnection,
    calendar_version: &str,
) -> Result<Vec<(String, String, i64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT order_id, deadline_from, working_days FROM review_rectification \
         WHERE status = 'open' AND provisional = 1 AND calendar_version <> $1 AND working_days > 0",
    )
    .bind(calendar_version.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn set_order_deadline(
    conn: &mut AnyConnection,
    order_id: &str,
    deadline: &Deadline,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE review_rectification SET due_date = $1, provisional = $2, calendar_version = $3 \
         WHERE order_id = $4",
    )
    .bind(format_date(deadline.due))
    .bind(i64::from(deadline.provisional))
    .bind(deadline.calendar_version.clone())
    .bind(order_id.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `(tenant, uscc, status)` of an order.
/// Ties the order `order_id` of `uscc` to the interview `entry_id`, unless it is tied already;
/// answers whether it was.
pub async fn tie_interview(
    conn: &mut AnyConnection,
    order_id: &str,
    uscc: &str,
    entry_id: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "UPDATE review_rectification SET interview_entry_id = $1 WHERE order_id = $2 \
         AND uscc = $3 AND interview_entry_id = ''",
    )
    .bind(entry_id.to_owned())
    .bind(order_id.to_owned())
    .bind(uscc.to_owned())
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// The interview the order `order_id` is tied to; empty when none.
pub async fn order_interview(
    conn: &mut AnyConnection,
    order_id: &str,
) -> Result<String, StorageError> {
    Ok(sqlx::query_scalar(
        "SELECT interview_entry_id FROM review_rectification WHERE order_id = $1",
    )
    .bind(order_id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .unwrap_or_default())
}

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

/// Open orders whose final deadline is before `today`: `(order_id, uscc)`. A provisional
/// deadline makes no order overdue.
pub async fn overdue_orders(
    conn: &mut AnyConnection,
    today: &str,
) -> Result<Vec<(String, String)>, StorageError> {
    let rows = sqlx::query(
        "SELECT order_id, uscc FROM review_rectification WHERE status = 'open' AND provisional = 0 \
         AND due_date < $1 ORDER BY order_id",
    )
    .bind(today.to_owned())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

pub async fn set_tier(
    conn: &mut AnyConnection,
    tenant: &str,
    uscc: &str,
    tier: i64,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_risk (uscc, tier, updated_at, tenant) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (uscc) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at, \
         tenant = excluded.tenant",
    )
    .bind(uscc.to_owned())
    .bind(tier)
    .bind(at)
    .bind(tenant.to_owned())
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
