//! A complaint from the public: validation, idempotency, audit; its holding authority's queue,
//! acceptance with the 15-working-day deadline, and resolution, whose finding against the
//! agency (and nothing else of a complaint) reaches the agency's credit file.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_domain::{Principal, PrincipalKind, Tenant};

use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{
    AcceptComplaintRequest, ComplaintStatus, ListComplaintsRequest, ReadEvidenceRequest,
    ResolveComplaintRequest, SubmitComplaintRequest, TrackComplaintRequest, UploadEvidenceResponse,
};
use creditmesh_proto::review::v1::GetCreditFileRequest;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_tests::{Engine, TestClock, TestMesh, eventually, scalar_i64};
use time::macros::date;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

crate::on_both_engines!(
    a_complaint_is_tracked_and_reaches_the_credit_file,
    invalid_complaint_names_every_bad_field_and_stores_nothing,
    retried_submission_creates_one_complaint,
    every_call_is_audited_with_principal_tenant_and_request_id,
    concurrent_submissions_all_commit,
    prefecture_regulator_sees_only_its_own_tenant,
    a_complaint_goes_to_the_authority_holding_the_filing,
    evidence_is_uploaded_publicly_and_checked_on_its_bytes,
    the_complainant_is_told_by_mail_once_at_each_step,
    uploads_no_complaint_names_are_capped_per_address,
    a_finding_by_another_prefecture_is_in_the_holders_credit_file,
    a_provisional_handling_deadline_waits_for_the_new_years_calendar,
    a_complaint_goes_to_the_place_of_activity_then_the_holder_then_the_region,
);

const KASHGAR_AGENCY: &str = "91653101MA78KT005T";

pub fn complaint(request_id: &str, tenant: &str) -> SubmitComplaintRequest {
    SubmitComplaintRequest {
        request_id: request_id.into(),
        agency_uscc: KASHGAR_AGENCY.into(),
        agency_name: "Kashgar Credit Rating Co.".into(),
        tenant: tenant.into(),
        complainant_name: "Aynur".into(),
        complainant_contact: "aynur@example.org".into(),
        subject: "rating promised for a fee".into(),
        description: "the agency promised an AAA rating if we paid twice the fee".into(),
        evidence: vec![],
        // Kashgar City, where the complainant met the agency.
        place_of_activity: "653101".into(),
    }
}

