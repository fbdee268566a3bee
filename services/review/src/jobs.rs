//! Durable timers of the review service. Each run is one transaction that first moves the row
//! it acts on with a guarded update: it survives restarts (a run cut short rolls back and runs
//! again) and acts once across replicas (the second guarded update finds the row moved).

use std::time::Duration;

use creditmesh_domain::calendar::cst_date;
use creditmesh_domain::lifecycle::OrderEvent;
use creditmesh_domain::tenant::REGION;
use creditmesh_domain::{Error, ErrorCode};
use creditmesh_rpc::{CallContext, ServiceEnv, Written};
use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::store::{self, Entry};
use crate::supervision_store;
use crate::task_store;

/// How often the timers look at the clock.
const TICK: Duration = Duration::from_millis(500);

pub fn spawn(env: ServiceEnv, stop: CancellationToken) {
    tokio::spawn(async move {
        match recompute_provisional_deadlines(&env).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional deadlines recomputed"),
            Err(e) => tracing::warn!(error = %e, "provisional deadlines were not recomputed"),
        }
        let env = &env;
        creditmesh_rpc::timer::every(TICK, &stop, || async move {
            if let Err(e) = overdue_rectifications(env).await {
                tracing::warn!(error = %e, "overdue rectifications were not handled");
            }
        })
        .await;
    });
}

fn system_context(env: &ServiceEnv, job: &str) -> CallContext {
    CallContext::system("review", env.authn.trust_domain(), job)
}

/// A rectification order whose final deadline passed unanswered becomes overdue, and the
/// holding authority gets a supervision task and a credit-file entry. That is not by itself a
/// refusal to rectify (拒不整改, Art. 15(2)): only the holding authority records a refusal. Each
/// order moves once, by whichever replica gets to it first; a provisional deadline moves none.
pub async fn overdue_rectifications(env: &ServiceEnv) -> Result<usize, Error> {
    let store = &env.store;
    let today = cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))?;
    // Lateness has consequences only while the Measures are in force (Art. 32).
    if creditmesh_domain::measures::check_act(env.measures, today, "an overdue entry").is_err() {
        return Ok(0);
    }
    let today_s = creditmesh_domain::calendar::format_date(today);
    let mut conn = store.db.acquire().await?;
    let overdue = supervision_store::overdue_orders(&mut conn, &today_s).await?;
    drop(conn);
    let mut handled = 0;
    for (order_id, uscc) in overdue {
        let ctx = system_context(env, &format!("overdue-rectification-{order_id}"));
        let (ctx, order_id, uscc) = (&ctx, &order_id, &uscc);
        let moved = store
            .write(ctx, "OverdueRectification", |mut tx| async move {
                if !supervision_store::order_transition(&mut tx, order_id, OrderEvent::DeadlinePassed).await? {
                    return Ok((tx, Written { value: false, tenant: REGION.to_string() }));
                }
                let what = format!("rectification order {order_id} passed its deadline unanswered");
                // A filed agency's holder gets a task; a party without a filing has the
                // overdue order stand in its file, under the authority that issued it.
                let (tenant, summary, details) = match task_store::agency(&mut tx, uscc).await? {
                    Some((tenant, filing_id, _)) => {
                        let task_id = task_store::open_supervision(&mut tx, &tenant, uscc, &filing_id, store.now(), &what).await?;
                        (tenant, format!("{what}: overdue, referred to the holding authority (Art. 14)"),
                            json!({"order_id": order_id, "filing_id": filing_id, "task_id": task_id}))
                    }
                    None => {
                        let tenant = supervision_store::get_order(&mut tx, order_id).await?.map(|o| o.0).unwrap_or_else(|| REGION.to_string());
                        (tenant, format!("{what}: overdue (Art. 14)"), json!({"order_id": order_id}))
                    }
                };
                store::insert_entry(
                    &mut tx,
                    &Entry {
                        tenant: tenant.clone(),
                        entry_id: uuid::Uuid::now_v7().to_string(),
                        uscc: uscc.clone(),
                        kind: "rectification".into(),
                        recorded_at: store.now(),
                        principal: ctx.principal_id.clone(),
                        summary,
                        details: details.to_string().into_bytes(),
                    },
                )
                .await?;
                Ok((tx, Written { value: true, tenant }))
            })
            .await;
        match moved {
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
    let ctx = system_context(env, "recompute-provisional-deadlines");
    let ctx = &ctx;
    let pending = async |conn: &mut AnyConnection| {
        let tasks = task_store::provisional_deadlines(conn, calendar.version()).await?;
        let orders = supervision_store::provisional_orders(conn, calendar.version()).await?;
        Ok(!tasks.is_empty() || !orders.is_empty())
    };
    let change = async |tx: &mut Tx| {
        let stale = task_store::provisional_deadlines(tx, calendar.version()).await?;
        for (tenant, task_id, from, kind, filing_id) in &stale {
            let from =
                creditmesh_domain::calendar::parse_iso_date(from).map_err(Error::internal)?;
            let d = calendar
                .deadline(
                    from,
                    creditmesh_domain::measures::REVIEW_WORKING_DAYS,
                    creditmesh_domain::calendar::Layers::Xinjiang,
                )
                .map_err(|e| Error::internal(e.to_string()))?;
            task_store::set_deadline(
                tx,
                tenant,
                task_id,
                &creditmesh_domain::calendar::format_date(d.due),
                d.provisional,
                &d.calendar_version,
            )
            .await?;
            if kind == "filing" {
                store
                    .publish_event(
                        tx,
                        ctx,
                        tenant,
                        filing_id,
                        &creditmesh_proto::events::v1::DeadlineRecomputed {
                            filing_id: filing_id.clone(),
                            due_date: creditmesh_domain::calendar::format_date(d.due),
                            provisional: d.provisional,
                            calendar_version: d.calendar_version.clone(),
                        },
                    )
                    .await?;
            }
        }
        let orders = supervision_store::provisional_orders(tx, calendar.version()).await?;
        for (order_id, from, working_days) in &orders {
            let from =
                creditmesh_domain::calendar::parse_iso_date(from).map_err(Error::internal)?;
            let d = calendar
                .deadline(
                    from,
                    u32::try_from(*working_days).unwrap_or_default(),
                    creditmesh_domain::calendar::Layers::Xinjiang,
                )
                .map_err(|e| Error::internal(e.to_string()))?;
            supervision_store::set_order_deadline(tx, order_id, &d).await?;
        }
        Ok(stale.len() + orders.len())
    };
    store.pass(ctx, "RecomputeDeadlines", pending, change).await
}
