//! The outbox: events wait for a consumer that is down and reach it once it is up; a
//! redelivered event is applied once.

use std::net::SocketAddr;
use std::time::Duration;

use creditmesh::mesh::{all_services, start_relay, start_service};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{DeliverRequest, Event};
use creditmesh_tests::{Engine, TRUST_DOMAIN, eventually, fresh_database, mtls, scalar_i64};
use tokio_util::sync::CancellationToken;

crate::on_both_engines!(
    events_wait_for_a_consumer_that_is_down,
    a_failed_event_holds_back_the_later_events_of_its_aggregate,
);

async fn events_wait_for_a_consumer_that_is_down(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(engine, dir.path()).await else {
        return;
    };
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, TRUST_DOMAIN).unwrap();
    let runtime = creditmesh_tests::runtime(&pki, dir.path());
    let defs = all_services(&runtime.services);
    let def = |name: &str| defs.iter().find(|d| d.name == name).unwrap();
    let db_for = |name: &str| {
        let mut c = db.clone();
        c.url = c.url.replace("{service}", name);
        c
    };
    let stop = CancellationToken::new();
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let complaints = start_service(
        def("complaints"),
        &db_for("complaints"),
        &runtime,
        any_port,
        stop.clone(),
    )
    .await
    .unwrap();
    let review_addr = std::net::TcpListener::bind(any_port)
        .unwrap()
        .local_addr()
        .unwrap();
    let backends = creditmesh::mesh::RelayTargets {
        default: [(
            "review".to_owned(),
            creditmesh::mesh::Target::at(format!("https://{review_addr}"), "review"),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let relay = start_relay(
        &complaints,
        &backends,
        &pki,
        creditmesh::mesh::RelayTiming::polling(Duration::from_millis(100)),
        stop.clone(),
    )
    .await
    .unwrap();

    // Act as the gateway towards the complaints backend.
    let mut client =
        ComplaintServiceClient::new(mtls(complaints.addr, &pki, "service-gateway").await);
    for i in 0..3 {
        let mut req = tonic::Request::new(super::complaints::complaint(&format!("down-{i}"), ""));
        req.metadata_mut()
            .insert(creditmesh_rpc::PRINCIPAL_HEADER, "public".parse().unwrap());
        client.submit_complaint(req).await.unwrap();
    }
    let complaints_url = db_for("complaints").url;
    eventually("failed delivery attempts", Duration::from_secs(20), || {
        let url = complaints_url.clone();
        async move {
            let n = scalar_i64(
                &url,
                "SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL AND attempts > 0",
            )
            .await;
            (n == 3).then_some(())
        }
    })
    .await;

    let review = start_service(
        def("review"),
        &db_for("review"),
        &runtime,
        review_addr,
        stop.clone(),
    )
    .await
    .unwrap();
    eventually(
        "delivery once the consumer is up",
        Duration::from_secs(30),
        || {
            let url = complaints_url.clone();
            async move {
                let n = scalar_i64(
                    &url,
                    "SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL",
                )
                .await;
                (n == 0).then_some(())
            }
        },
    )
    .await;
    let review_url = db_for("review").url;
    assert_eq!(
        scalar_i64(
            &review_url,
            "SELECT COUNT(*) FROM review_inbox WHERE event_type = 'complaints.complaint_submitted'"
        )
        .await,
        3
    );

    // The relay may deliver an event again (a crash between delivery and acknowledgement):
    // the consumer applies it once.
    let mut sink = EventSinkServiceClient::new(mtls(review.addr, &pki, "service-complaints").await);
    let event_id: String = {
        sqlx::any::install_default_drivers();
        use sqlx::Connection;
        let mut conn = sqlx::AnyConnection::connect(&review_url).await.unwrap();
        sqlx::query_scalar(
            "SELECT event_id FROM review_inbox WHERE event_type = 'complaints.complaint_submitted' \
             ORDER BY event_id LIMIT 1",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
    };
    let again = sink
        .deliver(DeliverRequest {
            event: Some(Event {
                id: event_id,
                r#type: "complaints.complaint_submitted".into(),
                source: "complaints".into(),
                tenant: "650000".into(),
                principal: "public".into(),
                subject: "x".into(),
                occurred_at: None,
                payload: prost::Message::encode_to_vec(
                    &creditmesh_proto::events::v1::ComplaintSubmitted {
                        agency_uscc: "91653101MA78KT005T".into(),
                        subject: "again".into(),
                        ..Default::default()
                    },
                ),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);
    assert_eq!(
        scalar_i64(
            &review_url,
            "SELECT COUNT(*) FROM review_inbox WHERE event_type = 'complaints.complaint_submitted'"
        )
        .await,
        3
    );

    // A service delivers only its own events: complaints cannot speak for review.
    for (source, kind) in [
        ("review", "review.filing_decided"),
        ("complaints", "review.filing_decided"),
    ] {
        let forged = sink
            .deliver(DeliverRequest {
                event: Some(Event {
                    id: uuid::Uuid::now_v7().to_string(),
                    r#type: kind.into(),
                    source: source.into(),
                    tenant: "650000".into(),
                    principal: "public".into(),
                    subject: "x".into(),
                    occurred_at: None,
                    payload: vec![],
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(
            forged.code(),
            tonic::Code::PermissionDenied,
            "{source} {kind}"
        );
    }

    // Only mesh services may deliver events.
    let mut intruder = EventSinkServiceClient::new(mtls(review.addr, &pki, "agency").await);
    let denied = intruder
        .deliver(DeliverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    stop.cancel();
    relay.await.unwrap();
}

/// A delivery that fails holds back the later events of the same aggregate for that consumer:
/// a late "approved" never lands after "revoked".
async fn a_failed_event_holds_back_the_later_events_of_its_aggregate(engine: Engine) {
    use creditmesh_proto::events::v1::DeadlineRecomputed;
    use sqlx::Connection;

    let Some(t) = creditmesh_tests::TestMesh::start(engine).await else {
        return;
    };
    let review = t.db_url("review");
    let filing = t.db_url("filing");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&review).await.unwrap();
    let valid = prost::Message::encode_to_vec(&DeadlineRecomputed {
        filing_id: "no-such-filing".into(),
        due_date: "2026-12-01".into(),
        provisional: false,
        calendar_version: "v".into(),
    });
    let insert = "INSERT INTO review_outbox (event_id, consumer, event_type, tenant, principal, \
                  subject, occurred_at, payload, attempts, next_attempt_at) \
                  VALUES ($1, 'filing', 'review.deadline_recomputed', '650000', 'test', $2, 0, $3, 0, 0)";
    // The first event of aggregate S cannot be decoded; the second, and one of another
    // aggregate, can.
    for (id, subject, payload) in [
        ("first", "S", vec![0xff, 0xff, 0xff]),
        ("second", "S", valid.clone()),
        ("other", "T", valid.clone()),
    ] {
        sqlx::query(insert)
            .bind(id)
            .bind(subject)
            .bind(payload)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let delivered = async |id: &'static str| {
        let url = filing.clone();
        let sql: &'static str = match id {
            "first" => "SELECT COUNT(*) FROM filing_inbox WHERE event_id = 'first'",
            "second" => "SELECT COUNT(*) FROM filing_inbox WHERE event_id = 'second'",
            _ => "SELECT COUNT(*) FROM filing_inbox WHERE event_id = 'other'",
        };
        scalar_i64(&url, sql).await == 1
    };
    eventually(
        "the other aggregate's event",
        Duration::from_secs(20),
        || async { delivered("other").await.then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!delivered("first").await);
    assert!(
        !delivered("second").await,
        "the second event of S waits behind the first"
    );

    // Once the first can be delivered, both go, the first first.
    sqlx::query(
        "UPDATE review_outbox SET payload = $1, next_attempt_at = 0 WHERE event_id = 'first'",
    )
    .bind(valid)
    .execute(&mut conn)
    .await
    .unwrap();
    eventually("both events of S", Duration::from_secs(20), || async {
        (delivered("first").await && delivered("second").await).then_some(())
    })
    .await;
    let order: Vec<String> = {
        let mut f = sqlx::AnyConnection::connect(&filing).await.unwrap();
        sqlx::query_scalar(
            "SELECT request_id FROM filing_audit WHERE method = 'events/review.deadline_recomputed' \
             ORDER BY id",
        )
        .fetch_all(&mut f)
        .await
        .unwrap()
    };
    assert_eq!(order, ["other", "first", "second"]);
    t.stop().await;
}
