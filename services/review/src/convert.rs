//! Proto ↔ stored form of review tasks: statuses by the task machine's names.

use creditmesh_domain::calendar::{Calendar, Layers, parse_iso_date};
use creditmesh_domain::lifecycle::{Machine, Task};
use creditmesh_proto::common::v1::Deadline;
use creditmesh_proto::review::v1::*;
use creditmesh_rpc::timestamp;

use crate::task_store::TaskRow;
use crate::validate::Kind;
use creditmesh_domain::measures::REVIEW_WORKING_DAYS;

/// A task as the API shows it, with its working days left on `calendar`.
pub(crate) fn task_proto(calendar: &Calendar, t: TaskRow, today: &str) -> ReviewTask {
    let checks: Vec<serde_json::Value> = serde_json::from_str(&t.checks).unwrap_or_default();
    let status = Task::parse(&t.status).map_or(TaskStatus::Unspecified, task_status);
    // A provisional deadline makes nothing overdue: it may yet move later.
    let overdue = t.status == Task::Open.name()
        && !t.deadline_due.is_empty()
        && !t.deadline_provisional
        && t.deadline_due.as_str() < today;
    let working_days_left = if t.status == Task::Open.name() {
        working_days_left(calendar, today, &t.deadline_due)
    } else {
        0
    };
    let deadline = (!t.deadline_due.is_empty()).then_some(Deadline {
        from_date: t.deadline_from,
        working_days: REVIEW_WORKING_DAYS as i32,
        due_date: t.deadline_due,
        calendar_version: t.calendar_version,
        provisional: t.deadline_provisional,
    });
    ReviewTask {
        overdue,
        task_id: t.task_id,
        tenant: t.tenant,
        kind: match Kind::parse(&t.kind) {
            Some(Kind::Filing) => TaskKind::Filing,
            Some(Kind::Change) => TaskKind::Change,
            Some(Kind::Deregistration) => TaskKind::Deregistration,
            Some(Kind::Supervision) => TaskKind::Supervision,
            None => TaskKind::Unspecified,
        } as i32,
        status: status as i32,
        filing_id: t.filing_id,
        uscc: t.uscc,
        agency_name: t.agency_name,
        created_at: Some(timestamp(t.created_at)),
        deadline,
        automatic_checks: checks
            .iter()
            .map(|c| AutomaticCheck {
                ground: c["ground"].as_i64().unwrap_or_default() as i32,
                evidence: c["evidence"].as_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        forwarded_from_task_id: t.forwarded_from,
        working_days_left,
    }
}

/// Working days after `today` up to and including `due` on the calendar data; 0 when
/// either date is missing or unreadable.
fn working_days_left(calendar: &Calendar, today: &str, due: &str) -> i32 {
    let (Ok(today), Ok(due)) = (parse_iso_date(today), parse_iso_date(due)) else {
        return 0;
    };
    calendar
        .working_days_between(today, due, Layers::Xinjiang)
        .map_or(0, |(n, _)| n as i32)
}

/// The article a finding's category breaches.
pub fn article(category: FindingCategory) -> &'static str {
    use FindingCategory::*;
    match category {
        MisleadingPromotion | PromisedRating => "Art. 13, 16(4)",
        FeeLinkedResult | ConflictOfInterest | FalseEvaluation | CertificateLent
        | OutsideBusinessScope => "Art. 13",
        ObstructedInspection => "Art. 14",
        UnlawfulCollection => "Art. 16(1)",
        InformationLeakedOrFalsified => "Art. 16(2)",
        UnauthorisedQuery => "Art. 16(3)",
        MaliciousEvaluation => "Art. 16(5)",
        UnlistedFee => "Art. 19",
        OtherViolation | Unspecified => "Art. 17",
    }
}

/// A category's name as entries carry it ("promised_rating").
pub fn category_name(category: FindingCategory) -> String {
    category
        .as_str_name()
        .trim_start_matches("FINDING_CATEGORY_")
        .to_ascii_lowercase()
}

/// The task machine's states as the API names them, both ways.
const TASK_STATES: [(Task, TaskStatus); 6] = [
    (Task::Open, TaskStatus::Open),
    (Task::Approved, TaskStatus::Approved),
    (Task::Refused, TaskStatus::Refused),
    (Task::Forwarded, TaskStatus::Forwarded),
    (Task::Closed, TaskStatus::Closed),
    (Task::Withdrawn, TaskStatus::Withdrawn),
];

pub(crate) fn task_status(state: Task) -> TaskStatus {
    TASK_STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(TaskStatus::Unspecified, |(_, p)| *p)
}

pub(crate) fn task_state(status: TaskStatus) -> Option<Task> {
    TASK_STATES
        .iter()
        .find(|(_, p)| *p == status)
        .map(|(s, _)| *s)
}
