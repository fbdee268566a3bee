//! Delivers a service's outbox to its consumers at least once, oldest first, with backoff.

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Spread;
use crate::store::ServiceStore;
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{DeliverBatchRequest, Event};
use creditmesh_storage::{OutboxRow, StorageError};
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 256;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one delivery to a consumer may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the rows a pass claims are this relay's alone: longer than a delivery may take, so
/// that a live relay's lease never lapses while it delivers; a relay that dies holding rows
/// holds them this long at most.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the stored answers past their window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub struct Relay {
    store: ServiceStore,
    consumers: HashMap<String, Spread>,
    /// A tenant's own consumers, by (tenant, consumer): where a prefecture runs its own
    /// backends, the events of its tenant go there, as its calls do at the gateway.
    tenant_consumers: HashMap<(String, String), Spread>,
    poll_interval: Duration,
    lease: Duration,
}

impl Relay {
    /// `consumers` maps a consumer service name to the channels reaching its event sink (a
    /// `tonic::transport::Channel` for one replica, a [`Spread`] for all).
    pub fn new<C: Into<Spread>>(
        store: ServiceStore,
        consumers: HashMap<String, C>,
        poll_interval: Duration,
    ) -> Self {
        Self {
            store,
            consumers: consumers
                .into_iter()
                .map(|(k, ch)| (k, ch.into()))
                .collect(),
            tenant_consumers: HashMap::new(),
            poll_interval,
            lease: LEASE,
        }
    }

    /// The same relay sending the events of a tenant to that tenant's own consumers:
    /// `(tenant, consumer name)` → a channel to its event sink.
    pub fn with_tenant_consumers<C: Into<Spread>>(
        mut self,
        consumers: HashMap<(String, String), C>,
    ) -> Self {
        self.tenant_consumers = consumers
            .into_iter()
            .map(|(k, ch)| (k, ch.into()))
            .collect();
        self
    }

    /// Where `row` goes: its tenant's own consumer when one is configured, else the default.
    fn destination(&self, row: &OutboxRow) -> Destination {
        let key = (row.tenant.clone(), row.consumer.clone());
        Destination {
            consumer: row.consumer.clone(),
            tenant: self
                .tenant_consumers
                .contains_key(&key)
                .then(|| row.tenant.clone()),
        }
    }

