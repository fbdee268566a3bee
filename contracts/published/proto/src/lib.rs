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
