//! The demonstration register `dev` seeds on its first run, through the gateway as its users
//! would: the demo agency files with Urumqi (every Art. 8 item, its documents uploaded), Urumqi's
//! regulator approves it, the agency reports a wider business scope and Urumqi approves that
//! too, the register publishes both and signs a checkpoint, and the agency pushes one credit
//! record. Every example in the README then answers as printed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use creditmesh_domain::resident_id::check_char;
use creditmesh_pki::{ClientTls, DEMO_AGENCY_USCC, TlsFiles};
use creditmesh_proto::common::v1::{DocumentRef, Person};
use creditmesh_proto::datapush::v1::data_push_service_client::DataPushServiceClient;
use creditmesh_proto::datapush::v1::{
    CreditRecord, PushRecordsRequest, PushResult, RecordSource, SubjectKind,
};
use creditmesh_proto::disclosure::v1::GetRegisterHeadRequest;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::upload_document_request::Part;
use creditmesh_proto::filing::v1::{
    ApplicationForm, CreditCommitment, DocumentKind, DocumentMetadata, FeeItem, Filing,
    FilingStatus, ListFilingsRequest, SubmitChangeRequest, SubmitFilingRequest,
    UploadDocumentRequest,
};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{DecideReviewTaskRequest, ListReviewTasksRequest, TaskStatus};
use tonic::transport::Channel;

/// The record the demo agency pushes: a person's loan repayment, 12 days overdue.
pub const DEMO_SUBJECT: &str = "650102198001011234";
const DEMO_REGULATOR: &str = "regulator-650100";
const WAIT: Duration = Duration::from_secs(60);

/// What the seeding found or did, for the banner.
pub enum Seeded {
    Now,
    Already,
}

/// Seeds the demonstration register on the mesh at `node` (its node listener), unless the demo
/// agency already holds an approved filing there; finishes a seeding a previous run left half
/// done.
pub async fn seed(pki_dir: &Path, node: SocketAddr) -> Result<Seeded> {
    let url = format!("https://{node}");
    let agency = channel(pki_dir, &url, "agency")?;
    let mut filing = FilingServiceClient::new(agency.clone());
    let existing = filing
        .list_filings(ListFilingsRequest::default())
        .await
        .context("listing the demo agency's filings")?
        .into_inner()
        .filings
        .into_iter()
        .next();
    let filing_id = match existing {
        Some(f) if f.status != FilingStatus::Submitted as i32 => return Ok(Seeded::Already),
        Some(f) => f.filing_id,
        None => submit(&mut filing).await?.filing_id,
    };
    approve(pki_dir, &url, &filing_id, "demo-approval").await?;
    wait_for("the demo filing to be active", || {
        let mut filing = filing.clone();
        async move {
            let f = filing
                .list_filings(ListFilingsRequest::default())
                .await
                .ok()?
                .into_inner()
                .filings;
            f.iter()
                .any(|f| f.status == FilingStatus::Active as i32)
                .then_some(())
        }
    })
    .await?;
    change(&mut filing, pki_dir, &url, &filing_id).await?;
    let register = DisclosureServiceClient::new(channel(pki_dir, &url, DEMO_REGULATOR)?);
    wait_for("a signed checkpoint of both notices", || {
        let mut register = register.clone();
        async move {
            let head = register
                .get_register_head(GetRegisterHeadRequest::default())
                .await
                .ok()?
                .into_inner();
            (head.size >= 2).then_some(())
        }
    })
    .await?;
    // Datapush hears of the approval by event, on its own time: until then a push is refused.
    wait_for("the platform to take the demo agency's push", || {
        let agency = agency.clone();
        async move { push(agency).await.transpose() }
    })
    .await??;
    Ok(Seeded::Now)
}

fn channel(pki_dir: &Path, url: &str, name: &str) -> Result<Channel> {
    let tls = ClientTls::client(TlsFiles::in_dir(pki_dir, name))?;
    creditmesh_rpc::client::mtls_channel(url, tls, "localhost")
}

/// Uploads a one-line PDF titled `title` as the demo agency's document of `kind`.
async fn upload(
    client: &mut FilingServiceClient<Channel>,
    kind: DocumentKind,
    title: &str,
) -> Result<Option<DocumentRef>> {
    let bytes = format!("%PDF-1.7\n% {DEMO_AGENCY_USCC}: {title}\n").into_bytes();
    let parts = [
        Part::Metadata(DocumentMetadata {
            kind: kind as i32,
            file_name: format!("{title}.pdf"),
            size_bytes: bytes.len() as i64,
        }),
        Part::Chunk(bytes),
    ]
    .map(|part| UploadDocumentRequest { part: Some(part) });
    let stored = client
        .upload_document(futures::stream::iter(parts))
        .await
        .with_context(|| format!("uploading the demo {title}"))?
        .into_inner();
    Ok(Some(DocumentRef {
        sha256: stored.document.context("an uploaded document")?.sha256,
    }))
}

