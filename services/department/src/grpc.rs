//! The referral receiver's gRPC methods, in both versions of the contract, one line each.

use creditmesh_proto::complaints::{v1, v2};
use tonic::{Request, Response, Status};

use crate::receiving::Receiver;

#[tonic::async_trait]
impl v2::referral_receiver_service_server::ReferralReceiverService for Receiver {
    async fn receive_referral(
        &self,
        request: Request<v2::ReceiveReferralRequest>,
    ) -> Result<Response<v2::ReceiveReferralResponse>, Status> {
        crate::receiving::receive_v2(self, request).await
    }
}

/// The contract as first published: the referral as a message, kept and hashed as this node
/// encodes it.
#[tonic::async_trait]
impl v1::referral_receiver_service_server::ReferralReceiverService for Receiver {
    async fn receive_referral(
        &self,
        request: Request<v1::ReceiveReferralRequest>,
    ) -> Result<Response<v1::ReceiveReferralResponse>, Status> {
        crate::receiving::receive_v1(self, request).await
    }
}
