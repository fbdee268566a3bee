//! The filing lifecycle through the gateway with agency and regulator certificates.

use std::time::Duration;

use creditmesh_domain::resident_id::check_char;
use creditmesh_domain::{Principal, PrincipalKind, Tenant};
use creditmesh_proto::common::v1::{DocumentRef, Person};
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{
    ChangeDecided, DeliverRequest, DeregistrationCompleted, Disposal, Event, EventKind,
    FilingDecided, FilingRevoked,
};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::upload_document_request::Part;
use creditmesh_proto::filing::v1::*;
use creditmesh_tests::{Engine, TestMesh, eventually, mtls, scalar_i64};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

crate::on_both_engines!(
    filings_land_with_the_authority_of_registration,
    missing_items_are_each_named_and_nothing_is_stored,
    an_agency_short_of_the_conditions_is_told_each_and_nothing_is_stored,
    a_retried_submission_creates_one_filing,
    an_agency_acts_only_for_its_own_code,
    a_late_change_is_flagged_and_recorded,
    annual_reports_stop_at_revocation_and_the_ban_holds,
    deregistration_completes_with_a_disposal_record,
    uploads_are_checked_on_their_bytes,
    long_histories_are_bounded_and_pages_fit_a_stock_client,
    a_regulator_holding_a_filing_opens_its_documents_and_no_other_can,
    principals_are_named_by_the_document_they_hold,
);

pub const KASHGAR: &str = "91653101MA78KT005T";
pub const BEIJING: &str = "91110108MA01BJ00XX";

pub fn person_id(first17: &str) -> String {
    format!("{first17}{}", check_char(first17.as_bytes()))
}

fn person(name: &str, first17: &str) -> Option<Person> {
    Some(Person {
        name: name.into(),
        identity_number: person_id(first17),
        ..Default::default()
    })
}

/// A mesh with a Kashgar agency, a Beijing agency and a Kashgar regulator.
pub async fn mesh(engine: Engine) -> Option<TestMesh> {
    mesh_with(TestMesh::start(engine).await?)
}

/// Issues the Kashgar agency, the Beijing agency and the Kashgar regulator on `t`.
pub fn mesh_with(t: TestMesh) -> Option<TestMesh> {
    let kashgar = Tenant::parse("653100").unwrap();
    t.issue(
        "agency-kashgar",
        Principal::new(PrincipalKind::Agency, kashgar, KASHGAR),
    );
    t.issue(
        "agency-beijing",
        Principal::new(
            PrincipalKind::Agency,
            creditmesh_domain::tenant::REGION,
            BEIJING,
        ),
    );
    t.issue(
        "regulator-653100",
        Principal::new(PrincipalKind::Regulator, kashgar, ""),
    );
    Some(t)
}

pub async fn upload(
    client: &mut FilingServiceClient<Channel>,
    kind: DocumentKind,
    bytes: Vec<u8>,
) -> Result<String, tonic::Status> {
    let parts = vec![
        UploadDocumentRequest {
            part: Some(Part::Metadata(DocumentMetadata {
                kind: kind as i32,
                file_name: "scan.pdf".into(),
                size_bytes: bytes.len() as i64,
            })),
        },
        UploadDocumentRequest {
            part: Some(Part::Chunk(bytes[..bytes.len() / 2].to_vec())),
        },
        UploadDocumentRequest {
            part: Some(Part::Chunk(bytes[bytes.len() / 2..].to_vec())),
        },
    ];
    let answer = client
        .upload_document(futures::stream::iter(parts))
        .await?
        .into_inner();
    Ok(answer.document.unwrap().sha256)
}

pub fn pdf(tag: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {tag}\n").into_bytes()
}

/// A complete application by `uscc`, its documents uploaded first.
pub async fn application(
    client: &mut FilingServiceClient<Channel>,
    uscc: &str,
    registered_on: &str,
    request_id: &str,
) -> SubmitFilingRequest {
    try_application(client, uscc, registered_on, request_id)
        .await
        .unwrap()
}

