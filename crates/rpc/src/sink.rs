//! The receiving end of the outbox: applies each event id once, in one transaction with the
//! inbox record and an audit line.

use std::sync::Arc;

use creditmesh_domain::Error;
use creditmesh_domain::Principal;
use creditmesh_proto::events::v1::event_sink_service_server::EventSinkService;
use creditmesh_proto::events::v1::{
    DeliverBatchRequest, DeliverBatchResponse, DeliverRequest, DeliverResponse, Event,
};
use creditmesh_storage::{AuditEntry, StorageError, Tx};
use tonic::{Request, Response, Status};

use crate::context::Authn;
use crate::error::status;
use crate::store::ServiceStore;

/// What a service does with the events it consumes. Unknown event types are ignored.
#[tonic::async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error>;
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The event asked for what the state it arrived in does not allow (a late or repeated
    /// decision, say). Nothing changed; the event is acknowledged, logged and audited with
    /// the outcome `not_applied` and this reason, for operators to see.
    NotApplied(String),
}

pub struct EventSink<H> {
    store: ServiceStore,
    authn: Authn,
    handler: Arc<H>,
}

impl<H: EventHandler> EventSink<H> {
    pub fn new(store: ServiceStore, authn: Authn, handler: H) -> Self {
        Self {
            store,
            authn,
            handler: Arc::new(handler),
        }
    }
}

impl<H: EventHandler> EventSink<H> {
    /// Refuses an event that is malformed or that the sending service may not speak for.
    fn check(peer: &Principal, event: &Event) -> Result<(), Error> {
        if event.id.is_empty() || event.r#type.is_empty() {
            return Err(Error::invalid_field("event", "id and type are required"));
        }
        // A service speaks only for itself: the sender's certificate names the source, and the
        // type names the same service.
        if event.source != peer.subject || !event.r#type.starts_with(&format!("{}.", peer.subject))
        {
            return Err(Error::permission_denied(format!(
                "service {} may deliver only its own events, not a {} event from {}",
                peer.subject, event.r#type, event.source
            )));
        }
        Ok(())
    }

    /// Applies one event inside `tx` unless its id is known: the inbox record, the effect and
    /// the audit line. Returns whether it was new.
    async fn accept(&self, tx: &mut Tx, peer_id: &str, event: &Event) -> Result<bool, Error> {
        let store = &self.store;
        let fresh = store
            .infra
            .accept_event(tx, &event.id, &event.source, &event.r#type, store.now())
            .await?;
        if !fresh {
            return Ok(false);
        }
        let applied = self.handler.apply(tx, event).await?;
        let (outcome, detail) = match &applied {
            Applied::Done => ("ok", event.principal.clone()),
            Applied::NotApplied(why) => {
                tracing::warn!(
                    event_id = %event.id,
                    event_type = %event.r#type,
                    reason = %why,
                    "event not applied"
                );
                ("not_applied", format!("{why} (from {})", event.principal))
            }
        };
        let method = format!("events/{}", event.r#type);
        store
            .infra
            .audit(
                tx,
                &AuditEntry {
                    at: store.now(),
                    principal: peer_id,
                    tenant: &event.tenant,
                    method: &method,
                    request_id: &event.id,
                    outcome,
                    detail: &detail,
                },
            )
            .await?;
        Ok(true)
    }
}

async fn savepoint(tx: &mut Tx, sql: &'static str) -> Result<(), Error> {
    creditmesh_storage::sqlx::query(sql)
        .execute(&mut **tx)
        .await
        .map_err(StorageError::from)?;
    Ok(())
}

#[tonic::async_trait]
impl<H: EventHandler> EventSinkService for EventSink<H> {
    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<Response<DeliverResponse>, Status> {
        let peer = self.authn.service_peer(&request)?;
        let peer_id = peer.spiffe_id(self.authn.trust_domain());
        let event = request
            .into_inner()
            .event
            .ok_or_else(|| status(Error::invalid_field("event", "is required")))?;
        Self::check(&peer, &event).map_err(status)?;
        let store = &self.store;
        let fresh = async {
            let mut tx = store.db.begin().await?;
            let fresh = self.accept(&mut tx, &peer_id, &event).await?;
            tx.commit().await.map_err(StorageError::from)?;
            Ok::<_, Error>(fresh)
        }
        .await
        .map_err(status)?;
        if fresh {
            store.relay_wakeup().notify_one();
        }
        Ok(Response::new(DeliverResponse { duplicate: !fresh }))
    }

    async fn deliver_batch(
        &self,
        request: Request<DeliverBatchRequest>,
    ) -> Result<Response<DeliverBatchResponse>, Status> {
        let peer = self.authn.service_peer(&request)?;
        let peer_id = peer.spiffe_id(self.authn.trust_domain());
        let events = request.into_inner().events;
        if events.len() > MAX_BATCH {
            return Err(status(Error::invalid_field(
                "events",
                format!("at most {MAX_BATCH} events a batch"),
            )));
        }
        for e in &events {
            Self::check(&peer, e).map_err(status)?;
        }
        let store = &self.store;
        let answer = async {
            let mut tx = store.db.begin().await?;
            let (mut accepted, mut error, mut fresh) = (0u32, String::new(), false);
            for event in &events {
                savepoint(&mut tx, "SAVEPOINT creditmesh_event").await?;
                match self.accept(&mut tx, &peer_id, event).await {
                    Ok(new) => {
                        savepoint(&mut tx, "RELEASE SAVEPOINT creditmesh_event").await?;
                        fresh |= new;
                        accepted += 1;
                    }
                    Err(e) => {
                        savepoint(&mut tx, "ROLLBACK TO SAVEPOINT creditmesh_event").await?;
                        error = status(e).message().to_owned();
                        break;
                    }
                }
            }
            tx.commit().await.map_err(StorageError::from)?;
            Ok::<_, Error>((DeliverBatchResponse { accepted, error }, fresh))
        }
        .await
        .map_err(status)?;
        if answer.1 {
            store.relay_wakeup().notify_one();
        }
        Ok(Response::new(answer.0))
    }
}

/// The most events one batch may carry.
pub const MAX_BATCH: usize = 64;

/// The handler of a service that consumes no events yet.
pub struct IgnoreEvents;

#[tonic::async_trait]
impl EventHandler for IgnoreEvents {
    async fn apply(&self, _tx: &mut Tx, _event: &Event) -> Result<Applied, Error> {
        Ok(Applied::Done)
    }
}

/// Adds the event sink of a service to its routes.
pub fn with_sink<H: EventHandler>(
    routes: tonic::service::Routes,
    store: ServiceStore,
    authn: Authn,
    handler: H,
) -> tonic::service::Routes {
    use creditmesh_proto::events::v1::event_sink_service_server::EventSinkServiceServer;
    routes.add_service(
        EventSinkServiceServer::new(EventSink::new(store, authn, handler))
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES),
    )
}

/// When an event happened, in microseconds since the Unix epoch (0 when it does not say).
pub fn occurred_micros(event: &Event) -> i64 {
    event
        .occurred_at
        .as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
        .unwrap_or_default()
}

/// The typed payload of `event`; a payload that does not decode as `E` is `INVALID_ARGUMENT`.
pub fn decode<E: creditmesh_proto::events::v1::EventKind>(event: &Event) -> Result<E, Error> {
    E::decode(event.payload.as_slice()).map_err(|e| {
        Error::invalid_field("event.payload", format!("not a {} message: {e}", E::TYPE))
    })
}
