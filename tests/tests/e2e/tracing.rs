//! One trace across the gateway, the backend and its database transaction, continuing the
//! caller's W3C `traceparent`.

use std::sync::OnceLock;
use std::time::Duration;

use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_tests::{Engine, TestMesh, eventually};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tonic::Code;
use tracing_subscriber::layer::SubscriberExt;

crate::on_both_engines!(
    a_call_is_one_trace_from_gateway_to_database,
    gateway_counts_calls_by_method_tenant_and_status,
);

/// Spans of this test binary, exported in memory.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        creditmesh_rpc::telemetry::set_exporting(true);
        exporter
    })
}

async fn a_call_is_one_trace_from_gateway_to_database(engine: Engine) {
    let exporter = exporter();
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let mut request = tonic::Request::new(super::complaints::complaint("traced", ""));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    ComplaintServiceClient::new(t.public().await)
        .submit_complaint(request)
        .await
        .unwrap();

    let spans = eventually("the spans of the call", Duration::from_secs(10), || {
        let spans: Vec<_> = exporter
            .get_finished_spans()
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.span_context.trace_id().to_string() == trace_id)
            .collect();
        let complete = spans.len() >= 3 && spans.iter().any(|s| s.name == "db.transaction");
        async move { complete.then_some(spans) }
    })
    .await;
    let has = |s: &opentelemetry_sdk::trace::SpanData, key: &str| {
        s.attributes.iter().any(|kv| kv.key.as_str() == key)
    };
    let gateway = spans
        .iter()
        .find(|s| has(s, "public"))
        .expect("a gateway span");
    let backend = spans
        .iter()
        .find(|s| has(s, "service") && s.name.contains("SubmitComplaint"))
        .expect("a backend span");
    let database = spans.iter().find(|s| s.name == "db.transaction").unwrap();
    assert_eq!(
        gateway.parent_span_id.to_string(),
        "00f067aa0ba902b7",
        "continues the caller"
    );
    assert_eq!(
        backend.parent_span_id,
        gateway.span_context.span_id(),
        "backend under gateway"
    );
    assert_eq!(
        database.parent_span_id,
        backend.span_context.span_id(),
        "database under backend"
    );
    t.stop().await;
}

/// Metrics of this test binary, read in memory; installed before the mesh starts.
fn metrics() -> &'static (
    opentelemetry_sdk::metrics::SdkMeterProvider,
    opentelemetry_sdk::metrics::InMemoryMetricExporter,
) {
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    static METRICS: OnceLock<(SdkMeterProvider, InMemoryMetricExporter)> = OnceLock::new();
    METRICS.get_or_init(|| {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        opentelemetry::global::set_meter_provider(provider.clone());
        (provider, exporter)
    })
}

async fn gateway_counts_calls_by_method_tenant_and_status(engine: Engine) {
    use creditmesh_proto::complaints::v1::ListComplaintsRequest;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    let (provider, exporter) = metrics();
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut client = ComplaintServiceClient::new(t.node("regulator-650100").await);
    let _ = client
        .list_complaints(ListComplaintsRequest::default())
        .await;
    // A path no contract names is counted as "unknown", never under its own name.
    let mut raw = tonic::client::Grpc::new(t.public().await);
    raw.ready().await.unwrap();
    let nowhere = raw
        .unary::<(), (), _>(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/made.up.v1.Service/Method123"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_ne!(nowhere.code(), Code::Ok);
    provider.force_flush().unwrap();
    let method = "creditmesh.complaints.v1.ComplaintService/ListComplaints";
    let mut counted = 0;
    for rm in exporter.get_finished_metrics().unwrap() {
        for scope in rm.scope_metrics() {
            for metric in scope
                .metrics()
                .filter(|m| m.name() == "creditmesh.gateway.calls")
            {
                if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                    for point in sum.data_points() {
                        let attr = |k: &str| {
                            point
                                .attributes()
                                .find(|kv| kv.key.as_str() == k)
                                .map(|kv| kv.value.to_string())
                        };
                        if attr("rpc.method").as_deref() == Some(method)
                            && attr("tenant").as_deref() == Some("650100")
                            && attr("rpc.grpc.status_code").as_deref() == Some("0")
                        {
                            counted = counted.max(point.value());
                        }
                    }
                }
            }
        }
    }
    assert!(counted >= 1, "no call counted for {method} / 650100 / OK");
    let mut methods = std::collections::HashSet::new();
    for rm in exporter.get_finished_metrics().unwrap() {
        for scope in rm.scope_metrics() {
            for metric in scope.metrics() {
                if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                    for point in sum.data_points() {
                        for kv in point.attributes() {
                            if kv.key.as_str() == "rpc.method" {
                                methods.insert(kv.value.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(methods.contains("unknown"), "{methods:?}");
    assert!(
        !methods.iter().any(|m| m.contains("made.up")),
        "{methods:?}"
    );
    t.stop().await;
}

/// A `serve` process logging JSON lines with its spans exported (to an endpoint that is not
/// there, as a collector that is down): a line logged inside a call carries the call's trace
/// id — the one the caller's `traceparent` began — and the call's span id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_inside_a_call_carry_its_trace() {
    const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let free_port = creditmesh_tests::free_port;
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    let (port, collector) = (free_port(), free_port());
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "pki_dir = \"{}\"\n[measures]\neffective_on = \"2026-01-01\"\n[database]\nurl = \"sqlite://{}/db/{{service}}.sqlite\"\n\
             [log]\nformat = \"json\"\n[services.complaints]\nlisten = \"127.0.0.1:{port}\"\n",
            pki.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let _serve = tokio::process::Command::new(BIN)
        .args(["serve", "--services", "complaints", "--config"])
        .arg(&config)
        .env_remove("CREDITMESH_DATABASE__URL")
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{collector}"),
        )
        .env("OTEL_SERVICE_NAME", "complaints-under-test")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let backend = creditmesh_gateway::Backend {
        grpc_name: "creditmesh.complaints.v1.ComplaintService".into(),
        urls: vec![format!("https://127.0.0.1:{port}")],
        server_name: "complaints".into(),
        tenant: None,
    };
    let (_, public) = super::balancing::gateway_for(&pki, backend, &stop).await;
    let client = ComplaintServiceClient::new(creditmesh_tests::server_tls(public, &pki).await);
    eventually("a complaint taken", Duration::from_secs(60), || {
        let mut client = client.clone();
        async move {
            let mut call = tonic::Request::new(super::complaints::complaint("traced-1", ""));
            call.metadata_mut().insert(
                "traceparent",
                format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
                    .parse()
                    .unwrap(),
            );
            client.submit_complaint(call).await.ok()
        }
    })
    .await;
    let line = eventually("the call's log line", Duration::from_secs(10), || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(log).ok()?;
            text.lines()
                .find(|l| l.contains("complaint received"))
                .map(str::to_owned)
        }
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    // The line names the spans it is inside; the call's is one of them.
    let span = json["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["name"] == "grpc.server"))
        .unwrap_or_else(|| panic!("inside the call's span: {line}"));
    assert_eq!(span["trace_id"], TRACE_ID, "{line}");
    let span_id = span["span_id"].as_str().unwrap_or_default();
    assert!(
        span_id.len() == 16 && span_id != "00f067aa0ba902b7",
        "the call's own span: {line}"
    );
    stop.cancel();
}
