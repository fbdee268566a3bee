//! Contenders run at once on PostgreSQL, where writers do not queue as on SQLite: each race,
//! many times, has exactly one winner, the loser a clear refusal, and no duplicate row.

use std::time::Duration;

use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::events::v1::FilingDecided;
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{ApplicationForm, DocumentKind, SubmitChangeRequest};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::*;
use creditmesh_tests::{Engine, eventually, scalar_i64};
use tonic::Code;

use super::filing::{KASHGAR, application, mesh, pdf, review_says, upload};
use super::review::approve;

const ROUNDS: usize = 100;

/// Two applications of one agency submitted together: one open filing, never two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_applications_at_once_make_one_open_filing() {
    let Some(t) = mesh(Engine::Postgres).await else {
        return;
    };
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let template = application(&mut agency, KASHGAR, "2020-05-01", "template").await;
    let url = t.db_url("filing");
    for round in 0..ROUNDS {
        let calls = ["a", "b"].map(|side| {
            let mut client = agency.clone();
            let mut req = template.clone();
            req.request_id = format!("{round}-{side}");
            tokio::spawn(async move { client.submit_filing(req).await })
        });
        let mut won = Vec::new();
        for call in futures::future::join_all(calls).await {
            match call.unwrap() {
                Ok(r) => won.push(r.into_inner().filing.unwrap().filing_id),
                Err(e) => assert!(
                    matches!(e.code(), Code::FailedPrecondition | Code::AlreadyExists),
                    "round {round}: {e:?}"
                ),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: one winner");
        assert_eq!(
            scalar_i64(
                &url,
                "SELECT COUNT(*) FROM filing_filing WHERE status IN ('submitted', 'active', 'deregistering')"
            )
            .await,
            1,
            "round {round}"
        );
        // Closed, so that the next round applies afresh.
        review_says(
            &t,
            "653100",
            FilingDecided {
                filing_id: won[0].clone(),
                approved: false,
                reason: "round over".into(),
                ..Default::default()
            },
        )
        .await;
    }
    t.stop().await;
}

/// Two decisions on one task at once (an approval and a refusal): one is taken, the other
/// refused, and exactly one decision reaches the filing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_decisions_on_one_task_have_one_winner() {
    let Some(t) = mesh(Engine::Postgres).await else {
        return;
    };
    let filing_id = approve(&t, "k").await;
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("minutes"))
            .await
            .unwrap(),
    };
    let today = creditmesh_domain::calendar::format_date(super::filing::today());
    let kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let review = t.db_url("review");
    for round in 0..ROUNDS {
        agency
            .submit_change(SubmitChangeRequest {
                request_id: format!("c-{round}"),
                filing_id: filing_id.clone(),
                changed_on: today.clone(),
                changed_facts: Some(ApplicationForm {
                    contact_phone: format!("0998-{round:07}"),
                    ..Default::default()
                }),
                supporting_documents: vec![materials.clone()],
                description: "new number".into(),
            })
            .await
            .unwrap();
        let task = eventually("the change task", Duration::from_secs(20), || {
            let mut k = kashgar.clone();
            let filing_id = filing_id.clone();
            async move {
                k.list_review_tasks(ListReviewTasksRequest {
                    kinds: vec![TaskKind::Change as i32],
                    statuses: vec![TaskStatus::Open as i32],
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .tasks
                .into_iter()
                .find(|t| t.filing_id == filing_id)
            }
        })
        .await;
        let approve = DecideReviewTaskRequest {
            request_id: format!("approve-{round}"),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        };
        let refuse = DecideReviewTaskRequest {
            request_id: format!("refuse-{round}"),
            task_id: task.task_id.clone(),
            change_grounds: vec![ChangeRefusalGround::IncompleteMaterials as i32],
            reason: "incomplete".into(),
            ..Default::default()
        };
        let calls = [approve, refuse].map(|req| {
            let mut k = kashgar.clone();
            tokio::spawn(async move { k.decide_review_task(req).await })
        });
        let mut winners = 0;
        for call in futures::future::join_all(calls).await {
            match call.unwrap() {
                Ok(_) => winners += 1,
                Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "round {round}: {e:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
    assert_eq!(
        scalar_i64(
            &review,
            "SELECT COUNT(*) FROM review_outbox WHERE event_type = 'review.change_decided' AND consumer = 'filing'"
        )
        .await,
        ROUNDS as i64,
        "one decision per task reaches the filing"
    );
    assert_eq!(
        scalar_i64(
            &review,
            "SELECT COUNT(*) FROM review_task WHERE kind = 'change' AND status = 'open'"
        )
        .await,
        0
    );
    t.stop().await;
}

/// The overdue timer and two regulators on one order at once: each order ends rectified once,
/// one of the two records wins, and an order that went overdue on the way has one supervision
/// task, never two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timer_and_two_regulators_on_one_order_leave_one_outcome() {
    use std::sync::Arc;

    use creditmesh_tests::{TestClock, TestMesh};
    use time::macros::date;

    // Monday 2 March 2026: one working day later is Tuesday 3 March.
    let clock = Arc::new(TestClock::at(date!(2026 - 03 - 02)));
    let Some(t) = TestMesh::start_at(Engine::Postgres, clock.clone()).await else {
        return;
    };
    let Some(t) = super::filing::mesh_with(t) else {
        return;
    };
    approve(&t, "k").await;
    let mut kashgar = ReviewServiceClient::new(t.node("regulator-653100").await);
    let mut orders = Vec::new();
    for round in 0..ROUNDS {
        orders.push(
            kashgar
                .issue_rectification_order(IssueRectificationOrderRequest {
                    request_id: format!("o-{round}"),
                    uscc: KASHGAR.into(),
                    findings: "fees not shown".into(),
                    required_actions: "publish the fee schedule".into(),
                    working_days: 1,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .order_id,
        );
    }
    // The timer starts moving the orders to overdue; the regulators record outcomes while it
    // is on its way through them.
    clock.set(date!(2026 - 03 - 04));
    let review = t.db_url("review");
    eventually("the timer at work", Duration::from_secs(20), || {
        let url = review.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM review_task WHERE kind = 'supervision'";
            (scalar_i64(&url, sql).await > 0).then_some(())
        }
    })
    .await;
    let calls = orders.iter().enumerate().flat_map(|(round, order)| {
        ["a", "b"].map(|side| {
            let mut k = kashgar.clone();
            let req = RecordRectificationOutcomeRequest {
                request_id: format!("{round}-{side}"),
                order_id: order.clone(),
                outcome: RectificationOutcome::Rectified as i32,
                note: "fee schedule published".into(),
            };
            tokio::spawn(async move { k.record_rectification_outcome(req).await })
        })
    });
    let mut won = 0;
    for call in futures::future::join_all(calls).await {
        match call.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}"),
        }
    }
    assert_eq!(won, ROUNDS, "one record per order");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        scalar_i64(
            &review,
            "SELECT COUNT(*) FROM review_rectification WHERE status = 'rectified'"
        )
        .await,
        ROUNDS as i64
    );
    let tasks = scalar_i64(
        &review,
        "SELECT COUNT(*) FROM review_task WHERE kind = 'supervision'",
    )
    .await;
    let overdue = scalar_i64(
        &review,
        "SELECT COUNT(*) FROM review_credit_file WHERE summary LIKE '%overdue%'",
    )
    .await;
    println!("{tasks} of {ROUNDS} orders went overdue before their outcome");
    assert_eq!(tasks, overdue, "one task for each order that went overdue");
    assert!(tasks <= ROUNDS as i64);
    t.stop().await;
}

/// Two history entries of one filing written at once, a hundred times: every entry lands,
/// each with a number of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_history_entries_at_once_both_land() {
    let Some(t) = mesh(Engine::Postgres).await else {
        return;
    };
    let filing_id = approve(&t, "k").await;
    let mut agency = FilingServiceClient::new(t.node("agency-kashgar").await);
    let materials = DocumentRef {
        sha256: upload(&mut agency, DocumentKind::ChangeMaterial, pdf("minutes"))
            .await
            .unwrap(),
    };
    let today = creditmesh_domain::calendar::format_date(super::filing::today());
    let url = t.db_url("filing");
    let before = scalar_i64(&url, "SELECT COUNT(*) FROM filing_history").await;
    for round in 0..ROUNDS {
        let calls = ["a", "b"].map(|side| {
            let mut a = agency.clone();
            let req = SubmitChangeRequest {
                request_id: format!("{round}-{side}"),
                filing_id: filing_id.clone(),
                changed_on: today.clone(),
                changed_facts: Some(ApplicationForm {
                    contact_email: format!("{side}{round}@example.org"),
                    ..Default::default()
                }),
                supporting_documents: vec![materials.clone()],
                description: "new address".into(),
            };
            tokio::spawn(async move { a.submit_change(req).await })
        });
        for call in futures::future::join_all(calls).await {
            call.unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        }
    }
    let after = scalar_i64(&url, "SELECT COUNT(*) FROM filing_history").await;
    assert!(after - before >= 2 * ROUNDS as i64, "{before} → {after}");
    assert_eq!(
        scalar_i64(
            &url,
            "SELECT COUNT(*) FROM (SELECT tenant, filing_id, seq FROM filing_history \
             GROUP BY tenant, filing_id, seq HAVING COUNT(*) > 1) d"
        )
        .await,
        0
    );
    t.stop().await;
}

