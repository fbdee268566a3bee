//! Who may call what: one deny-by-default table of method × role. A method missing here is
//! refused; a unit test fails when any RPC of the contracts has no entry.

use creditmesh_domain::{Principal, PrincipalKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agency,
    /// A prefecture's or a county's social-credit authority: the service decides what its tenant sees.
    PrefectureRegulator,
    RegionalRegulator,
    Department,
    Public,
    Service,
}

impl Role {
    pub fn of(principal: &Principal) -> Role {
        match principal.kind {
            PrincipalKind::Agency => Role::Agency,
            PrincipalKind::Regulator if principal.tenant.is_region() => Role::RegionalRegulator,
            PrincipalKind::Regulator => Role::PrefectureRegulator,
            PrincipalKind::Department => Role::Department,
            PrincipalKind::Service => Role::Service,
            PrincipalKind::Public => Role::Public,
        }
    }
}

use Role::*;

const REGULATORS: &[Role] = &[PrefectureRegulator, RegionalRegulator];
const AGENCY_AND_REGULATORS: &[Role] = &[Agency, PrefectureRegulator, RegionalRegulator];
const EVERYONE: &[Role] = &[
    Public,
    Agency,
    PrefectureRegulator,
    RegionalRegulator,
    Department,
];
/// Reached service to service only, never through the gateway.
const NOBODY: &[Role] = &[];

/// `(package.Service/Method, roles allowed)`.
pub const POLICY: &[(&str, &[Role])] = &[
    // filing (Art. 6-8, 10-12, 18)
    (
        "creditmesh.filing.v1.FilingService/UploadDocument",
        &[Agency],
    ),
    ("creditmesh.filing.v1.FilingService/SubmitFiling", &[Agency]),
    ("creditmesh.filing.v1.FilingService/SubmitChange", &[Agency]),
    (
        "creditmesh.filing.v1.FilingService/SubmitAnnualReport",
        &[Agency],
    ),
    (
        "creditmesh.filing.v1.FilingService/RequestDeregistration",
        &[Agency],
    ),
    (
        "creditmesh.filing.v1.FilingService/GetFiling",
        AGENCY_AND_REGULATORS,
    ),
    (
        "creditmesh.filing.v1.FilingService/ListFilings",
        AGENCY_AND_REGULATORS,
    ),
    (
        "creditmesh.filing.v1.FilingService/ReadDocument",
        &[Agency, PrefectureRegulator, RegionalRegulator, Department],
    ),
    // review and supervision (Art. 9-11, 13-16, 18)
    (
        "creditmesh.review.v1.ReviewService/ListReviewTasks",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/GetReviewTask",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/DecideReviewTask",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/ImportDishonestyList",
        &[RegionalRegulator],
    ),
    (
        "creditmesh.review.v1.ReviewService/UpsertDishonestyEntry",
        &[RegionalRegulator],
    ),
    (
        "creditmesh.review.v1.ReviewService/RemoveDishonestyEntry",
        &[RegionalRegulator],
    ),
    (
        "creditmesh.review.v1.ReviewService/ListDishonestyEntries",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RecordInterview",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/IssueRectificationOrder",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RecordRectificationOutcome",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RecordInspection",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RecordFinding",
        REGULATORS,
    ),
    ("creditmesh.review.v1.ReviewService/SetRiskTier", REGULATORS),
    (
        "creditmesh.review.v1.ReviewService/DrawSpotCheck",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RevokeFiling",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/RecordDisposal",
        REGULATORS,
    ),
    (
        "creditmesh.review.v1.ReviewService/GetCreditFile",
        AGENCY_AND_REGULATORS,
    ),
    // disclosure: the public register (Art. 7, 10, 15, 18, 19)
    (
        "creditmesh.disclosure.v1.DisclosureService/ListAgencies",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetAgency",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/ListNotices",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetFeeSchedule",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetRegisterHead",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetNoticeProof",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetConsistencyProof",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/GetTile",
        EVERYONE,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/PublishCorrection",
        REGULATORS,
    ),
    (
        "creditmesh.disclosure.v1.DisclosureService/EraseNotice",
        REGULATORS,
    ),
    // complaints (Art. 24)
    (
        "creditmesh.complaints.v1.ComplaintService/SubmitComplaint",
        EVERYONE,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/UploadEvidence",
        EVERYONE,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/ReadEvidence",
        &[PrefectureRegulator, RegionalRegulator, Department],
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/TrackComplaint",
        EVERYONE,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/GetComplaint",
        REGULATORS,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/ListComplaints",
        REGULATORS,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/AcceptComplaint",
        REGULATORS,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/ResolveComplaint",
        REGULATORS,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/ReferComplaint",
        REGULATORS,
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/ListReferrals",
        &[Department],
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/AcknowledgeReferral",
        &[Department],
    ),
    (
        "creditmesh.complaints.v1.ComplaintService/DeclineReferral",
        &[Department],
    ),
    // Implemented by department nodes; the platform calls it, nobody calls it here.
    (
        "creditmesh.complaints.v1.ReferralReceiverService/ReceiveReferral",
        NOBODY,
    ),
    (
        "creditmesh.complaints.v2.ReferralReceiverService/ReceiveReferral",
        NOBODY,
    ),
    // datapush (Art. 21-23, 27)
    (
        "creditmesh.datapush.v1.DataPushService/PushRecords",
        &[Agency],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/GetRecord",
        &[Agency, PrefectureRegulator, RegionalRegulator, Department],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/FindRecords",
        &[PrefectureRegulator, RegionalRegulator, Department],
    ),
    // The subject objects with an access code a desk issued; a desk or the agency for them.
    (
        "creditmesh.datapush.v1.DataPushService/FileObjection",
        &[Public, Agency, PrefectureRegulator, RegionalRegulator],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/UploadObjectionMaterial",
        &[Public, Agency, PrefectureRegulator, RegionalRegulator],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/ReadObjectionMaterial",
        &[Agency, PrefectureRegulator, RegionalRegulator],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/RecordAgencyUse",
        &[Agency],
    ),
    // The agency while its filing stands; the authority holding it once it is gone.
    (
        "creditmesh.datapush.v1.DataPushService/ResolveObjection",
        AGENCY_AND_REGULATORS,
    ),
    (
        "creditmesh.datapush.v1.DataPushService/ListObjections",
        AGENCY_AND_REGULATORS,
    ),
    (
        "creditmesh.datapush.v1.DataPushService/AddSubjectStatement",
        &[Public, PrefectureRegulator, RegionalRegulator],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/IssueSubjectAccessCode",
        REGULATORS,
    ),
    (
        "creditmesh.datapush.v1.DataPushService/GetSubjectReport",
        &[Public, Agency, PrefectureRegulator, RegionalRegulator],
    ),
    (
        "creditmesh.datapush.v1.DataPushService/ListCorrectionNotices",
        &[Agency, PrefectureRegulator, RegionalRegulator, Department],
    ),
    // Outbox deliveries travel service to service.
    ("creditmesh.events.v1.EventSinkService/Deliver", NOBODY),
    ("creditmesh.events.v1.EventSinkService/DeliverBatch", NOBODY),
    // The register submits its checkpoints to witnesses service to service.
    (
        "creditmesh.disclosure.v1.WitnessService/AddCheckpoint",
        NOBODY,
    ),
];

