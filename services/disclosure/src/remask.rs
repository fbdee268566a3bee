//! The register's records masked again when the masking policy changes (Art. 10: 脱敏后公示):
//! what GetAgency and ListAgencies show follows the current policy from the next start,
//! whichever replica starts first. Notices already in the append-only log keep their words;
//! a notice that let personal data through is erased by a regulator's decision.

use creditmesh_domain::Error;
use creditmesh_domain::mask::POLICY_VERSION;
use creditmesh_domain::tenant::REGION;
use creditmesh_rpc::{CallContext, ServiceStore, Written};

use crate::events::remasked;
use crate::store;

/// Masks every record shown under an older policy by the current one; answers how many.
pub async fn run(store: &ServiceStore, ctx: &CallContext) -> Result<usize, Error> {
    // Once every record is current, a start costs one read and leaves no audit line.
    let mut conn = store.db.acquire().await?;
    let stale = store::masked_otherwise(&mut conn, POLICY_VERSION, 1).await?;
    drop(conn);
    if stale.is_empty() {
        return Ok(0);
    }
    let remasked_count = store
        .write(ctx, "Remask", |mut tx| async move {
            let mut count = 0;
            for (uscc, filing_id) in
                store::masked_otherwise(&mut tx, POLICY_VERSION, i64::MAX).await?
            {
                let Some(mut record) = store::agency(&mut tx, &uscc).await? else {
                    continue;
                };
                if remasked(&mut record) {
                    store::put_agency(&mut tx, &filing_id, &record, store.now()).await?;
                    count += 1;
                }
            }
            Ok((
                tx,
                Written {
                    value: count,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await?;
    tracing::info!(
        remasked = remasked_count,
        policy = POLICY_VERSION,
        "register records masked again"
    );
    Ok(remasked_count)
}
