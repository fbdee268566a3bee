//! Who holds each agency's filing, as the register says (filing's `register_changed`): a
//! complaint about an agency on the register goes to that authority; about any other agency,
//! to the prefecture of its registration division (the region outside Xinjiang). Also takes
//! what datapush has to tell a subject who objected (Art. 22) into the notification outbox.

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::{Event, RegisterChanged, SubjectTold};
use creditmesh_rpc::sink::{Applied, EventHandler, decode};
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use creditmesh_storage::{StorageError, Tx};

pub struct Handler;

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        if event.r#type == SubjectTold::TYPE {
            // What datapush tells a subject who objected goes out as complainants are told.
            let e: SubjectTold = decode(event)?;
            crate::notify::queue(
                tx,
                &event.tenant,
                &e.objection_id,
                &e.contact,
                &e.subject,
                &e.body,
                creditmesh_rpc::sink::occurred_micros(event),
            )
            .await?;
            return Ok(Applied::Done);
        }
        if event.r#type != RegisterChanged::TYPE {
            return Ok(Applied::Done);
        }
        let e: RegisterChanged = decode(event)?;
        let at = creditmesh_rpc::sink::occurred_micros(event);
        sqlx::query(
            "INSERT INTO complaints_holder (uscc, tenant, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (uscc) DO UPDATE SET tenant = excluded.tenant, \
             updated_at = excluded.updated_at WHERE complaints_holder.updated_at <= excluded.updated_at",
        )
        .bind(e.uscc)
        .bind(e.tenant)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(StorageError::from)?;
        Ok(Applied::Done)
    }
}

/// The authority holding `uscc`'s filing, when the register knows it.
pub async fn holder(conn: &mut AnyConnection, uscc: &str) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT tenant FROM complaints_holder WHERE uscc = $1")
        .bind(uscc.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}
