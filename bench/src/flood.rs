//! `creditmesh-bench flood`: the public listener flooded from many addresses with connections
//! and health watches beyond every cap, under the default limits, while a regulator calls on;
//! then the flood goes away. Prints what the caps admitted and refused, the regulator's p99
//! during the flood, and resident memory before, at the peak and after.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::mesh::{BenchMesh, histogram};
use crate::soak::rss_mib;

#[derive(Debug, Clone, Copy)]
pub struct FloodOptions {
    /// Loopback addresses the flood comes from (127.0.0.2 and up).
    pub addresses: u8,
    /// Connections each address opens, and watches on each connection.
    pub connections: usize,
    pub watches: usize,
    /// Floods one after another, so that memory kept rather than reused would show as growth.
    pub rounds: usize,
}

const SERVICE: &str = "creditmesh.complaints.v1.ComplaintService";

/// Open descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Health checks by a regulator for `length`, back to back: p99 in milliseconds and failures.
async fn regulator_calls(ch: Channel, length: Duration) -> (f64, u64) {
    let mut h = histogram();
    let mut failed = 0;
    let end = Instant::now() + length;
    while Instant::now() < end {
        let started = Instant::now();
        let answer = HealthClient::new(ch.clone())
            .check(HealthCheckRequest {
                service: SERVICE.into(),
            })
            .await;
        match answer {
            Ok(_) => {
                let _ = h.record(started.elapsed().as_micros() as u64);
            }
            Err(_) => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (h.value_at_quantile(0.99) as f64 / 1000.0, failed)
}

pub async fn flood(opts: FloodOptions) -> Result<serde_json::Value> {
    let limits = creditmesh_gateway::LimitsConfig::default();
    let bench = BenchMesh::start_limited("flood", None, 4, Duration::from_secs(1), limits).await?;
    let regulator = bench.node(1, "regulator-650000")?.remove(0);
    regulator_calls(regulator.clone(), Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib();
    let fds_before = descriptors();
    let (quiet_p99, _) = regulator_calls(regulator.clone(), Duration::from_secs(3)).await;

    let mut rounds = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        rounds.push(one_flood(&bench, &regulator, opts).await?);
    }
    bench.stop().await?;
    let last = rounds.last().cloned().unwrap_or_default();
    let mib = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "rounds": rounds,
        "addresses": opts.addresses,
        "connections_per_address": opts.connections,
        "watches_per_connection": opts.watches,
        "regulator_p99_ms_quiet": quiet_p99,
        "rss_before_mib": mib(before),
        "descriptors_before": fds_before,
        "connections_refused": last["connections_refused"],
        "watches_held": last["watches_held"],
        "watches_refused": last["watches_refused"],
        "regulator_failures_flooded": last["regulator_failures_flooded"],
        "rss_after_mib": last["rss_after_mib"],
        "descriptors_after": last["descriptors_after"],
    }))
}

/// One flood, held while a regulator calls, then gone; what it measured.
async fn one_flood(
    bench: &BenchMesh,
    regulator: &Channel,
    opts: FloodOptions,
) -> Result<serde_json::Value> {
    eprintln!(
        "bench: flooding from {} addresses, {} connections each, {} watches on each",
        opts.addresses, opts.connections, opts.watches
    );
    let mut connections = Vec::new();
    let (mut refused_connections, mut refused_watches) = (0u64, 0u64);
    let mut watches = Vec::new();
    for a in 0..opts.addresses {
        let from = IpAddr::from([127, 0, 0, 2 + a]);
        for _ in 0..opts.connections {
            let Ok(ch) = bench.public_endpoint(Some(from))?.connect().await else {
                refused_connections += 1;
                continue;
            };
            for _ in 0..opts.watches {
                match HealthClient::new(ch.clone())
                    .watch(HealthCheckRequest {
                        service: SERVICE.into(),
                    })
                    .await
                {
                    Ok(stream) => watches.push(stream.into_inner()),
                    Err(_) => refused_watches += 1,
                }
            }
            connections.push(ch);
        }
    }
    let held_watches = watches.len();
    let peak = rss_mib();
    let fds_peak = descriptors();
    let (flooded_p99, flooded_failures) =
        regulator_calls(regulator.clone(), Duration::from_secs(3)).await;
    drop(watches);
    drop(connections);
    eprintln!("bench: the flood is gone; letting memory settle");
    // Freed memory goes back to the system at the allocator's next collection after its
    // purge delay (creditmesh::memory): 12 s covers both.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after = rss_mib();
    let fds_after = descriptors();
    let mib = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "connections_refused": refused_connections,
        "watches_held": held_watches,
        "watches_refused": refused_watches,
        "regulator_p99_ms_flooded": flooded_p99,
        "regulator_failures_flooded": flooded_failures,
        "rss_peak_mib": mib(peak),
        "rss_after_mib": mib(after),
        "descriptors_peak": fds_peak,
        "descriptors_after": fds_after,
    }))
}
