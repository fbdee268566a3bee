//! What every register use case is given, and who may act on a notice.

use std::sync::Arc;

use creditmesh_domain::Error;
use creditmesh_rpc::{Authn, CallContext, ServiceStore};

use crate::checkpoint::LogKeys;

/// The longest correction text, in characters.
pub const MAX_CORRECTION_CHARS: usize = 2000;

pub struct Api {
    pub store: ServiceStore,
    pub authn: Authn,
    pub key: Arc<LogKeys>,
    pub register: Arc<crate::config::RegisterConfig>,
}

/// A prefecture acts on the register only for the agencies whose filing it holds; the region
/// for all.
pub(crate) fn holds(ctx: &CallContext, tenant: &str) -> Result<(), Error> {
    let own = &ctx.principal.tenant;
    if !own.is_region() && tenant != own.to_string() {
        return Err(Error::permission_denied(
            "a prefecture acts only on the notices of agencies whose filing it holds",
        ));
    }
    Ok(())
}
