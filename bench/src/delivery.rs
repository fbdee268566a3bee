//! `creditmesh-bench delivery`: sustained writes (complaints, each an event for review) at a
//! fixed rate through the gateway, while the outbox relay delivers. Prints events produced and
//! delivered per second and the backlog, sampled every second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use creditmesh_proto::complaints::v1::SubmitComplaintRequest;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use serde_json::json;

use crate::mesh::BenchMesh;

pub struct DeliveryOptions {
    pub seconds: u64,
    /// Complaints submitted per second, open loop.
    pub rate: u64,
    /// A PostgreSQL server URL to run on (a fresh database is made there); SQLite otherwise.
    pub postgres: Option<String>,
}

pub async fn delivery(opts: DeliveryOptions) -> Result<serde_json::Value> {
    use creditmesh_storage::sqlx::{self, Connection};

    let bench = BenchMesh::start(
        "delivery",
        opts.postgres.as_deref(),
        4,
        Duration::from_millis(200),
    )
    .await?;
    let (url, engine) = (bench.url.clone(), bench.engine);
    let channels = bench.node(4, "agency")?;
    sqlx::any::install_default_drivers();
    let outbox_url = url.replace("{service}", "complaints");
    let mut probe = sqlx::AnyConnection::connect(&outbox_url).await?;
    let counts = async |conn: &mut sqlx::AnyConnection| -> Result<(i64, i64)> {
        let produced: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM complaints_outbox")
            .fetch_one(&mut *conn)
            .await?;
        let pending: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL")
                .fetch_one(&mut *conn)
                .await?;
        Ok((produced, produced - pending))
    };

    eprintln!(
        "bench: {} complaints/s for {}s on {engine}",
        opts.rate, opts.seconds
    );
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / opts.rate.max(1) as f64);
    let start = Instant::now();
    let producer = {
        let errors = errors.clone();
        let seconds = opts.seconds;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = 0u64;
            let mut calls = Vec::new();
            while start.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                n += 1;
                let mut client = ComplaintServiceClient::new(channels[n as usize % 4].clone());
                let errors = errors.clone();
                calls.push(tokio::spawn(async move {
                    let req = SubmitComplaintRequest {
                        request_id: format!("load-{n}"),
                        agency_uscc: creditmesh_pki::DEMO_AGENCY_USCC.into(),
                        complainant_contact: "bench@example.org".into(),
                        subject: "benchmark".into(),
                        description: format!("sustained write {n}"),
                        ..Default::default()
                    };
                    if client.submit_complaint(req).await.is_err() {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }));
            }
            for c in calls {
                let _ = c.await;
            }
        })
    };
    let mut samples = Vec::new();
    let mut max_backlog = 0;
    while !producer.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (produced, delivered) = counts(&mut probe).await?;
        max_backlog = max_backlog.max(produced - delivered);
        samples.push((start.elapsed().as_secs_f64(), produced, delivered));
    }
    let load_seconds = start.elapsed().as_secs_f64();
    let (produced, delivered_at_end) = counts(&mut probe).await?;
    // How long the backlog takes to drain once the load stops.
    let drain_start = Instant::now();
    let mut delivered = delivered_at_end;
    while delivered < produced && drain_start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        delivered = counts(&mut probe).await?.1;
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    probe.close().await.ok();
    bench.stop().await?;
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "engine": engine,
        "offered_rate": opts.rate,
        "seconds": round(load_seconds),
        "produced": produced,
        "produced_per_s": round(produced as f64 / load_seconds),
        "delivered_during_load_per_s": round(delivered_at_end as f64 / load_seconds),
        "backlog_at_end": produced - delivered_at_end,
        "backlog_max": max_backlog,
        "drained": delivered >= produced,
        "drain_seconds": round(drain_seconds),
        "submit_errors": errors.load(std::sync::atomic::Ordering::Relaxed),
        "samples": samples.iter().map(|(t, p, d)| json!([round(*t), p, d])).collect::<Vec<_>>(),
    }))
}
