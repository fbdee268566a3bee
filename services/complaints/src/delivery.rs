//! Delivers referrals to the departments' nodes over mutual TLS, retrying with backoff until
//! one answers with a receipt that verifies: signed by the key of a certificate the regional CA
//! issued to that very department, over the hash of what was sent. A referral is delivered once
//! however often it is sent (the node keeps the first copy and answers the same receipt) and
//! however many senders run (each attempt is claimed first by a guarded update).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ReferralsConfig;
use creditmesh_domain::PrincipalKind;
use creditmesh_domain::lifecycle::{Complaint as State, Machine, ReferralEvent};
use creditmesh_pki::{ClientTls, TlsFiles, receipt};
use creditmesh_proto::complaints::v1::Referral;
use creditmesh_proto::complaints::v2::ReceiveReferralRequest;
use creditmesh_proto::complaints::v2::referral_receiver_service_client::ReferralReceiverServiceClient;
use creditmesh_proto::events::v1::ReferralReceived;
use creditmesh_rpc::ServiceStore;
use creditmesh_storage::AuditEntry;
use creditmesh_storage::StorageError;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::referral_store::{self, Receipt, ReferralRow};
use crate::store;

/// How long a sender holds a referral it claimed before another may try it.
const CLAIM: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// Doubling from a second, at most five minutes.
fn backoff(attempts: i64) -> Duration {
    Duration::from_secs((1u64 << attempts.clamp(0, 10)).min(300))
}

pub struct Delivery {
    store: ServiceStore,
    tls: TlsFiles,
    trust_domain: String,
    /// By (department, division).
    nodes: HashMap<(String, String), ReferralReceiverServiceClient<Channel>>,
    /// Opens the complainant's contact into what is sent.
    contacts: creditmesh_pki::ContactKey,
}

impl Delivery {
    /// Channels to every configured department node, as the complaints service's identity.
    pub fn new(
        store: ServiceStore,
        pki_dir: &std::path::Path,
        trust_domain: &str,
        cfg: &ReferralsConfig,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let tls = TlsFiles::in_dir(pki_dir, "service-complaints");
        let client = ClientTls::client(tls.clone())?;
        creditmesh_rpc::listener::spawn_reloader(client.clone(), stop.clone());
        let mut nodes = HashMap::new();
        for d in &cfg.departments {
            let channel =
                creditmesh_rpc::client::mtls_channel(&d.url, client.clone(), &d.server_name)?;
            nodes.insert(
                (d.department.clone(), d.tenant.clone()),
                ReferralReceiverServiceClient::new(channel),
            );
        }
        Ok(Self {
            store,
            tls,
            trust_domain: trust_domain.to_owned(),
            nodes,
            contacts: creditmesh_pki::ContactKey::load(pki_dir)?,
        })
    }

    /// Sends what is due once; how many referrals were delivered.
    pub async fn deliver_due(&self) -> Result<usize, StorageError> {
        let now = self.store.now();
        let due = {
            let mut conn = self.store.db.acquire().await?;
            referral_store::due(&mut conn, now, 20).await?
        };
        let mut delivered = 0;
        for row in due {
            let claimed = {
                let mut conn = self.store.db.acquire().await?;
                referral_store::claim(
                    &mut conn,
                    &row.referral_id,
                    now,
                    now + CLAIM.as_micros() as i64,
                )
                .await?
            };
            if !claimed {
                continue;
            }
            match self.send(&row).await {
                Ok(receipt) => {
                    if self.record(&row, &receipt).await? {
                        delivered += 1;
                    }
                }
                Err(why) => {
                    let retry = backoff(row.attempts);
                    tracing::warn!(
                        referral_id = %row.referral_id,
                        department = %row.department,
                        department_tenant = %row.department_tenant,
                        attempts = row.attempts + 1,
                        retry_in_s = retry.as_secs(),
                        error = %why,
                        "referral not delivered yet"
                    );
                    let mut conn = self.store.db.acquire().await?;
                    referral_store::retry_at(
                        &mut conn,
                        &row.referral_id,
                        self.store.now() + retry.as_micros() as i64,
                        &why,
                    )
                    .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Sends one referral and checks the receipt it is answered with.
    async fn send(&self, row: &ReferralRow) -> Result<Verified, String> {
        let mut client = self
            .nodes
            .get(&(row.department.clone(), row.department_tenant.clone()))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no node of {} in {} is configured",
                    row.department, row.department_tenant
                )
            })?;
        let (_, referral) = crate::convert::as_sent(row, &self.contacts)?;
        let mut request = tonic::Request::new(ReceiveReferralRequest { referral });
        request.set_timeout(Duration::from_secs(20));
        let answer = client
            .receive_referral(request)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        let r = answer
            .receipt
            .ok_or_else(|| "the node answered without a receipt".to_owned())?;
        if r.referral_id != row.referral_id {
            return Err(format!("receipt names referral {:?}", r.referral_id));
        }
        if r.sha256 != row.payload_sha256 {
            return Err("receipt hash differs from what was sent".to_owned());
        }
        let at = r
            .received_at
            .ok_or_else(|| "receipt without a time".to_owned())?;
        let received_at = at.seconds * 1_000_000 + i64::from(at.nanos) / 1000;
        let statement = receipt::referral_statement(&r.referral_id, &r.sha256, received_at);
        let ca = self.tls.read_ca_pem().map_err(|e| e.to_string())?;
        let crls = self.tls.crls().map_err(|e| e.to_string())?;
        // Certificates are valid in real time, whatever clock the service counts deadlines by.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let signer = receipt::verify(
            &ca,
            &crls,
            &self.trust_domain,
            &r.certificate,
            statement.as_bytes(),
            &r.signature,
            now,
        )
        .map_err(|e| format!("receipt does not verify: {e}"))?;
        if signer.kind != PrincipalKind::Department
            || signer.subject != row.department
            || signer.tenant.to_string() != row.department_tenant
        {
            return Err(format!(
                "receipt signed by {signer}, not by {} of {}",
                row.department, row.department_tenant
            ));
        }
        Ok(Verified {
            received_at,
            signature: r.signature,
            certificate: r.certificate,
            signer: signer.spiffe_id(&self.trust_domain),
        })
    }

