//! The register's gRPC methods: reads for anyone, proofs against signed checkpoints.

use std::sync::Arc;

use creditmesh_domain::error::Violations;
use creditmesh_domain::uscc::Uscc;
use creditmesh_domain::{Error, PrincipalKind, Tenant, mask};
use creditmesh_proto::disclosure::v1::disclosure_service_server::DisclosureService;
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, Written, edge, timestamp};
use creditmesh_storage::StorageError;
use tonic::{Request, Response, Status};

use crate::checkpoint::{self, LogKey};
use crate::log;
use crate::projection::status_name;
use crate::store::{self, NewNotice, NoticeRow, Search, kind_name};

pub const MAX_PAGE: i32 = 100;
/// The longest correction text, in characters.
pub const MAX_CORRECTION_CHARS: usize = 2000;
const DEFAULT_PAGE: i32 = 20;

pub struct Api {
    pub store: ServiceStore,
    pub authn: Authn,
    pub key: Arc<LogKey>,
}

fn page_size(v: &mut Violations, size: i32) -> i64 {
    if !(0..=MAX_PAGE).contains(&size) {
        v.add("page_size", format!("must be between 0 and {MAX_PAGE}"));
    }
    i64::from(if size == 0 {
        DEFAULT_PAGE
    } else {
        size.clamp(1, MAX_PAGE)
    })
}

fn uscc_field(v: &mut Violations, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return String::new();
    }
    match Uscc::parse(value) {
        Ok(u) => u.as_str().to_owned(),
        Err(e) => {
            v.add(field, e.to_string());
            String::new()
        }
    }
}

fn notice_proto(r: NoticeRow) -> Notice {
    let kind = match r.kind.as_str() {
        "published" => NoticeKind::Published,
        "changed" => NoticeKind::Changed,
        "revoked" => NoticeKind::Revoked,
        "deregistered" => NoticeKind::Deregistered,
        "correction" => NoticeKind::Correction,
        "deregistering" => NoticeKind::Deregistering,
        "deregistration_refused" => NoticeKind::DeregistrationRefused,
        "erasure" => NoticeKind::Erasure,
        _ => NoticeKind::Unspecified,
    };
    let erased = r.content.is_none();
    Notice {
        sequence: r.seq as i64,
        kind: kind as i32,
        uscc: r.uscc,
        tenant: r.tenant,
        published_at: Some(timestamp(r.published_at)),
        text: r.text.unwrap_or_default(),
        content: r.content.map(String::into_bytes).unwrap_or_default(),
        salt: r.salt.and_then(|s| hex::decode(s).ok()).unwrap_or_default(),
        leaf_hash: r.leaf_hash,
        corrects_sequence: r.corrects.map(|c| c as i64).unwrap_or_default(),
        erased,
        erased_by: r.erased_by.unwrap_or_default(),
        erasure_reason: r.erasure_reason.unwrap_or_default(),
    }
}

fn proof_bytes(proof: Vec<tlog_tiles::Hash>) -> Vec<Vec<u8>> {
    proof.into_iter().map(|h| h.0.to_vec()).collect()
}

impl Api {
    /// The checkpoint of `size` (the newest when 0), or why there is none.
    async fn checkpoint_of(
        &self,
        conn: &mut creditmesh_storage::sqlx::AnyConnection,
        field: &str,
        size: i64,
    ) -> Result<checkpoint::Stored, Error> {
        if size < 0 {
            return Err(Error::invalid_field(field, "must not be negative"));
        }
        let wanted = (size > 0).then_some(size as u64);
        checkpoint::find(conn, wanted)
            .await?
            .ok_or_else(|| match wanted {
                Some(n) => {
                    Error::invalid_field(field, format!("no checkpoint of size {n} was signed"))
                }
                None => Error::failed_precondition("the register has no checkpoint yet"),
            })
    }
}

/// A prefecture acts on the register only for the agencies whose filing it holds; the region
/// for all.
fn holds(ctx: &CallContext, tenant: &str) -> Result<(), Error> {
    let own = &ctx.principal.tenant;
    if !own.is_region() && tenant != own.to_string() {
        return Err(Error::permission_denied(
            "a prefecture acts only on the notices of agencies whose filing it holds",
        ));
    }
    Ok(())
}

