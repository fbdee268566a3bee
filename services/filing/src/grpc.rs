//! The filing service's gRPC methods, one line each, to the use case that carries it out.

use creditmesh_proto::filing::v1::filing_service_server::FilingService;
use creditmesh_proto::filing::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::state::Api;

#[tonic::async_trait]
impl FilingService for Api {
    async fn upload_document(
        &self,
        request: Request<Streaming<UploadDocumentRequest>>,
    ) -> Result<Response<UploadDocumentResponse>, Status> {
        crate::documents::upload_document(self, request).await
    }

    async fn submit_filing(
        &self,
        request: Request<SubmitFilingRequest>,
    ) -> Result<Response<SubmitFilingResponse>, Status> {
        crate::submission::submit_filing(self, request).await
    }

    async fn submit_change(
        &self,
        request: Request<SubmitChangeRequest>,
    ) -> Result<Response<SubmitChangeResponse>, Status> {
        crate::changes::submit_change(self, request).await
    }

    async fn submit_annual_report(
        &self,
        request: Request<SubmitAnnualReportRequest>,
    ) -> Result<Response<SubmitAnnualReportResponse>, Status> {
        crate::reports::submit_annual_report(self, request).await
    }

    async fn request_deregistration(
        &self,
        request: Request<RequestDeregistrationRequest>,
    ) -> Result<Response<RequestDeregistrationResponse>, Status> {
        crate::deregistration::request_deregistration(self, request).await
    }

    async fn get_filing(
        &self,
        request: Request<GetFilingRequest>,
    ) -> Result<Response<GetFilingResponse>, Status> {
        crate::reads::get_filing(self, request).await
    }

    async fn list_filings(
        &self,
        request: Request<ListFilingsRequest>,
    ) -> Result<Response<ListFilingsResponse>, Status> {
        crate::reads::list_filings(self, request).await
    }

    async fn read_document(
        &self,
        request: Request<ReadDocumentRequest>,
    ) -> Result<Response<crate::documents::DocumentStream>, Status> {
        crate::documents::read_document(self, request).await
    }
}
