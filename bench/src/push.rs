//! `creditmesh-bench push`: records pushed through the gateway over mutual TLS, then the same
//! again (all duplicates), and on PostgreSQL the same number of rows of the same shape loaded
//! with `COPY` into the same table; one JSON line of figures.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::datapush::v1::*;
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{DeliverRequest, Event, RegisterChanged};
use creditmesh_storage::sqlx::{self, Connection};
use tonic::transport::Channel;

use crate::mesh::BenchMesh;

pub struct PushOptions {
    pub records: usize,
    /// A PostgreSQL server URL (a fresh database is made there); SQLite otherwise, without
    /// the `COPY` comparison.
    pub postgres: Option<String>,
}

fn resident_id(i: usize) -> String {
    let first17 = format!(
        "6501021980{:02}{:02}{:03}",
        1 + i % 12,
        1 + i % 28,
        i % 1000
    );
    let check = creditmesh_domain::resident_id::check_char(first17.as_bytes());
    format!("{first17}{check}")
}

fn record(i: usize) -> CreditRecord {
    CreditRecord {
        record_key: format!("bench-{i}"),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: resident_id(i),
        category: "loan-repayment".into(),
        content: format!(
            r#"{{"amount_due": {}.5, "due_on": "2026-09-30", "days_overdue": {}, "note": "instalment {}"}}"#,
            1000 + i % 50_000,
            i % 90,
            i % 36
        )
        .into_bytes(),
        collected_on: "2026-10-15".into(),
        source: Some(RecordSource {
            provider: "Kashi Rural Commercial Bank".into(),
            legal_basis: "the borrower's written consent of 2026-03-02 (征信业管理条例 Art. 14)".into(),
        }),
    }
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Pushes records `0..n` on one stream; how long until the last acknowledgement, and how many
/// acknowledgements were of `want`.
async fn push(channel: Channel, n: usize, want: PushResult) -> Result<(Duration, usize)> {
    push_keyed(channel, n, want, String::new()).await
}

/// [`push`] with record keys prefixed by `prefix`.
async fn push_keyed(
    channel: Channel,
    n: usize,
    want: PushResult,
    prefix: String,
) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let requests = futures::stream::iter((0..n).map(move |i| {
        let mut r = record(i);
        r.record_key = format!("{prefix}{}", r.record_key);
        PushRecordsRequest { record: Some(r) }
    }));
    let request = tonic::Request::new(requests);
    let mut acks = DataPushServiceClient::new(channel)
        .push_records(request)
        .await?
        .into_inner();
    let (mut seen, mut matching) = (0, 0);
    while let Some(a) = acks.message().await? {
        seen += 1;
        if a.result == want as i32 {
            matching += 1;
        } else if a.result == PushResult::Rejected as i32 {
            bail!("record {} rejected: {}", a.record_key, a.error);
        }
    }
    if seen != n {
        bail!("{seen} acknowledgements for {n} records");
    }
    Ok((started.elapsed(), matching))
}

async fn rows(url: &str) -> Result<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datapush_record")
        .fetch_one(&mut conn)
        .await?;
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM datapush_version")
        .fetch_one(&mut conn)
        .await?;
    Ok(records + versions)
}

/// `n` rows shaped as pushed ones (keys of another agency, envelopes of the same length) loaded
/// with `COPY` into the records table; how long it took.
async fn copy(url: &str, n: usize, envelope_len: usize) -> Result<Duration> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let envelope = "A".repeat(envelope_len);
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(
            "COPY datapush_record (record_id, tenant, agency_uscc, record_key, subject_kind, \
             subject_index, category, collected_on, fingerprint, envelope, key_id, version, \
             status, received_at, updated_at) FROM STDIN",
        )
        .await?;
    let mut chunk = String::with_capacity(4 << 20);
    for i in 0..n {
        use std::fmt::Write;
        let _ = writeln!(
            chunk,
            "{}\t650100\tCOPY-BENCH\tbench-{i}\tperson\t{:064x}\tloan-repayment\t2026-10-15\t{:064x}\t{envelope}\tgen1\t1\tactive\t0\t0",
            uuid::Uuid::now_v7(),
            i,
            i + 1
        );
        if chunk.len() > (4 << 20) - 4096 {
            copy.send(chunk.as_bytes()).await?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        copy.send(chunk.as_bytes()).await?;
    }
    copy.finish().await?;
    Ok(started.elapsed())
}

/// Tells the data-push service of `bench` that `uscc`'s filing is active, as filing would.
async fn activate(bench: &BenchMesh, uscc: &str) -> Result<()> {
    let datapush = bench
        .mesh
        .services
        .iter()
        .find(|s| s.name == "datapush")
        .map(|s| s.addr)
        .context("the service runs")?;
    let sink = creditmesh_rpc::client::mtls_channel(
        &format!("https://{datapush}"),
        creditmesh_pki::ClientTls::client(creditmesh_pki::TlsFiles::in_dir(
            &bench.pki,
            "service-filing",
        ))?,
        "datapush",
    )?;
    EventSinkServiceClient::new(sink)
        .deliver(DeliverRequest {
            event: Some(Event {
                id: uuid::Uuid::now_v7().to_string(),
                r#type: RegisterChanged::TYPE.into(),
                source: "filing".into(),
                tenant: "650100".into(),
                principal: String::new(),
                subject: String::new(),
                occurred_at: None,
                payload: prost::Message::encode_to_vec(&RegisterChanged {
                    uscc: uscc.into(),
                    tenant: "650100".into(),
                    status: "active".into(),
                    notice: "published".into(),
                    ..Default::default()
                }),
            }),
        })
        .await?;
    Ok(())
}

