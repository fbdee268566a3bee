//! Pushed credit information (Art. 27): one stream, one acknowledgement per record after its
//! batch committed; only an agency whose filing is active may push, and a revocation ends its
//! stream; duplicates write nothing; records are sealed at rest.

use std::time::Duration;

use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::datapush::v1::*;
use creditmesh_proto::events::v1::FilingRevoked;
use creditmesh_tests::{Engine, TestMesh, eventually, scalar_i64};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

use super::filing::{KASHGAR, active_filing, active_kashgar_filing, mesh, person_id, review_says};

crate::on_both_engines!(
    an_active_agency_pushes_ten_thousand_records_each_acknowledged,
    bad_records_are_rejected_one_by_one_and_the_stream_goes_on,
    an_agency_without_an_active_filing_is_refused,
    a_revocation_ends_the_stream_and_keeps_what_was_acknowledged,
    record_content_is_sealed_at_rest,
    four_agencies_pushing_at_once_through_one_gateway_each_get_every_ack,
    a_malformed_message_on_the_stream_is_invalid_argument,
);

pub fn record(i: usize, amount: f64) -> CreditRecord {
    CreditRecord {
        record_key: format!("loan-{i}"),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: person_id(&format!(
            "6531011980{:02}{:02}{:03}",
            1 + i % 12,
            1 + i % 28,
            i % 1000
        )),
        category: "loan-repayment".into(),
        content: format!(
            r#"{{"amount_due": {amount}, "due_on": "2026-09-30", "days_overdue": {}}}"#,
            i % 90
        )
        .into_bytes(),
        collected_on: "2026-10-15".into(),
        source: Some(RecordSource {
            provider: "Kashi Rural Commercial Bank".into(),
            legal_basis: "the borrower's written consent of 2026-03-02 (征信业管理条例 Art. 14)"
                .into(),
        }),
    }
}

/// A mesh whose Kashgar agency has an active filing that the data-push service knows of.
async fn pushing(engine: Engine) -> Option<(TestMesh, String)> {
    Some(pushing_on(mesh(engine).await?).await)
}

/// `t` (issued as `filing::mesh_with` does) once its Kashgar agency has an active filing that
/// the data-push service knows of, and that filing's id.
pub async fn pushing_on(t: TestMesh) -> (TestMesh, String) {
    let (_, filing) = active_kashgar_filing(&t).await;
    agencies_known(&t, 1).await;
    (t, filing.filing_id)
}

/// Waits until the data-push service knows of `n` agencies with an active filing.
pub async fn agencies_known(t: &TestMesh, n: i64) {
    let url = t.db_url("datapush");
    eventually(
        "datapush knows the agencies",
        Duration::from_secs(30),
        || async {
            (scalar_i64(
                &url,
                "SELECT COUNT(*) FROM datapush_agency WHERE status = 'active'",
            )
            .await
                == n)
                .then_some(())
        },
    )
    .await;
}

/// Pushes `records` on one stream and collects every acknowledgement.
pub async fn push(
    channel: Channel,
    records: Vec<CreditRecord>,
) -> Result<Vec<PushRecordsResponse>, tonic::Status> {
    let requests = tokio_stream::iter(
        records
            .into_iter()
            .map(|r| PushRecordsRequest { record: Some(r) }),
    );
    let mut acks = DataPushServiceClient::new(channel)
        .push_records(requests)
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(a) = acks.message().await? {
        out.push(a);
    }
    Ok(out)
}

/// Every version kept: the earlier ones in the history, the current one in its record.
pub const VERSIONS: &str = "(SELECT record_id, version FROM datapush_version \
    UNION ALL SELECT record_id, version FROM datapush_record)";

/// How many records, and how many versions of them are kept.
async fn counts(t: &TestMesh) -> (i64, i64) {
    let url = t.db_url("datapush");
    (
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_record").await,
        scalar_i64(
            &url,
            "SELECT (SELECT COUNT(*) FROM datapush_record) + \
             (SELECT COUNT(*) FROM datapush_version)",
        )
        .await,
    )
}

