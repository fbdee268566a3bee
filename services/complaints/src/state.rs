//! What every complaints use case is given, and the reads and moves they share.

use std::sync::Arc;

use crate::config::ReferralsConfig;
use creditmesh_domain::Error;
use creditmesh_domain::calendar::{Calendar, cst_date};
use creditmesh_domain::lifecycle::{Complaint as State, ComplaintEvent, Machine};
use creditmesh_proto::complaints::v1::Complaint;
use creditmesh_rpc::{Authn, CallContext, ServiceStore};
use creditmesh_storage::Blobs;
use creditmesh_storage::sqlx::AnyConnection;

use crate::convert::{complaint_proto, referral_proto};
use crate::store::{self, ComplaintRow};

pub struct Api {
    pub(crate) store: ServiceStore,
    pub(crate) authn: Authn,
    pub(crate) calendar: Arc<Calendar>,
    /// Art. 24 leaves the acceptance period open: see the configuration.
    pub(crate) acceptance_working_days: u32,
    /// Where evidence is kept.
    pub(crate) blobs: Blobs,
    /// The departments complaints may be referred to.
    pub(crate) referrals: Arc<ReferralsConfig>,
    /// Seals a complainant's contact in a referral waiting to be delivered.
    pub(crate) contacts: Arc<creditmesh_pki::ContactKey>,
}

impl Api {
    pub fn new(
        store: ServiceStore,
        authn: Authn,
        calendar: Arc<Calendar>,
        acceptance_working_days: u32,
        blobs: Blobs,
        referrals: Arc<ReferralsConfig>,
        contacts: Arc<creditmesh_pki::ContactKey>,
    ) -> Self {
        Self {
            store,
            authn,
            calendar,
            acceptance_working_days,
            blobs,
            referrals,
            contacts,
        }
    }
}

/// Only a regulator: of the complaint's tenant, or the region.
fn may_handle(ctx: &CallContext, row: &ComplaintRow) -> bool {
    let own = &ctx.principal.tenant;
    own.is_region() || row.tenant == own.to_string()
}

pub(crate) fn today(api: &Api) -> Result<time::Date, Error> {
    cst_date(api.store.now()).map_err(|e| Error::internal(e.to_string()))
}

/// The complaint `tracking_number` as its handler sees it, or `NOT_FOUND` for anyone else.
pub(crate) async fn handled(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    tracking_number: &str,
) -> Result<ComplaintRow, Error> {
    let row = store::find(conn, tracking_number).await?;
    match row {
        Some(row) if may_handle(ctx, &row) => Ok(row),
        _ => Err(Error::not_found(format!(
            "no complaint {tracking_number} for this authority"
        ))),
    }
}

/// The complaint `tracking_number`, as it stood, once moved by `event`; `FAILED_PRECONDITION`
/// naming its state when the machine does not allow the move.
pub(crate) async fn moved(
    conn: &mut AnyConnection,
    ctx: &CallContext,
    tracking_number: &str,
    event: ComplaintEvent,
) -> Result<ComplaintRow, Error> {
    let row = handled(conn, ctx, tracking_number).await?;
    if store::transition(conn, &row.tenant, &row.tracking_number, event)
        .await?
        .is_none()
    {
        return Err(refused_move(&row, event));
    }
    Ok(row)
}

fn refused_move(row: &ComplaintRow, event: ComplaintEvent) -> Error {
    let why = State::parse(&row.status)
        .and_then(|s| s.on(event).err())
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("the complaint is {}", row.status));
    Error::failed_precondition(format!("complaint {}: {why}", row.tracking_number))
}

pub(crate) async fn reread(
    api: &Api,
    ctx: &CallContext,
    conn: &mut AnyConnection,
    tracking_number: &str,
    today: &str,
) -> Result<Complaint, Error> {
    let row = store::find(conn, tracking_number)
        .await?
        .ok_or_else(|| Error::internal("a complaint just written is missing"))?;
    let history = store::history(conn, &row.tenant, &row.tracking_number).await?;
    let referrals = crate::referral_store::of_complaint(conn, &row.tenant, &row.tracking_number)
        .await?
        .into_iter()
        .map(|r| {
            let mut r = referral_proto(r, &api.contacts);
            // The complainant is shown, masked as the caller may see it, on the complaint.
            r.complainant_name.clear();
            r.complainant_contact.clear();
            r
        })
        .collect();
    let mut complaint = complaint_proto(ctx, row, history, today, api.acceptance_working_days);
    complaint.referrals = referrals;
    Ok(complaint)
}