async fn credit_file_entries(
    channel: Channel,
    uscc: &str,
) -> Result<Vec<creditmesh_proto::review::v1::CreditFileEntry>, tonic::Status> {
    Ok(ReviewServiceClient::new(channel)
        .get_credit_file(GetCreditFileRequest {
            uscc: uscc.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.kind.starts_with("complaint"))
        .collect())
}

async fn a_complaint_is_tracked_and_reaches_the_credit_file(engine: Engine) {
    // Friday 25 September 2026: fifteen working days from here run across the National Day
    // break.
    let clock = Arc::new(TestClock::at(date!(2026 - 09 - 25)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    let mut public = ComplaintServiceClient::new(t.public().await);
    let submitted = public
        .submit_complaint(complaint("c-1", ""))
        .await
        .expect("submitted")
        .into_inner();
    assert!(submitted.tracking_number.starts_with("TS"));
    // Unaddressed, it goes to the Kashgar prefecture, where the agency is registered.
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_complaint WHERE tenant = '653100'"
        )
        .await,
        1
    );
    assert_eq!(submitted.status, ComplaintStatus::Received as i32);
    let track = |public: &mut ComplaintServiceClient<Channel>| {
        let mut public = public.clone();
        let req = TrackComplaintRequest {
            tracking_number: submitted.tracking_number.clone(),
            access_code: submitted.access_code.clone(),
        };
        async move {
            public
                .track_complaint(req)
                .await
                .expect("tracked")
                .into_inner()
        }
    };
    let tracked = track(&mut public).await;
    assert_eq!(tracked.status, ComplaintStatus::Received as i32);
    assert_eq!(tracked.history.len(), 1);
    assert_eq!(
        tracked.history[0].principal, "",
        "officials stay anonymous to the public"
    );
    let wrong = public
        .track_complaint(TrackComplaintRequest {
            tracking_number: submitted.tracking_number.clone(),
            access_code: "WRONG".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::NotFound);

    // Received is not a fact: once delivered, the credit file still shows nothing of it.
    let url = t.db_url("complaints");
    eventually("the event delivered", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM complaints_outbox WHERE delivered_at IS NULL";
            (scalar_i64(&url, sql).await == 0).then_some(())
        }
    })
    .await;
    let region = t.node("regulator-650000").await;
    assert!(
        credit_file_entries(region.clone(), KASHGAR_AGENCY)
            .await
            .unwrap()
            .is_empty()
    );

    // Another prefecture neither sees nor accepts it; the holding authority does.
    let accept = |request_id: &str| AcceptComplaintRequest {
        request_id: request_id.into(),
        tracking_number: submitted.tracking_number.clone(),
    };
    let mut urumqi = ComplaintServiceClient::new(t.node("regulator-650100").await);
    let hidden = urumqi.accept_complaint(accept("a-0")).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound, "{hidden:?}");
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    let queue = kashgar
        .list_complaints(ListComplaintsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .complaints;
    assert_eq!(queue.len(), 1);
    let to_accept = queue[0].acceptance_deadline.clone().unwrap();
    assert_eq!(to_accept.working_days, 5);
    let accept_by = creditmesh_domain::calendar::Calendar::builtin()
        .deadline(
            date!(2026 - 09 - 25),
            5,
            creditmesh_domain::calendar::Layers::Xinjiang,
        )
        .unwrap();
    assert_eq!(
        to_accept.due_date,
        creditmesh_domain::calendar::format_date(accept_by.due)
    );
    assert!(!queue[0].overdue);
    // Past its acceptance deadline, unaccepted, it is in the overdue view.
    let overdue_view = |kashgar: &mut ComplaintServiceClient<Channel>| {
        let mut k = kashgar.clone();
        async move {
            k.list_complaints(ListComplaintsRequest {
                overdue_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .complaints
        }
    };
    assert!(overdue_view(&mut kashgar).await.is_empty());
    clock.set(accept_by.due);
    assert!(
        overdue_view(&mut kashgar).await.is_empty(),
        "the period ends at the end of its last day"
    );
    clock.set(accept_by.due.next_day().unwrap());
    let late = overdue_view(&mut kashgar).await;
    assert_eq!(late.len(), 1);
    assert!(late[0].overdue);
    clock.set(date!(2026 - 09 - 25));
    let accepted = kashgar
        .accept_complaint(accept("a-1"))
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let deadline = accepted.handling_deadline.clone().unwrap();
    let expected = creditmesh_domain::calendar::Calendar::builtin()
        .deadline(
            date!(2026 - 09 - 25),
            15,
            creditmesh_domain::calendar::Layers::Xinjiang,
        )
        .unwrap();
    assert_eq!(deadline.from_date, "2026-09-25");
    assert_eq!(
        deadline.due_date,
        creditmesh_domain::calendar::format_date(expected.due)
    );
    assert!(
        deadline.due_date.as_str() > "2026-10-16",
        "the National Day break is not counted: {}",
        deadline.due_date
    );
    assert!(!deadline.calendar_version.is_empty());
    let again = kashgar.accept_complaint(accept("a-2")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    // A finding against the agency says what it did.
    let unnamed = kashgar
        .resolve_complaint(ResolveComplaintRequest {
            request_id: "r-0".into(),
            tracking_number: submitted.tracking_number.clone(),
            outcome: "upheld".into(),
            verified: "records".into(),
            against_agency: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(super::lifecycle::fields(&unnamed), ["category"]);
    // The finding against the agency, and only it, enters the credit file, as the regulator's.
    let resolved = kashgar
        .resolve_complaint(ResolveComplaintRequest {
            request_id: "r-1".into(),
            tracking_number: submitted.tracking_number.clone(),
            outcome: "the agency offered a rating for a fee; ordered to stop".into(),
            verified: "contract and payment records inspected on site".into(),
            against_agency: true,
            category: creditmesh_proto::review::v1::FindingCategory::PromisedRating as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(resolved.status, ComplaintStatus::Resolved as i32);
    let entries = eventually(
        "the finding in the credit file",
        Duration::from_secs(20),
        || {
            let region = region.clone();
            async move {
                let entries = credit_file_entries(region, KASHGAR_AGENCY).await.ok()?;
                (!entries.is_empty()).then_some(entries)
            }
        },
    )
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "complaint_finding");
    assert!(
        entries[0].principal.ends_with("/regulator/653100"),
        "{}",
        entries[0].principal
    );
    let tracked = track(&mut public).await;
    assert_eq!(tracked.status, ComplaintStatus::Resolved as i32);
    assert_eq!(tracked.outcome, resolved.outcome);
    assert_eq!(
        tracked.handling_deadline.unwrap().due_date,
        deadline.due_date
    );
    t.stop().await;
}

async fn invalid_complaint_names_every_bad_field_and_stores_nothing(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut bad = complaint("c-bad", "110000");
    bad.agency_uscc = "91653101MA78KT005X".into();
    bad.subject = String::new();
    bad.complainant_contact = "call me".into();
    let err = public.submit_complaint(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let mut fields: Vec<String> = details
        .bad_request()
        .expect("google.rpc.BadRequest details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["agency_uscc", "complainant_contact", "subject", "tenant"]
    );
    let url = t.db_url("complaints");
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM complaints_complaint").await,
        0
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM complaints_outbox").await,
        0
    );
    t.stop().await;
}

async fn retried_submission_creates_one_complaint(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let first = public
        .submit_complaint(complaint("same-id", ""))
        .await
        .unwrap()
        .into_inner();
    let again = public
        .submit_complaint(complaint("same-id", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.tracking_number, again.tracking_number);
    assert_eq!(first.access_code, again.access_code);
    // The same id with other content is another complaint, so nobody can fish for a
    // stranger's access code by reusing an id.
    let mut other = complaint("same-id", "");
    other.description = "a different complaint".into();
    let third = public.submit_complaint(other).await.unwrap().into_inner();
    assert_ne!(third.tracking_number, first.tracking_number);
    let url = t.db_url("complaints");
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM complaints_complaint").await,
        2
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM complaints_outbox").await,
        2
    );

    // The stored answers hold no access code in clear, nor the request id.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let stored: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT request_id, response FROM complaints_idempotency")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    for (key, answer) in &stored {
        assert!(!key.contains("same-id"), "{key}");
        for code in [&first.access_code, &third.access_code] {
            assert!(
                !answer.windows(code.len()).any(|w| w == code.as_bytes()),
                "an access code is stored in clear"
            );
        }
    }
    // After the window they are purged, and the same id is a new call.
    let db = creditmesh_storage::Db::connect(&creditmesh_storage::DbConfig {
        url: url.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let later = creditmesh_domain::Clock::now_micros(&creditmesh_domain::SystemClock)
        + creditmesh_storage::sealed::KEEP_MICROS
        + 1;
    let purged = creditmesh_storage::Infra::new("complaints")
        .purge_answers(&db, later)
        .await
        .unwrap();
    assert_eq!(purged, 2);
    t.stop().await;
}

/// Art. 25: what an authority does is attributable to it, as what anyone does is: every call is
/// in the audit trail with its principal, tenant, method, request id and outcome.
async fn every_call_is_audited_with_principal_tenant_and_request_id(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut ok = tonic::Request::new(complaint("audit-1", "653100"));
    ok.metadata_mut()
        .insert("x-request-id", "req-ok-1".parse().unwrap());
    let submitted = public.submit_complaint(ok).await.unwrap().into_inner();
    // The holding authority's officer accepts it: the line names that authority.
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    let mut accept = tonic::Request::new(AcceptComplaintRequest {
        request_id: "audit-accept".into(),
        tracking_number: submitted.tracking_number,
    });
    accept
        .metadata_mut()
        .insert("x-request-id", "req-accept-1".parse().unwrap());
    kashgar.accept_complaint(accept).await.unwrap();
    let mut bad = tonic::Request::new(complaint("", "653100"));
    bad.metadata_mut()
        .insert("x-request-id", "req-bad-1".parse().unwrap());
    public.submit_complaint(bad).await.unwrap_err();

    let url = t.db_url("complaints");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_audit WHERE principal = 'public' AND tenant = '653100' \
             AND method = 'SubmitComplaint' AND request_id = 'req-ok-1' AND outcome = 'ok'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_audit WHERE principal = 'public' \
             AND method = 'SubmitComplaint' AND request_id = 'req-bad-1' AND outcome = 'InvalidArgument'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_audit \
             WHERE principal = 'spiffe://creditmesh.xinjiang/regulator/653100' AND tenant = '653100' \
             AND method = 'AcceptComplaint' AND request_id = 'req-accept-1' AND outcome = 'ok'"
        )
        .await,
        1
    );
    // The consumer audits the applied event under the delivering service's identity.
    eventually("the review audit line", Duration::from_secs(20), || {
        let url = t.db_url("review");
        async move {
            let n = scalar_i64(
                &url,
                "SELECT COUNT(*) FROM review_audit WHERE method = 'events/complaints.complaint_submitted' \
                 AND principal = 'spiffe://creditmesh.xinjiang/service/650000/complaints' AND tenant = '653100'",
            )
            .await;
            (n == 1).then_some(())
        }
    })
    .await;
    t.stop().await;
}

async fn concurrent_submissions_all_commit(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let channel = t.public().await;
    let calls = (0..64).map(|i| {
        let mut client = ComplaintServiceClient::new(channel.clone());
        async move {
            client
                .submit_complaint(complaint(&format!("conc-{i}"), ""))
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    for r in &results {
        assert!(r.is_ok(), "a concurrent write failed: {r:?}");
    }
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_complaint"
        )
        .await,
        64
    );
    // All the same complaint: one stands, the other 63 are linked to it, however they raced.
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_complaint WHERE repeats = ''"
        )
        .await,
        1
    );
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(DISTINCT repeats) FROM complaints_complaint WHERE repeats <> ''"
        )
        .await,
        1
    );
    t.stop().await;
}

async fn prefecture_regulator_sees_only_its_own_tenant(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let urumqi = public
        .submit_complaint(complaint("t-1", "650100"))
        .await
        .unwrap()
        .into_inner();
    let kashgar = public
        .submit_complaint(complaint("t-2", "653100"))
        .await
        .unwrap()
        .into_inner();
    let queue = |name: &'static str, tenant: &'static str| {
        let t = &t;
        async move {
            ComplaintServiceClient::new(t.node(name).await)
                .list_complaints(ListComplaintsRequest {
                    tenant: tenant.into(),
                    ..Default::default()
                })
                .await
                .map(|r| {
                    r.into_inner()
                        .complaints
                        .into_iter()
                        .map(|c| c.tracking_number)
                        .collect::<HashSet<_>>()
                })
        }
    };
    assert_eq!(
        queue("regulator-650000", "").await.unwrap(),
        HashSet::from([
            urumqi.tracking_number.clone(),
            kashgar.tracking_number.clone()
        ])
    );
    assert_eq!(
        queue("regulator-650000", "653100").await.unwrap(),
        HashSet::from([kashgar.tracking_number.clone()])
    );
    assert_eq!(
        queue("regulator-650100", "").await.unwrap(),
        HashSet::from([urumqi.tracking_number.clone()])
    );
    // The same complaint again is linked to the open one; the holding authority sees who
    // complained, the region only masked.
    let again = public
        .submit_complaint(complaint("t-3", "650100"))
        .await
        .unwrap()
        .into_inner();
    let listed = |name: &'static str| {
        let t = &t;
        async move {
            ComplaintServiceClient::new(t.node(name).await)
                .list_complaints(ListComplaintsRequest {
                    tenant: "650100".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .complaints
        }
    };
    let urumqi_view = listed("regulator-650100").await;
    let first = urumqi_view
        .iter()
        .find(|c| c.tracking_number == urumqi.tracking_number)
        .unwrap();
    let repeat = urumqi_view
        .iter()
        .find(|c| c.tracking_number == again.tracking_number)
        .unwrap();
    assert_eq!(repeat.repeats, urumqi.tracking_number);
    assert_eq!((first.repeats.as_str(), first.repeated), ("", 1));
    assert_eq!(first.complainant_contact, "aynur@example.org");
    let region_view = listed("regulator-650000").await;
    assert_eq!(region_view[0].complainant_contact, "a***@example.org");
    assert_eq!(region_view[0].complainant_name, "A****");
    let other = queue("regulator-650100", "653100").await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    let agency = queue("agency", "").await.unwrap_err();
    assert_eq!(agency.code(), Code::PermissionDenied, "{agency:?}");
    t.stop().await;
}

async fn a_complaint_goes_to_the_authority_holding_the_filing(engine: Engine) {
    use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
    use creditmesh_proto::events::v1::{DeliverRequest, Event, RegisterChanged};
    let Some(t) = super::filing::mesh(engine).await else {
        return;
    };
    // An approval tells complaints who holds the filing.
    super::review::approve(&t, "holder").await;
    let url = t.db_url("complaints");
    eventually("the holder known", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM complaints_holder \
                       WHERE uscc = '91653101MA78KT005T' AND tenant = '653100'";
            (scalar_i64(&url, sql).await == 1).then_some(())
        }
    })
    .await;
    // An agency coded in Urumqi whose filing Kashgar holds (it registered its address there).
    const MOVED: &str = "91650102MA7XJ0003G";
    EventSinkServiceClient::new(
        creditmesh_tests::mtls(t.service_addr("complaints"), &t.pki_dir, "service-filing").await,
    )
    .deliver(DeliverRequest {
        event: Some(Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: RegisterChanged::TYPE.into(),
            source: "filing".into(),
            tenant: "653100".into(),
            principal: "spiffe://creditmesh.xinjiang/regulator/653100".into(),
            subject: "f".into(),
            occurred_at: None,
            payload: prost::Message::encode_to_vec(&RegisterChanged {
                filing_id: "f".into(),
                tenant: "653100".into(),
                uscc: MOVED.into(),
                notice: "published".into(),
                status: "active".into(),
                ..Default::default()
            }),
        }),
    })
    .await
    .unwrap();
    let mut public = ComplaintServiceClient::new(t.public().await);
    let about_moved = |request_id: &str, tenant: &str| {
        let mut c = complaint(request_id, tenant);
        c.agency_uscc = MOVED.into();
        c
    };
    public
        .submit_complaint(about_moved("h-1", ""))
        .await
        .unwrap();
    public
        .submit_complaint(about_moved("h-2", "650100"))
        .await
        .unwrap();
    let tenants = |tenant: &'static str| {
        let url = url.clone();
        async move {
            let sql = match tenant {
                "653100" => {
                    "SELECT COUNT(*) FROM complaints_complaint \
                             WHERE agency_uscc = '91650102MA7XJ0003G' AND tenant = '653100'"
                }
                _ => {
                    "SELECT COUNT(*) FROM complaints_complaint \
                      WHERE agency_uscc = '91650102MA7XJ0003G' AND tenant = '650100'"
                }
            };
            scalar_i64(&url, sql).await
        }
    };
    assert_eq!(tenants("653100").await, 1, "unaddressed: to the holder");
    assert_eq!(
        tenants("650100").await,
        1,
        "addressed: where the complainant said"
    );
    t.stop().await;
}

