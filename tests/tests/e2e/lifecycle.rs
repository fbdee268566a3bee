//! The filing lifecycle to the letter of the Measures, through the gateway: each test names
//! the article whose reading it pins down.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{
    ApplicationForm, DeregistrationReason, DocumentKind, FilingStatus, GetFilingRequest,
    RequestDeregistrationRequest, SubmitChangeRequest,
};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::*;
use creditmesh_tests::{Engine, TestClock, TestMesh, eventually, scalar_i64};
use time::macros::date;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::filing::{
    BEIJING, KASHGAR, application, filed, mesh, mesh_with, pdf, person_id, review_says, upload,
};
use super::review::{approve, filing_status, reaches, submit};

crate::on_both_engines!(
    a_listed_principal_bars_approval_and_nothing_revives_a_closed_filing,
    art_15_1_revokes_the_listed_agency_and_supervises_a_listed_principal,
    every_art_15_revocation_restricts_refiling_through_the_anniversary,
    deregistration_starts_with_the_agency_and_its_decision_drives_the_status,
    a_change_is_reviewed_as_a_filing_is,
    a_change_is_late_exactly_after_its_due_date,
    the_one_year_exemption_of_art_8_5_ends_with_the_anniversary,
    an_oversized_message_is_resource_exhausted,
    the_registered_address_routes_the_review,
    concurrent_writers_each_get_their_place_in_the_history,
    nothing_is_counted_outside_the_validity_of_the_measures,
    a_provisional_change_deadline_becomes_final_with_new_calendar_data,
    the_region_alone_keeps_the_list_and_a_tier_is_the_holders,
    a_page_token_no_list_gave_out_is_refused,
    a_credit_file_comes_in_bounded_pages,
);

const LEGAL_REP: &str = "65310119850101123";
const CHAIR: &str = "65310119800202234";
const GENERAL_MANAGER: &str = "65010219900307123";

fn person_entry(first17: &str, name: &str) -> DishonestyEntry {
    DishonestyEntry {
        party: ListedParty::Person as i32,
        identifier: person_id(first17),
        name: name.into(),
        source: "court enforcement".into(),
        listed_on: "2026-11-01".into(),
    }
}

