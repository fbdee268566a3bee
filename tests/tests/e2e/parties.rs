//! Supervised parties without a filing (Art. 2: 信用服务机构及其从业人员, filing being voluntary under
//! Art. 7): an agency that never filed, by its code, and a practitioner, by the identity
//! document they hold, each with supervision acts and a credit file of their own.

use creditmesh_proto::common::v1::IdentityDocumentType;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::*;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_tests::{Engine, TestClock, TestMesh, eventually, scalar_i64};
use time::macros::date;
use tonic::Code;

use super::counties::regulators;
use super::lifecycle::fields;

crate::on_both_engines!(findings_against_an_unfiled_agency_and_a_practitioner_land_in_their_files,);

/// Registered in Beijing and never filed in Xinjiang.
const UNFILED: &str = super::filing::BEIJING;

fn practitioner() -> Practitioner {
    Practitioner {
        name: "李四".into(),
        document_type: IdentityDocumentType::Passport as i32,
        document_number: "E12345678".into(),
    }
}

async fn file(t: &TestMesh, reader: &str, req: GetCreditFileRequest) -> GetCreditFileResponse {
    ReviewServiceClient::new(t.node(reader).await)
        .get_credit_file(req)
        .await
        .unwrap()
        .into_inner()
}

async fn findings_against_an_unfiled_agency_and_a_practitioner_land_in_their_files(engine: Engine) {
    // Monday 2 March 2026: an order of two working days is due on Wednesday 4 March.
    let clock = Arc::new(TestClock::at(date!(2026 - 03 - 02)));
    let Some(t) = TestMesh::start_at(engine, clock.clone()).await else {
        return;
    };
    regulators(&t, &["653100", "650100"]);
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let finding = |request_id: &str| RecordFindingRequest {
        request_id: request_id.into(),
        category: FindingCategory::UnlistedFee as i32,
        description: "a fee for a 'fast track' no schedule lists".into(),
        ..Default::default()
    };

    // An agency that has not filed is named by its code and its name.
    let nameless = kashgar
        .record_finding(RecordFindingRequest {
            uscc: UNFILED.into(),
            ..finding("a-0")
        })
        .await
        .unwrap_err();
    assert_eq!(nameless.code(), Code::InvalidArgument);
    assert_eq!(fields(&nameless), ["agency_name"], "{nameless:?}");
    kashgar
        .record_finding(RecordFindingRequest {
            uscc: UNFILED.into(),
            agency_name: "北京某信用评价有限公司".into(),
            ..finding("a-1")
        })
        .await
        .unwrap();
    let tier = kashgar
        .set_risk_tier(SetRiskTierRequest {
            request_id: "a-t".into(),
            uscc: UNFILED.into(),
            tier: RiskTier::High as i32,
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(tier.code(), Code::PermissionDenied, "{tier:?}");

    // A practitioner by the document they hold; one party per act, each number by its rule.
    let both = kashgar
        .record_finding(RecordFindingRequest {
            uscc: UNFILED.into(),
            practitioner: Some(practitioner()),
            ..finding("p-0")
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&both), ["practitioner"], "{both:?}");
    let bad = kashgar
        .record_finding(RecordFindingRequest {
            practitioner: Some(Practitioner {
                document_number: "E1".into(),
                ..practitioner()
            }),
            ..finding("p-0b")
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["practitioner.document_number"], "{bad:?}");
    kashgar
        .record_finding(RecordFindingRequest {
            practitioner: Some(practitioner()),
            category: FindingCategory::CertificateLent as i32,
            description: "lent a practitioner certificate to another firm".into(),
            ..finding("p-1")
        })
        .await
        .unwrap();
    kashgar
        .record_interview(RecordInterviewRequest {
            request_id: "p-2".into(),
            practitioner: Some(practitioner()),
            held_on: "2026-03-02".into(),
            subject: "the lent certificate".into(),
            summary: "told to take it back".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let order = kashgar
        .issue_rectification_order(IssueRectificationOrderRequest {
            request_id: "p-3".into(),
            practitioner: Some(practitioner()),
            findings: "certificate lent".into(),
            required_actions: "take the certificate back".into(),
            working_days: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    kashgar
        .record_rectification_outcome(RecordRectificationOutcomeRequest {
            request_id: "p-4".into(),
            order_id: order.order_id.clone(),
            outcome: RectificationOutcome::Rectified as i32,
            note: "certificate returned".into(),
        })
        .await
        .unwrap();

    // An order left unanswered past its deadline is overdue in the party's own file.
    kashgar
        .issue_rectification_order(IssueRectificationOrderRequest {
            request_id: "a-o".into(),
            uscc: UNFILED.into(),
            agency_name: "北京某信用评价有限公司".into(),
            findings: "unlisted fee".into(),
            required_actions: "refund the fee".into(),
            working_days: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    clock.set(date!(2026 - 03 - 05));
    let unfiled = || GetCreditFileRequest {
        uscc: UNFILED.into(),
        ..Default::default()
    };
    eventually("the overdue entry", Duration::from_secs(20), || async {
        file(&t, "regulator-653100", unfiled())
            .await
            .entries
            .iter()
            .any(|e| e.summary.contains("overdue"))
            .then_some(())
    })
    .await;

    // Each lands in its own file, which its supervisor reads with the party's name.
    let agency_file = file(&t, "regulator-653100", unfiled()).await;
    assert_eq!(agency_file.name, "北京某信用评价有限公司");
    assert_eq!(agency_file.party_kind, "agency");
    assert_eq!(
        agency_file
            .entries
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["finding", "rectification", "rectification"]
    );
    assert!(agency_file.entries.iter().all(|e| e.tenant == "653100"));
    assert!(
        agency_file.entries[0].summary.contains("(Art. 19)"),
        "{}",
        agency_file.entries[0].summary
    );
    let by_document = || GetCreditFileRequest {
        practitioner: Some(Practitioner {
            name: String::new(),
            ..practitioner()
        }),
        ..Default::default()
    };
    let person = file(&t, "regulator-653100", by_document()).await;
    assert!(person.uscc.starts_with("P-"), "{}", person.uscc);
    assert_eq!(person.name, "李四");
    assert_eq!(person.party_kind, "practitioner");
    assert_eq!(
        person
            .entries
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>(),
        ["finding", "interview", "rectification", "rectification"]
    );
    assert!(person.entries.iter().all(|e| e.tenant == "653100"));
    let details: serde_json::Value = serde_json::from_slice(&person.entries[0].details).unwrap();
    assert_eq!(details["practitioner"]["name"], "李四");
    assert_eq!(details["practitioner"]["document_type"], "passport");
    assert_ne!(details["practitioner"]["document"], "E12345678");
    // Another prefecture reads nothing of them; the region reads all.
    let urumqi = file(&t, "regulator-650100", by_document()).await;
    assert!(
        urumqi.entries.is_empty() && urumqi.name.is_empty(),
        "{urumqi:?}"
    );
    let region = file(&t, "regulator-650000", by_document()).await;
    assert_eq!(region.entries.len(), 4);
    // The number is kept nowhere.
    let url = t.db_url("review");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM review_party WHERE document LIKE '%12345678%' OR party LIKE '%12345678%'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM review_party").await,
        2,
        "one row per party and authority"
    );
    t.stop().await;
}
