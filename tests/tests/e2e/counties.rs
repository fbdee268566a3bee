//! County authorities (Art. 5: 各地（州、市）、县（市、区）社会信用主管部门…在本行政区域内): a county's
//! regulator supervises the activity in its area whichever authority holds the agency's filing;
//! the holder reads what it recorded, a prefecture reads its counties', another county nothing.

use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_pki::DEMO_AGENCY_USCC;
use std::time::Duration;

use creditmesh_domain::calendar::format_date;
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{
    ApplicationForm, DocumentKind, FilingStatus, GetFilingRequest, SubmitChangeRequest,
};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::*;
use creditmesh_tests::{Engine, TestMesh, eventually, scalar_i64};
use tonic::Code;

use super::filing::{filed, pdf, read_document, today, upload};
use super::review::{reaches, the_task};

crate::on_both_engines!(
    a_county_interviews_an_agency_filed_elsewhere_and_the_holder_sees_it,
    a_move_from_urumqi_to_kashgar_transfers_the_filing,
);

const URUMQI_AGENCY: &str = DEMO_AGENCY_USCC;

/// Issues regulators of the given tenants, each named `regulator-<code>`.
pub fn regulators(t: &TestMesh, codes: &[&str]) {
    for code in codes {
        t.issue(
            &format!("regulator-{code}"),
            Principal::new(PrincipalKind::Regulator, Tenant::parse(code).unwrap(), ""),
        );
    }
}

