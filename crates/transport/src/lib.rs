//! The transport every node shares: TLS listeners and channels, connections and their
//! limits, calls in flight, coalescing, the codec's status, telemetry, metrics, reflection,
//! and the headers by which the gateway and its forwarders speak to the services. It holds no
//! storage: the gateway and the website build on it alone.

pub mod client;
pub mod coalesce;
pub mod codec_status;
pub mod connections;
pub mod headers;
pub mod in_flight;
pub mod listener;
pub mod metrics;
pub mod resolve;
pub mod standard;
pub mod telemetry;
pub mod trace;

/// The largest message a service decodes; larger ones are refused with `RESOURCE_EXHAUSTED`.
/// Documents travel in chunks below it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

pub use headers::{
    CLIENT_ADDRESS_HEADER, CONSOLE_SERVICE, FORWARDED_FOR_HEADER, FORWARDER_HEADER,
    OFFICER_CERT_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER,
};
