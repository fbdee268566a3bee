//! Objections and subject access (Art. 21, 22): an objection marks the record at once for
//! every reader; the agency's decision (correct, delete, keep) reaches the readers and the
//! subject; every read by a regulator states its purpose and shows in the subject's report;
//! each earlier reader is told of a correction once; an undecided objection past its 10
//! working days is listed and enters the agency's credit file; the retention purge removes
//! exactly the expired records.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_domain::calendar::{Calendar, Layers, format_date};
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::datapush::v1::*;
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_tests::{Engine, TestClock, TestMesh, eventually, scalar_i64};
use time::macros::date;
use tonic::Code;
use tonic::transport::Channel;

use super::datapush::{VERSIONS, push, pushing_on};
use super::filing::{KASHGAR, mesh_with, person_id};
use super::lifecycle::fields;

crate::on_both_engines!(
    each_decision_on_an_objection_reaches_readers_and_the_subject,
    an_objection_undecided_past_its_deadline_is_listed_and_filed,
    the_purge_removes_exactly_the_expired_records,
    a_rotated_key_is_retired_once_every_envelope_is_wrapped_again,
    a_provisional_objection_deadline_waits_for_the_new_years_calendar,
    a_revoked_agencys_objection_is_decided_by_the_authority_holding_it,
    a_subject_files_a_bank_receipt_with_an_objection_and_the_agency_opens_it,
    the_subject_sees_each_versions_source_and_the_agencys_own_uses,
);

/// A query made at run time, for `scalar_i64`.
pub fn sql(query: String) -> &'static str {
    Box::leak(query.into_boxed_str())
}

pub fn subject() -> String {
    person_id("65310119800101123")
}

pub fn loan(key: &str, subject: &str, collected_on: &str, amount: f64) -> CreditRecord {
    CreditRecord {
        record_key: key.into(),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: subject.into(),
        category: "loan-repayment".into(),
        content: format!(
            r#"{{"amount_due": {amount}, "due_on": "2026-08-31", "days_overdue": 12}}"#
        )
        .into_bytes(),
        collected_on: collected_on.into(),
        source: Some(RecordSource {
            provider: "Kashi Rural Commercial Bank".into(),
            legal_basis: "the borrower's written consent of 2026-03-02 (征信业管理条例 Art. 14)"
                .into(),
        }),
    }
}

/// A mesh on a clock standing at `day`, with a Kashgar agency that may push, a regional
/// regulator and a Urumqi regulator besides the Kashgar one.
pub async fn mesh_at(engine: Engine, day: time::Date) -> Option<(TestMesh, Arc<TestClock>)> {
    let clock = Arc::new(TestClock::at(day));
    let t = mesh_with(TestMesh::start_at(engine, clock.clone()).await?)?;
    for (name, tenant) in [
        ("regulator-650000", "650000"),
        ("regulator-650100", "650100"),
    ] {
        t.issue(
            name,
            Principal::new(PrincipalKind::Regulator, Tenant::parse(tenant).unwrap(), ""),
        );
    }
    let (t, _) = pushing_on(t).await;
    Some((t, clock))
}

pub async fn client(t: &TestMesh, name: &str) -> DataPushServiceClient<Channel> {
    DataPushServiceClient::new(t.node(name).await)
}

pub async fn public(t: &TestMesh) -> DataPushServiceClient<Channel> {
    DataPushServiceClient::new(t.public().await)
}

pub async fn record_id(t: &TestMesh, key: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.db_url("datapush"))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT record_id FROM datapush_record WHERE record_key = $1")
        .bind(key.to_owned())
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

