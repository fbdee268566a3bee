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

        /// A kind of event: its message and the type string that names it on the wire. A
        /// field renamed in `kinds.proto` fails to compile where it is used.
        pub trait EventKind: prost::Message + Default + serde::Serialize {
            const TYPE: &'static str;
        }

        macro_rules! kinds {
            ($($message:ident = $name:literal,)*) => {
                $(
                    impl $message {
                        pub const TYPE: &'static str = $name;
                    }
                    impl EventKind for $message {
                        const TYPE: &'static str = $name;
                    }
                )*
            };
        }

        kinds! {
            FilingSubmitted = "filing.submitted",
            ChangeSubmitted = "filing.change_submitted",
            FilingTransferred = "filing.transferred",
            AnnualReportSubmitted = "filing.annual_report_submitted",
            DeregistrationRequested = "filing.deregistration_requested",
            FilingRevokedForNoReport = "filing.revoked",
            FilingDecided = "review.filing_decided",
            ReviewForwarded = "review.task_forwarded",
            FilingRevoked = "review.filing_revoked",
            RevocationReferred = "review.revocation_referred",
            PlaceSupervised = "review.place_supervised",
            PlaceReported = "filing.place_reported",
            AgencyHandedOver = "review.agency_handed_over",
            ReferralDeclined = "complaints.referral_declined",
            ReferralReceived = "complaints.referral_received",
            ChangeDecided = "review.change_decided",
            DeregistrationDecided = "review.deregistration_decided",
            DeregistrationCompleted = "review.deregistration_completed",
            DeadlineRecomputed = "review.deadline_recomputed",
            SpotCheckDrawn = "review.spot_check_drawn",
            ComplaintSubmitted = "complaints.complaint_submitted",
            ComplaintResolved = "complaints.complaint_resolved",
            RegisterChanged = "filing.register_changed",
            ObjectionOverdue = "datapush.objection_overdue",
            SubjectTold = "datapush.subject_told",
        }
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

/// Fully qualified names of the five business services, as routed by the gateway.
pub const SERVICE_NAMES: [&str; 5] = [
    "creditmesh.filing.v1.FilingService",
    "creditmesh.review.v1.ReviewService",
    "creditmesh.disclosure.v1.DisclosureService",
    "creditmesh.complaints.v1.ComplaintService",
    "creditmesh.datapush.v1.DataPushService",
];
