//! Rectification orders (Art. 14) and the refusal that revokes under Art. 15(2).

use creditmesh_domain::calendar::{Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::OrderEvent;
use creditmesh_domain::{Error, Tenant, Violations};
use creditmesh_proto::common::v1::Deadline;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Written, edge};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::party::Party;
use crate::state::{Api, Standing};
use crate::store::{self};
use crate::task_store;

pub(crate) async fn issue_rectification_order(
    api: &Api,
    request: Request<IssueRectificationOrderRequest>,
) -> Result<Response<IssueRectificationOrderResponse>, Status> {
    const METHOD: &str = "IssueRectificationOrder";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let party = Party::parse(&mut v, &req.uscc, req.practitioner.as_ref(), &req.agency_name);
        v.require("findings", &req.findings);
        v.require("required_actions", &req.required_actions);
        if !(1..=120).contains(&req.working_days) {
            v.add("working_days", "must be between 1 and 120");
        }
        v.finish()?;
        let party = party.ok_or_else(|| Error::internal("validation lost the party"))?;
        let standing = api.standing(ctx, &party).await?;
        if let Standing::Place(_) = standing {
            return Err(Error::permission_denied(
                "a rectification order to a filed agency is issued by the authority holding its filing (Art. 14, 15(2)); the authority of the place of activity records its interview, inspection or finding, which the holder reads",
            ));
        }
        Api::named(standing, &party)?;
        if standing != Standing::Holder && !req.interview_entry_id.trim().is_empty() {
            return Err(Error::invalid_field(
                "interview_entry_id",
                "only the authority holding a filing ties an order to its interview (Art. 15(2))",
            ));
        }
        let today = cst_date(api.store.now()).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(Err(e)) = api.measures.map(|m| m.check(today)) {
            return Err(e);
        }
        let deadline = api
            .calendar
            .deadline(today, req.working_days as u32, Layers::Xinjiang)
            .map_err(|e| Error::internal(e.to_string()))?;
        let (ctx, req, party, deadline) = (ctx, &req, &party, &deadline);
        let uscc = party.key();
        api
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let tenant = match standing {
                    Standing::Own(me) => {
                        let me = me.to_string();
                        store::enter_party(&mut tx, &me, party, api.store.now(), &ctx.principal_id).await?;
                        me
                    }
                    _ => api.supervised(&mut tx, ctx, uscc).await?.0,
                };
                let interview = req.interview_entry_id.trim();
                if !interview.is_empty()
                    && !store::entry_is(&mut tx, interview, uscc, "interview").await?
                {
                    return Err(Error::invalid_field(
                        "interview_entry_id",
                        format!("is no interview recorded in the credit file of {uscc}"),
                    ));
                }
                let order_id = uuid::Uuid::now_v7().to_string();
                let due = format_date(deadline.due);
                crate::supervision_store::insert_order(&mut tx, &tenant, &order_id, uscc, api.store.now(), deadline).await?;
                if !interview.is_empty() {
                    crate::supervision_store::tie_interview(&mut tx, &order_id, uscc, interview).await?;
                }
                let mut details = json!({"order_id": order_id, "findings": req.findings.trim(), "required_actions": req.required_actions.trim(), "due_date": due});
                party.describe(&mut details);
                api.credit_entry(&mut tx, ctx, &tenant, uscc, "rectification",
                    format!("rectification ordered by {due}: {}", req.required_actions.trim()),
                    details).await?;
                let value = IssueRectificationOrderResponse {
                    order_id,
                    deadline: Some(Deadline {
                        from_date: format_date(deadline.from),
                        working_days: req.working_days,
                        due_date: due,
                        calendar_version: deadline.calendar_version.clone(),
                        provisional: deadline.provisional,
                    }),
                };
                Ok((tx, Written { value, tenant }))
            })
            .await
    })
    .await
}

