//! Data subjects: who a subject is (a resident identity number or a USCC, kept only as a keyed
//! hash), and the access codes a regulator's service desk issues so that a subject can see the
//! records about them and object (Art. 21, 22) without a certificate.

use creditmesh_domain::resident_id::ResidentId;
use creditmesh_domain::{Error, Principal, PrincipalKind, Tenant, Uscc, Violations};
use creditmesh_proto::datapush::v1::SubjectKind;
use creditmesh_storage::sqlx::AnyConnection;

use crate::index::Hashed;
use crate::objection_store;
use crate::seal::Keys;

/// How long an access code is valid.
pub const ACCESS_CODE_DAYS: i64 = 30;

/// A subject as the records name it.
pub struct Subject {
    pub kind: &'static str,
    /// The identifier as records hold it.
    pub identifier: String,
    /// The keyed hash records are found by.
    pub index: Hashed,
}

/// The keyed hash a subject's records are found by.
pub fn index(keys: &Keys, kind: &str, identifier: &str) -> Hashed {
    keys.hashed(&[b"subject", kind.as_bytes(), identifier.as_bytes()])
}

/// What records call a subject of `kind` (nothing when unspecified).
pub fn name(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::Person => "person",
        SubjectKind::Organisation => "organisation",
        SubjectKind::Unspecified => "",
    }
}

/// The name records give a subject of `kind`, and its identifier as records hold it and its key
/// is computed from: the one form, for the records pushed and for every lookup of them.
pub fn canonical(kind: SubjectKind, identifier: &str) -> Result<(&'static str, String), String> {
    let id = identifier.trim();
    let person =
        || ResidentId::parse(id).map(|r| (name(SubjectKind::Person), r.as_str().to_owned()));
    let organisation = || Uscc::parse(id).map(|u| (name(SubjectKind::Organisation), u.to_string()));
    match kind {
        SubjectKind::Person => person().map_err(|e| e.to_string()),
        SubjectKind::Organisation => organisation().map_err(|e| e.to_string()),
        SubjectKind::Unspecified => person().or_else(|_| organisation()).map_err(|_| {
            "is neither a resident identity number nor a unified social credit code".to_owned()
        }),
    }
}

/// The subject `identifier` names (of `kind`, or inferred from its form when unspecified);
/// `None` with the problem added to `v` under `field`.
pub fn parse(
    keys: &Keys,
    kind: i32,
    identifier: &str,
    field: &str,
    v: &mut Violations,
) -> Option<Subject> {
    if identifier.trim().is_empty() {
        v.add(field, "is required");
        return None;
    }
    let Ok(kind) = SubjectKind::try_from(kind) else {
        v.add("subject_kind", "must be person or organisation");
        return None;
    };
    let parsed = canonical(kind, identifier);
    match parsed {
        Ok((kind, identifier)) => Some(Subject {
            kind,
            index: index(keys, kind, &identifier),
            identifier,
        }),
        Err(why) => {
            v.add(field, why);
            None
        }
    }
}

/// The keyed hash an access code is stored as.
pub fn code_index(keys: &Keys, code: &str) -> Hashed {
    keys.hashed(&[b"access", code.trim().as_bytes()])
}

/// A new access code: 128 random bits, hex.
pub fn new_code() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What a record or objection says of whom it concerns and who holds it.
pub struct Concerning<'a> {
    /// The subject the caller named, found to be the one it concerns.
    pub subject: &'a Hashed,
    /// The authority holding the pushing agency's filing.
    pub tenant: &'a str,
    /// The pushing agency's USCC.
    pub agency: &'a str,
}

/// Whether `caller` may act for the subject of what `about` describes: the pushing agency, a
/// regulator holding it (or the region), or the subject with a valid access code. Anyone else
/// learns nothing of the record.
pub async fn may_act_for(
    conn: &mut AnyConnection,
    keys: &Keys,
    caller: &Principal,
    access_code: &str,
    about: &Concerning<'_>,
    now: i64,
) -> Result<(), Error> {
    match caller.kind {
        PrincipalKind::Agency if caller.subject == about.agency => Ok(()),
        PrincipalKind::Regulator
            if Tenant::parse(about.tenant).is_ok_and(|t| caller.tenant.can_see(t)) =>
        {
            Ok(())
        }
        PrincipalKind::Public => check_code(conn, keys, access_code, about.subject, now).await,
        _ => Err(Error::not_found("no such record of this subject")),
    }
}

/// The record `record_id` when it concerns `subject` and `caller` may act for the subject
/// (see [`may_act_for`]); NOT_FOUND alike when it does not exist or concerns someone else.
pub async fn record_for(
    conn: &mut AnyConnection,
    keys: &Keys,
    caller: &Principal,
    access_code: &str,
    subject: &Subject,
    record_id: &str,
    now: i64,
) -> Result<crate::store::RecordRow, Error> {
    let not_found = || Error::not_found(format!("no record {record_id} of this subject"));
    let row = crate::store::find(conn, record_id)
        .await?
        .ok_or_else(not_found)?;
    if !subject.index.matches(&row.subject_index) {
        return Err(not_found());
    }
    let about = Concerning {
        subject: &subject.index,
        tenant: &row.tenant,
        agency: &row.agency_uscc,
    };
    may_act_for(conn, keys, caller, access_code, &about, now).await?;
    Ok(row)
}

/// Refuses unless `code` was issued for `subject` and has not expired.
pub async fn check_code(
    conn: &mut AnyConnection,
    keys: &Keys,
    code: &str,
    subject: &Hashed,
    now: i64,
) -> Result<(), Error> {
    if code.trim().is_empty() {
        return Err(Error::invalid_field(
            "access_code",
            "is required: a service desk issues one for your identity number",
        ));
    }
    if objection_store::access_code_valid(conn, &code_index(keys, code), subject, now).await? {
        Ok(())
    } else {
        Err(Error::permission_denied(
            "access_code: not valid for this identifier, or expired",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_keyed_by_one_form_of_its_identifier_however_written() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load(&Default::default(), dir.path()).unwrap();
        let pushed = canonical(SubjectKind::Person, " 65010219850101006x ").unwrap();
        assert_eq!(pushed, ("person", "65010219850101006X".to_owned()));
        let mut v = Violations::default();
        let asked = parse(&keys, 0, "65010219850101006X", "subject_identifier", &mut v).unwrap();
        assert_eq!(
            (asked.kind, asked.identifier.as_str()),
            ("person", "65010219850101006X")
        );
        assert!(
            asked
                .index
                .matches(&index(&keys, pushed.0, &pushed.1).current)
        );
    }
}
