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
            "complaints.complaint_submitted" => {
                record(tx, event, "complaint", "agency_uscc", |p| {
                    format!(
                        "complaint received: {}",
                        p["subject"].as_str().unwrap_or_default()
                    )
                })
                .await
            }
            "filing.submitted" => {
                record(tx, event, "filing", "uscc", |p| {
                    format!(
                        "filing {} submitted",
                        p["filing_id"].as_str().unwrap_or_default()
                    )
                })
                .await
            }
            "filing.change_submitted" => {
                record(tx, event, "change", "uscc", |p| {
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
                record(tx, event, "annual_report", "uscc", |p| {
                    format!(
                        "annual report for {} submitted",
                        p["year"].as_i64().unwrap_or_default()
                    )
                })
                .await
            }
            "filing.deregistration_requested" => {
                record(tx, event, "deregistration", "uscc", |p| {
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

/// An event about an agency (named by the payload's `uscc_key`) goes into its credit file
/// under `kind`.
async fn record(
    tx: &mut Tx,
    event: &Event,
    kind: &str,
    uscc_key: &str,
    summary: impl Fn(&Value) -> String,
) -> Result<(), Error> {
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|e| Error::invalid_field("event.payload", e.to_string()))?;
    let uscc = Uscc::parse(payload[uscc_key].as_str().unwrap_or_default())
        .map_err(|e| Error::invalid_field(format!("event.payload.{uscc_key}"), e.to_string()))?;
    let recorded_at = creditmesh_rpc::sink::occurred_micros(event);
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
