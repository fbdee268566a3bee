//! Checks of what an application, a change or a report declares (Art. 6, 8, 12).

use creditmesh_domain::calendar::parse_iso_date;
use creditmesh_domain::identity_document::{DocumentKind, IdentityDocument};
use creditmesh_domain::routing::RegisteredDivision;
use creditmesh_domain::{Error, Uscc, Violations};
use creditmesh_proto::common::v1 as common;
use creditmesh_proto::filing::v1::*;
use creditmesh_storage::Tx;
use time::Date;

use crate::model::{Documents, Facts, Person};
use crate::store::{self};

/// Overlays what a change sets (non-empty fields) on the filed facts.
pub(crate) fn merge(filed: &Facts, change: &Facts) -> Facts {
    let text = |new: &str, old: &str| {
        if new.is_empty() {
            old.to_owned()
        } else {
            new.to_owned()
        }
    };
    let who = |new: &Person, old: &Person| {
        if new.name.is_empty() {
            old.clone()
        } else {
            new.clone()
        }
    };
    Facts {
        agency_name: text(&change.agency_name, &filed.agency_name),
        uscc: filed.uscc.clone(),
        registration_date: text(&change.registration_date, &filed.registration_date),
        registered_address: text(&change.registered_address, &filed.registered_address),
        registered_capital_yuan: if change.registered_capital_yuan > 0 {
            change.registered_capital_yuan
        } else {
            filed.registered_capital_yuan
        },
        business_scope: text(&change.business_scope, &filed.business_scope),
        legal_representative: who(&change.legal_representative, &filed.legal_representative),
        chair: who(&change.chair, &filed.chair),
        general_manager: who(&change.general_manager, &filed.general_manager),
        professional_staff_count: if change.professional_staff_count > 0 {
            change.professional_staff_count
        } else {
            filed.professional_staff_count
        },
        information_security: text(&change.information_security, &filed.information_security),
        internal_rules: if change.internal_rules.is_empty() {
            filed.internal_rules.clone()
        } else {
            change.internal_rules.clone()
        },
        contact_phone: text(&change.contact_phone, &filed.contact_phone),
        contact_email: text(&change.contact_email, &filed.contact_email),
        registered_division: text(&change.registered_division, &filed.registered_division),
        fee_items: if change.fee_items.is_empty() {
            filed.fee_items.clone()
        } else {
            change.fee_items.clone()
        },
    }
}

/// The most service items one agency files. With the field limits below, a register notice
/// stays within the 64 KiB of a log entry (C2SP tlog-tiles).
pub(crate) const MAX_FEE_ITEMS: usize = 40;

pub(crate) const RULES: [(InternalRule, &str); 8] = [
    (InternalRule::Organisation, "organisation"),
    (InternalRule::BusinessRules, "business rules"),
    (InternalRule::QualityControl, "quality control"),
    (InternalRule::RiskControl, "risk control"),
    (InternalRule::ConflictOfInterest, "conflict of interest"),
    (InternalRule::ComplaintHandling, "complaint handling"),
    (InternalRule::Accountability, "accountability"),
    (InternalRule::StaffManagement, "staff management"),
];