/// The roles allowed to call `method` (`package.Service/Method`); `None` when the method is
/// not in the policy, which refuses it.
pub fn allowed(method: &str) -> Option<&'static [Role]> {
    static BY_METHOD: std::sync::OnceLock<std::collections::HashMap<&str, &[Role]>> =
        std::sync::OnceLock::new();
    BY_METHOD
        .get_or_init(|| POLICY.iter().copied().collect())
        .get(method)
        .copied()
}

/// Whether any role of the public listener may call `method`.
pub fn is_public(method: &str) -> bool {
    allowed(method).is_some_and(|roles| roles.contains(&Public))
}

/// The services with a method the public may call, in the order of the policy.
pub fn public_services() -> Vec<&'static str> {
    let mut services: Vec<&'static str> = Vec::new();
    for (method, roles) in POLICY {
        let service = method.split_once('/').map_or(*method, |(s, _)| s);
        if roles.contains(&Public) && !services.contains(&service) {
            services.push(service);
        }
    }
    services
}

/// Whether a call of `method` may be sent again after a replica failed under it: its
/// contract marks it `NO_SIDE_EFFECTS` (a read) or `IDEMPOTENT` (a write keyed by its
/// `request_id`, which a replica answers a second time from what it stored), and the caller
/// sends one message.
pub fn replayable(method: &str) -> bool {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static REPLAYABLE: OnceLock<HashSet<String>> = OnceLock::new();
    REPLAYABLE
        .get_or_init(|| {
            contract_methods()
                .filter(|m| !m.client_streaming && m.idempotent)
                .map(|m| m.path)
                .collect()
        })
        .contains(method)
}

/// One RPC of the contracts, as the descriptors describe it.
struct ContractMethod {
    /// `package.Service/Method`.
    path: String,
    client_streaming: bool,
    /// Marked `NO_SIDE_EFFECTS` or `IDEMPOTENT`.
    idempotent: bool,
}

