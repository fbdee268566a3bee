//! Durable timers of the datapush service: objections undecided past their deadline go into
//! the agency's credit file (Art. 22), subjects are told who decides once an agency is gone,
//! records past their category's configured retention are purged, and envelopes are wrapped
//! again and keyed hashes computed again after a key rotation (Art. 23). Each step is a
//! guarded write, so that any number of replicas do it once.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_domain::calendar::{cst_date, format_date};
use creditmesh_domain::lifecycle::{Machine, Objection, PushedRecordEvent};
use creditmesh_domain::tenant::REGION;
use creditmesh_domain::{Error, ErrorCode};
use creditmesh_proto::events::v1::ObjectionOverdue;
use creditmesh_rpc::{CallContext, ServiceEnv, ServiceStore, Written};
use creditmesh_storage::sqlx::AnyConnection;
use creditmesh_storage::transition;
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, retention_limit};
use crate::objection_store::{self, Once};
use crate::seal::Keys;
use crate::store;

/// How often the timers look at the clock.
const TICK: Duration = Duration::from_millis(500);
/// How often sealed rows are looked over for envelopes under a key that no longer seals (and
/// once at start, so that a rotation takes effect as each replica restarts with the new key).
const REWRAP_EVERY: Duration = Duration::from_secs(300);

/// Starts datapush's timers once its catalog and keys load.
pub fn start(env: ServiceEnv, config: &crate::DataPushConfig, stop: CancellationToken) {
    let catalog = crate::catalog::Catalog::from_config(&config.categories);
    let keys = Keys::load(config, &env.pki_dir);
    match (catalog, keys) {
        (Ok(catalog), Ok(keys)) => spawn(env, Arc::new(catalog), Arc::new(keys), stop),
        (Err(p), _) => {
            tracing::error!(problems = ?p, "datapush timers not started: catalog invalid")
        }
        (_, Err(e)) => tracing::error!(error = %e, "datapush timers not started: keys"),
    }
}

pub fn spawn(env: ServiceEnv, catalog: Arc<Catalog>, keys: Arc<Keys>, stop: CancellationToken) {
    tokio::spawn(async move {
        let ctx = CallContext::system("datapush", env.authn.trust_domain(), "datapush-timers");
        match recompute_provisional_deadlines(&env, &ctx).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(recomputed = n, "provisional objection deadlines recomputed"),
            Err(e) => {
                tracing::warn!(error = %e, "provisional objection deadlines were not recomputed")
            }
        }
        let mut rewrap_due = tokio::time::Instant::now();
        let (env, ctx, keys, catalog) = (&env, &ctx, &keys, &catalog);
        creditmesh_rpc::timer::every(TICK, &stop, || {
            let rewrap = tokio::time::Instant::now() >= rewrap_due;
            if rewrap {
                rewrap_due += REWRAP_EVERY;
            }
            async move { tick(env, ctx, keys, catalog, rewrap).await }
        })
        .await;
    });
}

/// One round of datapush's timers; envelopes and keyed hashes are looked over when `rewrap`.
async fn tick(env: &ServiceEnv, ctx: &CallContext, keys: &Keys, catalog: &Catalog, rewrap: bool) {
    if rewrap {
        if let Err(e) = crate::rewrap::pass(&env.store, ctx, keys).await {
            tracing::warn!(error = %e, "envelopes not wrapped again under the current keys");
        }
        if let Err(e) = crate::reindex::pass(&env.store, ctx, keys).await {
            tracing::warn!(error = %e, "keyed hashes not computed again under the current index key");
        }
    }
    if let Err(e) = tell_new_decider(&env.store, ctx, keys).await {
        tracing::warn!(error = %e, "subjects not told who decides their objections");
    }
    if let Err(e) = record_overdue(&env.store, ctx, env.measures).await {
        tracing::warn!(error = %e, "overdue objections not recorded");
    }
    if let Err(e) = purge_expired(&env.store, ctx, catalog).await {
        tracing::warn!(error = %e, "retention purge did not run");
    }
}

