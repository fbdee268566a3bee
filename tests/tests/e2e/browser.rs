//! The public website in a real browser (headless Chromium over WebDriver): what a visitor
//! finds, what they see of a revoked agency, and how bad input is shown.

use std::time::Duration;

use creditmesh_proto::disclosure::v1::NoticeKind;
use creditmesh_proto::events::v1::{FilingDecided, FilingRevoked};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_tests::browser::Browser;
use creditmesh_tests::{Engine, TestMesh};
use fantoccini::Locator;
use tokio_util::sync::CancellationToken;

use super::filing::{KASHGAR, filed, mesh, review_says};
use super::register::{approve_kashgar, notices_become, register, verify_cli};

crate::on_both_engines!(
    the_register_finds_an_approved_agency_and_shows_its_revocation,
    bad_input_is_marked_beside_its_field_and_shown_as_text,
    a_complaint_from_the_form_is_tracked_to_its_referral,
    evidence_over_its_limits_is_refused_beside_the_file_field,
    a_complaint_with_files_is_paced_to_the_visitor_rate,
    a_subject_sees_their_records_and_objects_to_one,
    the_website_is_limited_per_visitor_at_the_gateway,
    behind_a_trusted_proxy_the_forwarded_visitor_is_counted,
    a_form_from_another_site_is_refused_and_nothing_is_filed,
    the_site_is_named_by_its_operator_and_fits_a_phone,
    a_page_costs_the_visitor_the_gateway_calls_it_makes,
);

/// The website in front of `t`'s public listener, as `creditmesh dev` starts it.
async fn website(t: &TestMesh) -> (String, CancellationToken) {
    website_behind(t, Vec::new()).await
}

/// The website, believing the `X-Forwarded-For` of `trusted_proxies`.
async fn website_behind(t: &TestMesh, trusted_proxies: Vec<String>) -> (String, CancellationToken) {
    website_configured(
        t,
        creditmesh_web::WebConfig {
            trusted_proxies,
            rate_per_second: 0,
            ..Default::default()
        },
    )
    .await
}

/// The website configured as `cfg` says, on a port of its own.
async fn website_configured(
    t: &TestMesh,
    cfg: creditmesh_web::WebConfig,
) -> (String, CancellationToken) {
    let stop = CancellationToken::new();
    let cfg = creditmesh_web::WebConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..cfg
    };
    let upstream = creditmesh_web::Upstream {
        url: format!("https://{}", t.mesh.public_addr),
        ca_file: t.pki_dir.join("ca.pem"),
        server_name: "localhost".into(),
        forwarder_token: creditmesh_pki::read_forwarder_token(&t.pki_dir).unwrap(),
    };
    let web = creditmesh_web::start(&cfg, &upstream, stop.clone())
        .await
        .expect("the website starts");
    (format!("http://{}", web.addr), stop)
}

/// A second Kashgar agency whose filing the regulator refused.
const REFUSED: &str = "91653101MA78KT013M";

async fn refused_filing(t: &TestMesh) {
    use creditmesh_domain::{Principal, PrincipalKind, Tenant};
    t.issue(
        "agency-refused",
        Principal::new(
            PrincipalKind::Agency,
            Tenant::parse("653100").unwrap(),
            REFUSED,
        ),
    );
    let mut agency = FilingServiceClient::new(t.node("agency-refused").await);
    let filing_id = filed(&mut agency, REFUSED, "2021-03-01", "refused-1").await;
    review_says(
        t,
        "653100",
        FilingDecided {
            filing_id,
            uscc: REFUSED.into(),
            approved: false,
            ..Default::default()
        },
    )
    .await;
}