/// Art. 5 (在本行政区域内), Art. 24: a complaint goes where the complainant addressed it, else
/// to the authority of the place where the conduct took place (a county's prefecture, the
/// county recorded), else to the authority holding the agency's filing, else to the region —
/// never by the division a USCC was issued in.
async fn a_complaint_goes_to_the_place_of_activity_then_the_holder_then_the_region(engine: Engine) {
    let Some(t) = super::filing::mesh(engine).await else {
        return;
    };
    super::review::approve(&t, "place").await;
    let url = t.db_url("complaints");
    eventually("the holder known", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM complaints_holder \
                       WHERE uscc = '91653101MA78KT005T' AND tenant = '653100'";
            (scalar_i64(&url, sql).await == 1).then_some(())
        }
    })
    .await;
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut submit = async |id: &str, uscc: &str, place: &str| {
        let mut c = complaint(id, "");
        c.agency_uscc = uscc.into();
        c.place_of_activity = place.into();
        let number = public
            .submit_complaint(c)
            .await
            .map(|r| r.into_inner().tracking_number)?;
        let sql = format!(
            "SELECT tenant || '/' || place FROM complaints_complaint WHERE tracking_number = '{number}'"
        );
        use creditmesh_storage::sqlx::{self, Connection};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let at: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        Ok::<_, tonic::Status>(at)
    };
    const FILED: &str = "91653101MA78KT005T";
    const UNFILED: &str = "91650102MA7XJ0011B";
    // Tianshan District (Urumqi) for the agency Kashgar holds: the place, not the holder.
    assert_eq!(
        submit("p-1", FILED, "650102").await.unwrap(),
        "650100/650102"
    );
    assert_eq!(
        submit("p-2", FILED, "650100").await.unwrap(),
        "650100/650100"
    );
    assert_eq!(submit("p-3", FILED, "").await.unwrap(), "653100/");
    // Not filed, no place named: the region, whatever division the code was issued in.
    assert_eq!(submit("p-4", UNFILED, "").await.unwrap(), "650000/");
    assert_eq!(
        submit("p-5", UNFILED, "653101").await.unwrap(),
        "653100/653101"
    );
    for bad in ["650000", "110101", "6531"] {
        let refused = submit("p-bad", UNFILED, bad).await.unwrap_err();
        assert_eq!(
            super::lifecycle::fields(&refused),
            ["place_of_activity"],
            "{bad}: {refused:?}"
        );
    }
    // The regulator reads where it took place.
    let listed = ComplaintServiceClient::new(t.node("regulator-653100").await)
        .list_complaints(ListComplaintsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .complaints;
    assert!(
        listed.iter().any(|c| c.place_of_activity == "653101"),
        "{listed:?}"
    );
    t.stop().await;
}

