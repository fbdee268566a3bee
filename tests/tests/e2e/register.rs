//! The public register: what filing's approvals, changes, revocations and deregistrations
//! show to anyone on the public listener, desensitised, and the log that proves it.

use std::sync::Arc;
use std::time::Duration;

use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::*;
use creditmesh_proto::events::v1::event_sink_service_client::EventSinkServiceClient;
use creditmesh_proto::events::v1::{
    ChangeDecided, DeliverRequest, Event, FilingDecided, FilingRevoked, PublicFacts,
    RegisterChanged,
};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{
    ApplicationForm, DeregistrationReason, DocumentKind, FeeItem as FiledFee,
    RequestDeregistrationRequest, SubmitChangeRequest,
};
use creditmesh_tests::{Engine, TestClock, TestMesh, eventually, mtls};
use futures::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

use super::filing::{KASHGAR, mesh, pdf, review_says, upload};

crate::on_both_engines!(
    an_approved_filing_is_found_desensitised_and_proven,
    deregistration_and_revocation_change_what_the_register_shows,
    bad_register_queries_name_the_field,
    corrections_are_new_leaves_from_the_holding_authority,
    concurrent_appends_leave_one_consistent_log,
    creditmesh_verify_says_valid_or_what_fails,
    tampering_with_stored_notices_is_detected,
    an_approved_change_updates_the_record_and_says_what_changed,
    an_erased_notice_keeps_its_leaf_and_every_proof,
    a_witness_cosigns_what_extends_and_refuses_a_fork,
    the_register_serves_checkpoints_its_witness_cosigned,
    the_log_is_served_as_tiles_over_http,
    a_completed_deregistration_is_a_notice,
    notices_in_the_old_words_are_corrected_once,
    phone_numbers_however_written_are_published_masked,
);

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");

pub type Register = DisclosureServiceClient<Channel>;

pub async fn register(t: &TestMesh) -> Register {
    DisclosureServiceClient::new(t.public().await)
}

