//! `creditmesh-bench gateway`: unary load over mutual TLS against one service directly and
//! through the gateway, in the same run, on persistent connections, for two calls: a read
//! from the database, and a call the backend refuses by validation alone (so that the proxy's
//! own cost dominates). Saturation mode finds each path's throughput; fixed-rate mode (open
//! loop, at half the slower path's saturation rate) measures what the gateway adds to latency.
//! Latencies go into HDR histograms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use creditmesh_pki::{ClientTls, TlsFiles};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{SubmitComplaintRequest, TrackComplaintRequest};
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::mesh::{BenchMesh, Outcome, channels, fixed_rate, histogram};

#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    pub seconds: u64,
    pub warmup_seconds: u64,
    pub concurrency: usize,
    pub connections: usize,
}

/// One path under test: a set of persistent channels and how to call on them.
#[derive(Clone)]
struct Path {
    channels: Vec<Channel>,
    /// Set when calling a backend directly: the principal the gateway would forward.
    forwarded_principal: bool,
    request: TrackComplaintRequest,
    /// The answer that counts as served.
    expect: tonic::Code,
}

impl Path {
    async fn call_owned(self, worker: usize) -> Result<(), tonic::Status> {
        self.call(worker).await
    }

    async fn call(&self, worker: usize) -> Result<(), tonic::Status> {
        let ch = self.channels[worker % self.channels.len()].clone();
        let mut req = tonic::Request::new(self.request.clone());
        if self.forwarded_principal {
            req.metadata_mut().insert(
                creditmesh_rpc::PRINCIPAL_HEADER,
                tonic::metadata::MetadataValue::from_static("public"),
            );
        }
        let answer = ComplaintServiceClient::new(ch).track_complaint(req).await;
        match answer {
            Ok(_) if self.expect == tonic::Code::Ok => Ok(()),
            Err(e) if e.code() == self.expect => Ok(()),
            Ok(_) => Err(tonic::Status::unknown(
                "served where a refusal was expected",
            )),
            Err(e) => Err(e),
        }
    }
}
/// Closed loop: `concurrency` workers call back to back for `length`.
async fn saturate(path: &Path, concurrency: usize, length: Duration) -> Outcome {
    let shared = Arc::new(Mutex::new((histogram(), 0u64, 0u64)));
    let deadline = Instant::now() + length;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let path = path.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let (mut h, mut ok, mut errors) = (histogram(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let started = Instant::now();
                    match path.call(w).await {
                        Ok(()) => {
                            ok += 1;
                            let _ = h.record(started.elapsed().as_micros() as u64);
                        }
                        Err(_) => errors += 1,
                    }
                }
                let mut s = shared.lock().await;
                let _ = s.0.add(&h);
                s.1 += ok;
                s.2 += errors;
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let (h, ok, errors) = Arc::try_unwrap(shared)
        .map(|m| m.into_inner())
        .unwrap_or_else(|_| (histogram(), 0, 0));
    Outcome {
        rps: ok as f64 / length.as_secs_f64(),
        errors,
        histogram: h,
    }
}

/// Every path warmed up, then saturated in turn in one-second slices, so that a change in
/// the machine's speed during the run (on a shared host, a third from one minute to the
/// next) falls on all paths alike rather than on whichever ran then.
async fn saturate_alternating(paths: &[&Path], opts: BenchOptions) -> Vec<Outcome> {
    for path in paths {
        saturate(
            path,
            opts.concurrency,
            Duration::from_secs(opts.warmup_seconds),
        )
        .await;
    }
    let slice = Duration::from_secs(1);
    let slices = opts.seconds.max(1);
    let mut outcomes: Vec<Outcome> = paths.iter().map(|_| Outcome::empty()).collect();
    for _ in 0..slices {
        for (path, outcome) in paths.iter().zip(outcomes.iter_mut()) {
            let o = saturate(path, opts.concurrency, slice).await;
            outcome.absorb(&o);
            outcome.rps += o.rps / slices as f64;
        }
    }
    outcomes
}

/// Open loop on every path in turn, in half-second slices, so that whatever else the machine
/// does in the meantime falls on all alike.
async fn fixed_rate_alternating(paths: &[&Path], rate: f64, opts: BenchOptions) -> Vec<Outcome> {
    let slice = Duration::from_millis(500);
    let slices = (opts.seconds * 2).max(1);
    let mut outcomes: Vec<Outcome> = paths.iter().map(|_| Outcome::empty()).collect();
    for _ in 0..slices {
        for (path, outcome) in paths.iter().zip(outcomes.iter_mut()) {
            let path = (*path).clone();
            let o = fixed_rate(move |i| path.clone().call_owned(i), rate, slice).await;
            outcome.absorb(&o);
            outcome.rps += o.rps / slices as f64;
        }
    }
    outcomes
}

pub async fn gateway(
    opts: BenchOptions,
    limits: creditmesh_gateway::LimitsConfig,
    nginx: Option<&std::path::Path>,
) -> Result<serde_json::Value> {
    let backend_connections = limits.backend_connections;
    let backend_calls_per_connection = limits.backend_calls_per_connection;
    // Two connections per service: on two cores, more SQLite worker threads only add
    // context switches to both paths alike.
    let bench =
        BenchMesh::start_limited("gateway", None, 2, Duration::from_secs(1), limits).await?;
    let (mesh, pki) = (&bench.mesh, &bench.pki);
    let backend = mesh
        .services
        .iter()
        .find(|s| s.name == "complaints")
        .context("complaints service")?
        .addr;
    let nginx = match nginx {
        Some(binary) => {
            Some(crate::nginx::Nginx::start(binary, &bench.dir, pki, backend, "complaints").await?)
        }
        None => None,
    };

    // The gateway's own identity reaches the backend directly; an agency goes through the
    // gateway's node listener (and through nginx). All over mutual TLS.
    let as_gateway = ClientTls::client(TlsFiles::in_dir(pki, "service-gateway"))?;
    let direct_channels = channels(
        opts.connections,
        &format!("https://{backend}"),
        &as_gateway,
        "complaints",
    )?;
    let gateway_channels = bench.node(opts.connections, "agency")?;

    let mut seed = ComplaintServiceClient::new(gateway_channels[0].clone());
    let submitted = seed
        .submit_complaint(SubmitComplaintRequest {
            request_id: "bench".into(),
            agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
            complainant_contact: "bench@example.org".into(),
            subject: "benchmark".into(),
            description: "a complaint to read back".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let request = TrackComplaintRequest {
        tracking_number: submitted.tracking_number,
        access_code: submitted.access_code,
    };
    let direct = Path {
        channels: direct_channels,
        forwarded_principal: true,
        request: request.clone(),
        expect: tonic::Code::Ok,
    };
    let through = Path {
        channels: gateway_channels,
        forwarded_principal: false,
        request,
        expect: tonic::Code::Ok,
    };
    let via_nginx = match &nginx {
        Some(n) => {
            let tls = ClientTls::client(TlsFiles::in_dir(pki, "agency"))?;
            Some(Path {
                channels: channels(
                    opts.connections,
                    &format!("https://{}", n.addr),
                    &tls,
                    "localhost",
                )?,
                forwarded_principal: false,
                ..through.clone()
            })
        }
        None => None,
    };
    let refused = |p: &Path| Path {
        request: TrackComplaintRequest::default(),
        expect: tonic::Code::InvalidArgument,
        ..p.clone()
    };

    eprintln!("bench: the database read");
    let mut figures = compare(&direct, &through, via_nginx.as_ref(), opts).await;
    eprintln!("bench: the call refused by validation");
    figures["refused"] = compare(
        &refused(&direct),
        &refused(&through),
        via_nginx.as_ref().map(refused).as_ref(),
        opts,
    )
    .await;
    figures["refused"]["method"] = "TrackComplaint without a tracking number".into();

    drop(nginx);
    bench.stop().await?;
    figures["method"] = "creditmesh.complaints.v1.ComplaintService/TrackComplaint".into();
    figures["concurrency"] = opts.concurrency.into();
    figures["connections"] = opts.connections.into();
    figures["seconds"] = opts.seconds.into();
    figures["backend_connections"] = backend_connections.into();
    figures["backend_calls_per_connection"] = backend_calls_per_connection.into();
    Ok(figures)
}

/// Saturation and fixed rate on one call, directly, through the gateway and, when given,
/// through nginx.
async fn compare(
    direct: &Path,
    through: &Path,
    nginx: Option<&Path>,
    opts: BenchOptions,
) -> serde_json::Value {
    let mut paths = vec![direct, through];
    paths.extend(nginx);
    eprintln!(
        "bench: saturating each path in turn ({} × 1 s each)",
        opts.seconds
    );
    let mut saturated = saturate_alternating(&paths, opts).await.into_iter();
    let (direct_sat, gateway_sat) = (
        saturated.next().expect("direct"),
        saturated.next().expect("gateway"),
    );
    let nginx_sat = saturated.next();
    // Half load: half of what the slowest path sustains, so that every path has headroom
    // and the difference is what the proxy adds, not a queue.
    let rate = nginx_sat
        .iter()
        .fold(direct_sat.rps.min(gateway_sat.rps), |r, n| r.min(n.rps))
        / 2.0;
    eprintln!("bench: fixed rate {rate:.0}/s on each path in turn");
    let fixed = fixed_rate_alternating(&paths, rate, opts).await;
    let ms = |o: &Outcome, q: f64| o.histogram.value_at_quantile(q) as f64 / 1000.0;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    let ratio = |a: f64, b: f64| if b > 0.0 { round(a / b, 3) } else { 0.0 };
    let added = |o: &Outcome, q: f64| round(ms(o, q) - ms(&fixed[0], q), 3);
    let mut figures = json!({
        "direct_rps": round(direct_sat.rps, 1),
        "gateway_rps": round(gateway_sat.rps, 1),
        "ratio": ratio(gateway_sat.rps, direct_sat.rps),
        "direct_p50_ms": ms(&direct_sat, 0.5),
        "direct_p99_ms": ms(&direct_sat, 0.99),
        "direct_p999_ms": ms(&direct_sat, 0.999),
        "gateway_p50_ms": ms(&gateway_sat, 0.5),
        "gateway_p99_ms": ms(&gateway_sat, 0.99),
        "gateway_p999_ms": ms(&gateway_sat, 0.999),
        "fixed_rate_rps": round(rate, 1),
        "fixed_direct": fixed[0].summary(),
        "fixed_gateway": fixed[1].summary(),
        "added_p50_ms": added(&fixed[1], 0.5),
        "added_p99_ms": added(&fixed[1], 0.99),
        "errors": direct_sat.errors
            + gateway_sat.errors
            + nginx_sat.as_ref().map_or(0, |n| n.errors)
            + fixed.iter().map(|o| o.errors).sum::<u64>(),
    });
    if let Some(n) = &nginx_sat {
        figures["nginx_rps"] = round(n.rps, 1).into();
        figures["nginx_ratio"] = ratio(n.rps, direct_sat.rps).into();
        figures["gateway_vs_nginx"] = ratio(gateway_sat.rps, n.rps).into();
        figures["nginx_p50_ms"] = ms(n, 0.5).into();
        figures["nginx_p99_ms"] = ms(n, 0.99).into();
        figures["fixed_nginx"] = fixed[2].summary();
        figures["nginx_added_p50_ms"] = added(&fixed[2], 0.5).into();
        figures["nginx_added_p99_ms"] = added(&fixed[2], 0.99).into();
    }
    figures
}
