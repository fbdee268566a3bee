//! Which agencies may push: those whose filing the register shows active (filing's
//! `register_changed`), and the authority holding each.

use creditmesh_domain::lifecycle::{Filing, Machine};
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};

/// Records an agency's standing as of `at`; a notice older than what is known changes nothing.
pub async fn put(
    conn: &mut AnyConnection,
    uscc: &str,
    tenant: &str,
    status: &str,
    at: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO datapush_agency (uscc, tenant, status, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, status = excluded.status, \
         updated_at = excluded.updated_at WHERE datapush_agency.updated_at <= excluded.updated_at",
    )
    .bind(uscc.to_owned())
    .bind(tenant.to_owned())
    .bind(status.to_owned())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The filing of an agency as the register shows it: its holding authority and status.
pub struct Standing {
    pub tenant: String,
    pub status: String,
}

impl Standing {
    pub fn active(&self) -> bool {
        Filing::parse(&self.status) == Some(Filing::Active)
    }

    /// Revoked or deregistered: the agency acts on the register no longer.
    pub fn gone(&self) -> bool {
        matches!(
            Filing::parse(&self.status),
            Some(Filing::Revoked | Filing::Deregistered)
        )
    }
}

pub async fn standing(
    conn: &mut AnyConnection,
    uscc: &str,
) -> Result<Option<Standing>, StorageError> {
    let row = sqlx::query("SELECT tenant, status FROM datapush_agency WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row
        .map(|r| {
            Ok::<_, sqlx::Error>(Standing {
                tenant: r.try_get(0)?,
                status: r.try_get(1)?,
            })
        })
        .transpose()?)
}
