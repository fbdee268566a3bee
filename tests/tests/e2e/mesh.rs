//! The mesh's doors: health and reflection through the gateway, client certificates, and
//! backends that take calls only from the gateway.

use creditmesh_proto::SERVICE_NAMES;
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_tests::{Engine, TestMesh, try_mtls, try_server_tls};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

crate::on_both_engines!(
    every_service_is_serving_through_the_gateway,
    reflection_lists_every_service,
    public_reflection_lists_what_the_public_may_call,
    node_listener_refuses_callers_without_a_ca_certificate,
    backends_refuse_calls_that_bypass_the_gateway,
    spoofed_identity_metadata_is_ignored,
    public_listener_serves_only_public_services,
    shutdown_ends_even_with_a_stream_left_open,
    the_policy_is_enforced_at_the_gateway,
    the_gateway_sheds_excess_calls_and_limits_rates,
);

async fn every_service_is_serving_through_the_gateway(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut health = HealthClient::new(t.node("agency").await);
    for service in SERVICE_NAMES.iter().copied().chain([""]) {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{service}: {e}"))
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "creditmesh.nothing.v1.Nothing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    t.stop().await;
}

async fn reflection_lists_every_service(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut client = ServerReflectionClient::new(t.node("regulator-650100").await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("stream")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list, got {:?}", answer.message_response);
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in SERVICE_NAMES.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    t.stop().await;
}

/// The public listener's reflection lists the services the public may call (a stock client's
/// `list` shows what can be tried there); their types still resolve.
async fn public_reflection_lists_what_the_public_may_call(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut client = ServerReflectionClient::new(t.public().await);
    let ask = |message_request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message_request),
    };
    let mut answers = client
        .server_reflection_info(futures::stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "creditmesh.complaints.v1.ComplaintService".into(),
            )),
        ]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers.message().await.expect("stream").expect("a list");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list, got {:?}", answer.message_response);
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "creditmesh.complaints.v1.ComplaintService",
            "creditmesh.datapush.v1.DataPushService",
            "creditmesh.disclosure.v1.DisclosureService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
    );
    let answer = answers.message().await.expect("stream").expect("a file");
    assert!(
        matches!(
            answer.message_response,
            Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()
        ),
        "{:?}",
        answer.message_response
    );
    t.stop().await;
}

async fn node_listener_refuses_callers_without_a_ca_certificate(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    // No client certificate: the handshake fails or the first call does.
    if let Ok(ch) = try_server_tls(t.mesh.node_addr, &t.pki_dir).await {
        let err = HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .expect_err("a call without a client certificate must fail");
        assert_ne!(err.code(), Code::Ok);
    }
    // A certificate from another CA with the same names.
    let other = tempfile::tempdir().unwrap();
    creditmesh_pki::ensure_dev_pki(other.path(), creditmesh_tests::TRUST_DOMAIN).unwrap();
    std::fs::copy(t.pki_dir.join("ca.pem"), other.path().join("ca.pem")).unwrap();
    if let Ok(ch) = try_mtls(t.mesh.node_addr, other.path(), "agency").await {
        let err = HealthClient::new(ch)
            .check(HealthCheckRequest::default())
            .await
            .expect_err("a foreign certificate must be refused");
        assert_ne!(err.code(), Code::Ok);
    }
    t.stop().await;
}