async fn start(opts: &PushOptions) -> Result<BenchMesh> {
    BenchMesh::start(
        "push",
        opts.postgres.as_deref(),
        8,
        Duration::from_millis(200),
    )
    .await
}

/// `agencies` agencies of Urumqi, each on a connection of its own to the gateway, push
/// `opts.records` records at once, `rounds` times (new keys each round): in how many rounds
/// every stream ended with every ack, and the records per second of the slowest round.
pub async fn at_once(
    opts: PushOptions,
    agencies: usize,
    rounds: usize,
) -> Result<serde_json::Value> {
    let bench = start(&opts).await?;
    let ca = creditmesh_pki::Ca::load(&bench.pki)?;
    let urumqi = creditmesh_domain::Tenant::parse("650100")?;
    let mut channels = Vec::new();
    for a in 0..agencies {
        let uscc = creditmesh_domain::uscc::Uscc::completing(&format!("91650102MA7{a:05}"))?;
        let name = format!("bench-agency-{a}");
        ca.issue(
            &bench.pki,
            creditmesh_pki::DEFAULT_TRUST_DOMAIN,
            &creditmesh_pki::LeafSpec {
                name: name.clone(),
                principal: creditmesh_domain::Principal::new(
                    creditmesh_domain::PrincipalKind::Agency,
                    urumqi,
                    uscc.as_str(),
                ),
                dns_names: vec![],
                ip_addresses: vec![],
                usage: creditmesh_pki::Usage::Client,
                lifetime_days: 1,
            },
        )?;
        activate(&bench, uscc.as_str()).await?;
        channels.push(bench.node(1, &name)?.remove(0));
    }
    eprintln!(
        "bench: {agencies} agencies pushing {} records each at once, {rounds} rounds, on {}",
        opts.records, bench.engine
    );
    let (mut whole, mut slowest, mut failures) = (0, 0.0f64, Vec::new());
    for round in 0..rounds {
        let started = Instant::now();
        let pushes: Vec<_> = channels
            .iter()
            .map(|ch| {
                let prefix = format!("r{round}-");
                tokio::spawn(push_keyed(
                    ch.clone(),
                    opts.records,
                    PushResult::Stored,
                    prefix,
                ))
            })
            .collect();
        let mut complete = true;
        for (a, pushed) in pushes.into_iter().enumerate() {
            match pushed.await? {
                Ok((_, stored)) if stored == opts.records => {}
                Ok((_, stored)) => {
                    complete = false;
                    failures.push(format!("round {round}, agency {a}: {stored} stored"));
                }
                Err(e) => {
                    complete = false;
                    failures.push(format!("round {round}, agency {a}: {e:#}"));
                }
            }
        }
        let rate = (agencies * opts.records) as f64 / started.elapsed().as_secs_f64();
        eprintln!(
            "bench: round {round}: {} ({rate:.0} records/s)",
            if complete { "every ack" } else { "incomplete" }
        );
        whole += usize::from(complete);
        slowest = if round == 0 { rate } else { slowest.min(rate) };
    }
    let figures = serde_json::json!({
        "bench": "push_at_once",
        "engine": bench.engine,
        "agencies": agencies,
        "records_each": opts.records,
        "rounds": rounds,
        "rounds_with_every_ack": whole,
        "slowest_round_records_per_s": slowest.round(),
        "failures": failures.iter().take(10).collect::<Vec<_>>(),
        "peak_rss_mib": peak_rss_mib().round(),
    });
    bench.stop().await?;
    Ok(figures)
}

pub async fn push_bench(opts: PushOptions) -> Result<serde_json::Value> {
    let bench = start(&opts).await?;
    activate(&bench, creditmesh_pki::DEMO_AGENCY_USCC).await?;
    let url = bench.url.replace("{service}", "datapush");
    let channel = bench.node(1, "agency")?.remove(0);
    eprintln!(
        "bench: pushing {} records through the gateway on {}",
        opts.records, bench.engine
    );
    let (fresh, stored) = push(channel.clone(), opts.records, PushResult::Stored).await?;
    let before = rows(&url).await?;
    let (again, duplicates) = push(channel, opts.records, PushResult::Duplicate).await?;
    let written_again = rows(&url).await? - before;
    let rate = |d: Duration| opts.records as f64 / d.as_secs_f64();
    let mut figures = serde_json::json!({
        "bench": "push",
        "engine": bench.engine,
        "records": opts.records,
        "push_rows_per_s": rate(fresh).round(),
        "stored": stored,
        "repush_rows_per_s": rate(again).round(),
        "duplicates": duplicates,
        "rows_written_on_repush": written_again,
    });
    if opts.postgres.is_some() {
        let envelope_len: i64 = {
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(LENGTH(envelope)), 0)::BIGINT FROM datapush_record",
            )
            .fetch_one(&mut conn)
            .await?
        };
        let took = copy(&url, opts.records, envelope_len as usize).await?;
        figures["copy_rows_per_s"] = rate(took).round().into();
        figures["push_vs_copy"] = ((rate(fresh) / rate(took) * 100.0).round() / 100.0).into();
    }
    figures["peak_rss_mib"] = peak_rss_mib().round().into();
    bench.stop().await?;
    Ok(figures)
}
