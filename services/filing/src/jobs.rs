//! Durable timers of the filing service. The 1 July cut-off (Art. 11) runs here, where the
//! annual reports are recorded: it decides from this service's own record of what was
//! submitted, never from a copy that may still be on its way. A run is one transaction that
//! first claims the job's name: it survives restarts and runs once across replicas.

use std::time::Duration;

use creditmesh_domain::calendar::{Layers, cst_date, format_date, parse_iso_date};
use creditmesh_domain::lifecycle::{FilingEvent, Machine};
use creditmesh_domain::tenant::REGION;
use creditmesh_domain::{Error, ErrorCode};
use creditmesh_proto::events::v1::FilingRevokedForNoReport;
use creditmesh_rpc::{CallContext, ServiceEnv, Written};
use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;
use time::{Date, Month};
use tokio_util::sync::CancellationToken;

use crate::store;

/// How often the timers look at the clock.
const TICK: Duration = Duration::from_millis(500);

pub fn spawn(env: ServiceEnv, stop: CancellationToken) {
    tokio::spawn(async move {
        match recompute_provisional_changes(&env).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional change deadlines recomputed"),
            Err(e) => {
                tracing::warn!(error = %e, "provisional change deadlines were not recomputed")
            }
        }
        let env = &env;
        creditmesh_rpc::timer::every(TICK, &stop, || async move {
            if let Err(e) = annual_report_cutoff(env).await {
                tracing::warn!(error = %e, "annual-report cut-off did not run");
            }
        })
        .await;
    });
}

fn system_context(env: &ServiceEnv, job: &str) -> CallContext {
    CallContext::system("filing", env.authn.trust_domain(), job)
}

/// The Art. 12 due dates computed provisionally (past the calendar data then loaded) are
/// computed again with the calendar this process loaded, once at start, and whether each
/// change was late with them.
pub async fn recompute_provisional_changes(env: &ServiceEnv) -> Result<usize, Error> {
    let calendar = &env.calendar;
    let ctx = system_context(env, "recompute-provisional-changes");
    let pending = async |conn: &mut AnyConnection| {
        let stale = store::provisional_changes(conn, calendar.version()).await?;
        Ok(!stale.is_empty())
    };
    let change = async |tx: &mut Tx| {
        let stale = store::provisional_changes(tx, calendar.version()).await?;
        for (change_id, changed_on, submitted_at) in &stale {
            let from = parse_iso_date(changed_on).map_err(Error::internal)?;
            let submitted = cst_date(*submitted_at).map_err(|e| Error::internal(e.to_string()))?;
            let due = calendar
                .deadline(from, crate::state::CHANGE_WORKING_DAYS, Layers::Xinjiang)
                .map_err(|e| Error::internal(e.to_string()))?;
            store::set_change_deadline(
                tx,
                change_id,
                &format_date(due.due),
                due.provisional,
                &due.calendar_version,
                submitted > due.due,
            )
            .await?;
        }
        Ok(stale.len())
    };
    env.store
        .pass(&ctx, "RecomputeChangeDeadlines", pending, change)
        .await
}

/// Microseconds since the Unix epoch at 00:00 China Standard Time on `d`.
fn cst_midnight(d: Date) -> i64 {
    (i64::from(d.to_julian_day() - 2_440_588) * 86_400 - 8 * 3600) * 1_000_000
}

/// The day after the report for Y-1 was due (1 July of Y, later when 30 June is a day off),
/// revokes every active filing submitted before Y that holds no annual report for Y-1 (Art.
/// 11: "未按时提交年度报告的信用服务机构将自动撤销建档"). A filing whose agency applied to
/// deregister is not active, and is spared. The revocation carries no 12-month restriction:
/// that paragraph belongs to Art. 15. It never runs on a weekday guess: while the calendar
/// has no data for the due day, it waits for it.
pub async fn annual_report_cutoff(env: &ServiceEnv) -> Result<usize, Error> {
    let store = &env.store;
    let today = cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))?;
    let year = i64::from(today.year()) - 1;
    let due = crate::reports::due(&env.calendar, year as i32)?;
    if today <= due.due {
        return Ok(0);
    }
    // No revocation outside the Measures' validity (Art. 32); the run is not claimed, so
    // that it runs if the window is corrected.
    if creditmesh_domain::measures::check_act(env.measures, today, "the Art. 11 cut-off").is_err() {
        return Ok(0);
    }
    if due.provisional {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                year,
                due = %due,
                "the annual-report cut-off waits for the calendar data of the day reports are due"
            )
        });
        return Ok(0);
    }
    let name = format!("annual-report-cutoff-{year}");
    let start_of_year = Date::from_calendar_date(today.year(), Month::January, 1)
        .map_err(|e| Error::internal(e.to_string()))?;
    let submitted_before = cst_midnight(start_of_year);
    // Settled runs cost one read per tick, and leave no audit line.
    let mut conn = store.db.acquire().await?;
    if store::job_done(&mut conn, &name).await? {
        return Ok(0);
    }
    drop(conn);
    let ctx = system_context(env, &name);
    let (ctx, name, due) = (&ctx, &name, &due);
    let outcome = store
        .write(ctx, "AnnualReportCutoff", |mut tx| async move {
            let now = store.now();
            if !store::claim_job(&mut tx, name, now, &ctx.principal_id, "").await? {
                return Ok((
                    tx,
                    Written {
                        value: 0,
                        tenant: REGION.to_string(),
                    },
                ));
            }
            let missing = store::without_report(&mut tx, year, submitted_before).await?;
            let mut revoked = 0;
            for (tenant, filing_id, uscc) in &missing {
                let Some(next) =
                    store::transition(&mut tx, tenant, filing_id, FilingEvent::MissAnnualReport)
                        .await?
                else {
                    continue;
                };
                store::withdraw_changes(&mut tx, filing_id).await?;
                let note = format!(
                    "revoked: no annual report for {year} by {} (Art. 11)",
                    format_date(due.due)
                );
                store::add_history(
                    &mut tx,
                    tenant,
                    filing_id,
                    next.name(),
                    now,
                    &ctx.principal_id,
                    &note,
                )
                .await?;
                crate::register::tell(
                    &mut tx,
                    &store.infra,
                    crate::register::Tell {
                        filing_id,
                        notice: crate::register::Notice::Revoked,
                        ground: "no_annual_report",
                        changed_fields: Vec::new(),
                        at: now,
                        principal: &ctx.principal_id,
                    },
                )
                .await?;
                store
                    .publish_event(
                        &mut tx,
                        ctx,
                        tenant,
                        filing_id,
                        &FilingRevokedForNoReport {
                            filing_id: filing_id.clone(),
                            uscc: uscc.clone(),
                            year: year as i32,
                        },
                    )
                    .await?;
                revoked += 1;
            }
            tracing::info!(job = %name, revoked, "annual-report cut-off ran");
            Ok((
                tx,
                Written {
                    value: revoked,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await;
    match outcome {
        // Another replica claimed the same name at the same moment and committed first.
        Err(e) if e.code == ErrorCode::AlreadyExists => Ok(0),
        other => other,
    }
}