async fn list(
    region: &mut ReviewServiceClient<Channel>,
    id: &str,
    entry: DishonestyEntry,
) -> UpsertDishonestyEntryResponse {
    region
        .upsert_dishonesty_entry(UpsertDishonestyEntryRequest {
            request_id: id.into(),
            entry: Some(entry),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The first task of `kind` with `status` that `regulator` sees in `tenant`, once it exists.
async fn task_of(
    regulator: &ReviewServiceClient<Channel>,
    tenant: &str,
    kind: TaskKind,
    status: TaskStatus,
) -> ReviewTask {
    let request = ListReviewTasksRequest {
        tenant: tenant.to_owned(),
        kinds: vec![kind as i32],
        statuses: vec![status as i32],
        ..Default::default()
    };
    super::review::task_where(regulator, request, |_| true).await
}

async fn decide(
    regulator: &mut ReviewServiceClient<Channel>,
    request: DecideReviewTaskRequest,
) -> Result<ReviewTask, tonic::Status> {
    regulator
        .decide_review_task(request)
        .await
        .map(|r| r.into_inner().task.unwrap())
}

async fn history(t: &TestMesh, agency: &str, filing_id: &str) -> Vec<(String, String)> {
    FilingServiceClient::new(t.node(agency).await)
        .get_filing(GetFilingRequest {
            filing_id: filing_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap()
        .history
        .into_iter()
        .map(|h| (h.status, h.note))
        .collect()
}

async fn credit_kinds(regulator: &mut ReviewServiceClient<Channel>, uscc: &str) -> Vec<String> {
    regulator
        .get_credit_file(GetCreditFileRequest {
            uscc: uscc.into(),
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

pub fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// Art. 9(2) binds the decision, re-checked when it is taken; a listing during review revokes
/// nothing; a late decision event changes nothing on a closed filing.
async fn a_listed_principal_bars_approval_and_nothing_revives_a_closed_filing(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);

    // Listed before the application: the check names the hit and approval is refused.
    list(&mut region, "lr", person_entry(LEGAL_REP, "阿依努尔")).await;
    let filing_id = submit(&t, "k-listed").await;
    let task = task_of(&kashgar, "", TaskKind::Filing, TaskStatus::Open).await;
    assert!(
        task.automatic_checks
            .iter()
            .any(|c| c.ground == RefusalGround::SevereDishonesty as i32),
        "{task:?}"
    );
    let barred = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "k-approve".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition, "{barred:?}");
    assert!(
        barred.message().contains("Art. 9(2)"),
        "{}",
        barred.message()
    );
    assert!(
        barred.message().contains(&format!(
            "the legal representative 阿依努尔 ({})",
            person_id(LEGAL_REP)
        )),
        "the regulator deciding sees whom the list names: {}",
        barred.message()
    );
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Submitted as i32
    );

    // Once the listing is removed, nothing bars approval.
    region
        .remove_dishonesty_entry(RemoveDishonestyEntryRequest {
            request_id: "lr-off".into(),
            identifier: person_id(LEGAL_REP),
            reason: "repaid".into(),
        })
        .await
        .unwrap();
    let approved = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "k-approve-2".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(approved.status, TaskStatus::Forwarded as i32);
    reaches(&t, &filing_id, FilingStatus::Active, "Kashgar active").await;

    // Listed while the application is under review: an Art. 9(2) hit, no revocation.
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    let beijing_filing = filed(&mut beijing, BEIJING, "2020-05-01", "b-1").await;
    let task = task_of(&region, "650000", TaskKind::Filing, TaskStatus::Open).await;
    assert!(task.automatic_checks.is_empty(), "{task:?}");
    let listed = list(&mut region, "gm", person_entry(GENERAL_MANAGER, "李四")).await;
    assert!(listed.revoked_filing_ids.is_empty(), "{listed:?}");
    // Kashgar's filing, active and naming the same general manager, goes to supervision.
    assert_eq!(listed.supervision_task_ids.len(), 1, "{listed:?}");
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32
    );
    let task = region
        .get_review_task(GetReviewTaskRequest {
            task_id: task.task_id,
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(task.status, TaskStatus::Open as i32);
    assert!(
        task.automatic_checks
            .iter()
            .any(|c| c.ground == RefusalGround::SevereDishonesty as i32),
        "the new hit is on the open task: {task:?}"
    );
    let barred = decide(
        &mut region,
        DecideReviewTaskRequest {
            request_id: "b-approve".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition);
    decide(
        &mut region,
        DecideReviewTaskRequest {
            request_id: "b-refuse".into(),
            task_id: task.task_id.clone(),
            grounds: vec![RefusalGround::SevereDishonesty as i32],
            reason: "the general manager is listed".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("Beijing refused", Duration::from_secs(20), || {
        let mut b = beijing.clone();
        let filing_id = beijing_filing.clone();
        async move {
            let f = b
                .get_filing(GetFilingRequest { filing_id })
                .await
                .ok()?
                .into_inner()
                .filing?;
            (f.status == FilingStatus::Refused as i32).then_some(())
        }
    })
    .await;

    // A decision that arrives late or twice changes nothing: the refused filing stays refused,
    // and the event is audited as not applied.
    review_says(
        &t,
        "650000",
        creditmesh_proto::events::v1::FilingDecided {
            filing_id: beijing_filing.clone(),
            approved: true,
            ..Default::default()
        },
    )
    .await;
    let statuses: Vec<String> = history(&t, "agency-beijing", &beijing_filing)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, ["submitted", "refused"]);
    assert_eq!(
        scalar_i64(
            &t.db_url("filing"),
            "SELECT COUNT(*) FROM filing_audit WHERE outcome = 'not_applied'"
        )
        .await,
        1
    );
    t.stop().await;
}

/// Art. 15(1) revokes when the agency itself is listed; a listed principal of an active agency
/// is a matter for supervision.
async fn art_15_1_revokes_the_listed_agency_and_supervises_a_listed_principal(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let filing_id = approve(&t, "k").await;
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);

    let listed = list(&mut region, "chair", person_entry(CHAIR, "王五")).await;
    assert!(listed.revoked_filing_ids.is_empty(), "{listed:?}");
    assert_eq!(listed.supervision_task_ids.len(), 1, "{listed:?}");
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32
    );
    let task = task_of(&kashgar, "", TaskKind::Supervision, TaskStatus::Open).await;
    assert_eq!(task.task_id, listed.supervision_task_ids[0]);
    assert_eq!(task.uscc, KASHGAR);
    assert!(
        task.deadline.is_none(),
        "supervision has no statutory deadline"
    );
    assert!(
        credit_kinds(&mut kashgar, KASHGAR)
            .await
            .contains(&"supervision".to_owned())
    );

    let unexplained = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "close-1".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(unexplained.code(), Code::InvalidArgument);
    assert_eq!(fields(&unexplained), ["reason"]);
    let closed = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "close-2".into(),
            task_id: task.task_id.clone(),
            approve: true,
            reason: "the chair resigned; interview held".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(closed.status, TaskStatus::Closed as i32);

    // Art. 15(1) by hand needs the agency on the list.
    let not_listed = kashgar
        .revoke_filing(RevokeFilingRequest {
            request_id: "r-1".into(),
            filing_id: filing_id.clone(),
            ground: RevocationGround::SevereDishonesty as i32,
            reason: "listed".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        not_listed.code(),
        Code::FailedPrecondition,
        "{not_listed:?}"
    );

    let listed = list(
        &mut region,
        "agency",
        DishonestyEntry {
            party: ListedParty::Organisation as i32,
            identifier: KASHGAR.into(),
            name: "the agency".into(),
            source: "market regulation".into(),
            listed_on: "2026-11-02".into(),
        },
    )
    .await;
    assert_eq!(listed.revoked_filing_ids, std::slice::from_ref(&filing_id));
    reaches(&t, &filing_id, FilingStatus::Revoked, "Kashgar revoked").await;
    let kinds = credit_kinds(&mut kashgar, KASHGAR).await;
    for kind in ["revocation", "ban"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    t.stop().await;
}

/// The restriction of Art. 15's last paragraph follows every Art. 15 revocation, and ends
/// with the end of the anniversary (Civil Code Art. 201-203).
async fn every_art_15_revocation_restricts_refiling_through_the_anniversary(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 03 - 02)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "k").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let revoke = |request_id: &str, ground: RevocationGround| RevokeFilingRequest {
        request_id: request_id.into(),
        filing_id: filing_id.clone(),
        ground: ground as i32,
        reason: "found by inspection".into(),
        ..Default::default()
    };
    let by_hand = kashgar
        .revoke_filing(revoke("r-11", RevocationGround::NoAnnualReport))
        .await
        .unwrap_err();
    assert_eq!(by_hand.code(), Code::FailedPrecondition);
    assert!(
        by_hand.message().contains("Art. 11"),
        "{}",
        by_hand.message()
    );
    let no_procedure = kashgar
        .revoke_filing(revoke("r-15-2", RevocationGround::RefusedRectification))
        .await
        .unwrap_err();
    assert_eq!(no_procedure.code(), Code::FailedPrecondition);
    assert!(
        no_procedure.message().contains("Art. 15(2)"),
        "{}",
        no_procedure.message()
    );
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32
    );

    let revoked = kashgar
        .revoke_filing(revoke(
            "r-15-3",
            RevocationGround::UnlicensedCreditReporting,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.ban_ends_on, "2027-03-02");
    reaches(&t, &filing_id, FilingStatus::Revoked, "revoked").await;
    let kinds = credit_kinds(&mut kashgar, KASHGAR).await;
    for kind in ["revocation", "ban", "referral"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }

    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    clock.set(date!(2027 - 03 - 02));
    let on_the_anniversary = application(&mut agency, KASHGAR, "2020-05-01", "again-1").await;
    let barred = agency.submit_filing(on_the_anniversary).await.unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition);
    assert!(
        barred.message().contains("2027-03-03"),
        "{}",
        barred.message()
    );
    clock.set(date!(2027 - 03 - 03));
    let next_day = application(&mut agency, KASHGAR, "2020-05-01", "again-2").await;
    let again = agency.submit_filing(next_day).await.unwrap().into_inner();
    assert_eq!(again.filing.unwrap().status, FilingStatus::Submitted as i32);
    t.stop().await;
}

/// Art. 18: the agency applies, the holding authority decides, and only an approved
/// deregistration is completed by the disposal record. The 1 July cut-off spares an agency
/// that applied to deregister.
async fn deregistration_starts_with_the_agency_and_its_decision_drives_the_status(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 12 - 10)));
    let calendar = Arc::new(creditmesh_tests::calendar_2027(&[]));
    let Some(t) =
        TestMesh::start_configured(engine, clock.clone(), |rt| rt.calendar = calendar).await
    else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "k").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let disposal = |request_id: &str| RecordDisposalRequest {
        request_id: request_id.into(),
        filing_id: filing_id.clone(),
        disposed_on: "2027-06-20".into(),
        method: "secure erasure".into(),
        supervised_by: "Kashgar DRC".into(),
    };
    let unasked = kashgar.record_disposal(disposal("d-0")).await.unwrap_err();
    assert_eq!(unasked.code(), Code::FailedPrecondition, "{unasked:?}");
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Active as i32
    );

    clock.set(date!(2027 - 06 - 20));
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let plan = upload(&mut agency, DocumentKind::DisposalPlan, pdf("plan"))
        .await
        .unwrap();
    let request = |request_id: &str| RequestDeregistrationRequest {
        request_id: request_id.into(),
        filing_id: filing_id.clone(),
        reason: DeregistrationReason::Dissolution as i32,
        reason_detail: String::new(),
        disposal_plan: Some(DocumentRef {
            sha256: plan.clone(),
        }),
    };
    agency
        .request_deregistration(request("dr-1"))
        .await
        .unwrap();
    let task = task_of(&kashgar, "", TaskKind::Deregistration, TaskStatus::Open).await;
    let early = kashgar.record_disposal(disposal("d-1")).await.unwrap_err();
    assert_eq!(
        early.code(),
        Code::FailedPrecondition,
        "not yet approved: {early:?}"
    );

    // The cut-off of 1 July 2027 (no report for 2026) spares the deregistering agency.
    clock.set(date!(2027 - 07 - 01));
    let filing_url = t.db_url("filing");
    eventually("the 2026 cut-off ran", Duration::from_secs(20), || {
        let url = filing_url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM filing_job WHERE name = 'annual-report-cutoff-2026'";
            (scalar_i64(&url, sql).await == 1).then_some(())
        }
    })
    .await;
    assert_eq!(
        filing_status(&t, &filing_id).await,
        FilingStatus::Deregistering as i32
    );

    // A refusal cites Art. 18, not Art. 9, and returns the filing to active with its reason.
    let wrong_article = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "refuse-9".into(),
            task_id: task.task_id.clone(),
            grounds: vec![RefusalGround::FalseInformation as i32],
            reason: "still trading".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(wrong_article.code(), Code::InvalidArgument);
    let mut named = fields(&wrong_article);
    named.sort();
    assert_eq!(named, ["deregistration_grounds", "grounds"]);
    // "Still operating" is no ground Art. 18 gives: the application says the agency stops.
    #[allow(deprecated)]
    let still_operating = DeregistrationRefusalGround::StillOperating as i32;
    let not_a_ground = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "refuse-18-0".into(),
            task_id: task.task_id.clone(),
            deregistration_grounds: vec![still_operating],
            reason: "still trading under its own name".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(fields(&not_a_ground), ["deregistration_grounds[0]"]);
    decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "refuse-18".into(),
            task_id: task.task_id.clone(),
            deregistration_grounds: vec![
                DeregistrationRefusalGround::DisposalPlanInadequate as i32,
            ],
            reason: "the plan does not say how the database is erased".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    reaches(&t, &filing_id, FilingStatus::Active, "back to active").await;
    assert!(
        history(&t, "agency-kashgar", &filing_id)
            .await
            .iter()
            .any(|(s, n)| s == "active" && n.contains("how the database is erased")),
    );

    agency
        .request_deregistration(request("dr-2"))
        .await
        .unwrap();
    let task = task_of(&kashgar, "", TaskKind::Deregistration, TaskStatus::Open).await;
    decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "approve".into(),
            task_id: task.task_id,
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    kashgar.record_disposal(disposal("d-2")).await.unwrap();
    reaches(&t, &filing_id, FilingStatus::Deregistered, "deregistered").await;
    t.stop().await;
}

