//! Data push's index key rotated as `docs/operations.md` says, with `creditmesh pki
//! rotate-index-key`: replicas restarted at each step find every record, objection and access
//! code whichever step the others are at; once switched, every keyed hash is computed again
//! under the new key (deleted records from their objections), no hash under the old key is
//! left, and the gauge says when the old key may go.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_datapush::index::{INDEX_FILE, IndexKey, NEXT_INDEX_FILE, PREVIOUS_INDEX_FILE};
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::datapush::v1::*;
use creditmesh_tests::{Engine, Replica, TestClock, TestMesh, eventually, scalar_i64};
use time::macros::date;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::datapush::push;
use super::objections::{client, loan, mesh_at, object, record_id, resolve, sql, subject};
use super::register::pki_cli;

const RECORDS: usize = 12;

/// Every keyed hash datapush keeps of a subject or a record's content.
const HASHES: &str = "SELECT subject_index FROM datapush_record \
    UNION ALL SELECT fingerprint FROM datapush_record WHERE envelope <> '' \
    UNION ALL SELECT fingerprint FROM datapush_version WHERE fingerprint <> '' \
    UNION ALL SELECT subject_index FROM datapush_objection";

async fn hashes(url: &str) -> HashSet<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar(HASHES)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A datapush replica started on the mesh's database with the key files as they are now,
/// behind a gateway of its own.
struct Step {
    node: SocketAddr,
    public: SocketAddr,
    _replica: Replica,
    stop: CancellationToken,
}

impl Drop for Step {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn restarted(t: &TestMesh, clock: &Arc<TestClock>) -> Step {
    let addr = creditmesh_tests::free_addr();
    let replica = t.replica_on("datapush", clock.clone(), addr, |_| {}).await;
    let stop = CancellationToken::new();
    let backend = creditmesh_gateway::Backend {
        grpc_name: "creditmesh.datapush.v1.DataPushService".into(),
        urls: vec![format!("https://{addr}")],
        server_name: "datapush".into(),
        tenant: None,
    };
    let (node, public) = super::balancing::gateway_for(&t.pki_dir, backend, &stop).await;
    Step {
        node,
        public,
        _replica: replica,
        stop,
    }
}

impl Step {
    async fn as_(
        &self,
        t: &TestMesh,
        name: &str,
    ) -> DataPushServiceClient<tonic::transport::Channel> {
        DataPushServiceClient::new(creditmesh_tests::mtls(self.node, &t.pki_dir, name).await)
    }

