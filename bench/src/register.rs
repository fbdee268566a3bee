//! `creditmesh-bench register`: fills the public register with N agencies through the
//! disclosure service's event sink (in batches, as filing's relay delivers them) while
//! checkpoints are signed, then reads it through the public listener at a fixed rate — half
//! searches by a name substring, half lookups by USCC.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use creditmesh_pki::{ClientTls, TlsFiles};
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::{
    GetAgencyRequest, GetConsistencyProofRequest, GetNoticeProofRequest, GetRegisterHeadRequest,
    ListAgenciesRequest,
};
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{
    DeliverBatchRequest, Event, FeeItem, PublicFacts, RegisterChanged,
};
use futures::StreamExt;
use serde_json::json;

use crate::mesh::{BenchMesh, Outcome, fixed_rate};

#[derive(Debug, Clone)]
pub struct RegisterOptions {
    pub agencies: usize,
    pub seconds: u64,
    /// Reads per second, half searches and half lookups.
    pub rate: u64,
    pub postgres: Option<String>,
}

/// The bench's agency `i`: a valid USCC of Kashgar city and a Chinese name.
fn uscc(i: usize) -> String {
    creditmesh_domain::uscc::Uscc::completing(&format!("91653101{i:08}"))
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default()
}

fn name(i: usize) -> String {
    format!("新疆第{i}号信用服务有限公司")
}

fn event(i: usize) -> Event {
    let payload = RegisterChanged {
        filing_id: uuid::Uuid::now_v7().to_string(),
        tenant: "653100".into(),
        uscc: uscc(i),
        notice: "published".into(),
        status: "active".into(),
        facts: Some(PublicFacts {
            agency_name: name(i),
            registered_address: "新疆喀什地区喀什市人民路1号".into(),
            registered_capital_yuan: 10_000_000,
            business_scope: "信用评价、信用咨询".into(),
            legal_representative_name: "阿依努尔".into(),
            professional_staff_count: 12,
            registered_division: "653101".into(),
            fee_items: vec![FeeItem {
                service_item: "企业信用评价报告".into(),
                fee: "5000".into(),
                unit: "份".into(),
                basis: String::new(),
            }],
        }),
        filed_on: "2026-11-02".into(),
        reviewing_tenant: "653100".into(),
        ..Default::default()
    };
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: RegisterChanged::TYPE.into(),
        source: "filing".into(),
        tenant: "653100".into(),
        principal: "spiffe://creditmesh.xinjiang/regulator/653100".into(),
        subject: uscc(i),
        occurred_at: None,
        payload: prost::Message::encode_to_vec(&payload),
    }
}

fn summary(o: &Outcome) -> serde_json::Value {
    let q = |p: f64| o.histogram.value_at_quantile(p) as f64 / 1000.0;
    json!({
        "rps": (o.rps * 10.0).round() / 10.0,
        "errors": o.errors,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
    })
}

