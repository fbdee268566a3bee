//! The authorities' console in a real browser, entered with an officer's certificate held in
//! the browser's own certificate store: a filing reviewed with its materials opened, an
//! interview and a finding recorded; another prefecture's officer sees none of it; without a
//! regulator's certificate nothing is shown. And the gateway's side of it: only the console
//! may name an officer, and only by a certificate the node listener itself would accept.

use std::time::Duration;

use base64::Engine as _;
use creditmesh_pki::DEMO_AGENCY_USCC;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{
    GetCreditFileRequest, GetReviewTaskRequest, ListReviewTasksRequest, TaskStatus,
};
use creditmesh_tests::browser::Browser;
use creditmesh_tests::{Engine, TestMesh, eventually, https_get_as};
use fantoccini::Locator;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::browser::{click_through, fill, press, text_of};
use super::filing::{filed, mesh, pdf};
use super::review::the_task;

crate::on_both_engines!(
    an_officer_reviews_and_supervises_in_the_console_with_their_certificate,
    only_the_console_names_an_officer_and_only_by_a_valid_certificate,
    an_officer_accepts_resolves_and_refers_complaints_in_the_console,
    an_officer_decides_a_gone_agencys_objection_and_issues_an_access_code,
    an_officer_corrects_and_erases_notices_and_sees_the_logs_head,
);

/// The console in front of `t`'s node listener, as `creditmesh dev` starts it.
async fn console(t: &TestMesh) -> (String, CancellationToken) {
    let stop = CancellationToken::new();
    let cfg = creditmesh_web::console::ConsoleConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let node = creditmesh_web::console::ConsoleNode {
        tls: creditmesh_pki::TlsFiles::in_dir(&t.pki_dir, "service-console"),
        trust_domain: creditmesh_tests::TRUST_DOMAIN.into(),
        gateway_url: format!("https://{}", t.mesh.node_addr),
        form_seed: None,
    };
    let console = creditmesh_web::console::start(&cfg, &node, stop.clone())
        .await
        .expect("the console starts");
    (format!("https://{}", console.addr), stop)
}

async fn page_source(b: &Browser) -> String {
    b.client.source().await.unwrap()
}

