//! The kit every creditmesh service is built with: error mapping, call context, the write path
//! (transaction + audit + outbox), event sinks and the outbox relay, streamed uploads and
//! downloads, the service definition; over the transport of `creditmesh-transport`, which it
//! re-exports.

pub mod context;
pub mod deadlines;
pub mod download;
pub mod edge;
pub mod error;
pub mod identity;
pub mod lane;
pub mod relay;
pub mod service;
pub mod sink;
pub mod store;
pub mod timer;
pub mod upload;

// The transport, as the services have always reached it through this crate.
pub use creditmesh_transport::{
    MAX_MESSAGE_BYTES, client, coalesce, codec_status, connections, in_flight, listener, metrics,
    resolve, standard, telemetry, trace,
};

pub use context::{
    Authn, CLIENT_ADDRESS_HEADER, CONSOLE_SERVICE, CallContext, FORWARDED_FOR_HEADER,
    FORWARDER_HEADER, OFFICER_CERT_HEADER, PRINCIPAL_HEADER, PeerLayer, REQUEST_ID_HEADER,
};
pub use error::{status, status_from};
pub use lane::LaneLayer;
pub use relay::prost_types_timestamp as timestamp;
pub use service::{ServiceDef, ServiceEnv};
pub use store::{ServiceStore, Written};
