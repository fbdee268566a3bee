//! Proto ↔ stored form of a complaint: statuses by the lifecycle machine's names.

use creditmesh_domain::calendar::{cst_date, format_date};
use creditmesh_domain::lifecycle::{Complaint as State, Machine, Referral as ReferralState};
use creditmesh_domain::{Tenant, department, mask};
use creditmesh_pki::ContactKey;
use creditmesh_proto::common::v1::{Deadline, DocumentRef, StatusChange};
use creditmesh_proto::complaints::v1::*;
use creditmesh_rpc::{CallContext, timestamp};
use prost::Message;

use crate::referral_store::ReferralRow;
use crate::store::{self, ComplaintRow};
use creditmesh_domain::measures::HANDLING_WORKING_DAYS;

/// The complaint machine's states as the API names them, both ways.
const STATES: [(State, ComplaintStatus); 4] = [
    (State::Received, ComplaintStatus::Received),
    (State::Accepted, ComplaintStatus::Accepted),
    (State::Resolved, ComplaintStatus::Resolved),
    (State::Referred, ComplaintStatus::Referred),
];

pub(crate) fn status_proto(stored: &str) -> ComplaintStatus {
    State::parse(stored)
        .and_then(|state| STATES.iter().find(|(s, _)| *s == state))
        .map_or(ComplaintStatus::Unspecified, |(_, p)| *p)
}

pub(crate) fn complaint_state(status: ComplaintStatus) -> Option<State> {
    STATES.iter().find(|(_, p)| *p == status).map(|(s, _)| *s)
}

/// The complainant's name and contact as `ctx` may see them: whole for the holding
/// authority's regulators, masked for the region looking at a prefecture's complaint.
fn complainant(ctx: &CallContext, row: &ComplaintRow) -> (String, String) {
    if ctx.principal.tenant.to_string() == row.tenant {
        return (
            row.complainant_name.clone(),
            row.complainant_contact.clone(),
        );
    }
    let contact = if row.complainant_contact.contains('@') {
        mask::email(&row.complainant_contact)
    } else {
        mask::phone(&row.complainant_contact)
    };
    (mask::person_name(&row.complainant_name), contact)
}

pub(crate) fn complaint_proto(
    ctx: &CallContext,
    row: ComplaintRow,
    history: Vec<store::HistoryRow>,
    today: &str,
    acceptance_working_days: u32,
) -> Complaint {
    let (complainant_name, complainant_contact) = complainant(ctx, &row);
    let received_on = cst_date(row.received_at)
        .map(format_date)
        .unwrap_or_default();
    let overdue = match State::parse(&row.status) {
        Some(State::Received) => {
            !row.acceptance_due.is_empty()
                && !row.acceptance_provisional
                && row.acceptance_due.as_str() < today
        }
        Some(State::Accepted) => !row.handling_provisional && row.handling_due.as_str() < today,
        _ => false,
    };
    Complaint {
        tracking_number: row.tracking_number,
        tenant: row.tenant,
        agency_uscc: row.agency_uscc,
        agency_name: row.agency_name,
        subject: row.subject,
        description: row.description,
        status: status_proto(&row.status) as i32,
        received_at: Some(timestamp(row.received_at)),
        handling_deadline: handling_deadline(
            &row.handling_from,
            &row.handling_due,
            row.handling_provisional,
            &row.calendar_version,
        ),
        history: history
            .into_iter()
            .map(|h| StatusChange {
                status: h.status,
                changed_at: Some(timestamp(h.changed_at)),
                principal: h.principal,
                note: h.note,
                note_zh: h.note_zh,
            })
            .collect(),
        outcome: row.outcome,
        against_agency: row.against_agency,
        acceptance_deadline: (!row.acceptance_due.is_empty()).then(|| Deadline {
            from_date: received_on,
            working_days: acceptance_working_days as i32,
            due_date: row.acceptance_due,
            calendar_version: String::new(),
            provisional: row.acceptance_provisional,
        }),
        overdue,
        complainant_name,
        complainant_contact,
        repeats: row.repeats,
        repeated: row.repeated as i32,
        referrals: Vec::new(),
        evidence: row
            .evidence
            .into_iter()
            .map(|sha256| DocumentRef { sha256 })
            .collect(),
        place_of_activity: row.place,
    }
}

