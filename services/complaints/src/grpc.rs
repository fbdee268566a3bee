//! The complaints service's gRPC methods, one line each, to the use case that carries it out.

use creditmesh_proto::complaints::v1::complaint_service_server::ComplaintService;
use creditmesh_proto::complaints::v1::*;
use tonic::{Request, Response, Status};

use crate::state::Api;

#[tonic::async_trait]
impl ComplaintService for Api {
    async fn submit_complaint(
        &self,
        request: Request<SubmitComplaintRequest>,
    ) -> Result<Response<SubmitComplaintResponse>, Status> {
        crate::submission::submit_complaint(self, request).await
    }

    async fn track_complaint(
        &self,
        request: Request<TrackComplaintRequest>,
    ) -> Result<Response<TrackComplaintResponse>, Status> {
        crate::tracking::track_complaint(self, request).await
    }

    async fn upload_evidence(
        &self,
        request: Request<tonic::Streaming<UploadEvidenceRequest>>,
    ) -> Result<Response<UploadEvidenceResponse>, Status> {
        crate::evidence::upload_evidence(self, request).await
    }

    async fn read_evidence(
        &self,
        request: Request<ReadEvidenceRequest>,
    ) -> Result<Response<creditmesh_rpc::download::Download<ReadEvidenceResponse>>, Status> {
        crate::evidence::read_evidence(self, request).await
    }

    async fn list_complaints(
        &self,
        request: Request<ListComplaintsRequest>,
    ) -> Result<Response<ListComplaintsResponse>, Status> {
        crate::handling::list_complaints(self, request).await
    }

    async fn get_complaint(
        &self,
        request: Request<GetComplaintRequest>,
    ) -> Result<Response<GetComplaintResponse>, Status> {
        crate::handling::get_complaint(self, request).await
    }

    async fn accept_complaint(
        &self,
        request: Request<AcceptComplaintRequest>,
    ) -> Result<Response<AcceptComplaintResponse>, Status> {
        crate::handling::accept_complaint(self, request).await
    }

    async fn resolve_complaint(
        &self,
        request: Request<ResolveComplaintRequest>,
    ) -> Result<Response<ResolveComplaintResponse>, Status> {
        crate::handling::resolve_complaint(self, request).await
    }

    async fn refer_complaint(
        &self,
        request: Request<ReferComplaintRequest>,
    ) -> Result<Response<ReferComplaintResponse>, Status> {
        crate::referrals::refer_complaint(self, request).await
    }

    async fn list_referrals(
        &self,
        request: Request<ListReferralsRequest>,
    ) -> Result<Response<ListReferralsResponse>, Status> {
        crate::referrals::list_referrals(self, request).await
    }

    async fn acknowledge_referral(
        &self,
        request: Request<AcknowledgeReferralRequest>,
    ) -> Result<Response<AcknowledgeReferralResponse>, Status> {
        crate::referrals::acknowledge_referral(self, request).await
    }

    async fn decline_referral(
        &self,
        request: Request<DeclineReferralRequest>,
    ) -> Result<Response<DeclineReferralResponse>, Status> {
        crate::referrals::decline_referral(self, request).await
    }
}
