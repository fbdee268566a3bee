//! The register's gRPC service: what every use case shares, and one line per method.

use std::sync::Arc;

use creditmesh_domain::Error;
use creditmesh_domain::error::Violations;
use creditmesh_domain::uscc::Uscc;
use creditmesh_proto::disclosure::v1::disclosure_service_server::DisclosureService;
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::{Authn, CallContext, ServiceStore, timestamp};
use tonic::{Request, Response, Status};

use crate::checkpoint::LogKeys;
use crate::store::NoticeRow;
use crate::{decisions, proofs, reads};

pub const MAX_PAGE: i32 = 100;
/// The longest correction text, in characters.
pub const MAX_CORRECTION_CHARS: usize = 2000;
const DEFAULT_PAGE: i32 = 20;

pub struct Api {
    pub store: ServiceStore,
    pub authn: Authn,
    pub key: Arc<LogKeys>,
    pub register: Arc<creditmesh_rpc::service::RegisterConfig>,
}

pub(crate) fn page_size(v: &mut Violations, size: i32) -> i64 {
    creditmesh_domain::page::size(v, size, DEFAULT_PAGE, MAX_PAGE)
}

pub(crate) fn uscc_field(v: &mut Violations, field: &str, value: &str) -> String {
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

pub(crate) fn notice_proto(r: NoticeRow) -> Notice {
    let kind = crate::store::kind_of(&r.kind);
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

/// A prefecture acts on the register only for the agencies whose filing it holds; the region
/// for all.
pub(crate) fn holds(ctx: &CallContext, tenant: &str) -> Result<(), Error> {
    let own = &ctx.principal.tenant;
    if !own.is_region() && tenant != own.to_string() {
        return Err(Error::permission_denied(
            "a prefecture acts only on the notices of agencies whose filing it holds",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl DisclosureService for Api {
    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> Result<Response<ListAgenciesResponse>, Status> {
        reads::list_agencies(self, request).await
    }

    async fn get_agency(
        &self,
        request: Request<GetAgencyRequest>,
    ) -> Result<Response<GetAgencyResponse>, Status> {
        reads::get_agency(self, request).await
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        reads::list_notices(self, request).await
    }

    async fn get_fee_schedule(
        &self,
        request: Request<GetFeeScheduleRequest>,
    ) -> Result<Response<GetFeeScheduleResponse>, Status> {
        reads::get_fee_schedule(self, request).await
    }

    async fn get_register_head(
        &self,
        request: Request<GetRegisterHeadRequest>,
    ) -> Result<Response<GetRegisterHeadResponse>, Status> {
        proofs::get_register_head(self, request).await
    }

    async fn get_notice_proof(
        &self,
        request: Request<GetNoticeProofRequest>,
    ) -> Result<Response<GetNoticeProofResponse>, Status> {
        proofs::get_notice_proof(self, request).await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        proofs::get_consistency_proof(self, request).await
    }

    async fn get_tile(
        &self,
        request: Request<GetTileRequest>,
    ) -> Result<Response<GetTileResponse>, Status> {
        proofs::get_tile(self, request).await
    }

    async fn publish_correction(
        &self,
        request: Request<PublishCorrectionRequest>,
    ) -> Result<Response<PublishCorrectionResponse>, Status> {
        decisions::publish_correction(self, request).await
    }

    async fn erase_notice(
        &self,
        request: Request<EraseNoticeRequest>,
    ) -> Result<Response<EraseNoticeResponse>, Status> {
        decisions::erase_notice(self, request).await
    }
}
