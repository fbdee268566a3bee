//! What filing tells the public register (disclosure): once a filing is approved, every change
//! of what the register shows of it, with the whole record as it stands, in the transaction
//! that made the change.

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::{FeeItem, FiledDocument, PublicFacts, RegisterChanged};
use creditmesh_storage::sqlx::AnyConnection;
use creditmesh_storage::{Infra, NewEvent, StorageError, Tx};

use crate::model::{Documents, Facts};
use crate::store;

/// What happened to the public record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Published,
    Changed,
    Revoked,
    Deregistering,
    DeregistrationRefused,
    Deregistered,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::Published => "published",
            Notice::Changed => "changed",
            Notice::Revoked => "revoked",
            Notice::Deregistering => "deregistering",
            Notice::DeregistrationRefused => "deregistration_refused",
            Notice::Deregistered => "deregistered",
        }
    }
}

/// The register's notice and its detail: a revocation's ground or a change's fields.
pub struct Tell<'a> {
    pub filing_id: &'a str,
    pub notice: Notice,
    pub ground: &'a str,
    pub changed_fields: Vec<String>,
    pub at: i64,
    pub principal: &'a str,
}

/// Publishes the filing's public record, as it stands in `tx`, to the register.
pub async fn tell(tx: &mut Tx, infra: &Infra, t: Tell<'_>) -> Result<(), Error> {
    let Some(filing) = store::get_filing(tx, t.filing_id).await? else {
        return Err(Error::not_found(format!("no filing {}", t.filing_id)));
    };
    let facts: Facts = serde_json::from_str(&filing.facts)
        .map_err(|e| Error::internal(format!("stored facts: {e}")))?;
    let documents: Documents = serde_json::from_str(&filing.documents)
        .map_err(|e| Error::internal(format!("stored documents: {e}")))?;
    let event = RegisterChanged {
        filing_id: filing.filing_id.clone(),
        tenant: filing.tenant.clone(),
        uscc: filing.uscc.clone(),
        notice: t.notice.as_str().into(),
        status: filing.status.clone(),
        facts: Some(PublicFacts {
            agency_name: facts.agency_name,
            registered_address: facts.registered_address,
            registered_capital_yuan: facts.registered_capital_yuan,
            business_scope: facts.business_scope,
            legal_representative_name: facts.legal_representative.name,
            professional_staff_count: facts.professional_staff_count,
            registered_division: facts.registered_division,
            fee_items: facts
                .fee_items
                .into_iter()
                .map(|i| FeeItem {
                    service_item: i.service_item,
                    fee: i.fee,
                    unit: i.unit,
                    basis: i.basis,
                })
                .collect(),
        }),
        ground: t.ground.into(),
        changed_fields: t.changed_fields,
        documents: filed_documents(tx, &filing.uscc, &documents).await?,
        filed_on: approved_on(tx, &filing.tenant, &filing.filing_id).await?,
        reviewing_tenant: filing.reviewing_tenant,
    };
    infra
        .publish(
            tx,
            RegisterChanged::CONSUMERS,
            NewEvent {
                event_type: RegisterChanged::TYPE,
                tenant: &filing.tenant,
                principal: t.principal,
                subject: &filing.filing_id,
                payload: prost::Message::encode_to_vec(&event),
            },
            t.at,
        )
        .await?;
    Ok(())
}

/// The names of the public facts that differ between `before` and `after` (Art. 12).
pub fn changed_fields(before: &Facts, after: &Facts) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, changed: bool| {
        if changed {
            out.push(name.to_owned());
        }
    };
    check("agency_name", before.agency_name != after.agency_name);
    check(
        "registered_address",
        before.registered_address != after.registered_address,
    );
    check(
        "registered_capital_yuan",
        before.registered_capital_yuan != after.registered_capital_yuan,
    );
    check(
        "business_scope",
        before.business_scope != after.business_scope,
    );
    check(
        "legal_representative",
        before.legal_representative != after.legal_representative,
    );
    check("chair", before.chair != after.chair);
    check(
        "general_manager",
        before.general_manager != after.general_manager,
    );
    check(
        "professional_staff_count",
        before.professional_staff_count != after.professional_staff_count,
    );
    check(
        "registered_division",
        before.registered_division != after.registered_division,
    );
    check("fee_items", before.fee_items != after.fee_items);
    out
}

async fn filed_documents(
    conn: &mut AnyConnection,
    uscc: &str,
    documents: &Documents,
) -> Result<Vec<FiledDocument>, StorageError> {
    // One read for all of them: the days the agency uploaded each of its documents.
    let uploaded = store::uploaded_at(conn, uscc).await?;
    let mut out = Vec::new();
    for (kind, hashes) in documents {
        for sha256 in hashes {
            out.push(FiledDocument {
                kind: kind.clone(),
                sha256: sha256.clone(),
                filed_on: uploaded.get(sha256).map(|at| day(*at)).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// The day the filing first became active.
async fn approved_on(
    conn: &mut AnyConnection,
    tenant: &str,
    filing_id: &str,
) -> Result<String, StorageError> {
    Ok(store::first_active_at(conn, tenant, filing_id)
        .await?
        .map(day)
        .unwrap_or_default())
}

fn day(micros: i64) -> String {
    creditmesh_domain::calendar::cst_date(micros)
        .map(creditmesh_domain::calendar::format_date)
        .unwrap_or_default()
}