fn change(
    filing_id: &str,
    request_id: &str,
    changed_on: &str,
    docs: Vec<DocumentRef>,
    gm: Option<&str>,
) -> SubmitChangeRequest {
    SubmitChangeRequest {
        request_id: request_id.into(),
        filing_id: filing_id.into(),
        changed_on: changed_on.into(),
        changed_facts: Some(ApplicationForm {
            general_manager: gm.map(|id| creditmesh_proto::common::v1::Person {
                name: "新经理".into(),
                identity_number: person_id(id),
                ..Default::default()
            }),
            registered_address: if gm.is_none() {
                "新疆喀什地区喀什市解放路2号".into()
            } else {
                String::new()
            },
            ..Default::default()
        }),
        supporting_documents: docs,
        description: "board resolution".into(),
    }
}

/// Art. 12: a change takes its materials, is checked as Art. 9 checks a filing, is forwarded to
/// the region when a prefecture approves it, and an approved change of principal is what later
/// listings are checked against.
async fn a_change_is_reviewed_as_a_filing_is(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let filing_id = approve(&t, "k").await;
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let today = creditmesh_domain::calendar::format_date(super::filing::today());

    let bare = agency
        .submit_change(change(
            &filing_id,
            "c-0",
            &today,
            vec![],
            Some("65010219920101123"),
        ))
        .await
        .unwrap_err();
    assert_eq!(bare.code(), Code::InvalidArgument);
    assert_eq!(fields(&bare), ["supporting_documents"]);

    let listed_gm = "65010219880808123";
    list(&mut region, "new-gm", person_entry(listed_gm, "赵六")).await;
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("resolution"))
            .await
            .unwrap(),
    };
    agency
        .submit_change(change(
            &filing_id,
            "c-1",
            &today,
            vec![materials.clone()],
            Some(listed_gm),
        ))
        .await
        .unwrap();
    let task = task_of(&kashgar, "", TaskKind::Change, TaskStatus::Open).await;
    assert!(
        task.automatic_checks
            .iter()
            .any(|c| c.ground == RefusalGround::SevereDishonesty as i32),
        "{task:?}"
    );
    let barred = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "c-1-approve".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition);
    let wrong_article = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "c-1-refuse-9".into(),
            task_id: task.task_id.clone(),
            grounds: vec![RefusalGround::SevereDishonesty as i32],
            reason: "listed".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(wrong_article.code(), Code::InvalidArgument);
    decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "c-1-refuse".into(),
            task_id: task.task_id.clone(),
            change_grounds: vec![ChangeRefusalGround::SevereDishonesty as i32],
            reason: "the new general manager is listed".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let clean_gm = "65010219920101123";
    agency
        .submit_change(change(
            &filing_id,
            "c-2",
            &today,
            vec![materials],
            Some(clean_gm),
        ))
        .await
        .unwrap();
    let task = task_of(&kashgar, "", TaskKind::Change, TaskStatus::Open).await;
    let decided = decide(
        &mut kashgar,
        DecideReviewTaskRequest {
            request_id: "c-2-approve".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(decided.status, TaskStatus::Forwarded as i32);
    let copy = task_of(&region, "650000", TaskKind::Change, TaskStatus::Forwarded).await;
    assert_eq!(copy.forwarded_from_task_id, task.task_id);
    eventually(
        "the new general manager on file",
        Duration::from_secs(20),
        || {
            let mut a = agency.clone();
            let filing_id = filing_id.clone();
            async move {
                let f = a
                    .get_filing(GetFilingRequest { filing_id })
                    .await
                    .ok()?
                    .into_inner()
                    .filing?;
                (f.form?.general_manager?.identity_number == person_id(clean_gm)).then_some(())
            }
        },
    )
    .await;

    // Listings are checked against the principals as changed.
    let old = list(&mut region, "old-gm", person_entry(GENERAL_MANAGER, "李四")).await;
    assert!(old.supervision_task_ids.is_empty(), "{old:?}");
    let new = list(&mut region, "clean-gm", person_entry(clean_gm, "新经理")).await;
    assert_eq!(new.supervision_task_ids.len(), 1, "{new:?}");
    assert!(new.revoked_filing_ids.is_empty());
    t.stop().await;
}

/// Art. 12: late exactly when submitted after the due date; the deadline's provisional flag
/// is kept.
async fn a_change_is_late_exactly_after_its_due_date(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 11 - 27)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "k").await;
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("lease"))
            .await
            .unwrap(),
    };
    let on_time = agency
        .submit_change(change(
            &filing_id,
            "c-fri",
            "2026-11-01",
            vec![materials.clone()],
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    let deadline = on_time.submission_deadline.unwrap();
    assert_eq!(deadline.due_date, "2026-11-27");
    assert!(!deadline.provisional);
    assert!(!on_time.late, "submitted on the due date");

    // Saturday 28 November: no working day has passed since the due date, yet it is past.
    clock.set(date!(2026 - 11 - 28));
    let saturday = agency
        .submit_change(change(
            &filing_id,
            "c-sat",
            "2026-11-01",
            vec![materials],
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saturday.submission_deadline.unwrap().due_date, "2026-11-27");
    assert!(saturday.late, "submitted after the due date");
    t.stop().await;
}

/// Art. 8(5): an agency registered on 2025-11-27 is "未满一年" through 2026-11-27.
async fn the_one_year_exemption_of_art_8_5_ends_with_the_anniversary(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 11 - 28)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2025-11-27", "one-year").await;
    req.annual_credit_service_report = None;
    let due = agency.submit_filing(req.clone()).await.unwrap_err();
    assert_eq!(due.code(), Code::InvalidArgument);
    assert_eq!(fields(&due), ["annual_credit_service_report"]);
    clock.set(date!(2026 - 11 - 27));
    let exempt = agency.submit_filing(req).await.unwrap().into_inner();
    assert_eq!(
        exempt.filing.unwrap().status,
        FilingStatus::Submitted as i32
    );
    t.stop().await;
}

/// A message over the limit is `RESOURCE_EXHAUSTED`, anonymous or not.
async fn an_oversized_message_is_resource_exhausted(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "big").await;
    req.form.as_mut().unwrap().business_scope = "信用".repeat(1_500_000);
    let err = agency.submit_filing(req).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert_eq!(
        scalar_i64(&t.db_url("filing"), "SELECT COUNT(*) FROM filing_filing").await,
        0
    );
    t.stop().await;
}