pub async fn upload_evidence(
    client: &mut ComplaintServiceClient<Channel>,
    declared: i64,
    bytes: Vec<u8>,
) -> Result<creditmesh_proto::complaints::v1::UploadEvidenceResponse, tonic::Status> {
    use creditmesh_proto::complaints::v1::upload_evidence_request::Part;
    use creditmesh_proto::complaints::v1::{EvidenceMetadata, UploadEvidenceRequest};
    let half = bytes.len() / 2;
    let parts = vec![
        UploadEvidenceRequest {
            part: Some(Part::Metadata(EvidenceMetadata {
                file_name: "receipt.pdf".into(),
                size_bytes: declared,
            })),
        },
        UploadEvidenceRequest {
            part: Some(Part::Chunk(bytes[..half].to_vec())),
        },
        UploadEvidenceRequest {
            part: Some(Part::Chunk(bytes[half..].to_vec())),
        },
    ];
    client
        .upload_evidence(futures::stream::iter(parts))
        .await
        .map(tonic::Response::into_inner)
}

/// A complaint's evidence as `client` reads it: its metadata and its bytes.
pub async fn read_evidence(
    mut client: ComplaintServiceClient<Channel>,
    tracking_number: &str,
    sha256: &str,
    purpose: &str,
) -> Result<(UploadEvidenceResponse, Vec<u8>), tonic::Status> {
    use creditmesh_proto::complaints::v1::read_evidence_response::Part;
    let mut stream = client
        .read_evidence(ReadEvidenceRequest {
            tracking_number: tracking_number.into(),
            sha256: sha256.into(),
            purpose: purpose.into(),
        })
        .await?
        .into_inner();
    let (mut meta, mut bytes) = (None, Vec::new());
    while let Some(m) = stream.message().await? {
        match m.part {
            Some(Part::Metadata(m)) => meta = Some(m),
            Some(Part::Chunk(c)) => bytes.extend_from_slice(&c),
            None => {}
        }
    }
    Ok((meta.expect("the metadata comes first"), bytes))
}

