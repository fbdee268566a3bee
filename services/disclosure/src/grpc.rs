//! The disclosure service's gRPC methods, one line each, to the use case that carries it out.

use creditmesh_proto::disclosure::v1::disclosure_service_server::DisclosureService;
use creditmesh_proto::disclosure::v1::*;
use tonic::{Request, Response, Status};

use crate::state::Api;

#[tonic::async_trait]
impl DisclosureService for Api {
    async fn list_agencies(
        &self,
        request: Request<ListAgenciesRequest>,
    ) -> Result<Response<ListAgenciesResponse>, Status> {
        crate::reads::list_agencies(self, request).await
    }

    async fn get_agency(
        &self,
        request: Request<GetAgencyRequest>,
    ) -> Result<Response<GetAgencyResponse>, Status> {
        crate::reads::get_agency(self, request).await
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        crate::reads::list_notices(self, request).await
    }

    async fn get_fee_schedule(
        &self,
        request: Request<GetFeeScheduleRequest>,
    ) -> Result<Response<GetFeeScheduleResponse>, Status> {
        crate::reads::get_fee_schedule(self, request).await
    }

    async fn get_register_head(
        &self,
        request: Request<GetRegisterHeadRequest>,
    ) -> Result<Response<GetRegisterHeadResponse>, Status> {
        crate::proofs::get_register_head(self, request).await
    }

    async fn get_notice_proof(
        &self,
        request: Request<GetNoticeProofRequest>,
    ) -> Result<Response<GetNoticeProofResponse>, Status> {
        crate::proofs::get_notice_proof(self, request).await
    }

    async fn get_consistency_proof(
        &self,
        request: Request<GetConsistencyProofRequest>,
    ) -> Result<Response<GetConsistencyProofResponse>, Status> {
        crate::proofs::get_consistency_proof(self, request).await
    }

    async fn get_tile(
        &self,
        request: Request<GetTileRequest>,
    ) -> Result<Response<GetTileResponse>, Status> {
        crate::proofs::get_tile(self, request).await
    }

    async fn publish_correction(
        &self,
        request: Request<PublishCorrectionRequest>,
    ) -> Result<Response<PublishCorrectionResponse>, Status> {
        crate::decisions::publish_correction(self, request).await
    }

    async fn erase_notice(
        &self,
        request: Request<EraseNoticeRequest>,
    ) -> Result<Response<EraseNoticeResponse>, Status> {
        crate::decisions::erase_notice(self, request).await
    }
}