pub(crate) async fn record_rectification_outcome(
    api: &Api,
    request: Request<RecordRectificationOutcomeRequest>,
) -> Result<Response<RecordRectificationOutcomeResponse>, Status> {
    const METHOD: &str = "RecordRectificationOutcome";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("order_id", &req.order_id);
        let outcome =
            RectificationOutcome::try_from(req.outcome).unwrap_or(RectificationOutcome::Unspecified);
        if outcome == RectificationOutcome::Unspecified {
            v.add("outcome", "is required");
        }
        v.finish()?;
        let req = &req;
        api
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let (order_tenant, uscc, state) = crate::supervision_store::get_order(&mut tx, req.order_id.trim())
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!("no rectification order {}", req.order_id.trim()))
                    })?;
                let me = Api::regulator(ctx)?;
                let order_id = req.order_id.trim();
                let held = match task_store::agency(&mut tx, &uscc).await? {
                    Some(a) if Tenant::parse(&a.0).is_ok_and(|t| me.can_see(t)) => Some(a),
                    _ => None,
                };
                let Some(agency) = held else {
                    // An order to a party without a filing the caller holds (an agency that
                    // had not filed, a practitioner): its outcome is the issuer's to record, and
                    // a refusal stands in the party's file with no filing to revoke.
                    if !Tenant::parse(&order_tenant).is_ok_and(|t| me.can_see(t)) {
                        return Err(Error::not_found(format!("no rectification order {order_id}")));
                    }
                    let (event, note) = match outcome {
                        RectificationOutcome::Refused => (OrderEvent::Refused, "refused to rectify (拒不整改)"),
                        _ => (OrderEvent::Rectified, "rectified"),
                    };
                    if !crate::supervision_store::order_transition(&mut tx, order_id, event).await? {
                        return Err(Error::failed_precondition(format!("the order is {state} already")));
                    }
                    api.credit_entry(&mut tx, ctx, &order_tenant, &uscc, "rectification", note.into(),
                        json!({"order_id": order_id, "note": req.note.trim()})).await?;
                    return Ok((tx, Written { value: RecordRectificationOutcomeResponse::default(), tenant: order_tenant }));
                };
                let mut value = RecordRectificationOutcomeResponse::default();
                if outcome == RectificationOutcome::Refused {
                    // Art. 15(2): the holding authority interviews, orders rectification and
                    // records the refusal; only then does the refusal revoke.
                    if ctx.principal.tenant.to_string() != agency.0 {
                        return Err(Error::permission_denied(format!(
                            "only the holding authority ({}) records a refusal to rectify (Art. 15(2))",
                            agency.0
                        )));
                    }
                    if crate::supervision_store::order_interview(&mut tx, order_id).await?.is_empty() {
                        return Err(Error::failed_precondition(format!(
                            "order {order_id} is tied to no interview (约谈) of {uscc}; Art. 15(2) revokes on a refusal to rectify only after one: issue the order with interview_entry_id, or record the interview with order_id"
                        )));
                    }
                    if !crate::supervision_store::order_transition(&mut tx, order_id, OrderEvent::Refused).await? {
                        return Err(Error::failed_precondition(format!("the order is {state} already")));
                    }
                    api.credit_entry(
                        &mut tx,
                        ctx,
                        &agency.0,
                        &uscc,
                        "rectification",
                        "refused to rectify (拒不整改)".into(),
                        json!({"order_id": order_id, "note": req.note.trim()}),
                    )
                    .await?;
                    value.ban_ends_on = api
                        .revoke(
                            &mut tx,
                            ctx,
                            &uscc,
                            &agency,
                            "refused_rectification",
                            "the agency refused to rectify (Art. 15(2))",
                        )
                        .await?;
                    value.revoked_filing_id = agency.1.clone();
                } else {
                    if !crate::supervision_store::order_transition(&mut tx, order_id, OrderEvent::Rectified).await? {
                        return Err(Error::failed_precondition(format!("the order is {state} already")));
                    }
                    api.credit_entry(
                        &mut tx,
                        ctx,
                        &agency.0,
                        &uscc,
                        "rectification",
                        "rectified".into(),
                        json!({"order_id": order_id, "note": req.note.trim()}),
                    )
                    .await?;
                }
                Ok((
                    tx,
                    Written {
                        value,
                        tenant: agency.0,
                    },
                ))
            })
            .await
    })
    .await
}
