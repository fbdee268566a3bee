//! Pure domain rules of creditmesh: tenants, principals and the error vocabulary.
//!
//! Nothing here performs I/O or knows about gRPC or SQL; see `ARCHITECTURE.md`.

pub mod calendar;
pub mod clock;
pub mod contact;
pub mod department;
pub mod divisions;
pub mod error;
pub mod facts;
pub mod identity_document;
pub mod lifecycle;
pub mod mask;
pub mod measures;
pub mod page;
pub mod principal;
pub mod resident_id;
pub mod routing;
pub mod tenant;
pub mod uscc;

pub use clock::{Clock, SystemClock};
pub use error::{Error, ErrorCode, FieldViolation, Violations};
pub use principal::{Principal, PrincipalKind};
pub use tenant::Tenant;
pub use uscc::Uscc;
