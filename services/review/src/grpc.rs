//! The review service's gRPC methods, one line each, to the use case that carries it out.

use creditmesh_proto::review::v1::review_service_server::ReviewService;
use creditmesh_proto::review::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::state::Api;

#[tonic::async_trait]
impl ReviewService for Api {
    async fn record_interview(
        &self,
        request: Request<RecordInterviewRequest>,
    ) -> Result<Response<RecordInterviewResponse>, Status> {
        crate::inspection::record_interview(self, request).await
    }

    async fn record_inspection(
        &self,
        request: Request<RecordInspectionRequest>,
    ) -> Result<Response<RecordInspectionResponse>, Status> {
        crate::inspection::record_inspection(self, request).await
    }

    async fn record_finding(
        &self,
        request: Request<RecordFindingRequest>,
    ) -> Result<Response<RecordFindingResponse>, Status> {
        crate::inspection::record_finding(self, request).await
    }

    async fn set_risk_tier(
        &self,
        request: Request<SetRiskTierRequest>,
    ) -> Result<Response<SetRiskTierResponse>, Status> {
        crate::inspection::set_risk_tier(self, request).await
    }

    async fn issue_rectification_order(
        &self,
        request: Request<IssueRectificationOrderRequest>,
    ) -> Result<Response<IssueRectificationOrderResponse>, Status> {
        crate::rectification::issue_rectification_order(self, request).await
    }

    async fn record_rectification_outcome(
        &self,
        request: Request<RecordRectificationOutcomeRequest>,
    ) -> Result<Response<RecordRectificationOutcomeResponse>, Status> {
        crate::rectification::record_rectification_outcome(self, request).await
    }

    async fn revoke_filing(
        &self,
        request: Request<RevokeFilingRequest>,
    ) -> Result<Response<RevokeFilingResponse>, Status> {
        crate::revocation::revoke_filing(self, request).await
    }

    async fn record_disposal(
        &self,
        request: Request<RecordDisposalRequest>,
    ) -> Result<Response<RecordDisposalResponse>, Status> {
        crate::revocation::record_disposal(self, request).await
    }

    async fn draw_spot_check(
        &self,
        request: Request<DrawSpotCheckRequest>,
    ) -> Result<Response<DrawSpotCheckResponse>, Status> {
        crate::inspection::draw_spot_check(self, request).await
    }

    async fn list_review_tasks(
        &self,
        request: Request<ListReviewTasksRequest>,
    ) -> Result<Response<ListReviewTasksResponse>, Status> {
        crate::reads::list_review_tasks(self, request).await
    }

    async fn get_review_task(
        &self,
        request: Request<GetReviewTaskRequest>,
    ) -> Result<Response<GetReviewTaskResponse>, Status> {
        crate::reads::get_review_task(self, request).await
    }

    async fn decide_review_task(
        &self,
        request: Request<DecideReviewTaskRequest>,
    ) -> Result<Response<DecideReviewTaskResponse>, Status> {
        crate::deciding::decide_review_task(self, request).await
    }

    async fn upsert_dishonesty_entry(
        &self,
        request: Request<UpsertDishonestyEntryRequest>,
    ) -> Result<Response<UpsertDishonestyEntryResponse>, Status> {
        crate::listing::upsert_dishonesty_entry(self, request).await
    }

    async fn import_dishonesty_list(
        &self,
        request: Request<Streaming<ImportDishonestyListRequest>>,
    ) -> Result<Response<ImportDishonestyListResponse>, Status> {
        crate::listing::import_dishonesty_list(self, request).await
    }

    async fn remove_dishonesty_entry(
        &self,
        request: Request<RemoveDishonestyEntryRequest>,
    ) -> Result<Response<RemoveDishonestyEntryResponse>, Status> {
        crate::listing::remove_dishonesty_entry(self, request).await
    }

    async fn list_dishonesty_entries(
        &self,
        request: Request<ListDishonestyEntriesRequest>,
    ) -> Result<Response<ListDishonestyEntriesResponse>, Status> {
        crate::listing::list_dishonesty_entries(self, request).await
    }

    async fn get_credit_file(
        &self,
        request: Request<GetCreditFileRequest>,
    ) -> Result<Response<GetCreditFileResponse>, Status> {
        crate::reads::get_credit_file(self, request).await
    }
}
