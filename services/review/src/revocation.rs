//! Revocations by hand under Art. 15, and the disposal record that completes a
//! deregistration (Art. 18).

use creditmesh_domain::calendar::parse_iso_date;
use creditmesh_domain::lifecycle::FilingEvent;
use creditmesh_domain::{Error, Violations};
use creditmesh_proto::events::v1 as ev;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::{Written, edge};
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::state::Api;

use crate::task_store::{self};

/// The department that disposes of unlicensed credit reporting and rating (Art. 15(3)).
const PBOC: &str = "pboc-branch";

pub(crate) async fn revoke_filing(
    api: &Api,
    request: Request<RevokeFilingRequest>,
) -> Result<Response<RevokeFilingResponse>, Status> {
    const METHOD: &str = "RevokeFiling";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        let ground = RevocationGround::try_from(req.ground).unwrap_or(RevocationGround::Unspecified);
        if ground == RevocationGround::Unspecified {
            v.add("ground", "is required (Art. 11, 15)");
        }
        v.require("reason", &req.reason);
        if req.share_documents && ground != RevocationGround::UnlicensedCreditReporting {
            v.add(
                "share_documents",
                "only a revocation under Art. 15(3) is referred to a department to share them with",
            );
        }
        v.finish()?;
        let req = &req;
        api
            .store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let uscc = task_store::agency_of_filing(&mut tx, req.filing_id.trim()).await?
                    .ok_or_else(|| Error::not_found(format!("no filing {}", req.filing_id.trim())))?;
                let agency = api.supervised(&mut tx, ctx, &uscc).await?;
                let name = ground.as_str_name().to_ascii_lowercase().replace("revocation_ground_", "");
                match ground {
                    RevocationGround::NoAnnualReport => return Err(Error::failed_precondition(
                        "Art. 11 revokes by itself at the 1 July cut-off, from the filing service's record of annual reports; it is not revoked by hand",
                    )),
                    RevocationGround::SevereDishonesty if task_store::listed(&mut tx, &uscc).await?.is_none() => {
                        return Err(Error::failed_precondition(format!(
                            "{uscc} itself is not on the severe-dishonesty list; Art. 15(1) revokes only a listed agency (a listed principal is a matter for supervision)"
                        )));
                    }
                    RevocationGround::RefusedRectification if !crate::supervision_store::refused_order(&mut tx, &uscc, &agency.0).await? => {
                        return Err(Error::failed_precondition(format!(
                            "no refusal of a rectification order by {uscc} is recorded by its holding authority; Art. 15(2) revokes only after an interview, an order and the recorded refusal"
                        )));
                    }
                    _ => {}
                }
                let shared_with = if req.share_documents { PBOC } else { "" };
                let ban_ends_on = api.revoke_sharing(&mut tx, ctx, &uscc, &agency, &name, req.reason.trim(), shared_with).await?;
                if ground == RevocationGround::UnlicensedCreditReporting {
                    api.credit_entry(&mut tx, ctx, &agency.0, &uscc, "referral",
                        "referred to the People's Bank branch for unlicensed credit reporting or rating (Art. 15(3))".into(),
                        json!({"filing_id": agency.1, "reason": req.reason.trim(), "department": PBOC}))
                        .await?;
                    // 由相关管理部门依法处置: the referral reaches the branch's node (complaints delivers it).
                    let agency_name = task_store::agency_name(&mut tx, &uscc).await?;
                    api.store
                        .publish_event(&mut tx, ctx, &agency.0, &agency.1,
                            &ev::RevocationReferred {
                                filing_id: agency.1.clone(),
                                uscc: uscc.clone(),
                                agency_name,
                                ground: name.clone(),
                                reason: req.reason.trim().to_owned(),
                                department: PBOC.into(),
                                ban_ends_on: ban_ends_on.clone(),
                            })
                        .await?;
                }
                Ok((tx, Written { value: RevokeFilingResponse { ban_ends_on }, tenant: agency.0 }))
            })
            .await
    })
    .await
}

pub(crate) async fn record_disposal(
    api: &Api,
    request: Request<RecordDisposalRequest>,
) -> Result<Response<RecordDisposalResponse>, Status> {
    const METHOD: &str = "RecordDisposal";
    let (ctx, req) = edge::caller(&api.authn, request, &[])?;
    let ctx = &ctx;
    edge::run(&api.store, ctx, METHOD, async {
        let mut v = Violations::default();
        v.require("request_id", &req.request_id);
        v.require("filing_id", &req.filing_id);
        v.check("disposed_on", parse_iso_date(&req.disposed_on));
        v.require("method", &req.method);
        v.require("supervised_by", &req.supervised_by);
        v.finish()?;
        let req = &req;
        api.store
            .write_idempotent(ctx, METHOD, &req.request_id, |mut tx| async move {
                let uscc = task_store::agency_of_filing(&mut tx, req.filing_id.trim()).await?
                    .ok_or_else(|| Error::not_found(format!("no filing {}", req.filing_id.trim())))?;
                let agency = api.supervised(&mut tx, ctx, &uscc).await?;
                let disposal = ev::Disposal {
                    disposed_on: req.disposed_on.trim().to_owned(),
                    method: req.method.trim().to_owned(),
                    supervised_by: req.supervised_by.trim().to_owned(),
                };
                if !task_store::deregistration_approved(&mut tx, &agency.1).await? {
                    return Err(Error::failed_precondition(format!(
                        "the filing is {}; a disposal completes only a deregistration the agency requested and the holding authority approved (Art. 18)",
                        agency.2
                    )));
                }
                if !task_store::agency_transition(&mut tx, &uscc, &agency.1, FilingEvent::CompleteDeregistration).await? {
                    return Err(Error::failed_precondition(format!("the filing is {}; nothing to complete", agency.2)));
                }
                api.credit_entry(&mut tx, ctx, &agency.0, &uscc, "disposal", format!("credit-information database disposed of on {} (Art. 18)", req.disposed_on.trim()), json!(disposal)).await?;
                api.store.publish_event(&mut tx, ctx, &agency.0, &agency.1, &ev::DeregistrationCompleted { filing_id: agency.1.clone(), uscc: uscc.clone(), disposal: Some(disposal) }).await?;
                Ok((tx, Written { value: RecordDisposalResponse {}, tenant: agency.0 }))
            })
            .await?;
        Ok(RecordDisposalResponse {})
    })
    .await
}
