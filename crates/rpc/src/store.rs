//! The write path every state-changing call takes: one transaction holding the change, its
//! outbox events and its audit line; an idempotency key replays the first answer.

use std::sync::Arc;

use creditmesh_domain::{Clock, Error, ErrorCode, PrincipalKind};
use creditmesh_proto::events::v1::EventKind;
use creditmesh_storage::{AuditEntry, Db, Infra, NewEvent, StorageError, Tx, sqlx};
use tokio::sync::Notify;
use tracing::Instrument;

use crate::context::CallContext;

/// What a write produced, and the tenant whose rows it changed (for the audit trail).
pub struct Written<T> {
    pub value: T,
    pub tenant: String,
}

/// A service's database with its infrastructure tables, clock and relay wake-up.
#[derive(Clone)]
pub struct ServiceStore {
    pub db: Db,
    pub infra: Infra,
    pub clock: Arc<dyn Clock>,
    relay_wakeup: Arc<Notify>,
}

impl ServiceStore {
    pub fn new(db: Db, infra: Infra, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            infra,
            clock,
            relay_wakeup: Arc::new(Notify::new()),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Woken after every commit that wrote outbox rows.
    pub fn relay_wakeup(&self) -> Arc<Notify> {
        self.relay_wakeup.clone()
    }

    /// Writes an event to the outbox inside `tx`, once per consumer.
    pub async fn publish(
        &self,
        tx: &mut Tx,
        consumers: &[&str],
        event: NewEvent<'_>,
    ) -> Result<String, Error> {
        Ok(self.infra.publish(tx, consumers, event, self.now()).await?)
    }

    /// Writes a typed event, caused by `ctx`'s caller, inside `tx`, once for each of its
    /// kind's consumers ([`EventKind::CONSUMERS`]).
    pub async fn publish_event<E: EventKind>(
        &self,
        tx: &mut Tx,
        ctx: &CallContext,
        tenant: &str,
        subject: &str,
        event: &E,
    ) -> Result<String, Error> {
        self.publish_event_to(tx, E::CONSUMERS, ctx, tenant, subject, event)
            .await
    }

    /// [`Self::publish_event`] to `consumers`, for the one kind whose consumers depend on the
    /// event (`events::v1::REVOCATION_REFERRAL_DECLINED_CONSUMERS`).
    pub async fn publish_event_to<E: EventKind>(
        &self,
        tx: &mut Tx,
        consumers: &[&str],
        ctx: &CallContext,
        tenant: &str,
        subject: &str,
        event: &E,
    ) -> Result<String, Error> {
        self.publish(
            tx,
            consumers,
            NewEvent {
                event_type: E::TYPE,
                tenant,
                principal: &ctx.principal_id,
                subject,
                payload: event.encode_to_vec(),
            },
        )
        .await
    }

    /// A pass run at every start (deadlines computed again with a newer calendar, say):
    /// `pending` looks first, outside any write, so that once nothing is left the pass writes
    /// and audits nothing; otherwise `change` runs in one write of the whole region as
    /// `method`, answering how many it changed.
    pub async fn pass(
        &self,
        ctx: &CallContext,
        method: &str,
        pending: impl AsyncFnOnce(&mut sqlx::AnyConnection) -> Result<bool, Error>,
        change: impl AsyncFnOnce(&mut Tx) -> Result<usize, Error>,
    ) -> Result<usize, Error> {
        {
            let mut conn = self.db.acquire().await?;
            if !pending(&mut conn).await? {
                return Ok(0);
            }
        }
        self.write(ctx, method, |mut tx| async move {
            let value = change(&mut tx).await?;
            Ok((
                tx,
                Written {
                    value,
                    tenant: creditmesh_domain::tenant::REGION.to_string(),
                },
            ))
        })
        .await
    }

    /// Runs `change` in a write transaction (it hands the transaction back with its result) and audits it there; a failed call is audited
    /// on its own afterwards. A failing audit write fails the call.
    pub async fn write<T, F, Fut>(
        &self,
        ctx: &CallContext,
        method: &str,
        change: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<(Tx, Written<T>), Error>>,
    {
        let result = self.write_in_tx(ctx, method, change).await;
        if let Err(err) = &result {
            self.audit_failure(ctx, method, err).await;
        }
        result
    }

    /// Like [`Self::write`], but a repeated `request_id` from the same principal answers the
    /// first call's response without changing anything again.
    pub async fn write_idempotent<M, F, Fut>(
        &self,
        ctx: &CallContext,
        method: &str,
        request_id: &str,
        change: F,
    ) -> Result<M, Error>
    where
        M: prost::Message + Default,
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<(Tx, Written<M>), Error>>,
    {
        if request_id.trim().is_empty() {
            return Err(Error::invalid_field("request_id", "is required"));
        }
        let principal = ctx.principal_id.as_str();
        let result = self
            .write_in_tx(ctx, method, |mut tx: Tx| async move {
                if let Some(stored) = self
                    .infra
                    .stored_response(&mut tx, principal, method, request_id)
                    .await?
                {
                    let value = M::decode(stored.as_slice())
                        .map_err(|e| Error::internal(format!("stored response: {e}")))?;
                    let replay = Written {
                        value,
                        tenant: String::new(),
                    };
                    return Ok((tx, replay));
                }
                let (mut tx, written) = change(tx).await?;
                self.infra
                    .store_response(
                        &mut tx,
                        principal,
                        method,
                        request_id,
                        written.value.encode_to_vec(),
                        self.now(),
                    )
                    .await?;
                Ok((tx, written))
            })
            .await;
        match result {
            // A concurrent call with the same key committed first: answer what it stored.
            Err(e) if e.code == ErrorCode::AlreadyExists => {
                let mut conn = self.db.acquire().await?;
                match self
                    .infra
                    .stored_response(&mut conn, principal, method, request_id)
                    .await?
                {
                    Some(stored) => M::decode(stored.as_slice())
                        .map_err(|e| Error::internal(format!("stored response: {e}"))),
                    None => {
                        self.audit_failure(ctx, method, &e).await;
                        Err(e)
                    }
                }
            }
            Err(e) => {
                self.audit_failure(ctx, method, &e).await;
                Err(e)
            }
            ok => ok,
        }
    }

    async fn write_in_tx<T, F, Fut>(
        &self,
        ctx: &CallContext,
        method: &str,
        change: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(Tx) -> Fut,
        Fut: Future<Output = Result<(Tx, Written<T>), Error>>,
    {
        let span = tracing::info_span!(
            "db.transaction",
            otel.kind = "client",
            db.system = ?self.db.engine(),
            service = self.infra.service(),
            method,
        );
        async {
            let mut tx = self.db.begin().await?;
            // A prefecture acts for its own tenant: row-level security holds its writes there
            // too (PostgreSQL).
            let p = &ctx.principal;
            if p.kind == PrincipalKind::Regulator && !p.tenant.is_region() {
                self.db.scope(&mut tx, &p.tenant.to_string()).await?;
            }
            let (mut tx, written) = change(tx).await?;
            let tenant = if written.tenant.is_empty() {
                ctx.principal.tenant.to_string()
            } else {
                written.tenant
            };
            self.infra
                .audit(
                    &mut tx,
                    &AuditEntry {
                        at: self.now(),
                        principal: &ctx.principal_id,
                        tenant: &tenant,
                        method,
                        request_id: &ctx.request_id,
                        outcome: "ok",
                        detail: "",
                    },
                )
                .await?;
            tx.commit().await.map_err(StorageError::from)?;
            self.relay_wakeup.notify_one();
            Ok(written.value)
        }
        .instrument(span)
        .await
    }

    /// Audits a call refused before it reached the database (bad input, a refused caller) and
    /// hands the error back.
    pub async fn reject(&self, ctx: &CallContext, method: &str, err: Error) -> Error {
        self.audit_failure(ctx, method, &err).await;
        err
    }

    async fn audit_failure(&self, ctx: &CallContext, method: &str, err: &Error) {
        ctx.audited
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let outcome = format!("{:?}", err.code);
        let tenant = ctx.principal.tenant.to_string();
        let detail: String = err.to_string().chars().take(1000).collect();
        let res: Result<(), StorageError> = async {
            let mut tx = self.db.begin().await?;
            self.infra
                .audit(
                    &mut tx,
                    &AuditEntry {
                        at: self.now(),
                        principal: &ctx.principal_id,
                        tenant: &tenant,
                        method,
                        request_id: &ctx.request_id,
                        outcome: &outcome,
                        detail: &detail,
                    },
                )
                .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, method, request_id = %ctx.request_id, "audit of a failed call not written");
        }
    }
}