/// [`application`], or the refusal of the first upload that failed.
pub async fn try_application(
    client: &mut FilingServiceClient<Channel>,
    uscc: &str,
    registered_on: &str,
    request_id: &str,
) -> Result<SubmitFilingRequest, tonic::Status> {
    let mut doc = async |kind, tag: &str| {
        Ok::<_, tonic::Status>(Some(DocumentRef {
            sha256: upload(client, kind, pdf(&format!("{uscc} {tag}"))).await?,
        }))
    };
    Ok(SubmitFilingRequest {
        request_id: request_id.into(),
        form: Some(ApplicationForm {
            agency_name: format!("Credit Agency {uscc}"),
            uscc: uscc.into(),
            registration_date: registered_on.into(),
            registered_address: "新疆喀什地区喀什市人民路1号".into(),
            registered_capital_yuan: 10_000_000,
            business_scope: "信用评价、信用咨询".into(),
            legal_representative: person("阿依努尔", "65310119850101123"),
            chair: person("王五", "65310119800202234"),
            general_manager: person("李四", "65010219900307123"),
            professional_staff_count: 12,
            information_security: "classified protection level 2".into(),
            internal_rules: (1..=8).collect(),
            contact_phone: "0998-1234567".into(),
            contact_email: "office@example.org".into(),
            registered_division: uscc[2..8].into(),
            fee_items: vec![
                FeeItem {
                    service_item: "企业信用评价报告".into(),
                    fee: "5000".into(),
                    unit: "份".into(),
                    basis: "按评价对象规模分档".into(),
                },
                FeeItem {
                    service_item: "信用咨询".into(),
                    fee: "800".into(),
                    unit: "小时".into(),
                    basis: String::new(),
                },
            ],
        }),
        application_form_document: doc(DocumentKind::ApplicationForm, "form").await?,
        business_licence: doc(DocumentKind::BusinessLicence, "licence").await?,
        articles_of_association: doc(DocumentKind::ArticlesOfAssociation, "articles").await?,
        senior_management_register: doc(DocumentKind::SeniorManagementRegister, "managers").await?,
        technical_staff_register: doc(DocumentKind::TechnicalStaffRegister, "staff").await?,
        annual_credit_service_report: doc(DocumentKind::AnnualCreditServiceReport, "report")
            .await?,
        credit_commitment: Some(CreditCommitment {
            letter: doc(DocumentKind::CreditCommitmentLetter, "commitment").await?,
            signed_by_legal_representative: true,
            sealed: true,
        }),
        fee_schedule: doc(DocumentKind::FeeSchedule, "fees").await?,
        model_documents: vec![doc(DocumentKind::ModelDocument, "model").await?.unwrap()],
        other_materials: vec![],
    })
}

/// Submits `uscc`'s application (see [`application`]) through `client`; the new filing's id.
pub async fn filed(
    client: &mut FilingServiceClient<Channel>,
    uscc: &str,
    registered_on: &str,
    request_id: &str,
) -> String {
    let req = application(client, uscc, registered_on, request_id).await;
    client
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap()
        .filing_id
}

/// Delivers a review decision to the filing service as the review service would.
pub async fn review_says<E: EventKind>(t: &TestMesh, tenant: &str, event: E) {
    let ch = mtls(t.service_addr("filing"), &t.pki_dir, "service-review").await;
    EventSinkServiceClient::new(ch)
        .deliver(DeliverRequest {
            event: Some(Event {
                id: uuid::Uuid::now_v7().to_string(),
                r#type: E::TYPE.into(),
                source: "review".into(),
                tenant: tenant.into(),
                principal: "spiffe://creditmesh.xinjiang/regulator/653100".into(),
                subject: String::new(),
                // Stamped by the review node's clock, here an hour ahead of the mesh's (which
                // stands still): what the decision causes must not wait for it.
                occurred_at: Some(
                    (std::time::SystemTime::now() + Duration::from_secs(3600)).into(),
                ),
                payload: prost::Message::encode_to_vec(&event),
            }),
        })
        .await
        .expect("the filing service applies the decision");
}

