//! `creditmesh-bench soak`: mixed traffic through the gateway at a fixed rate for a long
//! time — public reads and complaints, regulators' reads, health checks, refused calls — and
//! the process's resident memory and latency, window by window, so that a leak or a slow
//! drift shows as the difference between the first and the last window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{SubmitComplaintRequest, TrackComplaintRequest};
use creditmesh_proto::filing::v1::ListFilingsRequest;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use hdrhistogram::Histogram;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::mesh::BenchMesh;

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub seconds: u64,
    /// Length of the windows compared (the first and the last).
    pub window_seconds: u64,
    /// Calls per second, open loop.
    pub rate: u64,
    pub postgres: Option<String>,
}

/// The calls of the mix, taken in turn.
#[derive(Clone)]
struct Mix {
    public: Channel,
    regulator: Channel,
    tracked: TrackComplaintRequest,
}

impl Mix {
    async fn call(&self, n: u64) -> Result<(), tonic::Status> {
        let served = |r: Result<(), tonic::Status>, refused: Code| match r {
            Err(e) if e.code() == refused => Ok(()),
            other => other,
        };
        match n % 10 {
            0..=2 => ComplaintServiceClient::new(self.public.clone())
                .track_complaint(self.tracked.clone())
                .await
                .map(|_| ()),
            3 | 4 => ComplaintServiceClient::new(self.public.clone())
                .submit_complaint(SubmitComplaintRequest {
                    request_id: format!("soak-{n}"),
                    agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
                    complainant_contact: "soak@example.org".into(),
                    subject: "soak".into(),
                    description: format!("complaint {n} of a long run"),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            5 | 6 => FilingServiceClient::new(self.regulator.clone())
                .list_filings(ListFilingsRequest {
                    page_size: 20,
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            7 => ReviewServiceClient::new(self.regulator.clone())
                .get_credit_file(GetCreditFileRequest {
                    uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            8 => HealthClient::new(self.public.clone())
                .check(HealthCheckRequest {
                    service: "creditmesh.complaints.v1.ComplaintService".into(),
                })
                .await
                .map(|_| ()),
            _ => served(
                ComplaintServiceClient::new(self.public.clone())
                    .track_complaint(TrackComplaintRequest::default())
                    .await
                    .map(|_| ()),
                Code::InvalidArgument,
            ),
        }
    }
}

/// Resident memory of this process, in MiB.
pub(crate) fn rss_mib() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

struct Window {
    histogram: Histogram<u64>,
    calls: u64,
    errors: u64,
    rss_mib: f64,
}

impl Window {
    fn new() -> Self {
        Self {
            histogram: crate::mesh::histogram(),
            calls: 0,
            errors: 0,
            rss_mib: 0.0,
        }
    }

    fn summary(&self) -> serde_json::Value {
        let q = |p: f64| self.histogram.value_at_quantile(p) as f64 / 1000.0;
        json!({
            "calls": self.calls,
            "errors": self.errors,
            "p50_ms": q(0.5),
            "p99_ms": q(0.99),
            "rss_mib": (self.rss_mib * 10.0).round() / 10.0,
        })
    }
}

pub async fn soak(opts: SoakOptions) -> Result<serde_json::Value> {
    let bench = BenchMesh::start(
        "soak",
        opts.postgres.as_deref(),
        4,
        Duration::from_millis(500),
    )
    .await?;
    let public = bench.public()?;
    let regulator = bench.node(1, "regulator-650000")?.remove(0);
    let submitted = ComplaintServiceClient::new(public.clone())
        .submit_complaint(SubmitComplaintRequest {
            request_id: "soak-tracked".into(),
            agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            complainant_contact: "soak@example.org".into(),
            subject: "soak".into(),
            description: "a complaint to read back".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mix = Mix {
        public,
        regulator,
        tracked: TrackComplaintRequest {
            tracking_number: submitted.tracking_number,
            access_code: submitted.access_code,
        },
    };
    eprintln!(
        "bench: soak at {}/s for {}s on {}",
        opts.rate, opts.seconds, bench.engine
    );
    let windows = (opts.seconds / opts.window_seconds.max(1)).max(1) as usize;
    let window_len = Duration::from_secs(opts.window_seconds.max(1));
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(1) as f64);
    let started = tokio::time::Instant::now();
    let results = Arc::new(std::sync::Mutex::new(
        (0..windows).map(|_| Window::new()).collect::<Vec<_>>(),
    ));
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut max_in_flight = 0;
    let mut rss_max: f64 = 0.0;
    let mut n = 0u64;
    let mut next_sample = Instant::now();
    loop {
        let due = started + interval.mul_f64(n as f64);
        let w = (due - started).as_secs_f64() / window_len.as_secs_f64();
        if w as usize >= windows {
            break;
        }
        tokio::time::sleep_until(due).await;
        if Instant::now() >= next_sample {
            let rss = rss_mib();
            rss_max = rss_max.max(rss);
            results.lock().unwrap_or_else(|p| p.into_inner())[w as usize].rss_mib = rss;
            next_sample = Instant::now() + Duration::from_secs(1);
        }
        let (mix, results, in_flight) = (mix.clone(), results.clone(), in_flight.clone());
        max_in_flight = max_in_flight.max(in_flight.fetch_add(1, Ordering::Relaxed) + 1);
        tokio::spawn(async move {
            let answer = mix.call(n).await;
            let latency = due.elapsed().as_micros() as u64;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
            let window = &mut r[w as usize];
            window.calls += 1;
            match answer {
                Ok(()) => {
                    let _ = window.histogram.record(latency);
                }
                Err(_) => window.errors += 1,
            }
        });
        n += 1;
    }
    while in_flight.load(Ordering::Relaxed) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_end = rss_mib();
    bench.stop().await?;
    let r = results.lock().unwrap_or_else(|p| p.into_inner());
    let (first, last) = (&r[0], &r[windows - 1]);
    Ok(json!({
        "engine": if opts.postgres.is_some() { "postgres" } else { "sqlite" },
        "seconds": opts.seconds,
        "rate": opts.rate,
        "window_seconds": opts.window_seconds,
        "calls": r.iter().map(|w| w.calls).sum::<u64>(),
        "errors": r.iter().map(|w| w.errors).sum::<u64>(),
        "max_in_flight": max_in_flight,
        "first": first.summary(),
        "last": last.summary(),
        "rss_max_mib": (rss_max * 10.0).round() / 10.0,
        "rss_end_mib": (rss_end * 10.0).round() / 10.0,
        "rss_growth_mib": ((last.rss_mib - first.rss_mib) * 10.0).round() / 10.0,
    }))
}
