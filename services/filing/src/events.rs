//! Events the filing service publishes, and the review decisions it applies.

use creditmesh_domain::Error;
use creditmesh_domain::lifecycle::{ChangeEvent, FilingEvent, Machine};
use creditmesh_proto::events::v1::Event;
use creditmesh_rpc::sink::{Applied, EventHandler};
use creditmesh_storage::Tx;
use serde_json::Value;

use crate::store;

pub const FILING_SUBMITTED: &str = "filing.submitted";
pub const CHANGE_SUBMITTED: &str = "filing.change_submitted";
pub const ANNUAL_REPORT_SUBMITTED: &str = "filing.annual_report_submitted";
pub const DEREGISTRATION_REQUESTED: &str = "filing.deregistration_requested";
/// A revocation filing decides itself: no annual report by the 1 July cut-off (Art. 11).
pub const REVOKED: &str = "filing.revoked";

/// Every filing event goes to review; disclosure and datapush subscribe as they are built.
pub const CONSUMERS: &[&str] = &["review"];

/// Review's decision on a filing: `outcome` is `approved`, `forwarded` or `refused`.
pub const FILING_DECIDED: &str = "review.filing_decided";
/// A revocation (Art. 11, 15), with `ban_ends_on` when a 12-month re-filing ban applies.
pub const FILING_REVOKED: &str = "review.filing_revoked";
/// Review's decision on a change: the filed facts change only when `approved`.
pub const CHANGE_DECIDED: &str = "review.change_decided";
/// The decision on a deregistration request: refused returns the filing to active (Art. 18).
pub const DEREGISTRATION_DECIDED: &str = "review.deregistration_decided";
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
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        let payload: Value = match event.r#type.as_str() {
            FILING_DECIDED
            | FILING_REVOKED
            | CHANGE_DECIDED
            | DEREGISTRATION_DECIDED
            | DEREGISTRATION_COMPLETED
            | DEADLINE_RECOMPUTED => serde_json::from_slice(&event.payload)
                .map_err(|e| Error::invalid_field("event.payload", e.to_string()))?,
            _ => return Ok(Applied::Done),
        };
        let at = creditmesh_rpc::sink::occurred_micros(event);
        let by = event.principal.as_str();
        if event.r#type == DEADLINE_RECOMPUTED {
            store::set_review_deadline(
                tx,
                field(&payload, "filing_id")?,
                field(&payload, "due_date")?,
                payload["provisional"].as_bool().unwrap_or(true),
                field(&payload, "calendar_version")?,
            )
            .await?;
            return Ok(Applied::Done);
        }
        if event.r#type == CHANGE_DECIDED {
            return change_decided(tx, &payload, at, by).await;
        }
        let filing_id = field(&payload, "filing_id")?;
        let Some(filing) = store::get_filing(tx, filing_id).await? else {
            return Err(Error::not_found(format!("no filing {filing_id}")));
        };
        let reason = payload["reason"].as_str().unwrap_or_default();
        let (transition, note) = match event.r#type.as_str() {
            FILING_DECIDED => match field(&payload, "outcome")? {
                "approved" => (FilingEvent::Approve, reason.to_owned()),
                "refused" => (FilingEvent::Refuse, reason.to_owned()),
                other => {
                    return Err(Error::invalid_field(
                        "event.payload.outcome",
                        format!("unknown outcome {other}"),
                    ));
                }
            },
            FILING_REVOKED => {
                let ground = payload["ground"].as_str().unwrap_or_default();
                // The restriction follows the regulator's decision even when the filing ended
                // another way first.
                if let Some(ends) = payload["ban_ends_on"].as_str().filter(|s| !s.is_empty()) {
                    store::put_ban(tx, &filing.uscc, ends, ground, &event.id).await?;
                }
                (FilingEvent::Revoke, format!("revoked: {ground}"))
            }
            DEREGISTRATION_DECIDED if payload["approved"].as_bool() == Some(true) => {
                if filing.status != creditmesh_domain::lifecycle::Filing::Deregistering.name() {
                    return Ok(Applied::NotApplied(format!(
                        "filing {filing_id} is {}; its deregistration approval changes nothing",
                        filing.status
                    )));
                }
                store::add_history(
                    tx,
                    &filing.tenant,
                    filing_id,
                    &filing.status,
                    at,
                    by,
                    "deregistration approved; awaiting the disposal record (Art. 18)",
                )
                .await?;
                return Ok(Applied::Done);
            }
            DEREGISTRATION_DECIDED => (
                FilingEvent::RefuseDeregistration,
                format!("deregistration refused: {reason}"),
            ),
            _ => {
                let record = payload["disposal"].to_string();
                (
                    FilingEvent::CompleteDeregistration,
                    format!("credit-information database disposed of: {record}"),
                )
            }
        };
        let Some(next) = store::transition(tx, &filing.tenant, filing_id, transition).await? else {
            let illegal = creditmesh_domain::lifecycle::Filing::parse(&filing.status)
                .map(|s| s.on(transition).map(|_| ()))
                .unwrap_or(Ok(()));
            return Ok(Applied::NotApplied(format!(
                "filing {filing_id}: {}",
                illegal
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| format!("the filing is {}", filing.status))
            )));
        };
        match transition {
            FilingEvent::CompleteDeregistration => {
                let record = payload["disposal"].to_string();
                store::complete_deregistration(tx, &filing.tenant, filing_id, &record, at).await?;
            }
            FilingEvent::Revoke => {
                store::withdraw_changes(tx, filing_id).await?;
            }
            _ => {}
        }
        store::add_history(tx, &filing.tenant, filing_id, next.name(), at, by, &note).await?;
        Ok(Applied::Done)
    }
}

/// Review's decision on a change: the filed facts change only on approval of a change still
/// undecided, of a filing still active.
async fn change_decided(tx: &mut Tx, payload: &Value, at: i64, by: &str) -> Result<Applied, Error> {
    let change_id = field(payload, "change_id")?;
    let Some((tenant, filing_id, facts, _)) = store::get_change(tx, change_id).await? else {
        return Err(Error::not_found(format!("no change {change_id}")));
    };
    let approved = payload["approved"].as_bool().unwrap_or(false);
    let event = if approved {
        ChangeEvent::Approve
    } else {
        ChangeEvent::Refuse
    };
    if !store::change_transition(tx, change_id, event).await? {
        return Ok(Applied::NotApplied(format!(
            "change {change_id} was decided or withdrawn already"
        )));
    }
    let Some(filing) = store::get_filing(tx, &filing_id).await? else {
        return Ok(Applied::Done);
    };
    if approved {
        if filing.status != creditmesh_domain::lifecycle::Filing::Active.name() {
            return Ok(Applied::NotApplied(format!(
                "change {change_id} approved while its filing is {}; the filed facts stay",
                filing.status
            )));
        }
        let parsed: crate::model::Facts = serde_json::from_str(&facts)
            .map_err(|e| Error::internal(format!("stored change: {e}")))?;
        store::set_facts(tx, &tenant, &filing_id, &parsed.agency_name, &facts).await?;
    }
    let reason = payload["reason"].as_str().unwrap_or_default();
    let note = if approved {
        format!("change {change_id} approved")
    } else {
        format!("change {change_id} refused: {reason}")
    };
    store::add_history(tx, &tenant, &filing_id, &filing.status, at, by, &note).await?;
    Ok(Applied::Done)
}
