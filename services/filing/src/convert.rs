//! Proto ↔ stored form of a filing.

use creditmesh_domain::identity_document::DocumentKind;
use creditmesh_domain::lifecycle::{Filing as State, Machine};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::filing::v1::*;
use creditmesh_rpc::identity::document_kind;

use crate::model::{Facts, FeeItem as StoredFee, Person};

pub(crate) fn status_proto(s: &str) -> FilingStatus {
    match State::parse(s) {
        Some(State::Submitted) => FilingStatus::Submitted,
        Some(State::Active) => FilingStatus::Active,
        Some(State::Refused) => FilingStatus::Refused,
        Some(State::Revoked) => FilingStatus::Revoked,
        Some(State::Deregistering) => FilingStatus::Deregistering,
        Some(State::Deregistered) => FilingStatus::Deregistered,
        None => FilingStatus::Unspecified,
    }
}

pub(crate) fn status_name(s: FilingStatus) -> Option<&'static str> {
    Some(
        match s {
            FilingStatus::Submitted | FilingStatus::UnderReview => State::Submitted,
            // A prefecture's approval makes the filing active; the region receives a copy.
            FilingStatus::Forwarded | FilingStatus::Active => State::Active,
            FilingStatus::Refused => State::Refused,
            FilingStatus::Revoked => State::Revoked,
            FilingStatus::Deregistering => State::Deregistering,
            FilingStatus::Deregistered => State::Deregistered,
            FilingStatus::Unspecified => return None,
        }
        .name(),
    )
}

/// The identity numbers Art. 9(2) checks: legal representative, chair, general manager.
pub(crate) fn principals(f: &Facts) -> Vec<String> {
    [&f.legal_representative, &f.chair, &f.general_manager]
        .iter()
        .map(|p| p.identity_number.clone())
        .collect()
}

/// The same principals with their role and name.
pub(crate) fn named_principals(f: &Facts) -> Vec<creditmesh_proto::events::v1::NamedPrincipal> {
    [
        ("legal_representative", &f.legal_representative),
        ("chair", &f.chair),
        ("general_manager", &f.general_manager),
    ]
    .into_iter()
    .map(|(role, p)| creditmesh_proto::events::v1::NamedPrincipal {
        role: role.into(),
        name: p.name.clone(),
        identity_number: p.identity_number.clone(),
    })
    .collect()
}

pub(crate) fn person(p: &Option<common::Person>) -> Person {
    p.as_ref()
        .map(|p| Person {
            name: p.name.trim().to_owned(),
            identity_number: p.identity_number.trim().to_ascii_uppercase(),
            document_type: document_kind(p.document_type)
                .filter(|k| *k != DocumentKind::ResidentId)
                .map(|k| k.name().to_owned())
                .unwrap_or_else(|| {
                    // Kept as sent, so that validation names what is wrong with it.
                    if common::IdentityDocumentType::try_from(p.document_type).is_err() {
                        format!("unknown ({})", p.document_type)
                    } else {
                        String::new()
                    }
                }),
        })
        .unwrap_or_default()
}

pub(crate) fn person_proto(p: &Person) -> Option<common::Person> {
    let kind = DocumentKind::parse_name(&p.document_type).unwrap_or(DocumentKind::ResidentId);
    Some(common::Person {
        name: p.name.clone(),
        identity_number: p.identity_number.clone(),
        document_type: common::IdentityDocumentType::from_str_name(&format!(
            "IDENTITY_DOCUMENT_TYPE_{}",
            kind.name().to_ascii_uppercase()
        ))
        .unwrap_or_default() as i32,
    })
}

pub(crate) fn facts_from(f: &ApplicationForm) -> Facts {
    Facts {
        agency_name: f.agency_name.trim().to_owned(),
        uscc: f.uscc.trim().to_ascii_uppercase(),
        registration_date: f.registration_date.trim().to_owned(),
        registered_address: f.registered_address.trim().to_owned(),
        registered_capital_yuan: f.registered_capital_yuan,
        business_scope: f.business_scope.trim().to_owned(),
        legal_representative: person(&f.legal_representative),
        chair: person(&f.chair),
        general_manager: person(&f.general_manager),
        professional_staff_count: f.professional_staff_count,
        information_security: f.information_security.trim().to_owned(),
        internal_rules: f.internal_rules.clone(),
        contact_phone: f.contact_phone.trim().to_owned(),
        contact_email: f.contact_email.trim().to_owned(),
        registered_division: f.registered_division.trim().to_owned(),
        fee_items: f
            .fee_items
            .iter()
            .map(|i| StoredFee {
                service_item: i.service_item.trim().to_owned(),
                fee: i.fee.trim().to_owned(),
                unit: i.unit.trim().to_owned(),
                basis: i.basis.trim().to_owned(),
            })
            .collect(),
    }
}

pub(crate) fn form_from(f: &Facts) -> ApplicationForm {
    ApplicationForm {
        agency_name: f.agency_name.clone(),
        uscc: f.uscc.clone(),
        registration_date: f.registration_date.clone(),
        registered_address: f.registered_address.clone(),
        registered_capital_yuan: f.registered_capital_yuan,
        business_scope: f.business_scope.clone(),
        legal_representative: person_proto(&f.legal_representative),
        chair: person_proto(&f.chair),
        general_manager: person_proto(&f.general_manager),
        professional_staff_count: f.professional_staff_count,
        information_security: f.information_security.clone(),
        internal_rules: f.internal_rules.clone(),
        contact_phone: f.contact_phone.clone(),
        contact_email: f.contact_email.clone(),
        registered_division: f.registered_division.clone(),
        fee_items: f
            .fee_items
            .iter()
            .map(|i| FeeItem {
                service_item: i.service_item.clone(),
                fee: i.fee.clone(),
                unit: i.unit.clone(),
                basis: i.basis.clone(),
            })
            .collect(),
    }
}