pub(crate) fn handling_deadline(
    from: &str,
    due: &str,
    provisional: bool,
    calendar_version: &str,
) -> Option<Deadline> {
    (!due.is_empty()).then(|| Deadline {
        from_date: from.to_owned(),
        working_days: HANDLING_WORKING_DAYS as i32,
        due_date: due.to_owned(),
        calendar_version: calendar_version.to_owned(),
        provisional,
    })
}

fn status_of(s: &str) -> ReferralStatus {
    match ReferralState::parse(s) {
        Some(ReferralState::Pending) => ReferralStatus::Pending,
        Some(ReferralState::Delivered) => ReferralStatus::Delivered,
        Some(ReferralState::Acknowledged) => ReferralStatus::Acknowledged,
        Some(ReferralState::Declined) => ReferralStatus::Declined,
        Some(ReferralState::SentByLetter) => ReferralStatus::SentByLetter,
        None => ReferralStatus::Unspecified,
    }
}

/// The referral as its department receives it: the stored bytes with the complainant's
/// contact opened into them, and those bytes (whose SHA-256 the referral was stored with).
pub(crate) fn as_sent(
    row: &ReferralRow,
    contacts: &ContactKey,
) -> Result<(Referral, Vec<u8>), String> {
    let mut r = Referral::decode(row.payload.as_slice())
        .map_err(|e| format!("stored referral {}: {e}", row.referral_id))?;
    if row.sealed_contact.is_empty() {
        return Ok((r, row.payload.clone()));
    }
    r.complainant_contact = contacts
        .open(&row.referral_id, &row.sealed_contact)
        .map_err(|e| format!("referral {}: {e}", row.referral_id))?;
    let bytes = r.encode_to_vec();
    Ok((r, bytes))
}

/// A stored referral as sent, with where it stands.
pub(crate) fn referral_proto(row: ReferralRow, contacts: &ContactKey) -> Referral {
    let mut r = as_sent(&row, contacts).map(|(r, _)| r).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "a referral is shown without its complainant's contact");
        Referral::decode(row.payload.as_slice()).unwrap_or_default()
    });
    r.status = status_of(&row.status) as i32;
    r.receipt = row.received_at.map(|at| ReferralReceipt {
        referral_id: row.referral_id.clone(),
        sha256: row.payload_sha256.clone(),
        received_at: Some(timestamp(at)),
        signature: row.receipt_signature,
        certificate: row.receipt_certificate,
    });
    r.acknowledged_at = row.acknowledged_at.map(timestamp);
    r.declined_at = row.declined_at.map(timestamp);
    r.decline_reason = row.decline_reason;
    r
}

/// A department of a division as the Chinese pages name it: 乌鲁木齐市市场监督管理部门.
pub(crate) fn department_zh(code: &str, tenant: &str) -> String {
    let division = Tenant::parse(tenant)
        .map(|t| t.authority_name())
        .unwrap_or_else(|_| tenant.to_owned());
    format!("{division}{}", department::name_zh(code))
}

/// The department a stored referral went to, as the complainant was told.
pub(crate) fn addressee_of(row: &ReferralRow) -> String {
    let name = Referral::decode(row.payload.as_slice())
        .map(|r| r.department_name)
        .unwrap_or_default();
    match Tenant::parse(&row.department_tenant) {
        Ok(t) => addressee(&row.department, &name, t),
        Err(_) => format!(
            "{} ({})",
            department::name_zh(&row.department),
            row.department_tenant
        ),
    }
}

/// The department a referral goes to, named as the complainant is told: the division's
/// authority name and the department's (e.g. 喀什地区喀什市金融监管部门).
pub(crate) fn addressee(department: &str, department_name: &str, tenant: Tenant) -> String {
    if !department_name.is_empty() {
        return format!("{}{department_name}", tenant.authority_name());
    }
    format!(
        "{}{}",
        tenant.authority_name(),
        department::name_zh(department)
    )
}
