//! The events datapush consumes.

use crate::{agencies, cases};

/// The register's changes, and the referrals departments receive and decline.
pub(crate) struct Events;

#[tonic::async_trait]
impl creditmesh_rpc::sink::EventHandler for Events {
    async fn apply(
        &self,
        tx: &mut creditmesh_storage::Tx,
        event: &creditmesh_proto::events::v1::Event,
    ) -> Result<creditmesh_rpc::sink::Applied, creditmesh_domain::Error> {
        use creditmesh_proto::events::v1::{ReferralDeclined, ReferralReceived, RegisterChanged};
        let kind = event.r#type.as_str();
        if kind == RegisterChanged::TYPE {
            agencies::changed(tx, event).await
        } else if kind == ReferralReceived::TYPE {
            cases::received(tx, event).await
        } else if kind == ReferralDeclined::TYPE {
            cases::declined(tx, event).await
        } else {
            Ok(creditmesh_rpc::sink::Applied::Done)
        }
    }
}