/// A Kashgar filing, approved.
pub async fn active_kashgar_filing(t: &TestMesh) -> (FilingServiceClient<Channel>, Filing) {
    active_filing(t, "agency-kashgar", KASHGAR, "k-active").await
}

/// A Kashgar agency `uscc` holding the certificate `cert`, its filing approved.
pub async fn active_filing(
    t: &TestMesh,
    cert: &str,
    uscc: &str,
    request_id: &str,
) -> (FilingServiceClient<Channel>, Filing) {
    let mut agency = FilingServiceClient::new(t.node(cert).await);
    let req = application(&mut agency, uscc, "2020-05-01", request_id).await;
    let filing = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    review_says(
        t,
        "653100",
        FilingDecided {
            filing_id: filing.filing_id.clone(),
            approved: true,
            ..Default::default()
        },
    )
    .await;
    let filing = agency
        .get_filing(GetFilingRequest {
            filing_id: filing.filing_id,
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(filing.status, FilingStatus::Active as i32);
    (agency, filing)
}

pub fn today() -> time::Date {
    creditmesh_domain::calendar::cst_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64,
    )
    .unwrap()
}

async fn filings_land_with_the_authority_of_registration(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut kashgar = FilingServiceClient::new(t.node("agency-kashgar").await);
    let req = application(&mut kashgar, KASHGAR, "2020-05-01", "k-1").await;
    let k = kashgar
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(
        (k.tenant.as_str(), k.reviewing_tenant.as_str()),
        ("653100", "653100")
    );
    assert_eq!(k.status, FilingStatus::Submitted as i32);
    let deadline = k.review_deadline.clone().unwrap();
    assert_eq!(deadline.working_days, 10);
    assert!(!deadline.calendar_version.is_empty());

    // Registered less than a year ago: no annual credit-service report needed (Art. 8(5)).
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    let recent = creditmesh_domain::calendar::format_date(today() - time::Duration::days(30));
    let mut req = application(&mut beijing, BEIJING, &recent, "b-1").await;
    req.annual_credit_service_report = None;
    let b = beijing
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(
        b.tenant, "650000",
        "registered outside Xinjiang: the region reviews it"
    );

    let ids = |r: ListFilingsResponse| {
        r.filings
            .into_iter()
            .map(|f| f.filing_id)
            .collect::<Vec<_>>()
    };
    let mut region = FilingServiceClient::new(t.node("regulator-650000").await);
    let all = ids(region
        .list_filings(ListFilingsRequest::default())
        .await
        .unwrap()
        .into_inner());
    assert_eq!(all.len(), 2);
    let mut prefecture = FilingServiceClient::new(t.node("regulator-653100").await);
    let own = ids(prefecture
        .list_filings(ListFilingsRequest::default())
        .await
        .unwrap()
        .into_inner());
    assert_eq!(own, std::slice::from_ref(&k.filing_id));
    let mut urumqi = FilingServiceClient::new(t.node("regulator-650100").await);
    assert!(
        ids(urumqi
            .list_filings(ListFilingsRequest::default())
            .await
            .unwrap()
            .into_inner())
        .is_empty()
    );
    let hidden = urumqi
        .get_filing(GetFilingRequest {
            filing_id: k.filing_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let denied = urumqi
        .list_filings(ListFilingsRequest {
            tenant: "653100".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Pagination: one page at a time.
    let first = region
        .list_filings(ListFilingsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.filings.len(), 1);
    let second = region
        .list_filings(ListFilingsRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.filings.len(), 1);
    assert_ne!(first.filings[0].filing_id, second.filings[0].filing_id);
    assert!(second.next_page_token.is_empty());
    t.stop().await;
}

async fn missing_items_are_each_named_and_nothing_is_stored(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "k-missing").await;
    req.business_licence = None;
    req.fee_schedule = None;
    req.credit_commitment = None;
    let form = req.form.as_mut().unwrap();
    form.fee_items[1].fee = String::new();
    let err = agency.submit_filing(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields: Vec<String> = err
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "business_licence",
            "credit_commitment",
            "fee_schedule",
            "form.fee_items[1].fee"
        ]
    );
    // Art. 19: the service items and fees are shown, so at least one must be filed.
    req.form.as_mut().unwrap().fee_items.clear();
    let err = agency.submit_filing(req).await.unwrap_err();
    let fields: Vec<String> = err
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert!(fields.contains(&"form.fee_items".to_owned()), "{fields:?}");
    let url = t.db_url("filing");
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM filing_filing").await,
        0
    );
    assert_eq!(
        scalar_i64(&url, "SELECT COUNT(*) FROM filing_outbox").await,
        0
    );
    t.stop().await;
}

/// Art. 6: registered capital, professional staff, information-security capability and the
/// eight internal rules are conditions of filing; an application short of them is refused
/// naming each, the missing rules by name.
async fn an_agency_short_of_the_conditions_is_told_each_and_nothing_is_stored(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "k-short").await;
    let form = req.form.as_mut().unwrap();
    form.registered_capital_yuan = 0;
    form.professional_staff_count = 0;
    form.information_security = String::new();
    form.internal_rules = vec![1, 2, 3, 4, 5, 6];
    let err = agency.submit_filing(req).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let violations = err
        .get_error_details()
        .bad_request()
        .unwrap()
        .field_violations
        .clone();
    let mut fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "form.information_security",
            "form.internal_rules",
            "form.professional_staff_count",
            "form.registered_capital_yuan",
        ]
    );
    let rules = violations
        .iter()
        .find(|v| v.field == "form.internal_rules")
        .unwrap();
    assert!(
        rules
            .description
            .ends_with("(Art. 6(3)): accountability, staff management"),
        "{rules:?}"
    );
    assert_eq!(
        scalar_i64(&t.db_url("filing"), "SELECT COUNT(*) FROM filing_filing").await,
        0
    );
    t.stop().await;
}