/// Art. 10: the authority of the registered address (注册地) reviews, whatever division the
/// USCC was issued in; the disagreement is shown to the reviewer.
async fn the_registered_address_routes_the_review(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "moved").await;
    for (code, why) in [
        ("653100", "prefecture-level"),
        ("653900", "no such prefecture"),
        ("", "missing"),
    ] {
        req.form.as_mut().unwrap().registered_division = code.into();
        let err = agency.submit_filing(req.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{why}");
        assert_eq!(fields(&err), ["form.registered_division"], "{why}");
    }
    // Registered in Urumqi's Tianshan district, with a code issued in Kashgar.
    req.form.as_mut().unwrap().registered_division = "650102".into();
    let filing = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(filing.tenant, "650100");
    assert_eq!(filing.reviewing_tenant, "650100");
    let urumqi = ReviewServiceClient::new(t.node("regulator-650100").await);
    let task = task_of(&urumqi, "", TaskKind::Filing, TaskStatus::Open).await;
    assert_eq!(task.filing_id, filing.filing_id);
    assert!(
        task.automatic_checks
            .iter()
            .any(|c| c.evidence.contains("650102") && c.evidence.contains("653101")),
        "the reviewer sees the disagreement: {task:?}"
    );
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let none = kashgar
        .list_review_tasks(ListReviewTasksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(none.is_empty(), "{none:?}");
    t.stop().await;
}

/// History entries written at once (here: twenty changes of one filing) all land, each with a
/// number of its own.
async fn concurrent_writers_each_get_their_place_in_the_history(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let filing_id = approve(&t, "k").await;
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("minutes"))
            .await
            .unwrap(),
    };
    let today = creditmesh_domain::calendar::format_date(super::filing::today());
    let calls = (0..20).map(|i| {
        let mut a = agency.clone();
        let req = change(
            &filing_id,
            &format!("c-{i}"),
            &today,
            vec![materials.clone()],
            None,
        );
        tokio::spawn(async move { a.submit_change(req).await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    let entries = history(&t, "agency-kashgar", &filing_id).await;
    assert_eq!(
        entries
            .iter()
            .filter(|(_, n)| n.contains("submitted"))
            .count(),
        20,
        "{entries:?}"
    );
    t.stop().await;
}

/// Art. 32: the Measures are in force for five years from a configured date; no deadline
/// starts outside that window.
async fn nothing_is_counted_outside_the_validity_of_the_measures(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 02 - 28)));
    let validity = creditmesh_domain::measures::Validity::new(date!(2026 - 03 - 01), 5).unwrap();
    let Some(t) =
        TestMesh::start_configured(engine, clock.clone(), |rt| rt.measures = Some(validity)).await
    else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let req = application(&mut agency, KASHGAR, "2020-05-01", "early").await;
    let early = agency.submit_filing(req.clone()).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(
        early.message().contains("2026-03-01"),
        "{}",
        early.message()
    );
    clock.set(date!(2031 - 03 - 01));
    let late = agency.submit_filing(req.clone()).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(late.message().contains("2031-02-28"), "{}", late.message());
    clock.set(date!(2031 - 02 - 28));
    let last_day = agency.submit_filing(req).await.unwrap().into_inner();
    assert_eq!(
        last_day.filing.unwrap().status,
        FilingStatus::Submitted as i32
    );
    t.stop().await;
}

