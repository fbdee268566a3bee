//! The events datapush consumes.

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::{Event, RegisterChanged};
use creditmesh_rpc::sink::{Applied, decode, occurred_micros};
use creditmesh_storage::Tx;

use crate::{agency_store, cases};

/// The register's changes, and the referrals departments receive and decline.
pub(crate) struct Events;

#[tonic::async_trait]
impl creditmesh_rpc::sink::EventHandler for Events {
    async fn apply(
        &self,
        tx: &mut creditmesh_storage::Tx,
        event: &creditmesh_proto::events::v1::Event,
    ) -> Result<creditmesh_rpc::sink::Applied, creditmesh_domain::Error> {
        use creditmesh_proto::events::v1::{ReferralDeclined, ReferralReceived};
        let kind = event.r#type.as_str();
        if kind == RegisterChanged::TYPE {
            register_changed(tx, event).await
        } else if kind == ReferralReceived::TYPE {
            cases::received(tx, event).await
        } else if kind == ReferralDeclined::TYPE {
            cases::declined(tx, event).await
        } else {
            Ok(creditmesh_rpc::sink::Applied::Done)
        }
    }
}

/// Records a change of the register; a notice older than what is known changes nothing.
async fn register_changed(tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
    let e: RegisterChanged = decode(event)?;
    agency_store::put(tx, &e.uscc, &e.tenant, &e.status, occurred_micros(event)).await?;
    Ok(Applied::Done)
}