/// The body of a plain GET, which must succeed.
async fn get(url: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

pub(crate) async fn text_of(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn the_register_finds_an_approved_agency_and_shows_its_revocation(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    refused_filing(&t).await;

    // Search by name, as a visitor types it, and follow the result.
    b.client.goto(&site).await.unwrap();
    assert_eq!(text_of(&b, "h1").await, "信用服务机构名录");
    let name = b.client.find(Locator::Id("name")).await.unwrap();
    name.send_keys("Credit Agency").await.unwrap();
    press(&b, "form.search button").await;
    let results = text_of(&b, "table.agencies tbody").await;
    assert!(results.contains(KASHGAR), "{results}");
    assert!(results.contains("正常"), "{results}");
    assert!(
        !results.contains(REFUSED),
        "a refused filing is not on the register: {results}"
    );
    b.record_page("register-search-zh").await;
    // Searching for the refused agency's code finds nothing.
    b.client
        .goto(&format!("{site}/?uscc={REFUSED}"))
        .await
        .unwrap();
    assert!(text_of(&b, "p.empty").await.contains("没有符合条件"));

    b.client
        .goto(&format!("{site}/?name=Credit+Agency"))
        .await
        .unwrap();
    click_through(&b, Locator::LinkText(&format!("Credit Agency {KASHGAR}"))).await;
    assert_eq!(text_of(&b, "h1").await, format!("Credit Agency {KASHGAR}"));
    let fees = text_of(&b, "table.fees").await;
    assert!(
        fees.contains("企业信用评价报告") && fees.contains("5000"),
        "{fees}"
    );
    let timeline = text_of(&b, "ol.timeline").await;
    assert!(timeline.contains("登记建档公示"), "{timeline}");
    // The authority is named, not given as its division code.
    assert!(
        timeline.contains("建档所在地社会信用主管部门 喀什地区（653100）"),
        "{timeline}"
    );
    // The legal representative is shown masked, never in full; capital in 万元.
    let facts = text_of(&b, "dl.facts").await;
    assert!(!facts.contains("阿依努尔"), "{facts}");
    assert!(facts.contains("1000万元"), "{facts}");

    // Revoked with its ground: the status and a notice say so.
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
    notices_become(&r, KASHGAR, &[NoticeKind::Published, NoticeKind::Revoked]).await;
    b.client.refresh().await.unwrap();
    assert!(text_of(&b, "p.status").await.contains("已撤销建档"));
    let revoked = text_of(&b, "ol.timeline li.grave").await;
    assert!(revoked.contains("撤销建档"), "{revoked}");
    assert!(
        revoked.contains("严重失信主体名单") && revoked.contains("第十五条第一项"),
        "the ground is shown in the Measures' words: {revoked}"
    );

    // Each notice once checkpointed links its inclusion proof, as `creditmesh verify` reads it.
    let proof_href = creditmesh_tests::eventually("a proof link", Duration::from_secs(20), || {
        let b = &b;
        async move {
            b.client.refresh().await.ok()?;
            let link = b
                .client
                .find(Locator::Css("#notice-0 a[download]"))
                .await
                .ok()?;
            link.attr("href").await.ok().flatten()
        }
    })
    .await;
    assert_eq!(proof_href, "/proofs/0");
    // What the link downloads is what `creditmesh verify` checks.
    let proof = get(&format!("{site}{proof_href}")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notice-0-proof.json");
    std::fs::write(&file, proof).unwrap();
    let key = t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE);
    let (ok, out, err) = verify_cli(&["--key".as_ref(), key.as_os_str(), file.as_os_str()]).await;
    assert!(ok && out.contains("is in the tree"), "{out}{err}");
    b.record_page("agency-revoked-zh").await;

    // The same page in English.
    press(&b, "nav.lang a").await;
    assert!(text_of(&b, "p.status").await.contains("filing revoked"));
    assert!(
        text_of(&b, "ol.timeline")
            .await
            .contains("filing published")
    );
    let lang = b
        .client
        .execute("return document.documentElement.lang", vec![])
        .await
        .unwrap();
    assert_eq!(lang, "en");
    b.record_page("agency-revoked-en").await;
    b.client
        .goto(&format!("{site}/?lang=en&name=Credit+Agency"))
        .await
        .unwrap();
    assert!(
        text_of(&b, "table.agencies")
            .await
            .contains("filing revoked")
    );
    b.record_page("register-search-en").await;

    b.close().await;
    stop.cancel();
    t.stop().await;
}

async fn bad_input_is_marked_beside_its_field_and_shown_as_text(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let r = register(&t).await;
    approve_kashgar(&t, &r).await;

    let injected = "<script>document.title='owned'</script><img src=x onerror=alert(1)>";
    b.client.goto(&site).await.unwrap();
    b.client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(injected)
        .await
        .unwrap();
    b.client
        .find(Locator::Id("uscc"))
        .await
        .unwrap()
        .send_keys("91653101MA78KT005X")
        .await
        .unwrap();
    press(&b, "form.search button").await;
    // The code's error is beside the code's field, tied to it for assistive technology.
    let error = text_of(&b, "#uscc-error").await;
    assert!(error.contains("校验位"), "{error}");
    let uscc = b.client.find(Locator::Id("uscc")).await.unwrap();
    assert_eq!(
        uscc.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        b.client.find(Locator::Id("name-error")).await.is_err(),
        "the name is fine"
    );
    // What was typed comes back as text: no script ran, no element was made of it.
    let name = b.client.find(Locator::Id("name")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some(injected));
    let title = b.client.title().await.unwrap();
    assert_ne!(title, "owned");
    let made = b
        .client
        .execute(
            "return document.scripts.length + document.images.length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(made, 0);
    assert!(
        b.client.get_alert_text().await.is_err(),
        "no alert was raised"
    );
    assert!(b.client.find(Locator::Css("table.agencies")).await.is_err());
    b.record_page("register-field-error-zh").await;

    // The injected text as a search is just a name nobody has.
    b.client
        .goto(&format!(
            "{site}/?name={}",
            "%3Cscript%3Edocument.title%3D%27owned%27%3C%2Fscript%3E"
        ))
        .await
        .unwrap();
    assert!(text_of(&b, "p.empty").await.contains("没有符合条件"));
    assert_ne!(b.client.title().await.unwrap(), "owned");

    // An unknown agency and an unknown page are plain "not found" pages.
    b.client
        .goto(&format!("{site}/agencies/91653101MA78KT021G"))
        .await
        .unwrap();
    assert!(text_of(&b, "h1").await.contains("未找到"));
    b.record_page("not-found-zh").await;

    b.close().await;
    stop.cancel();
    t.stop().await;
}

pub(crate) async fn fill(b: &Browser, id: &str, text: &str) {
    let field = b.client.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub(crate) async fn press(b: &Browser, css: &str) {
    click_through(b, Locator::Css(css)).await;
}

/// Clicks what leads to another page, and waits until the browser has left this one.
pub(crate) async fn click_through(b: &Browser, what: Locator<'_>) {
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    b.client.find(what).await.unwrap().click().await.unwrap();
    creditmesh_tests::eventually("the next page", Duration::from_secs(10), || {
        let old = old.clone();
        async move { old.tag_name().await.is_err().then_some(()) }
    })
    .await;
}

/// The secret is nowhere in the page's address.
async fn assert_not_in_address(b: &Browser, secret: &str) {
    let url = b.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(secret), "{url}");
}

/// How many script elements the page holds.
async fn scripts_on_page(b: &Browser) -> serde_json::Value {
    b.client
        .execute("return document.scripts.length", vec![])
        .await
        .unwrap()
}

async fn complaints_held(t: &TestMesh) -> Vec<creditmesh_proto::complaints::v1::Complaint> {
    use creditmesh_proto::complaints::v1::ListComplaintsRequest;
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    ComplaintServiceClient::new(t.node("regulator-653100").await)
        .list_complaints(ListComplaintsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .complaints
}

/// How many pieces of evidence the mesh holds.
async fn evidence_held(t: &TestMesh) -> i64 {
    creditmesh_tests::scalar_i64(
        &t.db_url("complaints"),
        "SELECT COUNT(*) FROM complaints_evidence",
    )
    .await
}

/// Fills the complaint form's text as fit to be filed.
/// Chooses where the conduct took place, as a visitor would.
async fn choose_place(b: &Browser, code: &str) {
    b.client
        .find(Locator::Id("place_of_activity"))
        .await
        .unwrap()
        .select_by_value(code)
        .await
        .unwrap();
}

async fn fill_complaint(b: &Browser) {
    fill(b, "agency_uscc", KASHGAR).await;
    choose_place(b, "653101").await;
    fill(b, "complainant_contact", "13912345678").await;
    fill(b, "subject", "收费超出公示标准").await;
    fill(b, "description", "多收了服务费").await;
}

/// Chooses the files at `paths` in the form's file input, as a visitor would.
async fn choose_files(b: &Browser, paths: &[&std::path::Path]) {
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    b.client
        .find(Locator::Id("evidence"))
        .await
        .unwrap()
        .send_keys(&paths.join("\n"))
        .await
        .unwrap();
}

async fn a_complaint_from_the_form_is_tracked_to_its_referral(engine: Engine) {
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    let department = creditmesh_tests::free_addr();
    let Some((t, _clock)) = super::referrals::mesh(engine, department, None).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;

    // Wrong and missing input: each error beside its field, what was typed kept as text,
    // and nothing stored.
    b.client
        .goto(&format!("{site}/complaints?lang=en"))
        .await
        .unwrap();
    press(&b, "form.complaint button").await;
    assert!(text_of(&b, "#subject-error").await.contains("required"));
    b.record_page("complaint-field-errors-en").await;
    b.client.goto(&format!("{site}/complaints")).await.unwrap();
    b.record_page("complaint-form-zh").await;
    let injected = "<script>document.title='owned'</script>";
    fill(&b, "agency_uscc", "91653101MA78KT005X").await;
    fill(&b, "description", injected).await;
    press(&b, "form.complaint button").await;
    assert!(text_of(&b, "#agency_uscc-error").await.contains("校验位"));
    assert!(text_of(&b, "#subject-error").await.contains("必填"));
    // A contact may be left out (an anonymous report).
    assert!(
        b.client
            .find(Locator::Id("complainant_contact-error"))
            .await
            .is_err()
    );
    assert!(
        b.client
            .find(Locator::Id("description-error"))
            .await
            .is_err()
    );
    let description = b.client.find(Locator::Id("description")).await.unwrap();
    assert_eq!(
        description.prop("value").await.unwrap().as_deref(),
        Some(injected)
    );
    assert_ne!(b.client.title().await.unwrap(), "owned");
    assert_eq!(scripts_on_page(&b).await, 0);
    assert!(
        complaints_held(&t).await.is_empty(),
        "an invalid form stores nothing"
    );
    b.record_page("complaint-field-errors-zh").await;

    // Evidence: a file chosen with text that is not fit to be filed is not uploaded.
    let files = tempfile::tempdir().unwrap();
    let receipt = files.path().join("收据.pdf");
    std::fs::write(&receipt, super::filing::pdf("web receipt")).unwrap();
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "not a document").unwrap();
    choose_files(&b, &[&receipt]).await;
    press(&b, "form.complaint button").await;
    assert!(text_of(&b, "#evidence-error").await.contains("尚未上传"));
    assert!(text_of(&b, "#subject-error").await.contains("必填"));
    assert_eq!(evidence_held(&t).await, 0, "nothing uploaded");

    // Corrected, with a PDF and a file that is not a document: the PDF is received and kept
    // on the form, the other refused beside the file field, no complaint filed yet. Where it
    // happened (Kashgar City) decides who handles it.
    fill(&b, "agency_uscc", KASHGAR).await;
    choose_place(&b, "653101").await;
    fill(&b, "complainant_contact", "13912345678").await;
    fill(&b, "subject", "收费超出公示标准").await;
    choose_files(&b, &[&receipt, &notes]).await;
    press(&b, "form.complaint button").await;
    let refused = text_of(&b, "#evidence-error").await;
    assert!(refused.contains("notes.txt：不是 PDF"), "{refused}");
    assert!(!refused.contains("收据.pdf"), "{refused}");
    let kept = b.client.find(Locator::Id("kept-1")).await.unwrap();
    assert_eq!(kept.prop("checked").await.unwrap().as_deref(), Some("true"));
    assert!(text_of(&b, "ul.attached").await.contains("收据.pdf"));
    let evidence = b.client.find(Locator::Id("evidence")).await.unwrap();
    assert_eq!(
        evidence.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(complaints_held(&t).await.is_empty());
    assert_eq!(evidence_held(&t).await, 1, "the PDF only");
    b.record_page("complaint-evidence-error-zh").await;

    // Sent again without choosing anything: received with the kept PDF; the confirmation
    // shows the number and the code once, and the file.
    press(&b, "form.complaint button").await;
    assert_eq!(text_of(&b, "h1").await, "投诉已收到");
    b.record_page("complaint-received-zh").await;
    let number = text_of(&b, "#tracking-number").await;
    let code = text_of(&b, "#access-code").await;
    assert!(!number.is_empty() && !code.is_empty());
    assert!(text_of(&b, "#evidence-received").await.contains("收据.pdf"));
    let held = complaints_held(&t).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].place_of_activity, "653101");
    let pdf_sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(super::filing::pdf("web receipt")))
    };
    assert_eq!(
        held[0]
            .evidence
            .iter()
            .map(|d| d.sha256.as_str())
            .collect::<Vec<_>>(),
        [pdf_sha256.as_str()],
        "the regulator sees the evidence the form attached"
    );
    // Going back and submitting the same filling again files nothing new.
    b.client.back().await.unwrap();
    if b.client
        .find(Locator::Css("form.complaint button"))
        .await
        .is_ok()
    {
        press(&b, "form.complaint button").await;
        assert_eq!(
            complaints_held(&t).await.len(),
            1,
            "one filling of the form, one complaint"
        );
    }

    // The regulator refers it; the complainant tracks it there.
    ComplaintServiceClient::new(t.node("regulator-653100").await)
        .refer_complaint(super::referrals::refer("web-refer", &number))
        .await
        .unwrap();
    b.client
        .goto(&format!("{site}/complaints/track"))
        .await
        .unwrap();
    b.record_page("complaint-track-form-zh").await;
    fill(&b, "tracking_number", &number).await;
    fill(&b, "access_code", "wrong-code").await;
    press(&b, "form.search button").await;
    assert!(text_of(&b, "#track-error").await.contains("不正确"));
    assert!(
        b.client
            .find(Locator::Id("complaint-status"))
            .await
            .is_err()
    );
    fill(&b, "access_code", &code).await;
    press(&b, "form.search button").await;
    assert_eq!(text_of(&b, "#complaint-status").await, "已转交有关部门");
    assert_eq!(text_of(&b, "#referred-to").await, "乌鲁木齐市市场监管部门");
    let history = text_of(&b, "ol.history").await;
    assert!(
        history.contains("已收到") && history.contains("已转交"),
        "{history}"
    );
    // The referral's note in Chinese, no English fragment.
    assert!(
        history.contains("已移送乌鲁木齐市市场监管部门"),
        "{history}"
    );
    for english in ["referred to", "Art. 24", "market-regulation"] {
        assert!(!history.contains(english), "{english} in {history}");
    }
    // The access code never appears in an address.
    assert_not_in_address(&b, &code).await;
    b.record_page("complaint-tracked-zh").await;

    // Tracked in English.
    b.client
        .goto(&format!("{site}/complaints/track?lang=en"))
        .await
        .unwrap();
    fill(&b, "tracking_number", &number).await;
    fill(&b, "access_code", &code).await;
    press(&b, "form.search button").await;
    assert_eq!(
        text_of(&b, "#complaint-status").await,
        "referred to a department"
    );
    assert_eq!(
        text_of(&b, "#referred-to").await,
        "market regulation (乌鲁木齐市市场监管部门)"
    );
    b.record_page("complaint-tracked-en").await;

    b.close().await;
    stop.cancel();
    t.stop().await;
}

