//! The receiving end of the outbox: applies each event id once, in one transaction with the
//! inbox record and an audit line.

use std::sync::Arc;

use creditmesh_domain::Error;
use creditmesh_proto::events::v1::event_sink_service_server::EventSinkService;
use creditmesh_proto::events::v1::{DeliverRequest, DeliverResponse, Event};
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
        if event.id.is_empty() || event.r#type.is_empty() {
            return Err(status(Error::invalid_field(
                "event",
                "id and type are required",
            )));
        }
        // A service speaks only for itself: the sender's certificate names the source, and the
        // type names the same service.
        if event.source != peer.subject || !event.r#type.starts_with(&format!("{}.", peer.subject))
        {
            return Err(status(Error::permission_denied(format!(
                "service {} may deliver only its own events, not a {} event from {}",
                peer.subject, event.r#type, event.source
            ))));
        }
        let store = &self.store;
        let fresh = async {
            let mut tx = store.db.begin().await?;
            let fresh = store
                .infra
                .accept_event(
                    &mut tx,
                    &event.id,
                    &event.source,
                    &event.r#type,
                    store.now(),
                )
                .await?;
            if fresh {
                let applied = self.handler.apply(&mut tx, &event).await?;
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
                        &mut tx,
                        &AuditEntry {
                            at: store.now(),
                            principal: &peer_id,
                            tenant: &event.tenant,
                            method: &method,
                            request_id: &event.id,
                            outcome,
                            detail: &detail,
                        },
                    )
                    .await?;
            }
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
}

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