/// Evidence is uploaded on the public listener, checked on its bytes, named by a complaint,
/// and opened by the authority handling the complaint (Art. 24), each read recorded.
async fn evidence_is_uploaded_publicly_and_checked_on_its_bytes(engine: Engine) {
    use creditmesh_proto::common::v1::DocumentRef;
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let receipt = super::filing::pdf("receipt for the promised rating");
    let stored = upload_evidence(&mut public, receipt.len() as i64, receipt.clone())
        .await
        .unwrap();
    assert_eq!(stored.media_type, "application/pdf");
    assert_eq!(stored.size_bytes, receipt.len() as i64);
    let sha = stored.document.unwrap().sha256;
    let mut with_evidence = complaint("e-1", "653100");
    with_evidence.evidence = vec![DocumentRef {
        sha256: sha.clone(),
    }];
    let filed = public
        .submit_complaint(with_evidence)
        .await
        .unwrap()
        .into_inner();

    // The authority handling the complaint opens its evidence, stating why; another
    // prefecture finds no such complaint, and the public cannot read it back.
    for (name, tenant) in [
        ("regulator-653100", "653100"),
        ("regulator-650100", "650100"),
    ] {
        t.issue(
            name,
            creditmesh_domain::Principal::new(
                creditmesh_domain::PrincipalKind::Regulator,
                creditmesh_domain::Tenant::parse(tenant).unwrap(),
                "",
            ),
        );
    }
    let read = |client: ComplaintServiceClient<Channel>, purpose: &'static str| {
        let (number, sha) = (filed.tracking_number.clone(), sha.clone());
        async move { read_evidence(client, &number, &sha, purpose).await }
    };
    let kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    let (meta, bytes) = read(kashgar.clone(), "verifying the complaint")
        .await
        .unwrap();
    assert_eq!(bytes, receipt);
    assert_eq!(meta.media_type, "application/pdf");
    assert_eq!(meta.size_bytes, receipt.len() as i64);
    let err = read(kashgar, "").await.unwrap_err();
    assert_eq!(super::lifecycle::fields(&err), ["purpose"]);
    let urumqi = ComplaintServiceClient::new(t.node("regulator-650100").await);
    let err = read(urumqi, "curiosity").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(read(public.clone(), "mine").await.is_err());
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_evidence_read WHERE purpose = 'verifying the complaint'"
        )
        .await,
        1
    );

    // Evidence nobody uploaded, bytes that are no document, a size that lies: each refused.
    let mut unknown = complaint("e-2", "");
    unknown.evidence = vec![DocumentRef {
        sha256: "ab".repeat(32),
    }];
    let err = public.submit_complaint(unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(super::lifecycle::fields(&err), ["evidence[0].sha256"]);
    let err = upload_evidence(&mut public, 11, b"hello world".to_vec())
        .await
        .unwrap_err();
    let why = |err: &tonic::Status| {
        err.get_error_details()
            .bad_request()
            .map(|b| format!("{:?}", b.field_violations))
            .unwrap_or_default()
    };
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(why(&err).contains("not a PDF"), "{err:?}");
    let err = upload_evidence(&mut public, receipt.len() as i64 + 5, receipt.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(why(&err).contains("were declared"), "{err:?}");
    let err = upload_evidence(&mut public, 20 * 1024 * 1024, receipt)
        .await
        .unwrap_err();
    assert_eq!(super::lifecycle::fields(&err), ["metadata.size_bytes"]);
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_evidence"
        )
        .await,
        1
    );
    t.stop().await;
}