    /// The subject's report with `code`, as the subject asks for it.
    async fn report(
        &self,
        t: &TestMesh,
        code: &str,
    ) -> Result<GetSubjectReportResponse, tonic::Status> {
        DataPushServiceClient::new(creditmesh_tests::server_tls(self.public, &t.pki_dir).await)
            .get_subject_report(GetSubjectReportRequest {
                subject_identifier: subject(),
                access_code: code.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
    }

    /// This replica finds every record of the subject for the desk and for the subject with
    /// `code`, and knows a record pushed again for a duplicate.
    async fn finds_everything(&self, t: &TestMesh, code: &str, records: usize) {
        let found = self
            .as_(t, "regulator-653100")
            .await
            .find_records(FindRecordsRequest {
                subject_kind: SubjectKind::Person as i32,
                subject_identifier: subject(),
                purpose: "index key rotation".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        assert_eq!(found.len(), records);
        let report = self.report(t, code).await.unwrap();
        assert_eq!(report.records.len(), records);
        assert_eq!(report.objections.len(), 3);
        let again = push(
            creditmesh_tests::mtls(self.node, &t.pki_dir, "agency-kashgar").await,
            vec![loan("ix-5", &subject(), "2026-09-01", 5.0)],
        )
        .await
        .unwrap();
        assert_eq!(again[0].result, PushResult::Duplicate as i32, "{again:?}");
        assert_eq!(again[0].version, 1);
    }
}

async fn issue_code(desk: &mut DataPushServiceClient<tonic::transport::Channel>) -> String {
    desk.issue_subject_access_code(IssueSubjectAccessCodeRequest {
        request_id: String::new(),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: subject(),
    })
    .await
    .unwrap()
    .into_inner()
    .access_code
}

fn key_id(t: &TestMesh, file: &str) -> String {
    IndexKey::parse(
        &std::fs::read_to_string(t.pki_dir.join(file)).unwrap(),
        file,
    )
    .unwrap()
    .id
}

crate::on_both_engines!(an_index_key_rotation_keeps_every_subject_findable);

async fn an_index_key_rotation_keeps_every_subject_findable(engine: Engine) {
    let Some((t, clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        (0..RECORDS)
            .map(|i| loan(&format!("ix-{i}"), &who, "2026-09-01", i as f64))
            .collect(),
    )
    .await
    .unwrap();
    let (r0, r1, r2) = (
        record_id(&t, "ix-0").await,
        record_id(&t, "ix-1").await,
        record_id(&t, "ix-2").await,
    );
    // One record corrected (its first version in the history), one deleted (its subject kept
    // only in the objection that deleted it), one under objection.
    let mut desk = client(&t, "regulator-653100").await;
    let mut agency = client(&t, "agency-kashgar").await;
    let o0 = object(
        &mut desk,
        "ix-o0",
        &r0,
        ObjectionGround::Error,
        "repaid",
        "",
    )
    .await;
    let mut correct = resolve(&o0.objection_id, "ix-d0", ObjectionDecision::Correct);
    correct.corrected_content =
        br#"{"amount_due": 0, "due_on": "2026-08-31", "days_overdue": 0}"#.to_vec();
    agency.resolve_objection(correct).await.unwrap();
    let o1 = object(
        &mut desk,
        "ix-o1",
        &r1,
        ObjectionGround::Privacy,
        "not mine",
        "",
    )
    .await;
    agency
        .resolve_objection(resolve(
            &o1.objection_id,
            "ix-d1",
            ObjectionDecision::Delete,
        ))
        .await
        .unwrap();
    object(
        &mut desk,
        "ix-o2",
        &r2,
        ObjectionGround::Omission,
        "incomplete",
        "",
    )
    .await;
    let old_code = issue_code(&mut desk).await;
    let url = t.db_url("datapush");
    let old_hashes = hashes(&url).await;
    let old_id = key_id(&t, INDEX_FILE);

    // Begun: a replica restarted with the next key still writes under the old one.
    let (ok, out) = pki_cli(&["rotate-index-key"], &t.pki_dir).await;
    assert!(ok, "{out}");
    assert!(t.pki_dir.join(NEXT_INDEX_FILE).exists());
    let (again, out) = pki_cli(&["rotate-index-key"], &t.pki_dir).await;
    assert!(!again && out.contains("begun already"), "{out}");
    let begun = restarted(&t, &clock).await;
    begun.finds_everything(&t, &old_code, RECORDS).await;

    // Switched: a replica restarted now writes under the new key and computes every hash
    // again; the operations port counts what is left.
    let (ok, out) = pki_cli(&["rotate-index-key", "--switch"], &t.pki_dir).await;
    assert!(ok, "{out}");
    let new_id = key_id(&t, INDEX_FILE);
    assert_eq!(key_id(&t, PREVIOUS_INDEX_FILE), old_id);
    let left = sql(format!(
        "SELECT (SELECT COUNT(*) FROM datapush_record WHERE index_key <> '{new_id}') \
         + (SELECT COUNT(*) FROM datapush_version WHERE index_key <> '{new_id}') \
         + (SELECT COUNT(*) FROM datapush_objection WHERE index_key <> '{new_id}')"
    ));
    // Twelve records, two earlier versions, three objections.
    assert_eq!(scalar_i64(&url, left).await, RECORDS as i64 + 2 + 3);
    let switched = restarted(&t, &clock).await;
    eventually(
        "every hash is computed again under the new key",
        Duration::from_secs(60),
        || async { (scalar_i64(&url, left).await == 0).then_some(()) },
    )
    .await;
    let moved = hashes(&url).await;
    assert!(
        !moved.is_empty() && moved.is_disjoint(&old_hashes),
        "no hash of a record, version or objection is left under the old key"
    );
    let codes_left = sql(format!(
        "SELECT COUNT(*) FROM datapush_access_code WHERE index_key <> '{new_id}'"
    ));
    assert_eq!(
        scalar_i64(&url, codes_left).await,
        1,
        "an access code is not hashed again: it expires"
    );
    let stop = CancellationToken::new();
    let ops = super::ops::port(&t, &stop).await;
    let stale = |kind: &'static str| async move {
        super::ops::scrape(ops, "creditmesh_datapush_index_stale", &[("kind", kind)]).await
    };
    for kind in ["record", "version", "objection"] {
        assert_eq!(stale(kind).await, Some(0.0), "{kind}");
    }
    assert_eq!(stale("access_code").await, Some(1.0));
    // Either side of the switch finds everything, the code issued before included.
    switched.finds_everything(&t, &old_code, RECORDS).await;
    begun.finds_everything(&t, &old_code, RECORDS).await;

    // A replica not yet restarted writes under the old key; a switched one moves it on its
    // next pass (here: the next replica's start).
    let late = push(
        creditmesh_tests::mtls(begun.node, &t.pki_dir, "agency-kashgar").await,
        vec![loan("ix-late", &who, "2026-09-02", 1.0)],
    )
    .await
    .unwrap();
    assert_eq!(late[0].result, PushResult::Stored as i32);
    switched.finds_everything(&t, &old_code, RECORDS + 1).await;
    assert_eq!(stale("record").await, Some(1.0));
    drop(begun);
    drop(switched);
    let switched = restarted(&t, &clock).await;
    eventually(
        "the late record is moved",
        Duration::from_secs(60),
        || async { (scalar_i64(&url, left).await == 0).then_some(()) },
    )
    .await;
    let new_code = issue_code(&mut switched.as_(&t, "regulator-653100").await).await;
    drop(switched);

    // Finished: the old key is gone; everything is found under the new one alone, and the
    // code issued before the switch is no longer valid.
    let (ok, out) = pki_cli(&["rotate-index-key", "--finish"], &t.pki_dir).await;
    assert!(ok, "{out}");
    assert!(!t.pki_dir.join(PREVIOUS_INDEX_FILE).exists());
    let finished = restarted(&t, &clock).await;
    finished.finds_everything(&t, &new_code, RECORDS + 1).await;
    let err = finished.report(&t, &old_code).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let (again, out) = pki_cli(&["rotate-index-key", "--finish"], &t.pki_dir).await;
    assert!(!again && out.contains("no rotation was switched"), "{out}");
    stop.cancel();
    drop(finished);
    t.stop().await;
}
