//! Which agencies may push: those whose filing the register shows active (filing's
//! `register_changed`), and the authority holding each.

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::{Event, RegisterChanged};
use creditmesh_rpc::sink::{Applied, decode};
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use creditmesh_storage::{StorageError, Tx};

/// Records a change of the register; a notice older than what is known changes nothing.
pub async fn changed(tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
    let e: RegisterChanged = decode(event)?;
    let at = creditmesh_rpc::sink::occurred_micros(event);
    // A notice older than what is known changes nothing.
    sqlx::query(
            "INSERT INTO datapush_agency (uscc, tenant, status, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, status = excluded.status, \
             updated_at = excluded.updated_at WHERE datapush_agency.updated_at <= excluded.updated_at",
        )
        .bind(e.uscc)
        .bind(e.tenant)
        .bind(e.status)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(StorageError::from)?;
    Ok(Applied::Done)
}

/// The filing of an agency as the register shows it: its holding authority and status.
pub struct Standing {
    pub tenant: String,
    pub status: String,
}

impl Standing {
    pub fn active(&self) -> bool {
        self.status == "active"
    }

    /// Revoked or deregistered: the agency acts on the register no longer.
    pub fn gone(&self) -> bool {
        matches!(self.status.as_str(), "revoked" | "deregistered")
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
