//! `creditmesh-bench fairness`: one tenant's regulator reads at a fixed rate, alone and while
//! another tenant sends ten times its share of the gateway's calls in flight, the two phases
//! taking turns for several rounds so that whatever else the machine does falls on both
//! alike; the first tenant's p99 in both shows what the per-tenant shares protect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_proto::filing::v1::ListFilingsRequest;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use serde_json::json;
use tonic::transport::Channel;

use crate::mesh::{BenchMesh, Outcome, fixed_rate, unlimited};

#[derive(Debug, Clone, Copy)]
pub struct FairnessOptions {
    pub seconds: u64,
    /// Calls per second of the tenant measured.
    pub rate: u64,
    /// Calls in flight each tenant may hold; the other tenant sends ten times this.
    pub share: u32,
    /// Alone, then crowded, this many times, `seconds` each.
    pub rounds: u32,
}

async fn list(ch: &Channel) -> Result<(), tonic::Status> {
    FilingServiceClient::new(ch.clone())
        .list_filings(ListFilingsRequest {
            page_size: 20,
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Open loop at `rate` for `seconds`, added to `into`.
async fn measure_into(into: &mut Outcome, ch: &Channel, rate: u64, seconds: u64) {
    let ch = ch.clone();
    let o = fixed_rate(
        move |_| {
            let ch = ch.clone();
            async move { list(&ch).await }
        },
        rate as f64,
        Duration::from_secs(seconds),
    )
    .await;
    into.absorb(&o);
}

fn summary(o: &Outcome) -> (f64, f64, u64) {
    let q = |p: f64| o.histogram.value_at_quantile(p) as f64 / 1000.0;
    (q(0.5), q(0.99), o.errors)
}

pub async fn fairness(opts: FairnessOptions) -> Result<serde_json::Value> {
    let limits = creditmesh_gateway::LimitsConfig {
        max_calls_per_tenant: opts.share,
        max_concurrent_calls: opts.share * 4,
        ..unlimited()
    };
    let bench =
        BenchMesh::start_limited("fairness", None, 4, Duration::from_secs(1), limits).await?;
    creditmesh_pki::Ca::load(&bench.pki)?.issue(
        &bench.pki,
        creditmesh_pki::DEFAULT_TRUST_DOMAIN,
        &creditmesh_pki::LeafSpec {
            name: "regulator-653100".into(),
            principal: Principal::new(PrincipalKind::Regulator, Tenant::parse("653100")?, ""),
            dns_names: vec![],
            ip_addresses: vec![],
            usage: creditmesh_pki::Usage::Client,
            lifetime_days: 1,
        },
    )?;
    let quiet = bench.node(1, "regulator-653100")?.remove(0);
    let loud = bench.node(4, "regulator-650100")?;
    list(&quiet).await?;
    let flooders = (opts.share * 10) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = Arc::new(AtomicBool::new(false));
    let (served, shed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let flood: Vec<_> = (0..flooders)
        .map(|i| {
            let ch = loud[i % loud.len()].clone();
            let (stop, flooding) = (stop.clone(), flooding.clone());
            let (served, shed) = (served.clone(), shed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if !flooding.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    match list(&ch).await {
                        Ok(()) => served.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            // A shed caller backs off briefly, as a client should.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            shed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    let (mut alone, mut crowded) = (Outcome::empty(), Outcome::empty());
    let mut flooded_for = Duration::ZERO;
    for round in 1..=opts.rounds.max(1) {
        eprintln!(
            "bench: round {round}: one tenant alone at {}/s ({}s), then while another keeps \
             {flooders} calls in flight",
            opts.rate, opts.seconds
        );
        measure_into(&mut alone, &quiet, opts.rate, opts.seconds).await;
        flooding.store(true, Ordering::Relaxed);
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        measure_into(&mut crowded, &quiet, opts.rate, opts.seconds).await;
        flooding.store(false, Ordering::Relaxed);
        flooded_for += started.elapsed();
        // Let the flood's calls in flight drain before the next quiet phase.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    let (alone, crowded) = (summary(&alone), summary(&crowded));
    bench.stop().await?;
    let secs = flooded_for.as_secs_f64();
    Ok(json!({
        "rate": opts.rate,
        "seconds": opts.seconds,
        "rounds": opts.rounds.max(1),
        "share": opts.share,
        "flooding_callers": flooders,
        "alone": {"p50_ms": alone.0, "p99_ms": alone.1, "errors": alone.2},
        "crowded": {"p50_ms": crowded.0, "p99_ms": crowded.1, "errors": crowded.2},
        "p99_ratio": if alone.1 > 0.0 { ((crowded.1 / alone.1) * 100.0).round() / 100.0 } else { 0.0 },
        "flood_served_per_s": (served.load(Ordering::Relaxed) as f64 / secs).round(),
        "flood_shed_per_s": (shed.load(Ordering::Relaxed) as f64 / secs).round(),
    }))
}