/// The deadlines of open objections computed provisionally (past the calendar data then
/// loaded) are computed again with the calendar this process loaded, once at start: a new
/// year's file arrives with a restart.
pub async fn recompute_provisional_deadlines(
    env: &ServiceEnv,
    ctx: &CallContext,
) -> Result<usize, Error> {
    let calendar = &env.calendar;
    let pending = async |conn: &mut AnyConnection| {
        let stale = objection_store::provisional_deadlines(conn, calendar.version()).await?;
        Ok(!stale.is_empty())
    };
    let change = async |tx: &mut creditmesh_storage::Tx| {
        let stale = objection_store::provisional_deadlines(tx, calendar.version()).await?;
        for (objection_id, from) in &stale {
            let from =
                creditmesh_domain::calendar::parse_iso_date(from).map_err(Error::internal)?;
            let d = calendar
                .deadline(
                    from,
                    creditmesh_domain::measures::OBJECTION_WORKING_DAYS,
                    creditmesh_domain::calendar::Layers::Xinjiang,
                )
                .map_err(|e| Error::internal(e.to_string()))?;
            objection_store::set_deadline(tx, objection_id, &d).await?;
        }
        Ok(stale.len())
    };
    env.store
        .pass(ctx, "RecomputeObjectionDeadlines", pending, change)
        .await
}

/// Tells the subject of each open objection to what an agency whose filing is now revoked or
/// deregistered pushed that the authority holding the filing decides it (Art. 22), once.
pub async fn tell_new_decider(
    store: &ServiceStore,
    ctx: &CallContext,
    keys: &Keys,
) -> Result<usize, Error> {
    let due = {
        let mut conn = store.db.acquire().await?;
        objection_store::decider_untold(&mut conn).await?
    };
    let mut told = 0;
    for (o, holder) in &due {
        let authority = creditmesh_domain::Tenant::parse(holder)
            .map(|t| t.authority_name())
            .unwrap_or_else(|_| holder.clone());
        let moved = store
            .write(ctx, "TellObjectionDecider", |mut tx| async move {
                let now = store.now();
                if !objection_store::mark_once(&mut tx, Once::DeciderTold, &o.objection_id, now).await? {
                    return Ok((tx, Written { value: false, tenant: o.tenant.clone() }));
                }
                let (_, contact) = crate::state::private(keys, o)?;
                crate::objections::tell(
                    store,
                    keys,
                    &mut tx,
                    ctx,
                    o,
                    &contact,
                    "信用信息异议改由主管部门处理 / who decides your objection",
                    format!(
                        "异议 {id}：报送记录的信用服务机构已被撤销建档或已注销，您的异议由{authority}社会信用主管部门处理。\n\
                         Objection {id}: the agency that pushed the record no longer holds a filing; \
                         the credit authority of {authority} decides your objection.",
                        id = o.objection_id
                    ),
                )
                .await?;
                Ok((tx, Written { value: true, tenant: o.tenant.clone() }))
            })
            .await?;
        told += usize::from(moved);
    }
    Ok(told)
}

fn today(store: &ServiceStore) -> Result<time::Date, Error> {
    cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))
}

