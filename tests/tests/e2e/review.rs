//! Review on time and on the rules: tasks routed with working-day deadlines, decisions that
//! reach the filing, forwarding to the region, the severe-dishonesty list.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{FilingStatus, GetFilingRequest};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::*;
use creditmesh_tests::{Engine, TestClock, TestMesh, eventually};
use time::macros::date;
use tonic::Code;
use tonic::transport::Channel;

use super::filing::{
    BEIJING, KASHGAR, application, filed, mesh, mesh_with, pdf, person_id, upload,
};

crate::on_both_engines!(
    a_deadline_spans_the_national_day_break_and_falls_overdue_on_the_right_day,
    a_prefecture_approval_reaches_the_region_and_activates_the_filing,
    listing_the_legal_representative_supervises_the_agency,
    automatic_checks_prefill_refusal_grounds,
    refusing_to_rectify_revokes_and_bars_filing_until_the_ban_ends,
    the_same_seed_draws_the_same_sample,
    the_day_after_the_reports_were_due_revokes_exactly_the_agencies_without_one_once,
    the_cutoff_waits_for_the_calendar_data_of_the_day_reports_are_due,
    outside_the_measures_validity_no_revocation_runs,
    a_finding_names_the_act_and_its_article,
    a_missed_rectification_deadline_is_overdue_not_a_refusal,
    a_new_calendar_file_makes_a_provisional_deadline_final,
);

/// The open task of the Kashgar regulator, once the filing event has arrived.
pub async fn the_task(regulator: &mut ReviewServiceClient<Channel>) -> ReviewTask {
    task_where(regulator, ListReviewTasksRequest::default(), |_| true).await
}

/// The first task `regulator` lists for `request` that `wanted` accepts, once there is one.
pub async fn task_where(
    regulator: &ReviewServiceClient<Channel>,
    request: ListReviewTasksRequest,
    wanted: impl Fn(&ReviewTask) -> bool,
) -> ReviewTask {
    eventually("the review task", Duration::from_secs(30), || {
        let mut r = regulator.clone();
        let request = request.clone();
        let wanted = &wanted;
        async move {
            r.list_review_tasks(request)
                .await
                .ok()?
                .into_inner()
                .tasks
                .into_iter()
                .find(wanted)
        }
    })
    .await
}

