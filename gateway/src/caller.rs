//! Who is calling, as the gateway derives it from the connection: what the gate charges and
//! the proxy forwards.

use std::sync::Arc;

use creditmesh_domain::Principal;

use crate::policy::Role;

/// Who is calling, as the gateway derived it from the connection.
pub struct Caller {
    pub principal: Principal,
    pub role: Role,
    /// The principal's SPIFFE id; `public` for the public.
    pub id: Arc<str>,
    /// What rates and per-caller places are counted by: the principal, or the client address
    /// for the public.
    pub key: Arc<str>,
    /// The tenant whose share the call takes; `public` for the public.
    pub tenant: Arc<str>,
    /// The client certificate's serial, checked on every call against the revocation list.
    pub serial: Option<Vec<u8>>,
}