/// The Urumqi demo agency (registered in Tianshan District, 650102) filed and approved by
/// Urumqi.
pub async fn urumqi_agency_active(t: &TestMesh, request_id: &str) -> String {
    let mut agency = FilingServiceClient::new(t.node("agency").await);
    let filing_id = filed(&mut agency, URUMQI_AGENCY, "2020-05-01", request_id).await;
    let mut urumqi = ReviewServiceClient::new(t.node("regulator-650100").await);
    let task = the_task(&mut urumqi).await;
    urumqi
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

async fn credit_file(t: &TestMesh, reader: &str) -> Vec<CreditFileEntry> {
    ReviewServiceClient::new(t.node(reader).await)
        .get_credit_file(GetCreditFileRequest {
            uscc: URUMQI_AGENCY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

async fn a_county_interviews_an_agency_filed_elsewhere_and_the_holder_sees_it(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    // Kashgar City and Shufu County (Kashgar prefecture); Tianshan District, where the agency
    // is registered (Urumqi).
    regulators(&t, &["653100", "653101", "653121", "650102"]);
    let filing_id = urumqi_agency_active(&t, "county").await;

    let mut county = ReviewServiceClient::new(t.node("regulator-653101").await);
    let interview = county
        .record_interview(RecordInterviewRequest {
            request_id: "c-i".into(),
            uscc: URUMQI_AGENCY.into(),
            held_on: "2026-03-02".into(),
            subject: "ratings promised to Kashgar City firms".into(),
            summary: "the branch manager was told to stop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry_id;
    county
        .record_finding(RecordFindingRequest {
            request_id: "c-f".into(),
            uscc: URUMQI_AGENCY.into(),
            category: FindingCategory::PromisedRating as i32,
            description: "AAA promised for a doubled fee".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // What stays with the holder: the risk tier, the interview of Art. 15(2), revocation.
    let tier = county
        .set_risk_tier(SetRiskTierRequest {
            request_id: "c-t".into(),
            uscc: URUMQI_AGENCY.into(),
            tier: RiskTier::High as i32,
            reason: "complaints".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(tier.code(), Code::PermissionDenied, "{tier:?}");
    let tied = county
        .record_interview(RecordInterviewRequest {
            request_id: "c-i2".into(),
            uscc: URUMQI_AGENCY.into(),
            held_on: "2026-03-03".into(),
            subject: "an order".into(),
            summary: "x".into(),
            order_id: "0190a0a0-0000-7000-8000-000000000000".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(tied.code(), Code::InvalidArgument);
    assert_eq!(super::lifecycle::fields(&tied), ["order_id"], "{tied:?}");
    let revoke = county
        .revoke_filing(RevokeFilingRequest {
            request_id: "c-r".into(),
            filing_id: filing_id.clone(),
            ground: RevocationGround::UnlicensedCreditReporting as i32,
            reason: "credit reporting without a licence".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(revoke.code(), Code::NotFound, "{revoke:?}");
    let tasks = county
        .list_review_tasks(ListReviewTasksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(tasks.is_empty(), "a county holds no review task: {tasks:?}");

    // The holder reads the county's acts in the one credit file, each naming the place.
    let holder = credit_file(&t, "regulator-650100").await;
    let by_county: Vec<_> = holder.iter().filter(|e| e.tenant == "653101").collect();
    assert_eq!(
        by_county
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["interview", "finding"],
        "{holder:?}"
    );
    assert_eq!(by_county[0].entry_id, interview);
    for e in &by_county {
        assert!(
            e.principal.ends_with("/regulator/653101"),
            "{}",
            e.principal
        );
        assert!(e.summary.contains("喀什地区喀什市"), "{}", e.summary);
        let details: serde_json::Value = serde_json::from_slice(&e.details).unwrap();
        assert_eq!(details["place"], "653101");
    }
    assert!(
        holder
            .iter()
            .any(|e| e.tenant == "650100" && e.kind == "filing")
    );
    // The county reads what it wrote; its prefecture reads its counties'; another county, and
    // the county where the agency is registered, read nothing of it.
    let own = credit_file(&t, "regulator-653101").await;
    assert_eq!(own.len(), 2, "{own:?}");
    assert!(own.iter().all(|e| e.tenant == "653101"));
    let prefecture = credit_file(&t, "regulator-653100").await;
    assert_eq!(prefecture.len(), 2, "{prefecture:?}");
    assert!(credit_file(&t, "regulator-653121").await.is_empty());
    assert!(credit_file(&t, "regulator-650102").await.is_empty());
    let region = credit_file(&t, "regulator-650000").await;
    assert_eq!(region.len(), holder.len());

    // Having supervised it there, the county opens what the agency filed, each read recorded
    // with its purpose; so does its prefecture; a county that has not, nothing.
    use sha2::Digest;
    let licence = hex::encode(sha2::Sha256::digest(pdf(&format!(
        "{URUMQI_AGENCY} licence"
    ))));
    let read = |reader: &'static str, purpose: &'static str| {
        let (t, filing_id, licence) = (&t, filing_id.clone(), licence.clone());
        async move {
            let mut client = FilingServiceClient::new(t.node(reader).await);
            read_document(&mut client, &filing_id, &licence, purpose).await
        }
    };
    let (_, bytes) = eventually(
        "the county reads the licence",
        Duration::from_secs(20),
        || async {
            read(
                "regulator-653101",
                "the branch's licence, for the interview",
            )
            .await
            .ok()
        },
    )
    .await;
    assert_eq!(bytes, pdf(&format!("{URUMQI_AGENCY} licence")));
    read("regulator-653100", "the county's case").await.unwrap();
    for reader in ["regulator-653121", "regulator-650102"] {
        let err = read(reader, "curiosity").await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{reader}: {err:?}");
    }
    assert_eq!(
        scalar_i64(
            &t.db_url("filing"),
            "SELECT COUNT(*) FROM filing_document_read WHERE tenant = '653101' \
             AND purpose = 'the branch''s licence, for the interview'"
        )
        .await,
        1
    );

    // A county holds no filing: it cannot decide one, nor be an agency's tenant.
    let mut urumqi_district = FilingServiceClient::new(t.node("regulator-650102").await);
    let read = urumqi_district
        .get_filing(creditmesh_proto::filing::v1::GetFilingRequest {
            filing_id: filing_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(read.code(), Code::NotFound, "{read:?}");
    t.stop().await;
}

/// Art. 10, 12: an agency whose registered address moves from Urumqi to Kashgar reports the
/// change to Urumqi, which reviews it; approved, the filing is held by Kashgar with its history
/// and its credit file, and Urumqi no longer holds it.
async fn a_move_from_urumqi_to_kashgar_transfers_the_filing(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    regulators(&t, &["653100"]);
    let filing_id = urumqi_agency_active(&t, "moving").await;
    let mut urumqi = ReviewServiceClient::new(t.node("regulator-650100").await);
    urumqi
        .record_inspection(RecordInspectionRequest {
            request_id: "u-insp".into(),
            uscc: URUMQI_AGENCY.into(),
            inspected_on: "2026-03-02".into(),
            result: "records in order".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut agency = FilingServiceClient::new(t.node("agency").await);
    let lease = upload(
        &mut agency,
        DocumentKind::ChangeMaterial,
        pdf("kashgar lease"),
    )
    .await
    .unwrap();
    agency
        .submit_change(SubmitChangeRequest {
            request_id: "move".into(),
            filing_id: filing_id.clone(),
            changed_on: format_date(today()),
            changed_facts: Some(ApplicationForm {
                registered_address: "新疆喀什地区喀什市人民东路8号".into(),
                registered_division: "653101".into(),
                ..Default::default()
            }),
            supporting_documents: vec![DocumentRef { sha256: lease }],
            description: "registered office moved to Kashgar City".into(),
        })
        .await
        .unwrap();
    // Urumqi, which holds the filing, reviews the change (Art. 12).
    let task = super::review::task_where(
        &urumqi,
        ListReviewTasksRequest {
            kinds: vec![TaskKind::Change as i32],
            ..Default::default()
        },
        |t| t.status == TaskStatus::Open as i32,
    )
    .await;
    assert!(
        task.automatic_checks
            .iter()
            .any(|c| c.evidence.contains("transferred there")),
        "the reviewer is told the filing moves: {:?}",
        task.automatic_checks
    );
    urumqi
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "move-decision".into(),
            task_id: task.task_id,
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // The filing is Kashgar's now, with its history; Urumqi no longer sees it.
    let kashgar_filing = FilingServiceClient::new(t.node("regulator-653100").await);
    let moved = eventually(
        "the filing held by Kashgar",
        Duration::from_secs(20),
        || {
            let mut k = kashgar_filing.clone();
            let id = filing_id.clone();
            async move {
                k.get_filing(GetFilingRequest { filing_id: id })
                    .await
                    .ok()
                    .map(|r| r.into_inner().filing.unwrap())
            }
        },
    )
    .await;
    assert_eq!(moved.status, FilingStatus::Active as i32);
    assert_eq!(moved.reviewing_tenant, "653100");
    assert_eq!(moved.form.as_ref().unwrap().registered_division, "653101");
    assert!(
        moved.history.iter().any(|h| h.note.contains("submitted"))
            && moved
                .history
                .iter()
                .any(|h| h.note.contains("transferred from 650100")),
        "{:?}",
        moved.history
    );
    let gone = FilingServiceClient::new(t.node("regulator-650100").await)
        .get_filing(GetFilingRequest {
            filing_id: filing_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // Review holds it at Kashgar too: the whole credit file, with Urumqi's inspection and the
    // transfer, is Kashgar's to read; Urumqi reads what it wrote.
    let file = eventually(
        "the transfer in the credit file",
        Duration::from_secs(20),
        || async {
            let file = credit_file(&t, "regulator-653100").await;
            file.iter().any(|e| e.kind == "transfer").then_some(file)
        },
    )
    .await;
    assert!(
        file.iter()
            .any(|e| e.kind == "inspection" && e.tenant == "650100"),
        "{file:?}"
    );
    let transfer = file.iter().find(|e| e.kind == "transfer").unwrap();
    assert_eq!(transfer.tenant, "653100");
    assert!(
        transfer.summary.contains("喀什地区"),
        "{}",
        transfer.summary
    );
    assert!(
        credit_file(&t, "regulator-650100")
            .await
            .iter()
            .all(|e| e.tenant == "650100")
    );
    // Kashgar supervises as the holder now: a risk tier is its to set, Urumqi's is refused.
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    kashgar
        .set_risk_tier(SetRiskTierRequest {
            request_id: "k-tier".into(),
            uscc: URUMQI_AGENCY.into(),
            tier: RiskTier::Low as i32,
            reason: "newly arrived".into(),
        })
        .await
        .unwrap();
    let refused = urumqi
        .set_risk_tier(SetRiskTierRequest {
            request_id: "u-tier".into(),
            uscc: URUMQI_AGENCY.into(),
            tier: RiskTier::High as i32,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    t.stop().await;
}