async fn evidence_over_its_limits_is_refused_beside_the_file_field(engine: Engine) {
    use creditmesh_complaints::evidence::MAX_PENDING_UPLOADS;
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    let Some(t) = mesh(engine).await else { return };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let files = tempfile::tempdir().unwrap();
    let mut big = super::filing::pdf("large scan");
    big.resize(10 * 1024 * 1024 + 1, b' ');
    let big_path = files.path().join("scan.pdf");
    std::fs::write(&big_path, &big).unwrap();
    let small = files.path().join("photo.pdf");
    std::fs::write(&small, super::filing::pdf("one more")).unwrap();

    // A file over 10 MiB is refused by its size, in the visitor's language.
    b.client
        .goto(&format!("{site}/complaints?lang=en"))
        .await
        .unwrap();
    fill_complaint(&b).await;
    choose_files(&b, &[&big_path]).await;
    press(&b, "form.complaint button").await;
    let error = text_of(&b, "#evidence-error").await;
    assert_eq!(error, "scan.pdf: is larger than 10 MiB");
    assert_eq!(evidence_held(&t).await, 0);
    assert!(complaints_held(&t).await.is_empty());
    b.record_page("complaint-evidence-too-large-en").await;

    // This address already holds as many uploads as no complaint names as it may: the next
    // is refused beside the field and not kept.
    let public = ComplaintServiceClient::new(t.public().await);
    for i in 0..MAX_PENDING_UPLOADS {
        let bytes = super::filing::pdf(&format!("pending {i}"));
        super::complaints::upload_evidence(&mut public.clone(), bytes.len() as i64, bytes)
            .await
            .unwrap();
    }
    b.client.goto(&format!("{site}/complaints")).await.unwrap();
    fill_complaint(&b).await;
    choose_files(&b, &[&small]).await;
    press(&b, "form.complaint button").await;
    let error = text_of(&b, "#evidence-error").await;
    assert!(
        error.starts_with("photo.pdf：") && error.contains("一天后"),
        "{error}"
    );
    assert!(b.client.find(Locator::Css("ul.attached")).await.is_err());
    assert_eq!(evidence_held(&t).await, MAX_PENDING_UPLOADS);
    assert!(complaints_held(&t).await.is_empty());

    b.close().await;
    stop.cancel();
    t.stop().await;
}

