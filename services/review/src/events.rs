//! Events the review service consumes.

use std::sync::Arc;

use creditmesh_domain::calendar::{Calendar, Layers, cst_date, format_date};
use creditmesh_domain::lifecycle::FilingEvent;
use creditmesh_domain::{Error, Uscc};
use creditmesh_proto::events::v1::Event;
use creditmesh_proto::review::v1::RefusalGround;
use creditmesh_rpc::sink::{Applied, EventHandler, occurred_micros};
use creditmesh_storage::Tx;
use serde_json::{Value, json};

use crate::store::{self, Entry};
use crate::tasks::{self, TaskRow};

/// Events review publishes: filing applies the decisions; disclosure (as it is built)
/// publishes revocations and spot-check draws on the register.
pub const FILING_DECIDED: &str = "review.filing_decided";
pub const FILING_REVOKED: &str = "review.filing_revoked";
pub const CHANGE_DECIDED: &str = "review.change_decided";
pub const DEREGISTRATION_COMPLETED: &str = "review.deregistration_completed";
/// The decision on a deregistration request: `approved`, or refused with grounds and reason.
pub const DEREGISTRATION_DECIDED: &str = "review.deregistration_decided";
pub const SPOT_CHECK_DRAWN: &str = "review.spot_check_drawn";
/// A provisional review deadline recomputed with new calendar data.
pub const DEADLINE_RECOMPUTED: &str = "review.deadline_recomputed";
pub const CONSUMERS: &[&str] = &["filing", "disclosure"];

/// Working days a regulator has to review (Art. 10).
pub const REVIEW_WORKING_DAYS: u32 = 10;

pub struct Handler {
    pub calendar: Arc<Calendar>,
}

fn payload(event: &Event) -> Result<Value, Error> {
    serde_json::from_slice(&event.payload)
        .map_err(|e| Error::invalid_field("event.payload", e.to_string()))
}

fn text<'a>(p: &'a Value, key: &str) -> &'a str {
    p[key].as_str().unwrap_or_default()
}

/// What the severe-dishonesty list says of an agency and its principals (Art. 9(2)), one
/// line of evidence per listed party, identity numbers masked.
pub async fn dishonesty_hits(
    tx: &mut Tx,
    uscc: &str,
    principals: &[String],
) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    if let Some(l) = tasks::listed(tx, uscc).await? {
        found.push(listed_evidence(&l, uscc));
    }
    for id in principals.iter().filter(|id| !id.is_empty()) {
        if let Some(l) = tasks::listed(tx, id).await? {
            found.push(listed_evidence(&l, uscc));
        }
    }
    Ok(found)
}

/// One line of evidence for a listing that concerns the agency `uscc`.
pub fn listed_evidence(l: &tasks::Listing, uscc: &str) -> String {
    if l.identifier == uscc {
        format!(
            "the agency {uscc} is on the severe-dishonesty list since {} ({})",
            l.listed_on, l.source
        )
    } else {
        format!(
            "principal {} is on the severe-dishonesty list since {} ({})",
            creditmesh_domain::mask::identity_number(&l.identifier),
            l.listed_on,
            l.source
        )
    }
}

/// What the automatic checks on arrival found (Art. 9(1), 9(2)), as `(ground, evidence)`.
pub async fn automatic_checks(
    tx: &mut Tx,
    uscc: &str,
    business_scope: &str,
    principals: &[String],
) -> Result<Vec<(RefusalGround, String)>, Error> {
    let mut found = Vec::new();
    let scope = business_scope.to_lowercase();
    if !scope.is_empty() && !scope.contains("信用") && !scope.contains("credit") {
        found.push((
            RefusalGround::NoCreditServiceInScope,
            format!("the approved business scope names no credit service: {business_scope:?}"),
        ));
    }
    for evidence in dishonesty_hits(tx, uscc, principals).await? {
        found.push((RefusalGround::SevereDishonesty, evidence));
    }
    Ok(found)
}

