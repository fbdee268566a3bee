//! Referral of a complaint outside the regulator's remit (Art. 24): delivered to the
//! department's node over mutual TLS however long it is down, once, with a receipt signed by
//! the department's key that the platform verifies; acknowledged, or declined back to the
//! regulator for re-routing; seen only by the department it is addressed to.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{
    AcceptComplaintRequest, AcknowledgeReferralRequest, ComplaintStatus, DeclineReferralRequest,
    Department, GetComplaintRequest, ListReferralsRequest, ReferComplaintRequest, Referral,
    ReferralLetter, ReferralReceipt, ReferralStatus, TrackComplaintRequest,
};
use creditmesh_proto::complaints::v2::ReceiveReferralRequest;
use creditmesh_proto::complaints::v2::referral_receiver_service_client::ReferralReceiverServiceClient;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{
    GetCreditFileRequest, ListReviewTasksRequest, RevocationGround, RevokeFilingRequest, TaskKind,
};
use creditmesh_tests::{
    DepartmentNode, Engine, TRUST_DOMAIN, TestClock, TestMesh, demo_department, eventually,
    free_addr, mtls, scalar_i64,
};
use sha2::{Digest, Sha256};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::e2e::complaints::complaint;

crate::on_both_engines!(
    a_referral_made_while_the_department_is_down_is_delivered_once_with_a_verified_receipt,
    a_declined_referral_returns_the_complaint_for_re_routing,
    a_department_sees_only_referrals_addressed_to_it,
    a_node_that_is_not_the_department_gets_nothing_delivered,
    a_receipt_signed_by_a_revoked_certificate_is_not_taken,
    an_unlicensed_revocation_reaches_the_pboc_branch_and_a_decline_returns_to_review,
    a_department_reads_the_evidence_the_regulator_shared,
    a_complaint_is_referred_by_letter_to_a_county_financial_regulator,
    a_department_reads_records_only_within_a_referral_it_received,
    a_referral_stored_with_its_contact_in_clear_is_sealed_at_start,
);

/// The only referral's stored bytes and sealed contact.
async fn stored_referral(url: &str) -> (Vec<u8>, String) {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let row = sqlx::query("SELECT payload, sealed_contact FROM complaints_referral")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    (hex::decode(row.get::<String, _>(0)).unwrap(), row.get(1))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A mesh whose complaints service refers to the demo department at `department` (nothing
/// need listen there yet); mails go to `smtp` when given.
pub async fn mesh(
    engine: Engine,
    department: std::net::SocketAddr,
    smtp: Option<String>,
) -> Option<(TestMesh, Arc<TestClock>)> {
    let clock = Arc::new(TestClock::now());
    let t = TestMesh::start_configured(engine, clock.clone(), |rt| {
        rt.services.complaints.referrals = Arc::new(creditmesh_complaints::ReferralsConfig {
            departments: vec![demo_department(department)],
        });
        if let Some(smtp_url) = smtp {
            rt.services.complaints.notifications =
                Arc::new(creditmesh_complaints::NotificationsConfig {
                    smtp_url,
                    from: "noreply@creditmesh.xinjiang".into(),
                    dir: String::new(),
                    ..Default::default()
                });
        }
    })
    .await?;
    t.issue(
        "regulator-653100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("653100").unwrap(),
            "",
        ),
    );
    Some((t, clock))
}

pub fn refer(request_id: &str, tracking_number: &str) -> ReferComplaintRequest {
    ReferComplaintRequest {
        request_id: request_id.into(),
        tracking_number: tracking_number.into(),
        department: Department::MarketRegulation as i32,
        department_tenant: "650100".into(),
        reason: "a licensing matter for market regulation, outside credit supervision".into(),
        ..Default::default()
    }
}

/// The statement a receipt for `referral_id` signs, and the time now in Unix seconds.
fn receipt_statement(referral_id: &str, receipt: &ReferralReceipt) -> (String, u64) {
    let at_micros = {
        let ts = receipt.received_at.unwrap();
        ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1000
    };
    let statement =
        creditmesh_pki::receipt::referral_statement(referral_id, &receipt.sha256, at_micros);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (statement, now)
}

/// Who signed `receipt` for `referral_id`, verified against the CA bundle `ca` (PEM): its
/// certificate chains to the CA and its signature is over the statement of what was received.
pub fn receipt_signer(
    ca: &str,
    referral_id: &str,
    receipt: &ReferralReceipt,
) -> anyhow::Result<Principal> {
    let (statement, now) = receipt_statement(referral_id, receipt);
    creditmesh_pki::receipt::verify(
        ca,
        &[],
        TRUST_DOMAIN,
        &receipt.certificate,
        statement.as_bytes(),
        &receipt.signature,
        now,
    )
}

/// Submits a complaint (to Kashgar) and refers it; its tracking number, access code and
/// referral id.
async fn referred(t: &TestMesh, id: &str, contact: &str) -> (String, String, String) {
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut c = complaint(id, "");
    c.complainant_contact = contact.into();
    let c = public.submit_complaint(c).await.unwrap().into_inner();
    let answer = ComplaintServiceClient::new(t.node("regulator-653100").await)
        .refer_complaint(refer(&format!("refer-{id}"), &c.tracking_number))
        .await
        .unwrap()
        .into_inner();
    let complaint = answer.complaint.unwrap();
    assert_eq!(complaint.status, ComplaintStatus::Referred as i32);
    assert_eq!(complaint.referrals.len(), 1);
    assert_eq!(complaint.referrals[0].referral_id, answer.referral_id);
    (c.tracking_number, c.access_code, answer.referral_id)
}

async fn referrals_of(channel: Channel) -> Result<Vec<Referral>, tonic::Status> {
    Ok(ComplaintServiceClient::new(channel)
        .list_referrals(ListReferralsRequest::default())
        .await?
        .into_inner()
        .referrals)
}

/// Moves the clock a second on at each look, so that retries come due.
async fn tried(url: &str, clock: &TestClock, times: i64) {
    eventually("delivery was tried", Duration::from_secs(30), || async {
        clock.advance(Duration::from_secs(1));
        (scalar_i64(url, "SELECT MAX(attempts) FROM complaints_referral").await >= times)
            .then_some(())
    })
    .await;
}

/// The referral as the department lists it once delivered; the clock moves a second on at
/// each look, so that retries come due.
async fn delivered(t: &TestMesh, clock: &TestClock, referral_id: &str) -> Referral {
    eventually(
        "the referral is delivered",
        Duration::from_secs(60),
        || async {
            clock.advance(Duration::from_secs(1));
            referrals_of(t.node("department").await)
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.referral_id == referral_id)
        },
    )
    .await
}

