//! Proto ↔ stored form of the register: notice kinds by their stored names, an agency's status
//! by the filing machine's names.

use creditmesh_domain::lifecycle::{Filing, Machine};
use creditmesh_proto::disclosure::v1::*;
use creditmesh_rpc::timestamp;

use crate::store::{NoticeRow, kind_of};

/// The kinds of notice filing's events may ask for, by name.
pub fn notice_kind(name: &str) -> Option<NoticeKind> {
    match kind_of(name) {
        NoticeKind::Unspecified
        | NoticeKind::Correction
        | NoticeKind::Erasure
        | NoticeKind::SpotCheckDraw => None,
        kind => Some(kind),
    }
}

pub fn status_of(name: &str) -> AgencyStatus {
    match Filing::parse(name) {
        Some(Filing::Active) => AgencyStatus::Active,
        Some(Filing::Deregistering) => AgencyStatus::Deregistering,
        Some(Filing::Revoked) => AgencyStatus::Revoked,
        Some(Filing::Deregistered) => AgencyStatus::Deregistered,
        Some(Filing::Submitted | Filing::Refused) | None => AgencyStatus::Unspecified,
    }
}

pub fn notice_proto(r: NoticeRow) -> Notice {
    let kind = kind_of(&r.kind);
    let erased = r.content.is_none();
    Notice {
        sequence: r.seq as i64,
        kind: kind as i32,
        uscc: r.uscc,
        tenant: r.tenant,
        published_at: Some(timestamp(r.published_at)),
        text: r.text.unwrap_or_default(),
        content: r.content.map(String::into_bytes).unwrap_or_default(),
        salt: r.salt.and_then(|s| hex::decode(s).ok()).unwrap_or_default(),
        leaf_hash: r.leaf_hash,
        corrects_sequence: r.corrects.map(|c| c as i64).unwrap_or_default(),
        erased,
        erased_by: r.erased_by.unwrap_or_default(),
        erasure_reason: r.erasure_reason.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kind_name;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for n in 1..=9 {
            let kind = NoticeKind::try_from(n).unwrap();
            assert_eq!(kind_of(kind_name(kind)), kind);
        }
        assert_eq!(kind_of("nonsense"), NoticeKind::Unspecified);
    }
}
