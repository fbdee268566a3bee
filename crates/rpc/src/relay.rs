//! Delivers a service's outbox to its consumers at least once, oldest first, with backoff.

use std::collections::HashMap;
use std::time::Duration;

use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{DeliverBatchRequest, Event};
use creditmesh_storage::{OutboxRow, StorageError};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::store::ServiceStore;

const BATCH: i64 = 256;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the stored answers past their window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub struct Relay {
    store: ServiceStore,
    consumers: HashMap<String, EventSinkServiceClient<Channel>>,
    poll_interval: Duration,
}

impl Relay {
    /// `consumers` maps a consumer service name to a channel reaching its event sink.
    pub fn new(
        store: ServiceStore,
        consumers: HashMap<String, Channel>,
        poll_interval: Duration,
    ) -> Self {
        Self {
            store,
            consumers: consumers
                .into_iter()
                .map(|(k, ch)| (k, EventSinkServiceClient::new(ch)))
                .collect(),
            poll_interval,
        }
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
    /// many were acknowledged. Acknowledged deliveries are marked together at the end of the
    /// pass: one write instead of one per event (a crash before it only delivers them again).
    pub async fn tick(&self) -> Result<usize, StorageError> {
        let store = &self.store;
        let rows = store.infra.due(&store.db, store.now(), BATCH).await?;
        let mut by_consumer: Vec<(String, Vec<OutboxRow>)> = Vec::new();
        for row in rows {
            match by_consumer.iter_mut().find(|(c, _)| *c == row.consumer) {
                Some((_, list)) => list.push(row),
                None => by_consumer.push((row.consumer.clone(), vec![row])),
            }
        }
        let mut acknowledged = Vec::new();
        for (consumer, rows) in by_consumer {
            for chunk in rows.chunks(crate::sink::MAX_BATCH) {
                let (accepted, failure) = match self.deliver(&consumer, chunk).await {
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
                break;
            }
        }
        store
            .infra
            .mark_delivered_all(&store.db, &acknowledged, store.now())
            .await?;
        Ok(acknowledged.len())
    }

    /// Delivers `rows`, in order, to `consumer`: how many it accepted, and why the next failed.
    async fn deliver(&self, consumer: &str, rows: &[OutboxRow]) -> Result<(usize, String), String> {
        let mut client = self
            .consumers
            .get(consumer)
            .cloned()
            .ok_or_else(|| format!("no address configured for consumer {consumer}"))?;
        let events = rows
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
        let mut request = tonic::Request::new(DeliverBatchRequest { events });
        request.set_timeout(Duration::from_secs(30));
        let answer = client
            .deliver_batch(request)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        Ok((answer.accepted as usize, answer.error))
    }
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
