//! The datapush service's gRPC methods, one line each, to the use case that carries it out.

use creditmesh_proto::datapush::v1::data_push_service_server::DataPushService;
use creditmesh_proto::datapush::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::state::Api;

#[tonic::async_trait]
impl DataPushService for Api {
    async fn push_records(
        &self,
        request: Request<Streaming<PushRecordsRequest>>,
    ) -> Result<Response<crate::push::Acks>, Status> {
        crate::push::push_records(self, request).await
    }

    async fn get_record(
        &self,
        request: Request<GetRecordRequest>,
    ) -> Result<Response<GetRecordResponse>, Status> {
        crate::reads::get_record(self, request).await
    }

    async fn find_records(
        &self,
        request: Request<FindRecordsRequest>,
    ) -> Result<Response<FindRecordsResponse>, Status> {
        crate::reads::find_records(self, request).await
    }

    async fn file_objection(
        &self,
        request: Request<FileObjectionRequest>,
    ) -> Result<Response<FileObjectionResponse>, Status> {
        crate::objections::file_objection(self, request).await
    }

    async fn upload_objection_material(
        &self,
        request: Request<Streaming<UploadObjectionMaterialRequest>>,
    ) -> Result<Response<UploadObjectionMaterialResponse>, Status> {
        crate::materials::upload_objection_material(self, request).await
    }

    async fn read_objection_material(
        &self,
        request: Request<ReadObjectionMaterialRequest>,
    ) -> Result<Response<creditmesh_rpc::download::Download<ReadObjectionMaterialResponse>>, Status>
    {
        crate::materials::read_objection_material(self, request).await
    }

    async fn resolve_objection(
        &self,
        request: Request<ResolveObjectionRequest>,
    ) -> Result<Response<ResolveObjectionResponse>, Status> {
        crate::objections::resolve_objection(self, request).await
    }

    async fn list_objections(
        &self,
        request: Request<ListObjectionsRequest>,
    ) -> Result<Response<ListObjectionsResponse>, Status> {
        crate::objections::list_objections(self, request).await
    }

    async fn add_subject_statement(
        &self,
        request: Request<AddSubjectStatementRequest>,
    ) -> Result<Response<AddSubjectStatementResponse>, Status> {
        crate::objections::add_subject_statement(self, request).await
    }

    async fn issue_subject_access_code(
        &self,
        request: Request<IssueSubjectAccessCodeRequest>,
    ) -> Result<Response<IssueSubjectAccessCodeResponse>, Status> {
        crate::objections::issue_subject_access_code(self, request).await
    }

    async fn get_subject_report(
        &self,
        request: Request<GetSubjectReportRequest>,
    ) -> Result<Response<GetSubjectReportResponse>, Status> {
        crate::reads::get_subject_report(self, request).await
    }

    async fn record_agency_use(
        &self,
        request: Request<RecordAgencyUseRequest>,
    ) -> Result<Response<RecordAgencyUseResponse>, Status> {
        crate::reads::record_agency_use(self, request).await
    }

    async fn list_correction_notices(
        &self,
        request: Request<ListCorrectionNoticesRequest>,
    ) -> Result<Response<ListCorrectionNoticesResponse>, Status> {
        crate::reads::list_correction_notices(self, request).await
    }
}