/// The status of a filing, as the regional regulator (who sees every filing) reads it.
pub async fn filing_status(t: &TestMesh, filing_id: &str) -> i32 {
    FilingServiceClient::new(t.node("regulator-650000").await)
        .get_filing(GetFilingRequest {
            filing_id: filing_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap()
        .status
}

/// Waits until the filing has `status`, as the agency sees it.
pub async fn reaches(t: &TestMesh, filing_id: &str, status: FilingStatus, what: &str) {
    eventually(what, Duration::from_secs(20), || async move {
        (filing_status(t, filing_id).await == status as i32).then_some(())
    })
    .await;
}

pub async fn submit(t: &TestMesh, request_id: &str) -> String {
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    filed(&mut agency, KASHGAR, "2020-05-01", request_id).await
}

async fn a_deadline_spans_the_national_day_break_and_falls_overdue_on_the_right_day(
    engine: Engine,
) {
    // Friday 18 September 2026: Sunday 20 September is worked, Mid-Autumn (25-27 Sept) and
    // National Day (1-7 Oct) are off.
    let clock = Arc::new(TestClock::at(date!(2026 - 09 - 18)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    submit(&t, "holiday").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let task = the_task(&mut kashgar).await;
    let deadline = task.deadline.clone().unwrap();
    assert_eq!(deadline.from_date, "2026-09-18");
    assert_eq!(deadline.due_date, "2026-10-09");
    assert!(
        !deadline.provisional,
        "Xinjiang's 2026 regional days are known, and nothing open is crossed"
    );
    assert!(!task.overdue);

    let overdue = async |r: &mut ReviewServiceClient<Channel>| {
        r.list_review_tasks(ListReviewTasksRequest {
            overdue_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
        .len()
    };
    // The operations port counts it among the deadlines close at hand, in working days of
    // the calendar: on Wednesday 30 September its due day (Friday 9 October) is the second
    // working day ahead, past the holiday; on Thursday 8 October the first.
    let stop = tokio_util::sync::CancellationToken::new();
    let ops = super::ops::port(&t, &stop).await;
    let gauge = async |name: &str, within: Option<&str>| {
        let mut labels = vec![
            ("service", "review"),
            ("tenant", "653100"),
            ("kind", "filing"),
        ];
        labels.extend(within.map(|w| ("within", w)));
        super::ops::scrape(ops, name, &labels).await
    };
    let due = "creditmesh_deadlines_due";
    clock.set(date!(2026 - 09 - 30));
    assert_eq!(gauge(due, Some("1")).await, None);
    assert_eq!(gauge(due, Some("3")).await, Some(1.0));
    clock.set(date!(2026 - 10 - 08));
    assert_eq!(gauge(due, Some("1")).await, Some(1.0));

    clock.set(date!(2026 - 10 - 09));
    assert_eq!(overdue(&mut kashgar).await, 0, "due today is not overdue");
    assert_eq!(gauge(due, Some("1")).await, Some(1.0), "due today");
    clock.set(date!(2026 - 10 - 10));
    assert_eq!(overdue(&mut kashgar).await, 1, "overdue the day after");
    assert_eq!(gauge("creditmesh_deadlines_overdue", None).await, Some(1.0));
    assert_eq!(gauge(due, Some("3")).await, None);
    stop.cancel();
    let got = kashgar
        .get_review_task(GetReviewTaskRequest {
            task_id: task.task_id,
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert!(got.overdue);
    t.stop().await;
}

async fn a_prefecture_approval_reaches_the_region_and_activates_the_filing(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let filing_id = submit(&t, "approve").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let task = the_task(&mut kashgar).await;
    assert_eq!(task.tenant, "653100");
    assert_eq!(task.filing_id, filing_id);
    assert!(
        task.automatic_checks.is_empty(),
        "{:?}",
        task.automatic_checks
    );

    // Urumqi neither sees nor decides Kashgar's task.
    let mut urumqi = ReviewServiceClient::new(t.node("regulator-650100").await);
    let denied = urumqi
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "u-1".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::NotFound);

    let decided = kashgar
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "k-1".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(decided.status, TaskStatus::Forwarded as i32);

    // The reviewed materials reach the region as an event (Art. 10).
    let region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let arrived = eventually("the forwarded copy", Duration::from_secs(20), || {
        let mut region = region.clone();
        async move {
            let tasks = region
                .list_review_tasks(ListReviewTasksRequest {
                    tenant: "650000".into(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .tasks;
            (!tasks.is_empty()).then_some(tasks)
        }
    })
    .await;
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].forwarded_from_task_id, task.task_id);
    assert_eq!(arrived[0].filing_id, filing_id);

    reaches(&t, &filing_id, FilingStatus::Active, "the filing active").await;
    t.stop().await;
}

pub async fn approve(t: &TestMesh, request_id: &str) -> String {
    let filing_id = submit(t, request_id).await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let task = the_task(&mut kashgar).await;
    kashgar
        .decide_review_task(DecideReviewTaskRequest {
            request_id: format!("{request_id}-decision"),
            task_id: task.task_id,
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();
    reaches(t, &filing_id, FilingStatus::Active, "the filing active").await;
    filing_id
}

async fn listing_the_legal_representative_supervises_the_agency(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let filing_id = approve(&t, "listed").await;
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let unrelated = (0..50u32).map(|i| DishonestyEntry {
        party: ListedParty::Person as i32,
        identifier: person_id(&format!("653101197001{:02}{:03}", i % 28 + 1, i)),
        name: format!("someone {i}"),
        source: "credit china".into(),
        listed_on: "2026-11-01".into(),
    });
    let legal_rep = DishonestyEntry {
        party: ListedParty::Person as i32,
        identifier: person_id("65310119850101123"),
        name: "阿依努尔".into(),
        source: "court enforcement".into(),
        listed_on: "2026-11-20".into(),
    };
    let batches = vec![
        ImportDishonestyListRequest {
            entries: unrelated.collect(),
        },
        ImportDishonestyListRequest {
            entries: vec![legal_rep],
        },
    ];
    let answer = region
        .import_dishonesty_list(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.imported, 51);
    assert!(answer.revoked_filing_ids.is_empty(), "{answer:?}");
    assert_eq!(answer.supervision_task_ids.len(), 1, "{answer:?}");
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32,
        "a listed principal is not Art. 15(1)"
    );
    let file = region
        .get_credit_file(GetCreditFileRequest {
            uscc: KASHGAR.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        file.entries
            .iter()
            .any(|e| e.kind == "supervision" && e.summary.contains("Art. 14"))
    );
    t.stop().await;
}

async fn automatic_checks_prefill_refusal_grounds(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    region
        .upsert_dishonesty_entry(UpsertDishonestyEntryRequest {
            request_id: "gm".into(),
            entry: Some(DishonestyEntry {
                party: ListedParty::Person as i32,
                identifier: person_id("65010219900307123"),
                name: "李四".into(),
                source: "court enforcement".into(),
                listed_on: "2026-10-01".into(),
            }),
        })
        .await
        .unwrap();
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "checks").await;
    req.form.as_mut().unwrap().business_scope = "餐饮服务".into();
    let filing_id = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap()
        .filing_id;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let task = the_task(&mut kashgar).await;
    let grounds: Vec<i32> = task.automatic_checks.iter().map(|c| c.ground).collect();
    assert!(
        grounds.contains(&(RefusalGround::NoCreditServiceInScope as i32)),
        "{task:?}"
    );
    assert!(
        grounds.contains(&(RefusalGround::SevereDishonesty as i32)),
        "{task:?}"
    );
    let evidence = task
        .automatic_checks
        .iter()
        .map(|c| c.evidence.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        evidence.contains(&format!(
            "the general manager 李四 ({})",
            person_id("65010219900307123")
        )),
        "the reviewer sees whom the list names: {evidence}"
    );

    let refused = kashgar
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "refuse".into(),
            task_id: task.task_id.clone(),
            approve: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "a refusal names its grounds and reason"
    );
    kashgar
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "refuse-2".into(),
            task_id: task.task_id,
            approve: false,
            grounds,
            reason: "no credit service in scope; general manager listed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    reaches(&t, &filing_id, FilingStatus::Refused, "the filing refused").await;
    t.stop().await;
}

async fn refusing_to_rectify_revokes_and_bars_filing_until_the_ban_ends(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 03 - 02)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "rectify").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let interview = kashgar
        .record_interview(RecordInterviewRequest {
            request_id: "i-1".into(),
            uscc: KASHGAR.into(),
            held_on: "2026-03-02".into(),
            subject: "fees tied to ratings".into(),
            summary: "the agency was told to stop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry_id;
    // The order follows the interview (Art. 15(2)); it names it.
    let order = kashgar
        .issue_rectification_order(IssueRectificationOrderRequest {
            request_id: "o-1".into(),
            uscc: KASHGAR.into(),
            findings: "ratings promised for fees".into(),
            required_actions: "withdraw the offer".into(),
            working_days: 15,
            interview_entry_id: interview,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.deadline.unwrap().working_days, 15);
    let outcome = kashgar
        .record_rectification_outcome(RecordRectificationOutcomeRequest {
            request_id: "o-1-refused".into(),
            order_id: order.order_id,
            outcome: RectificationOutcome::Refused as i32,
            note: "refused in writing".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.revoked_filing_id, filing_id);
    assert_eq!(outcome.ban_ends_on, "2027-03-02");
    reaches(&t, &filing_id, FilingStatus::Revoked, "the filing revoked").await;

    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let during = application(&mut agency, KASHGAR, "2020-05-01", "during-ban").await;
    let barred = agency.submit_filing(during).await.unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition);
    assert!(
        barred.message().contains("2027-03-02"),
        "{}",
        barred.message()
    );
    clock.set(date!(2027 - 03 - 03));
    let after = application(&mut agency, KASHGAR, "2020-05-01", "after-ban").await;
    let again = agency.submit_filing(after).await.unwrap().into_inner();
    assert_eq!(again.filing.unwrap().status, FilingStatus::Submitted as i32);

    let kinds: Vec<String> = kashgar
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
        .collect();
    for kind in [
        "filing",
        "decision",
        "interview",
        "rectification",
        "revocation",
        "ban",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    t.stop().await;
}

async fn the_same_seed_draws_the_same_sample(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    approve(&t, "draw").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    kashgar
        .set_risk_tier(SetRiskTierRequest {
            request_id: "tier".into(),
            uscc: KASHGAR.into(),
            tier: RiskTier::High as i32,
            reason: "complaints".into(),
        })
        .await
        .unwrap();
    let draw = async |r: &mut ReviewServiceClient<Channel>, request_id: &str, seed: &str| {
        r.draw_spot_check(DrawSpotCheckRequest {
            request_id: request_id.into(),
            tenant: String::new(),
            seed: seed.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .draw
        .unwrap()
    };
    let a = draw(&mut kashgar, "d-1", "2026-11 public seed").await;
    let b = draw(&mut kashgar, "d-2", "2026-11 public seed").await;
    assert_eq!(a.sampled_usccs, b.sampled_usccs);
    assert_eq!(a.population_digest, b.population_digest);
    assert_eq!(a.seed, "2026-11 public seed");
    assert_eq!(
        a.sampled_usccs,
        [KASHGAR],
        "a high-risk tier of one is always drawn"
    );
    let fresh = draw(&mut kashgar, "d-3", "").await;
    assert!(
        !fresh.seed.is_empty(),
        "an empty seed is replaced by a recorded random one"
    );
    let denied = kashgar
        .draw_spot_check(DrawSpotCheckRequest {
            request_id: "d-4".into(),
            tenant: "650100".into(),
            seed: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Each draw, seed included, goes out for publication on the register.
    let disclosure = t.db_url("disclosure");
    eventually("the draws delivered for publication", Duration::from_secs(20), || {
        let url = disclosure.clone();
        async move {
            let n = creditmesh_tests::scalar_i64(
                &url,
                "SELECT COUNT(*) FROM disclosure_inbox WHERE event_type = 'review.spot_check_drawn'",
            )
            .await;
            (n == 3).then_some(())
        }
    })
    .await;
    // ... and the register shows each draw, seed and agencies drawn, to anyone.
    use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
    use creditmesh_proto::disclosure::v1::{ListNoticesRequest, NoticeKind};
    let draws = DisclosureServiceClient::new(t.public().await)
        .list_notices(ListNoticesRequest {
            kinds: vec![NoticeKind::SpotCheckDraw as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices;
    assert_eq!(draws.len(), 3);
    assert!(
        draws[0].text.contains("2026-11 public seed") && draws[0].text.contains(KASHGAR),
        "{}",
        draws[0].text
    );
    assert!(draws[0].text.contains(&a.population_digest));
    t.stop().await;
}

/// A finding names what the agency did and the article that forbids it.
async fn a_finding_names_the_act_and_its_article(engine: Engine) {
    let Some(t) = super::filing::mesh(engine).await else {
        return;
    };
    approve(&t, "finding").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let finding = |request_id: &str, category: FindingCategory| RecordFindingRequest {
        request_id: request_id.into(),
        uscc: KASHGAR.into(),
        category: category as i32,
        description: "a 'priority review' fee charged, not in the published schedule".into(),
        ..Default::default()
    };
    let err = kashgar
        .record_finding(finding("f-0", FindingCategory::Unspecified))
        .await
        .unwrap_err();
    assert_eq!(super::lifecycle::fields(&err), ["category"]);
    for (id, category) in [
        ("f-1", FindingCategory::UnlistedFee),
        ("f-2", FindingCategory::UnauthorisedQuery),
    ] {
        kashgar.record_finding(finding(id, category)).await.unwrap();
    }
    let summaries: Vec<String> = kashgar
        .get_credit_file(GetCreditFileRequest {
            uscc: KASHGAR.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .filter(|e| e.kind == "finding")
        .map(|e| e.summary)
        .collect();
    assert_eq!(
        summaries,
        [
            "finding of prohibited conduct (Art. 19): unlisted_fee",
            "finding of prohibited conduct (Art. 16(3)): unauthorised_query"
        ]
    );
    t.stop().await;
}

/// Art. 32: the Measures in force through 2026 only. In 2027 neither the Art. 11 cut-off
/// nor an Art. 15 revocation by hand revokes anyone.
async fn outside_the_measures_validity_no_revocation_runs(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 12 - 10)));
    let calendar = Arc::new(creditmesh_tests::calendar_2027(&[]));
    let window = creditmesh_domain::measures::Validity::new(date!(2026 - 01 - 01), 1).unwrap();
    let Some(t) = TestMesh::start_configured(engine, clock.clone(), |rt| {
        rt.calendar = calendar;
        rt.measures = Some(window);
    })
    .await
    else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    t.issue(
        "regulator-650000",
        creditmesh_domain::Principal::new(
            creditmesh_domain::PrincipalKind::Regulator,
            creditmesh_domain::tenant::REGION,
            "",
        ),
    );
    let filing = approve(&t, "window").await;
    clock.set(date!(2027 - 07 - 05));
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let err = region
        .revoke_filing(RevokeFilingRequest {
            request_id: "late-revocation".into(),
            filing_id: filing.clone(),
            ground: RevocationGround::UnlicensedCreditReporting as i32,
            reason: "credit reporting without a licence".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("Art. 32"), "{}", err.message());
    cutoff_has_not_run(&t, &filing).await;
    t.stop().await;
}

/// The 2026 cut-off has not run, a while after it could have: `filing` is still active.
async fn cutoff_has_not_run(t: &TestMesh, filing: &str) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        creditmesh_tests::scalar_i64(
            &t.db_url("filing"),
            "SELECT COUNT(*) FROM filing_job WHERE name = 'annual-report-cutoff-2026'"
        )
        .await,
        0,
        "the cut-off has not run"
    );
    assert_eq!(filing_status(t, filing).await, FilingStatus::Active as i32);
}

/// With no calendar data for 2027 the day reports for 2026 are due is a weekday guess: the
/// cut-off does not revoke on it.
async fn the_cutoff_waits_for_the_calendar_data_of_the_day_reports_are_due(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 12 - 10)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing = approve(&t, "no-data").await;
    clock.set(date!(2027 - 07 - 05));
    cutoff_has_not_run(&t, &filing).await;
    t.stop().await;
}

async fn the_day_after_the_reports_were_due_revokes_exactly_the_agencies_without_one_once(
    engine: Engine,
) {
    use creditmesh_proto::common::v1::DocumentRef;
    use creditmesh_proto::filing::v1::{DocumentKind, SubmitAnnualReportRequest};

    // Both agencies file in 2026, so both owe a report for 2026 by 30 June 2027 — here a day
    // off, so the period ends on Thursday 1 July (Civil Code Art. 203).
    let clock = Arc::new(TestClock::at(date!(2026 - 12 - 10)));
    let calendar = Arc::new(creditmesh_tests::calendar_2027(&["2027-06-30"]));
    let in_mesh = calendar.clone();
    let Some(t) =
        TestMesh::start_configured(engine, clock.clone(), |rt| rt.calendar = in_mesh).await
    else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let kashgar_filing = approve(&t, "july-k").await;

    // Beijing files with the region, which approves it itself.
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    let beijing_filing = filed(&mut beijing, BEIJING, "2020-05-01", "july-b").await;
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let task = eventually("the region's task", Duration::from_secs(20), || {
        let mut r = region.clone();
        async move {
            r.list_review_tasks(ListReviewTasksRequest {
                tenant: "650000".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .tasks
            .into_iter()
            .find(|t| t.uscc == BEIJING)
        }
    })
    .await;
    region
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "b-ok".into(),
            task_id: task.task_id,
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // Kashgar reports for 2026 on the last day; Beijing does not.
    clock.set(date!(2027 - 07 - 01));
    let mut kashgar = FilingServiceClient::new(t.node("agency-kashgar").await);
    let market = upload(
        &mut kashgar,
        DocumentKind::MarketRegulationAnnualReport,
        pdf("2026 report"),
    )
    .await
    .unwrap();
    let report = kashgar
        .submit_annual_report(SubmitAnnualReportRequest {
            request_id: "k-2026".into(),
            filing_id: kashgar_filing.clone(),
            year: 2026,
            market_regulation_annual_report: Some(DocumentRef { sha256: market }),
            in_region_business_summary: "ratings in Kashgar".into(),
            projects: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.due_date, "2027-07-01");
    // A second replica of filing on the same database: the cut-off decides from filing's own
    // record of the reports, so it needs no event to have arrived anywhere.
    let review_url = t.db_url("review");
    let filing_url = t.db_url("filing");
    let _replica = t
        .replica("filing", clock.clone(), |rt| rt.calendar = calendar)
        .await;

    // The last day is still in time: nothing is revoked on it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        filing_status(&t, &beijing_filing).await,
        FilingStatus::Active as i32,
        "not revoked on the last day"
    );
    clock.set(date!(2027 - 07 - 02));
    eventually("Beijing revoked", Duration::from_secs(20), || {
        let beijing_filing = beijing_filing.clone();
        let mut b = beijing.clone();
        async move {
            let f = b
                .get_filing(GetFilingRequest {
                    filing_id: beijing_filing,
                })
                .await
                .ok()?
                .into_inner()
                .filing?;
            (f.status == FilingStatus::Revoked as i32).then_some(())
        }
    })
    .await;
    // Both replicas keep ticking; the job still ran once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        creditmesh_tests::scalar_i64(
            &filing_url,
            "SELECT COUNT(*) FROM filing_job WHERE name = 'annual-report-cutoff-2026'"
        )
        .await,
        1
    );
    let url = review_url.clone();
    eventually(
        "the revocation in the credit file",
        Duration::from_secs(20),
        || {
            let url = url.clone();
            async move {
                (creditmesh_tests::scalar_i64(
                    &url,
                    "SELECT COUNT(*) FROM review_credit_file WHERE kind = 'revocation'",
                )
                .await
                    == 1)
                    .then_some(())
            }
        },
    )
    .await;
    let tasks = region
        .list_review_tasks(ListReviewTasksRequest {
            tenant: "650000".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(tasks.iter().all(|t| t.status != TaskStatus::Open as i32));
    assert_eq!(
        filing_status(&t, &kashgar_filing).await,
        FilingStatus::Active as i32
    );
    t.stop().await;
}

async fn a_missed_rectification_deadline_is_overdue_not_a_refusal(engine: Engine) {
    // Monday 2 March 2026; two working days later is Wednesday 4 March.
    let clock = Arc::new(TestClock::at(date!(2026 - 03 - 02)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "missed").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let order = kashgar
        .issue_rectification_order(IssueRectificationOrderRequest {
            request_id: "o-missed".into(),
            uscc: KASHGAR.into(),
            findings: "misleading promotion".into(),
            required_actions: "withdraw the advertisements".into(),
            working_days: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.deadline.unwrap().due_date, "2026-03-04");
    let supervision = async |k: &mut ReviewServiceClient<Channel>| {
        k.list_review_tasks(ListReviewTasksRequest {
            kinds: vec![TaskKind::Supervision as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
    };
    clock.set(date!(2026 - 03 - 04));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        supervision(&mut kashgar).await.is_empty(),
        "due today is not overdue"
    );

    // The day after, the order is overdue: a task for the holding authority, no revocation.
    clock.set(date!(2026 - 03 - 05));
    let task = eventually("the supervision task", Duration::from_secs(20), || {
        let mut k = kashgar.clone();
        async move {
            k.list_review_tasks(ListReviewTasksRequest {
                kinds: vec![TaskKind::Supervision as i32],
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .tasks
            .into_iter()
            .next()
        }
    })
    .await;
    assert!(task.automatic_checks[0].evidence.contains(&order.order_id));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        supervision(&mut kashgar).await.len(),
        1,
        "one task per order"
    );
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32,
        "a deadline passing unanswered is not a refusal to rectify"
    );

    // A refusal needs the interview of Art. 15(2) first.
    let refuse = |request_id: &str| RecordRectificationOutcomeRequest {
        request_id: request_id.into(),
        order_id: order.order_id.clone(),
        outcome: RectificationOutcome::Refused as i32,
        note: "refused in writing".into(),
    };
    let no_interview = kashgar
        .record_rectification_outcome(refuse("refused-1"))
        .await
        .unwrap_err();
    assert_eq!(
        no_interview.code(),
        Code::FailedPrecondition,
        "{no_interview:?}"
    );
    // An interview about something else ties nothing: still no revocation.
    kashgar
        .record_interview(RecordInterviewRequest {
            request_id: "i-0".into(),
            uscc: KASHGAR.into(),
            held_on: "2026-03-05".into(),
            subject: "another matter".into(),
            summary: "staff certificates".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let untied = kashgar
        .record_rectification_outcome(refuse("refused-1b"))
        .await
        .unwrap_err();
    assert_eq!(untied.code(), Code::FailedPrecondition, "{untied:?}");
    // The interview that follows the order names it; then the refusal revokes.
    kashgar
        .record_interview(RecordInterviewRequest {
            request_id: "i-1".into(),
            uscc: KASHGAR.into(),
            held_on: "2026-03-05".into(),
            subject: "the overdue order".into(),
            summary: "the agency said it will not comply".into(),
            order_id: order.order_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let outcome = kashgar
        .record_rectification_outcome(refuse("refused-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(outcome.ban_ends_on, "2027-03-05");
    reaches(&t, &filing_id, FilingStatus::Revoked, "the filing revoked").await;
    t.stop().await;
}

async fn a_new_calendar_file_makes_a_provisional_deadline_final(engine: Engine) {
    // Wednesday 20 May 2026: the 2026 notice leaves open whether a weekend near Eid al-Adha
    // (27-31 May off) is worked, so deadlines across those weekends are provisional.
    let clock = Arc::new(TestClock::at(date!(2026 - 05 - 20)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    approve(&t, "provisional").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let order = kashgar
        .issue_rectification_order(IssueRectificationOrderRequest {
            request_id: "o".into(),
            uscc: KASHGAR.into(),
            findings: "fees not shown".into(),
            required_actions: "publish the fee schedule".into(),
            working_days: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let before = order.deadline.unwrap();
    assert!(before.provisional);
    assert_eq!(before.due_date, "2026-06-08");

    // Past the provisional due date nothing is overdue: it may yet move.
    clock.set(date!(2026 - 06 - 09));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let supervision = async |k: &mut ReviewServiceClient<Channel>| {
        k.list_review_tasks(ListReviewTasksRequest {
            kinds: vec![TaskKind::Supervision as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tasks
        .len()
    };
    assert_eq!(
        supervision(&mut kashgar).await,
        0,
        "a provisional deadline makes nothing overdue"
    );

    // The operator loads the settled 2026 file (Sunday 24 May worked) and review starts
    // again: the order's deadline is recomputed, final and passed, so the order is overdue.
    let _restarted = t
        .replica("review", clock.clone(), |rt| {
            rt.calendar = Arc::new(creditmesh_tests::settled_2026_calendar())
        })
        .await;
    eventually(
        "the order overdue on its final deadline",
        Duration::from_secs(20),
        || {
            let mut k = kashgar.clone();
            async move { (supervision(&mut k).await == 1).then_some(()) }
        },
    )
    .await;
    let due = creditmesh_tests::scalar_i64(
        &t.db_url("review"),
        "SELECT COUNT(*) FROM review_rectification WHERE due_date = '2026-06-05' AND provisional = 0",
    )
    .await;
    assert_eq!(due, 1, "21, 22, 24 (worked), 25, 26 May and 1-5 June");
    t.stop().await;
}