async fn notices(r: &mut Register, uscc: &str) -> Vec<Notice> {
    r.list_notices(ListNoticesRequest {
        uscc: uscc.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .notices
}

/// Waits until the agency's notices are `kinds`, in order.
pub async fn notices_become(r: &Register, uscc: &str, kinds: &[NoticeKind]) -> Vec<Notice> {
    let want: Vec<i32> = kinds.iter().map(|k| *k as i32).collect();
    eventually("the notices", Duration::from_secs(20), || {
        let mut r = r.clone();
        let want = want.clone();
        async move {
            let got = notices(&mut r, uscc).await;
            (got.iter().map(|n| n.kind).collect::<Vec<_>>() == want).then_some(got)
        }
    })
    .await
}

async fn agency(r: &mut Register, uscc: &str) -> AgencyRecord {
    r.get_agency(GetAgencyRequest {
        uscc: uscc.into(),
        changed_since: 0,
    })
    .await
    .unwrap()
    .into_inner()
    .agency
    .unwrap()
}

async fn search(r: &mut Register, req: ListAgenciesRequest) -> Vec<String> {
    r.list_agencies(req)
        .await
        .unwrap()
        .into_inner()
        .agencies
        .into_iter()
        .map(|a| a.uscc)
        .collect()
}

/// The verifier key as the node publishes it beside its PKI (not as the register says).
fn vkey(t: &TestMesh) -> String {
    std::fs::read_to_string(t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE))
        .expect("the log's verifier key is published")
}

/// Whether the register's checkpoint of size `to` extends the one of size `from`: both signed
/// by the log's key `vkey`, and the consistency proof between them holds.
pub async fn extends(r: &Register, vkey: &str, from: i64, to: i64) -> Result<(), String> {
    let p = r
        .clone()
        .get_consistency_proof(GetConsistencyProofRequest {
            from_size: from,
            to_size: to,
        })
        .await
        .map_err(|e| format!("consistency proof: {e}"))?
        .into_inner();
    let older = creditmesh_disclosure::verify::checkpoint(&p.from_checkpoint, vkey)?;
    let newer = creditmesh_disclosure::verify::checkpoint(&p.to_checkpoint, vkey)?;
    creditmesh_disclosure::verify::consistency(&older, &newer, &p.proof)
}

/// The newest checkpoint the register serves, once it covers `size` notices.
pub async fn head_covering(r: &Register, size: i64) -> GetRegisterHeadResponse {
    eventually("a checkpoint", Duration::from_secs(30), || {
        let mut r = r.clone();
        async move {
            let head = r.get_register_head(GetRegisterHeadRequest {}).await.ok()?;
            let head = head.into_inner();
            (head.size >= size).then_some(head)
        }
    })
    .await
}

async fn submit_kashgar(t: &TestMesh) -> String {
    super::review::submit(t, "reg-1").await
}

/// Kashgar's filing, submitted and approved; its id once the register shows it.
pub async fn approve_kashgar(t: &TestMesh, r: &Register) -> String {
    let filing_id = submit_kashgar(t).await;
    review_says(
        t,
        "653100",
        FilingDecided {
            filing_id: filing_id.clone(),
            uscc: KASHGAR.into(),
            approved: true,
            ..Default::default()
        },
    )
    .await;
    notices_become(r, KASHGAR, &[NoticeKind::Published]).await;
    filing_id
}

/// Art. 7 and 10: a filing once approved is published on the register, desensitised.
async fn an_approved_filing_is_found_desensitised_and_proven(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut r = register(&t).await;
    let filing_id = submit_kashgar(&t).await;
    // Nothing is published before approval.
    assert!(
        search(&mut r, ListAgenciesRequest::default())
            .await
            .is_empty()
    );
    let unknown = r
        .get_agency(GetAgencyRequest {
            uscc: KASHGAR.into(),
            changed_since: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    let approval = FilingDecided {
        filing_id: filing_id.clone(),
        uscc: KASHGAR.into(),
        approved: true,
        ..Default::default()
    };
    review_says(&t, "653100", approval.clone()).await;
    let published = notices_become(&r, KASHGAR, &[NoticeKind::Published]).await;

    // Found by a Chinese or Latin name substring, by USCC, by prefecture and status.
    let found = search(
        &mut r,
        ListAgenciesRequest {
            name_contains: "Agency 9165".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found, vec![KASHGAR.to_owned()]);
    for (req, hits) in [
        (
            ListAgenciesRequest {
                uscc: KASHGAR.into(),
                ..Default::default()
            },
            1,
        ),
        (
            ListAgenciesRequest {
                tenant: "653100".into(),
                statuses: vec![AgencyStatus::Active as i32],
                ..Default::default()
            },
            1,
        ),
        (
            ListAgenciesRequest {
                tenant: "650100".into(),
                ..Default::default()
            },
            0,
        ),
        (
            ListAgenciesRequest {
                statuses: vec![AgencyStatus::Revoked as i32],
                ..Default::default()
            },
            0,
        ),
        (
            ListAgenciesRequest {
                name_contains: "%".into(),
                ..Default::default()
            },
            0,
        ),
    ] {
        assert_eq!(search(&mut r, req.clone()).await.len(), hits, "{req:?}");
    }

    // Desensitised by the versioned policy; documents by kind, day and hash only.
    let record = agency(&mut r, KASHGAR).await;
    assert_eq!(record.status, AgencyStatus::Active as i32);
    assert_eq!(record.tenant, "653100");
    assert_eq!(record.masking_policy_version, "xj-mask-2");
    assert_eq!(record.legal_representative, "阿***");
    assert_eq!(record.registered_address, "新疆喀什地区****");
    assert_eq!(record.registered_capital_yuan, 10_000_000);
    assert_eq!(record.professional_staff_count, 12);
    assert!(!record.filed_on.is_empty());
    let fees = record
        .documents
        .iter()
        .find(|d| d.kind == "fee_schedule")
        .expect("the fee schedule is listed");
    assert_eq!(fees.sha256.len(), 64);
    assert!(!fees.filed_on.is_empty());
    // Art. 19: the service items and fees, as filed.
    let fees = r
        .get_fee_schedule(GetFeeScheduleRequest {
            uscc: KASHGAR.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let items: Vec<(&str, &str, &str)> = fees
        .items
        .iter()
        .map(|i| (i.service_item.as_str(), i.fee.as_str(), i.unit.as_str()))
        .collect();
    assert_eq!(
        items,
        [
            ("企业信用评价报告", "5000", "份"),
            ("信用咨询", "800", "小时")
        ]
    );
    assert_eq!(fees.register_version, record.register_version);
    let unchanged = r
        .get_agency(GetAgencyRequest {
            uscc: KASHGAR.into(),
            changed_since: record.register_version,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(unchanged.not_modified && unchanged.agency.is_none());
    let notice = &published[0];
    assert!(notice.text.contains("登记建档公示"), "{}", notice.text);
    let content = String::from_utf8(notice.content.clone()).unwrap();
    assert!(
        !content.contains("阿依努尔") && !content.contains("人民路"),
        "{content}"
    );
    assert_eq!(notice.salt.len(), 32);

    // The notice is in the signed tree; a changed byte is not.
    let head = head_covering(&r, 1).await;
    let key = vkey(&t);
    assert_eq!(head.verifier_key.trim(), key.trim());
    let proof = r
        .get_notice_proof(GetNoticeProofRequest {
            sequence: notice.sequence,
            tree_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let checkpoint = creditmesh_disclosure::verify::checkpoint(&proof.checkpoint, &key).unwrap();
    let n = proof.notice.unwrap();
    creditmesh_disclosure::verify::inclusion(
        &checkpoint,
        n.sequence as u64,
        &n.salt,
        &n.content,
        &proof.proof,
    )
    .expect("the notice is in the checkpointed tree");
    let mut tampered = n.content.clone();
    tampered[10] ^= 1;
    assert!(
        creditmesh_disclosure::verify::inclusion(
            &checkpoint,
            n.sequence as u64,
            &n.salt,
            &tampered,
            &proof.proof
        )
        .is_err()
    );
    let mut forged = proof.checkpoint.clone().into_bytes();
    let at = forged.iter().position(|b| *b == b'\n').unwrap() + 1;
    forged[at] = if forged[at] == b'1' { b'2' } else { b'1' };
    assert!(
        creditmesh_disclosure::verify::checkpoint(&String::from_utf8(forged).unwrap(), &key)
            .is_err(),
        "a checkpoint whose size was changed fails its signature"
    );

    // The decision delivered again publishes nothing twice.
    review_says(&t, "653100", approval).await;
    let mut agency_client = FilingServiceClient::new(t.node("agency-kashgar").await);
    request_deregistration(&mut agency_client, &filing_id).await;
    notices_become(
        &r,
        KASHGAR,
        &[NoticeKind::Published, NoticeKind::Deregistering],
    )
    .await;
    t.stop().await;
}

async fn request_deregistration(agency: &mut FilingServiceClient<Channel>, filing_id: &str) {
    let plan = upload(agency, DocumentKind::DisposalPlan, pdf("plan"))
        .await
        .unwrap();
    agency
        .request_deregistration(RequestDeregistrationRequest {
            request_id: "dereg-1".into(),
            filing_id: filing_id.into(),
            reason: DeregistrationReason::Dissolution as i32,
            reason_detail: String::new(),
            disposal_plan: Some(DocumentRef { sha256: plan }),
        })
        .await
        .unwrap();
}

async fn deregistration_and_revocation_change_what_the_register_shows(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let mut r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    let first = head_covering(&r, 1).await;

    // Applying to deregister takes the agency off the active register (Art. 18).
    let mut agency_client = FilingServiceClient::new(t.node("agency-kashgar").await);
    request_deregistration(&mut agency_client, &filing_id).await;
    notices_become(
        &r,
        KASHGAR,
        &[NoticeKind::Published, NoticeKind::Deregistering],
    )
    .await;
    let deregistering = agency(&mut r, KASHGAR).await;
    assert_eq!(deregistering.status, AgencyStatus::Deregistering as i32);
    assert!(
        !deregistering.business_scope.is_empty() && !deregistering.fee_items.is_empty(),
        "still published while the application runs: {deregistering:?}"
    );
    let active = ListAgenciesRequest {
        statuses: vec![AgencyStatus::Active as i32],
        ..Default::default()
    };
    assert!(search(&mut r, active.clone()).await.is_empty());

    // A revocation is published with its ground (Art. 15).
    review_says(
        &t,
        "653100",
        FilingRevoked {
            filing_id: filing_id.clone(),
            uscc: KASHGAR.into(),
            ground: "severe_dishonesty".into(),
            ban_ends_on: String::new(),
            ..Default::default()
        },
    )
    .await;
    let all = notices_become(
        &r,
        KASHGAR,
        &[
            NoticeKind::Published,
            NoticeKind::Deregistering,
            NoticeKind::Revoked,
        ],
    )
    .await;
    assert!(all[2].text.contains("severe_dishonesty"), "{}", all[2].text);
    // Shown as revoked, its facts and fees no longer presented as current (Art. 18); its
    // notices stay.
    let shown = agency(&mut r, KASHGAR).await;
    assert_eq!(shown.status, AgencyStatus::Revoked as i32);
    assert!(!shown.agency_name.is_empty() && !shown.filed_on.is_empty());
    assert!(
        shown.business_scope.is_empty()
            && shown.legal_representative.is_empty()
            && shown.fee_items.is_empty()
            && shown.documents.is_empty(),
        "{shown:?}"
    );
    let fees = r
        .get_fee_schedule(GetFeeScheduleRequest {
            uscc: KASHGAR.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(fees.items.is_empty(), "{fees:?}");
    let revoked = ListAgenciesRequest {
        statuses: vec![AgencyStatus::Revoked as i32],
        ..Default::default()
    };
    assert_eq!(search(&mut r, revoked).await, vec![KASHGAR.to_owned()]);
    let kinds = r
        .list_notices(ListNoticesRequest {
            kinds: vec![NoticeKind::Revoked as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notices;
    assert_eq!(kinds.len(), 1);

    // The later checkpoint extends the first one.
    let last = head_covering(&r, 3).await;
    let key = vkey(&t);
    let proof = r
        .get_consistency_proof(GetConsistencyProofRequest {
            from_size: first.size,
            to_size: last.size,
        })
        .await
        .unwrap()
        .into_inner();
    let older = creditmesh_disclosure::verify::checkpoint(&proof.from_checkpoint, &key).unwrap();
    let newer = creditmesh_disclosure::verify::checkpoint(&proof.to_checkpoint, &key).unwrap();
    creditmesh_disclosure::verify::consistency(&older, &newer, &proof.proof)
        .expect("the log only grew");
    let mut wrong = proof.proof.clone();
    if let Some(h) = wrong.first_mut() {
        h[0] ^= 1;
        assert!(creditmesh_disclosure::verify::consistency(&older, &newer, &wrong).is_err());
    }
    t.stop().await;
}

async fn bad_register_queries_name_the_field(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut r = register(&t).await;
    let field_of = |e: tonic::Status| {
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        super::lifecycle::fields(&e).join(" ")
    };
    let e = r
        .list_agencies(ListAgenciesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(field_of(e).contains("page_token"));
    let e = r
        .list_agencies(ListAgenciesRequest {
            page_size: 10_000,
            tenant: "99".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let msg = field_of(e);
    assert!(msg.contains("page_size") && msg.contains("tenant"), "{msg}");
    let e = r
        .list_notices(ListNoticesRequest {
            page_token: "-3".into(),
            kinds: vec![99],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let msg = field_of(e);
    assert!(
        msg.contains("page_token") && msg.contains("kinds[0]"),
        "{msg}"
    );
    let e = r
        .get_agency(GetAgencyRequest {
            uscc: "123".into(),
            changed_since: 0,
        })
        .await
        .unwrap_err();
    assert!(field_of(e).contains("uscc"));
    // An empty register has no checkpoint yet: a precondition, not an internal error.
    let e = r
        .get_register_head(GetRegisterHeadRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = r
        .get_notice_proof(GetNoticeProofRequest {
            sequence: 0,
            tree_size: 5,
        })
        .await
        .unwrap_err();
    assert!(field_of(e).contains("tree_size"));
    t.stop().await;
}

async fn approved_kashgar(t: &TestMesh, r: &Register) -> Notice {
    approve_kashgar(t, r).await;
    notices(&mut r.clone(), KASHGAR).await.remove(0)
}

async fn corrections_are_new_leaves_from_the_holding_authority(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let r = register(&t).await;
    let published = approved_kashgar(&t, &r).await;
    let correction = |request_id: &str, corrects: i64| PublishCorrectionRequest {
        request_id: request_id.into(),
        uscc: KASHGAR.into(),
        corrects_sequence: corrects,
        text: "更正：法定代表人身份证号 653101198501011234 录入有误".into(),
    };
    let client = |name: &'static str| {
        let t = &t;
        async move { DisclosureServiceClient::new(t.node(name).await) }
    };

    // Another prefecture may not correct Kashgar's agency, nor the agency itself.
    let urumqi = client("regulator-650100")
        .await
        .publish_correction(correction("c-1", published.sequence))
        .await
        .unwrap_err();
    assert_eq!(urumqi.code(), Code::PermissionDenied, "{urumqi:?}");
    let agency = client("agency-kashgar")
        .await
        .publish_correction(correction("c-2", published.sequence))
        .await
        .unwrap_err();
    assert_eq!(agency.code(), Code::PermissionDenied, "{agency:?}");
    let mut kashgar = client("regulator-653100").await;
    let unknown = kashgar
        .publish_correction(correction("c-3", 99))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
    assert_eq!(notices(&mut r.clone(), KASHGAR).await.len(), 1);

    // The holding authority's correction is a new leaf pointing at the one it corrects,
    // desensitised; a retry answers the same notice.
    let first = kashgar
        .publish_correction(correction("c-4", published.sequence))
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();
    assert_eq!(first.kind, NoticeKind::Correction as i32);
    assert_eq!(first.corrects_sequence, published.sequence);
    assert!(!first.text.contains("653101198501011234"), "{}", first.text);
    let again = kashgar
        .publish_correction(correction("c-4", published.sequence))
        .await
        .unwrap()
        .into_inner()
        .notice
        .unwrap();
    assert_eq!(again.sequence, first.sequence);
    // The region corrects any agency's notices.
    client("regulator-650000")
        .await
        .publish_correction(correction("c-5", first.sequence))
        .await
        .unwrap();
    notices_become(
        &r,
        KASHGAR,
        &[
            NoticeKind::Published,
            NoticeKind::Correction,
            NoticeKind::Correction,
        ],
    )
    .await;
    t.stop().await;
}

/// A register notice as filing would send it, for an agency of its own.
fn register_changed(i: usize) -> Event {
    let uscc = format!("TEST{i:014}");
    let payload = RegisterChanged {
        filing_id: uuid::Uuid::now_v7().to_string(),
        tenant: "653100".into(),
        uscc: uscc.clone(),
        notice: "published".into(),
        status: "active".into(),
        facts: Some(PublicFacts {
            agency_name: format!("并发机构 {i}"),
            legal_representative_name: "王小明".into(),
            ..Default::default()
        }),
        filed_on: "2026-11-02".into(),
        ..Default::default()
    };
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: RegisterChanged::TYPE.into(),
        source: "filing".into(),
        tenant: "653100".into(),
        principal: "spiffe://creditmesh.xinjiang/regulator/653100".into(),
        subject: uscc,
        occurred_at: None,
        payload: prost::Message::encode_to_vec(&payload),
    }
}

/// Appends arriving at once at two replicas of disclosure leave one log: every notice is in
/// the final tree once, and every checkpoint signed on the way is consistent with the last.
async fn concurrent_appends_leave_one_consistent_log(engine: Engine) {
    const N: usize = 120;
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    // Two replicas of disclosure on the one database, each taking half of the appends.
    let second = t
        .replica("disclosure", Arc::new(TestClock::now()), |_| {})
        .await;
    let sinks = [
        EventSinkServiceClient::new(
            mtls(t.service_addr("disclosure"), &t.pki_dir, "service-filing").await,
        ),
        EventSinkServiceClient::new(mtls(second.addr(), &t.pki_dir, "service-filing").await),
    ];
    let r = register(&t).await;
    // In two waves, so that a checkpoint is signed between them whatever the pace.
    for wave in [0..N / 2, N / 2..N] {
        let end = wave.end;
        let delivered: Vec<_> = futures::stream::iter(wave)
            .map(|i| {
                let mut sink = sinks[i % 2].clone();
                async move {
                    sink.deliver(DeliverRequest {
                        event: Some(register_changed(i)),
                    })
                    .await
                }
            })
            .buffer_unordered(24)
            .collect()
            .await;
        for d in delivered {
            d.expect("every append commits");
        }
        head_covering(&r, end as i64).await;
    }
    let head = head_covering(&r, N as i64).await;
    assert_eq!(head.size, N as i64);
    let key = vkey(&t);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = r
            .clone()
            .list_notices(ListNoticesRequest {
                page_size: 50,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.notices);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let sequences: Vec<i64> = seen.iter().map(|n| n.sequence).collect();
    assert_eq!(
        sequences,
        (0..N as i64).collect::<Vec<_>>(),
        "one leaf each, no gaps"
    );
    let checked: Vec<Result<(), String>> = futures::stream::iter(seen)
        .map(|n| {
            let (mut r, key) = (r.clone(), key.clone());
            async move {
                let p = r
                    .get_notice_proof(GetNoticeProofRequest {
                        sequence: n.sequence,
                        tree_size: N as i64,
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let c = creditmesh_disclosure::verify::checkpoint(&p.checkpoint, &key)?;
                creditmesh_disclosure::verify::inclusion(
                    &c,
                    n.sequence as u64,
                    &n.salt,
                    &n.content,
                    &p.proof,
                )
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for c in checked {
        c.expect("every notice is in the final tree");
    }
    // Every checkpoint either replica signed is a prefix of the last: one log, never forked.
    let sizes = creditmesh_tests::column_i64(
        &t.admin_db_url("disclosure"),
        "SELECT size FROM disclosure_checkpoint WHERE size > 0 ORDER BY size",
    )
    .await;
    assert!(
        sizes.len() > 1,
        "several checkpoints were signed: {sizes:?}"
    );
    for size in sizes {
        extends(&r, &key, size, N as i64)
            .await
            .unwrap_or_else(|e| panic!("checkpoint {size}: {e}"));
    }
    drop(second);
    t.stop().await;
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `GetNoticeProof` answer as a stock client prints it (protobuf JSON).
fn proof_json(p: &GetNoticeProofResponse, content: &[u8]) -> String {
    let n = p.notice.as_ref().unwrap();
    serde_json::json!({
        "notice": {
            "sequence": n.sequence.to_string(),
            "kind": "NOTICE_KIND_PUBLISHED",
            "uscc": n.uscc,
            "content": b64(content),
            "salt": b64(&n.salt),
            "leafHash": n.leaf_hash,
        },
        "treeSize": p.tree_size.to_string(),
        "proof": p.proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        "checkpoint": p.checkpoint,
    })
    .to_string()
}

fn consistency_json(from: &str, to: &str, proof: &[Vec<u8>]) -> String {
    serde_json::json!({
        "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        "fromCheckpoint": from,
        "toCheckpoint": to,
    })
    .to_string()
}

pub async fn verify_cli(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("verify")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn creditmesh_verify_says_valid_or_what_fails(engine: Engine) {
    use tokio::io::AsyncBufReadExt;
    let Some(t) = mesh(engine).await else { return };
    let mut r = register(&t).await;
    let published = approved_kashgar(&t, &r).await;
    let first = head_covering(&r, 1).await;
    let mut kashgar = DisclosureServiceClient::new(t.node("regulator-653100").await);
    let correct = |request_id: &str| PublishCorrectionRequest {
        request_id: request_id.into(),
        uscc: KASHGAR.into(),
        corrects_sequence: published.sequence,
        text: "更正".into(),
    };
    kashgar.publish_correction(correct("v-1")).await.unwrap();
    let second = head_covering(&r, first.size + 1).await;

    let dir = tempfile::tempdir().unwrap();
    let key = t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let p = r
        .get_notice_proof(GetNoticeProofRequest {
            sequence: published.sequence,
            tree_size: second.size,
        })
        .await
        .unwrap()
        .into_inner();
    let content = p.notice.as_ref().unwrap().content.clone();
    let good = write("proof.json", &proof_json(&p, &content));
    let c = r
        .get_consistency_proof(GetConsistencyProofRequest {
            from_size: first.size,
            to_size: second.size,
        })
        .await
        .unwrap()
        .into_inner();
    let grown = write(
        "consistency.json",
        &consistency_json(&c.from_checkpoint, &c.to_checkpoint, &c.proof),
    );
    let head = write("head.txt", &second.checkpoint);
    let (ok, out, err) = verify_cli(&[
        "--key".as_ref(),
        key.as_os_str(),
        good.as_os_str(),
        grown.as_os_str(),
        head.as_os_str(),
    ])
    .await;
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("valid: ").count(), 3, "{out}");
    assert!(out.contains("is in the tree"), "{out}");
    assert!(out.contains("extends the tree"), "{out}");

    // One changed byte of the notice, or a checkpoint of a forked log signed with the
    // register's own key, is named.
    let mut tampered = content.clone();
    tampered[20] ^= 1;
    let bad = write("tampered.json", &proof_json(&p, &tampered));
    let (ok, _, err) = verify_cli(&["--key".as_ref(), key.as_os_str(), bad.as_os_str()]).await;
    assert!(!ok);
    assert!(
        err.contains("invalid:") && err.contains("tampered.json"),
        "{err}"
    );
    assert!(err.contains("leaf hash"), "{err}");
    let log_key = creditmesh_disclosure::checkpoint::LogKey::load_or_create(
        &t.pki_dir,
        creditmesh_tests::TRUST_DOMAIN,
    )
    .unwrap();
    let forked_note = log_key
        .sign(second.size as u64, tlog_tiles::Hash([7; 32]))
        .unwrap();
    let forked = write(
        "fork.json",
        &consistency_json(&c.from_checkpoint, &forked_note, &c.proof),
    );
    let (ok, _, err) = verify_cli(&["--key".as_ref(), key.as_os_str(), forked.as_os_str()]).await;
    assert!(!ok);
    assert!(err.contains("is not a prefix"), "{err}");

    // Following the register reports each checkpoint that extends the last one.
    let public = format!("https://{}", t.mesh.public_addr);
    let ca = t.pki_dir.join("ca.pem");
    let mut follower = tokio::process::Command::new(BIN)
        .arg("verify")
        .args(["--key".as_ref(), key.as_os_str()])
        .args(["--follow", public.as_str(), "--interval-ms", "200", "--ca"])
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(follower.stdout.take().unwrap()).lines();
    let first_line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the follower reports the checkpoint")
        .unwrap()
        .unwrap();
    assert!(first_line.starts_with("checkpoint: "), "{first_line}");
    kashgar.publish_correction(correct("v-2")).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the follower checks the next checkpoint")
        .unwrap()
        .unwrap();
    assert!(next.starts_with("consistent: "), "{next}");
    follower.kill().await.ok();
    t.stop().await;
}

async fn deliver_all(t: &TestMesh, n: usize) {
    deliver(t, 0..n).await
}

async fn deliver(t: &TestMesh, range: std::ops::Range<usize>) {
    let mut sink = EventSinkServiceClient::new(
        mtls(t.service_addr("disclosure"), &t.pki_dir, "service-filing").await,
    );
    for i in range {
        sink.deliver(DeliverRequest {
            event: Some(register_changed(i)),
        })
        .await
        .unwrap();
    }
}

/// Whether each notice, as now served, proves into the checkpoint of `size`.
async fn proves(r: &Register, key: &str, size: i64) -> Vec<bool> {
    let mut out = Vec::new();
    for seq in 0..size {
        let p = r
            .clone()
            .get_notice_proof(GetNoticeProofRequest {
                sequence: seq,
                tree_size: size,
            })
            .await
            .unwrap()
            .into_inner();
        let c = creditmesh_disclosure::verify::checkpoint(&p.checkpoint, key).unwrap();
        let n = p.notice.unwrap();
        out.push(
            creditmesh_disclosure::verify::inclusion(&c, seq as u64, &n.salt, &n.content, &p.proof)
                .is_ok(),
        );
    }
    out
}

async fn tampering_with_stored_notices_is_detected(engine: Engine) {
    use creditmesh_storage::sqlx::{self, Connection, Row};
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    deliver_all(&t, 6).await;
    let r = register(&t).await;
    head_covering(&r, 6).await;
    let key = vkey(&t);
    assert_eq!(proves(&r, &key, 6).await, vec![true; 6]);

    // One changed byte in notice 1; notices 2 and 3 swapped in storage.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&t.admin_db_url("disclosure"))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE disclosure_notice SET content = replace(content, '并发机构 1', '并发机构 7') \
         WHERE seq = 1",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let rows = sqlx::query("SELECT seq, content, salt FROM disclosure_notice WHERE seq IN (2, 3)")
        .fetch_all(&mut db)
        .await
        .unwrap();
    for row in &rows {
        let seq: i64 = row.try_get(0).unwrap();
        let (content, salt): (String, String) = (row.try_get(1).unwrap(), row.try_get(2).unwrap());
        sqlx::query("UPDATE disclosure_notice SET content = $1, salt = $2 WHERE seq = $3")
            .bind(content)
            .bind(salt)
            .bind(5 - seq)
            .execute(&mut db)
            .await
            .unwrap();
    }
    db.close().await.ok();
    assert_eq!(
        proves(&r, &key, 6).await,
        vec![true, false, false, false, true, true],
        "the changed and the swapped notices no longer prove; the others still do"
    );
    t.stop().await;
}

async fn an_approved_change_updates_the_record_and_says_what_changed(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    let mut filer = FilingServiceClient::new(t.node("agency-kashgar").await);
    let material = upload(&mut filer, DocumentKind::ChangeMaterial, pdf("new fees"))
        .await
        .unwrap();
    let today = creditmesh_domain::calendar::cst_date(creditmesh_domain::Clock::now_micros(
        &creditmesh_domain::SystemClock,
    ))
    .unwrap();
    let change = filer
        .submit_change(SubmitChangeRequest {
            request_id: "fees-2027".into(),
            filing_id: filing_id.clone(),
            changed_on: creditmesh_domain::calendar::format_date(today),
            changed_facts: Some(ApplicationForm {
                registered_address: "新疆喀什地区喀什市解放路2号".into(),
                fee_items: vec![FiledFee {
                    service_item: "企业信用评价报告".into(),
                    fee: "4500".into(),
                    unit: "份".into(),
                    basis: String::new(),
                }],
                ..Default::default()
            }),
            supporting_documents: vec![DocumentRef { sha256: material }],
            description: "new fees and address".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Nothing shows before the change is approved.
    let mut reader = r.clone();
    assert_eq!(
        reader
            .get_fee_schedule(GetFeeScheduleRequest {
                uscc: KASHGAR.into()
            })
            .await
            .unwrap()
            .into_inner()
            .items
            .len(),
        2
    );
    review_says(
        &t,
        "653100",
        ChangeDecided {
            change_id: change.change_id,
            filing_id,
            approved: true,
            ..Default::default()
        },
    )
    .await;
    let all = notices_become(&r, KASHGAR, &[NoticeKind::Published, NoticeKind::Changed]).await;
    // What changed, named as people read it.
    assert!(
        all[1].text.contains("变更事项：注册地址、收费项目及标准"),
        "{}",
        all[1].text
    );
    assert!(
        !all[1].text.contains("registered_address"),
        "{}",
        all[1].text
    );
    let fees = reader
        .get_fee_schedule(GetFeeScheduleRequest {
            uscc: KASHGAR.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fees.items.len(), 1);
    assert_eq!(fees.items[0].fee, "4500");
    assert_eq!(
        agency(&mut reader, KASHGAR).await.registered_address,
        "新疆喀什地区****"
    );
    t.stop().await;
}

async fn an_erased_notice_keeps_its_leaf_and_every_proof(engine: Engine) {
    use creditmesh_storage::sqlx::{self, Connection, Row};
    let Some(t) = mesh(engine).await else { return };
    let r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    review_says(
        &t,
        "653100",
        FilingRevoked {
            filing_id,
            uscc: KASHGAR.into(),
            ground: "misleading_publicity".into(),
            ban_ends_on: String::new(),
            ..Default::default()
        },
    )
    .await;
    let notices = notices_become(&r, KASHGAR, &[NoticeKind::Published, NoticeKind::Revoked]).await;
    let revoked = notices[1].clone();
    let before = head_covering(&r, 2).await;
    let key = vkey(&t);
    let erase = |request_id: &str| EraseNoticeRequest {
        request_id: request_id.into(),
        sequence: revoked.sequence,
        reason: "信用修复决定 喀信修〔2026〕12号".into(),
        ..Default::default()
    };

    // Another prefecture may not erase it; the holding authority may, once.
    let urumqi = DisclosureServiceClient::new(t.node("regulator-650100").await)
        .erase_notice(erase("e-1"))
        .await
        .unwrap_err();
    assert_eq!(urumqi.code(), Code::PermissionDenied, "{urumqi:?}");
    let mut kashgar = DisclosureServiceClient::new(t.node("regulator-653100").await);
    let answer = kashgar
        .erase_notice(erase("e-2"))
        .await
        .unwrap()
        .into_inner();
    let erased = answer.erased.unwrap();
    assert!(erased.erased && erased.content.is_empty() && erased.salt.is_empty());
    assert!(erased.text.is_empty());
    assert_eq!(erased.leaf_hash, revoked.leaf_hash);
    assert!(
        erased.erased_by.ends_with("/regulator/653100"),
        "{}",
        erased.erased_by
    );
    assert!(
        erased.erasure_reason.contains("信用修复"),
        "{}",
        erased.erasure_reason
    );
    let erasure = answer.notice.unwrap();
    assert_eq!(erasure.kind, NoticeKind::Erasure as i32);
    assert_eq!(erasure.corrects_sequence, revoked.sequence);
    let again = kashgar.erase_notice(erase("e-3")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");

    // Gone from storage, not only from the answers.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&t.admin_db_url("disclosure"))
        .await
        .unwrap();
    let row = sqlx::query("SELECT content, salt, text FROM disclosure_notice WHERE seq = $1")
        .bind(revoked.sequence)
        .fetch_one(&mut db)
        .await
        .unwrap();
    for i in 0..3 {
        assert!(row.try_get::<Option<String>, _>(i).unwrap().is_none());
    }
    db.close().await.ok();

    // Every proof still holds: the erased leaf by its hash, the tree grew consistently.
    let after = head_covering(&r, before.size + 1).await;
    let p = r
        .clone()
        .get_notice_proof(GetNoticeProofRequest {
            sequence: revoked.sequence,
            tree_size: after.size,
        })
        .await
        .unwrap()
        .into_inner();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("erased.json");
    std::fs::write(&file, proof_json(&p, &[])).unwrap();
    let key_file = t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE);
    let (ok, out, err) =
        verify_cli(&["--key".as_ref(), key_file.as_os_str(), file.as_os_str()]).await;
    assert!(ok && out.contains("erased by"), "{out}{err}");
    let c = creditmesh_disclosure::verify::checkpoint(&p.checkpoint, &key).unwrap();
    let n = p.notice.unwrap();
    assert!(n.erased);
    let leaf = creditmesh_disclosure::verify::parse_leaf_hash(&n.leaf_hash).unwrap();
    creditmesh_disclosure::verify::leaf_inclusion(&c, n.sequence as u64, leaf, &p.proof)
        .expect("the erased notice's leaf still proves");
    let mut provable = proves(&r, &key, after.size).await;
    provable.remove(revoked.sequence as usize);
    assert!(provable.iter().all(|ok| *ok), "{provable:?}");
    extends(&r, &key, before.size, after.size)
        .await
        .expect("the erasure rewrote nothing");
    t.stop().await;
}

async fn a_witness_cosigns_what_extends_and_refuses_a_fork(engine: Engine) {
    use creditmesh_disclosure::cosign::{CosignerKey, CosignerVerifier, with_signatures};
    use creditmesh_disclosure::witness::{Refusal, add_checkpoint, forks};
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let r = register(&t).await;
    let checkpoint_at = |size: i64| {
        let r = r.clone();
        async move { head_covering(&r, size).await }
    };
    let consistency = |from: i64, to: i64| {
        let mut r = r.clone();
        async move {
            r.get_consistency_proof(GetConsistencyProofRequest {
                from_size: from,
                to_size: to,
            })
            .await
            .unwrap()
            .into_inner()
            .proof
        }
    };
    deliver(&t, 0..3).await;
    let a = checkpoint_at(3).await;
    deliver(&t, 3..6).await;
    let b = checkpoint_at(6).await;
    let log_vkey = vkey(&t);
    // The witness keeps its state in its node's database (here the same disclosure database).
    let db = t
        .mesh
        .services
        .iter()
        .find(|s| s.name == "disclosure")
        .unwrap()
        .store
        .db
        .clone();
    let witness = CosignerKey::new("witness.kashgar.example/w1", [5; 32]).unwrap();
    let verifier = CosignerVerifier::parse(&witness.verifier_key()).unwrap();
    let now = 1_800_000_000_000_000;
    let add = |old: i64, proof: Vec<Vec<u8>>, note: String| {
        let (db, witness, log_vkey) = (db.clone(), &witness, log_vkey.clone());
        async move { add_checkpoint(&db, witness, &log_vkey, old as u64, &proof, &note, now).await }
    };

    let line = add(0, vec![], a.checkpoint.clone()).await.unwrap();
    assert_eq!(
        verifier
            .verify(&with_signatures(&a.checkpoint, &[line]))
            .unwrap(),
        1_800_000_000
    );
    // From the wrong size: told the size it last cosigned.
    match add(0, vec![], b.checkpoint.clone()).await {
        Err(Refusal::Conflict { size }) => assert_eq!(size as i64, a.size),
        other => panic!("{other:?}"),
    }
    let proof_ab = consistency(a.size, b.size).await;
    add(a.size, proof_ab.clone(), b.checkpoint.clone())
        .await
        .expect("a consistent extension is cosigned");
    add(b.size, vec![], b.checkpoint.clone())
        .await
        .expect("the same checkpoint is cosigned again");

    // A fork signed with the log's own key: same size, other root; larger, not extending.
    let log_key = creditmesh_disclosure::checkpoint::LogKey::load_or_create(
        &t.pki_dir,
        creditmesh_tests::TRUST_DOMAIN,
    )
    .unwrap();
    let same_size = log_key
        .sign(b.size as u64, tlog_tiles::Hash([7; 32]))
        .unwrap();
    assert!(matches!(
        add(b.size, vec![], same_size).await,
        Err(Refusal::Fork(_))
    ));
    let larger = log_key
        .sign(b.size as u64 + 2, tlog_tiles::Hash([8; 32]))
        .unwrap();
    assert!(matches!(
        add(b.size, proof_ab.clone(), larger).await,
        Err(Refusal::Fork(_))
    ));
    let origin = creditmesh_disclosure::checkpoint::LogKey::origin(creditmesh_tests::TRUST_DOMAIN);
    assert_eq!(
        forks(&db, &origin).await.unwrap().len(),
        2,
        "both forks are recorded"
    );
    // A checkpoint signed by another key is not the log's.
    let stranger = tempfile::tempdir().unwrap();
    let other_log =
        creditmesh_disclosure::checkpoint::LogKey::load_or_create(stranger.path(), "other")
            .unwrap();
    let foreign = other_log
        .sign(b.size as u64, tlog_tiles::Hash([1; 32]))
        .unwrap();
    assert!(matches!(
        add(b.size, vec![], foreign).await,
        Err(Refusal::Invalid(_))
    ));

    // Submissions racing from the same size: exactly one moves the witness.
    deliver(&t, 6..9).await;
    let c = checkpoint_at(9).await;
    let proof_bc = consistency(b.size, c.size).await;
    let raced = futures::future::join_all(
        (0..8).map(|_| add(b.size, proof_bc.clone(), c.checkpoint.clone())),
    )
    .await;
    let cosigned = raced.iter().filter(|r| r.is_ok()).count();
    assert_eq!(cosigned, 1, "{raced:?}");
    for r in raced.iter().filter_map(|r| r.as_ref().err()) {
        match r {
            Refusal::Conflict { size } => assert_eq!(*size as i64, c.size),
            other => panic!("{other:?}"),
        }
    }
    t.stop().await;
}

async fn the_register_serves_checkpoints_its_witness_cosigned(engine: Engine) {
    use creditmesh_disclosure::RegisterConfig;
    use creditmesh_disclosure::WitnessPeer;
    use creditmesh_disclosure::cosign::CosignerKey;
    use creditmesh_proto::disclosure::v1::witness_service_client::WitnessServiceClient;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let witness_name = "witness.kashgar.example/w1";
    let seed = [6u8; 32];
    let witness_vkey = CosignerKey::new(witness_name, seed).unwrap().verifier_key();
    let clock = Arc::new(creditmesh_tests::TestClock::now());
    let peer = WitnessPeer {
        url: format!("https://127.0.0.1:{port}"),
        server_name: "disclosure".into(),
        verifier_key: witness_vkey.clone(),
    };
    let Some(t) = TestMesh::start_configured(engine, clock.clone(), |rt| {
        rt.services.register = Arc::new(RegisterConfig {
            witnesses: vec![peer],
            cosignatures_required: 1,
            ..Default::default()
        });
    })
    .await
    else {
        return;
    };
    let r = register(&t).await;
    // No checkpoint is served before the witness cosigned one.
    deliver(&t, 0..2).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let early = r
        .clone()
        .get_register_head(GetRegisterHeadRequest {})
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");

    // The Kashgar node witnesses the log (here a second instance on the same database).
    std::fs::write(
        t.pki_dir
            .join(creditmesh_disclosure::witnessing::WITNESS_KEY_FILE),
        hex::encode(seed),
    )
    .unwrap();
    let log_vkey = vkey(&t);
    let _witness = t
        .replica_on(
            "disclosure",
            clock,
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            |rt| {
                rt.services.register = Arc::new(RegisterConfig {
                    witness_of: log_vkey.trim().to_owned(),
                    witness_name: witness_name.into(),
                    ..Default::default()
                });
            },
        )
        .await;
    let head = head_covering(&r, 2).await;
    assert_eq!(head.cosignatures, 1);
    deliver(&t, 2..4).await;
    let grown = head_covering(&r, 4).await;
    assert_eq!(grown.cosignatures, 1);

    // creditmesh verify demands the quorum it is given.
    let dir = tempfile::tempdir().unwrap();
    let note = dir.path().join("head.txt");
    std::fs::write(&note, &grown.checkpoint).unwrap();
    let key = t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE);
    let witness_key = t.pki_dir.join("witness.vkey");
    assert_eq!(
        std::fs::read_to_string(&witness_key).unwrap().trim(),
        witness_vkey
    );
    let (ok, out, err) = verify_cli(&[
        "--key".as_ref(),
        key.as_os_str(),
        "--witness-key".as_ref(),
        witness_key.as_os_str(),
        note.as_os_str(),
    ])
    .await;
    assert!(ok, "{out}{err}");
    let stranger = dir.path().join("stranger.vkey");
    std::fs::write(
        &stranger,
        CosignerKey::new("witness.other.example/w9", [9; 32])
            .unwrap()
            .verifier_key(),
    )
    .unwrap();
    let (ok, _, err) = verify_cli(&[
        "--key".as_ref(),
        key.as_os_str(),
        "--witness-key".as_ref(),
        stranger.as_os_str(),
        note.as_os_str(),
    ])
    .await;
    assert!(
        !ok && err.contains("0 of the 1 witness cosignatures"),
        "{err}"
    );

    // Over the wire, the witness takes checkpoints from the register's service alone and
    // refuses a fork signed with the log's own key.
    let witness_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let log_key = creditmesh_disclosure::checkpoint::LogKey::load_or_create(
        &t.pki_dir,
        creditmesh_tests::TRUST_DOMAIN,
    )
    .unwrap();
    let fork = log_key
        .sign(grown.size as u64, tlog_tiles::Hash([7; 32]))
        .unwrap();
    let submit = |cert: &'static str| {
        let (t, fork) = (&t, fork.clone());
        async move {
            WitnessServiceClient::new(mtls(witness_addr, &t.pki_dir, cert).await)
                .add_checkpoint(AddCheckpointRequest {
                    old_size: grown.size,
                    proof: vec![],
                    checkpoint: fork,
                })
                .await
        }
    };
    let other_service = submit("service-filing").await.unwrap_err();
    assert_eq!(
        other_service.code(),
        Code::PermissionDenied,
        "{other_service:?}"
    );
    let refused = submit("service-disclosure").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("fork"), "{refused:?}");
    t.stop().await;
}

/// `GET path` over HTTP/1.1 and TLS on the public listener: status, headers, body.
async fn http_get(t: &TestMesh, path: &str) -> (u16, String, Vec<u8>) {
    http_get_with(t, path, "").await
}

/// [`http_get`] with `extra` request header lines (each ending in CRLF).
async fn http_get_with(t: &TestMesh, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = creditmesh_tests::public_tls_config(&t.pki_dir, b"http/1.1");
    let tcp = tokio::net::TcpStream::connect(t.mesh.public_addr)
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.ok();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), raw[split + 4..].to_vec())
}

/// RFC 6962's Merkle tree hash, written here apart from the library the register uses.
fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    use ring::digest::{SHA256, digest};
    match leaves.len() {
        0 => digest(&SHA256, b"").as_ref().try_into().unwrap(),
        1 => leaves[0],
        n => {
            let k = n.next_power_of_two() / 2;
            let mut node = vec![1u8];
            node.extend_from_slice(&merkle_root(&leaves[..k]));
            node.extend_from_slice(&merkle_root(&leaves[k..]));
            digest(&SHA256, &node).as_ref().try_into().unwrap()
        }
    }
}

async fn the_log_is_served_as_tiles_over_http(engine: Engine) {
    use ring::digest::{SHA256, digest};
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let mut sink = EventSinkServiceClient::new(
        mtls(t.service_addr("disclosure"), &t.pki_dir, "service-filing").await,
    );
    for batch in (0..300).collect::<Vec<_>>().chunks(60) {
        sink.deliver_batch(creditmesh_proto::events::v1::DeliverBatchRequest {
            events: batch.iter().map(|i| register_changed(*i)).collect(),
        })
        .await
        .unwrap();
    }
    let r = register(&t).await;
    let head = head_covering(&r, 300).await;
    assert_eq!(head.size, 300);

    let (status, headers, note) = http_get(&t, "/register/checkpoint").await;
    assert_eq!(status, 200, "{headers}");
    assert_eq!(String::from_utf8(note).unwrap(), head.checkpoint);
    let (status, headers, full) = http_get(&t, "/register/tile/0/000").await;
    assert_eq!((status, full.len()), (200, 256 * 32), "{headers}");
    assert!(headers.contains("immutable"), "{headers}");
    let (status, headers, partial) = http_get(&t, "/register/tile/0/001.p/44").await;
    assert_eq!((status, partial.len()), (200, 44 * 32), "{headers}");
    assert!(!headers.contains("immutable"), "{headers}");
    let (status, _, level1) = http_get(&t, "/register/tile/1/000.p/1").await;
    assert_eq!((status, level1.len()), (200, 32));

    // The entries hash to the tile's leaves, and the leaves to the checkpoint's root.
    let (status, headers, bundle) = http_get(&t, "/register/tile/entries/000").await;
    assert_eq!(status, 200);
    // An entry bundle changes when a decision erases a notice's content: it is revalidated by
    // its digest, never cached for good.
    assert!(
        !headers.contains("immutable") && headers.contains("cache-control: no-cache"),
        "{headers}"
    );
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an entity tag")
        .trim()
        .to_owned();
    let (status, _, body) = http_get_with(
        &t,
        "/register/tile/entries/000",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!((status, body.len()), (304, 0));
    let mut at = 0;
    let mut leaf = 0;
    while at < bundle.len() {
        let len = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        let mut data = vec![0u8];
        data.extend_from_slice(&bundle[at + 2..at + 2 + len]);
        assert_eq!(
            digest(&SHA256, &data).as_ref(),
            &full[leaf * 32..(leaf + 1) * 32],
            "entry {leaf}"
        );
        at += 2 + len;
        leaf += 1;
    }
    assert_eq!(leaf, 256);
    let leaves: Vec<[u8; 32]> = full
        .chunks(32)
        .chain(partial.chunks(32))
        .map(|c| c.try_into().unwrap())
        .collect();
    let checkpoint =
        creditmesh_disclosure::verify::checkpoint(&head.checkpoint, &vkey(&t)).unwrap();
    assert_eq!(merkle_root(&leaves), checkpoint.hash().0);
    assert_eq!(level1, merkle_root(&leaves[..256]).to_vec());

    for missing in [
        "/register/tile/0/002",
        "/register/tile/0/001",
        "/register/tile/0/1",
        "/register/elsewhere",
    ] {
        assert_eq!(http_get(&t, missing).await.0, 404, "{missing}");
    }
    t.stop().await;
}

async fn a_completed_deregistration_is_a_notice(engine: Engine) {
    use creditmesh_proto::events::v1::{DeregistrationCompleted, DeregistrationDecided, Disposal};
    let Some(t) = mesh(engine).await else { return };
    let mut r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    let mut agency_client = FilingServiceClient::new(t.node("agency-kashgar").await);
    request_deregistration(&mut agency_client, &filing_id).await;
    notices_become(
        &r,
        KASHGAR,
        &[NoticeKind::Published, NoticeKind::Deregistering],
    )
    .await;
    review_says(
        &t,
        "653100",
        DeregistrationDecided {
            filing_id: filing_id.clone(),
            uscc: KASHGAR.into(),
            approved: true,
            ..Default::default()
        },
    )
    .await;
    review_says(
        &t,
        "653100",
        DeregistrationCompleted {
            filing_id,
            uscc: KASHGAR.into(),
            disposal: Some(Disposal {
                disposed_on: "2026-11-20".into(),
                method: "secure erasure".into(),
                supervised_by: "Kashgar DRC".into(),
            }),
        },
    )
    .await;
    let all = notices_become(
        &r,
        KASHGAR,
        &[
            NoticeKind::Published,
            NoticeKind::Deregistering,
            NoticeKind::Deregistered,
        ],
    )
    .await;
    assert!(all[2].text.contains("注销公示"), "{}", all[2].text);
    assert_eq!(
        agency(&mut r, KASHGAR).await.status,
        AgencyStatus::Deregistered as i32
    );
    t.stop().await;
}

/// The register backed up while corrections are published (`pg_dump`, a consistent snapshot)
/// and restored into a new database (`pg_restore`), as `docs/operations.md` says: a disclosure
/// service started on the restored database serves a log that extends the checkpoint signed
/// before the backup, holds as many notices as its head counts, and is a prefix of the log
/// the original went on to sign (the same leaves). PostgreSQL only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_a_register_consistent_with_its_checkpoints() {
    let Some(t) = mesh(Engine::Postgres).await else {
        return;
    };
    let r = register(&t).await;
    let published = approved_kashgar(&t, &r).await;
    let before = head_covering(&r, 1).await;
    let key = std::fs::read_to_string(t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE))
        .unwrap();

    // Corrections published all the while the backup is taken.
    let kashgar = DisclosureServiceClient::new(t.node("regulator-653100").await);
    let stop = tokio_util::sync::CancellationToken::new();
    let load = tokio::spawn({
        let stop = stop.clone();
        let mut kashgar = kashgar.clone();
        async move {
            let mut n: i64 = 0;
            while !stop.is_cancelled() {
                n += 1;
                kashgar
                    .publish_correction(PublishCorrectionRequest {
                        request_id: format!("backup-{n}"),
                        uscc: KASHGAR.into(),
                        corrects_sequence: published.sequence,
                        text: format!("更正 {n}"),
                    })
                    .await
                    .unwrap();
            }
            n
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let admin = t.admin_db_url("disclosure");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("register.dump");
    let out = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(&dump)
        .arg(&admin)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let published_during = load.await.unwrap();
    assert!(published_during > 5, "corrections ran: {published_during}");
    let after = head_covering(&r, before.size + published_during).await;

    // Restored into a new database owned by the services' role.
    let restored = creditmesh_tests::fresh_database(Engine::Postgres, dir.path())
        .await
        .unwrap();
    let restored_admin = creditmesh_tests::admin_url(&restored.url).unwrap();
    let out = tokio::process::Command::new("pg_restore")
        .args([
            "--no-owner",
            "--role",
            creditmesh_tests::APP_ROLE,
            "--dbname",
        ])
        .arg(&restored_admin)
        .arg(&dump)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A disclosure service on the restored database, with the node's keys.
    let runtime = creditmesh_tests::runtime(&t.pki_dir, dir.path());
    let defs = creditmesh::mesh::all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "disclosure").unwrap();
    let node_stop = tokio_util::sync::CancellationToken::new();
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let svc = creditmesh::mesh::start_service(def, &restored, &runtime, any, node_stop.clone())
        .await
        .unwrap();
    let backend = creditmesh_gateway::Backend {
        grpc_name: "creditmesh.disclosure.v1.DisclosureService".into(),
        urls: vec![format!("https://{}", svc.addr)],
        server_name: "disclosure".into(),
        tenant: None,
    };
    let (_, public) = super::balancing::gateway_for(&t.pki_dir, backend, &node_stop).await;
    let back = DisclosureServiceClient::new(creditmesh_tests::server_tls(public, &t.pki_dir).await);
    // The restored node serves the last checkpoint in the dump until it signs one covering
    // every notice the dump holds.
    let dumped =
        creditmesh_tests::scalar_i64(&restored.url, "SELECT COUNT(*) FROM disclosure_notice").await;
    assert!(
        dumped > before.size,
        "{dumped} notices, {} before",
        before.size
    );
    let head = head_covering(&back, dumped).await;
    assert!(head.size <= after.size, "{} of {}", head.size, after.size);
    extends(&back, &key, before.size, head.size)
        .await
        .expect("the restored log extends the checkpoint signed before the backup");
    // As the runbook checks it: `creditmesh verify --follow --since` the checkpoint held from
    // before the backup finds the restored register consistent with it.
    let held = dir.path().join("held-checkpoint.txt");
    std::fs::write(&held, &before.checkpoint).unwrap();
    let key_file = t.pki_dir.join(creditmesh_disclosure::checkpoint::VKEY_FILE);
    let mut follower = tokio::process::Command::new(BIN)
        .arg("verify")
        .args(["--key".as_ref(), key_file.as_os_str()])
        .args([
            "--follow",
            &format!("https://{public}"),
            "--interval-ms",
            "200",
        ])
        .args(["--since".as_ref(), held.as_os_str()])
        .args(["--ca".as_ref(), t.pki_dir.join("ca.pem").as_os_str()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        follower.stdout.take().unwrap(),
    ));
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the follower reports the restored head")
        .unwrap()
        .unwrap_or_default();
    assert!(
        first.starts_with("consistent: ") && first.ends_with(&format!("extends {}", before.size)),
        "{first}"
    );
    follower.kill().await.ok();
    let held =
        creditmesh_tests::scalar_i64(&restored.url, "SELECT COUNT(*) FROM disclosure_notice").await;
    assert_eq!(held, head.size, "as many notices as the head counts");
    // Its operations port reports the register: the log's size, the checkpoint's, its age and
    // its cosignatures (this mesh asks no witness).
    let url = restored.url.clone();
    let ops = creditmesh::ops::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        std::slice::from_ref(&svc),
        move |_| url.clone(),
        node_stop.clone(),
    )
    .await
    .unwrap();
    let text = super::ops::get(ops, "/metrics").await.unwrap().1;
    let service = [("service", "disclosure")];
    let gauge = |name| super::ops::gauge(&text, name, &service);
    assert_eq!(
        gauge("creditmesh_register_size"),
        Some(head.size as f64),
        "{text}"
    );
    let signed = gauge("creditmesh_register_checkpoint_size").unwrap();
    assert!(
        signed >= before.size as f64 && signed <= head.size as f64,
        "{text}"
    );
    assert!(gauge("creditmesh_register_checkpoint_age_seconds").unwrap() >= 0.0);
    assert_eq!(
        gauge("creditmesh_register_checkpoint_cosignatures"),
        Some(0.0),
        "{text}"
    );
    // The original went on from the same log: its first leaves are the restored ones.
    let leaves = |url: String| async move {
        use creditmesh_storage::sqlx::Connection;
        let mut conn = creditmesh_storage::sqlx::PgConnection::connect(&url)
            .await
            .unwrap();
        let sql = format!(
            "SELECT leaf_hash FROM disclosure_notice WHERE seq < {} ORDER BY seq",
            head.size
        );
        creditmesh_storage::sqlx::query_scalar::<_, String>(
            creditmesh_storage::sqlx::AssertSqlSafe(sql),
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    };
    let (original, restored_leaves) = (leaves(admin.clone()).await, leaves(restored_admin).await);
    assert_eq!(original.len() as i64, head.size);
    assert_eq!(
        original, restored_leaves,
        "the restored log is a prefix of the original's"
    );
    node_stop.cancel();
    t.stop().await;
}

/// A disclosure service on `db` with the keys in `pki`, behind a gateway of its own: its
/// address, the register as the public reads it, and what stops both.
async fn disclosure_on(
    db: &creditmesh_storage::DbConfig,
    pki: &std::path::Path,
    dir: &std::path::Path,
) -> (
    std::net::SocketAddr,
    Register,
    tokio_util::sync::CancellationToken,
) {
    let runtime = creditmesh_tests::runtime(pki, dir);
    let defs = creditmesh::mesh::all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "disclosure").unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let svc = creditmesh::mesh::start_service(def, db, &runtime, any, stop.clone())
        .await
        .unwrap();
    let backend = creditmesh_gateway::Backend {
        grpc_name: "creditmesh.disclosure.v1.DisclosureService".into(),
        urls: vec![format!("https://{}", svc.addr)],
        server_name: "disclosure".into(),
        tenant: None,
    };
    let (_, public) = super::balancing::gateway_for(pki, backend, &stop).await;
    let register = DisclosureServiceClient::new(creditmesh_tests::server_tls(public, pki).await);
    (svc.addr, register, stop)
}

/// Register notices `range` delivered straight to the disclosure service at `addr`.
async fn deliver_to(
    addr: std::net::SocketAddr,
    pki: &std::path::Path,
    range: std::ops::Range<usize>,
) {
    let mut sink = EventSinkServiceClient::new(mtls(addr, pki, "service-filing").await);
    for i in range {
        sink.deliver(DeliverRequest {
            event: Some(register_changed(i)),
        })
        .await
        .unwrap();
    }
}

/// `creditmesh pki <args> --dir <dir>`; its success and what it printed.
pub async fn pki_cli(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("pki")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("CREDITMESH_CONFIG")
        .output()
        .await
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The register's log key rotated as `docs/operations.md` says, with `creditmesh pki
/// rotate-log-key`: while the next key is in, every checkpoint is signed by both (each key
/// alone verifies it); once the rotation is finished, by the new key alone, the old key's
/// verifier key kept as retired. A proof and a checkpoint taken before the rotation, and the
/// consistency of the tree before with the tree after, verify with `creditmesh verify` given
/// the log's keys; with the new key alone the old ones do not. PostgreSQL only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_key_rotation_keeps_every_old_proof_verifiable() {
    use creditmesh_disclosure::checkpoint::{
        NEXT_KEY_FILE, NEXT_VKEY_FILE, RETIRED_VKEY_FILE, VKEY_FILE,
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = creditmesh_tests::fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    let (ok, out) = pki_cli(&["keys"], &pki).await;
    assert!(ok, "{out}");
    let read = |file: &str| {
        std::fs::read_to_string(pki.join(file))
            .unwrap()
            .trim()
            .to_owned()
    };
    let old_vkey = read(VKEY_FILE);
    let files = dir.path().join("answers");
    std::fs::create_dir(&files).unwrap();
    let save = |name: &str, text: &str| {
        let path = files.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let signers = |note: &str| note.lines().filter(|l| l.starts_with("— ")).count();

    // Before: the old key signs alone.
    let (addr, r, stop) = disclosure_on(&db, &pki, dir.path()).await;
    deliver_to(addr, &pki, 0..3).await;
    let before = head_covering(&r, 3).await;
    assert_eq!(signers(&before.checkpoint), 1, "{}", before.checkpoint);
    assert_eq!(before.verifier_key, old_vkey);
    let p = r
        .clone()
        .get_notice_proof(GetNoticeProofRequest {
            sequence: 1,
            tree_size: before.size,
        })
        .await
        .unwrap()
        .into_inner();
    let content = p.notice.as_ref().unwrap().content.clone();
    let old_proof = save("old-proof.json", &proof_json(&p, &content));
    let old_head = save("old-head.txt", &before.checkpoint);
    stop.cancel();

    // The rotation begins: a second run refuses while it is under way.
    let (ok, out) = pki_cli(&["rotate-log-key"], &pki).await;
    assert!(ok, "{out}");
    let new_vkey = read(NEXT_VKEY_FILE);
    assert!(out.contains(&new_vkey), "{out}");
    assert_ne!(new_vkey, old_vkey);
    let (again, out) = pki_cli(&["rotate-log-key"], &pki).await;
    assert!(!again && out.contains("under way"), "{out}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (addr, r, stop) = disclosure_on(&db, &pki, dir.path()).await;
    deliver_to(addr, &pki, 3..6).await;
    let window = head_covering(&r, 6).await;
    assert_eq!(signers(&window.checkpoint), 2, "{}", window.checkpoint);
    assert_eq!(window.verifier_key, format!("{old_vkey}\n{new_vkey}"));
    for key in [&old_vkey, &new_vkey] {
        creditmesh_disclosure::verify::checkpoint(&window.checkpoint, key)
            .expect("during the window each key alone verifies the checkpoint");
    }
    extends(&r, &old_vkey, before.size, window.size)
        .await
        .expect("the window's tree extends the one before it, by the old key");
    let err = extends(&r, &new_vkey, before.size, window.size)
        .await
        .unwrap_err();
    assert!(
        err.contains("signature"),
        "the old checkpoint is the old key's: {err}"
    );
    stop.cancel();

    // The rotation ends: the new key is the log's, the old one retired.
    let (ok, out) = pki_cli(&["rotate-log-key", "--finish"], &pki).await;
    assert!(ok, "{out}");
    assert_eq!(read(VKEY_FILE), new_vkey);
    assert_eq!(read(RETIRED_VKEY_FILE), old_vkey);
    assert!(!pki.join(NEXT_KEY_FILE).exists() && !pki.join(NEXT_VKEY_FILE).exists());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (addr, r, stop) = disclosure_on(&db, &pki, dir.path()).await;
    deliver_to(addr, &pki, 6..9).await;
    let after = head_covering(&r, 9).await;
    assert_eq!(signers(&after.checkpoint), 1, "{}", after.checkpoint);
    assert_eq!(after.verifier_key, format!("{new_vkey}\n{old_vkey}"));
    assert!(creditmesh_disclosure::verify::checkpoint(&after.checkpoint, &old_vkey).is_err());
    let across = r
        .clone()
        .get_consistency_proof(GetConsistencyProofRequest {
            from_size: before.size,
            to_size: after.size,
        })
        .await
        .unwrap()
        .into_inner();
    let across = save(
        "across.json",
        &consistency_json(
            &across.from_checkpoint,
            &across.to_checkpoint,
            &across.proof,
        ),
    );
    let new_head = save("new-head.txt", &after.checkpoint);

    // Verifiers given the log's keys (the key file and the retired keys) verify everything.
    let (key, retired) = (pki.join(VKEY_FILE), pki.join(RETIRED_VKEY_FILE));
    let answers = [&old_proof, &old_head, &across, &new_head];
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--key".as_ref(),
        key.as_os_str(),
        "--key".as_ref(),
        retired.as_os_str(),
    ];
    args.extend(answers.iter().map(|f| f.as_os_str()));
    let (ok, out, err) = verify_cli(&args).await;
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("valid: ")).count(),
        4,
        "{out}"
    );
    assert!(
        out.contains(&format!("extends the tree of {}", before.size)),
        "{out}"
    );
    // With the new key alone, what the old key signed does not verify.
    let (ok, _, err) =
        verify_cli(&["--key".as_ref(), key.as_os_str(), old_proof.as_os_str()]).await;
    assert!(!ok && err.contains("old-proof.json"), "{err}");
    stop.cancel();
}

/// A notice signed before the register spoke the Measures' words (备案) gets one correction in
/// those words (登记建档) when disclosure starts on the database; started again, it corrects
/// nothing twice, and the log stays one consistent log.
async fn notices_in_the_old_words_are_corrected_once(engine: Engine) {
    use creditmesh_disclosure::store::{NewNotice, append_notice};
    use sqlx::Connection;
    let Some(t) = mesh(engine).await else { return };
    let r = register(&t).await;
    let url = t.db_url("disclosure");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let old = append_notice(
        &mut conn,
        &NewNotice {
            tenant: "653100",
            uscc: KASHGAR,
            kind: NoticeKind::Published,
            published_at: 1_767_225_600_000_000,
            text: "信用服务机构备案公示：某信用服务有限公司（统一社会信用代码 91653101MA78KT005T），\
                   备案机关 653100，备案日期 2026-01-05。",
            corrects: None,
            record: None,
        },
    )
    .await
    .unwrap();
    // A database from before the correction ran.
    sqlx::query("DELETE FROM disclosure_job")
        .execute(&mut conn)
        .await
        .unwrap();
    let clock = Arc::new(TestClock::now());
    let corrections = || {
        let r = r.clone();
        async move {
            r.clone()
                .list_notices(ListNoticesRequest {
                    kinds: vec![NoticeKind::Correction as i32],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .notices
        }
    };
    // Two replicas start on it at once.
    let (first, second) = tokio::join!(
        t.replica("disclosure", clock.clone(), |_| {}),
        t.replica("disclosure", clock.clone(), |_| {})
    );
    let found = eventually("the correction", Duration::from_secs(20), || async {
        let c = corrections().await;
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].corrects_sequence, old as i64);
    assert!(
        found[0].text.contains("信用服务机构登记建档公示")
            && found[0].text.contains("建档日期 2026-01-05")
            && !found[0].text.contains("备案公示"),
        "{}",
        found[0].text
    );
    drop((first, second));
    let _again = t.replica("disclosure", clock, |_| {}).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(corrections().await.len(), 1, "corrected once");
    t.stop().await;
}

/// Art. 10 (脱敏后公示): a business scope and a fee schedule that carry phone numbers and an
/// e-mail address however they are written — spaced, hyphenated, full-width, behind +86 — are
/// published with only the numbers' last four digits, on the record, the fee schedule and the
/// notice's leaf alike.
async fn phone_numbers_however_written_are_published_masked(engine: Engine) {
    let Some(t) = mesh(engine).await else { return };
    let r = register(&t).await;
    let filing_id = approve_kashgar(&t, &r).await;
    let mut filer = FilingServiceClient::new(t.node("agency-kashgar").await);
    let material = upload(&mut filer, DocumentKind::ChangeMaterial, pdf("new scope"))
        .await
        .unwrap();
    let today = creditmesh_domain::calendar::cst_date(creditmesh_domain::Clock::now_micros(
        &creditmesh_domain::SystemClock,
    ))
    .unwrap();
    let change = filer
        .submit_change(SubmitChangeRequest {
            request_id: "scope-with-phones".into(),
            filing_id: filing_id.clone(),
            changed_on: creditmesh_domain::calendar::format_date(today),
            changed_facts: Some(ApplicationForm {
                business_scope:
                    "信用评价、信用咨询；业务专线 133 9204 6178，投诉电话 151-8892-5615，\
                                 热线 +86 １３８ ００１３ ８０００，邮箱 aynur.k@example.org"
                        .into(),
                fee_items: vec![FiledFee {
                    service_item: "企业信用评价报告".into(),
                    fee: "4500".into(),
                    unit: "份".into(),
                    basis: "咨询 0998-2345678".into(),
                }],
                ..Default::default()
            }),
            supporting_documents: vec![DocumentRef { sha256: material }],
            description: "new scope".into(),
        })
        .await
        .unwrap()
        .into_inner();
    review_says(
        &t,
        "653100",
        ChangeDecided {
            change_id: change.change_id,
            filing_id,
            approved: true,
            ..Default::default()
        },
    )
    .await;
    let all = notices_become(&r, KASHGAR, &[NoticeKind::Published, NoticeKind::Changed]).await;
    let mut reader = r.clone();
    let record = agency(&mut reader, KASHGAR).await;
    assert_eq!(record.masking_policy_version, "xj-mask-2");
    assert_eq!(
        record.business_scope,
        "信用评价、信用咨询；业务专线 *******6178，投诉电话 *******5615，\
         热线 *********8000，邮箱 a***@example.org"
    );
    let fees = reader
        .get_fee_schedule(GetFeeScheduleRequest {
            uscc: KASHGAR.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fees.items[0].basis, "咨询 *******5678");
    // What the leaf commits to, but for its time of publication (whose digits are anyone's).
    let mut leaf: serde_json::Value = serde_json::from_slice(&all[1].content).unwrap();
    leaf["published_at_micros"] = serde_json::Value::Null;
    let leaf = leaf.to_string();
    for leaked in ["9204", "8892", "１３８", "aynur", "2345678", "0998-"] {
        assert!(!leaf.contains(leaked), "{leaked} in {leaf}");
        assert!(!all[1].text.contains(leaked), "{leaked} in {}", all[1].text);
    }

    // A notice that let personal data through (one published under an older policy) is
    // erased by the holding authority's decision and published again, masked, with the
    // record as the register now shows it.
    let answer = DisclosureServiceClient::new(t.node("regulator-653100").await)
        .erase_notice(EraseNoticeRequest {
            request_id: "leak-1".into(),
            sequence: all[1].sequence,
            reason: "公示信息含个人联系方式，依《办法》第十条脱敏后重新公示".into(),
            republish_masked: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.erased.unwrap().text.is_empty());
    let again = answer.republished.unwrap();
    assert_eq!(again.kind, NoticeKind::Correction as i32);
    assert_eq!(again.corrects_sequence, all[1].sequence);
    assert!(
        again.text.starts_with(&format!(
            "第 {} 号公示依现行脱敏规则重新公示：",
            all[1].sequence
        )),
        "{}",
        again.text
    );
    let leaf = String::from_utf8(again.content.clone()).unwrap();
    assert!(leaf.contains("*******6178"), "{leaf}");
    for leaked in ["9204", "8892", "１３８", "aynur", "2345678", "0998-"] {
        assert!(!leaf.contains(leaked), "{leaked} in {leaf}");
        assert!(!again.text.contains(leaked), "{leaked} in {}", again.text);
    }
    t.stop().await;
}
