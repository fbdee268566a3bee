//! Replicas of a service on one database share its outbox: each relay leases the rows it
//! delivers, so an event is in flight from one replica at a time, each consumer applies it
//! once and in the order of its aggregate, and a replica killed mid-run leaves its rows to the
//! others once its lease lapses.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use creditmesh::mesh::{RunningService, all_services, start_service};
use creditmesh_proto::events::v1::event_sink_service_server::{
    EventSinkService, EventSinkServiceServer,
};
use creditmesh_proto::events::v1::{
    DeliverBatchRequest, DeliverBatchResponse, DeliverRequest, DeliverResponse,
};
use creditmesh_rpc::relay::Relay;
use creditmesh_storage::NewEvent;
use creditmesh_tests::{Engine, TRUST_DOMAIN, eventually, fresh_database, scalar_i64};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Server};

crate::on_both_engines!(
    two_replicas_deliver_each_event_once_in_order_and_survive_a_kill,
    a_tenants_events_go_to_its_own_node,
);

const EVENTS: usize = 10_000;
const AGGREGATES: usize = 100;
const CONSUMERS: [&str; 2] = ["review", "disclosure"];

/// What one consumer saw: every delivery, what it applied, and any event of an aggregate
/// applied out of its order.
#[derive(Default)]
struct Seen {
    deliveries: usize,
    applied: HashSet<String>,
    /// Aggregate → the position of its last applied event.
    last: HashMap<String, u64>,
    out_of_order: Vec<String>,
    refused_once: HashSet<String>,
}

/// A consumer's event sink that applies each event id once, checks that an aggregate's
/// events arrive in their order, and refuses one event in 97 on its first delivery (as a
/// consumer whose database hiccups), which holds back the rest of that aggregate.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Seen>>);

#[tonic::async_trait]
impl EventSinkService for Sink {
    async fn deliver(
        &self,
        _request: tonic::Request<DeliverRequest>,
    ) -> Result<tonic::Response<DeliverResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("batches only"))
    }

    async fn deliver_batch(
        &self,
        request: tonic::Request<DeliverBatchRequest>,
    ) -> Result<tonic::Response<DeliverBatchResponse>, tonic::Status> {
        // A consumer's transaction takes a moment, so that the replicas' passes overlap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let events = request.into_inner().events;
        let mut seen = self.0.lock().unwrap();
        for (i, event) in events.iter().enumerate() {
            seen.deliveries += 1;
            if seen.applied.contains(&event.id) {
                continue;
            }
            let position = u64::from_be_bytes(event.payload[..8].try_into().unwrap());
            if position % 97 == 13 && seen.refused_once.insert(event.id.clone()) {
                return Ok(tonic::Response::new(DeliverBatchResponse {
                    accepted: i as u32,
                    error: "the consumer's database was busy".into(),
                }));
            }
            let expected = seen.last.get(&event.subject).map_or(0, |p| p + 1);
            if position != expected {
                let line = format!("{}: {position} after {expected}", event.subject);
                seen.out_of_order.push(line);
            }
            seen.last.insert(event.subject.clone(), position);
            seen.applied.insert(event.id.clone());
        }
        Ok(tonic::Response::new(DeliverBatchResponse {
            accepted: events.len() as u32,
            error: String::new(),
        }))
    }
}

async fn serve_sink(sink: Sink, stop: CancellationToken) -> Channel {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(EventSinkServiceServer::new(sink))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.cancelled_owned(),
            ),
    );
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

/// Writes events `from..to` to the outbox of `svc`, 100 to a transaction: event `i` belongs
/// to aggregate `i % AGGREGATES` and is its `i / AGGREGATES`th.
async fn produce(svc: &RunningService, from: usize, to: usize) {
    produce_for(svc, "653100", from, to).await;
}

/// [`produce`] for `tenant`'s aggregates.
async fn produce_for(svc: &RunningService, tenant: &str, from: usize, to: usize) {
    let store = &svc.store;
    for start in (from..to).step_by(100) {
        let mut tx = store.db.begin().await.unwrap();
        for i in start..(start + 100).min(to) {
            let subject = format!("{tenant}-aggregate-{}", i % AGGREGATES);
            let position = (i / AGGREGATES) as u64;
            store
                .infra
                .publish(
                    &mut tx,
                    &CONSUMERS,
                    NewEvent {
                        event_type: "test.v1.Counted",
                        tenant,
                        principal: "spiffe://creditmesh.xinjiang/service/complaints",
                        subject: &subject,
                        payload: position.to_be_bytes().to_vec(),
                    },
                    store.now(),
                )
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        store.relay_wakeup().notify_one();
    }
}

/// `n` replicas of the complaints service on one fresh database (its URL), or `None` when
/// this run has no such engine.
async fn complaints_replicas(
    engine: Engine,
    dir: &std::path::Path,
    n: usize,
    stop: &CancellationToken,
) -> Option<(Vec<RunningService>, String)> {
    let mut db = fresh_database(engine, dir).await?;
    let pki = dir.join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let runtime = creditmesh_tests::runtime(&pki, dir);
    let defs = all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "complaints").unwrap();
    db.url = db.url.replace("{service}", "complaints");
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(
            start_service(def, &db, &runtime, any_port, stop.clone())
                .await
                .unwrap(),
        );
    }
    Some((replicas, db.url))
}

