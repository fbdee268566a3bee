//! The gateway's edge under abuse: connections that never call or stay idle are closed,
//! connections are capped per address and in total with the node listener's share kept, and
//! health watches and reflection count against the same limits as every call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_gateway::limits::{LimitsConfig, RateLimits};
use creditmesh_tests::{Engine, TestMesh};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

crate::on_both_engines!(
    silent_and_idle_connections_are_closed,
    connections_are_capped_per_address_and_the_node_share_is_kept,
    health_and_reflection_count_against_the_limits,
    a_tenant_beyond_its_share_leaves_the_others_their_places,
    a_backends_connections_go_first_to_the_tenant_holding_fewest,
    an_oversized_header_list_is_a_grpc_status,
);

const PUBLIC_SERVICE: &str = "creditmesh.complaints.v1.ComplaintService";

fn limits(configure: impl FnOnce(&mut LimitsConfig)) -> LimitsConfig {
    let mut l = LimitsConfig {
        rate_per_second: RateLimits::off(),
        ..LimitsConfig::default()
    };
    configure(&mut l);
    l
}

/// A TLS connection to the public listener from `source` (any loopback address), with the
/// given ALPN protocol; `None` when the gateway closed it before or during the handshake.
async fn raw_tls(t: &TestMesh, source: [u8; 4], alpn: &[u8]) -> Option<TlsStream<TcpStream>> {
    let config = creditmesh_tests::public_tls_config(&t.pki_dir, alpn);
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let tcp = socket.connect(t.mesh.public_addr).await.ok()?;
    let connect = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp);
    let mut tls = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .ok()?
        .ok()?;
    // TLS 1.3 finishes on the client's side before the server has read its last flight; a
    // refused connection shows as end of stream on the first read.
    tls.write_all(b"").await.ok()?;
    Some(tls)
}

/// How long until the server closes `tls`, reading whatever it sends meanwhile.
async fn time_to_close(tls: &mut TlsStream<TcpStream>, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()?;
    Some(started.elapsed())
}

/// Whether the connection is still open: nothing arrives and it is not closed within `wait`.
async fn still_open(tls: &mut TlsStream<TcpStream>, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(wait, tls.read(&mut buf))
        .await
        .is_err()
}