/// Art. 12 due dates computed across an open point of the calendar are recomputed when the
/// data arrives, and so is the lateness that rests on them.
async fn a_provisional_change_deadline_becomes_final_with_new_calendar_data(engine: Engine) {
    let clock = Arc::new(TestClock::at(date!(2026 - 05 - 20)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    let Some(t) = mesh_with(t) else { return };
    let filing_id = approve(&t, "k").await;
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("lease"))
            .await
            .unwrap(),
    };
    clock.set(date!(2026 - 06 - 23));
    let answer = agency
        .submit_change(change(&filing_id, "c", "2026-05-20", vec![materials], None))
        .await
        .unwrap()
        .into_inner();
    let deadline = answer.submission_deadline.unwrap();
    assert_eq!(deadline.due_date, "2026-06-23");
    assert!(deadline.provisional);
    assert!(!answer.late, "submitted on the (provisional) due date");

    // The settled 2026 file works Sunday 24 May: the due date is a day earlier, and final.
    let _restarted = t
        .replica("filing", clock.clone(), |rt| {
            rt.calendar = Arc::new(creditmesh_tests::settled_2026_calendar())
        })
        .await;
    let url = t.db_url("filing");
    eventually("the recomputed due date", Duration::from_secs(20), || {
        let url = url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM filing_change WHERE due_date = '2026-06-22' \
                       AND due_provisional = 0 AND late = 1";
            (scalar_i64(&url, sql).await == 1).then_some(())
        }
    })
    .await;
    t.stop().await;
}