async fn uploads_no_complaint_names_are_capped_per_address(engine: Engine) {
    use creditmesh_complaints::evidence::MAX_PENDING_UPLOADS;
    use creditmesh_proto::common::v1::DocumentRef;
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let public = ComplaintServiceClient::new(t.public().await);
    // Uploads at once from one address: exactly the cap is kept, the rest refused.
    let tries = MAX_PENDING_UPLOADS as usize + 6;
    let uploads = (0..tries).map(|i| {
        let mut public = public.clone();
        tokio::spawn(async move {
            let bytes = super::filing::pdf(&format!("photo {i}"));
            upload_evidence(&mut public, bytes.len() as i64, bytes).await
        })
    });
    let answers: Vec<_> = futures::future::join_all(uploads)
        .await
        .into_iter()
        .map(|j| j.unwrap())
        .collect();
    let kept: Vec<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .map(|a| a.document.clone().unwrap().sha256)
        .collect();
    assert_eq!(kept.len(), MAX_PENDING_UPLOADS as usize);
    for refused in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert!(
            refused.message().contains("no complaint names"),
            "{refused:?}"
        );
    }
    // A complaint naming some of them frees their places.
    let mut naming = complaint("cap-1", "");
    naming.evidence = kept[..2]
        .iter()
        .map(|s| DocumentRef { sha256: s.clone() })
        .collect();
    let mut public = public.clone();
    public.submit_complaint(naming).await.unwrap();
    for i in 0..2 {
        let bytes = super::filing::pdf(&format!("after {i}"));
        upload_evidence(&mut public, bytes.len() as i64, bytes)
            .await
            .unwrap();
    }
    let bytes = super::filing::pdf("one too many");
    let err = upload_evidence(&mut public, bytes.len() as i64, bytes)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    t.stop().await;
}

/// A delivered mail as a standard reader (`mailparse`) shows it — which it must be able to:
/// MIME 1.0, one text/plain part in UTF-8 — as its To and Subject headers and decoded body.
fn readable(raw: &str) -> String {
    use mailparse::MailHeaderMap;
    let mail = mailparse::parse_mail(raw.as_bytes()).expect("a mail a reader parses");
    assert_eq!(
        mail.headers.get_first_value("MIME-Version").as_deref(),
        Some("1.0"),
        "{raw}"
    );
    assert_eq!(mail.ctype.mimetype, "text/plain", "{raw}");
    assert_eq!(
        mail.ctype
            .params
            .get("charset")
            .map(|c| c.to_ascii_lowercase())
            .as_deref(),
        Some("utf-8"),
        "{raw}"
    );
    let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
    format!(
        "To: {}\nSubject: {}\n\n{}",
        header("To"),
        header("Subject"),
        mail.get_body().expect("a body in its charset")
    )
}

