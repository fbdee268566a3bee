//! Durable timers of the review service. Each run of a job is one transaction that first
//! claims the job's name: it survives restarts (a run cut short rolls back and runs again)
//! and runs once across replicas (the second claim of a name finds it taken).

use std::time::Duration;

use creditmesh_domain::calendar::cst_date;
use creditmesh_domain::tenant::REGION;
use creditmesh_domain::{Error, ErrorCode, Principal, PrincipalKind};
use creditmesh_rpc::{CallContext, ServiceEnv, Written};
use serde_json::json;
use time::{Date, Month};
use tokio_util::sync::CancellationToken;

use crate::events;
use crate::store::{self, Entry};
use crate::supervision;
use crate::tasks;

/// How often the timers look at the clock.
const TICK: Duration = Duration::from_millis(500);

pub fn spawn(env: ServiceEnv, stop: CancellationToken) {
    tokio::spawn(async move {
        match recompute_provisional_deadlines(&env).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional review deadlines recomputed"),
            Err(e) => tracing::warn!(error = %e, "provisional deadlines were not recomputed"),
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = annual_report_cutoff(&env).await {
                tracing::warn!(error = %e, "annual-report cut-off did not run");
            }
            if let Err(e) = missed_rectifications(&env).await {
                tracing::warn!(error = %e, "missed rectifications were not handled");
            }
        }
    });
}

fn system_context(env: &ServiceEnv, job: &str) -> CallContext {
    let principal = Principal::new(PrincipalKind::Service, REGION, "review");
    CallContext {
        principal_id: principal.spiffe_id(env.authn.trust_domain()),
        principal,
        request_id: job.to_owned(),
    }
}

/// From 1 July of year Y, revokes every active filing (filed before Y) that has not
/// submitted its annual report for Y-1 (Art. 11).
pub async fn annual_report_cutoff(env: &ServiceEnv) -> Result<usize, Error> {
    let store = &env.store;
    let today = cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))?;
    if (u8::from(today.month()), today.day()) < (7, 1) {
        return Ok(0);
    }
    let year = i64::from(today.year()) - 1;
    let name = format!("annual-report-cutoff-{year}");
    let start_of_year = Date::from_calendar_date(today.year(), Month::January, 1)
        .map_err(|e| Error::internal(e.to_string()))?;
    let filed_before =
        (i64::from(start_of_year.to_julian_day() - 2_440_588) * 86_400 - 8 * 3600) * 1_000_000;
    // Settled runs cost one read per tick, and leave no audit line.
    let mut conn = store
        .db
        .pool()
        .acquire()
        .await
        .map_err(creditmesh_storage::StorageError::from)?;
    if supervision::job_done(&mut conn, &name).await? {
        return Ok(0);
    }
    drop(conn);
    let ctx = system_context(env, &name);
    let (ctx, name) = (&ctx, &name);
    let outcome = store
        .write(ctx, "AnnualReportCutoff", |mut tx| async move {
            if !supervision::claim_job(&mut tx, name, store.now(), &ctx.principal_id).await? {
                return Ok((tx, Written { value: 0, tenant: REGION.to_string() }));
            }
            let missing = supervision::without_report(&mut tx, year, filed_before).await?;
            for (uscc, tenant, filing_id) in &missing {
                tasks::set_agency_status(&mut tx, uscc, "revoked").await?;
                store::insert_entry(
                    &mut tx,
                    &Entry {
                        tenant: tenant.clone(),
                        entry_id: uuid::Uuid::now_v7().to_string(),
                        uscc: uscc.clone(),
                        kind: "revocation".into(),
                        recorded_at: store.now(),
                        principal: ctx.principal_id.clone(),
                        summary: format!(
                            "filing revoked: no annual report for {year} by 30 June {} (Art. 11)",
                            year + 1
                        ),
                        details: json!({"filing_id": filing_id, "ground": "no_annual_report", "year": year})
                            .to_string()
                            .into_bytes(),
                    },
                )
                .await?;
                store
                    .publish_json(
                        &mut tx,
                        events::CONSUMERS,
                        ctx,
                        events::FILING_REVOKED,
                        tenant,
                        filing_id,
                        json!({"filing_id": filing_id, "uscc": uscc, "ground": "no_annual_report"}),
                    )
                    .await?;
            }
            supervision::finish_job(&mut tx, name, &format!("{} filings revoked", missing.len())).await?;
            tracing::info!(job = %name, revoked = missing.len(), "annual-report cut-off ran");
            Ok((tx, Written { value: missing.len(), tenant: REGION.to_string() }))
        })
        .await;
    match outcome {
        // Another replica claimed the same name at the same moment and committed first.
        Err(e) if e.code == ErrorCode::AlreadyExists => Ok(0),
        other => other,
    }
}

