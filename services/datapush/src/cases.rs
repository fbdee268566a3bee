//! The cases in which a department may read non-public records (Art. 23 保密): a referral it
//! received (complaints' `referral_received`), for the records the referred agency pushed,
//! until it declines the referral or the case's term ends. Outside a case a department reads
//! nothing.

use creditmesh_domain::calendar::{cst_date, format_date, parse_iso_date};
use creditmesh_domain::{Error, Principal, PrincipalKind};
use creditmesh_proto::events::v1::{Event, ReferralDeclined, ReferralReceived};
use creditmesh_rpc::sink::{Applied, decode, occurred_micros};
use creditmesh_storage::Tx;
use creditmesh_storage::sqlx::AnyConnection;

use crate::case_store;

/// How long after the referral was received a department may read in it: six months, counted
/// as the Civil Code counts them (Art. 201-203). A department that needs longer asks the
/// referring authority to refer again.
pub const TERM_MONTHS: u32 = 6;

/// A case open to the department that received it.
pub struct Case {
    pub agency_uscc: String,
}

/// Records a referral a department received; once only, and never reopening a case its
/// decline closed first.
pub async fn received(tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
    let e: ReferralReceived = decode(event)?;
    let received_on = if e.sent_on.is_empty() {
        cst_date(e.received_at)
            .map_err(|err| Error::invalid_field("received_at", err.to_string()))?
    } else {
        parse_iso_date(&e.sent_on).map_err(|err| Error::invalid_field("sent_on", err))?
    };
    let ends_on = crate::catalog::kept_until(received_on, TERM_MONTHS)
        .ok_or_else(|| Error::invalid_field("received_at", "has no day six months on"))?;
    case_store::open(
        tx,
        &case_store::NewCase {
            referral_id: &e.referral_id,
            tenant: &event.tenant,
            tracking_number: &e.tracking_number,
            agency_uscc: &e.uscc,
            department: &e.department,
            department_tenant: &e.department_tenant,
            received_on: &format_date(received_on),
            ends_on: &format_date(ends_on),
            opened_at: occurred_micros(event),
        },
    )
    .await?;
    Ok(Applied::Done)
}

/// Closes the case of a declined referral; a decline that arrives before its receipt leaves
/// a closed case behind, so that the receipt opens nothing.
pub async fn declined(tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
    let e: ReferralDeclined = decode(event)?;
    let at = occurred_micros(event);
    case_store::close_declined(
        tx,
        &case_store::Declined {
            referral_id: &e.referral_id,
            tenant: &event.tenant,
            agency_uscc: &e.uscc,
            department: &e.department,
            department_tenant: &e.department_tenant,
            at,
        },
    )
    .await?;
    Ok(Applied::Done)
}

/// The case `referral_id` if `department` received it and may read in it on `today`; else
/// PERMISSION_DENIED, alike for an unknown referral and another department's.
pub async fn open_to(
    conn: &mut AnyConnection,
    department: &Principal,
    referral_id: &str,
    today: time::Date,
) -> Result<Case, Error> {
    let denied = || {
        Error::permission_denied(format!(
            "referral {referral_id} is not one your department received: a department reads \
             non-public records only within a referral it received (Art. 23)"
        ))
    };
    if department.kind != PrincipalKind::Department {
        return Err(denied());
    }
    let case_store::CaseRow {
        agency_uscc,
        ends_on,
        closed_at,
        close_reason,
    } = case_store::find(
        conn,
        referral_id,
        &department.subject,
        &department.tenant.to_string(),
    )
    .await?
    .ok_or_else(denied)?;
    if closed_at.is_some() {
        return Err(Error::permission_denied(format!(
            "referral {referral_id} is closed ({close_reason}): nothing may be read in it"
        )));
    }
    let ends = parse_iso_date(&ends_on)
        .map_err(|e| Error::internal(format!("case {referral_id}: {e}")))?;
    if today > ends {
        return Err(Error::permission_denied(format!(
            "the case of referral {referral_id} ended on {ends_on} ({TERM_MONTHS} months from \
             its receipt); ask the referring authority to refer again"
        )));
    }
    if agency_uscc.is_empty() {
        return Err(Error::permission_denied(format!(
            "referral {referral_id} names no agency whose records could be read"
        )));
    }
    Ok(Case { agency_uscc })
}