async fn two_replicas_deliver_each_event_once_in_order_and_survive_a_kill(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let Some((replicas, url)) = complaints_replicas(engine, dir.path(), 2, &stop).await else {
        return;
    };
    let sinks: Vec<Sink> = CONSUMERS.iter().map(|_| Sink::default()).collect();
    let mut consumers = HashMap::new();
    for (name, sink) in CONSUMERS.iter().zip(&sinks) {
        consumers.insert(
            name.to_string(),
            serve_sink(sink.clone(), stop.clone()).await,
        );
    }
    let lease = Duration::from_secs(2);
    let relays: Vec<_> = replicas
        .iter()
        .map(|svc| {
            let relay = Relay::new(
                svc.store.clone(),
                consumers.clone(),
                Duration::from_millis(20),
            )
            .with_lease(lease);
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect();

    // Half the events are written while both relays deliver; one relay is killed once the
    // consumers have applied some, and the rest are written while the other carries on.
    let applied = |sinks: &[Sink]| -> usize {
        sinks
            .iter()
            .map(|s| s.0.lock().unwrap().applied.len())
            .sum()
    };
    produce(&replicas[0], 0, EVENTS / 2).await;
    eventually("some events applied", Duration::from_secs(60), || async {
        (applied(&sinks) >= EVENTS / 2).then_some(())
    })
    .await;
    relays[0].abort();
    let killed_at = applied(&sinks);
    produce(&replicas[1], EVENTS / 2, EVENTS).await;
    eventually(
        "every event applied by both consumers",
        Duration::from_secs(120),
        || async { (applied(&sinks) == EVENTS * CONSUMERS.len()).then_some(()) },
    )
    .await;

    for (name, sink) in CONSUMERS.iter().zip(&sinks) {
        let seen = sink.0.lock().unwrap();
        assert!(
            seen.out_of_order.is_empty(),
            "{name} applied events out of their aggregate's order: {:?}",
            &seen.out_of_order[..seen.out_of_order.len().min(5)]
        );
        assert_eq!(seen.applied.len(), EVENTS, "{name} applied each event once");
        for a in 0..AGGREGATES {
            assert_eq!(
                seen.last.get(&format!("653100-aggregate-{a}")),
                Some(&((EVENTS / AGGREGATES - 1) as u64)),
                "{name} applied the whole of aggregate-{a}"
            );
        }
        // Deliveries beyond one per event: the refused ones, and at most what the killed
        // relay held when it died (one pass of 256 rows). Two relays without leases would
        // deliver most events twice.
        let extra = seen.deliveries - EVENTS - seen.refused_once.len();
        assert!(
            extra <= 256,
            "{name}: {extra} deliveries beyond one per event (killed after {killed_at} applied)"
        );
    }
    eventually(
        "the outbox marked delivered",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move {
                (scalar_i64(
                    &url,
                    "SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL",
                )
                .await
                    == 0)
                    .then_some(())
            }
        },
    )
    .await;
    stop.cancel();
}

/// Where a prefecture runs its own node of a consumer, the events of its tenant go there and
/// the others to the default node.
async fn a_tenants_events_go_to_its_own_node(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let Some((replicas, _)) = complaints_replicas(engine, dir.path(), 1, &stop).await else {
        return;
    };
    // One sink stands for both consumers of a node: it applies an event id once, whichever
    // consumer it came for.
    let (region, kashgar) = (Sink::default(), Sink::default());
    let mut default = HashMap::new();
    let mut own = HashMap::new();
    for name in CONSUMERS {
        default.insert(
            name.to_owned(),
            serve_sink(region.clone(), stop.clone()).await,
        );
        own.insert(
            ("653100".to_owned(), name.to_owned()),
            serve_sink(kashgar.clone(), stop.clone()).await,
        );
    }
    let relay = Relay::new(
        replicas[0].store.clone(),
        default,
        Duration::from_millis(20),
    )
    .with_tenant_consumers(own);
    tokio::spawn(relay.run(stop.clone()));
    produce_for(&replicas[0], "653100", 0, 300).await;
    produce_for(&replicas[0], "650100", 0, 200).await;
    let count = |sink: &Sink| sink.0.lock().unwrap().applied.len();
    eventually("every event applied", Duration::from_secs(30), || async {
        (count(&kashgar) + count(&region) == 500).then_some(())
    })
    .await;
    let tenants = |sink: &Sink| -> HashSet<String> {
        let seen = sink.0.lock().unwrap();
        seen.last
            .keys()
            .map(|k| k.split('-').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(count(&kashgar), 300);
    assert_eq!(tenants(&kashgar), HashSet::from(["653100".to_owned()]));
    assert_eq!(tenants(&region), HashSet::from(["650100".to_owned()]));
    stop.cancel();
}

/// Two replicas of every service started at the same moment on one new PostgreSQL database:
/// one migrates at a time, the others wait for it, and every one starts (PostgreSQL refuses
/// two concurrent creations of one table, and two concurrent replacements of the function
/// every service's row security uses, so the bookkeeping table is made under the
/// migrations' lock too, and that lock is one for the database).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_at_once_on_a_new_database_all_start() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let Some(db) = fresh_database(Engine::Postgres, dir.path()).await else {
            return;
        };
        assert!(!db.url.contains("{service}"), "one database for all");
        let pki = dir.path().join("pki");
        creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
        let runtime = creditmesh_tests::runtime(&pki, dir.path());
        let defs = all_services(&runtime.services);
        let stop = CancellationToken::new();
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let starts = defs.iter().flat_map(|def| {
            (0..2).map(|_| start_service(def, &db, &runtime, any_port, stop.clone()))
        });
        for started in futures::future::join_all(starts).await {
            if let Err(e) = started {
                panic!("round {round}: a replica did not start: {e:#}");
            }
        }
        stop.cancel();
    }
}
