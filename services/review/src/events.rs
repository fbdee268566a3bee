//! Events the review service consumes.

use creditmesh_domain::{Error, Uscc};
use creditmesh_proto::events::v1::Event;
use creditmesh_rpc::sink::EventHandler;
use creditmesh_storage::Tx;
use serde_json::Value;

use crate::store::{self, Entry};

pub struct Handler;

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<(), Error> {
        match event.r#type.as_str() {
            "complaints.complaint_submitted" => complaint_submitted(tx, event).await,
            "filing.submitted" => {
                filing_event(tx, event, "filing", |p| {
                    format!(
                        "filing {} submitted",
                        p["filing_id"].as_str().unwrap_or_default()
                    )
                })
                .await
            }
            "filing.change_submitted" => {
                filing_event(tx, event, "change", |p| {
                    let late = p["late"].as_bool().unwrap_or(false);
                    format!(
                        "change of {} reported {} working days after it{}",
                        p["changed_on"].as_str().unwrap_or_default(),
                        p["working_days_elapsed"].as_i64().unwrap_or_default(),
                        if late { ": late (Art. 12)" } else { "" }
                    )
                })
                .await
            }
            "filing.annual_report_submitted" => {
                filing_event(tx, event, "annual_report", |p| {
                    format!(
                        "annual report for {} submitted",
                        p["year"].as_i64().unwrap_or_default()
                    )
                })
                .await
            }
            "filing.deregistration_requested" => {
                filing_event(tx, event, "deregistration", |p| {
                    format!(
                        "deregistration requested: {}",
                        p["reason"].as_str().unwrap_or_default()
                    )
                })
                .await
            }
            _ => Ok(()),
        }
    }
}

/// A complaint about an agency goes into that agency's credit file.
async fn complaint_submitted(tx: &mut Tx, event: &Event) -> Result<(), Error> {
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|e| Error::invalid_field("event.payload", e.to_string()))?;
    let uscc = payload["agency_uscc"].as_str().unwrap_or_default();
    let uscc = Uscc::parse(uscc)
        .map_err(|e| Error::invalid_field("event.payload.agency_uscc", e.to_string()))?;
    let subject = payload["subject"].as_str().unwrap_or_default();
    let recorded_at = event
        .occurred_at
        .as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
        .unwrap_or_default();
    store::insert_entry(
        tx,
        &Entry {
            tenant: event.tenant.clone(),
            entry_id: event.id.clone(),
            uscc: uscc.to_string(),
            kind: "complaint".into(),
            recorded_at,
            principal: event.principal.clone(),
            summary: format!("complaint received: {subject}"),
            details: event.payload.clone(),
        },
    )
    .await?;
    Ok(())
}

/// A filing event goes into the agency's credit file under `kind`.
async fn filing_event(
    tx: &mut Tx,
    event: &Event,
    kind: &str,
    summary: impl Fn(&Value) -> String,
) -> Result<(), Error> {
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|e| Error::invalid_field("event.payload", e.to_string()))?;
    let uscc = Uscc::parse(payload["uscc"].as_str().unwrap_or_default())
        .map_err(|e| Error::invalid_field("event.payload.uscc", e.to_string()))?;
    let recorded_at = event
        .occurred_at
        .as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
        .unwrap_or_default();
    store::insert_entry(
        tx,
        &Entry {
            tenant: event.tenant.clone(),
            entry_id: event.id.clone(),
            uscc: uscc.to_string(),
            kind: kind.into(),
            recorded_at,
            principal: event.principal.clone(),
            summary: summary(&payload),
            details: event.payload.clone(),
        },
    )
    .await?;
    Ok(())
}