/// A rectification order whose deadline passed unanswered counts as refused: the filing is
/// revoked and re-filing barred for 12 months (Art. 15(2)). Each order is closed once, by
/// whichever replica gets to it first.
pub async fn missed_rectifications(env: &ServiceEnv) -> Result<usize, Error> {
    let store = &env.store;
    let today = cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))?;
    let today_s = creditmesh_domain::calendar::format_date(today);
    let mut conn = store
        .db
        .pool()
        .acquire()
        .await
        .map_err(creditmesh_storage::StorageError::from)?;
    let overdue = supervision::overdue_orders(&mut conn, &today_s).await?;
    drop(conn);
    let mut handled = 0;
    for (order_id, uscc) in overdue {
        let ctx = system_context(env, &format!("missed-rectification-{order_id}"));
        let ban_ends_on = creditmesh_domain::calendar::format_date(
            creditmesh_domain::calendar::add_years(today, 1),
        );
        let (ctx, order_id, uscc, ban_ends_on) = (&ctx, &order_id, &uscc, &ban_ends_on);
        let closed = store
            .write(ctx, "MissedRectification", |mut tx| async move {
                if !supervision::close_open_order(&mut tx, order_id, "missed").await? {
                    return Ok((tx, Written { value: false, tenant: REGION.to_string() }));
                }
                let Some((tenant, filing_id, status)) = tasks::agency(&mut tx, uscc).await? else {
                    return Ok((tx, Written { value: true, tenant: REGION.to_string() }));
                };
                if !["submitted", "active"].contains(&status.as_str()) {
                    return Ok((tx, Written { value: true, tenant }));
                }
                tasks::set_agency_status(&mut tx, uscc, "revoked").await?;
                for (kind, summary) in [
                    ("revocation", format!("filing revoked: rectification order {order_id} missed its deadline (Art. 15(2))")),
                    ("ban", format!("re-filing barred until {ban_ends_on} (Art. 15(2))")),
                ] {
                    store::insert_entry(
                        &mut tx,
                        &Entry {
                            tenant: tenant.clone(),
                            entry_id: uuid::Uuid::now_v7().to_string(),
                            uscc: uscc.clone(),
                            kind: kind.into(),
                            recorded_at: store.now(),
                            principal: ctx.principal_id.clone(),
                            summary,
                            details: json!({"order_id": order_id, "filing_id": filing_id}).to_string().into_bytes(),
                        },
                    )
                    .await?;
                }
                store
                    .publish_json(
                        &mut tx,
                        events::CONSUMERS,
                        ctx,
                        events::FILING_REVOKED,
                        &tenant,
                        &filing_id,
                        json!({
                            "filing_id": filing_id,
                            "uscc": uscc,
                            "ground": "refused_rectification",
                            "ban_ends_on": ban_ends_on,
                        }),
                    )
                    .await?;
                Ok((tx, Written { value: true, tenant }))
            })
            .await;
        match closed {
            Ok(true) => handled += 1,
            Ok(false) => {}
            Err(e) if e.code == ErrorCode::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(handled)
}

/// Deadlines computed provisionally (past the calendar data then loaded) are computed again
/// with the calendar this process loaded, once at start: a new year's file arrives with a
/// restart.
pub async fn recompute_provisional_deadlines(env: &ServiceEnv) -> Result<usize, Error> {
    let store = &env.store;
    let calendar = &env.calendar;
    let mut conn = store
        .db
        .pool()
        .acquire()
        .await
        .map_err(creditmesh_storage::StorageError::from)?;
    if tasks::provisional_deadlines(&mut conn, calendar.version())
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    drop(conn);
    let ctx = system_context(env, "recompute-provisional-deadlines");
    let ctx = &ctx;
    store
        .write(ctx, "RecomputeDeadlines", |mut tx| async move {
            let stale = tasks::provisional_deadlines(&mut tx, calendar.version()).await?;
            for (tenant, task_id, from, kind, filing_id) in &stale {
                let from =
                    creditmesh_domain::calendar::parse_iso_date(from).map_err(Error::internal)?;
                let d = calendar
                    .deadline(
                        from,
                        events::REVIEW_WORKING_DAYS,
                        creditmesh_domain::calendar::Layers::Xinjiang,
                    )
                    .map_err(|e| Error::internal(e.to_string()))?;
                tasks::set_deadline(
                    &mut tx,
                    tenant,
                    task_id,
                    &creditmesh_domain::calendar::format_date(d.due),
                    d.provisional,
                    &d.calendar_version,
                )
                .await?;
                if kind == "filing" {
                    store
                        .publish_json(
                            &mut tx,
                            events::CONSUMERS,
                            ctx,
                            events::DEADLINE_RECOMPUTED,
                            tenant,
                            filing_id,
                            json!({
                                "filing_id": filing_id,
                                "due_date": creditmesh_domain::calendar::format_date(d.due),
                                "provisional": d.provisional,
                                "calendar_version": d.calendar_version,
                            }),
                        )
                        .await?;
                }
            }
            Ok((
                tx,
                Written {
                    value: stale.len(),
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await
}