async fn submit(client: &mut FilingServiceClient<Channel>) -> Result<Filing> {
    let uscc = DEMO_AGENCY_USCC;
    let mut doc = async |kind: DocumentKind, title: &str| upload(client, kind, title).await;
    let person = |name: &str, first17: &str| {
        Some(Person {
            name: name.into(),
            identity_number: format!("{first17}{}", check_char(first17.as_bytes())),
            ..Default::default()
        })
    };
    let request = SubmitFilingRequest {
        request_id: "demo-filing".into(),
        form: Some(ApplicationForm {
            agency_name: "乌鲁木齐示范信用服务有限公司".into(),
            uscc: uscc.into(),
            registration_date: "2020-05-01".into(),
            registered_address: "新疆乌鲁木齐市天山区人民路1号".into(),
            registered_division: uscc[2..8].into(),
            registered_capital_yuan: 10_000_000,
            business_scope: "信用评价、信用咨询".into(),
            legal_representative: person("阿依古丽", "65010219850101123"),
            chair: person("王建国", "65010219800202234"),
            general_manager: person("李明", "65010219900307123"),
            professional_staff_count: 12,
            information_security: "网络安全等级保护第二级".into(),
            internal_rules: (1..=8).collect(),
            contact_phone: "0991-1234567".into(),
            contact_email: "office@example.org".into(),
            fee_items: vec![FeeItem {
                service_item: "企业信用评价报告".into(),
                fee: "5000".into(),
                unit: "份".into(),
                basis: "按评价对象规模分档".into(),
            }],
        }),
        application_form_document: doc(DocumentKind::ApplicationForm, "application form").await?,
        business_licence: doc(DocumentKind::BusinessLicence, "business licence").await?,
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
        fee_schedule: doc(DocumentKind::FeeSchedule, "fee schedule").await?,
        model_documents: doc(DocumentKind::ModelDocument, "model contract")
            .await?
            .into_iter()
            .collect(),
        other_materials: vec![],
    };
    client
        .submit_filing(request)
        .await
        .context("filing the demo agency")?
        .into_inner()
        .filing
        .context("a filing in the answer")
}

/// Urumqi's regulator approves the open review task of `filing_id`, once it has arrived; each
/// decision under its own idempotency key.
async fn approve(pki_dir: &Path, url: &str, filing_id: &str, request_id: &str) -> Result<()> {
    let review = ReviewServiceClient::new(channel(pki_dir, url, DEMO_REGULATOR)?);
    let task_id = wait_for("the demo filing's review task", || {
        let mut review = review.clone();
        async move {
            review
                .list_review_tasks(ListReviewTasksRequest {
                    statuses: vec![TaskStatus::Open as i32],
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .tasks
                .into_iter()
                .find(|t| t.filing_id == filing_id)
                .map(|t| t.task_id)
        }
    })
    .await?;
    review
        .clone()
        .decide_review_task(DecideReviewTaskRequest {
            request_id: request_id.into(),
            task_id,
            approve: true,
            reason: "示范数据：材料齐全，予以通过".into(),
            ..Default::default()
        })
        .await
        .context("approving the demo filing")?;
    Ok(())
}

/// The demo agency reports that its business scope now takes in credit training (Art. 12) and
/// Urumqi approves it: the register's second notice.
async fn change(
    filing: &mut FilingServiceClient<Channel>,
    pki_dir: &Path,
    url: &str,
    filing_id: &str,
) -> Result<()> {
    let today = creditmesh_domain::calendar::cst_date(creditmesh_domain::Clock::now_micros(
        &creditmesh_domain::SystemClock,
    ))?;
    let material = upload(
        filing,
        DocumentKind::ChangeMaterial,
        "business scope change",
    )
    .await?;
    filing
        .submit_change(SubmitChangeRequest {
            request_id: "demo-change".into(),
            filing_id: filing_id.into(),
            changed_on: today.to_string(),
            changed_facts: Some(ApplicationForm {
                business_scope: "信用评价、信用咨询、信用培训".into(),
                ..Default::default()
            }),
            supporting_documents: material.into_iter().collect(),
            description: "经营范围增加信用培训".into(),
        })
        .await
        .context("reporting the demo change")?;
    approve(pki_dir, url, filing_id, "demo-change-approval").await
}

/// The demo record pushed; `None` while the platform does not yet know the filing active.
async fn push(agency: Channel) -> Result<Option<()>> {
    let content = r#"{"amount_due":120.5,"due_on":"2026-10-31","days_overdue":12}"#;
    let record = CreditRecord {
        record_key: "demo-loan-1".into(),
        subject_kind: SubjectKind::Person as i32,
        subject_identifier: DEMO_SUBJECT.into(),
        category: "loan-repayment".into(),
        content: content.as_bytes().to_vec(),
        collected_on: "2026-11-20".into(),
        source: Some(RecordSource {
            provider: "Urumqi Commercial Bank".into(),
            legal_basis: "written consent of 2026-03-02".into(),
        }),
    };
    let answer = async {
        let mut acks = DataPushServiceClient::new(agency)
            .push_records(futures::stream::iter([PushRecordsRequest {
                record: Some(record),
            }]))
            .await?
            .into_inner();
        acks.message().await
    };
    let ack = match answer.await {
        Ok(ack) => ack.context("an acknowledgement")?,
        Err(s) if s.code() == tonic::Code::FailedPrecondition => return Ok(None),
        Err(s) => return Err(s).context("pushing the demo record"),
    };
    match PushResult::try_from(ack.result) {
        Ok(PushResult::Stored | PushResult::Duplicate | PushResult::Updated) => Ok(Some(())),
        _ => bail!("the demo record was refused: {}", ack.error),
    }
}

/// Asks `check` every 200 ms until it answers, for at most a minute.
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return Ok(found);
        }
        if start.elapsed() > WAIT {
            bail!("waited {} s for {what}", WAIT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