async fn silent_and_idle_connections_are_closed(engine: Engine) {
    let Some(t) = TestMesh::start_with(
        engine,
        limits(|l| {
            l.connections.first_call_seconds = 1;
            l.connections.idle_seconds = 2;
        }),
    )
    .await
    else {
        return;
    };

    // A connection that completes TLS and then sends nothing is closed after the first-call
    // time; one that sends only part of the HTTP/2 preface likewise.
    let mut silent = raw_tls(&t, [127, 0, 0, 1], b"h2").await.expect("handshake");
    let closed = time_to_close(&mut silent, Duration::from_secs(6))
        .await
        .expect("a silent connection is closed");
    assert!(closed >= Duration::from_millis(500), "{closed:?}");
    let mut partial = raw_tls(&t, [127, 0, 0, 1], b"h2").await.expect("handshake");
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    time_to_close(&mut partial, Duration::from_secs(6))
        .await
        .expect("a connection that never starts a call is closed");

    // After a call, a connection left idle is closed after the idle time (HTTP/1.1 keep-alive
    // here, as a browser's gRPC-Web connection would be).
    let mut browser = raw_tls(&t, [127, 0, 0, 1], b"http/1.1")
        .await
        .expect("handshake");
    let body = [0u8, 0, 0, 0, 0];
    let head = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    browser.write_all(head.as_bytes()).await.unwrap();
    browser.write_all(&body).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.ends_with(b"0\r\n\r\n") {
        let n = browser.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before answering");
        response.extend_from_slice(&buf[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200"));
    assert!(
        still_open(&mut browser, Duration::from_millis(800)).await,
        "closed before the idle time"
    );
    let closed = time_to_close(&mut browser, Duration::from_secs(8))
        .await
        .expect("an idle connection is closed");
    assert!(closed < Duration::from_secs(8));

    // A long stream keeps its connection open past the idle time.
    let mut health = HealthClient::new(t.public().await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: PUBLIC_SERVICE.into(),
        })
        .await
        .expect("watch")
        .into_inner();
    watch.message().await.unwrap().expect("a first status");
    let waited = tokio::time::timeout(Duration::from_secs(4), watch.message()).await;
    assert!(
        waited.is_err(),
        "the watch ended while the stream was open: {waited:?}"
    );
    t.stop().await;
}

async fn connections_are_capped_per_address_and_the_node_share_is_kept(engine: Engine) {
    let Some(t) = TestMesh::start_with(
        engine,
        limits(|l| {
            l.connections.max_connections = 12;
            l.connections.max_per_address = 4;
            l.node_reserved_percent = 50;
        }),
    )
    .await
    else {
        return;
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            raw_tls(&t, [127, 0, 0, 2], b"h2")
                .await
                .expect("within the cap"),
        );
    }
    let mut fifth = raw_tls(&t, [127, 0, 0, 2], b"h2").await;
    let refused = match fifth.as_mut() {
        None => true,
        Some(tls) => time_to_close(tls, Duration::from_secs(2)).await.is_some(),
    };
    assert!(refused, "a fifth connection from one address was kept");

    // Another address still gets in, up to the public listener's share (6 of 12).
    for _ in 0..2 {
        held.push(
            raw_tls(&t, [127, 0, 0, 3], b"h2")
                .await
                .expect("within the share"),
        );
    }
    let mut beyond = raw_tls(&t, [127, 0, 0, 4], b"h2").await;
    let refused = match beyond.as_mut() {
        None => true,
        Some(tls) => time_to_close(tls, Duration::from_secs(2)).await.is_some(),
    };
    assert!(
        refused,
        "the public listener took the node listener's share"
    );

    // The node listener still serves its callers.
    let checked = HealthClient::new(t.node("agency").await)
        .check(HealthCheckRequest {
            service: PUBLIC_SERVICE.into(),
        })
        .await
        .expect("a node call with the public listener full");
    assert_eq!(checked.into_inner().status, 1);

    // Places come back when connections close.
    drop(held);
    let again = creditmesh_tests::eventually(
        "a public connection once the others closed",
        Duration::from_secs(5),
        || async {
            let mut tls = raw_tls(&t, [127, 0, 0, 4], b"h2").await?;
            still_open(&mut tls, Duration::from_millis(300))
                .await
                .then_some(())
        },
    )
    .await;
    let () = again;
    t.stop().await;
}

async fn health_and_reflection_count_against_the_limits(engine: Engine) {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

    let Some(t) = TestMesh::start_with(
        engine,
        limits(|l| {
            l.max_calls_per_caller = 3;
        }),
    )
    .await
    else {
        return;
    };
    let public = t.public().await;
    let watch = || {
        let mut health = HealthClient::new(public.clone());
        async move {
            health
                .watch(HealthCheckRequest {
                    service: PUBLIC_SERVICE.into(),
                })
                .await
                .map(|r| r.into_inner())
        }
    };
    let mut watches = Vec::new();
    for _ in 0..3 {
        let mut w = watch().await.expect("a watch within the cap");
        w.message().await.unwrap().expect("a first status");
        watches.push(w);
    }
    let refused = watch().await.map(|_| ()).unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("per caller"), "{refused:?}");
    // Reflection from the same address is refused as well while its places are taken.
    let mut reflection = ServerReflectionClient::new(public.clone());
    let listed = reflection
        .server_reflection_info(futures::stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(listed.code(), Code::ResourceExhausted);
    // Another caller is not affected.
    HealthClient::new(t.node("agency").await)
        .check(HealthCheckRequest {
            service: PUBLIC_SERVICE.into(),
        })
        .await
        .expect("another caller");
    // A watch that ends gives its place back.
    watches.pop();
    creditmesh_tests::eventually(
        "a watch once another ended",
        Duration::from_secs(5),
        || async { watch().await.ok() },
    )
    .await;
    drop(watches);
    t.stop().await;

    // Rates apply to health checks as to every call.
    let Some(t) = TestMesh::start_with(
        engine,
        limits(|l| {
            l.rate_per_second.public = 2;
        }),
    )
    .await
    else {
        return;
    };
    let mut health = HealthClient::new(t.public().await);
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(
            match health
                .check(HealthCheckRequest {
                    service: PUBLIC_SERVICE.into(),
                })
                .await
            {
                Ok(_) => Code::Ok,
                Err(e) => e.code(),
            },
        );
    }
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    t.stop().await;
}

