//! Deadlines computed provisionally (past the calendar data then loaded) are computed again
//! with the calendar this process loaded, once at start: a new year's file arrives with a
//! restart. Lateness is judged only against final deadlines, so until then a complaint under
//! a provisional deadline is never shown overdue.

use creditmesh_domain::Error;
use creditmesh_domain::calendar::{Layers, cst_date, format_date, parse_iso_date};
use creditmesh_domain::tenant::REGION;
use creditmesh_rpc::{CallContext, ServiceEnv, Written};

use crate::handling::HANDLING_WORKING_DAYS;
use crate::store;

pub async fn recompute(env: &ServiceEnv) -> Result<usize, Error> {
    let (db_store, calendar) = (&env.store, &env.calendar);
    let acceptance_days = env.complaint_acceptance_working_days;
    let mut conn = db_store.db.acquire().await?;
    if store::provisional_deadlines(&mut conn, calendar.version())
        .await?
        .is_empty()
    {
        return Ok(0);
    }
    drop(conn);
    let ctx = CallContext::system(
        "complaints",
        env.authn.trust_domain(),
        "recompute-provisional-deadlines",
    );
    let ctx = &ctx;
    db_store
        .write(ctx, "RecomputeDeadlines", |mut tx| async move {
            let stale = store::provisional_deadlines(&mut tx, calendar.version()).await?;
            let deadline = |from, days| {
                calendar
                    .deadline(from, days, Layers::Xinjiang)
                    .map_err(|e| Error::internal(e.to_string()))
            };
            for p in &stale {
                if p.status == "received" {
                    let received =
                        cst_date(p.received_at).map_err(|e| Error::internal(e.to_string()))?;
                    let d = deadline(received, acceptance_days)?;
                    store::set_acceptance_due(
                        &mut tx,
                        &p.tenant,
                        &p.tracking_number,
                        &format_date(d.due),
                        d.provisional,
                    )
                    .await?;
                } else {
                    let from = parse_iso_date(&p.handling_from).map_err(Error::internal)?;
                    let d = deadline(from, HANDLING_WORKING_DAYS)?;
                    store::set_handling_due(&mut tx, &p.tenant, &p.tracking_number, &d).await?;
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