    /// Records a verified receipt; false when another sender recorded it first.
    async fn record(&self, row: &ReferralRow, v: &Verified) -> Result<bool, StorageError> {
        let mut tx = self.store.db.begin().await?;
        if referral_store::transition(&mut tx, &row.referral_id, ReferralEvent::Deliver)
            .await?
            .is_none()
        {
            return Ok(false);
        }
        referral_store::set_delivered(
            &mut tx,
            &row.referral_id,
            &Receipt {
                received_at: v.received_at,
                signature: &v.signature,
                certificate: &v.certificate,
            },
        )
        .await?;
        let sent = Referral::decode(row.payload.as_slice())
            .map_err(|e| StorageError::Corrupt(format!("referral {}: {e}", row.referral_id)))?;
        crate::referrals::publish_received(
            &self.store,
            &mut tx,
            &v.signer,
            &row.tenant,
            ReferralReceived {
                referral_id: row.referral_id.clone(),
                tracking_number: row.tracking_number.clone(),
                uscc: sent.agency_uscc,
                department: row.department.clone(),
                department_tenant: row.department_tenant.clone(),
                received_at: v.received_at,
                sent_on: String::new(),
            },
        )
        .await?;
        // A referral of a revocation (Art. 15(3)) has no complaint to note it in.
        if !row.tracking_number.is_empty() {
            store::add_history(
                &mut tx,
                &row.tenant,
                &row.tracking_number,
                State::Referred.name(),
                self.store.now(),
                &v.signer,
                (
                    &format!(
                        "received by {} of {} (signed receipt verified)",
                        row.department, row.department_tenant
                    ),
                    &format!(
                        "{}已签收（回执签名已核验）",
                        crate::convert::department_zh(&row.department, &row.department_tenant)
                    ),
                ),
            )
            .await?;
        }
        // The delivery is a state change like any call's: attributed to the department whose
        // node signed for it, in the referring authority's tenant.
        self.store
            .infra
            .audit(
                &mut tx,
                &AuditEntry {
                    at: self.store.now(),
                    principal: &v.signer,
                    tenant: &row.tenant,
                    method: DELIVERED,
                    request_id: &row.referral_id,
                    outcome: "ok",
                    detail: &format!(
                        "received by {} of {} at {} (signed receipt verified)",
                        row.department, row.department_tenant, v.received_at
                    ),
                },
            )
            .await?;
        tx.commit().await.map_err(StorageError::from)?;
        self.store.relay_wakeup().notify_one();
        tracing::info!(referral_id = %row.referral_id, tenant = %row.tenant, tracking_number = %row.tracking_number, "referral delivered");
        Ok(true)
    }
}

/// The audit trail's name for a referral delivered with a verified receipt.
pub const DELIVERED: &str = "referrals/delivered";

struct Verified {
    received_at: i64,
    signature: Vec<u8>,
    certificate: Vec<u8>,
    signer: String,
}

/// Delivers referrals as they come due, until `stop`.
pub async fn run(delivery: Arc<Delivery>, stop: CancellationToken) {
    let delivery = &delivery;
    creditmesh_rpc::timer::every(POLL, &stop, || async move {
        if let Err(e) = delivery.deliver_due().await {
            tracing::warn!(error = %e, "referrals not delivered");
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }
}