/// Region-only methods are refused inside the service too, whatever reaches it; a prefecture
/// sees the risk tier only of the agencies it holds.
async fn the_region_alone_keeps_the_list_and_a_tier_is_the_holders(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    approve(&t, "k").await;
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
    let tier = async |who: &str| {
        ReviewServiceClient::new(t.node(who).await)
            .get_credit_file(GetCreditFileRequest {
                uscc: KASHGAR.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .risk_tier
    };
    assert_eq!(tier("regulator-653100").await, RiskTier::High as i32);
    assert_eq!(tier("regulator-650000").await, RiskTier::High as i32);
    assert_eq!(tier("regulator-650100").await, RiskTier::Unspecified as i32);

    // As if the gateway had let a prefecture through: the service itself refuses.
    let backend =
        creditmesh_tests::mtls(t.service_addr("review"), &t.pki_dir, "service-gateway").await;
    let mut direct = ReviewServiceClient::new(backend);
    let mut req = tonic::Request::new(UpsertDishonestyEntryRequest {
        request_id: "forged".into(),
        entry: Some(person_entry(CHAIR, "王五")),
    });
    req.metadata_mut().insert(
        creditmesh_rpc::PRINCIPAL_HEADER,
        format!(
            "spiffe://{}/regulator/653100",
            creditmesh_tests::TRUST_DOMAIN
        )
        .parse()
        .unwrap(),
    );
    let refused = direct.upsert_dishonesty_entry(req).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let listed = ReviewServiceClient::new(t.node("regulator-650000").await)
        .list_dishonesty_entries(ListDishonestyEntriesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(listed.is_empty(), "{listed:?}");
    t.stop().await;
}

/// A page token is what a list gave out, or an error: never silently page one.
async fn a_page_token_no_list_gave_out_is_refused(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut region = ReviewServiceClient::new(t.node("regulator-650000").await);
    let mut filings = FilingServiceClient::new(t.node("regulator-650000").await);
    let tasks = region
        .list_review_tasks(ListReviewTasksRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let listed = filings
        .list_filings(creditmesh_proto::filing::v1::ListFilingsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let entries = region
        .list_dishonesty_entries(ListDishonestyEntriesRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    for refused in [&tasks, &listed, &entries] {
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    assert_eq!(fields(&tasks), ["page_token"]);
    assert_eq!(fields(&listed), ["page_token"]);
    // A token that was given out still works.
    let page = region
        .list_review_tasks(ListReviewTasksRequest {
            page_token: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.tasks.is_empty());
    t.stop().await;
}

/// A credit file is read in pages of a bounded size, in order, each entry once.
async fn a_credit_file_comes_in_bounded_pages(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    approve(&t, "k").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    for i in 0..7 {
        kashgar
            .record_interview(RecordInterviewRequest {
                request_id: format!("i-{i}"),
                uscc: KASHGAR.into(),
                held_on: "2026-11-20".into(),
                subject: format!("interview {i}"),
                summary: "noted".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let page = async |k: &mut ReviewServiceClient<Channel>, token: String, size: i32| {
        k.get_credit_file(GetCreditFileRequest {
            uscc: KASHGAR.into(),
            page_size: size,
            page_token: token,
            ..Default::default()
        })
        .await
    };
    let whole = page(&mut kashgar, String::new(), 0)
        .await
        .unwrap()
        .into_inner();
    assert!(whole.next_page_token.is_empty());
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let p = page(&mut kashgar, token, 3).await.unwrap().into_inner();
        assert!(p.entries.len() <= 3);
        seen.extend(p.entries.into_iter().map(|e| e.entry_id));
        if p.next_page_token.is_empty() {
            break;
        }
        token = p.next_page_token;
    }
    let all: Vec<String> = whole.entries.into_iter().map(|e| e.entry_id).collect();
    assert!(all.len() >= 9, "{all:?}");
    assert_eq!(seen, all, "pages give every entry once, in order");
    // A date far outside any plausible year is a typing error, refused by field.
    let far = kashgar
        .record_interview(RecordInterviewRequest {
            request_id: "far".into(),
            uscc: KASHGAR.into(),
            held_on: "9999-01-01".into(),
            subject: "x".into(),
            summary: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(far.code(), Code::InvalidArgument);
    assert_eq!(fields(&far), ["held_on"]);
    for (token, size) in [("garbage".to_owned(), 0), (String::new(), 501)] {
        let refused = page(&mut kashgar, token, size).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    }
    t.stop().await;
}
