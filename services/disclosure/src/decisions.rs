//! Regulators' decisions on the register: corrections and erasures, each a new leaf.

use creditmesh_domain::error::Violations;
use creditmesh_domain::{Error, PrincipalKind, mask};
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::{CallContext, Written, edge};
use creditmesh_storage::StorageError;
use tonic::{Request, Response, Status};

use crate::convert::notice_proto;
use crate::state::{Api, MAX_CORRECTION_CHARS, holds};
use crate::store::kind_name;
use crate::store::{self, NewNotice};
use crate::validate::uscc_field;

/// A regulator erases a notice of an agency its authority holds; returns its sequence.
async fn check_erasure(
    api: &Api,
    ctx: &CallContext,
    req: &EraseNoticeRequest,
) -> Result<u64, Error> {
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    if req.sequence < 0 {
        v.add("sequence", "must not be negative");
    }
    let reason = req.reason.trim();
    if reason.is_empty() {
        v.add("reason", "is required: the decision the erasure follows");
    } else if reason.chars().count() > MAX_CORRECTION_CHARS {
        v.add(
            "reason",
            format!("must be at most {MAX_CORRECTION_CHARS} characters"),
        );
    }
    v.finish()?;
    let mut conn = api.store.db.acquire().await?;
    let notice = store::notice_at(&mut conn, req.sequence as u64)
        .await?
        .ok_or_else(|| Error::invalid_field("sequence", "is not a notice of the register"))?;
    holds(ctx, &notice.tenant)?;
    if notice.kind == kind_name(NoticeKind::Erasure) {
        return Err(Error::invalid_field(
            "sequence",
            "is an erasure notice, which stays as the record of the decision",
        ));
    }
    Ok(req.sequence as u64)
}

async fn erase(
    api: &Api,
    ctx: &CallContext,
    req: &EraseNoticeRequest,
    seq: u64,
) -> Result<EraseNoticeResponse, Error> {
    let store = &api.store;
    store
        .write_idempotent(ctx, "EraseNotice", &req.request_id, |mut tx| async move {
            let Some(notice) = store::notice_at(&mut tx, seq).await? else {
                return Err(Error::invalid_field(
                    "sequence",
                    "is not a notice of the register",
                ));
            };
            let reason = mask::text(req.reason.trim());
            if !store::erase(&mut tx, seq, &ctx.principal_id, &reason).await? {
                return Err(Error::failed_precondition(format!(
                    "notice {seq} was erased already"
                )));
            }
            let text = format!(
                "公示信息删除：第 {seq} 号公示的内容已依决定删除（决定机关 {}，依据：{reason}）。",
                ctx.principal.tenant
            );
            let erasure = store::append_notice(
                &mut tx,
                &NewNotice {
                    tenant: &notice.tenant,
                    uscc: &notice.uscc,
                    kind: NoticeKind::Erasure,
                    published_at: store.now(),
                    text: &text,
                    corrects: Some(seq),
                    record: None,
                },
            )
            .await?;
            let missing = |n: u64| StorageError::Corrupt(format!("notice {n} is missing"));
            // A leak is made good: the words again, masked by the current policy, with the
            // record as the register now shows it (masked again at start).
            let republished = match (&notice.text, req.republish_masked) {
                (Some(words), true) => {
                    let agency = store::agency(&mut tx, &notice.uscc).await?;
                    let text = format!(
                        "第 {seq} 号公示依现行脱敏规则重新公示：{}",
                        mask::text(words)
                    );
                    let again = store::append_notice(
                        &mut tx,
                        &NewNotice {
                            tenant: &notice.tenant,
                            uscc: &notice.uscc,
                            kind: NoticeKind::Correction,
                            published_at: store.now(),
                            text: &text,
                            corrects: Some(seq),
                            record: agency.as_ref(),
                        },
                    )
                    .await?;
                    Some(
                        store::notice_at(&mut tx, again)
                            .await?
                            .ok_or_else(|| missing(again))?,
                    )
                }
                _ => None,
            };
            let erased = store::notice_at(&mut tx, seq)
                .await?
                .ok_or_else(|| missing(seq))?;
            let appended = store::notice_at(&mut tx, erasure)
                .await?
                .ok_or_else(|| missing(erasure))?;
            Ok((
                tx,
                Written {
                    value: EraseNoticeResponse {
                        erased: Some(notice_proto(erased)),
                        notice: Some(notice_proto(appended)),
                        republished: republished.map(notice_proto),
                    },
                    tenant: notice.tenant.clone(),
                },
            ))
        })
        .await
}