    /// The same relay holding what it claims for `lease` (at least twice a delivery's timeout
    /// is sensible; tests shorten it to see a dead relay's rows taken over).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub async fn run(self, stop: CancellationToken) {
        let wakeup = self.store.relay_wakeup();
        let service = self.store.infra.service();
        let mut purged_at: Option<tokio::time::Instant> = None;
        loop {
            // Stored answers of idempotent calls are kept for a window, then purged.
            if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                purged_at = Some(tokio::time::Instant::now());
                match self
                    .store
                    .infra
                    .purge_answers(&self.store.db, self.store.now())
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(service, purged = n, "stored answers purged"),
                    Err(e) => tracing::warn!(service, error = %e, "stored answers not purged"),
                }
            }
            let progressed = match self.tick().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(service, error = %e, "outbox relay pass failed");
                    false
                }
            };
            if progressed {
                if stop.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// One pass over the due deliveries, in batches per consumer, oldest first; returns how
    /// many were acknowledged. The pass claims its rows first, so that replicas sharing the
    /// database deliver each row from one relay at a time. Acknowledged deliveries are marked
    /// together at the end of the pass: one write instead of one per event (a crash before it
    /// only delivers them again, once the lease lapses); rows the pass did not get to are
    /// released at once.
    pub async fn tick(&self) -> Result<usize, StorageError> {
        let store = &self.store;
        let started = tokio::time::Instant::now();
        let rows = store
            .infra
            .claim(&store.db, store.now(), BATCH, self.lease.as_micros() as i64)
            .await?;
        let mut by_destination: Vec<(Destination, Vec<OutboxRow>)> = Vec::new();
        for row in rows {
            let to = self.destination(&row);
            match by_destination.iter_mut().find(|(d, _)| *d == to) {
                Some((_, list)) => list.push(row),
                None => by_destination.push((to, vec![row])),
            }
        }
        // A delivery starts only while the lease outlasts its timeout.
        let timeout = DELIVERY_TIMEOUT.min(self.lease / 2);
        let mut acknowledged = Vec::new();
        let mut untouched = Vec::new();
        for (to, rows) in by_destination {
            let mut chunks = rows.chunks(crate::sink::MAX_BATCH);
            for chunk in chunks.by_ref() {
                if started.elapsed() + timeout > self.lease {
                    untouched.extend(chunk.iter().map(|r| r.seq));
                    break;
                }
                let (accepted, failure) = match self.deliver(&to, chunk, timeout).await {
                    Ok((accepted, error)) if error.is_empty() => (accepted, None),
                    Ok((accepted, error)) => (accepted, Some(error)),
                    Err(why) => (0, Some(why)),
                };
                acknowledged.extend(chunk.iter().take(accepted).map(|r| r.seq));
                let Some(why) = failure else { continue };
                let Some(row) = chunk.get(accepted) else {
                    break;
                };
                let backoff = backoff(row.attempts);
                tracing::warn!(
                    service = store.infra.service(),
                    consumer = %row.consumer,
                    event_id = %row.event_id,
                    attempts = row.attempts + 1,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %why,
                    "event delivery failed"
                );
                let next = store.now() + backoff.as_micros() as i64;
                store
                    .infra
                    .mark_failed(&store.db, row.seq, next, &why)
                    .await?;
                // The rest of this consumer's events wait for the next pass.
                untouched.extend(chunk.iter().skip(accepted + 1).map(|r| r.seq));
                break;
            }
            untouched.extend(chunks.flatten().map(|r| r.seq));
        }
        store
            .infra
            .mark_delivered_all(&store.db, &acknowledged, store.now())
            .await?;
        store.infra.release(&store.db, &untouched).await?;
        Ok(acknowledged.len())
    }

    /// Delivers `rows`, in order, to `to`: how many it accepted, and why the next failed. A
    /// replica that cannot be reached passes the batch to the next (a consumer applies an
    /// event once, however often it arrives).
    async fn deliver(
        &self,
        to: &Destination,
        rows: &[OutboxRow],
        timeout: Duration,
    ) -> Result<(usize, String), String> {
        let consumer = &to.consumer;
        let client = match &to.tenant {
            Some(tenant) => self
                .tenant_consumers
                .get(&(tenant.clone(), consumer.clone())),
            None => self.consumers.get(consumer),
        };
        let spread =
            client.ok_or_else(|| format!("no address configured for consumer {consumer}"))?;
        let events: Vec<Event> = rows
            .iter()
            .map(|row| Event {
                id: row.event_id.clone(),
                r#type: row.event_type.clone(),
                source: self.store.infra.service().to_owned(),
                tenant: row.tenant.clone(),
                principal: row.principal.clone(),
                subject: row.subject.clone(),
                occurred_at: Some(prost_types_timestamp(row.occurred_at)),
                payload: row.payload.clone(),
            })
            .collect();
        let attempts = spread.len().clamp(1, 3);
        let mut why = String::new();
        let mut events = Some(events);
        for attempt in 1..=attempts {
            let channel = spread
                .next()
                .ok_or_else(|| format!("no replica of consumer {consumer} found"))?;
            let events = match attempt == attempts {
                true => events.take().unwrap_or_default(),
                false => events.clone().unwrap_or_default(),
            };
            let mut request = tonic::Request::new(DeliverBatchRequest { events });
            request.set_timeout(timeout);
            match EventSinkServiceClient::new(channel)
                .deliver_batch(request)
                .await
            {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    return Ok((answer.accepted as usize, answer.error));
                }
                Err(s) => {
                    why = format!("{:?}: {}", s.code(), s.message());
                    if s.code() != tonic::Code::Unavailable {
                        break;
                    }
                }
            }
        }
        Err(why)
    }
}

/// A consumer, and the tenant whose own node of it receives the events (none: the default).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    consumer: String,
    tenant: Option<String>,
}

fn backoff(attempts: i64) -> Duration {
    let exp = attempts.clamp(0, 16) as u32;
    Duration::from_millis(250u64.saturating_mul(1 << exp)).min(MAX_BACKOFF)
}

/// Converts stored microseconds to a protobuf timestamp.
pub fn prost_types_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn timestamps_round_down() {
        let t = prost_types_timestamp(-1);
        assert_eq!((t.seconds, t.nanos), (-1, 999_999_000));
    }
}
