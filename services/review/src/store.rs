//! SQL of the review tables; database errors are translated here.

use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// The deadlines running, by tenant and kind, for the gauges: open review tasks and
/// rectification orders.
pub const OPEN_DEADLINES: &str = "SELECT tenant, kind, deadline_due AS due FROM review_task \
     WHERE status = 'open' AND deadline_due <> '' \
     UNION ALL SELECT tenant, 'rectification', due_date FROM review_rectification \
     WHERE status = 'open'";

pub struct Entry {
    pub tenant: String,
    pub entry_id: String,
    pub uscc: String,
    pub kind: String,
    pub recorded_at: i64,
    pub principal: String,
    pub summary: String,
    pub details: Vec<u8>,
}

/// Writes an entry once: an entry already written under its tenant and id is left as it is.
pub async fn insert_entry(conn: &mut AnyConnection, e: &Entry) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO review_credit_file (tenant, entry_id, uscc, kind, recorded_at, principal, \
         summary, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant, entry_id) DO NOTHING",
    )
    .bind(e.tenant.clone())
    .bind(e.entry_id.clone())
    .bind(e.uscc.clone())
    .bind(e.kind.clone())
    .bind(e.recorded_at)
    .bind(e.principal.clone())
    .bind(e.summary.clone())
    .bind(e.details.clone())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A page of the credit file of `uscc`, oldest first, after the entry `(recorded_at,
/// entry_id)` when given; `tenant` restricts it to the entries that tenant may see (a
/// prefecture's own and its counties', as `Tenant::can_see` says).
pub async fn entries(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: Option<&str>,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<Entry>, StorageError> {
    let (at, id) = after.unwrap_or((i64::MIN, ""));
    let rows = sqlx::query(
        "SELECT tenant, entry_id, uscc, kind, recorded_at, principal, summary, details \
         FROM review_credit_file WHERE uscc = $1 AND ($2 = '' OR tenant = $2 \
         OR (substr($2, 5, 2) = '00' AND substr(tenant, 1, 4) = substr($2, 1, 4))) \
         AND (recorded_at > $3 OR (recorded_at = $3 AND entry_id > $4)) \
         ORDER BY recorded_at, entry_id LIMIT $5",
    )
    .bind(uscc.to_owned())
    .bind(tenant.unwrap_or_default().to_owned())
    .bind(at)
    .bind(id.to_owned())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                tenant: r.try_get(0)?,
                entry_id: r.try_get(1)?,
                uscc: r.try_get(2)?,
                kind: r.try_get(3)?,
                recorded_at: r.try_get(4)?,
                principal: r.try_get(5)?,
                summary: r.try_get(6)?,
                details: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Whether `entry_id` is an entry of `kind` in the credit file of `uscc`.
pub async fn entry_is(
    conn: &mut AnyConnection,
    entry_id: &str,
    uscc: &str,
    kind: &str,
) -> Result<bool, StorageError> {
    Ok(sqlx::query(
        "SELECT 1 FROM review_credit_file WHERE entry_id = $1 AND uscc = $2 AND kind = $3",
    )
    .bind(entry_id.to_owned())
    .bind(uscc.to_owned())
    .bind(kind.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// Enters `party` in `tenant`'s register of supervised parties, once.
pub async fn enter_party(
    conn: &mut AnyConnection,
    tenant: &str,
    party: &crate::party::Party,
    at: i64,
    principal: &str,
) -> Result<(), StorageError> {
    use crate::party::Party;
    let (kind, name, document) = match party {
        Party::Agency { name, .. } => ("agency", name.clone(), String::new()),
        Party::Practitioner { name, document, .. } => (
            "practitioner",
            name.clone(),
            format!(
                "{} {}",
                document.kind().name(),
                creditmesh_domain::mask::identity_number(document.number())
            ),
        ),
    };
    sqlx::query(
        "INSERT INTO review_party (tenant, party, kind, name, document, recorded_at, principal) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant, party) DO NOTHING",
    )
    .bind(tenant.to_owned())
    .bind(party.key().to_owned())
    .bind(kind)
    .bind(name)
    .bind(document)
    .bind(at)
    .bind(principal.to_owned())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `(kind, name)` of `party` as the first authority that entered it, among those `tenant`
/// may see (every one when `None`), has it.
pub async fn party(
    conn: &mut AnyConnection,
    party: &str,
    tenant: Option<&str>,
) -> Result<Option<(String, String)>, StorageError> {
    let row = sqlx::query(
        "SELECT kind, name FROM review_party WHERE party = $1 AND ($2 = '' OR tenant = $2 \
         OR (substr($2, 5, 2) = '00' AND substr(tenant, 1, 4) = substr($2, 1, 4))) \
         ORDER BY recorded_at, tenant LIMIT 1",
    )
    .bind(party.to_owned())
    .bind(tenant.unwrap_or_default().to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}
