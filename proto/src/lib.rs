//! The gRPC contracts of creditmesh, one module per proto package.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

/// Encoded `FileDescriptorSet` of every creditmesh proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/creditmesh_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("creditmesh.common.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("creditmesh.events.v1");

        /// A kind of event: its message, the type string that names it on the wire, and the
        /// services that consume it (each through its event sink). A field renamed in
        /// `kinds.proto` fails to compile where it is used.
        pub trait EventKind: prost::Message + Default + serde::Serialize {
            const TYPE: &'static str;
            const CONSUMERS: &'static [&'static str];
        }

        macro_rules! kinds {
            ($($message:ident = $name:literal => [$($consumer:literal),*],)*) => {
                $(
                    impl $message {
                        pub const TYPE: &'static str = $name;
                        pub const CONSUMERS: &'static [&'static str] = &[$($consumer),*];
                    }
                    impl EventKind for $message {
                        const TYPE: &'static str = $name;
                        const CONSUMERS: &'static [&'static str] = &[$($consumer),*];
                    }
                )*

                /// Every kind's type and consumers.
                pub const ROUTES: &[(&str, &[&str])] = &[$(($name, &[$($consumer),*])),*];
            };
        }

        // Who consumes what, in one place: a producer writes an outbox row for each consumer
        // in the transaction of the change.
        kinds! {
            FilingSubmitted = "filing.submitted" => ["review"],
            ChangeSubmitted = "filing.change_submitted" => ["review"],
            FilingTransferred = "filing.transferred" => ["review"],
            AnnualReportSubmitted = "filing.annual_report_submitted" => ["review"],
            DeregistrationRequested = "filing.deregistration_requested" => ["review"],
            FilingRevokedForNoReport = "filing.revoked" => ["review"],
            FilingDecided = "review.filing_decided" => ["filing", "disclosure"],
            // A prefecture's reviewed materials go to the region's review (Art. 10).
            ReviewForwarded = "review.task_forwarded" => ["review"],
            FilingRevoked = "review.filing_revoked" => ["filing", "disclosure"],
            // Complaints delivers referrals to the departments' nodes (Art. 15(3)).
            RevocationReferred = "review.revocation_referred" => ["complaints"],
            // Filing lets the authority of a place of activity open what the agency filed.
            PlaceSupervised = "review.place_supervised" => ["filing"],
            PlaceReported = "filing.place_reported" => ["review"],
            // A transferred filing's review rows go to the receiving authority's review.
            AgencyHandedOver = "review.agency_handed_over" => ["review"],
            // A referral received opens the department's case in datapush; a decline ends it.
            ReferralDeclined = "complaints.referral_declined" => ["datapush"],
            ReferralReceived = "complaints.referral_received" => ["datapush"],
            ChangeDecided = "review.change_decided" => ["filing", "disclosure"],
            DeregistrationDecided = "review.deregistration_decided" => ["filing", "disclosure"],
            DeregistrationCompleted = "review.deregistration_completed" => ["filing", "disclosure"],
            DeadlineRecomputed = "review.deadline_recomputed" => ["filing", "disclosure"],
            SpotCheckDrawn = "review.spot_check_drawn" => ["filing", "disclosure"],
            ComplaintSubmitted = "complaints.complaint_submitted" => ["review"],
            ComplaintResolved = "complaints.complaint_resolved" => ["review"],
            // The register; complaints routes a complaint to the authority holding the filing;
            // datapush lets only agencies the register shows active push.
            RegisterChanged = "filing.register_changed" => ["disclosure", "complaints", "datapush"],
            ObjectionOverdue = "datapush.objection_overdue" => ["review"],
            SubjectTold = "datapush.subject_told" => ["complaints"],
        }

        /// A declined referral of a revocation (Art. 15(3)) goes back to review as well, which
        /// gives the holding authority a supervision task.
        pub const REVOCATION_REFERRAL_DECLINED_CONSUMERS: &[&str] = &["review", "datapush"];
    }
}

pub mod filing {
    pub mod v1 {
        tonic::include_proto!("creditmesh.filing.v1");
    }
}

pub mod review {
    pub mod v1 {
        tonic::include_proto!("creditmesh.review.v1");
    }
}

pub mod disclosure {
    pub mod v1 {
        tonic::include_proto!("creditmesh.disclosure.v1");
    }
}

pub mod complaints {
    pub mod v1 {
        tonic::include_proto!("creditmesh.complaints.v1");
    }
    /// The referral receiver whose request carries the referral's bytes as encoded.
    pub mod v2 {
        tonic::include_proto!("creditmesh.complaints.v2");
    }
}

pub mod datapush {
    pub mod v1 {
        tonic::include_proto!("creditmesh.datapush.v1");
    }
}

/// What one message of an upload stream carries: the metadata (first), or a chunk of the
/// content; an empty message carries neither.
pub enum UploadPart<M> {
    Metadata(M),
    Chunk(Vec<u8>),
    Empty,
}

/// A message of an upload stream (`oneof part { metadata = 1; bytes chunk = 2; }`).
pub trait UploadMessage {
    type Metadata;
    fn into_part(self) -> UploadPart<Self::Metadata>;
}

macro_rules! upload_messages {
    ($($message:path => $part:path, $metadata:path;)*) => {$(
        impl UploadMessage for $message {
            type Metadata = $metadata;
            fn into_part(self) -> UploadPart<$metadata> {
                use $part as Part;
                match self.part {
                    Some(Part::Metadata(m)) => UploadPart::Metadata(m),
                    Some(Part::Chunk(bytes)) => UploadPart::Chunk(bytes),
                    None => UploadPart::Empty,
                }
            }
        }
    )*};
}

upload_messages! {
    filing::v1::UploadDocumentRequest => filing::v1::upload_document_request::Part, filing::v1::DocumentMetadata;
    complaints::v1::UploadEvidenceRequest => complaints::v1::upload_evidence_request::Part, complaints::v1::EvidenceMetadata;
    datapush::v1::UploadObjectionMaterialRequest => datapush::v1::upload_objection_material_request::Part, datapush::v1::MaterialMetadata;
}

/// Fully qualified names of the five business services, as routed by the gateway.
pub const SERVICE_NAMES: [&str; 5] = [
    "creditmesh.filing.v1.FilingService",
    "creditmesh.review.v1.ReviewService",
    "creditmesh.disclosure.v1.DisclosureService",
    "creditmesh.complaints.v1.ComplaintService",
    "creditmesh.datapush.v1.DataPushService",
];

#[cfg(test)]
mod tests {
    use super::events::v1::{REVOCATION_REFERRAL_DECLINED_CONSUMERS, ROUTES};

    #[test]
    fn every_event_kind_goes_to_services_that_exist_once_each() {
        let services = ["filing", "review", "disclosure", "complaints", "datapush"];
        let mut types: Vec<&str> = ROUTES.iter().map(|(t, _)| *t).collect();
        types.sort();
        types.dedup();
        assert_eq!(types.len(), ROUTES.len(), "a type named twice");
        for (kind, consumers) in ROUTES.iter().copied().chain([(
            "revocation referral declined",
            REVOCATION_REFERRAL_DECLINED_CONSUMERS,
        )]) {
            assert!(!consumers.is_empty(), "{kind} goes nowhere");
            for c in consumers {
                assert!(
                    services.contains(c),
                    "{kind} goes to {c}, which is no service"
                );
            }
        }
    }
}