async fn backends_refuse_calls_that_bypass_the_gateway(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let direct =
        creditmesh_tests::mtls(t.service_addr("review"), &t.pki_dir, "regulator-650000").await;
    let err = ReviewServiceClient::new(direct)
        .get_credit_file(GetCreditFileRequest {
            uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A service identity that forwards no principal is refused too.
    let as_gateway =
        creditmesh_tests::mtls(t.service_addr("review"), &t.pki_dir, "service-gateway").await;
    let err = ReviewServiceClient::new(as_gateway)
        .get_credit_file(GetCreditFileRequest {
            uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    t.stop().await;
}

async fn spoofed_identity_metadata_is_ignored(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut client = ReviewServiceClient::new(t.node("agency").await);
    // The agency claims to be the regional regulator to read another agency's file.
    let mut request = tonic::Request::new(GetCreditFileRequest {
        uscc: "91653101MA78KT005T".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        creditmesh_rpc::PRINCIPAL_HEADER,
        "spiffe://creditmesh.xinjiang/regulator/650000"
            .parse()
            .unwrap(),
    );
    let err = client.get_credit_file(request).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Its own file it may read.
    client
        .get_credit_file(GetCreditFileRequest {
            uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .expect("an agency reads its own file");
    t.stop().await;
}

async fn public_listener_serves_only_public_services(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let public = t.public().await;
    let err = ReviewServiceClient::new(public.clone())
        .get_credit_file(GetCreditFileRequest {
            uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let mut health = HealthClient::new(public);
    let ok = health
        .check(HealthCheckRequest {
            service: "creditmesh.complaints.v1.ComplaintService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.status, ServingStatus::Serving as i32);
    let hidden = health
        .check(HealthCheckRequest {
            service: "creditmesh.review.v1.ReviewService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    t.stop().await;
}

async fn shutdown_ends_even_with_a_stream_left_open(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut health = HealthClient::new(t.node("department").await);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "creditmesh.datapush.v1.DataPushService".into(),
        })
        .await
        .expect("watch through the gateway")
        .into_inner();
    let first = watch.message().await.unwrap().expect("a first status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let started = std::time::Instant::now();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        t.mesh.shutdown(std::time::Duration::from_secs(1)),
    )
    .await
    .expect("shutdown finishes once the grace period is over");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

async fn the_policy_is_enforced_at_the_gateway(engine: Engine) {
    use creditmesh_proto::complaints::v1::ListComplaintsRequest;
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    use creditmesh_proto::events::v1::DeliverRequest;
    use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
    use creditmesh_proto::filing::v1::SubmitFilingRequest;
    use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;

    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let list = |ch| async move {
        ComplaintServiceClient::new(ch)
            .list_complaints(ListComplaintsRequest::default())
            .await
            .err()
            .map_or(Code::Ok, |e| e.code())
    };
    assert_eq!(list(t.public().await).await, Code::PermissionDenied);
    assert_eq!(list(t.node("agency").await).await, Code::PermissionDenied);
    assert_eq!(
        list(t.node("department").await).await,
        Code::PermissionDenied
    );
    assert_eq!(list(t.node("regulator-650100").await).await, Code::Ok);

    let filed = FilingServiceClient::new(t.node("department").await)
        .submit_filing(SubmitFilingRequest::default())
        .await
        .unwrap_err();
    assert_eq!(filed.code(), Code::PermissionDenied);
    let delivered = EventSinkServiceClient::new(t.node("regulator-650000").await)
        .deliver(DeliverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(delivered.code(), Code::PermissionDenied);
    t.stop().await;
}

async fn the_gateway_sheds_excess_calls_and_limits_rates(engine: Engine) {
    use creditmesh_gateway::limits::LimitsConfig;
    use creditmesh_proto::disclosure::v1::GetRegisterHeadRequest;
    use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;

    let mut limits = LimitsConfig::default();
    limits.rate_per_second.agency = 2;
    limits.rate_per_second.public = 0;
    limits.max_concurrent_calls = 4;
    let Some(t) = TestMesh::start_with(engine, limits).await else {
        return;
    };

    // Rates: beyond two calls a second the same agency is refused; another principal is not
    // affected.
    let mut agency = DisclosureServiceClient::new(t.node("agency").await);
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(
            match agency.get_register_head(GetRegisterHeadRequest {}).await {
                Ok(_) => Code::Ok,
                Err(e) => e.code(),
            },
        );
    }
    assert!(
        codes[..2].iter().all(|c| *c != Code::ResourceExhausted),
        "{codes:?}"
    );
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    let mut region = DisclosureServiceClient::new(t.node("regulator-650000").await);
    let other = region.get_register_head(GetRegisterHeadRequest {}).await;
    assert_ne!(
        other.map(|_| ()).unwrap_err().code(),
        Code::ResourceExhausted
    );

    // Concurrency: with 4 places, a burst of 64 concurrent calls sees some shed at once.
    let public = t.public().await;
    let calls = (0..64).map(|i| {
        let mut c =
            creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient::new(
                public.clone(),
            );
        async move {
            c.submit_complaint(super::complaints::complaint(&format!("shed-{i}"), ""))
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }
    });
    let results = futures::future::join_all(calls).await;
    let shed = results
        .iter()
        .filter(|r| **r == Err(Code::ResourceExhausted))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(shed > 0, "nothing was shed: {results:?}");
    assert!(ok > 0, "nothing got through: {results:?}");
    assert_eq!(shed + ok, 64, "{results:?}");
    t.stop().await;
}