async fn a_tenant_beyond_its_share_leaves_the_others_their_places(engine: Engine) {
    let Some(t) = TestMesh::start_with(
        engine,
        limits(|l| {
            l.max_concurrent_calls = 6;
            l.max_calls_per_tenant = 3;
            l.max_calls_per_caller = 10;
        }),
    )
    .await
    else {
        return;
    };
    let kashgar = Tenant::parse("653100").unwrap();
    t.issue(
        "regulator-653100",
        Principal::new(PrincipalKind::Regulator, kashgar, ""),
    );
    // The Urumqi tenant holds its three places with watches ...
    let urumqi = t.node("regulator-650100").await;
    let mut watches = Vec::new();
    for _ in 0..3 {
        let mut w = HealthClient::new(urumqi.clone())
            .watch(HealthCheckRequest {
                service: PUBLIC_SERVICE.into(),
            })
            .await
            .expect("within the tenant's share")
            .into_inner();
        w.message().await.unwrap().expect("a first status");
        watches.push(w);
    }
    // ... so its next call is refused, while another tenant's calls go through.
    let check = |ch| async move {
        HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: PUBLIC_SERVICE.into(),
            })
            .await
            .map(|_| ())
            .map_err(|e| (e.code(), e.message().to_owned()))
    };
    let refused = check(urumqi.clone()).await.unwrap_err();
    assert_eq!(refused.0, Code::ResourceExhausted);
    assert!(refused.1.contains("per tenant"), "{refused:?}");
    check(t.node("regulator-653100").await)
        .await
        .expect("another tenant keeps its places");
    check(t.public().await)
        .await
        .expect("the public keeps its places");
    drop(watches);
    t.stop().await;
}