/// Records each open objection past its deadline in its agency's credit file, once.
pub async fn record_overdue(
    store: &ServiceStore,
    ctx: &CallContext,
    window: Option<creditmesh_domain::measures::Validity>,
) -> Result<usize, Error> {
    // Lateness has consequences only while the Measures are in force (Art. 32).
    let day = cst_date(store.now()).map_err(|e| Error::internal(e.to_string()))?;
    if creditmesh_domain::measures::check_act(window, day, "an overdue entry").is_err() {
        return Ok(0);
    }
    let today = format_date(day);
    let due = {
        let mut conn = store.db.acquire().await?;
        objection_store::overdue_unrecorded(&mut conn, &today).await?
    };
    let mut recorded = 0;
    for o in &due {
        let done = store
            .write(ctx, "RecordOverdueObjection", |mut tx| async move {
                let marked =
                    objection_store::mark_once(&mut tx, Once::OverdueRecorded, &o.objection_id, store.now())
                        .await?;
                if marked {
                    let filed_on = crate::state::day_of(o.filed_at)?;
                    store
                        .publish_event(
                            &mut tx,
                            ctx,
                            &o.tenant,
                            &o.agency_uscc,
                            &ObjectionOverdue {
                                objection_id: o.objection_id.clone(),
                                agency_uscc: o.agency_uscc.clone(),
                                record_id: o.record_id.clone(),
                                filed_on,
                                due_date: o.deadline_due.clone(),
                            },
                        )
                        .await?;
                    tracing::info!(objection = %o.objection_id, due = %o.deadline_due, "objection overdue recorded");
                }
                Ok((
                    tx,
                    Written {
                        value: marked,
                        tenant: o.tenant.clone(),
                    },
                ))
            })
            .await?;
        recorded += usize::from(done);
    }
    Ok(recorded)
}

/// Once a day (the first replica to claim the day's run does it), removes every record whose
/// category's retention ended before today, with its history, and records what it removed.
/// An objection still open on such a record is closed as deleted.
pub async fn purge_expired(
    store: &ServiceStore,
    ctx: &CallContext,
    catalog: &Catalog,
) -> Result<usize, Error> {
    let today = today(store)?;
    let run = format!("retention-purge-{}", format_date(today));
    {
        let mut conn = store.db.acquire().await?;
        if creditmesh_storage::runs::done(&mut conn, store::JOBS, &run).await? {
            return Ok(0);
        }
    }
    let limits: Vec<(String, String)> = catalog
        .categories()
        .filter_map(|c| {
            retention_limit(today, c.retention_months).map(|d| (c.code.clone(), format_date(d)))
        })
        .collect();
    let (run, limits) = (&run, &limits);
    let outcome = store
        .write(ctx, "PurgeExpiredRecords", |mut tx| async move {
            let now = store.now();
            let claimed = creditmesh_storage::runs::claim(&mut tx, store::JOBS, run, now).await?;
            let mut purged = 0usize;
            if claimed {
                for (category, limit) in limits {
                    purged += purge_category(&mut tx, run, category, limit, now).await?;
                }
                creditmesh_storage::runs::summarize(
                    &mut tx,
                    store::JOBS,
                    run,
                    &format!("{purged} records purged"),
                )
                .await?;
                tracing::info!(run = %run, purged, "retention purge ran");
            }
            Ok((
                tx,
                Written {
                    value: purged,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await;
    match outcome {
        // Another replica claimed the same run at the same moment and committed first.
        Err(e) if e.code == ErrorCode::AlreadyExists => Ok(0),
        other => other,
    }
}

async fn purge_category(
    tx: &mut creditmesh_storage::Tx,
    run: &str,
    category: &str,
    limit: &str,
    now: i64,
) -> Result<usize, Error> {
    let expired = store::collected_before(tx, category, limit).await?;
    for r in &expired {
        let record_id = &r.record_id;
        store::insert_purge(tx, r, run, category, now).await?;
        for o in objection_store::of_record(tx, record_id).await? {
            if Objection::parse(&o.status) == Some(Objection::Open) {
                transition::apply::<Objection>(
                    tx,
                    "datapush_objection",
                    &[("objection_id", &o.objection_id)],
                    PushedRecordEvent::Delete,
                )
                .await?;
                objection_store::set_decided(
                    tx,
                    &o.objection_id,
                    "the record reached the end of its category's retention period and was purged",
                    "datapush",
                    now,
                )
                .await?;
            }
        }
        store::delete_record(tx, record_id).await?;
    }
    Ok(expired.len())
}