async fn find(reader: &mut DataPushServiceClient<Channel>, purpose: &str) -> Vec<StoredRecord> {
    reader
        .find_records(FindRecordsRequest {
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: subject(),
            purpose: purpose.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records
}

async fn notices(reader: &mut DataPushServiceClient<Channel>) -> Vec<CorrectionNotice> {
    reader
        .list_correction_notices(ListCorrectionNoticesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .notices
}

/// An objection to `record_id` recorded by `filer` (the desk or the agency) for the subject.
pub async fn object(
    filer: &mut DataPushServiceClient<Channel>,
    request_id: &str,
    record_id: &str,
    ground: ObjectionGround,
    statement: &str,
    contact: &str,
) -> Objection {
    filer
        .file_objection(FileObjectionRequest {
            request_id: request_id.into(),
            record_id: record_id.into(),
            subject_identifier: subject(),
            ground: ground as i32,
            statement: statement.into(),
            contact: contact.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap()
}

pub fn resolve(id: &str, request_id: &str, decision: ObjectionDecision) -> ResolveObjectionRequest {
    ResolveObjectionRequest {
        request_id: request_id.into(),
        objection_id: id.into(),
        decision: decision as i32,
        ..Default::default()
    }
}

async fn each_decision_on_an_objection_reaches_readers_and_the_subject(engine: Engine) {
    // Friday 25 September 2026: ten working days from here run across the National Day break.
    let Some((t, _clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    let acks = push(
        t.node("agency-kashgar").await,
        ["r-1", "r-2", "r-3"]
            .iter()
            .map(|k| loan(k, &who, "2026-09-01", 500.0))
            .collect(),
    )
    .await
    .unwrap();
    assert!(acks.iter().all(|a| a.result == PushResult::Stored as i32));
    let (r1, r2, r3) = (
        record_id(&t, "r-1").await,
        record_id(&t, "r-2").await,
        record_id(&t, "r-3").await,
    );
    let mut agency = client(&t, "agency-kashgar").await;
    let mut desk = client(&t, "regulator-653100").await;
    let mut region = client(&t, "regulator-650000").await;
    let mut urumqi = client(&t, "regulator-650100").await;
    let mut anyone = public(&t).await;

    // Regulators read only with a purpose, and only what they hold.
    let err = desk
        .find_records(FindRecordsRequest {
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
            purpose: " ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        fields(&err).iter().any(|f| f.starts_with("purpose")),
        "{err:?}"
    );
    assert_eq!(
        find(&mut desk, "supervision of loan reporting").await.len(),
        3
    );
    assert_eq!(find(&mut desk, "second look").await.len(), 3);
    assert_eq!(
        find(&mut urumqi, "curiosity").await.len(),
        0,
        "another prefecture sees nothing"
    );
    let got = region
        .get_record(GetRecordRequest {
            record_id: r1.clone(),
            purpose: "regional audit".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert_eq!(got.status, RecordStatus::Active as i32);

    // The desk issues the subject an access code; the subject objects with it.
    let code = desk
        .issue_subject_access_code(IssueSubjectAccessCodeRequest {
            request_id: "code-1".into(),
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_code;
    let objection = |record_id: &str, code: &str, request_id: &str| FileObjectionRequest {
        request_id: request_id.into(),
        record_id: record_id.into(),
        subject_identifier: who.clone(),
        ground: ObjectionGround::Error as i32,
        statement: "the loan was repaid in August; receipt attached".into(),
        access_code: code.into(),
        contact: "aynur@example.org".into(),
        ..Default::default()
    };
    let err = anyone
        .file_objection(objection(&r1, "0123456789abcdef0123456789abcdef", "o-x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // The code is checked before anything is read: a wrong one is answered alike whether the
    // record exists and concerns this person or not.
    let unknown = anyone
        .file_objection(objection(
            "01900000-0000-7000-8000-000000000000",
            "0123456789abcdef0123456789abcdef",
            "o-x2",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), unknown.message()),
        (err.code(), err.message()),
        "a wrong code tells nothing of the record"
    );
    let err = anyone
        .file_objection(objection(&r1, "", "o-y"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        fields(&err).iter().any(|f| f.starts_with("access_code")),
        "{err:?}"
    );
    let o1 = anyone
        .file_objection(objection(&r1, &code, "o-1"))
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(o1.status, "open");
    assert_eq!(o1.filed_by, "public");
    let deadline = o1.deadline.clone().unwrap();
    let expected = Calendar::builtin()
        .deadline(date!(2026 - 09 - 25), 10, Layers::Xinjiang)
        .unwrap();
    assert_eq!(deadline.from_date, "2026-09-25");
    assert_eq!(deadline.due_date, format_date(expected.due));
    assert!(
        deadline.due_date.as_str() > "2026-10-09",
        "the National Day break is not counted: {}",
        deadline.due_date
    );
    // Marked at once, for every reader.
    for (reader, purpose) in [(&mut agency, ""), (&mut region, "check the mark")] {
        let seen = reader
            .get_record(GetRecordRequest {
                record_id: r1.clone(),
                purpose: purpose.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .record
            .unwrap();
        assert_eq!(seen.status, RecordStatus::UnderObjection as i32);
        assert_eq!(seen.open_objection_id, o1.objection_id);
    }
    let again = anyone
        .file_objection(objection(&r1, &code, "o-2"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    // The subject's own replay answers the same objection.
    let replay = anyone
        .file_objection(objection(&r1, &code, "o-1"))
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(replay.objection_id, o1.objection_id);

    // Correct: a new version, readers told once each, the subject told.
    let mut keep_without_reasons = resolve(&o1.objection_id, "d-0", ObjectionDecision::Keep);
    keep_without_reasons.reasons = "  ".into();
    let err = agency
        .resolve_objection(keep_without_reasons)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        fields(&err).iter().any(|f| f.starts_with("reasons")),
        "{err:?}"
    );
    let mut bad = resolve(&o1.objection_id, "d-bad", ObjectionDecision::Correct);
    bad.corrected_content = br#"{"amount_due": "none"}"#.to_vec();
    let err = agency.resolve_objection(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        fields(&err)
            .iter()
            .any(|f| f.starts_with("corrected_content")),
        "{err:?}"
    );
    let mut correct = resolve(&o1.objection_id, "d-1", ObjectionDecision::Correct);
    correct.corrected_content =
        br#"{"amount_due": 0, "due_on": "2026-08-31", "days_overdue": 0, "settled": true}"#
            .to_vec();
    let decided = agency
        .resolve_objection(correct)
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(decided.decision, ObjectionDecision::Correct as i32);
    let err = agency
        .resolve_objection(resolve(&o1.objection_id, "d-1b", ObjectionDecision::Delete))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "decided once: {err:?}"
    );
    let seen = &find(&mut region, "after the correction").await;
    let r1_now = seen.iter().find(|r| r.record_id == r1).unwrap();
    assert_eq!(r1_now.status, RecordStatus::Active as i32);
    assert_eq!(r1_now.version, 2);
    let content: serde_json::Value =
        serde_json::from_slice(&r1_now.record.as_ref().unwrap().content).unwrap();
    assert_eq!(content["settled"], true);

    // Delete, on an objection the agency itself recorded.
    let o2 = object(
        &mut agency,
        "a-o2",
        &r2,
        ObjectionGround::Privacy,
        "told to our counter in person",
        "aynur@example.org",
    )
    .await;
    agency
        .resolve_objection(resolve(&o2.objection_id, "d-2", ObjectionDecision::Delete))
        .await
        .unwrap();
    let gone = desk
        .get_record(GetRecordRequest {
            record_id: r2.clone(),
            purpose: "after the deletion".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert_eq!(gone.status, RecordStatus::Deleted as i32);
    assert!(gone.record.unwrap().content.is_empty());
    let repushed = push(
        t.node("agency-kashgar").await,
        vec![loan("r-2", &who, "2026-09-01", 500.0)],
    )
    .await
    .unwrap();
    assert_eq!(repushed[0].result, PushResult::Rejected as i32);
    assert!(
        repushed[0].error.starts_with("record_key: "),
        "{repushed:?}"
    );

    // Keep, on an objection the desk recorded for the subject; the subject answers.
    let o3 = object(
        &mut desk,
        "desk-o3",
        &r3,
        ObjectionGround::ImproperEvaluation,
        "came to the service desk",
        "13912345678",
    )
    .await;
    let mut keep = resolve(&o3.objection_id, "d-3", ObjectionDecision::Keep);
    keep.reasons = "the bank's ledger shows the instalment unpaid".into();
    agency.resolve_objection(keep).await.unwrap();
    anyone
        .add_subject_statement(AddSubjectStatementRequest {
            request_id: "s-1".into(),
            objection_id: o3.objection_id.clone(),
            subject_identifier: who.clone(),
            access_code: code.clone(),
            statement: "I dispute this: the bank lost my payment".into(),
        })
        .await
        .unwrap();
    let err = anyone
        .add_subject_statement(AddSubjectStatementRequest {
            request_id: "s-2".into(),
            objection_id: o1.objection_id.clone(),
            subject_identifier: who.clone(),
            access_code: code.clone(),
            statement: "nothing to add".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::FailedPrecondition,
        "only to a keep: {err:?}"
    );
    let seen = find(&mut desk, "after the keep").await;
    let r3_now = seen.iter().find(|r| r.record_id == r3).unwrap();
    assert_eq!(r3_now.status, RecordStatus::Active as i32);
    assert_eq!(
        r3_now.kept_reasons,
        "the bank's ledger shows the instalment unpaid"
    );
    assert_eq!(
        r3_now.subject_statement,
        "I dispute this: the bank lost my payment"
    );

    // Each earlier reader is told once per change; one who never read is told nothing.
    let told = notices(&mut desk).await;
    let mut changes: Vec<(String, String)> = told
        .iter()
        .map(|n| (n.record_id.clone(), n.change.clone()))
        .collect();
    changes.sort();
    let mut want = vec![
        (r1.clone(), "corrected".to_owned()),
        (r2.clone(), "deleted".to_owned()),
    ];
    want.sort();
    assert_eq!(changes, want, "{told:?}");
    assert!(told.iter().all(|n| n.read_version == 1 && n.version == 2));
    assert_eq!(notices(&mut region).await.len(), 2);
    assert!(notices(&mut urumqi).await.is_empty());

    // The subject's report: every record, its history, every use with its purpose.
    let report = anyone
        .get_subject_report(GetSubjectReportRequest {
            subject_identifier: who.clone(),
            access_code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.records.len(), 3);
    let of = |id: &str| {
        report
            .records
            .iter()
            .find(|r| r.record.as_ref().unwrap().record_id == id)
            .unwrap()
    };
    let r1_report = of(&r1);
    // How long the platform keeps it, and why (Art. 20 sets no term for the platform).
    assert_eq!(
        r1_report.kept_until, "2031-09-01",
        "collected 2026-09-01, kept 60 months"
    );
    assert!(
        r1_report
            .retention_basis
            .contains("60 months from collection"),
        "{}",
        r1_report.retention_basis
    );
    assert_eq!(r1_report.history.len(), 2);
    assert_eq!(r1_report.history[1].change, "corrected");
    assert!(!r1_report.history[0].content.is_empty());
    let purposes: Vec<&str> = r1_report.uses.iter().map(|u| u.purpose.as_str()).collect();
    for p in [
        "supervision of loan reporting",
        "second look",
        "regional audit",
        "check the mark",
        "after the correction",
    ] {
        assert!(purposes.contains(&p), "{p} missing from {purposes:?}");
    }
    assert!(
        r1_report
            .uses
            .iter()
            .all(|u| u.used_by.starts_with("spiffe://") && u.used_at.is_some())
    );
    assert!(
        of(&r2).history.iter().all(|v| v.content.is_empty()),
        "what was deleted is not kept in the history"
    );
    assert_eq!(report.objections.len(), 3);
    let err = anyone
        .get_subject_report(GetSubjectReportRequest {
            subject_identifier: person_id("65310119900101123"),
            access_code: code.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "a code is for one person: {err:?}"
    );

    // Both lists come in pages of the size asked for.
    let page = |token: &str| FindRecordsRequest {
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: who.clone(),
        purpose: "paging".into(),
        page_size: 2,
        page_token: token.into(),
        ..Default::default()
    };
    let first = region.find_records(page("")).await.unwrap().into_inner();
    assert_eq!(first.records.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = region
        .find_records(page(&first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.records.len(), 1);
    assert!(second.next_page_token.is_empty());
    let err = region.find_records(page("page-2")).await.unwrap_err();
    assert!(fields(&err).contains(&"page_token".to_owned()), "{err:?}");
    let paged = anyone
        .get_subject_report(GetSubjectReportRequest {
            subject_identifier: who.clone(),
            access_code: code.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paged.records.len(), 1);
    assert_eq!(
        paged.objections.len(),
        1,
        "the objections of this page's record"
    );
    assert!(!paged.next_page_token.is_empty());

    // The subject is told at each step: received and decided, for each of the three
    // objections (two left an e-mail address, one a mobile number).
    let url = t.db_url("complaints");
    eventually("the subject is told", Duration::from_secs(30), || async {
        (scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_notification WHERE sent_at IS NOT NULL",
        )
        .await
            == 6)
            .then_some(())
    })
    .await;
    for (channel, n) in [("email", 4), ("sms", 2)] {
        assert_eq!(
            scalar_i64(
                &url,
                sql(format!(
                    "SELECT COUNT(*) FROM complaints_notification WHERE channel = '{channel}'"
                ))
            )
            .await,
            n
        );
    }
    assert_eq!(
        scalar_i64(
            &url,
            sql(format!(
                "SELECT COUNT(*) FROM complaints_notification WHERE tracking_number = '{}' \
                 AND body LIKE '%bank''s ledger%'",
                o3.objection_id
            ))
        )
        .await,
        1,
        "the subject is told the reasons for keeping"
    );
    for (objection, says) in [
        (&o1.objection_id, "corrected"),
        (&o2.objection_id, "deleted"),
    ] {
        assert_eq!(
            scalar_i64(
                &url,
                sql(format!(
                    "SELECT COUNT(*) FROM complaints_notification WHERE tracking_number = \
                     '{objection}' AND body LIKE '%{says}%'"
                ))
            )
            .await,
            1,
            "the subject is told the record was {says}"
        );
    }
    // Their contacts travel and wait sealed: neither data push's outbox nor the notification
    // rows hold one in clear, and each row's address is sealed.
    for (service, table, column) in [
        ("datapush", "datapush_outbox", "payload"),
        ("complaints", "complaints_notification", "address"),
    ] {
        let stored = stored_bytes(&t.db_url(service), table, column).await;
        assert!(!stored.is_empty(), "{table}");
        for contact in ["aynur@example.org", "13912345678"] {
            assert!(
                !stored
                    .iter()
                    .any(|b| b.windows(contact.len()).any(|w| w == contact.as_bytes())),
                "{table}.{column} holds {contact} in clear"
            );
        }
    }
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_notification WHERE address NOT LIKE 'sealed1:%'"
        )
        .await,
        0
    );
    t.stop().await;
}

/// Every value of `table.column`, as bytes.
async fn stored_bytes(url: &str, table: &str, column: &str) -> Vec<Vec<u8>> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let query = sql(format!("SELECT {column} FROM {table}"));
    sqlx::query(sqlx::AssertSqlSafe(query))
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.try_get::<Vec<u8>, _>(0)
                .or_else(|_| r.try_get::<String, _>(0).map(String::into_bytes))
                .unwrap()
        })
        .collect()
}

async fn credit_file_kinds(t: &TestMesh) -> Vec<String> {
    ReviewServiceClient::new(t.node("regulator-653100").await)
        .get_credit_file(GetCreditFileRequest {
            uscc: KASHGAR.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn an_objection_undecided_past_its_deadline_is_listed_and_filed(engine: Engine) {
    let Some((t, clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        vec![loan("late-1", &who, "2026-09-01", 1.0)],
    )
    .await
    .unwrap();
    let id = record_id(&t, "late-1").await;
    let mut desk = client(&t, "regulator-653100").await;
    let o = object(
        &mut desk,
        "late",
        &id,
        ObjectionGround::Omission,
        "a repayment is missing",
        "",
    )
    .await;
    let due = o.deadline.unwrap().due_date;
    let overdue = |desk: &mut DataPushServiceClient<Channel>| {
        let mut desk = desk.clone();
        async move {
            desk.list_objections(ListObjectionsRequest {
                overdue_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .objections
        }
    };
    // On its last day it is not late; the operations port counts it as due.
    clock.set(
        time::Date::parse(&due, &time::format_description::well_known::Iso8601::DATE).unwrap(),
    );
    assert!(overdue(&mut desk).await.is_empty());
    let stop = tokio_util::sync::CancellationToken::new();
    let ops = super::ops::port(&t, &stop).await;
    let labels = [
        ("service", "datapush"),
        ("tenant", "653100"),
        ("kind", "objection"),
    ];
    let due_within_1 = [labels.as_slice(), &[("within", "1")]].concat();
    assert_eq!(
        super::ops::scrape(ops, "creditmesh_deadlines_due", &due_within_1).await,
        Some(1.0)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !credit_file_kinds(&t)
            .await
            .contains(&"objection_overdue".to_owned())
    );
    // The day after, it is, and it is filed once.
    clock.advance(Duration::from_secs(86_400));
    let late = overdue(&mut desk).await;
    assert_eq!(late.len(), 1);
    assert!(late[0].overdue);
    assert_eq!(
        super::ops::scrape(ops, "creditmesh_deadlines_overdue", &labels).await,
        Some(1.0)
    );
    stop.cancel();
    eventually(
        "the lateness reaches the credit file",
        Duration::from_secs(30),
        || async {
            credit_file_kinds(&t)
                .await
                .contains(&"objection_overdue".to_owned())
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        credit_file_kinds(&t)
            .await
            .iter()
            .filter(|k| *k == "objection_overdue")
            .count(),
        1
    );
    // Another prefecture's regulator does not see it.
    let mut urumqi = client(&t, "regulator-650100").await;
    assert!(overdue(&mut urumqi).await.is_empty());
    t.stop().await;
}

async fn the_purge_removes_exactly_the_expired_records(engine: Engine) {
    // The demonstration catalog keeps loan records 60 months.
    let Some((t, clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    let acks = push(
        t.node("agency-kashgar").await,
        vec![
            // Its retention ends at the end of 25 September 2026: kept today.
            loan("last-day", &who, "2021-09-25", 1.0),
            loan("day-after", &who, "2021-09-26", 1.0),
            loan("recent", &who, "2026-01-01", 1.0),
        ],
    )
    .await
    .unwrap();
    assert!(
        acks.iter().all(|a| a.result == PushResult::Stored as i32),
        "{acks:?}"
    );
    let url = t.db_url("datapush");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_record").await,
        3
    );
    let purged = |key: &'static str| {
        let url = url.clone();
        async move {
            scalar_i64(
                &url,
                sql(format!(
                    "SELECT COUNT(*) FROM datapush_purge WHERE record_key = '{key}'"
                )),
            )
            .await
        }
    };
    clock.advance(Duration::from_secs(86_400));
    eventually(
        "the first expired record is purged",
        Duration::from_secs(30),
        || async { (purged("last-day").await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_record").await,
        2
    );
    assert_eq!(purged("day-after").await, 0);
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM datapush_version v WHERE NOT EXISTS \
             (SELECT 1 FROM datapush_record r WHERE r.record_id = v.record_id)"
        )
        .await,
        0,
        "the history goes with the record"
    );
    clock.advance(Duration::from_secs(86_400));
    eventually(
        "the second is purged the day after",
        Duration::from_secs(30),
        || async { (purged("day-after").await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_record").await,
        1
    );
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM datapush_job WHERE name LIKE 'retention-purge-%'"
        )
        .await,
        3,
        "one run a day"
    );
    t.stop().await;
}

/// Many objections to one record at once on PostgreSQL, then many decisions on it at once:
/// one objection is open, one decision is taken, and the record has one version more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_objections_and_decisions_take_effect_once() {
    let Some((t, _)) = mesh_at(Engine::Postgres, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    let url = t.db_url("datapush");
    for round in 0..5 {
        let key = format!("race-{round}");
        push(
            t.node("agency-kashgar").await,
            vec![loan(&key, &who, "2026-09-01", 1.0)],
        )
        .await
        .unwrap();
        let id = record_id(&t, &key).await;
        let desk = client(&t, "regulator-653100").await;
        let filed = futures::future::join_all((0..16).map(|i| {
            let mut desk = desk.clone();
            let (id, who) = (id.clone(), who.clone());
            async move {
                desk.file_objection(FileObjectionRequest {
                    request_id: format!("race-{round}-{i}"),
                    record_id: id,
                    subject_identifier: who,
                    ground: ObjectionGround::Error as i32,
                    statement: format!("objection {i}"),
                    ..Default::default()
                })
                .await
            }
        }))
        .await;
        let won: Vec<_> = filed.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{filed:?}");
        assert!(
            filed
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| e.code() == Code::FailedPrecondition),
            "{filed:?}"
        );
        let objection_id = won[0]
            .get_ref()
            .objection
            .as_ref()
            .unwrap()
            .objection_id
            .clone();
        let agency = client(&t, "agency-kashgar").await;
        let decided = futures::future::join_all((0..12).map(|i| {
            let mut agency = agency.clone();
            let objection_id = objection_id.clone();
            async move {
                let mut req = match i % 3 {
                    0 => resolve(&objection_id, "", ObjectionDecision::Delete),
                    1 => resolve(&objection_id, "", ObjectionDecision::Keep),
                    _ => resolve(&objection_id, "", ObjectionDecision::Correct),
                };
                req.request_id = format!("decide-{round}-{i}");
                match i % 3 {
                    1 => req.reasons = "verified".into(),
                    2 => {
                        req.corrected_content =
                            br#"{"amount_due": 2, "due_on": "2026-08-31", "days_overdue": 0}"#
                                .to_vec()
                    }
                    _ => {}
                }
                agency.resolve_objection(req).await
            }
        }))
        .await;
        assert_eq!(
            decided.iter().filter(|r| r.is_ok()).count(),
            1,
            "{decided:?}"
        );
        assert!(
            decided
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| e.code() == Code::FailedPrecondition),
            "{decided:?}"
        );
        let versions = scalar_i64(
            &url,
            sql(format!(
                "SELECT COUNT(*) FROM {VERSIONS} v JOIN datapush_record r \
                 ON r.record_id = v.record_id WHERE r.record_key = '{key}'"
            )),
        )
        .await;
        let kept = decided.iter().filter_map(|r| r.as_ref().ok()).any(|r| {
            r.get_ref().objection.as_ref().unwrap().decision == ObjectionDecision::Keep as i32
        });
        assert_eq!(
            versions,
            if kept { 1 } else { 2 },
            "one decision, one change"
        );
    }
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM datapush_objection WHERE status = 'open'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM datapush_objection").await,
        5
    );
    t.stop().await;
}

async fn a_rotated_key_is_retired_once_every_envelope_is_wrapped_again(engine: Engine) {
    use creditmesh_datapush::DataPushConfig;
    use creditmesh_datapush::seal::Keys;

    let Some((t, clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        (0..450)
            .map(|i| loan(&format!("k-{i}"), &who, "2026-09-01", i as f64))
            .collect(),
    )
    .await
    .unwrap();
    let r0 = record_id(&t, "k-0").await;
    let mut desk = client(&t, "regulator-653100").await;
    let o = object(
        &mut desk,
        "rot",
        &r0,
        ObjectionGround::Error,
        "sealed statement",
        "aynur@example.org",
    )
    .await;
    let mut correct = resolve(&o.objection_id, "rot-d", ObjectionDecision::Correct);
    correct.corrected_content =
        br#"{"amount_due": 0, "due_on": "2026-08-31", "days_overdue": 0}"#.to_vec();
    client(&t, "agency-kashgar")
        .await
        .resolve_objection(correct)
        .await
        .unwrap();
    let receipt = super::filing::pdf("a sealed receipt");
    let material = upload_material(&mut desk, &r0, "", receipt.clone())
        .await
        .unwrap();
    let url = t.db_url("datapush");
    let stale = "SELECT (SELECT COUNT(*) FROM datapush_record WHERE key_id <> 'k2') \
                 + (SELECT COUNT(*) FROM datapush_version WHERE key_id <> 'k2') \
                 + (SELECT COUNT(*) FROM datapush_objection WHERE key_id <> 'k2') \
                 + (SELECT COUNT(*) FROM datapush_material WHERE key_id <> 'k2')";
    // 450 records, the first version of the corrected one, the objection, the material.
    assert_eq!(scalar_i64(&url, stale).await, 450 + 1 + 1 + 1);

    // A replica starts with the new key listed first: it wraps everything again.
    let generated = std::fs::read_to_string(t.pki_dir.join("datapush-kek.key")).unwrap();
    let k2 = "k2:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=".to_owned();
    let rotating = DataPushConfig {
        keys: [(
            "*".to_owned(),
            vec![k2.clone(), generated.trim().to_owned()],
        )]
        .into(),
        ..Default::default()
    };
    let rotating = std::sync::Arc::new(rotating);
    let _replica = t
        .replica("datapush", clock.clone(), |rt| {
            rt.services.datapush = rotating.clone()
        })
        .await;
    eventually(
        "every envelope is under the new key",
        Duration::from_secs(60),
        || async { (scalar_i64(&url, stale).await == 0).then_some(()) },
    )
    .await;

    // With the old key gone, everything still opens.
    let retired = Keys::load(
        &DataPushConfig {
            keys: [("*".to_owned(), vec![k2])].into(),
            ..Default::default()
        },
        &t.pki_dir,
    )
    .unwrap();
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT r.tenant, r.agency_uscc, r.record_key, v.key_id, v.envelope \
         FROM datapush_version v JOIN datapush_record r ON r.record_id = v.record_id \
         UNION ALL SELECT tenant, agency_uscc, record_key, key_id, envelope FROM datapush_record",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1 + 450);
    for r in &rows {
        let (tenant, agency, key, key_id, envelope): (String, String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let binding = [agency.as_bytes(), b"\0", key.as_bytes()].concat();
        let plain = retired.open(&tenant, &key_id, &binding, &envelope).unwrap();
        assert!(!plain.is_empty());
    }
    let (tenant, key_id, envelope): (String, String, String) = {
        let r = sqlx::query("SELECT tenant, key_id, private_envelope FROM datapush_objection")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let binding = [b"objection\0".as_slice(), o.objection_id.as_bytes()].concat();
    let plain = retired.open(&tenant, &key_id, &binding, &envelope).unwrap();
    assert!(
        String::from_utf8(plain)
            .unwrap()
            .contains("sealed statement")
    );
    let (tenant, key_id, envelope): (String, String, String) = {
        let r = sqlx::query("SELECT tenant, key_id, envelope FROM datapush_material")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let binding = [b"material\0".as_slice(), material.material_id.as_bytes()].concat();
    assert_eq!(
        retired.open(&tenant, &key_id, &binding, &envelope).unwrap(),
        receipt
    );
    t.stop().await;
}

/// Art. 22's ten working days across the turn of the year, before the 2027 calendar is
/// loaded: filed on Friday 18 December 2026, the objection's deadline (1 January 2027, a
/// weekday the built-in data cannot yet call a holiday) is provisional, and nothing is overdue
/// on 2 January. Loaded with the 2027 notice (1 January off), the restarted service computes it
/// again — Monday 4 January, final — and only past that is it overdue and filed.
async fn a_provisional_objection_deadline_waits_for_the_new_years_calendar(engine: Engine) {
    let Some((t, clock)) = mesh_at(engine, date!(2026 - 12 - 18)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        vec![loan("turn-1", &who, "2026-12-01", 1.0)],
    )
    .await
    .unwrap();
    let id = record_id(&t, "turn-1").await;
    let mut desk = client(&t, "regulator-653100").await;
    let o = object(
        &mut desk,
        "turn",
        &id,
        ObjectionGround::Omission,
        "a repayment is missing",
        "",
    )
    .await;
    let deadline = o.deadline.unwrap();
    assert_eq!(
        (deadline.due_date.as_str(), deadline.provisional),
        ("2027-01-01", true)
    );
    let listed = |desk: &DataPushServiceClient<Channel>, overdue_only: bool| {
        let mut desk = desk.clone();
        async move {
            desk.list_objections(ListObjectionsRequest {
                overdue_only,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .objections
        }
    };
    clock.set(date!(2027 - 01 - 02));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(listed(&desk, true).await.is_empty());
    assert!(!listed(&desk, false).await[0].overdue);
    assert!(
        !credit_file_kinds(&t)
            .await
            .contains(&"objection_overdue".to_owned()),
        "a provisional deadline makes nothing overdue"
    );

    let _restarted = t
        .replica("datapush", clock.clone(), |rt| {
            rt.calendar = Arc::new(creditmesh_tests::calendar_2027(&["2027-01-01"]))
        })
        .await;
    let url = t.db_url("datapush");
    eventually(
        "the deadline computed again, final",
        Duration::from_secs(20),
        || async {
            let sql = "SELECT COUNT(*) FROM datapush_objection WHERE deadline_due = '2027-01-04' \
                       AND deadline_provisional = 0";
            (scalar_i64(&url, sql).await == 1).then_some(())
        },
    )
    .await;
    clock.set(date!(2027 - 01 - 04));
    assert!(
        listed(&desk, true).await.is_empty(),
        "its last day is not late"
    );
    clock.set(date!(2027 - 01 - 05));
    assert_eq!(listed(&desk, true).await.len(), 1);
    eventually(
        "the lateness reaches the credit file",
        Duration::from_secs(30),
        || async {
            credit_file_kinds(&t)
                .await
                .contains(&"objection_overdue".to_owned())
                .then_some(())
        },
    )
    .await;
    t.stop().await;
}

/// Art. 22 once the agency is gone: while its filing stands the agency decides and the
/// authority may not; revoked, the agency may no longer, the authority holding the filing
/// decides, another prefecture sees nothing, and the subject is told once who decides now.
async fn a_revoked_agencys_objection_is_decided_by_the_authority_holding_it(engine: Engine) {
    let Some((t, _clock)) = mesh_at(engine, date!(2026 - 09 - 25)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        vec![loan("gone-1", &who, "2026-09-01", 1.0)],
    )
    .await
    .unwrap();
    let id = record_id(&t, "gone-1").await;
    let mut desk = client(&t, "regulator-653100").await;
    let o = object(
        &mut desk,
        "gone",
        &id,
        ObjectionGround::Error,
        "the amount is wrong",
        "subject@example.org",
    )
    .await;
    let keep = |request_id: &str| ResolveObjectionRequest {
        reasons: "the loan contract shows the amount".into(),
        ..resolve(&o.objection_id, request_id, ObjectionDecision::Keep)
    };
    let early = desk.resolve_objection(keep("early")).await.unwrap_err();
    assert_eq!(early.code(), Code::PermissionDenied, "{early:?}");
    assert!(
        early.message().contains("while its filing stands"),
        "{early:?}"
    );

    the_register_says_revoked(&t, "653100", KASHGAR).await;
    let (datapush, complaints) = (t.db_url("datapush"), t.db_url("complaints"));
    eventually(
        "the subject told who decides now",
        Duration::from_secs(30),
        || async {
            let told = scalar_i64(
                &datapush,
                "SELECT COUNT(*) FROM datapush_objection WHERE decider_told_at IS NOT NULL",
            )
            .await;
            let queued = scalar_i64(
                &complaints,
                "SELECT COUNT(*) FROM complaints_notification \
                 WHERE body LIKE '%由喀什地区社会信用主管部门处理%'",
            )
            .await;
            (told == 1 && queued == 1).then_some(())
        },
    )
    .await;

    let mut agency = client(&t, "agency-kashgar").await;
    let gone = agency
        .resolve_objection(keep("by-agency"))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::FailedPrecondition, "{gone:?}");
    assert!(gone.message().contains("喀什地区"), "{gone:?}");
    let hidden = client(&t, "regulator-650100")
        .await
        .resolve_objection(keep("by-urumqi"))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let decided = desk
        .resolve_objection(keep("by-holder"))
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(decided.decision, ObjectionDecision::Keep as i32);
    eventually(
        "the subject told the decision",
        Duration::from_secs(30),
        || async {
            let sql = "SELECT COUNT(*) FROM complaints_notification \
                   WHERE body LIKE '%喀什地区社会信用主管部门决定不予更正或删除%'";
            (scalar_i64(&complaints, sql).await == 1).then_some(())
        },
    )
    .await;
    t.stop().await;
}

/// Tells datapush that the filing of `uscc`, held by `tenant`, is revoked, as filing's
/// register_changed (made by review's revocation) tells it.
pub async fn the_register_says_revoked(t: &TestMesh, tenant: &str, uscc: &str) {
    use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
    use creditmesh_proto::events::v1::{DeliverRequest, Event, RegisterChanged};
    EventSinkServiceClient::new(
        creditmesh_tests::mtls(t.service_addr("datapush"), &t.pki_dir, "service-filing").await,
    )
    .deliver(DeliverRequest {
        event: Some(Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: RegisterChanged::TYPE.into(),
            source: "filing".into(),
            tenant: tenant.into(),
            principal: format!("spiffe://creditmesh.xinjiang/regulator/{tenant}"),
            subject: "f".into(),
            // Later than the notice that made it active.
            occurred_at: Some((std::time::SystemTime::now() + Duration::from_secs(3600)).into()),
            payload: prost::Message::encode_to_vec(&RegisterChanged {
                filing_id: "f".into(),
                tenant: tenant.into(),
                uscc: uscc.into(),
                notice: "revoked".into(),
                status: "revoked".into(),
                ..Default::default()
            }),
        }),
    })
    .await
    .unwrap();
}

/// Uploads `bytes` as a material of an objection to `record_id`, in two chunks.
pub async fn upload_material(
    client: &mut DataPushServiceClient<Channel>,
    record_id: &str,
    code: &str,
    bytes: Vec<u8>,
) -> Result<ObjectionMaterial, tonic::Status> {
    use upload_objection_material_request::Part;
    let half = bytes.len() / 2;
    let parts = vec![
        UploadObjectionMaterialRequest {
            part: Some(Part::Metadata(MaterialMetadata {
                record_id: record_id.into(),
                subject_identifier: subject(),
                access_code: code.into(),
                file_name: "工商银行回单.pdf".into(),
                size_bytes: bytes.len() as i64,
            })),
        },
        UploadObjectionMaterialRequest {
            part: Some(Part::Chunk(bytes[..half].to_vec())),
        },
        UploadObjectionMaterialRequest {
            part: Some(Part::Chunk(bytes[half..].to_vec())),
        },
    ];
    Ok(client
        .upload_objection_material(futures::stream::iter(parts))
        .await?
        .into_inner()
        .material
        .unwrap())
}

/// The bytes of `material_id` of `objection_id` as `reader` opens it.
async fn open_material(
    reader: &mut DataPushServiceClient<Channel>,
    objection_id: &str,
    material_id: &str,
    purpose: &str,
) -> Result<(ObjectionMaterial, Vec<u8>), tonic::Status> {
    use read_objection_material_response::Part;
    let mut stream = reader
        .read_objection_material(ReadObjectionMaterialRequest {
            objection_id: objection_id.into(),
            material_id: material_id.into(),
            purpose: purpose.into(),
        })
        .await?
        .into_inner();
    let (mut meta, mut bytes) = (None, Vec::new());
    while let Some(m) = stream.message().await? {
        match m.part {
            Some(Part::Metadata(m)) => meta = Some(m),
            Some(Part::Chunk(c)) => bytes.extend(c),
            None => {}
        }
    }
    Ok((meta.unwrap(), bytes))
}

/// Art. 22 (提交相应证明材料并要求采取更正、删除等必要措施): the subject uploads a bank receipt
/// with their access code, checked on its bytes and sealed at rest, and files the objection
/// naming it and the measure asked for; the agency that pushed the record and the authority
/// holding it open it (the authority stating why, recorded), nobody else does. A wrong code is
/// refused before a byte is taken, a file that is no document is refused, a code's quota is
/// kept, and a material is named by one objection of its uploader only.
async fn a_subject_files_a_bank_receipt_with_an_objection_and_the_agency_opens_it(engine: Engine) {
    let Some((t, _clock)) = mesh_at(engine, date!(2026 - 11 - 02)).await else {
        return;
    };
    let who = subject();
    push(
        t.node("agency-kashgar").await,
        vec![
            loan("m-1", &who, "2026-09-01", 500.0),
            loan("m-2", &who, "2026-09-02", 600.0),
        ],
    )
    .await
    .unwrap();
    let (r1, r2) = (record_id(&t, "m-1").await, record_id(&t, "m-2").await);
    let mut desk = client(&t, "regulator-653100").await;
    let mut anyone = public(&t).await;
    let issue = |request_id: &str| IssueSubjectAccessCodeRequest {
        request_id: request_id.into(),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: who.clone(),
    };
    let code = desk
        .issue_subject_access_code(issue("m-code"))
        .await
        .unwrap()
        .into_inner()
        .access_code;
    let receipt = super::filing::pdf("ICBC receipt 88120: instalment of 2026-08-31 paid");

    // A wrong code is refused before anything is read or taken; a non-document on its bytes.
    let wrong = upload_material(
        &mut anyone,
        &r1,
        "0123456789abcdef0123456789abcdef",
        receipt.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(wrong.code(), Code::PermissionDenied, "{wrong:?}");
    let text = upload_material(&mut anyone, &r1, &code, b"just words".to_vec())
        .await
        .unwrap_err();
    assert_eq!(fields(&text), ["chunk"], "{text:?}");

    let material = upload_material(&mut anyone, &r1, &code, receipt.clone())
        .await
        .unwrap();
    assert_eq!(material.media_type, "application/pdf");
    assert_eq!(material.size_bytes, receipt.len() as i64);
    // Sealed at rest: neither the bytes nor the file's name are kept in clear.
    for needle in ["ICBC receipt 88120", "工商银行回单"] {
        let stored = stored_bytes(&t.db_url("datapush"), "datapush_material", "envelope").await;
        assert!(
            !stored
                .iter()
                .any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())),
            "{needle} in clear"
        );
    }

    // Filed with the material and the measure asked for.
    let file = |record_id: &str, request_id: &str, ids: Vec<String>| FileObjectionRequest {
        request_id: request_id.into(),
        record_id: record_id.into(),
        subject_identifier: who.clone(),
        ground: ObjectionGround::Error as i32,
        statement: "repaid on 31 August: the bank receipt is attached".into(),
        access_code: code.clone(),
        requested_measure: RequestedMeasure::Correct as i32,
        material_ids: ids,
        ..Default::default()
    };
    let objection = anyone
        .file_objection(file(&r1, "m-o1", vec![material.material_id.clone()]))
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    assert_eq!(
        objection.requested_measure,
        RequestedMeasure::Correct as i32
    );
    assert_eq!(objection.materials, vec![material.clone()]);
    // Named once: another objection cannot name it again, nor another record's.
    let again = anyone
        .file_objection(file(&r2, "m-o2", vec![material.material_id.clone()]))
        .await
        .unwrap_err();
    assert_eq!(fields(&again), ["material_ids[0]"], "{again:?}");

    // The agency sees it listed and opens it; the holding authority, stating why.
    let mut agency = client(&t, "agency-kashgar").await;
    let listed = agency
        .list_objections(ListObjectionsRequest {
            open_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .objections;
    let listed = listed
        .iter()
        .find(|o| o.objection_id == objection.objection_id)
        .unwrap();
    assert_eq!(listed.materials, vec![material.clone()]);
    assert_eq!(listed.requested_measure, RequestedMeasure::Correct as i32);
    let (meta, bytes) = open_material(
        &mut agency,
        &objection.objection_id,
        &material.material_id,
        "",
    )
    .await
    .unwrap();
    assert_eq!((meta, bytes), (material.clone(), receipt.clone()));
    let why = desk
        .read_objection_material(ReadObjectionMaterialRequest {
            objection_id: objection.objection_id.clone(),
            material_id: material.material_id.clone(),
            purpose: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&why), ["purpose"], "{why:?}");
    let (_, bytes) = open_material(
        &mut desk,
        &objection.objection_id,
        &material.material_id,
        "checking the agency's handling",
    )
    .await
    .unwrap();
    assert_eq!(bytes, receipt);
    for stranger in ["agency-beijing", "regulator-650100"] {
        let err = open_material(
            &mut client(&t, stranger).await,
            &objection.objection_id,
            &material.material_id,
            "curiosity",
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{stranger}: {err:?}");
    }
    assert_eq!(
        scalar_i64(
            &t.db_url("datapush"),
            "SELECT COUNT(*) FROM datapush_material_read WHERE purpose = 'checking the agency''s handling'"
        )
        .await,
        1
    );

    // A code uploads at most five files.
    for _ in 0..4 {
        upload_material(&mut anyone, &r2, &code, receipt.clone())
            .await
            .unwrap();
    }
    let spent = upload_material(&mut anyone, &r2, &code, receipt.clone())
        .await
        .unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted, "{spent:?}");
    // Eight at once under a new code: five are kept, however they race.
    let code = desk
        .issue_subject_access_code(issue("m-code-2"))
        .await
        .unwrap()
        .into_inner()
        .access_code;
    let tries = (0..8).map(|_| {
        let (mut anyone, code, r2, receipt) =
            (anyone.clone(), code.clone(), r2.clone(), receipt.clone());
        tokio::spawn(async move { upload_material(&mut anyone, &r2, &code, receipt).await })
    });
    let mut kept = 0;
    for outcome in futures::future::join_all(tries).await {
        match outcome.unwrap() {
            Ok(_) => kept += 1,
            Err(e) => assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}"),
        }
    }
    assert_eq!(kept, 5);
    t.stop().await;
}

/// Art. 21 (信息来源…相关使用等情况): a record without its source is refused by field; the subject
/// sees the source of every version, and beside the platform's reads the uses and disclosures
/// the agency recorded, which earn the agency no correction notice of its own record.
async fn the_subject_sees_each_versions_source_and_the_agencys_own_uses(engine: Engine) {
    let Some((t, _clock)) = mesh_at(engine, date!(2026 - 11 - 02)).await else {
        return;
    };
    let who = subject();
    let mut bare = loan("s-1", &who, "2026-09-01", 500.0);
    bare.source = None;
    let acks = push(t.node("agency-kashgar").await, vec![bare])
        .await
        .unwrap();
    assert_eq!(acks[0].result, PushResult::Rejected as i32, "{acks:?}");
    assert!(acks[0].error.starts_with("source.provider: "), "{acks:?}");
    assert!(acks[0].error.contains("source.legal_basis: "), "{acks:?}");

    push(
        t.node("agency-kashgar").await,
        vec![loan("s-1", &who, "2026-09-01", 500.0)],
    )
    .await
    .unwrap();
    let mut second = loan("s-1", &who, "2026-09-01", 450.0);
    second.source = Some(RecordSource {
        provider: "Kashgar Prefecture Housing Provident Fund Centre".into(),
        legal_basis: "《征信业管理条例》第十四条 (a public body's administrative record)".into(),
    });
    let acks = push(t.node("agency-kashgar").await, vec![second.clone()])
        .await
        .unwrap();
    assert_eq!(acks[0].result, PushResult::Updated as i32, "{acks:?}");
    let r1 = record_id(&t, "s-1").await;

    // The agency records that it provided the record to a lender; only its own records.
    let mut agency = client(&t, "agency-kashgar").await;
    let used = RecordAgencyUseRequest {
        request_id: "use-1".into(),
        record_id: r1.clone(),
        purpose: "credit report for a loan application".into(),
        recipient: "Kashi Rural Commercial Bank".into(),
        legal_basis: "the subject's written consent of 2026-11-01".into(),
    };
    let recorded = agency
        .record_agency_use(used.clone())
        .await
        .unwrap()
        .into_inner()
        .r#use
        .unwrap();
    assert!(recorded.recorded_by_agency);
    let missing = agency
        .record_agency_use(RecordAgencyUseRequest {
            request_id: "use-2".into(),
            legal_basis: String::new(),
            ..used.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&missing), ["legal_basis"], "{missing:?}");
    let other = client(&t, "agency-beijing")
        .await
        .record_agency_use(RecordAgencyUseRequest {
            request_id: "use-3".into(),
            ..used.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");
    // The desk reads it for the subject; then the agency corrects it once more.
    let mut desk = client(&t, "regulator-653100").await;
    assert_eq!(
        find(&mut desk, "the subject asked at the desk").await.len(),
        1
    );
    push(
        t.node("agency-kashgar").await,
        vec![loan("s-1", &who, "2026-09-01", 400.0)],
    )
    .await
    .unwrap();
    assert!(
        notices(&mut agency).await.is_empty(),
        "the agency's own use is no read of another's record"
    );
    assert_eq!(notices(&mut desk).await.len(), 1);

    // The subject sees each version's source and both kinds of use.
    let code = desk
        .issue_subject_access_code(IssueSubjectAccessCodeRequest {
            request_id: "s-code".into(),
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_code;
    let report = public(&t)
        .await
        .get_subject_report(GetSubjectReportRequest {
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
            access_code: code,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let record = &report.records[0];
    let providers: Vec<&str> = record
        .history
        .iter()
        .map(|v| v.source.as_ref().unwrap().provider.as_str())
        .collect();
    assert_eq!(
        providers,
        [
            "Kashi Rural Commercial Bank",
            "Kashgar Prefecture Housing Provident Fund Centre",
            "Kashi Rural Commercial Bank",
        ]
    );
    let current = record.record.as_ref().unwrap().record.as_ref().unwrap();
    assert_eq!(
        current.source.as_ref().unwrap().provider,
        "Kashi Rural Commercial Bank"
    );
    let agency_uses: Vec<&RecordUse> = record
        .uses
        .iter()
        .filter(|u| u.recorded_by_agency)
        .collect();
    assert_eq!(agency_uses.len(), 1, "{:?}", record.uses);
    assert_eq!(agency_uses[0].recipient, "Kashi Rural Commercial Bank");
    assert_eq!(
        agency_uses[0].legal_basis,
        "the subject's written consent of 2026-11-01"
    );
    assert!(
        record
            .uses
            .iter()
            .any(|u| !u.recorded_by_agency && u.purpose == "the subject asked at the desk")
    );
    t.stop().await;
}