/// Waits until the connection gate shows `lane` with `n` calls waiting (promptly: the
/// waiters give up after the pool's acquire timeout).
async fn until_waiting(gate: &creditmesh_storage::fair::FairGate, lane: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(4);
    while gate.snapshot().1.get(lane).copied().unwrap_or(0) != n {
        assert!(
            Instant::now() < deadline,
            "{n} waiting in {lane}: {:?}",
            gate.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_backends_connections_go_first_to_the_tenant_holding_fewest(engine: Engine) {
    use creditmesh_proto::filing::v1::ListFilingsRequest;
    use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    let gate = t
        .mesh
        .services
        .iter()
        .find(|s| s.name == "filing")
        .unwrap()
        .store
        .db
        .gate()
        .clone();
    let list = |ch| async move {
        FilingServiceClient::new(ch)
            .list_filings(ListFilingsRequest {
                page_size: 10,
                ..Default::default()
            })
            .await
            .map(|_| ())
    };
    // Urumqi's tenant holds every connection of the filing service and has more waiting:
    // places that, once given to it, it keeps, and then one of its regulators' calls.
    let urumqi: Arc<str> = Arc::from("650100");
    let mut held = Vec::new();
    for _ in 0..gate.capacity() {
        held.push(gate.acquire(urumqi.clone()).await.unwrap());
    }
    let mut keepers = Vec::new();
    for i in 0..3 {
        let (g, lane) = (gate.clone(), urumqi.clone());
        keepers.push(tokio::spawn(async move { g.acquire(lane).await }));
        until_waiting(&gate, "650100", i + 1).await;
    }
    let urumqi_call = tokio::spawn(list(t.node("regulator-650100").await));
    until_waiting(&gate, "650100", 4).await;
    // Kashgar's regulator calls last; its call waits in its own tenant's lane ...
    let kashgar_call = tokio::spawn(list(t.node("regulator-653100").await));
    until_waiting(&gate, "653100", 1).await;
    // ... and the one connection that comes free goes to it, not to the calls before it.
    drop(held.pop());
    tokio::time::timeout(Duration::from_secs(10), kashgar_call)
        .await
        .expect("served while the other tenant's earlier calls wait")
        .unwrap()
        .expect("kashgar's call succeeds");
    assert!(
        !urumqi_call.is_finished(),
        "urumqi's own call waits behind its tenant's earlier ones"
    );
    drop(held);
    let mut kept = Vec::new();
    for k in keepers {
        kept.push(
            k.await
                .unwrap()
                .expect("a place comes free for every waiter"),
        );
    }
    drop(kept);
    urumqi_call
        .await
        .unwrap()
        .expect("urumqi's call is served once places come free");
    let (held, waiting) = gate.snapshot();
    assert!(waiting.is_empty(), "{waiting:?}");
    assert!(held.values().all(|n| *n <= gate.capacity()), "{held:?}");
    t.stop().await;
}

async fn an_oversized_header_list_is_a_grpc_status(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let call = |ch, bytes: usize| async move {
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: PUBLIC_SERVICE.into(),
        });
        req.metadata_mut()
            .insert("x-padding", "a".repeat(bytes).parse().unwrap());
        HealthClient::new(ch).check(req).await.map(|_| ())
    };
    for ch in [t.public().await, t.node("agency").await] {
        call(ch.clone(), 8 * 1024).await.expect("within the limit");
        let refused = call(ch.clone(), 20 * 1024).await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused.message().contains("exceed the limit"),
            "{refused:?}"
        );
        // The connection is still good.
        call(ch, 100).await.expect("after a refusal");
    }
    t.stop().await;
}

/// gRPC-Web from a browser on another origin: the configured origin's preflight is answered
/// with leave to send gRPC-Web's headers, its call with the gRPC status exposed; another
/// origin's preflight gets no leave (the browser refuses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_answers_cors_preflights_for_its_configured_origins() {
    let allowed = "https://register.example.org";
    let configured = limits(|l| l.grpc_web_origins = vec![allowed.into()]);
    let Some(t) = TestMesh::start_with(Engine::Sqlite, configured).await else {
        return;
    };
    let exchange = async |head: String, body: &[u8]| {
        let mut tls = raw_tls(&t, [127, 0, 0, 1], b"http/1.1").await.unwrap();
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut response)).await;
        String::from_utf8_lossy(&response).to_lowercase()
    };
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /{PUBLIC_SERVICE}/TrackComplaint HTTP/1.1\r\nHost: localhost\r\n\
             Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type,x-grpc-web,x-user-agent\r\n\
             Connection: close\r\n\r\n"
        )
    };

    let answer = exchange(preflight(allowed), b"").await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("access-control-allow-origin: {allowed}")),
        "{answer}"
    );
    let header = |answer: &str, name: &str| {
        answer
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
            .to_owned()
    };
    let allow_headers = header(&answer, "access-control-allow-headers:");
    for h in ["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"] {
        assert!(allow_headers.contains(h), "{allow_headers}");
    }
    assert!(
        answer.contains("access-control-allow-methods: post"),
        "{answer}"
    );

    let other = exchange(preflight("https://elsewhere.example.net"), b"").await;
    assert!(!other.contains("access-control-allow-origin"), "{other}");

    // The call itself: answered, its status readable by the page.
    let body = [0u8, 0, 0, 0, 0];
    let call = exchange(
        format!(
            "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: localhost\r\nOrigin: {allowed}\r\n\
             Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ),
        &body,
    )
    .await;
    assert!(call.starts_with("http/1.1 200"), "{call}");
    assert!(
        call.contains(&format!("access-control-allow-origin: {allowed}")),
        "{call}"
    );
    let exposed = header(&call, "access-control-expose-headers:");
    assert!(exposed.contains("grpc-status"), "{exposed}");
    t.stop().await;
}
