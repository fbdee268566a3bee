//! The gRPC edge shared by creditmesh services: error mapping, call context, the write path
//! (transaction + audit + outbox), mTLS listeners, event sinks and the outbox relay.

pub mod client;
pub mod coalesce;
pub mod codec_status;
pub mod connections;
pub mod context;
pub mod deadlines;
pub mod download;
pub mod edge;
pub mod error;
pub mod identity;
pub mod in_flight;
pub mod lane;
pub mod listener;
pub mod metrics;
pub mod relay;
pub mod resolve;
pub mod service;
pub mod sink;
pub mod standard;
pub mod store;
pub mod telemetry;
pub mod trace;
pub mod upload;

/// The largest message a service decodes; larger ones are refused with `RESOURCE_EXHAUSTED`.
/// Documents travel in chunks below it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

pub use context::{
    Authn, CLIENT_ADDRESS_HEADER, CONSOLE_SERVICE, CallContext, FORWARDED_FOR_HEADER,
    FORWARDER_HEADER, OFFICER_CERT_HEADER, PRINCIPAL_HEADER, PeerLayer, REQUEST_ID_HEADER,
};
pub use error::{status, status_from};
pub use lane::LaneLayer;
pub use relay::prost_types_timestamp as timestamp;
pub use service::{ServiceDef, ServiceEnv};
pub use store::{ServiceStore, Written};