/// The region and the holding prefecture accept the same complaint at once, then resolve it at
/// once: one acceptance, one resolution, one finding in the credit file, each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_regulators_on_one_complaint_have_one_winner_each_step() {
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    use creditmesh_proto::complaints::v1::{AcceptComplaintRequest, ResolveComplaintRequest};
    let Some(t) = mesh(Engine::Postgres).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    let regulators = [
        ComplaintServiceClient::new(t.node("regulator-653100").await),
        ComplaintServiceClient::new(t.node("regulator-650000").await),
    ];
    const COMPLAINTS: usize = 30;
    for round in 0..COMPLAINTS {
        let number = public
            .submit_complaint(super::complaints::complaint(&format!("race-{round}"), ""))
            .await
            .unwrap()
            .into_inner()
            .tracking_number;
        let accepts = regulators.clone().map(|mut r| {
            let number = number.clone();
            tokio::spawn(async move {
                r.accept_complaint(AcceptComplaintRequest {
                    request_id: format!("accept-{number}-{}", uuid::Uuid::new_v4()),
                    tracking_number: number,
                })
                .await
            })
        });
        let winners = |answers: Vec<Result<_, tonic::Status>>| {
            let won = answers.iter().filter(|r| r.is_ok()).count();
            for r in answers.iter().filter_map(|r| r.as_ref().err()) {
                assert_eq!(r.code(), Code::FailedPrecondition, "{r:?}");
            }
            won
        };
        let accepted: Vec<_> = futures::future::join_all(accepts)
            .await
            .into_iter()
            .map(|j| j.unwrap().map(|_| ()))
            .collect();
        assert_eq!(winners(accepted), 1, "round {round}: one acceptance");
        let resolutions = regulators.clone().map(|mut r| {
            let number = number.clone();
            tokio::spawn(async move {
                r.resolve_complaint(ResolveComplaintRequest {
                    request_id: format!("resolve-{number}-{}", uuid::Uuid::new_v4()),
                    tracking_number: number,
                    outcome: "upheld".into(),
                    verified: "records".into(),
                    against_agency: true,
                    category: creditmesh_proto::review::v1::FindingCategory::UnlistedFee as i32,
                })
                .await
            })
        });
        let resolved: Vec<_> = futures::future::join_all(resolutions)
            .await
            .into_iter()
            .map(|j| j.unwrap().map(|_| ()))
            .collect();
        assert_eq!(winners(resolved), 1, "round {round}: one resolution");
    }
    let review = t.db_url("review");
    eventually("every finding recorded", Duration::from_secs(30), || {
        let url = review.clone();
        async move {
            let n = scalar_i64(
                &url,
                "SELECT COUNT(*) FROM review_credit_file WHERE kind = 'complaint_finding'",
            )
            .await;
            (n == COMPLAINTS as i64).then_some(())
        }
    })
    .await;
    t.stop().await;
}