/// A regulator corrects a notice of an agency its authority holds (the region: any);
/// returns the agency's USCC.
async fn check_correction(
    api: &Api,
    ctx: &CallContext,
    req: &PublishCorrectionRequest,
) -> Result<String, Error> {
    let mut v = Violations::default();
    v.require("request_id", &req.request_id);
    v.require("uscc", &req.uscc);
    let uscc = uscc_field(&mut v, "uscc", &req.uscc);
    if req.corrects_sequence < 0 {
        v.add("corrects_sequence", "must not be negative");
    }
    let text = req.text.trim();
    if text.is_empty() {
        v.add("text", "is required");
    } else if text.chars().count() > MAX_CORRECTION_CHARS {
        v.add(
            "text",
            format!("must be at most {MAX_CORRECTION_CHARS} characters"),
        );
    }
    v.finish()?;
    let mut conn = api.store.db.acquire().await?;
    let agency = store::agency(&mut conn, &uscc)
        .await?
        .ok_or_else(|| Error::not_found(format!("no agency {uscc} on the register")))?;
    holds(ctx, &agency.tenant)?;
    let corrected = store::notice_at(&mut conn, req.corrects_sequence as u64).await?;
    if corrected.as_ref().map(|n| n.uscc.as_str()) != Some(uscc.as_str()) {
        return Err(Error::invalid_field(
            "corrects_sequence",
            format!("is not a notice of {uscc}"),
        ));
    }
    Ok(uscc)
}

async fn correct(
    api: &Api,
    ctx: &CallContext,
    req: &PublishCorrectionRequest,
    uscc: String,
) -> Result<PublishCorrectionResponse, Error> {
    let store = &api.store;
    let uscc = &uscc;
    store
        .write_idempotent(
            ctx,
            "PublishCorrection",
            &req.request_id,
            |mut tx| async move {
                let agency = store::agency(&mut tx, uscc)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("no agency {uscc} on the register")))?;
                let text = mask::text(req.text.trim());
                let seq = store::append_notice(
                    &mut tx,
                    &NewNotice {
                        tenant: &agency.tenant,
                        uscc,
                        kind: NoticeKind::Correction,
                        published_at: store.now(),
                        text: &text,
                        corrects: Some(req.corrects_sequence as u64),
                        record: None,
                    },
                )
                .await?;
                let notice = store::notice_at(&mut tx, seq)
                    .await?
                    .ok_or_else(|| StorageError::Corrupt(format!("notice {seq} is missing")))?;
                Ok((
                    tx,
                    Written {
                        value: PublishCorrectionResponse {
                            notice: Some(notice_proto(notice)),
                        },
                        tenant: agency.tenant.clone(),
                    },
                ))
            },
        )
        .await
}

pub(crate) async fn publish_correction(
    api: &Api,
    request: Request<PublishCorrectionRequest>,
) -> Result<Response<PublishCorrectionResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let checked = check_correction(api, &ctx, &req).await;
    edge::call(&api.store, &ctx, "PublishCorrection", checked, |uscc| {
        correct(api, &ctx, &req, uscc)
    })
    .await
}

pub(crate) async fn erase_notice(
    api: &Api,
    request: Request<EraseNoticeRequest>,
) -> Result<Response<EraseNoticeResponse>, Status> {
    let (ctx, req) = edge::caller(&api.authn, request, &[PrincipalKind::Regulator])?;
    let checked = check_erasure(api, &ctx, &req).await;
    edge::call(&api.store, &ctx, "EraseNotice", checked, |seq| {
        erase(api, &ctx, &req, seq)
    })
    .await
}
