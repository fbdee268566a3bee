//! The register's records masked again when the masking policy changes (Art. 10: 脱敏后公示):
//! what GetAgency and ListAgencies show follows the current policy from the next start,
//! whichever replica starts first. Notices already in the append-only log keep their words;
//! a notice that let personal data through is erased by a regulator's decision.

use creditmesh_domain::Error;
use creditmesh_domain::mask::POLICY_VERSION;
use creditmesh_domain::tenant::REGION;
use creditmesh_rpc::{CallContext, ServiceStore, Written};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, Row};

use crate::events::remasked;
use crate::store;

/// Masks every record shown under an older policy by the current one; answers how many.
pub async fn run(store: &ServiceStore, ctx: &CallContext) -> Result<usize, Error> {
    // Once every record is current, a start costs one read and leaves no audit line.
    let mut conn = store.db.acquire().await?;
    let stale = sqlx::query("SELECT 1 FROM disclosure_agency WHERE masking_policy_version <> $1")
        .bind(POLICY_VERSION)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StorageError::from)?
        .is_some();
    drop(conn);
    if !stale {
        return Ok(0);
    }
    let remasked_count = store
        .write(ctx, "Remask", |mut tx| async move {
            let rows = sqlx::query(
                "SELECT uscc, filing_id FROM disclosure_agency \
                 WHERE masking_policy_version <> $1 ORDER BY uscc",
            )
            .bind(POLICY_VERSION)
            .fetch_all(&mut *tx)
            .await
            .map_err(StorageError::from)?;
            let mut count = 0;
            for r in &rows {
                let uscc: String = r.try_get(0).map_err(StorageError::from)?;
                let filing_id: String = r.try_get(1).map_err(StorageError::from)?;
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