/// Complainant notifications with several senders at once (the service's own and four more):
/// each notification goes out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_senders_tell_each_complainant_once() {
    use std::sync::{Arc, Mutex};

    use creditmesh_complaints::notify::{Notifier, Notifiers, Outgoing, queue_to, send_due};

    struct Counting(Mutex<Vec<String>>);
    #[tonic::async_trait]
    impl Notifier for Counting {
        async fn send(&self, m: &Outgoing) -> Result<(), String> {
            self.0.lock().unwrap().push(m.id.clone());
            Ok(())
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let Some(mut db) = creditmesh_tests::fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    db.url = db.url.replace("{service}", "complaints");
    let pki = dir.path().join("pki");
    creditmesh_pki::ensure_dev_pki(&pki, creditmesh_tests::TRUST_DOMAIN).unwrap();
    let runtime = creditmesh_tests::runtime(&pki, dir.path());
    let stop = tokio_util::sync::CancellationToken::new();
    let defs = creditmesh::mesh::all_services(&runtime.services);
    let def = defs.iter().find(|d| d.name == "complaints").unwrap();
    let service = creditmesh::mesh::start_service(
        def,
        &db,
        &runtime,
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        stop.clone(),
    )
    .await
    .unwrap();
    let store = service.store.clone();
    let contacts = Arc::new(creditmesh_pki::ContactKey::load(&pki).unwrap());
    const N: usize = 40;
    {
        let mut tx = store.db.begin().await.unwrap();
        for i in 0..N {
            queue_to(
                &mut tx,
                &contacts,
                "653100",
                &format!("TS{i:012}"),
                &format!("c{i}@example.org"),
                "s",
                "b",
                store.now(),
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let counting = Arc::new(Counting(Mutex::new(Vec::new())));
    let url = db.url.clone();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (store, url, contacts) = (store.clone(), url.clone(), contacts.clone());
            let notifiers = Notifiers {
                email: counting.clone(),
                sms: counting.clone(),
            };
            tokio::spawn(async move {
                loop {
                    send_due(&store, &notifiers, &contacts).await.unwrap();
                    let left = scalar_i64(
                        &url,
                        "SELECT COUNT(*) FROM complaints_notification WHERE sent_at IS NULL",
                    )
                    .await;
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    // What the service's own sender wrote, and what the four counted.
    let mut delivered: Vec<String> = std::fs::read_dir(dir.path().join("notifications"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .trim_end_matches(".txt")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    delivered.extend(counting.0.lock().unwrap().iter().cloned());
    let distinct: std::collections::HashSet<_> = delivered.iter().cloned().collect();
    assert_eq!(distinct.len(), N);
    assert_eq!(delivered.len(), N, "a notification went out twice");
    stop.cancel();
}