async fn an_active_agency_pushes_ten_thousand_records_each_acknowledged(engine: Engine) {
    let Some((t, _)) = pushing(engine).await else {
        return;
    };
    const N: usize = 10_000;
    let records: Vec<_> = (0..N).map(|i| record(i, 100.0 + i as f64)).collect();
    let acks = push(t.node("agency-kashgar").await, records.clone())
        .await
        .unwrap();
    assert_eq!(acks.len(), N);
    for (i, a) in acks.iter().enumerate() {
        assert_eq!(a.record_key, format!("loan-{i}"), "acks come in order");
        assert_eq!(a.result, PushResult::Stored as i32, "{a:?}");
        assert_eq!(a.version, 1);
    }
    assert_eq!(counts(&t).await, (N as i64, N as i64));

    // The same again: every record a duplicate, nothing written.
    let again = push(t.node("agency-kashgar").await, records.clone())
        .await
        .unwrap();
    assert_eq!(again.len(), N);
    assert!(
        again
            .iter()
            .all(|a| a.result == PushResult::Duplicate as i32 && a.version == 1)
    );
    assert_eq!(counts(&t).await, (N as i64, N as i64));

    // New content under a key already held: its next version, the history kept; the same
    // content written otherwise (spaces, field order) is no change.
    let mut changed = record(7, 999.5);
    let mut respaced = record(8, 108.0);
    respaced.content =
        br#"{ "days_overdue": 8,   "due_on": "2026-09-30", "amount_due": 108 }"#.to_vec();
    let acks = push(
        t.node("agency-kashgar").await,
        vec![changed.clone(), respaced],
    )
    .await
    .unwrap();
    assert_eq!(acks[0].result, PushResult::Updated as i32, "{acks:?}");
    assert_eq!(acks[0].version, 2);
    assert_eq!(acks[1].result, PushResult::Duplicate as i32, "{acks:?}");
    assert_eq!(counts(&t).await, (N as i64, N as i64 + 1));

    // The agency reads it back whole, at its new version.
    let id: String = {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&t.db_url("datapush"))
            .await
            .unwrap();
        sqlx::query_scalar("SELECT record_id FROM datapush_record WHERE record_key = 'loan-7'")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    };
    let stored = DataPushServiceClient::new(t.node("agency-kashgar").await)
        .get_record(GetRecordRequest {
            record_id: id.clone(),
            purpose: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.agency_uscc, KASHGAR);
    let content: serde_json::Value =
        serde_json::from_slice(&stored.record.as_ref().unwrap().content).unwrap();
    assert_eq!(content["amount_due"], 999.5);
    changed.content = Vec::new();
    assert_eq!(
        stored.record.unwrap().subject_identifier,
        changed.subject_identifier
    );
    // Another agency cannot read it.
    let err = DataPushServiceClient::new(t.node("agency-beijing").await)
        .get_record(GetRecordRequest {
            record_id: id,
            purpose: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    t.stop().await;
}

async fn bad_records_are_rejected_one_by_one_and_the_stream_goes_on(engine: Engine) {
    let Some((t, _)) = pushing(engine).await else {
        return;
    };
    let good = record(1, 10.0);
    let mut bad_subject = record(2, 10.0);
    bad_subject.subject_identifier = "650102198001010000".into();
    let mut bad_category = record(3, 10.0);
    bad_category.category = "gossip".into();
    let mut bad_content = record(4, 10.0);
    bad_content.content =
        br#"{"amount_due": "lots", "due_on": "2026-09-30", "days_overdue": 1, "mood": "sad"}"#
            .to_vec();
    let mut future = record(5, 10.0);
    future.collected_on = "2099-01-01".into();
    let mut expired = record(6, 10.0);
    expired.collected_on = "2001-01-01".into();
    let mut org_in_person_only = record(7, 10.0);
    org_in_person_only.category = "contract-performance".into();
    org_in_person_only.content = br#"{"contract": "c-1", "performed": true}"#.to_vec();
    let mut no_key = record(8, 10.0);
    no_key.record_key = String::new();
    // The same key twice on one stream: two versions, in the order sent.
    let mut twice = record(1, 11.0);
    twice.record_key = good.record_key.clone();
    let acks = push(
        t.node("agency-kashgar").await,
        vec![
            good,
            bad_subject,
            bad_category,
            bad_content,
            future,
            expired,
            org_in_person_only,
            no_key,
            twice,
        ],
    )
    .await
    .unwrap();
    let results: Vec<(i32, &str)> = acks.iter().map(|a| (a.result, a.error.as_str())).collect();
    assert_eq!(acks.len(), 9, "{results:?}");
    assert_eq!(acks[0].result, PushResult::Stored as i32);
    let rejected = |i: usize, field: &str| {
        assert_eq!(acks[i].result, PushResult::Rejected as i32, "{:?}", acks[i]);
        assert!(
            acks[i].error.starts_with(&format!("{field}: ")),
            "{:?}",
            acks[i]
        );
    };
    rejected(1, "subject_identifier");
    rejected(2, "category");
    rejected(3, "content.amount_due");
    assert!(
        acks[3].error.contains("content.mood: is not a field"),
        "{:?}",
        acks[3]
    );
    rejected(4, "collected_on");
    rejected(5, "collected_on");
    assert!(acks[5].error.contains("retention"), "{:?}", acks[5]);
    rejected(6, "subject_kind");
    rejected(7, "record_key");
    assert_eq!(acks[8].result, PushResult::Updated as i32, "{:?}", acks[8]);
    assert_eq!(acks[8].version, 2);
    assert_eq!(counts(&t).await, (1, 2));
    t.stop().await;
}

/// Art. 27: it is filed agencies (建档的信用服务机构) that push; an agency whose filing is not
/// active is refused.
async fn an_agency_without_an_active_filing_is_refused(engine: Engine) {
    let Some((t, _)) = pushing(engine).await else {
        return;
    };
    let err = push(t.node("agency-beijing").await, vec![record(1, 1.0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("no filing"), "{err:?}");
    // Regulators do not push.
    let err = push(t.node("regulator-653100").await, vec![record(1, 1.0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(counts(&t).await, (0, 0));
    t.stop().await;
}

async fn a_revocation_ends_the_stream_and_keeps_what_was_acknowledged(engine: Engine) {
    let Some((t, filing_id)) = pushing(engine).await else {
        return;
    };
    let (tx, rx) = mpsc::channel(16);
    let mut acks = DataPushServiceClient::new(t.node("agency-kashgar").await)
        .push_records(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    for i in 0..100 {
        tx.send(PushRecordsRequest {
            record: Some(record(i, 1.0)),
        })
        .await
        .unwrap();
        let a = acks.message().await.unwrap().unwrap();
        assert_eq!(a.result, PushResult::Stored as i32);
    }
    review_says(
        &t,
        "653100",
        FilingRevoked {
            filing_id,
            uscc: KASHGAR.into(),
            ground: "severe_dishonesty".into(),
            ban_ends_on: String::new(),
            ..Default::default()
        },
    )
    .await;
    // The stream stays open on the agency's side; the platform ends it.
    let ended = tokio::time::timeout(Duration::from_secs(15), acks.message())
        .await
        .expect("the stream ends within seconds of the revocation")
        .unwrap_err();
    assert_eq!(ended.code(), Code::FailedPrecondition, "{ended:?}");
    assert!(ended.message().contains("revoked"), "{ended:?}");
    assert_eq!(counts(&t).await, (100, 100));
    // And a new stream is refused.
    drop(tx);
    let err = push(t.node("agency-kashgar").await, vec![record(1000, 1.0)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    t.stop().await;
}

async fn record_content_is_sealed_at_rest(engine: Engine) {
    let Some((t, _)) = pushing(engine).await else {
        return;
    };
    let mut r = record(1, 1.0);
    r.content = br#"{"amount_due": 1, "due_on": "2026-09-30", "days_overdue": 3, "note": "MARKER-7f3a-overdue"}"#.to_vec();
    let subject = r.subject_identifier.clone();
    let acks = push(t.node("agency-kashgar").await, vec![r]).await.unwrap();
    assert_eq!(acks[0].result, PushResult::Stored as i32, "{acks:?}");
    match engine {
        Engine::Sqlite => {
            let url = t.db_url("datapush");
            let path = url.trim_start_matches("sqlite://").to_owned();
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("MARKER-7f3a"),
                "content readable in the database file"
            );
            assert!(
                !text.contains(&subject),
                "subject readable in the database file"
            );
            assert!(text.contains("loan-1"), "the file read is the one written");
        }
        Engine::Postgres => {
            let url = t.db_url("datapush");
            for sql in [
                "SELECT COUNT(*) FROM datapush_record WHERE envelope LIKE '%MARKER%' \
                 OR subject_index LIKE '%6531011980%' OR fingerprint LIKE '%MARKER%'",
                "SELECT COUNT(*) FROM datapush_version WHERE envelope LIKE '%MARKER%'",
            ] {
                assert_eq!(scalar_i64(&url, sql).await, 0, "{sql}");
            }
        }
    }
    t.stop().await;
}

/// Two streams of one agency push the same keys with different content at once on
/// PostgreSQL: every record is acknowledged, each key holds one record, and its versions run
/// 1, 2, … without a gap or a repeat, each in the history once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_streams_on_the_same_keys_keep_one_record_and_gapless_versions() {
    let Some((t, _)) = pushing(Engine::Postgres).await else {
        return;
    };
    const N: usize = 300;
    let mut streams = Vec::new();
    for s in 0..2 {
        let records: Vec<_> = (0..N).map(|i| record(i, 1.0 + s as f64)).collect();
        streams.push(tokio::spawn(push(t.node("agency-kashgar").await, records)));
    }
    for s in streams {
        let acks = s.await.unwrap().unwrap();
        assert_eq!(acks.len(), N);
        assert!(
            acks.iter()
                .all(|a| a.result == PushResult::Stored as i32
                    || a.result == PushResult::Updated as i32),
            "{acks:?}"
        );
    }
    let url = t.db_url("datapush");
    assert_eq!(counts(&t).await, (N as i64, 2 * N as i64));
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM datapush_record WHERE version <> 2"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM (SELECT record_id FROM (SELECT record_id, version \
             FROM datapush_version UNION ALL SELECT record_id, version FROM datapush_record) v \
             GROUP BY record_id HAVING MIN(version) <> 1 OR MAX(version) <> 2 \
             OR COUNT(*) <> 2) gaps"
        )
        .await,
        0
    );
    t.stop().await;
}

/// Records each agency pushes in the test of agencies pushing at once.
const AT_ONCE: usize = 25_000;

async fn four_agencies_pushing_at_once_through_one_gateway_each_get_every_ack(engine: Engine) {
    let Some(t) = mesh(engine).await else {
        return;
    };
    let kashgar = creditmesh_domain::Tenant::parse("653100").unwrap();
    let mut agencies = Vec::new();
    for i in 0..4 {
        let uscc = creditmesh_domain::uscc::Uscc::completing(&format!("91653101MA78KT1{i}"))
            .unwrap()
            .as_str()
            .to_owned();
        let cert = format!("agency-at-once-{i}");
        t.issue(
            &cert,
            creditmesh_domain::Principal::new(
                creditmesh_domain::PrincipalKind::Agency,
                kashgar,
                &uscc,
            ),
        );
        active_filing(&t, &cert, &uscc, &format!("at-once-{i}")).await;
        agencies.push(cert);
    }
    agencies_known(&t, 4).await;
    let url = t.db_url("datapush");
    // Each agency on a connection of its own to the gateway, all four streams at once on the
    // gateway's connection to the data-push service.
    let mut pushes = Vec::new();
    for cert in &agencies {
        let channel = t.node(cert).await;
        let records: Vec<_> = (0..AT_ONCE).map(|i| record(i, 50.0 + i as f64)).collect();
        pushes.push(tokio::spawn(push(channel, records)));
    }
    for (cert, pushed) in agencies.iter().zip(pushes) {
        let acks = pushed
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{cert}'s stream failed: {e:?}"));
        assert_eq!(acks.len(), AT_ONCE, "{cert} got every ack");
        assert!(
            acks.iter()
                .all(|a| a.result == PushResult::Stored as i32 && a.version == 1),
            "{cert}: every record stored"
        );
    }
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_record").await,
        4 * AT_ONCE as i64
    );
    t.stop().await;
}

/// Bytes that are no `PushRecordsRequest` after a valid record on the stream: refused as the
/// caller's error, as the same bytes are on a unary call, after the valid record's ack.
async fn a_malformed_message_on_the_stream_is_invalid_argument(engine: Engine) {
    let Some((t, _)) = pushing(engine).await else {
        return;
    };
    let good = prost::Message::encode_to_vec(&PushRecordsRequest {
        record: Some(record(1, 10.0)),
    });
    // Field 1 (the record) announced as 255 bytes long, with two of them present.
    let malformed = vec![0x0a, 0xff, 0x01, 0x01, 0x02];
    let mut grpc = tonic::client::Grpc::new(t.node("agency-kashgar").await);
    grpc.ready().await.unwrap();
    let mut acks = grpc
        .streaming(
            tonic::Request::new(futures::stream::iter([good, malformed])),
            "/creditmesh.datapush.v1.DataPushService/PushRecords"
                .parse()
                .unwrap(),
            super::fuzz::Raw,
        )
        .await
        .unwrap()
        .into_inner();
    let mut acked = 0;
    let ended = loop {
        match acks.message().await {
            Ok(Some(_)) => acked += 1,
            Ok(None) => panic!("the stream ended without an error"),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::InvalidArgument, "{ended:?}");
    assert!(acked <= 1);
    t.stop().await;
}