/// A complaint with three files is four calls to the gateway for one visitor, who may make
/// one a second: the website waits as long as the gateway says and files it whole.
async fn a_complaint_with_files_is_paced_to_the_visitor_rate(engine: Engine) {
    let limits = super::web::one_public_call_per_second();
    let Some(t) = TestMesh::start_with(engine, limits).await else {
        return;
    };
    let Some(t) = super::filing::mesh_with(t) else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let files = tempfile::tempdir().unwrap();
    let paths: Vec<std::path::PathBuf> = (1..=3)
        .map(|i| {
            let path = files.path().join(format!("photo-{i}.pdf"));
            std::fs::write(&path, super::filing::pdf(&format!("photo {i}"))).unwrap();
            path
        })
        .collect();
    b.client.goto(&format!("{site}/complaints")).await.unwrap();
    fill_complaint(&b).await;
    choose_files(&b, &paths.iter().map(|p| p.as_path()).collect::<Vec<_>>()).await;
    press(&b, "form.complaint button").await;
    assert_eq!(text_of(&b, "h1").await, "投诉已收到");
    let received = text_of(&b, "#evidence-received").await;
    for i in 1..=3 {
        assert!(received.contains(&format!("photo-{i}.pdf")), "{received}");
    }
    let held = complaints_held(&t).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].evidence.len(), 3);
    b.close().await;
    stop.cancel();
    t.stop().await;
}

