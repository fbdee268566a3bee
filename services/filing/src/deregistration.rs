//! Deregistration requests (Art. 18).

use creditmesh_domain::Uscc;
use creditmesh_domain::lifecycle::{Filing as State, FilingEvent, Machine};
use creditmesh_domain::{Error, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use tonic::{Request, Response, Status};

use crate::model::Documents;
use crate::state::Api;
use crate::store::{self};
use crate::validate::{check_owned, require_doc};

pub(crate) async fn request_deregistration(
    api: &Api,
    request: Request<RequestDeregistrationRequest>,
) -> Result<Response<RequestDeregistrationResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let checked = check(&ctx, &req);
    edge::call(
        &api.store,
        &ctx,
        METHOD,
        checked,
        |(caller, reason, docs)| submit(api, &ctx, &req, caller, reason, docs),
    )
    .await
}

const METHOD: &str = "RequestDeregistration";

fn check(
    ctx: &CallContext,
    req: &RequestDeregistrationRequest,
) -> Result<(Uscc, DeregistrationReason, Documents), Error> {
    let caller = Api::agency(ctx)?;
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    v.require("filing_id", &req.filing_id);
    let reason =
        DeregistrationReason::try_from(req.reason).unwrap_or(DeregistrationReason::Unspecified);
    if reason == DeregistrationReason::Unspecified {
        v.add("reason", "is required (Art. 18)");
    }
    if reason == DeregistrationReason::Other {
        v.require("reason_detail", &req.reason_detail);
    }
    v.max_chars("reason_detail", &req.reason_detail, 2000);
    let mut docs = Documents::new();
    require_doc(
        &mut v,
        &mut docs,
        "disposal_plan",
        &req.disposal_plan,
        "the plan for disposing of the credit-information database (Art. 18)",
    );
    v.finish()?;
    Ok((caller, reason, docs))
}

async fn submit(
    api: &Api,
    ctx: &CallContext,
    req: &RequestDeregistrationRequest,
    caller: Uscc,
    reason: DeregistrationReason,
    docs: Documents,
) -> Result<RequestDeregistrationResponse, Error> {
    let (docs, caller) = (&docs, &caller);
    api.store
        .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
            let filing = api.visible_filing(&mut tx, ctx, &req.filing_id).await?;
            check_owned(&mut tx, caller.as_str(), docs).await?;
            if store::transition(
                &mut tx,
                &filing.tenant,
                &filing.filing_id,
                FilingEvent::RequestDeregistration,
            )
            .await?
            .is_none()
            {
                return Err(Error::failed_precondition(format!(
                    "the filing is {}; only an active filing can be deregistered",
                    filing.status
                )));
            }
            let now = api.store.now();
            let reason_name = reason.as_str_name().to_ascii_lowercase();
            let plan = docs
                .get("disposal_plan")
                .and_then(|d| d.first())
                .cloned()
                .unwrap_or_default();
            store::insert_deregistration(
                &mut tx,
                &filing.tenant,
                &filing.filing_id,
                &reason_name,
                req.reason_detail.trim(),
                &plan,
                now,
            )
            .await?;
            store::add_history(
                &mut tx,
                &filing.tenant,
                &filing.filing_id,
                State::Deregistering.name(),
                now,
                &ctx.principal_id,
                &reason_name,
            )
            .await?;
            crate::register::tell(
                &mut tx,
                &api.store.infra,
                crate::register::Tell {
                    filing_id: &filing.filing_id,
                    notice: crate::register::Notice::Deregistering,
                    ground: "",
                    changed_fields: Vec::new(),
                    at: now,
                    principal: &ctx.principal_id,
                },
            )
            .await?;
            api.store
                .publish_event(
                    &mut tx,
                    ctx,
                    &filing.tenant,
                    &filing.filing_id,
                    &ev::DeregistrationRequested {
                        filing_id: filing.filing_id.clone(),
                        uscc: filing.uscc.clone(),
                        reason: reason_name.clone(),
                        reason_detail: req.reason_detail.trim().to_owned(),
                        disposal_plan: plan.clone(),
                    },
                )
                .await?;
            let row = store::get_filing(&mut tx, &filing.filing_id)
                .await?
                .ok_or_else(|| Error::internal("filing vanished"))?;
            let value = RequestDeregistrationResponse {
                filing: Some(api.filing_proto(&mut tx, row).await?),
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