async fn the_complainant_is_told_by_mail_once_at_each_step(engine: Engine) {
    let Some((smtp_url, maildir)) = creditmesh_tests::smtp() else {
        return;
    };
    let sms = creditmesh_tests::SmsGateway::start().await;
    let clock = Arc::new(TestClock::now());
    let Some(t) = TestMesh::start_configured(engine, clock, |rt| {
        rt.services.complaints.notifications =
            Arc::new(creditmesh_complaints::NotificationsConfig {
                smtp_url,
                from: "noreply@creditmesh.xinjiang".into(),
                dir: String::new(),
                sms_url: sms.url.clone(),
                sms_token: "t0ken".into(),
            });
    })
    .await
    else {
        return;
    };
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    let address = format!("c{}@example.org", uuid::Uuid::new_v4().simple());
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut told = complaint("m-1", "");
    told.complainant_contact = address.clone();
    let told = public.submit_complaint(told).await.unwrap().into_inner();
    let mut by_phone = complaint("m-2", "");
    by_phone.complainant_contact = "+86 139 1234 5678".into();
    // A contact that is none is refused, naming the field; a report may be anonymous, and a
    // landline is taken (the regulator calls it): neither is sent anything.
    for bad in ["ask at the front desk", "请联系我", "abc"] {
        let mut c = complaint("m-bad", "");
        c.complainant_contact = bad.into();
        let err = public.submit_complaint(c).await.unwrap_err();
        assert_eq!(
            super::lifecycle::fields(&err),
            ["complainant_contact"],
            "{bad}: {err:?}"
        );
    }
    let mut anonymous = complaint("m-4", "");
    anonymous.description = "a fourth matter".into();
    anonymous.complainant_name = String::new();
    anonymous.complainant_contact = String::new();
    let anonymous = public
        .submit_complaint(anonymous)
        .await
        .unwrap()
        .into_inner();
    assert!(!anonymous.access_code.is_empty());
    let mut no_address = complaint("m-3", "");
    no_address.description = "a third matter".into();
    no_address.complainant_contact = "0998-2812345".into();
    let no_address = public
        .submit_complaint(no_address)
        .await
        .unwrap()
        .into_inner();
    let by_phone = public
        .submit_complaint(by_phone)
        .await
        .unwrap()
        .into_inner();
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    for number in [
        &told.tracking_number,
        &by_phone.tracking_number,
        &no_address.tracking_number,
        &anonymous.tracking_number,
    ] {
        kashgar
            .accept_complaint(AcceptComplaintRequest {
                request_id: format!("a-{number}"),
                tracking_number: number.clone(),
            })
            .await
            .unwrap();
    }
    kashgar
        .resolve_complaint(ResolveComplaintRequest {
            request_id: "r-m".into(),
            tracking_number: told.tracking_number.clone(),
            outcome: "the fee was refunded".into(),
            verified: "receipts".into(),
            against_agency: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let mine = || -> Vec<String> {
        creditmesh_tests::maildir_messages(&maildir)
            .iter()
            .filter(|m| m.contains(&address))
            .map(|m| readable(m))
            .collect()
    };
    let mails = eventually("both mails delivered", Duration::from_secs(30), || async {
        let m = mine();
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert!(
        mails.iter().any(|m| m.contains(&format!(
            "Your complaint {} was accepted",
            told.tracking_number
        ))),
        "{mails:?}"
    );
    assert!(
        mails
            .iter()
            .any(|m| m.contains("was resolved: the fee was refunded")),
        "{mails:?}"
    );
    // The Chinese reads as Chinese, subject and body, to a standard reader.
    assert!(
        mails
            .iter()
            .any(|m| m.contains("已受理") && m.contains(&told.tracking_number)),
        "{mails:?}"
    );
    // The complainant who left a mobile number gets a text message through the SMS gateway.
    let texts = eventually("the text message", Duration::from_secs(30), || async {
        let m = sms.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(texts[0].authorization, "Bearer t0ken");
    assert_eq!(texts[0].body["to"], "13912345678");
    let text = texts[0].body["text"].as_str().unwrap();
    assert!(
        text.contains(&by_phone.tracking_number) && text.contains("已受理"),
        "{text}"
    );
    // Once each: nothing is sent again, and the complainant without an address is told
    // through tracking alone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mine().len(), 2);
    assert_eq!(sms.messages().len(), 1);
    let url = t.db_url("complaints");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_notification WHERE sent_at IS NOT NULL"
        )
        .await,
        3
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM complaints_notification").await,
        3
    );
    // The contact stays on the complaint: no notification row holds it.
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_notification WHERE address <> ''"
        )
        .await,
        0
    );
    t.stop().await;
}

/// One credit file per agency: a finding by the authority a complaint was addressed to reaches
/// the file the holding authority reads, naming who wrote it; that authority reads what it
/// wrote, and a third prefecture reads nothing.
async fn a_finding_by_another_prefecture_is_in_the_holders_credit_file(engine: Engine) {
    let Some(t) = super::filing::mesh(engine).await else {
        return;
    };
    for (name, tenant) in [
        ("regulator-650100", "650100"),
        ("regulator-654000", "654000"),
    ] {
        t.issue(
            name,
            Principal::new(PrincipalKind::Regulator, Tenant::parse(tenant).unwrap(), ""),
        );
    }
    super::review::approve(&t, "one-file").await;
    let mut public = ComplaintServiceClient::new(t.public().await);
    let filed = public
        .submit_complaint(complaint("x-1", "650100"))
        .await
        .unwrap()
        .into_inner();
    let mut urumqi = ComplaintServiceClient::new(t.node("regulator-650100").await);
    urumqi
        .accept_complaint(AcceptComplaintRequest {
            request_id: "x-a".into(),
            tracking_number: filed.tracking_number.clone(),
        })
        .await
        .unwrap();
    urumqi
        .resolve_complaint(ResolveComplaintRequest {
            request_id: "x-r".into(),
            tracking_number: filed.tracking_number.clone(),
            outcome: "fees charged outside the published schedule".into(),
            verified: "invoices inspected".into(),
            against_agency: true,
            category: creditmesh_proto::review::v1::FindingCategory::PromisedRating as i32,
        })
        .await
        .unwrap();
    let kashgar = t.node("regulator-653100").await;
    let entries = eventually(
        "the finding in the holder's file",
        Duration::from_secs(20),
        || {
            let kashgar = kashgar.clone();
            async move {
                let entries = credit_file_entries(kashgar, KASHGAR_AGENCY).await.ok()?;
                (!entries.is_empty()).then_some(entries)
            }
        },
    )
    .await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].tenant, "650100");
    assert!(
        entries[0]
            .summary
            .contains("(Art. 13, 16(4): promised_rating)"),
        "{}",
        entries[0].summary
    );
    assert!(
        entries[0].principal.ends_with("/regulator/650100"),
        "{}",
        entries[0].principal
    );
    let all = |name: &'static str| {
        let t = &t;
        async move {
            ReviewServiceClient::new(t.node(name).await)
                .get_credit_file(GetCreditFileRequest {
                    uscc: KASHGAR_AGENCY.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    let holder = all("regulator-653100").await;
    assert!(
        holder.iter().any(|e| e.tenant == "653100") && holder.iter().any(|e| e.tenant == "650100"),
        "the holder reads every entry: {holder:?}"
    );
    let writer = all("regulator-650100").await;
    assert!(
        !writer.is_empty() && writer.iter().all(|e| e.tenant == "650100"),
        "{writer:?}"
    );
    assert!(all("regulator-654000").await.is_empty());
    t.stop().await;
}

/// Fifteen working days from Friday 11 December 2026, before the 2027 calendar is loaded:
/// the handling deadline (1 January 2027) is provisional and shows nothing overdue on
/// 2 January. With the 2027 notice (1 January off) the restarted service computes it again —
/// Monday 4 January, final — and the complaint is overdue from the day after.
async fn a_provisional_handling_deadline_waits_for_the_new_years_calendar(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 12 - 11)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    let submitted = ComplaintServiceClient::new(t.public().await)
        .submit_complaint(complaint("turn-1", ""))
        .await
        .unwrap()
        .into_inner();
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    let accepted = kashgar
        .accept_complaint(AcceptComplaintRequest {
            request_id: "turn-accept".into(),
            tracking_number: submitted.tracking_number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    let deadline = accepted.handling_deadline.unwrap();
    assert_eq!(
        (deadline.due_date.as_str(), deadline.provisional),
        ("2027-01-01", true)
    );
    let overdue = |k: &ComplaintServiceClient<Channel>| {
        let mut k = k.clone();
        async move {
            k.list_complaints(ListComplaintsRequest {
                overdue_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .complaints
        }
    };
    clock.set(date!(2027 - 01 - 02));
    assert!(overdue(&kashgar).await.is_empty());

    let _restarted = t
        .replica("complaints", clock.clone(), |rt| {
            rt.calendar = Arc::new(creditmesh_tests::calendar_2027(&["2027-01-01"]))
        })
        .await;
    let url = t.db_url("complaints");
    eventually(
        "the deadline computed again, final",
        Duration::from_secs(20),
        || async {
            let sql = "SELECT COUNT(*) FROM complaints_complaint WHERE handling_due = '2027-01-04' \
                       AND handling_provisional = 0";
            (scalar_i64(&url, sql).await == 1).then_some(())
        },
    )
    .await;
    clock.set(date!(2027 - 01 - 04));
    assert!(
        overdue(&kashgar).await.is_empty(),
        "its last day is not late"
    );
    clock.set(date!(2027 - 01 - 05));
    let late = overdue(&kashgar).await;
    assert_eq!(late.len(), 1);
    assert!(late[0].overdue);
    t.stop().await;
}
