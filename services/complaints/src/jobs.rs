//! The complaints service's background work. Deadlines computed provisionally (past the calendar data then loaded) are computed again
//! with the calendar this process loaded, once at start: a new year's file arrives with a
//! restart. Lateness is judged only against final deadlines, so until then a complaint under
//! a provisional deadline is never shown overdue.

use creditmesh_domain::Error;
use creditmesh_domain::calendar::{Layers, cst_date, format_date, parse_iso_date};
use creditmesh_domain::lifecycle::{Complaint, Machine};
use creditmesh_rpc::{CallContext, ServiceEnv};

use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;

use crate::config::Config;
use crate::store;
use creditmesh_domain::measures::HANDLING_WORKING_DAYS;

/// Starts the service's background work: contacts sealed and provisional deadlines recomputed
/// once, complainants told, referrals delivered.
pub fn spawn(env: ServiceEnv, config: &Config, stop: tokio_util::sync::CancellationToken) {
    let sealing = env.clone();
    tokio::spawn(async move {
        let sealed = match creditmesh_pki::ContactKey::load(&sealing.pki_dir) {
            Ok(contacts) => crate::referrals::seal_stored_contacts(&sealing.store, &contacts)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        };
        match sealed {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                sealed = n,
                "complainants' contacts sealed in stored referrals"
            ),
            Err(e) => tracing::warn!(error = %e, "stored referrals' contacts were not sealed"),
        }
    });
    let (recomputing, acceptance_days) = (env.clone(), config.acceptance_working_days);
    tokio::spawn(async move {
        match recompute(&recomputing, acceptance_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional complaint deadlines recomputed"),
            Err(e) => {
                tracing::warn!(error = %e, "provisional complaint deadlines were not recomputed")
            }
        }
    });
    match (
        crate::notify::notifiers(&config.notifications),
        creditmesh_pki::ContactKey::load(&env.pki_dir),
    ) {
        (Ok(notifiers), Ok(contacts)) => {
            tokio::spawn(crate::notify::run(
                env.store.clone(),
                notifiers,
                contacts,
                stop.clone(),
            ));
        }
        (Err(e), _) => {
            tracing::error!(error = %e, "complainants will not be told: notifications misconfigured")
        }
        (_, Err(e)) => {
            tracing::error!(error = %e, "nobody will be told: the contact key is missing")
        }
    }
    match crate::delivery::Delivery::new(
        env.store.clone(),
        &env.pki_dir,
        env.authn.trust_domain(),
        &config.referrals,
        &stop,
    ) {
        Ok(d) => {
            tokio::spawn(crate::delivery::run(std::sync::Arc::new(d), stop));
        }
        Err(e) => {
            tracing::error!(error = %e, "referrals will not be delivered: no client identity")
        }
    }
}

pub async fn recompute(env: &ServiceEnv, acceptance_days: u32) -> Result<usize, Error> {
    let calendar = &env.calendar;
    let ctx = CallContext::system(
        "complaints",
        env.authn.trust_domain(),
        "recompute-provisional-deadlines",
    );
    let deadline = |from, days| {
        calendar
            .deadline(from, days, Layers::Xinjiang)
            .map_err(|e| Error::internal(e.to_string()))
    };
    let pending = async |conn: &mut AnyConnection| {
        let stale = store::provisional_deadlines(conn, calendar.version()).await?;
        Ok(!stale.is_empty())
    };
    let change = async |tx: &mut Tx| {
        let stale = store::provisional_deadlines(tx, calendar.version()).await?;
        for p in &stale {
            if Complaint::parse(&p.status) == Some(Complaint::Received) {
                let received =
                    cst_date(p.received_at).map_err(|e| Error::internal(e.to_string()))?;
                let d = deadline(received, acceptance_days)?;
                store::set_acceptance_due(
                    tx,
                    &p.tenant,
                    &p.tracking_number,
                    &format_date(d.due),
                    d.provisional,
                )
                .await?;
            } else {
                let from = parse_iso_date(&p.handling_from).map_err(Error::internal)?;
                let d = deadline(from, HANDLING_WORKING_DAYS)?;
                store::set_handling_due(tx, &p.tenant, &p.tracking_number, &d).await?;
            }
        }
        Ok(stale.len())
    };
    env.store
        .pass(&ctx, "RecomputeDeadlines", pending, change)
        .await
}