async fn an_officer_reviews_and_supervises_in_the_console_with_their_certificate(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency").await);
    filed(&mut agency, DEMO_AGENCY_USCC, "2020-01-02", "console-1").await;
    let mut urumqi = ReviewServiceClient::new(t.node("regulator-650100").await);
    let task = the_task(&mut urumqi).await;
    let due = task.deadline.clone().unwrap().due_date;
    let (url, stop) = console(&t).await;
    let Some(b) = Browser::with_certificate(&t.pki_dir, Some("regulator-650100")).await else {
        return;
    };

    b.client.goto(&url).await.unwrap();
    b.record_page("console-home").await;
    // The queue, by deadline, under the officer's own certificate.
    b.client.goto(&format!("{url}/review")).await.unwrap();
    let officer = text_of(&b, "#officer").await;
    assert!(officer.contains("regulator/650100"), "{officer}");
    assert!(officer.contains("乌鲁木齐市"), "{officer}");
    let queue = text_of(&b, "#queue").await;
    assert!(queue.contains(&task.agency_name), "{queue}");
    assert!(queue.contains(&due), "{queue}");
    assert!(
        queue.contains("乌鲁木齐市（650100）"),
        "authorities by name: {queue}"
    );
    assert!(
        queue.contains(&task.working_days_left.to_string()) && task.working_days_left > 0,
        "{queue} / {}",
        task.working_days_left
    );
    b.record_page("console-queue").await;

    // The task, its materials opened as the officer.
    click_through(&b, Locator::LinkText(&task.agency_name)).await;
    let materials = b
        .client
        .find_all(Locator::Css("#materials a"))
        .await
        .unwrap();
    assert_eq!(materials.len(), 9, "every document of the filing is listed");
    b.record_page("console-task").await;
    let mut licence = None;
    for m in &materials {
        if m.text().await.unwrap().contains("营业执照") {
            licence = m.attr("href").await.unwrap();
        }
    }
    let licence = licence.expect("the business licence is listed");
    let (status, headers, body) = https_get_as(
        &t.pki_dir,
        Some("regulator-650100"),
        &format!("{url}{licence}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, pdf(&format!("{DEMO_AGENCY_USCC} licence")));
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-security-policy"], "sandbox");
    // Without a certificate the console does not even finish the handshake's request.
    let refused = tokio::spawn({
        let pki = t.pki_dir.clone();
        let u = format!("{url}{licence}");
        async move { https_get_as(&pki, None, &u).await }
    })
    .await;
    assert!(refused.is_err(), "no certificate, no document");

    // Refusing without a ground is refused beside the form, and changes nothing.
    fill(&b, "reason", "材料不符").await;
    press(&b, "#refuse").await;
    let errors = text_of(&b, "#errors").await;
    assert!(errors.contains("ground"), "{errors}");
    assert!(text_of(&b, "#status").await.contains("待审核"));
    b.record_page("console-task-refusal-without-ground").await;

    // Approved: a prefecture's approval goes on to the region (Art. 10).
    press(&b, "#approve").await;
    let status = text_of(&b, "#status").await;
    assert!(status.contains("已报送自治区"), "{status}");
    let decided = urumqi
        .get_review_task(GetReviewTaskRequest {
            task_id: task.task_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(decided.status, TaskStatus::Forwarded as i32);
    b.record_page("console-task-decided").await;

    // An interview and a finding, recorded in the agency's credit file.
    b.client
        .goto(&format!("{url}/agencies/{DEMO_AGENCY_USCC}"))
        .await
        .unwrap();
    let today = creditmesh_domain::calendar::format_date(
        creditmesh_domain::calendar::cst_date(
            time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000,
        )
        .unwrap(),
    );
    b.record_page("console-agency").await;
    fill(&b, "held_on", &today).await;
    fill(&b, "subject", "收费公示不全").await;
    fill(&b, "summary", "约谈法定代表人，要求十日内补全收费公示。").await;
    press(&b, "#record-interview").await;
    let entries = text_of(&b, "#entries").await;
    assert!(entries.contains("约谈"), "{entries}");
    b.client
        .find(Locator::Css("#category option:nth-child(2)"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "description", "宣传材料承诺评价结果为AAA级。").await;
    press(&b, "#record-finding").await;
    let entries = text_of(&b, "#entries").await;
    assert!(entries.contains("违规认定"), "{entries}");

    // An inspection; an order with its due date, then its outcome; the risk tier.
    fill(&b, "inspected_on", &today).await;
    fill(&b, "result", "现场检查发现收费公示不全。").await;
    press(&b, "#record-inspection").await;
    assert!(text_of(&b, "#entries").await.contains("检查"));
    fill(&b, "findings", "收费公示不全。").await;
    fill(&b, "required_actions", "补全收费公示。").await;
    fill(&b, "working_days", "10").await;
    press(&b, "#issue-order").await;
    let done = text_of(&b, "#done").await;
    let order_id = done
        .split("order ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the order's id is shown: {done}"))
        .to_owned();
    assert!(done.contains(" due 20"), "the due date is shown: {done}");
    assert!(text_of(&b, "#entries").await.contains("责令整改"));
    fill(&b, "order_id", &order_id).await;
    fill(&b, "note", "已补全。").await;
    press(&b, "#record-outcome").await;
    assert!(text_of(&b, "#done").await.contains("outcome recorded"));
    b.client
        .find(Locator::Css("#tier-choice option[value='high']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "risk-reason", "一年内两次违规。").await;
    press(&b, "#set-tier").await;
    assert!(text_of(&b, "#tier").await.contains("高"));
    b.record_page("console-credit-file").await;

    // The agencies this authority holds, and a spot-check draw among them.
    b.client.goto(&format!("{url}/agencies")).await.unwrap();
    assert!(text_of(&b, "#agencies").await.contains(DEMO_AGENCY_USCC));
    b.record_page("console-agencies").await;
    fill(&b, "seed", "console-seed").await;
    press(&b, "#draw-sample").await;
    assert!(!text_of(&b, "#draw-id").await.is_empty());
    b.record_page("console-draw").await;

    // A practitioner supervised in their own name, by their identity card; the number stays
    // out of every address and is shown masked.
    let number = super::filing::person_id("65010219900307123");
    b.client
        .goto(&format!("{url}/practitioners"))
        .await
        .unwrap();
    fill(&b, "document_number", &number).await;
    fill(&b, "practitioner-name", "李四").await;
    press(&b, "#open-practitioner").await;
    assert!(text_of(&b, "#file-key").await.starts_with("P-"));
    fill(&b, "held_on", &today).await;
    fill(&b, "subject", "出借从业证书").await;
    fill(&b, "summary", "约谈本人，告知不得出借证书。").await;
    press(&b, "#record-interview").await;
    assert!(text_of(&b, "#done").await.contains("interview"));
    assert!(text_of(&b, "#entries").await.contains("约谈"));
    let address = b.client.current_url().await.unwrap();
    assert!(!address.as_str().contains(&number[..10]), "{address}");
    let page = page_source(&b).await;
    assert!(!page.contains(&format!(">{number}<")), "shown masked");
    b.record_page("console-practitioner").await;

    // An agency that never filed (Art. 2): supervised by its code, named in the form; without
    // its name the act is refused beside the form.
    const UNFILED: &str = "91650102MA7XJ0011B";
    b.client
        .goto(&format!("{url}/agencies/{UNFILED}"))
        .await
        .unwrap();
    fill(&b, "held_on", &today).await;
    fill(&b, "subject", "未建档从事信用服务").await;
    fill(&b, "summary", "约谈负责人，告知应当建档。").await;
    press(&b, "#record-interview").await;
    assert!(text_of(&b, "#errors").await.contains("agency_name"));
    fill(&b, "held_on", &today).await;
    fill(&b, "subject", "未建档从事信用服务").await;
    fill(&b, "summary", "约谈负责人，告知应当建档。").await;
    fill(&b, "interview-name", "乌鲁木齐某信用咨询有限公司").await;
    press(&b, "#record-interview").await;
    assert!(text_of(&b, "#done").await.contains("interview"));
    assert!(text_of(&b, "#entries").await.contains("约谈"));
    let file = urumqi
        .get_credit_file(GetCreditFileRequest {
            uscc: DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for kind in ["interview", "finding", "inspection", "rectification"] {
        let entry = file
            .entries
            .iter()
            .find(|e| e.kind == kind)
            .unwrap_or_else(|| panic!("a {kind} entry: {:?}", file.entries));
        assert!(
            entry.principal.ends_with("/regulator/650100"),
            "the officer's authority made it, not the console: {}",
            entry.principal
        );
    }
    b.close().await;

    // Kashgar's officer: no task, no file of Urumqi's agency.
    let Some(k) = Browser::with_certificate(&t.pki_dir, Some("regulator-653100")).await else {
        return;
    };
    k.client.goto(&format!("{url}/review")).await.unwrap();
    assert!(text_of(&k, "#officer").await.contains("653100"));
    assert!(!page_source(&k).await.contains(&task.agency_name));
    k.client
        .goto(&format!("{url}/review/{}", task.task_id))
        .await
        .unwrap();
    let source = page_source(&k).await;
    assert!(source.contains("未找到"), "{source}");
    assert!(!source.contains(&task.agency_name));
    k.record_page("console-not-found").await;
    k.client
        .goto(&format!("{url}/agencies/{DEMO_AGENCY_USCC}"))
        .await
        .unwrap();
    let source = page_source(&k).await;
    assert!(!source.contains("收费公示不全"), "{source}");
    k.close().await;

    // No certificate: the browser gets no page of the console at all.
    let Some(n) = Browser::with_certificate(&t.pki_dir, None).await else {
        return;
    };
    let _ = n.client.goto(&format!("{url}/review")).await;
    let source = page_source(&n).await;
    assert!(!source.contains("审核队列"), "{source}");
    n.close().await;

    // An agency's certificate: shown the door.
    let Some(a) = Browser::with_certificate(&t.pki_dir, Some("agency")).await else {
        return;
    };
    a.client.goto(&format!("{url}/review")).await.unwrap();
    let source = page_source(&a).await;
    assert!(source.contains("仅供社会信用主管部门人员使用"), "{source}");
    assert!(!source.contains("审核队列") && !source.contains("id=\"queue\""));
    a.close().await;
    stop.cancel();
}

fn der_of(t: &TestMesh, name: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let cert =
        rustls::pki_types::CertificateDer::from_pem_file(t.pki_dir.join(format!("{name}.pem")))
            .unwrap();
    base64::engine::general_purpose::STANDARD.encode(cert.as_ref())
}

async fn list_as(
    t: &TestMesh,
    caller: &str,
    officer: Option<&str>,
) -> Result<usize, tonic::Status> {
    let mut client = ReviewServiceClient::new(t.node(caller).await);
    let mut request = tonic::Request::new(ListReviewTasksRequest::default());
    if let Some(cert) = officer {
        request
            .metadata_mut()
            .insert("x-creditmesh-officer-cert", cert.parse().unwrap());
    }
    client
        .list_review_tasks(request)
        .await
        .map(|r| r.into_inner().tasks.len())
}

async fn only_the_console_names_an_officer_and_only_by_a_valid_certificate(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency").await);
    filed(&mut agency, DEMO_AGENCY_USCC, "2020-01-02", "console-2").await;
    let urumqi = der_of(&t, "regulator-650100");
    let kashgar = der_of(&t, "regulator-653100");
    eventually("urumqi's task", Duration::from_secs(30), || async {
        (list_as(&t, "service-console", Some(&urumqi)).await.ok()? == 1).then_some(())
    })
    .await;
    // The console as Kashgar's officer sees Kashgar's (none).
    assert_eq!(
        list_as(&t, "service-console", Some(&kashgar))
            .await
            .unwrap(),
        0
    );
    // The console as itself is no regulator.
    let own = list_as(&t, "service-console", None).await.unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");
    // Nobody else may name an officer, however good the certificate.
    let agency_naming = list_as(&t, "agency", Some(&urumqi)).await.unwrap_err();
    assert_eq!(
        agency_naming.code(),
        Code::PermissionDenied,
        "{agency_naming:?}"
    );
    let kashgar_naming = list_as(&t, "regulator-653100", Some(&urumqi))
        .await
        .unwrap_err();
    assert_eq!(kashgar_naming.code(), Code::PermissionDenied);
    // The console serves regulators' officers only.
    let agency_cert = der_of(&t, "agency");
    let not_officer = list_as(&t, "service-console", Some(&agency_cert))
        .await
        .unwrap_err();
    assert_eq!(
        not_officer.code(),
        Code::PermissionDenied,
        "{not_officer:?}"
    );
    // Not base64; a certificate of another CA naming Urumqi's regulator.
    let garbage = list_as(&t, "service-console", Some("not*base64"))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::Unauthenticated);
    let elsewhere = tempfile::tempdir().unwrap();
    let other_ca = creditmesh_pki::Ca::init(elsewhere.path(), 1).unwrap();
    other_ca
        .issue(
            elsewhere.path(),
            creditmesh_tests::TRUST_DOMAIN,
            &creditmesh_pki::LeafSpec {
                name: "forged".into(),
                principal: creditmesh_domain::Principal::new(
                    creditmesh_domain::PrincipalKind::Regulator,
                    creditmesh_domain::Tenant::parse("650100").unwrap(),
                    "",
                ),
                dns_names: vec![],
                ip_addresses: vec![],
                usage: creditmesh_pki::Usage::Client,
                lifetime_days: 1,
            },
        )
        .unwrap();
    let forged = {
        use rustls::pki_types::pem::PemObject;
        let cert =
            rustls::pki_types::CertificateDer::from_pem_file(elsewhere.path().join("forged.pem"))
                .unwrap();
        base64::engine::general_purpose::STANDARD.encode(cert.as_ref())
    };
    let forged = list_as(&t, "service-console", Some(&forged))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::Unauthenticated, "{forged:?}");
}

/// A complaint to Urumqi's authority about the demo agency, from the public listener, with
/// `evidence` uploaded first.
async fn complain(t: &TestMesh, request_id: &str, subject: &str, evidence: Vec<Vec<u8>>) -> String {
    use creditmesh_proto::common::v1::DocumentRef;
    use creditmesh_proto::complaints::v1::SubmitComplaintRequest;
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    let mut public = ComplaintServiceClient::new(t.public().await);
    let mut refs = Vec::new();
    for bytes in evidence {
        let uploaded = super::complaints::upload_evidence(&mut public, bytes.len() as i64, bytes)
            .await
            .unwrap();
        refs.push(DocumentRef {
            sha256: uploaded.document.unwrap().sha256,
        });
    }
    public
        .submit_complaint(SubmitComplaintRequest {
            request_id: request_id.into(),
            agency_uscc: DEMO_AGENCY_USCC.into(),
            agency_name: "乌鲁木齐信用评价有限公司".into(),
            tenant: "650100".into(),
            complainant_name: "阿依努尔".into(),
            complainant_contact: "aynur@example.org".into(),
            subject: subject.into(),
            description: "机构承诺付双倍费用即可评为AAA级。".into(),
            evidence: refs,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .tracking_number
}

fn today_cst() -> String {
    creditmesh_domain::calendar::format_date(
        creditmesh_domain::calendar::cst_date(
            time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000,
        )
        .unwrap(),
    )
}

async fn an_officer_accepts_resolves_and_refers_complaints_in_the_console(engine: Engine) {
    // A mesh that refers to Urumqi market regulation's own node.
    let at = creditmesh_tests::free_addr();
    let Some((t, _clock)) = super::referrals::mesh(engine, at, None).await else {
        return;
    };
    let _node = t
        .department_node(at, "department-node", "market-regulation", "650100")
        .await;
    let referred = complain(&t, "console-c1", "承诺评级", Vec::new()).await;
    let to_node = complain(&t, "console-c3", "未经授权查询", Vec::new()).await;
    let receipt = pdf("fee receipt");
    let resolved = complain(&t, "console-c2", "收费未公示", vec![receipt.clone()]).await;
    let (url, stop) = console(&t).await;
    let Some(b) = Browser::with_certificate(&t.pki_dir, Some("regulator-650100")).await else {
        return;
    };
    b.client.goto(&format!("{url}/complaints")).await.unwrap();
    let queue = text_of(&b, "#complaints").await;
    assert!(
        queue.contains(&referred) && queue.contains(&resolved),
        "{queue}"
    );
    b.record_page("console-complaints").await;

    // One is accepted, then resolved on a verified finding against the agency.
    click_through(&b, Locator::LinkText(&resolved)).await;
    b.record_page("console-complaint").await;
    // The evidence, opened as the officer.
    let href = b
        .client
        .find(Locator::Css("#evidence a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, headers, body) = https_get_as(
        &t.pki_dir,
        Some("regulator-650100"),
        &format!("{url}{href}"),
    )
    .await;
    assert_eq!((status, body), (200, receipt));
    assert_eq!(headers["content-security-policy"], "sandbox");
    press(&b, "#accept-complaint").await;
    assert!(text_of(&b, "#status").await.contains("已受理"));
    fill(
        &b,
        "verified",
        "调取了机构收费公示页面和合同原件，核实收费项目未公示。",
    )
    .await;
    fill(&b, "outcome-text", "经核查，投诉属实，已责令机构改正。").await;
    b.client
        .find(Locator::Id("against_agency"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press(&b, "#resolve-complaint").await;
    let status = text_of(&b, "#status").await;
    assert!(status.contains("已办结"), "{status}");
    assert!(text_of(&b, "#outcome").await.contains("投诉属实"));
    b.record_page("console-complaint-resolved").await;

    // The other goes by letter to a department outside the platform.
    b.client
        .goto(&format!("{url}/complaints/{referred}"))
        .await
        .unwrap();
    let other = creditmesh_proto::complaints::v1::Department::Other as i32;
    b.client
        .find(Locator::Css(&format!(
            "#department option[value='{other}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "department_tenant", "650100").await;
    fill(&b, "department_name", "国家金融监督管理总局新疆监管局").await;
    fill(&b, "refer-reason", "涉及金融信用信息，不属本机关职责。").await;
    b.client
        .find(Locator::Id("channel-letter"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "letter_reference", "乌信移〔2026〕1号").await;
    fill(&b, "letter_sent_on", &today_cst()).await;
    press(&b, "#refer-complaint").await;
    let status = text_of(&b, "#status").await;
    assert!(status.contains("已转交有关部门"), "{status}");
    let referrals = text_of(&b, "#referrals").await;
    assert!(
        referrals.contains("已函送") && referrals.contains("乌信移〔2026〕1号"),
        "{referrals}"
    );
    b.record_page("console-complaint-referred").await;

    // Both are the officer's acts, attributed to Urumqi's authority.
    let file = ReviewServiceClient::new(t.node("regulator-650100").await)
        .get_credit_file(GetCreditFileRequest {
            uscc: DEMO_AGENCY_USCC.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let finding = file
        .entries
        .iter()
        .find(|e| e.kind == "complaint_finding")
        .unwrap_or_else(|| panic!("the finding reached the credit file: {:?}", file.entries));
    assert!(
        finding.principal.ends_with("/regulator/650100"),
        "{}",
        finding.principal
    );

    // The third goes to the department's node, which signs a receipt for it.
    b.client
        .goto(&format!("{url}/complaints/{to_node}"))
        .await
        .unwrap();
    let market = creditmesh_proto::complaints::v1::Department::MarketRegulation as i32;
    b.client
        .find(Locator::Css(&format!(
            "#department option[value='{market}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "department_tenant", "650100").await;
    fill(&b, "refer-reason", "属市场监管部门职责。").await;
    press(&b, "#refer-complaint").await;
    let delivered = eventually("the receipt shown", Duration::from_secs(30), || {
        let b = &b;
        async move {
            b.client.refresh().await.ok()?;
            let shown = b
                .client
                .find(Locator::Css("#referrals"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            shown.contains("回执已验证").then_some(shown)
        }
    })
    .await;
    assert!(delivered.contains("650100"), "{delivered}");
    b.record_page("console-complaint-delivered").await;

    // The department declines it: the decline and its reason are shown, and the complaint is
    // the authority's again.
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    use creditmesh_proto::complaints::v1::{DeclineReferralRequest, GetComplaintRequest};
    let referral_id = ComplaintServiceClient::new(t.node("regulator-650100").await)
        .get_complaint(GetComplaintRequest {
            tracking_number: to_node.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap()
        .referrals[0]
        .referral_id
        .clone();
    ComplaintServiceClient::new(t.node("department").await)
        .decline_referral(DeclineReferralRequest {
            referral_id,
            reason: "不属市场监管职责".into(),
        })
        .await
        .unwrap();
    b.client.refresh().await.unwrap();
    let referrals = text_of(&b, "#referrals").await;
    assert!(
        referrals.contains("已退回") && referrals.contains("不属市场监管职责"),
        "{referrals}"
    );

    // A form on another site posting to the console, sent by the officer's browser with the
    // officer's certificate: refused before the console reads it.
    let forged = format!(
        "<!doctype html><meta charset=utf-8><form method=post \
         action='{url}/complaints/{referred}/accept'><input name=request_id value=forged>\
         <button id=go>go</button></form>"
    );
    let forged = base64::engine::general_purpose::STANDARD.encode(forged);
    b.client
        .goto(&format!("data:text/html;base64,{forged}"))
        .await
        .unwrap();
    press(&b, "#go").await;
    let body = text_of(&b, "body").await;
    assert!(body.contains("来自其他站点"), "{body}");
    b.close().await;

    // Kashgar's officer sees neither.
    let Some(k) = Browser::with_certificate(&t.pki_dir, Some("regulator-653100")).await else {
        return;
    };
    k.client.goto(&format!("{url}/complaints")).await.unwrap();
    let source = page_source(&k).await;
    assert!(
        !source.contains(&referred) && !source.contains(&resolved),
        "{source}"
    );
    k.client
        .goto(&format!("{url}/complaints/{referred}"))
        .await
        .unwrap();
    let source = page_source(&k).await;
    assert!(
        source.contains("未找到") && !source.contains("阿依努尔"),
        "{source}"
    );
    k.close().await;
    stop.cancel();
}

async fn an_officer_decides_a_gone_agencys_objection_and_issues_an_access_code(engine: Engine) {
    use super::objections::{
        client, loan, record_id, subject, the_register_says_revoked, upload_material,
    };
    use creditmesh_proto::datapush::v1::{
        FileObjectionRequest, ListObjectionsRequest, ObjectionDecision, ObjectionGround,
    };
    use creditmesh_proto::events::v1::FilingDecided;
    let Some(t) = mesh(engine).await else { return };
    // The demo agency of Urumqi, filed and approved, pushes a record.
    let mut filing = FilingServiceClient::new(t.node("agency").await);
    let filing_id = filed(&mut filing, DEMO_AGENCY_USCC, "2020-05-01", "console-o").await;
    super::filing::review_says(
        &t,
        "650100",
        FilingDecided {
            filing_id,
            approved: true,
            ..Default::default()
        },
    )
    .await;
    super::datapush::agencies_known(&t, 1).await;
    super::datapush::push(
        t.node("agency").await,
        vec![loan("console-gone", &subject(), "2026-09-01", 1.0)],
    )
    .await
    .unwrap();
    let id = record_id(&t, "console-gone").await;
    let mut urumqi = client(&t, "regulator-650100").await;
    // Filed at the desk, with the subject's bank receipt.
    let receipt = pdf("bank receipt");
    let material = upload_material(&mut urumqi, &id, "", receipt.clone())
        .await
        .unwrap();
    let o = urumqi
        .file_objection(FileObjectionRequest {
            request_id: "console-gone".into(),
            record_id: id.clone(),
            subject_identifier: subject(),
            ground: ObjectionGround::Error as i32,
            statement: "金额有误".into(),
            contact: "subject@example.org".into(),
            material_ids: vec![material.material_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .objection
        .unwrap();
    the_register_says_revoked(&t, "650100", DEMO_AGENCY_USCC).await;
    let (url, stop) = console(&t).await;
    let Some(b) = Browser::with_certificate(&t.pki_dir, Some("regulator-650100")).await else {
        return;
    };
    b.client.goto(&format!("{url}/objections")).await.unwrap();
    let card = format!("#objection-{}", o.objection_id);
    let shown = text_of(&b, &card).await;
    assert!(shown.contains("信息错误"), "{shown}");
    // The receipt, opened to decide (the read recorded with that purpose).
    let href = b
        .client
        .find(Locator::Css(&format!("{card} .materials a")))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let (status, _, body) = https_get_as(
        &t.pki_dir,
        Some("regulator-650100"),
        &format!("{url}{href}"),
    )
    .await;
    assert_eq!((status, body), (200, receipt));
    b.record_page("console-objections").await;

    // An access code for the subject, shown once.
    fill(&b, "subject_identifier", &subject()).await;
    press(&b, "#issue-code").await;
    let code = text_of(&b, "#access-code").await;
    assert!(code.len() >= 8, "{code}");
    let issued = text_of(&b, "#issued").await;
    assert!(
        !issued.contains(&subject()),
        "the identifier is shown masked: {issued}"
    );
    b.record_page("console-objections-access-code").await;
    b.client.goto(&format!("{url}/objections")).await.unwrap();
    assert!(!page_source(&b).await.contains(&code), "shown once only");

    // Kept, with reasons: the authority decides in the gone agency's place.
    let form = b
        .client
        .find(Locator::Css(&format!("{card} form")))
        .await
        .unwrap();
    form.find(Locator::Css("option[value='keep']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    form.find(Locator::Css("textarea[name='reasons']"))
        .await
        .unwrap()
        .send_keys("借款合同载明的金额与报送一致。")
        .await
        .unwrap();
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the next page", Duration::from_secs(10), || {
        let old = old.clone();
        async move { old.tag_name().await.is_err().then_some(()) }
    })
    .await;
    assert!(
        b.client.find(Locator::Css(&card)).await.is_err(),
        "no longer open"
    );
    let decided = urumqi
        .list_objections(ListObjectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .objections
        .into_iter()
        .find(|x| x.objection_id == o.objection_id)
        .unwrap();
    assert_eq!(decided.decision, ObjectionDecision::Keep as i32);
    assert!(decided.decision_reasons.contains("借款合同"));
    b.close().await;

    // Kashgar's officer does not see it.
    let Some(u) = Browser::with_certificate(&t.pki_dir, Some("regulator-653100")).await else {
        return;
    };
    u.client.goto(&format!("{url}/objections")).await.unwrap();
    assert!(!page_source(&u).await.contains(&o.objection_id));
    u.close().await;
    stop.cancel();
}

async fn an_officer_corrects_and_erases_notices_and_sees_the_logs_head(engine: Engine) {
    use super::filing::KASHGAR;
    use super::register::{approve_kashgar, register};
    use creditmesh_proto::disclosure::v1::{ListNoticesRequest, NoticeKind};
    let Some(t) = mesh(engine).await else { return };
    let mut r = register(&t).await;
    approve_kashgar(&t, &r).await;
    let (url, stop) = console(&t).await;
    let Some(b) = Browser::with_certificate(&t.pki_dir, Some("regulator-653100")).await else {
        return;
    };
    b.client.goto(&format!("{url}/register")).await.unwrap();
    assert!(text_of(&b, "#size").await.parse::<i64>().unwrap() >= 1);
    assert!(!text_of(&b, "#signers").await.trim().is_empty());
    fill(&b, "register-uscc", KASHGAR).await;
    press(&b, "#notices-lookup button").await;
    let first = text_of(&b, "#notice-0").await;
    assert!(first.contains("登记建档公示"), "{first}");
    b.record_page("console-register").await;

    // A correction: a new notice pointing at the first.
    let open = |css: String| {
        let b = &b;
        async move {
            b.client
                .find(Locator::Css(&css))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    open("#notice-0 details:nth-of-type(1) summary".into()).await;
    fill(&b, "correct-0", "更正：注册资本为1000万元。").await;
    press(&b, "#notice-0 details:nth-of-type(1) button").await;
    let listed = r
        .list_notices(ListNoticesRequest {
            uscc: KASHGAR.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices;
    let correction = listed
        .iter()
        .find(|n| n.kind == NoticeKind::Correction as i32)
        .expect("the correction is on the register");
    assert_eq!(correction.corrects_sequence, 0);
    let shown = text_of(&b, &format!("#notice-{}", correction.sequence)).await;
    assert!(shown.contains("注册资本为1000万元"), "{shown}");

    // The correction erased by a decision: its words gone, the decision shown.
    let card = format!("#notice-{}", correction.sequence);
    open(format!("{card} details:nth-of-type(2) summary")).await;
    fill(
        &b,
        &format!("erase-{}", correction.sequence),
        "自治区信用修复决定（新信修〔2026〕1号）",
    )
    .await;
    press(&b, &format!("{card} details:nth-of-type(2) button")).await;
    let shown = text_of(&b, &card).await;
    assert!(
        shown.contains("已删除") && shown.contains("新信修"),
        "{shown}"
    );
    assert!(!shown.contains("注册资本为1000万元"), "{shown}");
    b.record_page("console-register-erased").await;
    b.close().await;

    // Urumqi's officer may not correct Kashgar's agency: refused, nothing published.
    let Some(u) = Browser::with_certificate(&t.pki_dir, Some("regulator-650100")).await else {
        return;
    };
    u.client
        .goto(&format!("{url}/register?uscc={KASHGAR}"))
        .await
        .unwrap();
    let count = |r: &super::register::Register| {
        let mut r = r.clone();
        async move {
            r.list_notices(ListNoticesRequest {
                uscc: KASHGAR.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .notices
            .len()
        }
    };
    let before = count(&r).await;
    u.client
        .find(Locator::Css("#notice-0 details:nth-of-type(1) summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&u, "correct-0", "更正：任意内容").await;
    press(&u, "#notice-0 details:nth-of-type(1) button").await;
    assert!(page_source(&u).await.contains("无权"));
    assert_eq!(count(&r).await, before);
    u.close().await;
    stop.cancel();
}
