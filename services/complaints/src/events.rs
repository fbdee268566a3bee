//! Who holds each agency's filing, as the register says (filing's `register_changed`): a
//! complaint about an agency on the register goes to that authority; about any other agency,
//! to the prefecture of its registration division (the region outside Xinjiang). Also takes
//! what datapush has to tell a subject who objected (Art. 22) into the notification outbox,
//! and review's Art. 15(3) referrals into the referrals delivered to departments' nodes.

use std::sync::Arc;

use crate::config::ReferralsConfig;
use creditmesh_domain::{Error, department, tenant::REGION};
use creditmesh_proto::complaints::v1::Referral;
use creditmesh_proto::events::v1::{Event, RegisterChanged, RevocationReferred, SubjectTold};
use creditmesh_rpc::sink::{Applied, EventHandler, decode, occurred_micros};
use creditmesh_rpc::timestamp;
use creditmesh_storage::Tx;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::referral_store::{self, NewReferral};

pub struct Handler {
    pub referrals: Arc<ReferralsConfig>,
    /// Opens the contact a subject's notice carries sealed, to seal it again for the sender.
    pub contacts: Arc<creditmesh_pki::ContactKey>,
}

impl Handler {
    /// An agency revoked under Art. 15(3) is referred to the department the event names, at
    /// the holding authority's level when a node of it is configured there, else at the
    /// region's (中国人民银行新疆分行). Delivered as any referral is, retried until a node answers.
    async fn refer_revocation(&self, tx: &mut Tx, event: &Event) -> Result<(), Error> {
        let e: RevocationReferred = decode(event)?;
        let at = occurred_micros(event);
        let holder = event.tenant.as_str();
        let department_tenant = if self.referrals.node(&e.department, holder).is_some() {
            holder.to_owned()
        } else {
            REGION.to_string()
        };
        let reason = format!("Art. 15(3) 由相关管理部门依法处置: {}", e.reason);
        let payload = Referral {
            referral_id: event.id.clone(),
            department: department::value_of(&e.department),
            department_tenant: department_tenant.clone(),
            from_tenant: holder.to_owned(),
            agency_uscc: e.uscc.clone(),
            agency_name: e.agency_name.clone(),
            subject: "撤销建档：未取得合法征信、信用评级业务资质，违规开展征信、信用评级业务（第十五条第三项） \
                      Filing revoked: credit reporting or rating without the licence (Art. 15(3))"
                .into(),
            description: format!(
                "filing {} of {} revoked ({}); no new filing is accepted before {} ends: {}",
                e.filing_id, e.uscc, e.ground, e.ban_ends_on, e.reason
            ),
            referred_at: Some(timestamp(at)),
            reason: reason.clone(),
            revoked_filing_id: e.filing_id.clone(),
            ..Default::default()
        }
        .encode_to_vec();
        referral_store::insert(
            tx,
            &NewReferral {
                referral_id: &event.id,
                tenant: holder,
                tracking_number: "",
                department: &e.department,
                department_tenant: &department_tenant,
                reason: &reason,
                referred_at: at,
                referred_by: &event.principal,
                payload: &payload,
                payload_sha256: &hex::encode(Sha256::digest(&payload)),
                sealed_contact: "",
                shares_evidence: false,
                by_letter: false,
            },
        )
        .await?;
        tracing::info!(referral_id = %event.id, filing_id = %e.filing_id, department = %e.department, %department_tenant, "revocation referred (Art. 15(3))");
        Ok(())
    }
}

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        if event.r#type == SubjectTold::TYPE {
            // What datapush tells a subject who objected goes out as complainants are told.
            let e: SubjectTold = decode(event)?;
            let contact = if e.sealed_contact.is_empty() {
                // An event written before contacts travelled sealed.
                e.contact
            } else {
                self.contacts
                    .open(&e.objection_id, &e.sealed_contact)
                    .map_err(|err| {
                        Error::invalid_field("sealed_contact", format!("does not open: {err}"))
                    })?
            };
            crate::notify::queue_to(
                tx,
                &self.contacts,
                &event.tenant,
                &e.objection_id,
                &contact,
                &e.subject,
                &e.body,
                creditmesh_rpc::sink::occurred_micros(event),
            )
            .await?;
            return Ok(Applied::Done);
        }
        if event.r#type == RevocationReferred::TYPE {
            self.refer_revocation(tx, event).await?;
            return Ok(Applied::Done);
        }
        if event.r#type != RegisterChanged::TYPE {
            return Ok(Applied::Done);
        }
        let e: RegisterChanged = decode(event)?;
        let at = creditmesh_rpc::sink::occurred_micros(event);
        crate::store::put_holder(tx, &e.uscc, &e.tenant, at).await?;
        Ok(Applied::Done)
    }
}