pub async fn register(opts: RegisterOptions) -> Result<serde_json::Value> {
    let bench = BenchMesh::start(
        "register",
        opts.postgres.as_deref(),
        8,
        Duration::from_millis(200),
    )
    .await?;
    let disclosure = bench
        .mesh
        .services
        .iter()
        .find(|s| s.name == creditmesh_disclosure::NAME)
        .context("the disclosure service runs")?
        .addr;
    let tls = ClientTls::client(TlsFiles::in_dir(&bench.pki, "service-filing"))?;
    let sink = EventSinkServiceClient::new(creditmesh_rpc::client::mtls_channel(
        &format!("https://{disclosure}"),
        tls,
        creditmesh_disclosure::NAME,
    )?);
    let n = opts.agencies.max(1);
    eprintln!("bench: appending {n} notices in batches of 64, 4 batches at once");
    let batches: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(creditmesh_rpc::sink::MAX_BATCH)
        .map(<[usize]>::to_vec)
        .collect();
    let register = DisclosureServiceClient::new(bench.public()?);
    // The checkpoints signed while the log grows, as a monitor would see them.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (mut register, watching) = (register.clone(), watching.clone());
        tokio::spawn(async move {
            let mut seen: Vec<(i64, String)> = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(h) = register.get_register_head(GetRegisterHeadRequest {}).await {
                    let h = h.into_inner();
                    if seen.last().map(|s| s.0) != Some(h.size) {
                        seen.push((h.size, h.checkpoint));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seen
        })
    };
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(batches)
        .map(|batch| {
            let mut sink = sink.clone();
            async move {
                let events = batch.iter().map(|i| event(*i)).collect();
                let answer = sink
                    .deliver_batch(DeliverBatchRequest { events })
                    .await
                    .map_err(|e| e.message().to_owned())?
                    .into_inner();
                if answer.accepted as usize != batch.len() {
                    return Err(answer.error);
                }
                Ok(())
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let append_secs = started.elapsed().as_secs_f64();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        anyhow::bail!("an append failed: {e}");
    }
    let checkpointed = loop {
        let head = register
            .clone()
            .get_register_head(GetRegisterHeadRequest {})
            .await;
        if let Ok(h) = head
            && h.get_ref().size as usize >= n
        {
            break started.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint of the whole log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    eprintln!(
        "bench: reading through the public listener at {}/s for {}s",
        opts.rate, opts.seconds
    );
    let half = (opts.rate as f64 / 2.0).max(1.0);
    let length = Duration::from_secs(opts.seconds);
    let searching = {
        let register = register.clone();
        fixed_rate(
            move |i| {
                let mut r = register.clone();
                // A substring that names one agency: its number and the word after it.
                let needle = format!("第{}号", (i * 7919) % n);
                async move {
                    r.list_agencies(ListAgenciesRequest {
                        name_contains: needle,
                        page_size: 20,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                }
            },
            half,
            length,
        )
    };
    let getting = {
        let register = register.clone();
        fixed_rate(
            move |i| {
                let mut r = register.clone();
                let code = uscc((i * 104_729) % n);
                async move {
                    r.get_agency(GetAgencyRequest {
                        uscc: code,
                        changed_since: 0,
                    })
                    .await
                    .map(|_| ())
                }
            },
            half,
            length,
        )
    };
    let (search, get) = tokio::join!(searching, getting);

    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut seen = watcher.await?;
    let head = register
        .clone()
        .get_register_head(GetRegisterHeadRequest {})
        .await?
        .into_inner();
    if seen.last().map(|s| s.0) != Some(head.size) {
        seen.push((head.size, head.checkpoint.clone()));
    }
    let vkey =
        std::fs::read_to_string(bench.pki.join(creditmesh_disclosure::checkpoint::VKEY_FILE))?;
    eprintln!(
        "bench: verifying {} inclusion proofs and {} consistency proofs",
        head.size,
        seen.len().saturating_sub(1)
    );
    let final_checkpoint = creditmesh_disclosure::verify::checkpoint(&head.checkpoint, &vkey)
        .map_err(anyhow::Error::msg)?;
    let proving = Instant::now();
    let failures: Vec<String> = futures::stream::iter(0..head.size)
        .map(|seq| {
            let (mut register, c) = (register.clone(), &final_checkpoint);
            async move {
                let p = register
                    .get_notice_proof(GetNoticeProofRequest {
                        sequence: seq,
                        tree_size: head.size,
                    })
                    .await
                    .map_err(|e| format!("notice {seq}: {}", e.message()))?
                    .into_inner();
                let n = p.notice.unwrap_or_default();
                creditmesh_disclosure::verify::inclusion(
                    c, seq as u64, &n.salt, &n.content, &p.proof,
                )
            }
        })
        .buffer_unordered(8)
        .filter_map(|r| async move { r.err() })
        .collect()
        .await;
    let proof_secs = proving.elapsed().as_secs_f64();
    anyhow::ensure!(failures.is_empty(), "proofs that fail: {failures:?}");
    let mut consistent = 0;
    for pair in seen.windows(2) {
        let (older, newer) = (&pair[0], &pair[1]);
        let p = register
            .clone()
            .get_consistency_proof(GetConsistencyProofRequest {
                from_size: older.0,
                to_size: newer.0,
            })
            .await?
            .into_inner();
        let (a, b) = (
            creditmesh_disclosure::verify::checkpoint(&older.1, &vkey)
                .map_err(anyhow::Error::msg)?,
            creditmesh_disclosure::verify::checkpoint(&newer.1, &vkey)
                .map_err(anyhow::Error::msg)?,
        );
        creditmesh_disclosure::verify::consistency(&a, &b, &p.proof).map_err(anyhow::Error::msg)?;
        consistent += 1;
    }
    bench.stop().await?;
    Ok(json!({
        "engine": if opts.postgres.is_some() { "postgres" } else { "sqlite" },
        "agencies": n,
        "appends_per_s": (n as f64 / append_secs).round(),
        "append_seconds": (append_secs * 100.0).round() / 100.0,
        "checkpointed_after_s": (checkpointed * 100.0).round() / 100.0,
        "read_rate": opts.rate,
        "search_by_name": summary(&search),
        "get_by_uscc": summary(&get),
        "inclusion_proofs_verified": head.size,
        "inclusion_proofs_per_s": (head.size as f64 / proof_secs).round(),
        "checkpoints_seen": seen.len(),
        "consistency_proofs_verified": consistent,
    }))
}
