//! The acts of supervision recorded in a credit file, whoever the party: an agency (filed, or
//! named with its code and name when it never filed, Art. 2) or a practitioner (从业人员, by
//! the identity document they hold). One form each; one call each.

use creditmesh_proto::review::v1::{
    IssueRectificationOrderRequest, Practitioner, RecordFindingRequest, RecordInspectionRequest,
    RecordInterviewRequest, RecordRectificationOutcomeRequest, RectificationOutcome, RiskTier,
    SetRiskTierRequest,
};
use tonic::Status;

use super::{Desk, field};

/// Whom an act is about.
pub enum Party {
    /// An agency by its code; `unfiled_name` is its name when it never filed.
    Agency {
        uscc: String,
        unfiled_name: String,
    },
    Practitioner(Practitioner),
}

impl Party {
    fn uscc(&self) -> String {
        match self {
            Party::Agency { uscc, .. } => uscc.clone(),
            Party::Practitioner(_) => String::new(),
        }
    }

    fn practitioner(&self) -> Option<Practitioner> {
        match self {
            Party::Agency { .. } => None,
            Party::Practitioner(p) => Some(p.clone()),
        }
    }

    fn agency_name(&self) -> String {
        match self {
            Party::Agency { unfiled_name, .. } => unfiled_name.clone(),
            Party::Practitioner(_) => String::new(),
        }
    }
}

/// Records the act named `act` (the last segment of the form's address) about `party`, as the
/// form `pairs` says; what it made, to be shown.
pub async fn record(
    desk: &mut Desk,
    act: &str,
    party: &Party,
    pairs: &[(String, String)],
) -> Result<String, Status> {
    let request_id = field(pairs, "request_id").to_owned();
    let text = |name: &str| field(pairs, name).trim().to_owned();
    let review = &mut desk.review;
    match act {
        "interviews" => review
            .record_interview(RecordInterviewRequest {
                request_id,
                uscc: party.uscc(),
                held_on: text("held_on"),
                subject: text("subject"),
                summary: text("summary"),
                order_id: text("order_id"),
                practitioner: party.practitioner(),
                agency_name: party.agency_name(),
            })
            .await
            .map(|r| format!("interview {}", r.into_inner().entry_id)),
        "inspections" => review
            .record_inspection(RecordInspectionRequest {
                request_id,
                uscc: party.uscc(),
                inspected_on: text("inspected_on"),
                result: text("result"),
                draw_id: text("draw_id"),
                practitioner: party.practitioner(),
                agency_name: party.agency_name(),
            })
            .await
            .map(|r| format!("inspection {}", r.into_inner().entry_id)),
        "findings" => review
            .record_finding(RecordFindingRequest {
                request_id,
                uscc: party.uscc(),
                category: text("category").parse().unwrap_or_default(),
                description: text("description"),
                practitioner: party.practitioner(),
                agency_name: party.agency_name(),
            })
            .await
            .map(|r| format!("finding {}", r.into_inner().entry_id)),
        "orders" => review
            .issue_rectification_order(IssueRectificationOrderRequest {
                request_id,
                uscc: party.uscc(),
                findings: text("findings"),
                required_actions: text("required_actions"),
                working_days: text("working_days").parse().unwrap_or_default(),
                interview_entry_id: text("interview_entry_id"),
                practitioner: party.practitioner(),
                agency_name: party.agency_name(),
            })
            .await
            .map(|r| {
                let r = r.into_inner();
                let due = r.deadline.map(|d| d.due_date).unwrap_or_default();
                format!("order {} due {due}", r.order_id)
            }),
        "outcomes" => {
            let outcome = match text("outcome").as_str() {
                "rectified" => RectificationOutcome::Rectified,
                "refused" => RectificationOutcome::Refused,
                _ => RectificationOutcome::Unspecified,
            };
            review
                .record_rectification_outcome(RecordRectificationOutcomeRequest {
                    request_id,
                    order_id: text("order_id"),
                    outcome: outcome as i32,
                    note: text("note"),
                })
                .await
                .map(|r| {
                    let r = r.into_inner();
                    if r.revoked_filing_id.is_empty() {
                        "outcome recorded".to_owned()
                    } else {
                        format!(
                            "filing {} revoked: ban until {}",
                            r.revoked_filing_id, r.ban_ends_on
                        )
                    }
                })
        }
        "risk" => {
            let tier = match text("tier").as_str() {
                "low" => RiskTier::Low,
                "medium" => RiskTier::Medium,
                "high" => RiskTier::High,
                _ => RiskTier::Unspecified,
            };
            review
                .set_risk_tier(SetRiskTierRequest {
                    request_id,
                    uscc: party.uscc(),
                    tier: tier as i32,
                    reason: text("reason"),
                })
                .await
                .map(|_| "risk tier set".to_owned())
        }
        _ => Err(Status::not_found(format!("no act {act}"))),
    }
}