fn contract_methods() -> impl Iterator<Item = ContractMethod> {
    use prost::Message;
    use prost_types::method_options::IdempotencyLevel;
    let fds = prost_types::FileDescriptorSet::decode(creditmesh_proto::FILE_DESCRIPTOR_SET)
        .expect("the contracts' descriptors decode");
    fds.file.into_iter().flat_map(|file| {
        let package = file.package.unwrap_or_default();
        file.service.into_iter().flat_map(move |service| {
            let package = package.clone();
            let service_name = service.name.unwrap_or_default();
            service.method.into_iter().map(move |method| {
                let level = method
                    .options
                    .as_ref()
                    .map_or(IdempotencyLevel::IdempotencyUnknown, |o| {
                        o.idempotency_level()
                    });
                ContractMethod {
                    path: format!("{package}.{service_name}/{}", method.name()),
                    client_streaming: method.client_streaming(),
                    idempotent: matches!(
                        level,
                        IdempotencyLevel::NoSideEffects | IdempotencyLevel::Idempotent
                    ),
                }
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;

    use super::*;

    #[test]
    fn reads_and_writes_keyed_by_request_id_may_be_replayed_nothing_else() {
        for m in [
            "creditmesh.filing.v1.FilingService/GetFiling",
            "creditmesh.filing.v1.FilingService/SubmitFiling",
            "creditmesh.disclosure.v1.DisclosureService/GetTile",
            "creditmesh.complaints.v1.ComplaintService/SubmitComplaint",
        ] {
            assert!(replayable(m), "{m}");
        }
        for m in [
            // Streams and reads logged as a use of personal data are sent once.
            "creditmesh.filing.v1.FilingService/UploadDocument",
            "creditmesh.datapush.v1.DataPushService/PushRecords",
            "creditmesh.datapush.v1.DataPushService/GetRecord",
            "creditmesh.datapush.v1.DataPushService/IssueSubjectAccessCode",
            "creditmesh.complaints.v1.ComplaintService/AcknowledgeReferral",
            "no.such.Service/Method",
        ] {
            assert!(!replayable(m), "{m}");
        }
    }

    /// A write marked `IDEMPOTENT` is one a replica can recognise when it comes again: its
    /// request carries the `request_id` it is keyed by.
    #[test]
    fn every_idempotent_write_carries_a_request_id() {
        use prost_types::method_options::IdempotencyLevel;
        let fds =
            prost_types::FileDescriptorSet::decode(creditmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let messages: std::collections::HashMap<String, Vec<String>> = fds
            .file
            .iter()
            .flat_map(|f| {
                f.message_type.iter().map(move |m| {
                    (
                        format!("{}.{}", f.package(), m.name()),
                        m.field.iter().map(|x| x.name().to_owned()).collect(),
                    )
                })
            })
            .collect();
        let mut writes = 0;
        for file in &fds.file {
            for service in &file.service {
                for method in &service.method {
                    let level = method.options.as_ref().map(|o| o.idempotency_level());
                    if level != Some(IdempotencyLevel::Idempotent) {
                        continue;
                    }
                    writes += 1;
                    let input = method.input_type().trim_start_matches('.');
                    assert!(
                        messages[input].iter().any(|f| f == "request_id"),
                        "{} is marked IDEMPOTENT but {input} has no request_id",
                        method.name()
                    );
                }
            }
        }
        assert!(writes >= 20, "{writes} idempotent writes");
    }

    fn contract_methods() -> BTreeSet<String> {
        let fds = prost_types::FileDescriptorSet::decode(creditmesh_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut out = BTreeSet::new();
        for file in fds.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                for method in service.method {
                    out.insert(format!(
                        "{package}.{}/{}",
                        service.name.clone().unwrap_or_default(),
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
        out
    }

    #[test]
    fn every_rpc_of_the_contracts_has_an_entry() {
        let methods = contract_methods();
        assert!(
            methods.len() > 40,
            "the contracts were not read: {methods:?}"
        );
        let missing: Vec<_> = methods.iter().filter(|m| allowed(m).is_none()).collect();
        assert!(
            missing.is_empty(),
            "methods without a policy entry: {missing:?}"
        );
    }

    #[test]
    fn every_entry_names_a_real_rpc_once() {
        let methods = contract_methods();
        let mut seen = BTreeSet::new();
        for (m, _) in POLICY {
            assert!(methods.contains(*m), "policy names an unknown method {m}");
            assert!(seen.insert(*m), "policy names {m} twice");
        }
    }

    #[test]
    fn the_public_is_shown_the_services_it_may_call() {
        assert_eq!(
            public_services(),
            [
                "creditmesh.disclosure.v1.DisclosureService",
                "creditmesh.complaints.v1.ComplaintService",
                "creditmesh.datapush.v1.DataPushService",
            ]
        );
    }

    #[test]
    fn the_public_reaches_reads_and_complaints_only() {
        assert!(is_public(
            "creditmesh.disclosure.v1.DisclosureService/ListAgencies"
        ));
        assert!(is_public(
            "creditmesh.complaints.v1.ComplaintService/SubmitComplaint"
        ));
        assert!(!is_public(
            "creditmesh.complaints.v1.ComplaintService/ListComplaints"
        ));
        assert!(!is_public(
            "creditmesh.filing.v1.FilingService/SubmitFiling"
        ));
        assert!(!is_public("creditmesh.events.v1.EventSinkService/Deliver"));
        assert!(allowed("creditmesh.nothing.v1.Nothing/Do").is_none());
    }
}