async fn a_subject_sees_their_records_and_objects_to_one(engine: Engine) {
    use super::objections::{loan, mesh_at, record_id, subject};
    use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
    use creditmesh_proto::datapush::v1::*;
    let Some((t, _clock)) = mesh_at(engine, time::macros::date!(2026 - 11 - 02)).await else {
        return;
    };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let who = subject();
    super::datapush::push(
        t.node("agency-kashgar").await,
        vec![
            loan("web-1", &who, "2026-10-15", 1200.0),
            loan("web-2", &who, "2026-10-20", 80.0),
        ],
    )
    .await
    .unwrap();
    let (r1, r2) = (record_id(&t, "web-1").await, record_id(&t, "web-2").await);
    let mut desk = DataPushServiceClient::new(t.node("regulator-653100").await);
    // A regulator reads the records for a stated purpose: the subject sees that use.
    let read = desk
        .find_records(FindRecordsRequest {
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
            purpose: "loan reporting supervision".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert_eq!(read.len(), 2);
    let code = desk
        .issue_subject_access_code(IssueSubjectAccessCodeRequest {
            request_id: "web-code".into(),
            subject_kind: SubjectKind::Person as i32,
            subject_identifier: who.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_code;

    // A wrong code shows nothing.
    b.client.goto(&format!("{site}/access")).await.unwrap();
    assert_eq!(text_of(&b, "h1").await, "查询本人信用信息");
    b.record_page("access-form-zh").await;
    fill(&b, "subject_identifier", &who).await;
    fill(&b, "access_code", "0123456789abcdef0123456789abcdef").await;
    press(&b, "form.search button").await;
    assert!(text_of(&b, "#access-error").await.contains("不正确"));
    assert!(b.client.find(Locator::Id("records")).await.is_err());

    // With the code: both records, their source, content, history and the regulator's use.
    fill(&b, "access_code", &code).await;
    press(&b, "form.search button").await;
    assert_eq!(text_of(&b, "#records").await, "关于您的信息");
    let records = b
        .client
        .find_all(Locator::Css("article.record"))
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    let first = text_of(&b, "#record-0").await;
    assert!(first.contains(KASHGAR), "the source: {first}");
    // As people read it: the catalog's names, no codes.
    assert!(
        first.contains("贷款还款") && first.contains("应还金额（元）") && first.contains("1200"),
        "{first}"
    );
    for code in ["loan-repayment", "amount_due", "days_overdue", "due_on"] {
        assert!(!first.contains(code), "{code} shown raw: {first}");
    }
    // How long the platform keeps it, and why, in the page's language.
    assert!(
        first.contains("平台保存至") && first.contains("自采集之日起保存60个月"),
        "{first}"
    );
    assert!(!first.contains("demonstration policy"), "{first}");
    // Where it came from and under what basis (Art. 21 信息来源), with each version.
    assert!(
        first.contains("信息来源") && first.contains("Kashi Rural Commercial Bank"),
        "{first}"
    );
    assert_eq!(text_of(&b, "#record-0-status").await, "有效");
    let history = text_of(&b, "#record-0-history").await;
    assert!(
        history.contains("报送") && history.contains("Kashi Rural Commercial Bank"),
        "{history}"
    );
    let uses = text_of(&b, "#record-0-uses").await;
    assert!(
        uses.contains("loan reporting supervision") && uses.contains("喀什地区信用主管部门"),
        "{uses}"
    );
    let shown = b
        .client
        .find(Locator::Css("#record-0 input[name=record_id]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap();
    assert_eq!(
        shown.as_deref(),
        Some(r1.as_str()),
        "records in their order"
    );
    // The code is not in the address.
    assert_not_in_address(&b, &code).await;
    b.record_page("access-records-zh").await;

    // An objection without ground or statement: errors beside those fields, nothing filed.
    b.client
        .find(Locator::Css("#record-0-object summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let receipt_dir = tempfile::tempdir().unwrap();
    let receipt = receipt_dir.path().join("还款凭证.pdf");
    std::fs::write(&receipt, super::filing::pdf("repayment receipt")).unwrap();
    b.client
        .find(Locator::Id("materials-0"))
        .await
        .unwrap()
        .send_keys(&receipt.display().to_string())
        .await
        .unwrap();
    press(&b, "#record-0-object button").await;
    assert!(
        text_of(&b, "#materials-0-error").await.contains("重新选择"),
        "a file sent with a form that has errors is not kept"
    );
    assert!(text_of(&b, "#ground-0-error").await.contains("请选择"));
    assert!(text_of(&b, "#access-error").await.contains("尚未保存"));
    assert!(text_of(&b, "#statement-0-error").await.contains("必填"));
    assert!(b.client.find(Locator::Id("contact-0-error")).await.is_err());
    assert_eq!(record_status(&t, &r1).await, RecordStatus::Active);
    b.record_page("access-objection-errors-zh").await;

    // Filed with a ground and a statement that carries markup: the record is marked at once,
    // and the statement comes back as text.
    let injected = "已于8月还清 <script>document.title='owned'</script>";
    b.client
        .find(Locator::Css("#ground-0 option[value=error]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(&b, "statement-0", injected).await;
    fill(&b, "contact-0", "13912345678").await;
    b.client
        .find(Locator::Css("#measure-0 option[value=correct]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .find(Locator::Id("materials-0"))
        .await
        .unwrap()
        .send_keys(&receipt.display().to_string())
        .await
        .unwrap();
    press(&b, "#record-0-object button").await;
    let received = text_of(&b, "#objection-received").await;
    assert!(received.contains("异议已受理"), "{received}");
    assert!(
        received.contains("2026-11-16"),
        "ten working days: {received}"
    );
    assert_eq!(text_of(&b, "#record-0-status").await, "异议处理中");
    assert!(text_of(&b, "#record-0-objections").await.contains(injected));
    assert!(b.client.find(Locator::Id("record-0-object")).await.is_err());
    assert_eq!(text_of(&b, "#record-1-status").await, "有效");
    assert_ne!(b.client.title().await.unwrap(), "owned");
    assert_eq!(scripts_on_page(&b).await, 0);
    assert_eq!(record_status(&t, &r1).await, RecordStatus::UnderObjection);
    assert_eq!(record_status(&t, &r2).await, RecordStatus::Active);
    b.record_page("access-objected-zh").await;

    // The agency keeps the record with its reasons; the subject attaches a statement to that
    // decision from the page (an empty one is refused beside its field).
    let mut agency = DataPushServiceClient::new(t.node("agency-kashgar").await);
    let objection = agency
        .list_objections(ListObjectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .objections
        .remove(0);
    // Filed with the measure asked for and the receipt, which the agency opens.
    assert_eq!(
        objection.requested_measure,
        creditmesh_proto::datapush::v1::RequestedMeasure::Correct as i32
    );
    assert_eq!(objection.materials.len(), 1, "{:?}", objection.materials);
    assert_eq!(objection.materials[0].media_type, "application/pdf");
    agency
        .resolve_objection(ResolveObjectionRequest {
            request_id: "web-keep".into(),
            objection_id: objection.objection_id.clone(),
            decision: ObjectionDecision::Keep as i32,
            reasons: "还款记录核实无误".into(),
            corrected_content: Vec::new(),
        })
        .await
        .unwrap();
    b.client.goto(&format!("{site}/access")).await.unwrap();
    fill(&b, "subject_identifier", &who).await;
    fill(&b, "access_code", &code).await;
    press(&b, "form.search button").await;
    assert!(
        text_of(&b, "#record-0-objections")
            .await
            .contains("还款记录核实无误")
    );
    b.client
        .find(Locator::Css("#record-0-say-1 summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    press(&b, "#record-0-say-1 button").await;
    assert!(text_of(&b, "#say-0-1-error").await.contains("必填"));
    let said = "我不同意：<b>逾期</b>系银行扣款失败所致";
    fill(&b, "say-0-1", said).await;
    press(&b, "#record-0-say-1 button").await;
    assert!(text_of(&b, "#statement-added").await.contains("声明已附"));
    assert!(text_of(&b, "#record-0-statement-1").await.contains(said));
    assert!(b.client.find(Locator::Id("record-0-say-1")).await.is_err());
    assert!(b.client.find(Locator::Css("#record-0 b")).await.is_err());
    let kept = agency
        .list_objections(ListObjectionsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .objections
        .remove(0);
    assert_eq!(kept.subject_statement, said);
    b.record_page("access-statement-zh").await;

    // The same records in English.
    b.client
        .goto(&format!("{site}/access?lang=en"))
        .await
        .unwrap();
    fill(&b, "subject_identifier", &who).await;
    fill(&b, "access_code", &code).await;
    press(&b, "form.search button").await;
    assert_eq!(text_of(&b, "#record-0-status").await, "in effect");
    assert!(
        text_of(&b, "#record-0-objections")
            .await
            .contains("Your statement")
    );
    let kept = text_of(&b, "#record-0 .kept-until").await;
    assert!(kept.contains("60 months from collection"), "{kept}");
    b.record_page("access-records-en").await;

    b.close().await;
    stop.cancel();
    t.stop().await;
}

/// A pushed record's status as its agency reads it.
async fn record_status(
    t: &TestMesh,
    record_id: &str,
) -> creditmesh_proto::datapush::v1::RecordStatus {
    use creditmesh_proto::datapush::v1::GetRecordRequest;
    use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
    DataPushServiceClient::new(t.node("agency-kashgar").await)
        .get_record(GetRecordRequest {
            record_id: record_id.into(),
            purpose: String::new(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap()
        .status()
}

/// The status of a GET from the local address `from`.
async fn status_from(from: std::net::IpAddr, url: &str) -> u16 {
    status_via(from, url, None).await
}

/// The status of a GET from the local address `from`, with an `X-Forwarded-For` when given.
async fn status_via(from: std::net::IpAddr, url: &str, forwarded_for: Option<&str>) -> u16 {
    response_via(from, url, forwarded_for).await.0
}

/// The status and headers of a GET from the local address `from`.
async fn response_via(
    from: std::net::IpAddr,
    url: &str,
    forwarded_for: Option<&str>,
) -> (u16, http::HeaderMap) {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_local_address(Some(from));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Empty<bytes::Bytes>>(connector);
    let mut request = http::Request::get(url);
    if let Some(hops) = forwarded_for {
        request = request.header("x-forwarded-for", hops);
    }
    let response = client
        .request(request.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap();
    (response.status().as_u16(), response.headers().clone())
}

/// The website names each visitor to the gateway, so the gateway's public rate counts the
/// visitor (here 127.0.0.2) and not the website (127.0.0.1), which may still call.
async fn the_website_is_limited_per_visitor_at_the_gateway(engine: Engine) {
    use creditmesh_proto::disclosure::v1::ListAgenciesRequest;
    use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
    let limits = super::web::one_public_call_per_second();
    let Some(t) = TestMesh::start_with(engine, limits).await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let visitor: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let page = format!("{site}/?name=nobody");
    assert_eq!(status_from(visitor, &page).await, 200);
    let (status, headers) =
        response_via(visitor, &format!("{site}/?name=still-nobody"), None).await;
    assert_eq!(
        status, 429,
        "the visitor's second page in the second is over the gateway's rate"
    );
    assert_eq!(
        headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "a 429 says when to come back, whichever limit answered"
    );
    // The website's own address has its whole rate left.
    DisclosureServiceClient::new(t.public().await)
        .list_agencies(ListAgenciesRequest::default())
        .await
        .expect("the website's address is not charged for its visitors");
    stop.cancel();
    t.stop().await;
}

/// Behind a reverse proxy the operator trusts (here 127.0.0.3), the visitor is the address the
/// proxy names in `X-Forwarded-For`, and the gateway counts that visitor; from any other peer
/// the header names nobody.
async fn behind_a_trusted_proxy_the_forwarded_visitor_is_counted(engine: Engine) {
    let limits = super::web::one_public_call_per_second();
    let Some(t) = TestMesh::start_with(engine, limits).await else {
        return;
    };
    let (site, stop) = website_behind(&t, vec!["127.0.0.3".into()]).await;
    let page = |n: &str| format!("{site}/?name={n}");
    let proxy: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    assert_eq!(
        status_via(proxy, &page("a"), Some("203.0.113.7")).await,
        200
    );
    assert_eq!(
        status_via(proxy, &page("b"), Some("203.0.113.7")).await,
        429,
        "the same visitor's second page in the second"
    );
    assert_eq!(
        status_via(proxy, &page("c"), Some("198.51.100.7, 203.0.113.8")).await,
        200,
        "another visitor behind the same proxy (what they wrote themselves is not read)"
    );
    let other: std::net::IpAddr = "127.0.0.4".parse().unwrap();
    assert_eq!(
        status_via(other, &page("d"), Some("203.0.113.9")).await,
        200
    );
    assert_eq!(
        status_via(other, &page("e"), Some("203.0.113.10")).await,
        429,
        "an untrusted peer is counted itself, whatever it forwards"
    );
    stop.cancel();
    t.stop().await;
}

/// A form on another site that posts a complaint to this one: the visitor's browser sends it,
/// the site refuses it (the browser says it came from elsewhere), and nothing is filed. A post
/// from no browser at all, without the token its form carries, is refused as well; the form
/// sent from the site's own page is taken.
async fn a_form_from_another_site_is_refused_and_nothing_is_filed(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (site, stop) = website(&t).await;
    let url = t.db_url("complaints");
    let complaints_filed =
        || creditmesh_tests::scalar_i64(&url, "SELECT COUNT(*) FROM complaints_complaint");

    let forged = format!(
        "<!doctype html><meta charset=utf-8><form method=post action='{site}/complaints' \
         enctype='multipart/form-data'><input name=agency_uscc value=91653101MA78KT005T>\
         <input name=agency_name value='Kashgar Credit Rating Co.'>\
         <input name=subject value='written by another site'>\
         <input name=description value='a complaint the visitor never wrote'>\
         <button id=go>go</button></form>"
    );
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::STANDARD.encode(forged);
    b.client
        .goto(&format!("data:text/html;base64,{forged}"))
        .await
        .unwrap();
    press(&b, "#go").await;
    let body = text_of(&b, "body").await;
    assert!(body.contains("本站只受理从本站页面提交的表单"), "{body}");
    assert_eq!(complaints_filed().await, 0, "nothing is filed");

    // No browser, no token: refused before the form is read.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::post(format!("{site}/complaints/track"))
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"tracking_number=TS000000000000&access_code=X",
        )))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 403);

    // From the site's own page, the same browser is heard.
    b.client
        .goto(&format!("{site}/complaints/track"))
        .await
        .unwrap();
    fill(&b, "tracking_number", "TS000000000000").await;
    fill(&b, "access_code", "ABCDEFGH").await;
    press(&b, "form.search button").await;
    let body = text_of(&b, "body").await;
    assert!(!body.contains("本站只受理"), "{body}");
    assert!(!body.contains("表单已失效"), "{body}");
    stop.cancel();
    t.stop().await;
}

/// The site calls itself what its operator configured, and says who runs it; unconfigured it
/// claims no official name. On a 360 px phone the header fits: nothing runs off the side and
/// no link breaks over two lines.
async fn the_site_is_named_by_its_operator_and_fits_a_phone(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let Some(b) = Browser::start().await else {
        return;
    };
    let (plain, stop_plain) = website(&t).await;
    b.client.goto(&plain).await.unwrap();
    let name = text_of(&b, ".site-name").await;
    assert!(!name.contains("信用中国"), "{name}");
    assert!(name.contains("演示"), "{name}");
    assert!(b.client.find(Locator::Css("footer.site")).await.is_err());

    let (site, stop) = website_configured(
        &t,
        creditmesh_web::WebConfig {
            site_name_zh: "新疆信用服务机构公示平台".into(),
            site_name_en: "Xinjiang register of credit service agencies".into(),
            operator_zh: "自治区社会信用体系建设领导小组办公室".into(),
            operator_en: "the region's social credit office".into(),
            contact: "0991-1234567".into(),
            rate_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    b.client.set_window_size(360, 740).await.unwrap();
    for (path, name, operator) in [
        (
            "/",
            "新疆信用服务机构公示平台",
            "运营单位：自治区社会信用体系建设领导小组办公室",
        ),
        (
            "/complaints?lang=en",
            "Xinjiang register of credit service agencies",
            "Run by: the region's social credit office",
        ),
    ] {
        b.client.goto(&format!("{site}{path}")).await.unwrap();
        assert_eq!(text_of(&b, ".site-name").await, name);
        assert!(b.client.title().await.unwrap().ends_with(name));
        let footer = text_of(&b, "footer.site").await;
        assert!(
            footer.contains(operator) && footer.contains("0991-1234567"),
            "{footer}"
        );
        let overflow = b
            .client
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .unwrap();
        assert!(overflow.as_i64().unwrap() <= 360, "{path}: {overflow}");
        for link in b
            .client
            .find_all(Locator::Css("header.site nav a"))
            .await
            .unwrap()
        {
            let (_, _, _, height) = link.rectangle().await.unwrap();
            assert!(
                height < 30.0,
                "{path}: a link breaks over lines ({height}px)"
            );
        }
    }
    b.record_page("site-on-a-phone").await;
    stop.cancel();
    stop_plain.cancel();
    t.stop().await;
}

/// A visitor's budget is counted in the gateway calls a page makes: with six a second, two
/// agency pages (three calls each) are made and the third is refused whole, with
/// `Retry-After`, before any call reaches the gateway.
async fn a_page_costs_the_visitor_the_gateway_calls_it_makes(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let (site, stop) = website_configured(
        &t,
        creditmesh_web::WebConfig {
            rate_per_second: 6,
            ..Default::default()
        },
    )
    .await;
    let visitor: std::net::IpAddr = "127.0.0.4".parse().unwrap();
    let page = format!("{site}/agencies/{KASHGAR}");
    // Not on the register: the calls are made all the same.
    assert_eq!(status_from(visitor, &page).await, 404);
    assert_eq!(status_from(visitor, &page).await, 404);
    let (status, headers) = response_via(visitor, &page, None).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key(http::header::RETRY_AFTER));
    // Another visitor has a budget of its own.
    assert_eq!(status_from("127.0.0.5".parse().unwrap(), &page).await, 404);
    stop.cancel();
    t.stop().await;
}

/// The audit every recorded page passes is one that fails a page that should fail: an image
/// without a text alternative, a field without a label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accessibility_audit_finds_what_it_should() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let page = "<!doctype html><html lang=en><head><title>t</title></head><body><main>\
                <img src='x.png'><form><input type=text></form></main></body></html>";
    b.client
        .goto(&format!("data:text/html,{page}"))
        .await
        .unwrap();
    if let Some(found) = b.audit("bad-page").await {
        let all = found.join("\n");
        assert!(all.contains("image-alt") && all.contains("label"), "{all}");
    }
    b.close().await;
}
