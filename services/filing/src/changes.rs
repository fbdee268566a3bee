//! Changes of filed facts (Art. 12).

use creditmesh_domain::calendar::{Layers, format_date, parse_iso_date};
use creditmesh_domain::lifecycle::{Filing as State, Machine};
use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use time::Date;
use tonic::{Request, Response, Status};

use crate::convert::{facts_from, named_principals, principals};
use crate::model::{Documents, Facts};
use crate::state::{Api, CHANGE_WORKING_DAYS};
use crate::store::{self, ChangeRow};
use crate::validate::{check_facts, check_owned, merge, require_doc};

const METHOD: &str = "SubmitChange";

pub(crate) async fn submit_change(
    api: &Api,
    request: Request<SubmitChangeRequest>,
) -> Result<Response<SubmitChangeResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let checked = check(api, &ctx, &req);
    edge::call(&api.store, &ctx, METHOD, checked, |valid| {
        submit(api, &ctx, &req, valid)
    })
    .await
}

/// A change that passed every check that needs no database.
struct Valid {
    changed_on: Date,
    change: Facts,
    docs: Documents,
    today: Date,
}

fn check(api: &Api, ctx: &CallContext, req: &SubmitChangeRequest) -> Result<Valid, Error> {
    Api::agency(ctx)?;
    let today = api.today()?;
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    v.require("filing_id", &req.filing_id);
    v.max_chars("description", &req.description, 2000);
    let changed_on = if req.changed_on.is_empty() {
        v.add("changed_on", "is required: the day the fact changed");
        None
    } else {
        match parse_iso_date(&req.changed_on) {
            Ok(d) if d > today => {
                v.add("changed_on", "lies in the future");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                v.add("changed_on", e);
                None
            }
        }
    };
    // Art. 12: the change materials (变更信息资料) go with the change.
    let mut docs = Documents::new();
    if req.supporting_documents.is_empty() {
        v.add(
            "supporting_documents",
            "is required: the change materials (变更信息资料, Art. 12)",
        );
    }
    for (i, d) in req.supporting_documents.iter().enumerate() {
        require_doc(
            &mut v,
            &mut docs,
            &format!("supporting_documents[{i}]"),
            &Some(d.clone()),
            "a change material",
        );
    }
    let change = req.changed_facts.as_ref().map(facts_from);
    match &change {
        None => v.add("changed_facts", "is required"),
        Some(c) if !c.uscc.is_empty() && c.uscc != ctx.principal.subject => v.add(
            "changed_facts.uscc",
            "cannot change; a new code is a new agency and files anew",
        ),
        Some(_) => {}
    }
    v.finish()?;
    let (Some(changed_on), Some(change)) = (changed_on, change) else {
        return Err(Error::internal("validation lost a field"));
    };
    api.in_force(today)?;
    Ok(Valid {
        changed_on,
        change,
        docs,
        today,
    })
}

async fn submit(
    api: &Api,
    ctx: &CallContext,
    req: &SubmitChangeRequest,
    valid: Valid,
) -> Result<SubmitChangeResponse, Error> {
    let Valid {
        changed_on,
        change,
        docs,
        today,
    } = valid;
    let (change, docs) = (&change, &docs);
    let cal = &api.calendar;
    api.store
        .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
            let filing = api.visible_filing(&mut tx, ctx, &req.filing_id).await?;
            if State::parse(&filing.status) != Some(State::Active) {
                return Err(Error::failed_precondition(format!(
                    "the filing is {}; only an active filing takes changes",
                    filing.status
                )));
            }
            check_owned(&mut tx, &filing.uscc, docs).await?;
            let filed: Facts = serde_json::from_str(&filing.facts)
                .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
            let merged = merge(&filed, change);
            let mut v = Violations::default();
            check_facts(&mut v, "changed_facts", &merged, today);
            v.finish()?;
            let uscc = Uscc::parse(&filing.uscc).map_err(|e| Error::internal(e.to_string()))?;
            // A registered address moved into another authority's area: the holder reviews
            // the change (Art. 12), and once approved the filing is held where the agency is
            // now registered (Art. 10).
            let (routed, _) = api.route(&uscc, &merged.registered_division)?;
            let moves_to = if routed.to_string() != filing.tenant {
                routed.to_string()
            } else {
                String::new()
            };
            let cal_err = |e: creditmesh_domain::calendar::CalendarError| {
                Error::invalid_field("changed_on", e.to_string())
            };
            let (elapsed, _) = cal
                .working_days_between(changed_on, today, Layers::Xinjiang)
                .map_err(cal_err)?;
            let due = cal
                .deadline(changed_on, CHANGE_WORKING_DAYS, Layers::Xinjiang)
                .map_err(cal_err)?;
            // Late exactly when submitted after the due date; a due date that is itself
            // provisional keeps its flag, so a lateness that rests on it is provisional too.
            let late = today > due.due;
            let change_id = uuid::Uuid::now_v7().to_string();
            let now = api.store.now();
            store::insert_change(
                &mut tx,
                &ChangeRow {
                    tenant: filing.tenant.clone(),
                    change_id: change_id.clone(),
                    filing_id: filing.filing_id.clone(),
                    changed_on: format_date(changed_on),
                    submitted_at: now,
                    working_days_late: i64::from(elapsed.saturating_sub(CHANGE_WORKING_DAYS)),
                    late,
                    facts: serde_json::to_string(&merged)
                        .map_err(|e| Error::internal(e.to_string()))?,
                    description: req.description.trim().to_owned(),
                    status: creditmesh_domain::lifecycle::Change::Submitted
                        .name()
                        .into(),
                    due_date: format_date(due.due),
                    due_provisional: due.provisional,
                    calendar_version: due.calendar_version.clone(),
                    documents: serde_json::to_string(docs)
                        .map_err(|e| Error::internal(e.to_string()))?,
                    moves_to: moves_to.clone(),
                },
            )
            .await?;
            let mut note = if late {
                format!(
                    "change {change_id} submitted late: {elapsed} working days after the change"
                )
            } else {
                format!("change {change_id} submitted")
            };
            if !moves_to.is_empty() {
                note.push_str(&format!(
                    "; the registered address moves into the area of {moves_to}, which will hold the filing once the change is approved"
                ));
            }
            store::add_history(
                &mut tx,
                &filing.tenant,
                &filing.filing_id,
                &filing.status,
                now,
                &ctx.principal_id,
                &note,
            )
            .await?;
            api.store.publish_event(
                &mut tx,
                ctx,
                &filing.tenant,
                &change_id,
                &ev::ChangeSubmitted {
                    change_id: change_id.clone(),
                    filing_id: filing.filing_id.clone(),
                    uscc: filing.uscc.clone(),
                    changed_on: format_date(changed_on),
                    working_days_elapsed: elapsed,
                    late,
                    due_date: format_date(due.due),
                    due_provisional: due.provisional,
                    description: req.description.trim().to_owned(),
                    agency_name: merged.agency_name.clone(),
                    business_scope: merged.business_scope.clone(),
                    principals: principals(&merged),
                    named_principals: named_principals(&merged),
                    moves_to: moves_to.clone(),
                },
            )
            .await?;
            let value = SubmitChangeResponse {
                change_id,
                late,
                submission_deadline: Some(Api::deadline_proto(&due)),
            };
            Ok((
                tx,
                Written {
                    value,
                    tenant: filing.tenant,
                },
            ))
        })
        .await
}
