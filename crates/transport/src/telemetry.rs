//! Logs, traces and metrics. Traces and metrics go out over OTLP when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` variable is set; W3C `traceparent` is always honoured.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{global, propagation::Extractor, propagation::Injector};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushes and stops the exporters when dropped.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether spans leave the process (OpenTelemetry is configured): only then is a caller's trace
/// context worth reading into the span, or the span's worth passing on.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// For a process that installs its own OpenTelemetry layer instead of calling [`init`].
pub fn set_exporting(on: bool) {
    EXPORTING.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Installs the global subscriber: `filter` (overridden by `RUST_LOG`), text or JSON lines on
/// stderr, and OpenTelemetry when configured by the environment.
pub fn init(filter: &str, json: bool) -> anyhow::Result<Telemetry> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    EXPORTING.store(otlp, std::sync::atomic::Ordering::Relaxed);
    // The builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the name is ours only
    // where neither names the service.
    let mut resource = Resource::builder();
    if !named_by_environment(
        std::env::var("OTEL_SERVICE_NAME").ok().as_deref(),
        std::env::var("OTEL_RESOURCE_ATTRIBUTES").ok().as_deref(),
    ) {
        resource = resource.with_service_name("creditmesh");
    }
    let resource = resource.build();
    let (tracer, meter) = if otlp {
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        let tracer = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        let meter = SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource)
            .build();
        global::set_meter_provider(meter.clone());
        (Some(tracer), Some(meter))
    } else {
        (None, None)
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    let otel = tracer
        .as_ref()
        .map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer("creditmesh")));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init();
    Ok(Telemetry { tracer, meter })
}

/// Whether the standard variables name the service: `OTEL_SERVICE_NAME`, or `service.name`
/// among `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`).
fn named_by_environment(service_name: Option<&str>, attributes: Option<&str>) -> bool {
    service_name.is_some_and(|n| !n.trim().is_empty())
        || attributes.is_some_and(|a| {
            a.split(',').any(|kv| {
                kv.split_once('=')
                    .is_some_and(|(k, _)| k.trim() == "service.name")
            })
        })
}

/// The trace id a W3C `traceparent` header carries (`00-<trace id>-<parent id>-<flags>`).
pub fn traceparent_trace_id(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let id = value.split('-').nth(1)?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Reads W3C trace context from HTTP headers.
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes W3C trace context into HTTP headers.
pub struct HeaderInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The trace context a request carries.
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's trace context into `headers`, replacing what was there.
pub fn inject_current(headers: &mut http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_service_by_either_variable() {
        assert!(!named_by_environment(None, None));
        assert!(!named_by_environment(
            Some(" "),
            Some("deployment.environment=prod")
        ));
        assert!(named_by_environment(Some("creditmesh-filing"), None));
        assert!(named_by_environment(
            None,
            Some("k8s.pod.name=a, service.name=filing")
        ));
    }

    #[test]
    fn a_traceparent_gives_its_trace_id() {
        let mut h = http::HeaderMap::new();
        assert_eq!(traceparent_trace_id(&h), None);
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            traceparent_trace_id(&h),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        h.insert(
            "traceparent",
            "00-nothex-00f067aa0ba902b7-01".parse().unwrap(),
        );
        assert_eq!(traceparent_trace_id(&h), None);
    }
}