async fn a_retried_submission_creates_one_filing(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let req = application(&mut agency, KASHGAR, "2020-05-01", "k-retry").await;
    let a = agency
        .submit_filing(req.clone())
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let b = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(a.filing_id, b.filing_id);
    assert_eq!(
        scalar_i64(&t.db_url("filing"), "SELECT COUNT(*) FROM filing_filing").await,
        1
    );
    t.stop().await;
}

async fn an_agency_acts_only_for_its_own_code(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut kashgar = FilingServiceClient::new(t.node("agency-kashgar").await);
    let mut req = application(&mut kashgar, KASHGAR, "2020-05-01", "k-own").await;
    let k = kashgar
        .submit_filing(req.clone())
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    req.request_id = "k-for-beijing".into();
    req.form.as_mut().unwrap().uscc = BEIJING.into();
    let err = kashgar.submit_filing(req).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    let hidden = beijing
        .get_filing(GetFilingRequest {
            filing_id: k.filing_id,
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let listed = beijing
        .list_filings(ListFilingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.filings.is_empty());
    t.stop().await;
}

async fn a_late_change_is_flagged_and_recorded(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let (mut agency, filing) = active_kashgar_filing(&t).await;
    let lease = upload(&mut agency, DocumentKind::ChangeMaterial, pdf("new lease"))
        .await
        .unwrap();
    let change = |request_id: &str, changed_on: time::Date| SubmitChangeRequest {
        request_id: request_id.into(),
        filing_id: filing.filing_id.clone(),
        changed_on: creditmesh_domain::calendar::format_date(changed_on),
        changed_facts: Some(ApplicationForm {
            registered_address: "新疆喀什地区喀什市解放路2号".into(),
            ..Default::default()
        }),
        supporting_documents: vec![DocumentRef {
            sha256: lease.clone(),
        }],
        description: "moved".into(),
    };
    let timely = agency
        .submit_change(change("c-1", today()))
        .await
        .unwrap()
        .into_inner();
    assert!(!timely.late);
    let late = agency
        .submit_change(change("c-2", today() - time::Duration::days(60)))
        .await
        .unwrap()
        .into_inner();
    assert!(late.late);
    assert_eq!(late.submission_deadline.unwrap().working_days, 20);

    // The filed facts change only when review approves.
    let address = |f: Filing| f.form.unwrap().registered_address;
    let get = async |agency: &mut FilingServiceClient<Channel>| {
        agency
            .get_filing(GetFilingRequest {
                filing_id: filing.filing_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .filing
            .unwrap()
    };
    assert_eq!(
        address(get(&mut agency).await),
        "新疆喀什地区喀什市人民路1号"
    );
    review_says(
        &t,
        "653100",
        ChangeDecided {
            change_id: late.change_id.clone(),
            approved: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        address(get(&mut agency).await),
        "新疆喀什地区喀什市解放路2号"
    );

    // The late flag is recorded against the agency in its credit file.
    let region = t.node("regulator-650000").await;
    eventually(
        "the late change in the credit file",
        Duration::from_secs(20),
        || {
            let region = region.clone();
            async move {
                let file =
                    creditmesh_proto::review::v1::review_service_client::ReviewServiceClient::new(
                        region,
                    )
                    .get_credit_file(creditmesh_proto::review::v1::GetCreditFileRequest {
                        uscc: KASHGAR.into(),
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                file.entries
                    .iter()
                    .any(|e| e.kind == "change" && e.summary.contains("late (Art. 12)"))
                    .then_some(())
            }
        },
    )
    .await;
    t.stop().await;
}

async fn annual_reports_stop_at_revocation_and_the_ban_holds(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let (mut agency, filing) = active_kashgar_filing(&t).await;
    let market = upload(
        &mut agency,
        DocumentKind::MarketRegulationAnnualReport,
        pdf("market report"),
    )
    .await
    .unwrap();
    let report = |request_id: &str, year: i32| SubmitAnnualReportRequest {
        request_id: request_id.into(),
        filing_id: filing.filing_id.clone(),
        year,
        market_regulation_annual_report: Some(DocumentRef {
            sha256: market.clone(),
        }),
        in_region_business_summary: "12 rating projects in Kashgar".into(),
        projects: vec![InRegionProject {
            client_unit: "Kashgar Water Co.".into(),
            project_name: "credit rating".into(),
            funding_scale_yuan: 200_000,
            results: "AA".into(),
            awards: String::new(),
        }],
    };
    let last_year = today().year() - 1;
    let accepted = agency
        .submit_annual_report(report("r-1", last_year))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.due_date, format!("{}-06-30", last_year + 1));

    let ban_ends = creditmesh_domain::calendar::format_date(today() + time::Duration::days(365));
    review_says(
        &t,
        "653100",
        FilingRevoked {
            filing_id: filing.filing_id.clone(),
            ground: "refused_rectification".into(),
            ban_ends_on: ban_ends.clone(),
            ..Default::default()
        },
    )
    .await;
    let refused = agency
        .submit_annual_report(report("r-2", last_year - 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let again = application(&mut agency, KASHGAR, "2020-05-01", "k-again").await;
    let barred = agency.submit_filing(again).await.unwrap_err();
    assert_eq!(barred.code(), Code::FailedPrecondition);
    assert!(barred.message().contains(&ban_ends), "{}", barred.message());
    t.stop().await;
}

async fn deregistration_completes_with_a_disposal_record(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let (mut agency, filing) = active_kashgar_filing(&t).await;
    let plan = upload(
        &mut agency,
        DocumentKind::DisposalPlan,
        pdf("disposal plan"),
    )
    .await
    .unwrap();
    let deregistering = agency
        .request_deregistration(RequestDeregistrationRequest {
            request_id: "d-1".into(),
            filing_id: filing.filing_id.clone(),
            reason: DeregistrationReason::Dissolution as i32,
            reason_detail: String::new(),
            disposal_plan: Some(DocumentRef { sha256: plan }),
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(deregistering.status, FilingStatus::Deregistering as i32);
    review_says(
        &t,
        "653100",
        DeregistrationCompleted {
            filing_id: filing.filing_id.clone(),
            disposal: Some(Disposal {
                disposed_on: "2026-11-20".into(),
                method: "secure erasure".into(),
                supervised_by: "653100".into(),
            }),
            ..Default::default()
        },
    )
    .await;
    let done = agency
        .get_filing(GetFilingRequest {
            filing_id: filing.filing_id,
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(done.status, FilingStatus::Deregistered as i32);
    assert!(
        done.history
            .iter()
            .any(|h| h.note.contains("secure erasure")),
        "{:?}",
        done.history
    );
    t.stop().await;
}

async fn uploads_are_checked_on_their_bytes(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let a = upload(&mut agency, DocumentKind::FeeSchedule, pdf("same"))
        .await
        .unwrap();
    let b = upload(&mut agency, DocumentKind::FeeSchedule, pdf("same"))
        .await
        .unwrap();
    assert_eq!(a, b, "content-addressed: the same bytes are one document");
    let exe = upload(
        &mut agency,
        DocumentKind::FeeSchedule,
        b"MZ\x90\x00 not a document".to_vec(),
    )
    .await
    .unwrap_err();
    assert_eq!(exe.code(), Code::InvalidArgument);
    // Declared size and bytes disagree.
    let parts = vec![
        UploadDocumentRequest {
            part: Some(Part::Metadata(DocumentMetadata {
                kind: DocumentKind::FeeSchedule as i32,
                file_name: "a.pdf".into(),
                size_bytes: 100,
            })),
        },
        UploadDocumentRequest {
            part: Some(Part::Chunk(pdf("short"))),
        },
    ];
    let short = agency
        .upload_document(futures::stream::iter(parts))
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    // Regulators do not upload.
    let mut regulator = FilingServiceClient::new(t.node("regulator-653100").await);
    let denied = upload(&mut regulator, DocumentKind::FeeSchedule, pdf("x"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        scalar_i64(&t.db_url("filing"), "SELECT COUNT(*) FROM filing_document").await,
        1
    );
    t.stop().await;
}

/// Documents in an S3-compatible store: uploaded through the gateway, referenced by a filing,
/// and readable back from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_live_in_an_s3_compatible_store() {
    let Some(base) = creditmesh_tests::s3_url() else {
        return;
    };
    let url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    );
    let Some(t) = TestMesh::start_with_blobs(Engine::Sqlite, url.clone()).await else {
        return;
    };
    let kashgar = Tenant::parse("653100").unwrap();
    t.issue(
        "agency-kashgar",
        Principal::new(PrincipalKind::Agency, kashgar, KASHGAR),
    );
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let bytes = pdf("kept in s3");
    let sha = upload(&mut agency, DocumentKind::BusinessLicence, bytes.clone())
        .await
        .unwrap();
    let req = application(&mut agency, KASHGAR, "2020-05-01", "s3-1").await;
    agency.submit_filing(req).await.unwrap();

    let staging = tempfile::tempdir().unwrap();
    let bucket = creditmesh_storage::Blobs::open(&url, staging.path()).unwrap();
    assert!(bucket.exists(&sha).await.unwrap());
    assert_eq!(bucket.read(&sha).await.unwrap(), bytes);
    t.stop().await;
}

/// Appends `n` status changes with notes of `note_bytes` to a filing, as years of changes
/// would.
async fn pad_history(t: &TestMesh, filing: &Filing, n: i64, note_bytes: usize) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.admin_db_url("filing"))
        .await
        .unwrap();
    let start: i64 = sqlx::query_scalar(
        "SELECT history_seq FROM filing_filing WHERE tenant = $1 AND filing_id = $2",
    )
    .bind(filing.tenant.clone())
    .bind(filing.filing_id.clone())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    for i in 1..=n {
        sqlx::query(
            "INSERT INTO filing_history (tenant, filing_id, seq, status, changed_at, principal, note) \
             VALUES ($1, $2, $3, 'active', $4, 'spiffe://creditmesh.xinjiang/regulator/653100', $5)",
        )
        .bind(filing.tenant.clone())
        .bind(filing.filing_id.clone())
        .bind(start + i)
        .bind(1_700_000_000_000_000 + i)
        .bind(format!("{i:06} {}", "x".repeat(note_bytes)))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE filing_filing SET history_seq = $1 WHERE tenant = $2 AND filing_id = $3")
        .bind(start + n)
        .bind(filing.tenant.clone())
        .bind(filing.filing_id.clone())
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
}

async fn long_histories_are_bounded_and_pages_fit_a_stock_client(engine: Engine) {
    let Some(t) = mesh(engine).await else {
        return;
    };
    let (mut agency, filing) = active_kashgar_filing(&t).await;
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    let req = application(&mut beijing, BEIJING, "2019-03-01", "b-long").await;
    let other = beijing
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();

    // Many short entries: the newest 200, oldest first, and the flag.
    pad_history(&t, &filing, 300, 10).await;
    let shown = agency
        .get_filing(GetFilingRequest {
            filing_id: filing.filing_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(shown.history.len(), 200);
    assert!(shown.history_truncated);
    assert!(shown.history.last().unwrap().note.starts_with("000300 "));
    assert!(shown.history[0].note.starts_with("000101 "));

    // Long notes: the history stops at about 1 MiB, and a page of filings stops at about
    // 1.5 MiB, each well within the 4 MiB a stock client accepts.
    pad_history(&t, &filing, 150, 20_000).await;
    pad_history(&t, &other, 150, 20_000).await;
    let mut region = FilingServiceClient::new(t.node("regulator-650000").await);
    let first = region
        .list_filings(ListFilingsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("a page within a stock client's limit")
        .into_inner();
    let size = prost::Message::encoded_len(&first);
    assert!(size < 3 * 1024 * 1024, "{size} bytes");
    assert_eq!(first.filings.len(), 1, "the page ends after 1.5 MiB");
    assert!(first.filings[0].history_truncated);
    assert!(!first.next_page_token.is_empty());
    let second = region
        .list_filings(ListFilingsRequest {
            page_size: 500,
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.filings.len(), 1);
    let mut ids = [
        first.filings[0].filing_id.clone(),
        second.filings[0].filing_id.clone(),
    ];
    ids.sort();
    let mut expected = [filing.filing_id, other.filing_id];
    expected.sort();
    assert_eq!(ids, expected);
    t.stop().await;
}

/// A document of `filing_id` as `client` reads it: its metadata and its bytes.
pub async fn read_document(
    client: &mut FilingServiceClient<Channel>,
    filing_id: &str,
    sha256: &str,
    purpose: &str,
) -> Result<(ReadDocumentMetadata, Vec<u8>), tonic::Status> {
    use creditmesh_proto::filing::v1::read_document_response::Part as Out;
    let mut stream = client
        .read_document(ReadDocumentRequest {
            filing_id: filing_id.into(),
            sha256: sha256.into(),
            purpose: purpose.into(),
        })
        .await?
        .into_inner();
    let mut meta = None;
    let mut bytes = Vec::new();
    while let Some(m) = stream.message().await? {
        match m.part {
            Some(Out::Metadata(m)) => meta = Some(m),
            Some(Out::Chunk(c)) => bytes.extend_from_slice(&c),
            None => {}
        }
    }
    Ok((meta.expect("the metadata comes first"), bytes))
}

/// Art. 10: the authority reviewing a filing opens what was submitted with it (each read
/// recorded with its purpose); the region opens anything, the agency its own; another
/// prefecture, another agency, or a document the filing does not hold: NOT_FOUND.
async fn a_regulator_holding_a_filing_opens_its_documents_and_no_other_can(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    for (name, tenant) in [
        ("regulator-650000", "650000"),
        ("regulator-650100", "650100"),
    ] {
        t.issue(
            name,
            Principal::new(PrincipalKind::Regulator, Tenant::parse(tenant).unwrap(), ""),
        );
    }
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let req = application(&mut agency, KASHGAR, "2020-05-01", "k-docs").await;
    let licence = req.business_licence.clone().unwrap().sha256;
    let filing_id = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap()
        .filing_id;
    let stray = upload(&mut agency, DocumentKind::Other, pdf("never submitted"))
        .await
        .unwrap();

    let mut kashgar = FilingServiceClient::new(t.node("regulator-653100").await);
    let (meta, bytes) = read_document(&mut kashgar, &filing_id, &licence, "Art. 9(3) check")
        .await
        .unwrap();
    assert_eq!(bytes, pdf(&format!("{KASHGAR} licence")));
    assert_eq!(meta.kind, DocumentKind::BusinessLicence as i32);
    assert_eq!(meta.media_type, "application/pdf");
    assert_eq!(meta.size_bytes, bytes.len() as i64);
    let mut region = FilingServiceClient::new(t.node("regulator-650000").await);
    read_document(&mut region, &filing_id, &licence, "forwarded materials")
        .await
        .unwrap();
    read_document(&mut agency, &filing_id, &licence, "")
        .await
        .unwrap();

    let unstated = read_document(&mut kashgar, &filing_id, &licence, " ")
        .await
        .unwrap_err();
    assert_eq!(unstated.code(), Code::InvalidArgument, "{unstated:?}");
    assert!(
        super::lifecycle::fields(&unstated)
            .iter()
            .any(|f| f.starts_with("purpose")),
        "{unstated:?}"
    );
    let mut urumqi = FilingServiceClient::new(t.node("regulator-650100").await);
    let mut beijing = FilingServiceClient::new(t.node("agency-beijing").await);
    for (who, client) in [("urumqi", &mut urumqi), ("beijing", &mut beijing)] {
        let err = read_document(client, &filing_id, &licence, "curiosity")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{who}: {err:?}");
    }
    let err = read_document(&mut kashgar, &filing_id, &stray, "anything uploaded")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "not submitted with the filing: {err:?}"
    );

    let url = t.db_url("filing");
    assert_eq!(
        creditmesh_tests::scalar_i64(&url, "SELECT COUNT(*) FROM filing_document_read").await,
        3,
        "each read that happened is recorded, and only those"
    );
    assert_eq!(
        creditmesh_tests::scalar_i64(
            &url,
            "SELECT COUNT(*) FROM filing_document_read WHERE purpose = 'Art. 9(3) check' \
             AND principal LIKE '%653100%'"
        )
        .await,
        1
    );
    t.stop().await;
}

/// Art. 9: a principal named by another identity document than the mainland card (here a
/// Taiwan resident's residence permit) files; each number is checked by its own document's
/// rule, and the filing keeps which document it is.
async fn principals_are_named_by_the_document_they_hold(engine: Engine) {
    use creditmesh_proto::common::v1::IdentityDocumentType;
    let Some(t) = mesh(engine).await else { return };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let permit = person_id("83000019850101123");
    let mut req = application(&mut agency, KASHGAR, "2020-05-01", "k-permit").await;
    req.form.as_mut().unwrap().general_manager = Some(Person {
        name: "陳美玲".into(),
        identity_number: permit.clone(),
        document_type: IdentityDocumentType::HkMacaoTaiwanResidencePermit as i32,
    });
    // The same number read as a mainland card, or a permit number given as a travel permit's:
    // refused, naming the field.
    for (request_id, document_type) in [
        ("k-permit-0", IdentityDocumentType::Unspecified),
        ("k-permit-1", IdentityDocumentType::TaiwanTravelPermit),
    ] {
        let mut wrong = req.clone();
        wrong.request_id = request_id.into();
        wrong
            .form
            .as_mut()
            .unwrap()
            .general_manager
            .as_mut()
            .unwrap()
            .document_type = document_type as i32;
        let err = agency.submit_filing(wrong).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            super::lifecycle::fields(&err)
                .iter()
                .any(|f| f.ends_with("general_manager.identity_number")),
            "{err:?}"
        );
    }
    let filing = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let gm = filing.form.unwrap().general_manager.unwrap();
    assert_eq!(gm.identity_number, permit);
    assert_eq!(
        gm.document_type,
        IdentityDocumentType::HkMacaoTaiwanResidencePermit as i32
    );
    t.stop().await;
}