async fn received_rows(node: &DepartmentNode) -> i64 {
    let mut conn = node.db.acquire().await.unwrap();
    creditmesh_storage::sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM department_referral")
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

async fn a_referral_made_while_the_department_is_down_is_delivered_once_with_a_verified_receipt(
    engine: Engine,
) {
    let Some((smtp_url, maildir)) = creditmesh_tests::smtp() else {
        return;
    };
    let at = free_addr();
    let Some((t, clock)) = mesh(engine, at, Some(smtp_url)).await else {
        return;
    };
    let address = format!("r{}@example.org", uuid::Uuid::new_v4().simple());
    let (number, code, referral_id) = referred(&t, "down-1", &address).await;

    // Nobody listens: the platform keeps trying, with backoff, and says why.
    let url = t.db_url("complaints");
    tried(&url, &clock, 2).await;
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_referral WHERE status = 'pending' AND last_error <> ''"
        )
        .await,
        1
    );
    assert!(
        referrals_of(t.node("department").await)
            .await
            .unwrap()
            .is_empty(),
        "a referral not yet received is not listed to the department"
    );

    let node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let listed = delivered(&t, &clock, &referral_id).await;
    assert_eq!(listed.status, ReferralStatus::Delivered as i32);
    assert_eq!(listed.tracking_number, number);
    assert_eq!(listed.department, Department::MarketRegulation as i32);
    assert_eq!(listed.complainant_contact, address);
    assert!(listed.reason.contains("licensing"));
    // While it waited, the contact was sealed in its row; what the department received has it.
    let (stored, sealed) = stored_referral(&url).await;
    assert!(
        !contains(&stored, &address),
        "the referral row holds the contact in clear"
    );
    assert!(sealed.starts_with("sealed1:"), "{sealed}");

    // The receipt proves what the department received: the hash of the bytes it keeps, signed
    // by a key the regional CA certified for this department.
    let receipt = listed.receipt.clone().expect("a receipt");
    let (kept_payload, kept_sha) = {
        let mut conn = node.db.acquire().await.unwrap();
        let row: (String, String) =
            creditmesh_storage::sqlx::query_as("SELECT payload, sha256 FROM department_referral")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        (hex::decode(row.0).unwrap(), row.1)
    };
    assert_eq!(receipt.sha256, kept_sha);
    assert_eq!(hex::encode(Sha256::digest(&kept_payload)), receipt.sha256);
    let ca = std::fs::read_to_string(t.pki_dir.join("ca.pem")).unwrap();
    let signer = receipt_signer(&ca, &referral_id, &receipt).expect("the receipt verifies");
    assert_eq!(signer.kind, PrincipalKind::Department);
    assert_eq!(signer.subject, "market-regulation");
    // The delivery is in the audit trail, attributed to the department that signed for it.
    let audited = scalar_i64(
        &url,
        super::objections::sql(format!(
            "SELECT COUNT(*) FROM complaints_audit WHERE method = 'referrals/delivered' \
             AND request_id = '{referral_id}' AND outcome = 'ok' AND tenant = '653100' \
             AND principal LIKE '%/department/650100/market-regulation'"
        )),
    )
    .await;
    assert_eq!(audited, 1);
    let (statement, now) = receipt_statement(&referral_id, &receipt);
    let mut forged = statement.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] ^= 1;
    assert!(
        creditmesh_pki::receipt::verify(
            &ca,
            &[],
            TRUST_DOMAIN,
            &receipt.certificate,
            &forged,
            &receipt.signature,
            now
        )
        .is_err()
    );

    // Sent again (a lost answer, a second sender): the same receipt, nothing stored twice.
    let again =
        ReferralReceiverServiceClient::new(mtls(node.addr, &t.pki_dir, "service-complaints").await)
            .receive_referral(ReceiveReferralRequest {
                referral: kept_payload.clone(),
            })
            .await
            .unwrap()
            .into_inner();
    assert!(again.duplicate);
    assert_eq!(again.receipt.unwrap().signature, receipt.signature);
    assert_eq!(received_rows(&node).await, 1);
    // Sent in the form first published (v1: the referral as a message), it is the same
    // referral: the node encodes it as it was sent, and answers with the same receipt.
    use creditmesh_proto::complaints::v1 as first;
    let as_first_published =
        first::referral_receiver_service_client::ReferralReceiverServiceClient::new(
            mtls(node.addr, &t.pki_dir, "service-complaints").await,
        )
        .receive_referral(first::ReceiveReferralRequest {
            referral: Some(<Referral as prost::Message>::decode(kept_payload.as_slice()).unwrap()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(as_first_published.duplicate);
    assert_eq!(
        as_first_published.receipt.unwrap().signature,
        receipt.signature
    );
    assert_eq!(received_rows(&node).await, 1);
    // Only the complaints service delivers: a department's own certificate is refused.
    let refused =
        ReferralReceiverServiceClient::new(mtls(node.addr, &t.pki_dir, "department").await)
            .receive_referral(ReceiveReferralRequest {
                referral: kept_payload,
            })
            .await
            .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // The complainant sees where it went and was told once, by mail.
    let tracked = ComplaintServiceClient::new(t.public().await)
        .track_complaint(TrackComplaintRequest {
            tracking_number: number.clone(),
            access_code: code,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tracked.status, ComplaintStatus::Referred as i32);
    assert_eq!(tracked.referred_to, Department::MarketRegulation as i32);
    let notes: Vec<&str> = tracked.history.iter().map(|h| h.note.as_str()).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("referred to market-regulation of 650100")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("received by market-regulation")),
        "{notes:?}"
    );
    let mine = || -> Vec<String> {
        creditmesh_tests::maildir_messages(&maildir)
            .into_iter()
            .filter(|m| m.contains(&address))
            .collect()
    };
    eventually("the referral mail", Duration::from_secs(30), || async {
        (!mine().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mine().len(), 1, "told once");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_referral WHERE status = 'delivered'"
        )
        .await,
        1
    );

    // The department acknowledges it, once; the trail shows it.
    let mut department = ComplaintServiceClient::new(t.node("department").await);
    for _ in 0..2 {
        let acked = department
            .acknowledge_referral(AcknowledgeReferralRequest {
                referral_id: referral_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .referral
            .unwrap();
        assert_eq!(acked.status, ReferralStatus::Acknowledged as i32);
        assert!(acked.acknowledged_at.is_some());
    }
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_history WHERE note LIKE 'acknowledged by%'"
        )
        .await,
        1
    );
    // Each complaint's history is numbered 1, 2, … from the counter on its row.
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_complaint c WHERE c.history_seq < 3 OR c.history_seq <> \
             (SELECT COUNT(*) FROM complaints_history h WHERE h.tenant = c.tenant \
              AND h.tracking_number = c.tracking_number AND h.seq BETWEEN 1 AND c.history_seq)"
        )
        .await,
        0
    );
}

