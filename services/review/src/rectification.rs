//! Rectification orders (Art. 14) and the refusal that revokes under Art. 15(2).

use creditmesh_domain::calendar::{Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::OrderEvent;
use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::common::v1::Deadline;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Written, edge};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::api::Api;
use crate::store::{self};

pub(crate) async fn issue_rectification_order(
    api: &Api,
    request: Request<IssueRectificationOrderRequest>,
) -> Result<Response<IssueRectificationOrderResponse>, Status> {
    const METHOD: &str = "IssueRectificationOrder";
    let ctx = api.authn.context(&request)?;
    let req = request.into_inner();
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        let uscc = v.check("uscc", Uscc::parse(&req.uscc));
        v.require("findings", &req.findings);
        v.require("required_actions", &req.required_actions);
        if !(1..=120).contains(&req.working_days) {
            v.add("working_days", "must be between 1 and 120");
        }
        v.finish()?;
        let uscc = uscc.ok_or_else(|| Error::internal("validation lost uscc"))?;
        let today = cst_date(api.store.now()).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(Err(e)) = api.measures.map(|m| m.check(today)) {
            return Err(e);
        }
        let deadline = api
            .calendar
            .deadline(today, req.working_days as u32, Layers::Xinjiang)
            .map_err(|e| Error::internal(e.to_string()))?;
        let (ctx, req, uscc, deadline) = (ctx, &req, &uscc, &deadline);
        api
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let agency = api.supervised(&mut tx, ctx, uscc.as_str()).await?;
                let interview = req.interview_entry_id.trim();
                if !interview.is_empty()
                    && !store::entry_is(&mut tx, interview, uscc.as_str(), "interview").await?
                {
                    return Err(Error::invalid_field(
                        "interview_entry_id",
                        format!("is no interview recorded in the credit file of {uscc}"),
                    ));
                }
                let order_id = uuid::Uuid::now_v7().to_string();
                let due = format_date(deadline.due);
                crate::supervision::insert_order(&mut tx, &agency.0, &order_id, uscc.as_str(), api.store.now(), deadline).await?;
                if !interview.is_empty() {
                    crate::supervision::tie_interview(&mut tx, &order_id, uscc.as_str(), interview).await?;
                }
                api.credit_entry(&mut tx, ctx, &agency.0, uscc.as_str(), "rectification",
                    format!("rectification ordered by {due}: {}", req.required_actions.trim()),
                    json!({"order_id": order_id, "findings": req.findings.trim(), "required_actions": req.required_actions.trim(), "due_date": due})).await?;
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
                Ok((tx, Written { value, tenant: agency.0 }))
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
    let ctx = api.authn.context(&request)?;
    let req = request.into_inner();
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
                let (_, uscc, state) = crate::supervision::get_order(&mut tx, req.order_id.trim())
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!("no rectification order {}", req.order_id.trim()))
                    })?;
                let agency = api.supervised(&mut tx, ctx, &uscc).await?;
                let mut value = RecordRectificationOutcomeResponse::default();
                let order_id = req.order_id.trim();
                if outcome == RectificationOutcome::Refused {
                    // Art. 15(2): the holding authority interviews, orders rectification and
                    // records the refusal; only then does the refusal revoke.
                    if ctx.principal.tenant.to_string() != agency.0 {
                        return Err(Error::permission_denied(format!(
                            "only the holding authority ({}) records a refusal to rectify (Art. 15(2))",
                            agency.0
                        )));
                    }
                    if crate::supervision::order_interview(&mut tx, order_id).await?.is_empty() {
                        return Err(Error::failed_precondition(format!(
                            "order {order_id} is tied to no interview (约谈) of {uscc}; Art. 15(2) revokes on a refusal to rectify only after one: issue the order with interview_entry_id, or record the interview with order_id"
                        )));
                    }
                    if !crate::supervision::order_transition(&mut tx, order_id, OrderEvent::Refused).await? {
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
                    if !crate::supervision::order_transition(&mut tx, order_id, OrderEvent::Rectified).await? {
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
