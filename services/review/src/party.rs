//! Who a supervision act is about (Art. 2: 信用服务机构及其从业人员): an agency by its code,
//! whether or not it filed, or a practitioner by the identity document they hold.

use creditmesh_domain::identity_document::IdentityDocument;
use creditmesh_domain::{Uscc, Violations, mask};
use creditmesh_proto::review::v1::Practitioner;
use creditmesh_rpc::identity::document_kind;
use serde_json::json;
use sha2::{Digest, Sha256};

pub(crate) enum Party {
    /// An agency; `name` is what the act says (required when it has not filed).
    Agency { uscc: Uscc, name: String },
    Practitioner {
        key: String,
        name: String,
        document: IdentityDocument,
    },
}

impl Party {
    /// The party of a request's `uscc`, `practitioner` and `agency_name`; every problem is
    /// named in `v`.
    pub(crate) fn parse(
        v: &mut Violations,
        uscc: &str,
        practitioner: Option<&Practitioner>,
        agency_name: &str,
    ) -> Option<Party> {
        v.max_chars("agency_name", agency_name, 200);
        let Some(p) = practitioner else {
            let uscc = v.check("uscc", Uscc::parse(uscc))?;
            return Some(Party::Agency {
                uscc,
                name: agency_name.trim().to_owned(),
            });
        };
        if !uscc.trim().is_empty() || !agency_name.trim().is_empty() {
            v.add(
                "practitioner",
                "an act is about one party: name a practitioner, or an agency by uscc, not both",
            );
        }
        v.require("practitioner.name", &p.name);
        v.max_chars("practitioner.name", &p.name, 100);
        let document = document(v, p)?;
        Some(Party::Practitioner {
            key: practitioner_key(&document),
            name: p.name.trim().to_owned(),
            document,
        })
    }

    /// The key its credit file is kept under: the USCC, or the practitioner's digest.
    pub(crate) fn key(&self) -> &str {
        match self {
            Party::Agency { uscc, .. } => uscc.as_str(),
            Party::Practitioner { key, .. } => key,
        }
    }

    /// What an entry says of the party, beside the act: an unfiled agency's name, a
    /// practitioner's name and masked document.
    pub(crate) fn describe(&self, details: &mut serde_json::Value) {
        match self {
            Party::Agency { name, .. } if !name.is_empty() => details["agency_name"] = json!(name),
            Party::Agency { .. } => {}
            Party::Practitioner { name, document, .. } => {
                details["practitioner"] = json!({
                    "name": name,
                    "document_type": document.kind().name(),
                    "document": mask::identity_number(document.number()),
                });
            }
        }
    }
}

/// The key of the credit file a reader asks for: `uscc`, or the practitioner's by their
/// document (no name needed).
pub(crate) fn file_key(
    v: &mut Violations,
    uscc: &str,
    practitioner: Option<&Practitioner>,
) -> Option<String> {
    match practitioner {
        None => v.check("uscc", Uscc::parse(uscc)).map(|u| u.to_string()),
        Some(_) if !uscc.trim().is_empty() => {
            v.add(
                "practitioner",
                "a file is one party's: name a practitioner or uscc, not both",
            );
            None
        }
        Some(p) => document(v, p).map(|d| practitioner_key(&d)),
    }
}

fn document(v: &mut Violations, p: &Practitioner) -> Option<IdentityDocument> {
    let Some(kind) = document_kind(p.document_type) else {
        v.add("practitioner.document_type", "is not a known document type");
        return None;
    };
    v.check(
        "practitioner.document_number",
        IdentityDocument::parse(kind, &p.document_number),
    )
}

/// A practitioner's key: `P-` and the first 16 bytes of a SHA-256 over the document's kind and
/// number, so that the file is found from the document and the number is not stored.
pub(crate) fn practitioner_key(document: &IdentityDocument) -> String {
    let digest = Sha256::new()
        .chain_update(b"creditmesh practitioner\0")
        .chain_update(document.kind().name().as_bytes())
        .chain_update(b"\0")
        .chain_update(document.number().as_bytes())
        .finalize();
    format!("P-{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use creditmesh_domain::identity_document::DocumentKind;

    #[test]
    fn a_practitioner_is_found_by_the_document_not_by_the_name() {
        let passport = IdentityDocument::parse(DocumentKind::Passport, "e12345678").unwrap();
        let same = IdentityDocument::parse(DocumentKind::Passport, " E12345678 ").unwrap();
        let key = practitioner_key(&passport);
        assert_eq!(key, practitioner_key(&same));
        assert_eq!(key.len(), 34);
        assert!(!key.contains("12345678"));
        let taiwan = IdentityDocument::parse(DocumentKind::TaiwanTravelPermit, "12345678").unwrap();
        let permit = IdentityDocument::parse(DocumentKind::Passport, "12345678").unwrap();
        assert_ne!(practitioner_key(&taiwan), practitioner_key(&permit));
    }

    #[test]
    fn one_party_per_act() {
        let p = Practitioner {
            name: "李四".into(),
            document_type: 6,
            document_number: "E12345678".into(),
        };
        let mut v = Violations::default();
        assert!(Party::parse(&mut v, "91653101MA78KT005T", Some(&p), "").is_some());
        assert!(!v.is_empty());
        let mut v = Violations::default();
        let party = Party::parse(&mut v, "", Some(&p), "").unwrap();
        assert!(v.is_empty());
        assert!(party.key().starts_with("P-"));
        let mut details = json!({});
        party.describe(&mut details);
        assert_ne!(details["practitioner"]["document"], "E12345678");
    }
}