/// Checks the Art. 6 facts; returns the registration date when it parsed.
pub(crate) fn check_facts(v: &mut Violations, p: &str, f: &Facts, today: Date) -> Option<Date> {
    v.require(&format!("{p}.agency_name"), &f.agency_name);
    v.max_chars(&format!("{p}.agency_name"), &f.agency_name, 200);
    if f.uscc.is_empty() {
        v.add(format!("{p}.uscc"), "is required");
    } else {
        v.check(&format!("{p}.uscc"), Uscc::parse(&f.uscc));
    }
    let registered = if f.registration_date.is_empty() {
        v.add(
            format!("{p}.registration_date"),
            "is required (market-regulation registration)",
        );
        None
    } else {
        match parse_iso_date(&f.registration_date) {
            Ok(d) if d > today => {
                v.add(format!("{p}.registration_date"), "lies in the future");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                v.add(format!("{p}.registration_date"), e);
                None
            }
        }
    };
    v.require(&format!("{p}.registered_address"), &f.registered_address);
    v.max_chars(
        &format!("{p}.registered_address"),
        &f.registered_address,
        200,
    );
    if f.registered_division.is_empty() {
        v.add(
            format!("{p}.registered_division"),
            "is required: the county-level GB/T 2260 code of the registered address (Art. 10)",
        );
    } else {
        v.check(
            &format!("{p}.registered_division"),
            RegisteredDivision::parse(&f.registered_division),
        );
    }
    if f.registered_capital_yuan <= 0 {
        v.add(format!("{p}.registered_capital_yuan"), "must be positive");
    }
    v.require(&format!("{p}.business_scope"), &f.business_scope);
    v.max_chars(&format!("{p}.business_scope"), &f.business_scope, 1000);
    for (field, who) in [
        ("legal_representative", &f.legal_representative),
        ("chair", &f.chair),
        ("general_manager", &f.general_manager),
    ] {
        v.require(&format!("{p}.{field}.name"), &who.name);
        let kind = if who.document_type.is_empty() {
            Some(DocumentKind::ResidentId)
        } else {
            DocumentKind::parse_name(&who.document_type)
        };
        match kind {
            None => v.add(
                format!("{p}.{field}.document_type"),
                "is not a type of identity document the contract names",
            ),
            Some(_) if who.identity_number.is_empty() => {
                v.add(format!("{p}.{field}.identity_number"), "is required")
            }
            Some(kind) => {
                v.check(
                    &format!("{p}.{field}.identity_number"),
                    IdentityDocument::parse(kind, &who.identity_number),
                );
            }
        }
    }
    if f.professional_staff_count <= 0 {
        v.add(
            format!("{p}.professional_staff_count"),
            "must be at least 1 (Art. 6(2))",
        );
    }
    v.require(
        &format!("{p}.information_security"),
        &f.information_security,
    );
    let missing: Vec<&str> = RULES
        .iter()
        .filter(|(r, _)| !f.internal_rules.contains(&(*r as i32)))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        v.add(
            format!("{p}.internal_rules"),
            format!("missing (Art. 6(3)): {}", missing.join(", ")),
        );
    }
    check_fee_items(v, p, f);
    v.require(&format!("{p}.contact_phone"), &f.contact_phone);
    if !f.contact_email.is_empty() && !f.contact_email.contains('@') {
        v.add(format!("{p}.contact_email"), "is not an e-mail address");
    }
    registered
}

/// Art. 19: the service items and their fees, each named and priced.
fn check_fee_items(v: &mut Violations, p: &str, f: &Facts) {
    if f.fee_items.is_empty() {
        v.add(
            format!("{p}.fee_items"),
            "at least one service item with its fee is required (Art. 19)",
        );
    }
    if f.fee_items.len() > MAX_FEE_ITEMS {
        v.add(
            format!("{p}.fee_items"),
            format!("at most {MAX_FEE_ITEMS} items"),
        );
        return;
    }
    for (i, item) in f.fee_items.iter().enumerate() {
        let at = format!("{p}.fee_items[{i}]");
        v.require(&format!("{at}.service_item"), &item.service_item);
        v.max_chars(&format!("{at}.service_item"), &item.service_item, 60);
        v.require(&format!("{at}.fee"), &item.fee);
        v.max_chars(&format!("{at}.fee"), &item.fee, 60);
        v.max_chars(&format!("{at}.unit"), &item.unit, 20);
        v.max_chars(&format!("{at}.basis"), &item.basis, 120);
    }
}

pub(crate) fn sha_ok(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Records a required document reference.
pub(crate) fn require_doc(
    v: &mut Violations,
    docs: &mut Documents,
    field: &str,
    doc: &Option<common::DocumentRef>,
    what: &str,
) {
    match doc {
        None => v.add(field, format!("is required: {what}")),
        Some(d) if d.sha256.is_empty() => v.add(field, format!("is required: {what}")),
        Some(d) if !sha_ok(&d.sha256) => v.add(
            format!("{field}.sha256"),
            "must be 64 hexadecimal characters",
        ),
        Some(d) => {
            docs.entry(field.to_owned())
                .or_default()
                .push(d.sha256.to_ascii_lowercase());
        }
    }
}

/// Checks that every referenced document was uploaded by the agency.
pub(crate) async fn check_owned(tx: &mut Tx, uscc: &str, docs: &Documents) -> Result<(), Error> {
    let owned = store::owned_documents(tx, uscc).await?;
    let mut v = Violations::default();
    for (field, hashes) in docs {
        for h in hashes {
            if !owned.contains(h) {
                v.add(
                    format!("{field}.sha256"),
                    "no such document was uploaded by this agency",
                );
            }
        }
    }
    v.finish()
}