impl Api {
    /// A regulator erases a notice of an agency its authority holds; returns its sequence.
    async fn check_erasure(
        &self,
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
        let mut conn = self.store.db.acquire().await?;
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
        &self,
        ctx: &CallContext,
        req: &EraseNoticeRequest,
        seq: u64,
    ) -> Result<EraseNoticeResponse, Error> {
        let store = &self.store;
        store
            .write_idempotent(ctx, "EraseNotice", &req.request_id, |mut tx| async move {
                let Some(notice) = store::notice_at(&mut tx, seq).await? else {
                    return Err(Error::invalid_field("sequence", "is not a notice of the register"));
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
                let erased = store::notice_at(&mut tx, seq).await?.ok_or_else(|| missing(seq))?;
                let appended = store::notice_at(&mut tx, erasure)
                    .await?
                    .ok_or_else(|| missing(erasure))?;
                Ok((
                    tx,
                    Written {
                        value: EraseNoticeResponse {
                            erased: Some(notice_proto(erased)),
                            notice: Some(notice_proto(appended)),
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
        &self,
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
        let mut conn = self.store.db.acquire().await?;
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
        &self,
        ctx: &CallContext,
        req: &PublishCorrectionRequest,
        uscc: String,
    ) -> Result<PublishCorrectionResponse, Error> {
        let store = &self.store;
        let uscc = &uscc;
        store
            .write_idempotent(
                ctx,
                "PublishCorrection",
                &req.request_id,
                |mut tx| async move {
                    let agency = store::agency(&mut tx, uscc).await?.ok_or_else(|| {
                        Error::not_found(format!("no agency {uscc} on the register"))
                    })?;
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
}

#[tonic::async_trait]
impl DisclosureService for Api {
    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> Result<Response<ListAgenciesResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            let mut v = Violations::default();
            let limit = page_size(&mut v, req.page_size);
            let uscc = uscc_field(&mut v, "uscc", &req.uscc);
            let token = req.page_token.trim();
            let after = match Uscc::parse(token) {
                _ if token.is_empty() => String::new(),
                Ok(u) => u.as_str().to_owned(),
                Err(_) => {
                    v.add("page_token", "is not a token this list gave out");
                    String::new()
                }
            };
            let tenant = req.tenant.trim();
            if !tenant.is_empty()
                && let Err(e) = Tenant::parse(tenant)
            {
                v.add("tenant", e.to_string());
            }
            let name = req.name_contains.trim();
            if name.chars().count() > 100 {
                v.add("name_contains", "must be at most 100 characters");
            }
            let mut statuses = Vec::new();
            for (i, s) in req.statuses.iter().enumerate() {
                match AgencyStatus::try_from(*s) {
                    Ok(st) if st != AgencyStatus::Unspecified => statuses.push(status_name(st)),
                    _ => v.add(format!("statuses[{i}]"), "is not a status of the register"),
                }
            }
            v.finish()?;
            let mut conn = self.store.db.acquire().await?;
            let register_version = log::size(&mut conn).await? as i64;
            let mut agencies = store::search(
                &mut conn,
                &Search {
                    tenant,
                    uscc: &uscc,
                    name_contains: name,
                    statuses,
                    after: &after,
                    limit: limit + 1,
                },
            )
            .await?;
            let next_page_token = if agencies.len() as i64 > limit {
                agencies.truncate(limit as usize);
                agencies.last().map(|a| a.uscc.clone()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(ListAgenciesResponse {
                agencies,
                next_page_token,
                register_version,
            })
        })
        .await
    }

    async fn get_agency(
        &self,
        request: Request<GetAgencyRequest>,
    ) -> Result<Response<GetAgencyResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            let mut v = Violations::default();
            v.require("uscc", &req.uscc);
            let uscc = uscc_field(&mut v, "uscc", &req.uscc);
            if req.changed_since < 0 {
                v.add("changed_since", "must not be negative");
            }
            v.finish()?;
            let mut conn = self.store.db.acquire().await?;
            let agency = store::agency(&mut conn, &uscc)
                .await?
                .ok_or_else(|| Error::not_found(format!("no agency {uscc} on the register")))?;
            if req.changed_since > 0 && agency.register_version <= req.changed_since {
                return Ok(GetAgencyResponse {
                    agency: None,
                    not_modified: true,
                });
            }
            Ok(GetAgencyResponse {
                agency: Some(agency),
                not_modified: false,
            })
        })
        .await
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            let mut v = Violations::default();
            let limit = page_size(&mut v, req.page_size);
            let uscc = uscc_field(&mut v, "uscc", &req.uscc);
            let token = req.page_token.trim();
            let after = if token.is_empty() {
                -1
            } else {
                match token.parse::<i64>() {
                    Ok(n) if n >= 0 => n,
                    _ => {
                        v.add("page_token", "is not a token this list gave out");
                        -1
                    }
                }
            };
            let mut kinds = Vec::new();
            for (i, k) in req.kinds.iter().enumerate() {
                match NoticeKind::try_from(*k) {
                    Ok(kind) if kind != NoticeKind::Unspecified => kinds.push(kind_name(kind)),
                    _ => v.add(format!("kinds[{i}]"), "is not a kind of notice"),
                }
            }
            v.finish()?;
            let mut conn = self.store.db.acquire().await?;
            let mut rows = store::notices(&mut conn, &uscc, &kinds, after, limit + 1).await?;
            let next_page_token = if rows.len() as i64 > limit {
                rows.truncate(limit as usize);
                rows.last().map(|n| n.seq.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(ListNoticesResponse {
                notices: rows.into_iter().map(notice_proto).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn get_fee_schedule(
        &self,
        request: Request<GetFeeScheduleRequest>,
    ) -> Result<Response<GetFeeScheduleResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            let mut v = Violations::default();
            v.require("uscc", &req.uscc);
            let uscc = uscc_field(&mut v, "uscc", &req.uscc);
            v.finish()?;
            let mut conn = self.store.db.acquire().await?;
            let agency = store::agency(&mut conn, &uscc)
                .await?
                .ok_or_else(|| Error::not_found(format!("no agency {uscc} on the register")))?;
            Ok(GetFeeScheduleResponse {
                uscc: agency.uscc,
                items: agency.fee_items,
                register_version: agency.register_version,
            })
        })
        .await
    }

    async fn get_register_head(
        &self,
        request: Request<GetRegisterHeadRequest>,
    ) -> Result<Response<GetRegisterHeadResponse>, Status> {
        self.authn.context(&request)?;
        edge::read(async {
            let mut conn = self.store.db.acquire().await?;
            let c = self.checkpoint_of(&mut conn, "size", 0).await?;
            Ok(GetRegisterHeadResponse {
                size: c.size as i64,
                root_hash: c.root,
                checkpoint: c.note,
                verifier_key: self.key.verifier_key(),
            })
        })
        .await
    }

    async fn get_notice_proof(
        &self,
        request: Request<GetNoticeProofRequest>,
    ) -> Result<Response<GetNoticeProofResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            if req.sequence < 0 {
                return Err(Error::invalid_field("sequence", "must not be negative"));
            }
            let mut conn = self.store.db.acquire().await?;
            let c = self
                .checkpoint_of(&mut conn, "tree_size", req.tree_size)
                .await?;
            let n = req.sequence as u64;
            if n >= c.size {
                return Err(Error::invalid_field(
                    "sequence",
                    format!("is not in the tree of size {}", c.size),
                ));
            }
            let notice = store::notice_at(&mut conn, n)
                .await?
                .ok_or_else(|| StorageError::Corrupt(format!("notice {n} is missing")))?;
            let proof = log::prove_leaf(&mut conn, c.size, n).await?;
            Ok(GetNoticeProofResponse {
                notice: Some(notice_proto(notice)),
                tree_size: c.size as i64,
                proof: proof_bytes(proof),
                checkpoint: c.note,
            })
        })
        .await
    }

    async fn publish_correction(
        &self,
        request: Request<PublishCorrectionRequest>,
    ) -> Result<Response<PublishCorrectionResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        ctx.require(&[PrincipalKind::Regulator])?;
        let req = request.into_inner();
        let checked = self.check_correction(&ctx, &req).await;
        edge::call(&self.store, &ctx, "PublishCorrection", checked, |uscc| {
            self.correct(&ctx, &req, uscc)
        })
        .await
    }

    async fn erase_notice(
        &self,
        request: Request<EraseNoticeRequest>,
    ) -> Result<Response<EraseNoticeResponse>, Status> {
        let ctx = self.authn.context(&request)?;
        ctx.require(&[PrincipalKind::Regulator])?;
        let req = request.into_inner();
        let checked = self.check_erasure(&ctx, &req).await;
        edge::call(&self.store, &ctx, "EraseNotice", checked, |seq| {
            self.erase(&ctx, &req, seq)
        })
        .await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        self.authn.context(&request)?;
        let req = request.into_inner();
        edge::read(async {
            let mut conn = self.store.db.acquire().await?;
            let to = self
                .checkpoint_of(&mut conn, "to_size", req.to_size)
                .await?;
            if req.from_size <= 0 {
                return Err(Error::invalid_field("from_size", "must be positive"));
            }
            let from = self
                .checkpoint_of(&mut conn, "from_size", req.from_size)
                .await?;
            if from.size > to.size {
                return Err(Error::invalid_field(
                    "from_size",
                    format!("must not exceed to_size ({})", to.size),
                ));
            }
            let proof = log::prove_consistency(&mut conn, to.size, from.size).await?;
            Ok(GetConsistencyProofResponse {
                from_size: from.size as i64,
                to_size: to.size as i64,
                proof: proof_bytes(proof),
                from_checkpoint: from.note,
                to_checkpoint: to.note,
            })
        })
        .await
    }
}