/// A mesh with the demo department's node up and one referral delivered to it: the mesh, its
/// clock, the node, and the complaint's tracking number, access code and referral id.
async fn one_delivered(
    engine: Engine,
    id: &str,
) -> Option<(TestMesh, Arc<TestClock>, DepartmentNode, [String; 3])> {
    let at = free_addr();
    let (t, clock) = mesh(engine, at, None).await?;
    let node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let (number, code, referral_id) = referred(&t, id, "13912345678").await;
    delivered(&t, &clock, &referral_id).await;
    Some((t, clock, node, [number, code, referral_id]))
}

async fn a_declined_referral_returns_the_complaint_for_re_routing(engine: Engine) {
    let Some((t, _, node, [number, code, referral_id])) = one_delivered(engine, "decline-1").await
    else {
        return;
    };

    // The department's people decline it from their node's command line, which tells the
    // platform through its gateway and then records it in the node's own store.
    let listed = creditmesh_department::list(&node.db, true).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].referral.tracking_number, number);
    let why = "not a market-regulation matter: the agency's filing is with the credit regulator";
    let declined = creditmesh_department::answer(
        &node.config,
        &node.db,
        &format!("https://{}", t.mesh.node_addr),
        "gateway",
        &referral_id,
        creditmesh_department::Answer::Decline(why.into()),
    )
    .await
    .unwrap();
    assert_eq!(declined.status, ReferralStatus::Declined as i32);
    assert_eq!(declined.decline_reason, why);
    assert!(
        creditmesh_department::list(&node.db, true)
            .await
            .unwrap()
            .is_empty()
    );

    // Back with the regulator, the whole trail kept.
    let tracked = ComplaintServiceClient::new(t.public().await)
        .track_complaint(TrackComplaintRequest {
            tracking_number: number.clone(),
            access_code: code,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tracked.status, ComplaintStatus::Received as i32);
    assert_eq!(tracked.referred_to, 0);
    let statuses: Vec<&str> = tracked.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["received", "referred", "referred", "received"]);
    assert!(tracked.history[3].note.contains(why));
    // The regulator sees it whole: the trail, the referral with its receipt and the decline.
    let whole = ComplaintServiceClient::new(t.node("regulator-653100").await)
        .get_complaint(GetComplaintRequest {
            tracking_number: number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(whole.history.len(), 4);
    assert_eq!(whole.referrals.len(), 1);
    let referral = &whole.referrals[0];
    assert_eq!(referral.referral_id, referral_id);
    assert_eq!(referral.status, ReferralStatus::Declined as i32);
    assert_eq!(referral.decline_reason, why);
    assert!(referral.receipt.is_some(), "{referral:?}");
    let elsewhere = ComplaintServiceClient::new(t.node("department").await)
        .get_complaint(GetComplaintRequest {
            tracking_number: number.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied, "{elsewhere:?}");
    t.issue(
        "regulator-650100",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("650100").unwrap(),
            "",
        ),
    );
    let other = ComplaintServiceClient::new(t.node("regulator-650100").await)
        .get_complaint(GetComplaintRequest {
            tracking_number: number.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");

    // A second decline changes nothing; an acknowledgement now is refused.
    let mut department = ComplaintServiceClient::new(t.node("department").await);
    let again = department
        .decline_referral(DeclineReferralRequest {
            referral_id: referral_id.clone(),
            reason: "again".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(again.decline_reason, why);
    let refused = department
        .acknowledge_referral(AcknowledgeReferralRequest {
            referral_id: referral_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let url = t.db_url("complaints");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_history WHERE note LIKE 'declined by%'"
        )
        .await,
        1
    );
    // The complainant, told of the referral, is told once that it came back.
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_notification WHERE subject LIKE '%退回' \
             AND body LIKE '%returned by the market-regulation department of 650100%'"
        )
        .await,
        1
    );

    // The regulator re-routes it: here it accepts it itself.
    let accepted = ComplaintServiceClient::new(t.node("regulator-653100").await)
        .accept_complaint(AcceptComplaintRequest {
            request_id: "accept-after-decline".into(),
            tracking_number: number,
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(accepted.status, ComplaintStatus::Accepted as i32);
    assert_eq!(accepted.referrals.len(), 1);
    assert_eq!(
        accepted.referrals[0].status,
        ReferralStatus::Declined as i32
    );
}

async fn a_department_sees_only_referrals_addressed_to_it(engine: Engine) {
    let at = free_addr();
    let Some((t, clock)) = mesh(engine, at, None).await else {
        return;
    };
    let _node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let urumqi = Tenant::parse("650100").unwrap();
    t.issue(
        "department-cyberspace",
        Principal::new(PrincipalKind::Department, urumqi, "cyberspace"),
    );
    t.issue(
        "department-kashgar",
        Principal::new(
            PrincipalKind::Department,
            Tenant::parse("653100").unwrap(),
            "market-regulation",
        ),
    );
    t.issue(
        "regulator-654000",
        Principal::new(
            PrincipalKind::Regulator,
            Tenant::parse("654000").unwrap(),
            "",
        ),
    );
    let (number, _, referral_id) = referred(&t, "scope-1", "13912345678").await;
    delivered(&t, &clock, &referral_id).await;

    for other in ["department-cyberspace", "department-kashgar"] {
        assert!(
            referrals_of(t.node(other).await).await.unwrap().is_empty(),
            "{other} sees another department's referral"
        );
        let refused = ComplaintServiceClient::new(t.node(other).await)
            .decline_referral(DeclineReferralRequest {
                referral_id: referral_id.clone(),
                reason: "not ours".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{other}: {refused:?}");
    }
    // Nobody but departments lists referrals.
    let refused = referrals_of(t.node("agency").await).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Another prefecture can neither see nor refer the complaint.
    let mut ili = ComplaintServiceClient::new(t.node("regulator-654000").await);
    let mut second = complaint("scope-2", "");
    second.description = "another matter entirely".into();
    let second = ComplaintServiceClient::new(t.public().await)
        .submit_complaint(second)
        .await
        .unwrap()
        .into_inner();
    let refused = ili
        .refer_complaint(refer("ili-refer", &second.tracking_number))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");

    // Bad input names its fields; a department with no node configured cannot be chosen.
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);
    let bad = kashgar
        .refer_complaint(ReferComplaintRequest {
            request_id: "bad".into(),
            tracking_number: second.tracking_number.clone(),
            department: 0,
            department_tenant: "650100".into(),
            reason: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["reason", "department"]);
    let mut unknown = refer("unknown-node", &second.tracking_number);
    unknown.department = Department::PublicSecurity as i32;
    let bad = kashgar.refer_complaint(unknown).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let violation = &bad.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "department_tenant");
    assert!(violation.description.contains("public-security"), "{bad:?}");
    // A resolved or referred complaint cannot be referred (again).
    let again = kashgar
        .refer_complaint(refer("refer-twice", &number))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
}

async fn a_node_that_is_not_the_department_gets_nothing_delivered(engine: Engine) {
    let at = free_addr();
    let Some((t, clock)) = mesh(engine, at, None).await else {
        return;
    };
    // A node of another department answers at the demo department's address, with a
    // certificate that the CA issued and that carries the expected server name.
    let ca = creditmesh_pki::Ca::load(&t.pki_dir).unwrap();
    ca.issue(
        &t.pki_dir,
        TRUST_DOMAIN,
        &creditmesh_pki::LeafSpec {
            name: "cyberspace-node".into(),
            principal: Principal::new(
                PrincipalKind::Department,
                Tenant::parse("650100").unwrap(),
                "cyberspace",
            ),
            dns_names: vec!["department".into()],
            ip_addresses: vec![],
            usage: creditmesh_pki::Usage::ClientAndServer,
            lifetime_days: 1,
        },
    )
    .unwrap();
    let node = t
        .department_node(at, "cyberspace-node", "cyberspace", "650100")
        .await;
    let (_, _, referral_id) = referred(&t, "impostor-1", "13912345678").await;
    let url = t.db_url("complaints");
    tried(&url, &clock, 2).await;
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_referral WHERE status = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(received_rows(&node).await, 0);
    assert!(
        referrals_of(t.node("department").await)
            .await
            .unwrap()
            .iter()
            .all(|r| r.referral_id != referral_id)
    );
}

/// A department's certificate revoked (its key leaked) while the platform's connection to its
/// node stays open: the next referral's receipt, signed with that key, is not taken, and the
/// referral stays to be delivered.
async fn a_receipt_signed_by_a_revoked_certificate_is_not_taken(engine: Engine) {
    let Some((t, clock, node, _)) = one_delivered(engine, "revoked-1").await else {
        return;
    };

    let files = creditmesh_pki::TlsFiles::in_dir(&t.pki_dir, "department-node");
    creditmesh_pki::Ca::load(&t.pki_dir)
        .unwrap()
        .revoke(
            &t.pki_dir,
            &files.cert,
            creditmesh_pki::parse_reason("key-compromise").unwrap(),
        )
        .unwrap();
    let (_, _, second) = referred(&t, "revoked-2", "13912345678").await;
    let url = t.db_url("complaints");
    // The first is delivered: the one pending is the second.
    let refused = "SELECT COUNT(*) FROM complaints_referral WHERE status = 'pending' \
         AND last_error LIKE '%signing certificate is revoked%'";
    eventually(
        "the receipt is refused",
        Duration::from_secs(30),
        || async {
            clock.advance(Duration::from_secs(1));
            (scalar_i64(&url, refused).await == 1).then_some(())
        },
    )
    .await;
    // The node holds it; the platform does not count it delivered.
    assert_eq!(received_rows(&node).await, 2);
    assert!(
        referrals_of(t.node("department").await)
            .await
            .unwrap()
            .iter()
            .all(|r| r.referral_id != second)
    );
}

/// Referrals with five senders at once on PostgreSQL (the service's own and four more), all
/// coming due together once the department's node is up: each referral is received once and
/// recorded delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_senders_deliver_each_referral_once() {
    let at = free_addr();
    let Some((t, clock)) = mesh(Engine::Postgres, at, None).await else {
        return;
    };
    const N: usize = 20;
    let mut ids = Vec::new();
    for i in 0..N {
        let mut c = complaint(&format!("many-{i}"), "");
        c.complainant_contact = "13912345678".into();
        c.description = format!("matter {i}");
        let number = ComplaintServiceClient::new(t.public().await)
            .submit_complaint(c)
            .await
            .unwrap()
            .into_inner()
            .tracking_number;
        ids.push(
            ComplaintServiceClient::new(t.node("regulator-653100").await)
                .refer_complaint(refer(&format!("refer-many-{i}"), &number))
                .await
                .unwrap()
                .into_inner()
                .referral_id,
        );
    }
    let url = t.db_url("complaints");
    eventually(
        "every referral tried once",
        Duration::from_secs(30),
        || async {
            (scalar_i64(&url, "SELECT MIN(attempts) FROM complaints_referral").await >= 1)
                .then_some(())
        },
    )
    .await;
    let node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let store = t.mesh.store("complaints").unwrap().clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let cfg = creditmesh_complaints::ReferralsConfig {
        departments: vec![demo_department(at)],
    };
    let senders: Vec<_> = (0..4)
        .map(|_| {
            Arc::new(
                creditmesh_complaints::delivery::Delivery::new(
                    store.clone(),
                    &t.pki_dir,
                    TRUST_DOMAIN,
                    &cfg,
                    &stop,
                )
                .unwrap(),
            )
        })
        .collect();
    // Everything comes due at once for every sender.
    clock.advance(Duration::from_secs(30));
    let runs: Vec<_> = senders
        .into_iter()
        .map(|d| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut delivered = 0;
                loop {
                    delivered += d.deliver_due().await.unwrap();
                    let left = scalar_i64(
                        &url,
                        "SELECT COUNT(*) FROM complaints_referral WHERE status = 'pending'",
                    )
                    .await;
                    if left == 0 {
                        return delivered;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for r in runs {
        r.await.unwrap();
    }
    stop.cancel();
    assert_eq!(received_rows(&node).await, N as i64);
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_referral WHERE status = 'delivered'"
        )
        .await,
        N as i64
    );
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_history WHERE note LIKE 'received by%'"
        )
        .await,
        N as i64,
        "each delivery recorded once"
    );
    let listed = referrals_of(t.node("department").await).await.unwrap();
    let mut listed: Vec<String> = listed.into_iter().map(|r| r.referral_id).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
}

/// Art. 15(3) 由相关管理部门依法处置: revoking a filing for unlicensed credit reporting refers the
/// agency to the People's Bank branch, whose node receives it with a verified receipt; a decline
/// goes back to the holding authority as a supervision task.
async fn an_unlicensed_revocation_reaches_the_pboc_branch_and_a_decline_returns_to_review(
    engine: Engine,
) {
    let at = free_addr();
    let clock = Arc::new(TestClock::now());
    let Some(t) = TestMesh::start_configured(engine, clock.clone(), |rt| {
        rt.services.complaints.referrals = Arc::new(creditmesh_complaints::ReferralsConfig {
            departments: vec![creditmesh_complaints::DepartmentPeer {
                department: "pboc-branch".into(),
                tenant: "650000".into(),
                url: format!("https://{at}"),
                server_name: "pboc".into(),
            }],
        });
    })
    .await
    else {
        return;
    };
    let Some(t) = super::filing::mesh_with(t) else {
        return;
    };
    creditmesh_pki::Ca::load(&t.pki_dir)
        .unwrap()
        .issue(
            &t.pki_dir,
            TRUST_DOMAIN,
            &creditmesh_pki::LeafSpec {
                name: "pboc-node".into(),
                principal: Principal::new(
                    PrincipalKind::Department,
                    creditmesh_domain::tenant::REGION,
                    "pboc-branch",
                ),
                dns_names: vec!["pboc".into()],
                ip_addresses: vec![],
                usage: creditmesh_pki::Usage::ClientAndServer,
                lifetime_days: 1,
            },
        )
        .unwrap();
    let node = t
        .department_node(at, "pboc-node", "pboc-branch", "650000")
        .await;
    let filing_id = super::review::approve(&t, "unlicensed").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    kashgar
        .revoke_filing(RevokeFilingRequest {
            request_id: "r-15-3".into(),
            filing_id: filing_id.clone(),
            ground: RevocationGround::UnlicensedCreditReporting as i32,
            reason: "individual credit reports sold without a PBoC credit-reporting licence".into(),
            share_documents: true,
        })
        .await
        .unwrap();

    // The branch's node has it, receipted; the platform lists it for the branch.
    let pboc = t.node("pboc-node").await;
    let referral = eventually(
        "the referral delivered",
        Duration::from_secs(30),
        || async {
            clock.advance(Duration::from_secs(1));
            referrals_of(pboc.clone())
                .await
                .ok()?
                .into_iter()
                .find(|r| r.status == ReferralStatus::Delivered as i32)
        },
    )
    .await;
    assert_eq!(received_rows(&node).await, 1);
    assert_eq!(referral.revoked_filing_id, filing_id);
    assert_eq!(referral.agency_uscc, super::filing::KASHGAR);
    assert!(referral.tracking_number.is_empty());
    assert_eq!(referral.from_tenant, "653100");
    assert_eq!(referral.department, Department::PbocBranch as i32);
    assert!(
        referral.subject.contains("第十五条第三项"),
        "{}",
        referral.subject
    );
    assert!(
        referral.reason.contains("without a PBoC"),
        "{}",
        referral.reason
    );
    assert!(referral.receipt.is_some());
    // What the agency filed is shared with the branch: it opens the licence, stating why; the
    // market-regulation department, with nothing shared, cannot.
    use sha2::Digest;
    let licence = hex::encode(sha2::Sha256::digest(super::filing::pdf(&format!(
        "{} licence",
        super::filing::KASHGAR
    ))));
    let mut branch = FilingServiceClient::new(pboc.clone());
    // The share reaches filing with the revocation, an event of its own.
    let (_, bytes) = eventually(
        "the branch opens the licence",
        Duration::from_secs(20),
        || {
            let (mut branch, filing_id, licence) =
                (branch.clone(), filing_id.clone(), licence.clone());
            async move {
                super::filing::read_document(
                    &mut branch,
                    &filing_id,
                    &licence,
                    "Art. 15(3) disposal",
                )
                .await
                .ok()
            }
        },
    )
    .await;
    assert_eq!(
        bytes,
        super::filing::pdf(&format!("{} licence", super::filing::KASHGAR))
    );
    let unstated = super::filing::read_document(&mut branch, &filing_id, &licence, "")
        .await
        .unwrap_err();
    assert_eq!(super::lifecycle::fields(&unstated), ["purpose"]);
    let mut market = FilingServiceClient::new(t.node("department").await);
    let other = super::filing::read_document(&mut market, &filing_id, &licence, "curiosity")
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound, "{other:?}");

    // Declined: the holding authority gets a task and the file says so.
    ComplaintServiceClient::new(pboc.clone())
        .decline_referral(DeclineReferralRequest {
            referral_id: referral.referral_id.clone(),
            reason: "the reports were commercial ratings; refer to market regulation".into(),
        })
        .await
        .unwrap();
    let task = super::review::task_where(
        &kashgar,
        ListReviewTasksRequest {
            kinds: vec![TaskKind::Supervision as i32],
            ..Default::default()
        },
        |t| {
            t.automatic_checks
                .iter()
                .any(|c| c.evidence.contains(&referral.referral_id))
        },
    )
    .await;
    assert_eq!(task.filing_id, filing_id);
    let file = kashgar
        .get_credit_file(GetCreditFileRequest {
            uscc: super::filing::KASHGAR.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let referrals: Vec<_> = file.iter().filter(|e| e.kind == "referral").collect();
    assert_eq!(referrals.len(), 2, "{file:?}");
    assert!(
        referrals[1].summary.contains("declined"),
        "{}",
        referrals[1].summary
    );
    t.stop().await;
}

/// A referral may share the complaint's evidence (Art. 24): the department it reached opens each
/// file, the read recorded with its purpose; a referral that does not share it leaves the
/// evidence with the regulator.
async fn a_department_reads_the_evidence_the_regulator_shared(engine: Engine) {
    use creditmesh_proto::common::v1::DocumentRef;
    let at = free_addr();
    let Some((t, clock)) = mesh(engine, at, None).await else {
        return;
    };
    let _node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let mut public = ComplaintServiceClient::new(t.public().await);
    let receipt = super::filing::pdf("an invoice for a licence nobody holds");
    let sha =
        super::complaints::upload_evidence(&mut public, receipt.len() as i64, receipt.clone())
            .await
            .unwrap()
            .document
            .unwrap()
            .sha256;
    let mut shared_ids = Vec::new();
    for (id, share) in [("shared-1", true), ("kept-1", false)] {
        let mut c = complaint(id, "");
        c.evidence = vec![DocumentRef {
            sha256: sha.clone(),
        }];
        let c = public.submit_complaint(c).await.unwrap().into_inner();
        let answer = ComplaintServiceClient::new(t.node("regulator-653100").await)
            .refer_complaint(ReferComplaintRequest {
                share_evidence: share,
                ..refer(&format!("refer-{id}"), &c.tracking_number)
            })
            .await
            .unwrap()
            .into_inner();
        let referral = delivered(&t, &clock, &answer.referral_id).await;
        assert_eq!(referral.evidence.len(), usize::from(share), "{referral:?}");
        shared_ids.push(c.tracking_number);
    }
    let department = ComplaintServiceClient::new(t.node("department").await);
    let (_, bytes) = super::complaints::read_evidence(
        department.clone(),
        &shared_ids[0],
        &sha,
        "checking the licence claim",
    )
    .await
    .unwrap();
    assert_eq!(bytes, receipt);
    let kept = super::complaints::read_evidence(department, &shared_ids[1], &sha, "curiosity")
        .await
        .unwrap_err();
    assert_eq!(kept.code(), Code::NotFound, "{kept:?}");
    assert_eq!(
        scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_evidence_read WHERE principal LIKE '%/department/%' \
             AND purpose = 'checking the licence claim'"
        )
        .await,
        1
    );
    t.stop().await;
}

/// The field names of an INVALID_ARGUMENT answer, in order.
fn violated(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    super::lifecycle::fields(status)
}

/// Art. 24 (移交相关部门并通知投诉举报人) where no node exists: a complaint is referred by letter
/// to the financial regulator of a county, a body outside the listed departments; the
/// complainant is told where it went, sees it when tracking, and nothing tries to deliver it.
/// A listed department of a county without a node is referred to by letter too, and answers
/// with its certificate. A letter without its reference or day, or dated before the complaint
/// came, is refused by field.
async fn a_complaint_is_referred_by_letter_to_a_county_financial_regulator(engine: Engine) {
    let Some((t, _clock)) = mesh(engine, free_addr(), None).await else {
        return;
    };
    t.issue(
        "market-regulation-650102",
        Principal::new(
            PrincipalKind::Department,
            Tenant::parse("650102").unwrap(),
            "market-regulation",
        ),
    );
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut c = complaint("letter-1", "");
    c.complainant_contact = "letter@example.org".into();
    let c = public.submit_complaint(c).await.unwrap().into_inner();
    let today = creditmesh_domain::calendar::format_date(super::filing::today());
    let letter = |reference: &str, sent_on: &str| {
        Some(ReferralLetter {
            reference: reference.into(),
            sent_on: sent_on.into(),
        })
    };
    let to_the_county = |id: &str| ReferComplaintRequest {
        department: Department::Other as i32,
        department_name: "金融监管部门".into(),
        department_tenant: "653101".into(),
        letter: letter("喀信移〔2026〕3号", &today),
        reason: "a bank's loan practice, for the financial regulator".into(),
        ..refer(id, &c.tracking_number)
    };
    let mut kashgar = ComplaintServiceClient::new(t.node("regulator-653100").await);

    // A body outside the list is named, reached by letter, and cannot open evidence here.
    let bad = kashgar
        .refer_complaint(ReferComplaintRequest {
            department_name: String::new(),
            letter: None,
            share_evidence: true,
            ..to_the_county("bad-other")
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated(&bad),
        ["department_name", "letter", "share_evidence"]
    );
    let bad = kashgar
        .refer_complaint(ReferComplaintRequest {
            letter: letter(" ", "2999-01-01"),
            ..to_the_county("bad-letter")
        })
        .await
        .unwrap_err();
    assert_eq!(violated(&bad), ["letter.reference", "letter.sent_on"]);
    let early = kashgar
        .refer_complaint(ReferComplaintRequest {
            letter: letter("喀信移〔2026〕1号", "2020-01-01"),
            ..to_the_county("early-letter")
        })
        .await
        .unwrap_err();
    assert_eq!(violated(&early), ["letter.sent_on"]);
    let why = &early.get_details_bad_request().unwrap().field_violations[0].description;
    assert!(why.contains("before the complaint was received"), "{why}");
    // A listed department without a node: refused without a letter, the letter suggested.
    let no_node = kashgar
        .refer_complaint(ReferComplaintRequest {
            department: Department::MarketRegulation as i32,
            department_tenant: "650102".into(),
            ..refer("no-node", &c.tracking_number)
        })
        .await
        .unwrap_err();
    assert_eq!(violated(&no_node), ["department_tenant"]);
    let why = &no_node.get_details_bad_request().unwrap().field_violations[0].description;
    assert!(why.contains("refer by letter"), "{why}");

    let answer = kashgar
        .refer_complaint(to_the_county("by-letter"))
        .await
        .unwrap()
        .into_inner();
    let referred = answer.complaint.unwrap();
    assert_eq!(referred.status, ComplaintStatus::Referred as i32);
    let referral = &referred.referrals[0];
    assert_eq!(referral.status, ReferralStatus::SentByLetter as i32);
    assert_eq!(referral.department, Department::Other as i32);
    assert_eq!(referral.department_name, "金融监管部门");
    assert_eq!(referral.department_tenant, "653101");
    assert_eq!(
        referral.letter.as_ref().unwrap().reference,
        "喀信移〔2026〕3号"
    );
    assert!(referral.receipt.is_none());

    // The complainant is told, and sees where it went.
    let tracked = ComplaintServiceClient::new(t.public().await)
        .track_complaint(TrackComplaintRequest {
            tracking_number: c.tracking_number.clone(),
            access_code: c.access_code.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tracked.status, ComplaintStatus::Referred as i32);
    assert_eq!(tracked.referred_to, Department::Other as i32);
    assert_eq!(tracked.referred_to_name, "喀什地区喀什市金融监管部门");
    assert!(
        tracked
            .history
            .iter()
            .any(|h| h.note.contains("by letter 喀信移〔2026〕3号")),
        "{:?}",
        tracked.history
    );
    let url = t.db_url("complaints");
    let told = format!(
        "SELECT COUNT(*) FROM complaints_notification WHERE tracking_number = '{}' \
         AND subject LIKE '%已移送喀什地区喀什市金融监管部门%' AND body LIKE '%喀信移〔2026〕3号%'",
        c.tracking_number
    );
    assert_eq!(scalar_i64(&url, told.leak()).await, 1);
    // Nothing tries to deliver a letter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM complaints_referral WHERE status = 'sent_by_letter' \
             AND attempts = 0 AND last_error = ''"
        )
        .await,
        1
    );

    // A county's market regulation without a node: by letter, and it answers here.
    let mut second = complaint("letter-2", "");
    second.complainant_contact = String::new();
    let second = public.submit_complaint(second).await.unwrap().into_inner();
    let referral_id = kashgar
        .refer_complaint(ReferComplaintRequest {
            department: Department::MarketRegulation as i32,
            department_tenant: "650102".into(),
            letter: letter("喀信移〔2026〕4号", &today),
            ..refer("by-letter-2", &second.tracking_number)
        })
        .await
        .unwrap()
        .into_inner()
        .referral_id;
    let mut county = ComplaintServiceClient::new(t.node("market-regulation-650102").await);
    let listed = referrals_of(t.node("market-regulation-650102").await)
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|r| r.referral_id.as_str())
            .collect::<Vec<_>>(),
        [referral_id.as_str()]
    );
    let acked = county
        .acknowledge_referral(AcknowledgeReferralRequest {
            referral_id: referral_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .referral
        .unwrap();
    assert_eq!(acked.status, ReferralStatus::Acknowledged as i32);
    t.stop().await;
}

/// Art. 23 (保密): a department reads an agency's non-public records only within a referral it
/// received, for the agency referred, with the provision it reads under; it is logged and
/// shown to the subject. Without a referral, with another department's, after declining it or
/// once its term has run, it is refused; a referral about another agency shows nothing.
async fn a_department_reads_records_only_within_a_referral_it_received(engine: Engine) {
    use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
    use creditmesh_proto::datapush::v1::{FindRecordsRequest, GetRecordRequest, SubjectKind};
    let at = free_addr();
    let Some((t, clock)) = mesh(engine, at, None).await else {
        return;
    };
    let (t, _) = super::datapush::pushing_on(super::filing::mesh_with(t).unwrap()).await;
    let _node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    t.issue(
        "cyberspace-650100",
        Principal::new(
            PrincipalKind::Department,
            Tenant::parse("650100").unwrap(),
            "cyberspace",
        ),
    );
    let who = super::objections::subject();
    super::datapush::push(
        t.node("agency-kashgar").await,
        vec![super::objections::loan(
            "case-1",
            &who,
            "2026-10-15",
            1200.0,
        )],
    )
    .await
    .unwrap();
    let record_id = super::objections::record_id(&t, "case-1").await;

    // One complaint about the agency that pushed, one about another; both referred.
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut referral_ids = Vec::new();
    for (id, uscc) in [
        ("case-kashgar", super::filing::KASHGAR),
        ("case-beijing", super::filing::BEIJING),
    ] {
        let mut c = complaint(id, "");
        c.agency_uscc = uscc.into();
        let c = public.submit_complaint(c).await.unwrap().into_inner();
        let answer = ComplaintServiceClient::new(t.node("regulator-653100").await)
            .refer_complaint(refer(&format!("refer-{id}"), &c.tracking_number))
            .await
            .unwrap()
            .into_inner();
        delivered(&t, &clock, &answer.referral_id).await;
        referral_ids.push(answer.referral_id);
    }
    let (kashgar_case, beijing_case) = (&referral_ids[0], &referral_ids[1]);
    let find = |referral_id: &str, legal_basis: &str| FindRecordsRequest {
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: who.clone(),
        purpose: "checking the licence claim of the complaint".into(),
        referral_id: referral_id.into(),
        legal_basis: legal_basis.into(),
        ..Default::default()
    };
    const BASIS: &str = "《市场监督管理投诉举报处理暂行办法》第十五条";
    let mut department = DataPushServiceClient::new(t.node("department").await);

    // Without a referral or a legal basis: which fields are missing.
    let err = department.find_records(find("", "")).await.unwrap_err();
    assert_eq!(violated(&err), ["referral_id", "legal_basis"]);
    // A referral the platform does not know, and another department's, alike.
    let unknown = department
        .find_records(find("0190aaaa-0000-7000-8000-000000000000", BASIS))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::PermissionDenied, "{unknown:?}");
    let mut cyberspace = DataPushServiceClient::new(t.node("cyberspace-650100").await);
    let others = cyberspace
        .find_records(find(kashgar_case, BASIS))
        .await
        .unwrap_err();
    assert_eq!(others.code(), Code::PermissionDenied, "{others:?}");
    assert_eq!(
        others.message().replace(kashgar_case, "ID"),
        unknown
            .message()
            .replace("0190aaaa-0000-7000-8000-000000000000", "ID")
    );

    // Within the referral about the agency that pushed: its record, read and logged.
    let read = eventually(
        "the department's case is known",
        Duration::from_secs(30),
        || {
            let mut department = department.clone();
            let req = find(kashgar_case, BASIS);
            async move { department.find_records(req).await.ok() }
        },
    )
    .await
    .into_inner()
    .records;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].record_id, record_id);
    let one = department
        .get_record(GetRecordRequest {
            record_id: record_id.clone(),
            purpose: "the amount the complainant disputes".into(),
            referral_id: kashgar_case.clone(),
            legal_basis: BASIS.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.record.unwrap().record_id, record_id);
    // Within the referral about another agency: nothing of this one's.
    let beijing = eventually("the second case is known", Duration::from_secs(30), || {
        let mut department = department.clone();
        let req = find(beijing_case, BASIS);
        async move { department.find_records(req).await.ok() }
    })
    .await
    .into_inner()
    .records;
    assert!(beijing.is_empty(), "{beijing:?}");
    let err = department
        .get_record(GetRecordRequest {
            record_id: record_id.clone(),
            purpose: "curiosity".into(),
            referral_id: beijing_case.clone(),
            legal_basis: BASIS.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let logged = scalar_i64(
        &t.db_url("datapush"),
        super::objections::sql(format!(
            "SELECT COUNT(*) FROM datapush_use WHERE principal LIKE '%/department/%' \
             AND referral_id = '{kashgar_case}' AND legal_basis = '{BASIS}'"
        )),
    )
    .await;
    assert_eq!(logged, 2);
    // The subject sees the read with its basis, through the desk's report.
    let report = DataPushServiceClient::new(t.node("regulator-653100").await)
        .get_subject_report(creditmesh_proto::datapush::v1::GetSubjectReportRequest {
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
            purpose: "the subject asked at the desk".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let uses = &report.records[0].uses;
    assert!(
        uses.iter()
            .any(|u| u.referral_id == *kashgar_case && u.legal_basis == BASIS),
        "{uses:?}"
    );

    // Declined, the referral is no case any more.
    ComplaintServiceClient::new(t.node("department").await)
        .decline_referral(DeclineReferralRequest {
            referral_id: beijing_case.clone(),
            reason: "not a market-regulation matter".into(),
        })
        .await
        .unwrap();
    let closed = eventually("the case is closed", Duration::from_secs(30), || {
        let mut department = department.clone();
        let req = find(beijing_case, BASIS);
        async move { department.find_records(req).await.err() }
    })
    .await;
    assert_eq!(closed.code(), Code::PermissionDenied, "{closed:?}");
    assert!(closed.message().contains("closed"), "{closed:?}");
    // Six months after its receipt the other one has ended too.
    clock.advance(Duration::from_secs(186 * 86_400));
    let ended = department
        .find_records(find(kashgar_case, BASIS))
        .await
        .unwrap_err();
    assert_eq!(ended.code(), Code::PermissionDenied, "{ended:?}");
    assert!(ended.message().contains("ended on"), "{ended:?}");
    t.stop().await;
}

/// A referral stored before contacts were sealed (its contact in the stored bytes) is sealed
/// when the complaints service starts, and the department still sees the contact.
async fn a_referral_stored_with_its_contact_in_clear_is_sealed_at_start(engine: Engine) {
    use prost::Message;
    use sqlx::Connection;
    let Some((t, clock, _node, [_, _, referral_id])) = one_delivered(engine, "old-1").await else {
        return;
    };
    let url = t.db_url("complaints");
    let (stored, sealed) = stored_referral(&url).await;
    assert!(!sealed.is_empty() && !contains(&stored, "13912345678"));
    // As an earlier version stored it.
    let mut old = Referral::decode(stored.as_slice()).unwrap();
    old.complainant_contact = "13912345678".into();
    {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE complaints_referral SET payload = $1, sealed_contact = ''")
            .bind(hex::encode(old.encode_to_vec()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let _replica = t.replica("complaints", clock.clone(), |_| {}).await;
    let (stored, sealed) = eventually("the contact is sealed", Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let (stored, sealed) = stored_referral(&url).await;
            (!sealed.is_empty()).then_some((stored, sealed))
        }
    })
    .await;
    assert!(sealed.starts_with("sealed1:"), "{sealed}");
    assert!(!contains(&stored, "13912345678"));
    let listed = referrals_of(t.node("department").await).await.unwrap();
    let listed = listed
        .iter()
        .find(|r| r.referral_id == referral_id)
        .unwrap();
    assert_eq!(listed.complainant_contact, "13912345678");
    t.stop().await;
}
