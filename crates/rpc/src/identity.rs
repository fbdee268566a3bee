//! Identity documents between the contracts and the domain.

use creditmesh_domain::identity_document::DocumentKind;
use creditmesh_proto::common::v1::IdentityDocumentType;

/// The kind of document a contract's type names; unspecified is a resident identity card.
pub fn document_kind(t: i32) -> Option<DocumentKind> {
    let t = IdentityDocumentType::try_from(t).ok()?;
    if t == IdentityDocumentType::Unspecified {
        return Some(DocumentKind::ResidentId);
    }
    DocumentKind::parse_name(
        &t.as_str_name()
            .trim_start_matches("IDENTITY_DOCUMENT_TYPE_")
            .to_ascii_lowercase(),
    )
}
