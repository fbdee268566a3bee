//! Proto ↔ stored form of records and objections: statuses by the lifecycle machines' names.

use creditmesh_domain::Error;
use creditmesh_domain::lifecycle::{Machine, Objection as ObjectionState, PushedRecord};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::datapush::v1::*;
use creditmesh_rpc::timestamp;

use crate::objection_store::ObjectionRow;
use crate::state::Api;
use creditmesh_domain::measures::OBJECTION_WORKING_DAYS;

pub(crate) fn ground_name(g: ObjectionGround) -> Option<&'static str> {
    Some(match g {
        ObjectionGround::Error => "error",
        ObjectionGround::Omission => "omission",
        ObjectionGround::ImproperEvaluation => "improper_evaluation",
        ObjectionGround::TradeSecret => "trade_secret",
        ObjectionGround::Privacy => "privacy",
        ObjectionGround::Unspecified => return None,
    })
}

pub(crate) fn ground_of(s: &str) -> ObjectionGround {
    [
        ObjectionGround::Error,
        ObjectionGround::Omission,
        ObjectionGround::ImproperEvaluation,
        ObjectionGround::TradeSecret,
        ObjectionGround::Privacy,
    ]
    .into_iter()
    .find(|g| ground_name(*g) == Some(s))
    .unwrap_or(ObjectionGround::Unspecified)
}

pub(crate) fn measure_name(m: RequestedMeasure) -> &'static str {
    match m {
        RequestedMeasure::Unspecified => "",
        RequestedMeasure::Correct => "correct",
        RequestedMeasure::Delete => "delete",
        RequestedMeasure::Other => "other",
    }
}

pub(crate) fn measure_of(s: &str) -> RequestedMeasure {
    match s {
        "correct" => RequestedMeasure::Correct,
        "delete" => RequestedMeasure::Delete,
        "other" => RequestedMeasure::Other,
        _ => RequestedMeasure::Unspecified,
    }
}

pub(crate) fn decision_of(stored: &str) -> ObjectionDecision {
    match ObjectionState::parse(stored) {
        Some(ObjectionState::Corrected) => ObjectionDecision::Correct,
        Some(ObjectionState::Deleted) => ObjectionDecision::Delete,
        Some(ObjectionState::Kept) => ObjectionDecision::Keep,
        Some(ObjectionState::Open) | None => ObjectionDecision::Unspecified,
    }
}

/// An objection as the API shows it; its statement only to those acting for the subject.
pub(crate) fn objection_proto(
    api: &Api,
    o: &ObjectionRow,
    today: &str,
    with_statement: bool,
) -> Result<Objection, Error> {
    let statement = if with_statement {
        crate::state::private(&api.keys, o)?.0
    } else {
        String::new()
    };
    let open = ObjectionState::parse(&o.status) == Some(ObjectionState::Open);
    Ok(Objection {
        objection_id: o.objection_id.clone(),
        record_id: o.record_id.clone(),
        ground: ground_of(&o.ground) as i32,
        statement,
        filed_at: Some(timestamp(o.filed_at)),
        deadline: Some(common::Deadline {
            from_date: o.deadline_from.clone(),
            working_days: OBJECTION_WORKING_DAYS as i32,
            due_date: o.deadline_due.clone(),
            calendar_version: o.calendar_version.clone(),
            provisional: o.deadline_provisional,
        }),
        decision: decision_of(&o.status) as i32,
        decision_reasons: o.decision_reasons.clone(),
        status: if open { "open" } else { "decided" }.into(),
        filed_by: o.filed_by.clone(),
        decided_at: o.decided_at.map(timestamp),
        // Lateness is judged against a final deadline only: a provisional one may yet move.
        overdue: open && !o.deadline_provisional && o.deadline_due.as_str() < today,
        agency_uscc: o.agency_uscc.clone(),
        subject_statement: o.subject_statement.clone(),
        requested_measure: measure_of(&o.requested_measure) as i32,
        materials: Vec::new(),
    })
}

pub(crate) fn record_status(s: &str) -> RecordStatus {
    match PushedRecord::parse(s) {
        Some(PushedRecord::Active) => RecordStatus::Active,
        Some(PushedRecord::UnderObjection) => RecordStatus::UnderObjection,
        Some(PushedRecord::Deleted) => RecordStatus::Deleted,
        None => RecordStatus::Unspecified,
    }
}

/// A material as readers see it (never its bytes).
pub(crate) fn material_proto(m: crate::material_store::MaterialRow) -> ObjectionMaterial {
    ObjectionMaterial {
        material_id: m.material_id,
        media_type: m.media_type,
        size_bytes: m.size_bytes,
        sha256: m.sha256,
        received_at: Some(timestamp(m.uploaded_at)),
    }
}
