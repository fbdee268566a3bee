//! Events the filing service publishes, and the review decisions it applies.

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::Event;
use creditmesh_rpc::sink::EventHandler;
use creditmesh_storage::Tx;
use serde_json::Value;

use crate::model::status as st;
use crate::store;

pub const FILING_SUBMITTED: &str = "filing.submitted";
pub const CHANGE_SUBMITTED: &str = "filing.change_submitted";
pub const ANNUAL_REPORT_SUBMITTED: &str = "filing.annual_report_submitted";
pub const DEREGISTRATION_REQUESTED: &str = "filing.deregistration_requested";

/// Every filing event goes to review; disclosure and datapush subscribe as they are built.
pub const CONSUMERS: &[&str] = &["review"];

/// Review's decision on a filing: `outcome` is `approved`, `forwarded` or `refused`.
pub const FILING_DECIDED: &str = "review.filing_decided";
/// A revocation (Art. 11, 15), with `ban_ends_on` when a 12-month re-filing ban applies.
pub const FILING_REVOKED: &str = "review.filing_revoked";
/// Review's decision on a change: the filed facts change only when `approved`.
pub const CHANGE_DECIDED: &str = "review.change_decided";
/// The regulator recorded the disposal of the credit-information database (Art. 18).
pub const DEREGISTRATION_COMPLETED: &str = "review.deregistration_completed";
/// Review recomputed a provisional review deadline with new calendar data.
pub const DEADLINE_RECOMPUTED: &str = "review.deadline_recomputed";

pub struct Handler;

fn field<'a>(payload: &'a Value, name: &str) -> Result<&'a str, Error> {
    payload[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid_field(format!("event.payload.{name}"), "is required"))
}

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<(), Error> {
        let payload: Value = match event.r#type.as_str() {
            FILING_DECIDED
            | FILING_REVOKED
            | CHANGE_DECIDED
            | DEREGISTRATION_COMPLETED
            | DEADLINE_RECOMPUTED => serde_json::from_slice(&event.payload)
                .map_err(|e| Error::invalid_field("event.payload", e.to_string()))?,
            _ => return Ok(()),
        };
        let at = creditmesh_rpc::sink::occurred_micros(event);
        let by = event.principal.as_str();
        match event.r#type.as_str() {
            DEADLINE_RECOMPUTED => {
                store::set_review_deadline(
                    tx,
                    field(&payload, "filing_id")?,
                    field(&payload, "due_date")?,
                    payload["provisional"].as_bool().unwrap_or(true),
                    field(&payload, "calendar_version")?,
                )
                .await?;
            }
            CHANGE_DECIDED => {
                let change_id = field(&payload, "change_id")?;
                let Some((tenant, filing_id, facts, state)) =
                    store::get_change(tx, change_id).await?
                else {
                    return Err(Error::not_found(format!("no change {change_id}")));
                };
                if state != "submitted" {
                    return Ok(());
                }
                let approved = payload["approved"].as_bool().unwrap_or(false);
                store::set_change_status(
                    tx,
                    change_id,
                    if approved { "approved" } else { "refused" },
                )
                .await?;
                if approved {
                    let parsed: crate::model::Facts = serde_json::from_str(&facts)
                        .map_err(|e| Error::internal(format!("stored change: {e}")))?;
                    store::set_facts(tx, &tenant, &filing_id, &parsed.agency_name, &facts).await?;
                }
                let Some(filing) = store::get_filing(tx, &filing_id).await? else {
                    return Ok(());
                };
                let note = format!(
                    "change {change_id} {}",
                    if approved { "approved" } else { "refused" }
                );
                store::add_history(tx, &tenant, &filing_id, &filing.status, at, by, &note).await?;
            }
            kind => {
                let filing_id = field(&payload, "filing_id")?;
                let Some(filing) = store::get_filing(tx, filing_id).await? else {
                    return Err(Error::not_found(format!("no filing {filing_id}")));
                };
                let (next, note) = match kind {
                    FILING_DECIDED => {
                        let next = match field(&payload, "outcome")? {
                            "approved" => st::ACTIVE,
                            "forwarded" => st::FORWARDED,
                            "refused" => st::REFUSED,
                            other => {
                                return Err(Error::invalid_field(
                                    "event.payload.outcome",
                                    format!("unknown outcome {other}"),
                                ));
                            }
                        };
                        (
                            next,
                            payload["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    }
                    FILING_REVOKED => {
                        let ground = payload["ground"].as_str().unwrap_or_default();
                        if let Some(ends) =
                            payload["ban_ends_on"].as_str().filter(|s| !s.is_empty())
                        {
                            store::put_ban(tx, &filing.uscc, ends, ground, &event.id).await?;
                        }
                        (st::REVOKED, format!("revoked: {ground}"))
                    }
                    _ => {
                        let record = payload["disposal"].to_string();
                        store::complete_deregistration(tx, &filing.tenant, filing_id, &record, at)
                            .await?;
                        (
                            st::DEREGISTERED,
                            format!("credit-information database disposed of: {record}"),
                        )
                    }
                };
                store::set_status(tx, &filing.tenant, filing_id, next).await?;
                store::add_history(tx, &filing.tenant, filing_id, next, at, by, &note).await?;
            }
        }
        Ok(())
    }
}