/// The identity numbers of an event's `principals` array.
fn principals_of(p: &Value) -> Vec<String> {
    p["principals"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn checks_json(found: &[(RefusalGround, String)]) -> String {
    json!(
        found
            .iter()
            .map(|(g, e)| json!({"ground": *g as i32, "evidence": e}))
            .collect::<Vec<_>>()
    )
    .to_string()
}

impl Handler {
    /// A review task for what arrived, due `REVIEW_WORKING_DAYS` after `from`.
    #[allow(clippy::too_many_arguments)]
    async fn open_task(
        &self,
        tx: &mut Tx,
        event: &Event,
        kind: &str,
        filing_id: &str,
        subject_id: &str,
        uscc: &str,
        agency_name: &str,
        checks: String,
        principals: &[String],
    ) -> Result<(), Error> {
        let at = occurred_micros(event);
        let from = cst_date(at).map_err(|e| Error::internal(e.to_string()))?;
        let deadline = self
            .calendar
            .deadline(from, REVIEW_WORKING_DAYS, Layers::Xinjiang)
            .map_err(|e| Error::internal(format!("calendar: {e}")))?;
        tasks::insert(
            tx,
            &TaskRow {
                tenant: event.tenant.clone(),
                task_id: event.id.clone(),
                kind: kind.into(),
                status: "open".into(),
                filing_id: filing_id.into(),
                subject_id: subject_id.into(),
                uscc: uscc.into(),
                agency_name: agency_name.into(),
                created_at: at,
                deadline_from: format_date(deadline.from),
                deadline_due: format_date(deadline.due),
                deadline_provisional: deadline.provisional,
                calendar_version: deadline.calendar_version,
                checks,
                forwarded_from: String::new(),
                principals: json!(principals).to_string(),
            },
        )
        .await?;
        Ok(())
    }

    async fn tasks_for(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        let p = payload(event)?;
        let (uscc, filing_id) = (text(&p, "uscc"), text(&p, "filing_id"));
        match event.r#type.as_str() {
            "filing.submitted" => {
                let principals = principals_of(&p);
                if !tasks::put_agency(
                    tx,
                    uscc,
                    &event.tenant,
                    filing_id,
                    &json!(principals).to_string(),
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "{uscc} still has an open filing; filing {filing_id} was not taken up"
                    )));
                }
                let mut found =
                    automatic_checks(tx, uscc, text(&p, "business_scope"), &principals).await?;
                if !text(&p, "routing_note").is_empty() {
                    found.push((
                        RefusalGround::Unspecified,
                        text(&p, "routing_note").to_owned(),
                    ));
                }
                self.open_task(
                    tx,
                    event,
                    "filing",
                    filing_id,
                    filing_id,
                    uscc,
                    text(&p, "agency_name"),
                    checks_json(&found),
                    &principals,
                )
                .await?;
            }
            "filing.change_submitted" => {
                let principals = principals_of(&p);
                let found =
                    automatic_checks(tx, uscc, text(&p, "business_scope"), &principals).await?;
                self.open_task(
                    tx,
                    event,
                    "change",
                    filing_id,
                    text(&p, "change_id"),
                    uscc,
                    text(&p, "agency_name"),
                    checks_json(&found),
                    &principals,
                )
                .await?;
            }
            "filing.deregistration_requested" => {
                if !tasks::agency_transition(
                    tx,
                    uscc,
                    filing_id,
                    FilingEvent::RequestDeregistration,
                )
                .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "filing {filing_id} is not active here; its deregistration request opens no task"
                    )));
                }
                self.open_task(
                    tx,
                    event,
                    "deregistration",
                    filing_id,
                    filing_id,
                    uscc,
                    "",
                    "[]".into(),
                    &[],
                )
                .await?;
            }
            "filing.revoked" => {
                if !tasks::agency_transition(tx, uscc, filing_id, FilingEvent::MissAnnualReport)
                    .await?
                {
                    return Ok(Applied::NotApplied(format!(
                        "filing {filing_id} is not active here; the Art. 11 revocation changes nothing"
                    )));
                }
                tasks::withdraw_open(tx, filing_id, occurred_micros(event), &event.principal)
                    .await?;
            }
            _ => {}
        }
        Ok(Applied::Done)
    }
}

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        if let Applied::NotApplied(why) = self.tasks_for(tx, event).await? {
            return Ok(Applied::NotApplied(why));
        }
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
            "filing.revoked" => {
                record(tx, event, "revocation", "uscc", |p| {
                    format!(
                        "filing revoked: no annual report for {} by 30 June {} (Art. 11)",
                        p["year"].as_i64().unwrap_or_default(),
                        p["year"].as_i64().unwrap_or_default() + 1
                    )
                })
                .await
            }
            _ => Ok(()),
        }
        .map(|()| Applied::Done)
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
    let recorded_at = occurred_micros(event);
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
