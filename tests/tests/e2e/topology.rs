//! The region as separate hosts (`scripts/topology.sh`): the regional node with two replicas
//! of each service and the gateway, Urumqi's and Kashgar's nodes each with their own review
//! service on their own PostgreSQL cluster, in network namespaces of their own, with mutual
//! TLS on real addresses. An agency's filing crosses them: its review task lives on its
//! prefecture's node alone, and the decision taken there reaches the region's filing and
//! register.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::review::task_where;
use creditmesh_domain::calendar::format_date;
use creditmesh_proto::common::v1::DocumentRef;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::complaints::v1::{
    AcceptComplaintRequest, ListReferralsRequest, ResolveComplaintRequest,
};
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::{ListAgenciesRequest, PublishCorrectionRequest};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{
    ApplicationForm, DocumentKind, FilingStatus, GetFilingRequest, SubmitChangeRequest,
};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{DecideReviewTaskRequest, ListReviewTasksRequest};
use creditmesh_tests::{eventually, mtls, server_tls};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
const DIR: &str = "/tmp/creditmesh-topology";
const URUMQI_AGENCY: &str = "91650102MA7XJ0003G";
const SECOND_URUMQI_AGENCY: &str = "91650102MA7XJ0011B";
/// The gateway's node and public listeners, on the regional node.
const NODE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 77, 0, 10)),
    7443,
);
const PUBLIC: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 77, 0, 10)),
    8080,
);

/// The topology, started for this test and removed when it ends (unless `TOPOLOGY=running`
/// says one is already up, as `scripts/topology.sh test` does).
struct Topology {
    owned: bool,
    shape: Shape,
}

/// How many region replicas of each service, and how many prefecture nodes.
#[derive(Debug, Clone, Copy)]
struct Shape {
    replicas: u8,
    prefecture_nodes: u8,
}

impl Topology {
    fn up() -> Option<Self> {
        Self::up_shaped(Shape {
            replicas: 2,
            prefecture_nodes: 2,
        })
    }

    fn up_shaped(shape: Shape) -> Option<Self> {
        if std::env::var("TOPOLOGY").as_deref() == Ok("running") {
            return Some(Self {
                owned: false,
                shape,
            });
        }
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            eprintln!("topology: skipped, network namespaces need root");
            return None;
        }
        let topology = Self { owned: true, shape };
        topology.script(&["up"]);
        Some(topology)
    }

    /// `scripts/topology.sh` with `args`, for this shape.
    fn script(&self, args: &[&str]) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = Command::new("bash")
            .arg(root.join("scripts/topology.sh"))
            .args(args)
            // A binary of another build (release, for figures) when one is named.
            .env(
                "TOPOLOGY_BIN",
                std::env::var("TOPOLOGY_BIN").unwrap_or_else(|_| BIN.into()),
            )
            .env("TOPOLOGY_DIR", DIR)
            .env("TOPOLOGY_REPLICAS", self.shape.replicas.to_string())
            .env(
                "TOPOLOGY_PREFECTURE_NODES",
                self.shape.prefecture_nodes.to_string(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "topology.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many rows `sql` counts in the database of `node`.
    fn count(&self, node: &str, sql: &str) -> i64 {
        self.lines(node, sql)[0].parse().unwrap()
    }
}

impl Topology {
    /// What the department's node lists as received, by its own command on its own host.
    fn department_received(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                "cm-department",
                BIN,
                "department",
                "list",
                "--config",
            ])
            .arg(Path::new(DIR).join("department/department.toml"))
            .env_remove("CREDITMESH_DATABASE__URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.owned {
            self.script(&["down"]);
        }
    }
}

fn callers() -> PathBuf {
    Path::new(DIR).join("callers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filing_crosses_the_region_and_its_prefecture_node() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(topology) = Topology::up() else {
        return;
    };
    let (node, public, callers) = (NODE, PUBLIC, callers());
    let (filing_id, _) = an_agency_filed_through_its_prefecture(&topology).await;
    // A complaint referred to Urumqi's market regulation reaches that department's node.
    let mut public = ComplaintServiceClient::new(server_tls(public, &callers).await);
    let submitted = public
        .submit_complaint(super::complaints::complaint("topo-complaint-1", ""))
        .await
        .unwrap()
        .into_inner();
    let referral_id = ComplaintServiceClient::new(mtls(node, &callers, "regulator-653100").await)
        .refer_complaint(super::referrals::refer(
            "topo-refer-1",
            &submitted.tracking_number,
        ))
        .await
        .unwrap()
        .into_inner()
        .referral_id;
    let department = ComplaintServiceClient::new(mtls(node, &callers, "department").await);
    eventually("the referral delivered", Duration::from_secs(30), || {
        let mut department = department.clone();
        let referral_id = referral_id.clone();
        async move {
            let listed = department
                .list_referrals(ListReferralsRequest::default())
                .await
                .ok()?
                .into_inner()
                .referrals;
            listed
                .iter()
                .any(|r| r.referral_id == referral_id)
                .then_some(())
        }
    })
    .await;
    let received = topology.department_received();
    assert!(received.contains(&referral_id), "{received}");
    a_place_act_and_a_move_cross_prefecture_nodes(&topology, &filing_id).await;
}

/// Art. 5, 10, 12 across nodes. Kashgar City, whose calls go to Kashgar's node, interviews the
/// Urumqi agency there, though that node holds no filing of it: the act reaches Urumqi's node,
/// where the holder reads it, and Kashgar City may open what the agency filed. Then the
/// agency's registered address moves to Kashgar City: its review rows are handed from Urumqi's
/// node to Kashgar's, where Kashgar supervises it as the holder with its whole credit file.
async fn a_place_act_and_a_move_cross_prefecture_nodes(topology: &Topology, filing_id: &str) {
    use creditmesh_proto::review::v1::{
        GetCreditFileRequest, RecordInterviewRequest, RiskTier, SetRiskTierRequest, TaskKind,
        TaskStatus,
    };
    let (node, callers) = (NODE, callers());
    let mut county = ReviewServiceClient::new(mtls(node, &callers, "regulator-653101").await);
    let interview = county
        .record_interview(RecordInterviewRequest {
            request_id: "topo-county-interview".into(),
            uscc: URUMQI_AGENCY.into(),
            agency_name: format!("Credit Agency {URUMQI_AGENCY}"),
            held_on: "2026-03-02".into(),
            subject: "ratings promised to Kashgar City firms".into(),
            summary: "the branch manager was told to stop".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry_id;
    let credit_file = |reader: &'static str| {
        let callers = callers.clone();
        async move {
            ReviewServiceClient::new(mtls(node, &callers, reader).await)
                .get_credit_file(GetCreditFileRequest {
                    uscc: URUMQI_AGENCY.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
        }
    };
    let seen = eventually(
        "the county's act on Urumqi's node",
        Duration::from_secs(30),
        || async {
            credit_file("regulator-650100")
                .await
                .into_iter()
                .find(|e| e.entry_id == interview)
        },
    )
    .await;
    assert_eq!(seen.tenant, "653101");
    assert!(
        seen.summary
            .contains("by the authority of the place of activity, 喀什地区喀什市"),
        "{}",
        seen.summary
    );
    let details: serde_json::Value = serde_json::from_slice(&seen.details).unwrap();
    assert_eq!(details["place"], "653101");
    let written = format!("SELECT COUNT(*) FROM review_credit_file WHERE entry_id = '{interview}'");
    assert_eq!(
        (
            topology.count("urumqi", &written),
            topology.count("kashgar", &written)
        ),
        (1, 1),
        "written where it was recorded and passed on to the holder's node"
    );

    // Having supervised it there, Kashgar City opens what the agency filed at the region.
    use sha2::Digest;
    let licence = super::filing::pdf(&format!("{URUMQI_AGENCY} licence"));
    let sha = hex::encode(sha2::Sha256::digest(&licence));
    let county_filing = FilingServiceClient::new(mtls(node, &callers, "regulator-653101").await);
    let (_, bytes) = eventually(
        "Kashgar City reads the licence",
        Duration::from_secs(30),
        || {
            let (mut c, filing_id, sha) =
                (county_filing.clone(), filing_id.to_owned(), sha.clone());
            async move {
                super::filing::read_document(&mut c, &filing_id, &sha, "the interview's file")
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(bytes, licence);

    // The registered address moves to Kashgar City; Urumqi, holding the filing, approves it.
    let mut agency = FilingServiceClient::new(mtls(node, &callers, "agency-urumqi").await);
    let lease = super::filing::upload(
        &mut agency,
        DocumentKind::ChangeMaterial,
        super::filing::pdf("kashgar lease"),
    )
    .await
    .unwrap();
    agency
        .submit_change(SubmitChangeRequest {
            request_id: "topo-move".into(),
            filing_id: filing_id.to_owned(),
            changed_on: format_date(super::filing::today()),
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
    let urumqi = ReviewServiceClient::new(mtls(node, &callers, "regulator-650100").await);
    let change = task_where(
        &urumqi,
        ListReviewTasksRequest {
            kinds: vec![TaskKind::Change as i32],
            ..Default::default()
        },
        |t| t.status == TaskStatus::Open as i32,
    )
    .await;
    urumqi
        .clone()
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "topo-move-decision".into(),
            task_id: change.task_id,
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();

    // Kashgar's node holds the agency now, with the whole credit file: the filing Urumqi
    // reviewed, Kashgar City's interview, the transfer.
    let file = eventually(
        "the credit file on Kashgar's node",
        Duration::from_secs(30),
        || async {
            let file = credit_file("regulator-653100").await;
            file.iter().any(|e| e.kind == "transfer").then_some(file)
        },
    )
    .await;
    assert!(
        file.iter()
            .any(|e| e.kind == "filing" && e.tenant == "650100")
            && file.iter().any(|e| e.entry_id == interview)
            && file
                .iter()
                .any(|e| e.kind == "transfer" && e.tenant == "653100"),
        "{file:?}"
    );
    assert_eq!(
        topology.lines(
            "kashgar",
            &format!("SELECT tenant, filing_id FROM review_agency WHERE uscc = '{URUMQI_AGENCY}'")
        ),
        [format!("653100|{filing_id}")]
    );
    let mut kashgar = ReviewServiceClient::new(mtls(node, &callers, "regulator-653100").await);
    kashgar
        .set_risk_tier(SetRiskTierRequest {
            request_id: "topo-kashgar-tier".into(),
            uscc: URUMQI_AGENCY.into(),
            tier: RiskTier::Low as i32,
            reason: "newly arrived".into(),
        })
        .await
        .unwrap();
}

/// The Urumqi agency files at the region; its review task is made on Urumqi's node alone, and
/// the decision taken there makes the filing active at the region and puts the agency on the
/// register, whose head the witness on Kashgar's node has cosigned. That head.
async fn an_agency_filed_through_its_prefecture(
    topology: &Topology,
) -> (
    String,
    creditmesh_proto::disclosure::v1::GetRegisterHeadResponse,
) {
    let (node, public, callers) = (NODE, PUBLIC, callers());

    let mut agency = FilingServiceClient::new(mtls(node, &callers, "agency-urumqi").await);
    let req = super::filing::application(&mut agency, URUMQI_AGENCY, "2020-05-01", "topo-1").await;
    let filing = agency
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    assert_eq!(filing.reviewing_tenant, "650100");

    // The review task is made on Urumqi's node from the region's event, and only there.
    let mut urumqi = ReviewServiceClient::new(mtls(node, &callers, "regulator-650100").await);
    let task = super::review::the_task(&mut urumqi).await;
    assert_eq!(task.filing_id, filing.filing_id);
    let mut kashgar = ReviewServiceClient::new(mtls(node, &callers, "regulator-653100").await);
    let theirs = kashgar
        .list_review_tasks(ListReviewTasksRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tasks;
    assert!(theirs.is_empty(), "Kashgar's node holds none: {theirs:?}");
    let held = |node| {
        let sql = format!(
            "SELECT COUNT(*) FROM review_task WHERE filing_id = '{}'",
            filing.filing_id
        );
        topology.count(node, &sql)
    };
    assert_eq!(
        (held("urumqi"), held("kashgar"), held("region")),
        (1, 0, 0),
        "the task is stored on Urumqi's database alone"
    );

    // Decided on Urumqi's node, the filing turns active at the region and is published.
    urumqi
        .decide_review_task(DecideReviewTaskRequest {
            request_id: "topo-decision-1".into(),
            task_id: task.task_id.clone(),
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();
    // The reviewed materials reach the regional regulator, on the region's node (Art. 10).
    let region = ReviewServiceClient::new(mtls(node, &callers, "regulator-650000").await);
    let to_region = ListReviewTasksRequest {
        tenant: "650000".into(),
        ..Default::default()
    };
    task_where(&region, to_region, |t| {
        t.forwarded_from_task_id == task.task_id
    })
    .await;
    assert_eq!(
        (held("urumqi"), held("kashgar"), held("region")),
        (1, 0, 1),
        "the prefecture's task on its node, the forwarded copy on the region's"
    );
    eventually("the filing active", Duration::from_secs(30), || {
        let mut agency = agency.clone();
        let filing_id = filing.filing_id.clone();
        async move {
            let f = agency
                .get_filing(GetFilingRequest { filing_id })
                .await
                .ok()?
                .into_inner()
                .filing?;
            (f.status == FilingStatus::Active as i32).then_some(())
        }
    })
    .await;
    let register = DisclosureServiceClient::new(server_tls(public, &callers).await);
    eventually(
        "the agency on the register",
        Duration::from_secs(30),
        || {
            let mut register = register.clone();
            async move {
                let listed = register
                    .list_agencies(ListAgenciesRequest::default())
                    .await
                    .ok()?
                    .into_inner()
                    .agencies;
                listed.iter().any(|a| a.uscc == URUMQI_AGENCY).then_some(())
            }
        },
    )
    .await;

    // The register serves only checkpoints the witness on Kashgar's node has cosigned.
    let head = super::register::head_covering(&register, 1).await;
    assert_eq!(head.cosignatures, 1, "{}", head.checkpoint);
    assert!(
        head.checkpoint.contains("\u{2014} witness.kashgar/w1 "),
        "{}",
        head.checkpoint
    );
    (filing.filing_id, head)
}

/// The topology's names and addresses are fixed: its tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Topology {
    /// A fault (or its repair) by `scripts/topology.sh`.
    fn fault(&self, args: &[&str]) {
        self.script(args);
    }

    /// The rows `sql` selects in the database of `node`, one line each.
    fn lines(&self, node: &str, sql: &str) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("cm-{node}"), "psql"])
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "creditmesh",
                "-tAc",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// The ids of the complaint events for `tenant`'s review the region has written, and of
    /// those `node`'s review has applied.
    fn complaint_events(&self, tenant: &str, node: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let written = self.lines(
            "region",
            &format!(
                "SELECT event_id FROM complaints_outbox WHERE consumer = 'review' AND tenant = '{tenant}'"
            ),
        );
        let applied = self.lines(
            node,
            "SELECT event_id FROM review_inbox WHERE source = 'complaints'",
        );
        (written.into_iter().collect(), applied.into_iter().collect())
    }
}

/// One complaint submitted until it was acknowledged: its tenant, tracking number, when its
/// first attempt began and its acknowledgement came, and how many attempts failed.
#[derive(Debug, Clone)]
struct Acknowledged {
    tenant: &'static str,
    tracking_number: String,
    began: Instant,
    ended: Instant,
    failed_attempts: u32,
}

/// The public submitting complaints, about an agency of Urumqi or of Kashgar in turn, from
/// `callers` tasks each pausing `pause` between complaints; a refused or lost call is sent
/// again with the same request id until it is acknowledged, as a client of an idempotent call
/// does. Each acknowledgement is also sent to `acked`, as it comes.
async fn complaints_load(
    public: Channel,
    callers: usize,
    pause: Duration,
    stop: tokio_util::sync::CancellationToken,
    acked: Option<UnboundedSender<Acknowledged>>,
) -> Vec<Acknowledged> {
    let tasks = (0..callers).map(|c| {
        let mut client = ComplaintServiceClient::new(public.clone());
        let stop = stop.clone();
        let acked = acked.clone();
        async move {
            let mut done = Vec::new();
            for n in 0.. {
                if stop.is_cancelled() {
                    break;
                }
                let tenant = if n % 2 == 0 { "650100" } else { "653100" };
                let request = super::complaints::complaint(&format!("load-{c}-{n}"), tenant);
                let began = Instant::now();
                let mut failed_attempts = 0;
                let answer = loop {
                    let mut call = tonic::Request::new(request.clone());
                    call.set_timeout(Duration::from_secs(5));
                    match client.submit_complaint(call).await {
                        Ok(answer) => break answer.into_inner(),
                        Err(_) => {
                            failed_attempts += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                };
                let ack = Acknowledged {
                    tenant,
                    tracking_number: answer.tracking_number,
                    began,
                    ended: Instant::now(),
                    failed_attempts,
                };
                if let Some(acked) = &acked {
                    let _ = acked.send(ack.clone());
                }
                done.push(ack);
                tokio::time::sleep(pause).await;
            }
            done
        }
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The filed Urumqi agency pushing credit records, 50 to a stream with a pause of 50 ms
/// between streams, until `stop`; a stream that fails is pushed again whole. How many
/// records were acknowledged, and how many streams failed.
async fn pushes_load(agency: Channel, stop: tokio_util::sync::CancellationToken) -> (usize, u32) {
    use creditmesh_proto::datapush::v1::PushResult;
    let (mut pushed, mut refused) = (0, 0);
    for batch in 0.. {
        if stop.is_cancelled() {
            break;
        }
        let records: Vec<_> = (0..50)
            .map(|i| super::datapush::record(batch * 50 + i, 100.0))
            .collect();
        let acks = loop {
            match super::datapush::push(agency.clone(), records.clone()).await {
                Ok(acks) if acks.len() == records.len() => break acks,
                _ => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        for a in &acks {
            let result = PushResult::try_from(a.result).unwrap();
            assert!(
                matches!(result, PushResult::Stored | PushResult::Duplicate),
                "{}: {result:?} {}",
                a.record_key,
                a.error
            );
        }
        pushed += acks.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (pushed, refused)
}

/// What the prefectures' regulators did with complaints while the faults lasted: the
/// complaints resolved (tenant, tracking number) and the referrals made.
#[derive(Debug, Default)]
struct Handled {
    resolved: Vec<(&'static str, String)>,
    referrals: Vec<String>,
}

/// The regulators of the complaints' prefectures handling them as they are acknowledged:
/// every fourth accepted and resolved (so its second event for the prefecture's review
/// follows its first, perhaps while that node is cut off), and one in twenty-five, up to
/// six, referred to Urumqi's market regulation. Each call is sent again with its request id
/// until it is answered. Ends when the complaints' load does.
async fn handling_load(callers: PathBuf, mut acked: UnboundedReceiver<Acknowledged>) -> Handled {
    let mut regulators = HashMap::new();
    for tenant in ["650100", "653100"] {
        let channel = mtls(NODE, &callers, &format!("regulator-{tenant}")).await;
        regulators.insert(tenant, ComplaintServiceClient::new(channel));
    }
    let mut handled = Handled::default();
    let mut n = 0;
    while let Some(a) = acked.recv().await {
        n += 1;
        let client = &regulators[a.tenant];
        let tracking_number = a.tracking_number;
        if n % 4 == 0 {
            let accept = AcceptComplaintRequest {
                request_id: format!("accept-{tracking_number}"),
                tracking_number: tracking_number.clone(),
            };
            answered("accept", accept, |r| {
                let mut c = client.clone();
                async move { c.accept_complaint(r).await }
            })
            .await;
            let resolve = ResolveComplaintRequest {
                request_id: format!("resolve-{tracking_number}"),
                tracking_number: tracking_number.clone(),
                outcome: "the agency refunded the fee".into(),
                verified: "the invoice and the refund were checked".into(),
                against_agency: n % 8 == 0,
                category: creditmesh_proto::review::v1::FindingCategory::UnlistedFee as i32,
            };
            answered("resolve", resolve, |r| {
                let mut c = client.clone();
                async move { c.resolve_complaint(r).await }
            })
            .await;
            handled.resolved.push((a.tenant, tracking_number));
        } else if n % 25 == 1 && handled.referrals.len() < 6 {
            let refer =
                super::referrals::refer(&format!("refer-{tracking_number}"), &tracking_number);
            let referral = answered("refer", refer, |r| {
                let mut c = client.clone();
                async move { c.refer_complaint(r).await }
            })
            .await;
            handled.referrals.push(referral.referral_id);
        }
    }
    handled
}

/// `call` with `message` (5 s to answer) until it is answered; a fault refuses it for a
/// while, nothing for long.
async fn answered<M, T, F, Fut>(what: &str, message: M, mut call: F) -> T
where
    M: Clone,
    F: FnMut(tonic::Request<M>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempts = 0;
    loop {
        let mut request = tonic::Request::new(message.clone());
        request.set_timeout(Duration::from_secs(5));
        match call(request).await {
            Ok(answer) => return answer.into_inner(),
            Err(e) if attempts < 600 => {
                attempts += 1;
                if attempts % 50 == 0 {
                    eprintln!("{what}: refused {attempts} times, last: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{what}: still refused after {attempts} attempts: {e}"),
        }
    }
}

/// Agencies that file while the faults last: the name of each one's certificate, its code,
/// and the node where its prefecture's review runs.
const FILERS: [(&str, &str, &str); 8] = [
    ("agency-filer-1", "91650102MA7XJ2009H", "urumqi"),
    ("agency-filer-2", "91650102MA7XJ2017C", "urumqi"),
    ("agency-filer-3", "91650102MA7XJ20257", "urumqi"),
    ("agency-filer-4", "91650102MA7XJ20332", "urumqi"),
    ("agency-filer-5", "91653101MA78KT304Q", "kashgar"),
    ("agency-filer-6", "91653101MA78KT312K", "kashgar"),
    ("agency-filer-7", "91653101MA78KT320E", "kashgar"),
    ("agency-filer-8", "91653101MA78KT339B", "kashgar"),
];

/// Each of the [`FILERS`] files in turn, `pause` apart; an application refused or lost is
/// made again (its documents uploaded anew, the filing sent with the same request id) until
/// it is acknowledged. The id of each one's filing.
async fn filings_load(callers: PathBuf, pause: Duration) -> Vec<String> {
    let mut filed = Vec::new();
    for (name, uscc, _) in FILERS {
        tokio::time::sleep(pause).await;
        let mut client = FilingServiceClient::new(mtls(NODE, &callers, name).await);
        let request_id = format!("topo-{name}");
        let mut attempts = 0;
        let filing_id = loop {
            let attempt = async {
                let req =
                    super::filing::try_application(&mut client, uscc, "2022-06-01", &request_id)
                        .await?;
                let mut call = tonic::Request::new(req);
                call.set_timeout(Duration::from_secs(10));
                client.submit_filing(call).await
            };
            match attempt.await {
                Ok(answer) => break answer.into_inner().filing.unwrap().filing_id,
                Err(e) => {
                    attempts += 1;
                    assert!(attempts < 300, "{name}'s filing: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        filed.push(filing_id);
    }
    filed
}

impl Topology {
    /// The complaints of `tenant` with more than one event for review, checked against what
    /// `node` applied: each complaint's events applied in the order the region wrote them.
    /// The tracking numbers of those complaints, once every one of their events is applied.
    fn applied_in_order(&self, tenant: &str, node: &str) -> Option<BTreeSet<String>> {
        let written = self.lines(
            "region",
            &format!(
                "SELECT subject || ' ' || event_id FROM complaints_outbox \
                 WHERE consumer = 'review' AND tenant = '{tenant}' ORDER BY seq"
            ),
        );
        let applied: HashMap<String, i64> = self
            .lines(
                node,
                "SELECT event_id || ' ' || received_at FROM review_inbox WHERE source = 'complaints'",
            )
            .iter()
            .map(|l| {
                let (id, at) = l.split_once(' ').unwrap();
                (id.to_owned(), at.parse().unwrap())
            })
            .collect();
        let mut by_complaint: HashMap<&str, Vec<&str>> = HashMap::new();
        for line in &written {
            let (subject, event_id) = line.split_once(' ').unwrap();
            by_complaint.entry(subject).or_default().push(event_id);
        }
        let mut several = BTreeSet::new();
        for (subject, events) in by_complaint.into_iter().filter(|(_, e)| e.len() > 1) {
            let times: Vec<i64> = events
                .iter()
                .map(|e| applied.get(*e).copied())
                .collect::<Option<_>>()?;
            assert!(
                times.is_sorted(),
                "{subject}'s events applied on {node} out of the order written: {times:?}"
            );
            several.insert(subject.to_owned());
        }
        Some(several)
    }
}

/// What a fault cost the callers: the attempts refused while it lasted, and the longest wait
/// for an acknowledgement by a complaint begun in its window.
fn cost(acked: &[Acknowledged], from: Instant, to: Instant) -> (u32, Duration) {
    let within = acked.iter().filter(|a| a.began >= from && a.began < to);
    within.fold((0, Duration::ZERO), |(failed, longest), a| {
        (failed + a.failed_attempts, longest.max(a.ended - a.began))
    })
}

/// Under a steady load at the region (the public's complaints, the filed agency's record
/// pushes, agencies filing, the prefectures' regulators resolving and referring complaints):
/// one region replica of each service killed with SIGKILL in turn, Kashgar's node cut off
/// then healed, the region's PostgreSQL restarted, and Kashgar's and Urumqi's nodes started
/// again with their clocks five minutes ahead. Every complaint, record and filing
/// acknowledged is stored once; every complaint event reaches its prefecture's node exactly
/// once (and no other node), a complaint's events in the order written; every filing's task
/// is on its prefecture's node alone; every referral reaches the department once with a
/// receipt that verifies; the register is still served cosigned and extends its head from
/// before the faults. The figures (attempts refused, longest wait, catch-up) are printed;
/// `TOPOLOGY_OUTAGE_SECONDS` sets how long a replica stays dead and the link down (default 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_between_nodes_lose_no_acknowledged_write() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(topology) = Topology::up() else {
        return;
    };
    let outage = Duration::from_secs(
        std::env::var("TOPOLOGY_OUTAGE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    let (public, callers) = (PUBLIC, callers());
    let (_, before) = an_agency_filed_through_its_prefecture(&topology).await;
    let stop = tokio_util::sync::CancellationToken::new();
    // A steady load, not a flood: the suite runs beside it.
    let (acked_tx, acked_rx) = tokio::sync::mpsc::unbounded_channel();
    let load = tokio::spawn(complaints_load(
        server_tls(public, &callers).await,
        4,
        Duration::from_millis(20),
        stop.clone(),
        Some(acked_tx),
    ));
    // The regulators handle complaints as they come, and agencies file, meanwhile.
    let handling = tokio::spawn(handling_load(callers.clone(), acked_rx));
    let filings = tokio::spawn(filings_load(
        callers.clone(),
        outage.max(Duration::from_secs(5)),
    ));
    // The filed agency pushes credit records to the region's data-push service meanwhile.
    eventually(
        "data push knows the agency",
        Duration::from_secs(30),
        || async {
            let sql = "SELECT COUNT(*) FROM datapush_agency WHERE status = 'active'";
            (topology.count("region", sql) == 1).then_some(())
        },
    )
    .await;
    let pushes = tokio::spawn(pushes_load(
        mtls(NODE, &callers, "agency-urumqi").await,
        stop.clone(),
    ));
    let settle = Duration::from_secs(2);
    tokio::time::sleep(settle).await;

    let mut phases: Vec<(String, Instant, Instant)> = Vec::new();
    // One replica of each service in turn, alternating between the two addresses.
    for (service, replica) in [
        ("filing", "a"),
        ("review", "b"),
        ("disclosure", "a"),
        ("complaints", "b"),
        ("datapush", "a"),
    ] {
        let process = format!("serve-{service}-{replica}");
        let began = Instant::now();
        topology.fault(&["kill", "region", &process]);
        tokio::time::sleep(outage).await;
        topology.fault(&["revive", "region", &process]);
        phases.push((
            format!("{service}: region replica {replica} killed"),
            began,
            Instant::now(),
        ));
        tokio::time::sleep(settle).await;
    }

    let began = Instant::now();
    topology.fault(&["cut", "kashgar"]);
    tokio::time::sleep(outage).await;
    topology.fault(&["heal", "kashgar"]);
    let healed = Instant::now();
    phases.push(("Kashgar's node cut off".into(), began, healed));
    let caught_up = eventually(
        "Kashgar's node caught up",
        Duration::from_secs(60),
        || async {
            let (written, applied) = topology.complaint_events("653100", "kashgar");
            written.is_subset(&applied).then(|| healed.elapsed())
        },
    )
    .await;
    tokio::time::sleep(settle).await;

    let began = Instant::now();
    topology.fault(&["pg-restart", "region"]);
    phases.push((
        "the region's PostgreSQL restarted".into(),
        began,
        Instant::now(),
    ));
    tokio::time::sleep(settle * 2).await;

    let began = Instant::now();
    topology.fault(&["skew", "kashgar", "serve", "300"]);
    topology.fault(&["skew", "urumqi", "serve", "300"]);
    phases.push((
        "Kashgar's and Urumqi's nodes restarted 5 min ahead".into(),
        began,
        Instant::now(),
    ));
    tokio::time::sleep(settle * 2).await;
    stop.cancel();
    let acked = load.await.unwrap();
    let (pushed, refused_streams) = pushes.await.unwrap();
    let handled = handling.await.unwrap();
    let filed = filings.await.unwrap();

    eprintln!(
        "topology faults (outage {outage:?}), {} complaints acknowledged:",
        acked.len()
    );
    for (name, from, to) in &phases {
        let (failed, longest) = cost(&acked, *from, *to + settle);
        eprintln!("  {name}: {failed} attempts refused, longest wait {longest:?}");
    }
    eprintln!("  Kashgar's node applied its backlog {caught_up:?} after the link came back");
    eprintln!("  {pushed} credit records pushed, {refused_streams} push streams refused");
    eprintln!(
        "  {} complaints resolved, {} referred, {} agencies filed",
        handled.resolved.len(),
        handled.referrals.len(),
        filed.len()
    );

    // Every record pushed is held once, at its first version (a stream sent again after a
    // fault finds what it had already stored and is told so).
    assert!(pushed >= 500, "pushes ran throughout: {pushed}");
    let held = topology.lines(
        "region",
        &format!(
            "SELECT COUNT(*) || ' ' || COUNT(DISTINCT record_key) || ' ' || MAX(version) \
             FROM datapush_record WHERE agency_uscc = '{URUMQI_AGENCY}'"
        ),
    );
    assert_eq!(
        held,
        [format!("{pushed} {pushed} 1")],
        "each record held once"
    );

    // Every acknowledged complaint is stored once, and nothing else is.
    assert!(acked.len() > 50, "a steady load ran: {}", acked.len());
    let stored = topology.lines("region", "SELECT tracking_number FROM complaints_complaint");
    let stored_set: BTreeSet<&String> = stored.iter().collect();
    assert_eq!(stored.len(), stored_set.len(), "no complaint stored twice");
    let acked_set: BTreeSet<&String> = acked.iter().map(|a| &a.tracking_number).collect();
    assert_eq!(
        acked_set.len(),
        acked.len(),
        "each acknowledgement names its own complaint"
    );
    assert_eq!(
        stored_set, acked_set,
        "what was acknowledged is what is stored"
    );

    // Each complaint's event reaches its own prefecture's node, and only that one.
    for (tenant, node, other) in [
        ("650100", "urumqi", "kashgar"),
        ("653100", "kashgar", "urumqi"),
    ] {
        let (written, _) = topology.complaint_events(tenant, node);
        let resolved = handled.resolved.iter().filter(|(t, _)| *t == tenant);
        assert_eq!(
            written.len(),
            acked.iter().filter(|a| a.tenant == tenant).count() + resolved.count(),
            "one event for {tenant}'s review per complaint, and one per resolution"
        );
        eventually(
            "every event applied where it belongs",
            Duration::from_secs(60),
            || async {
                written
                    .is_subset(&topology.complaint_events(tenant, node).1)
                    .then_some(())
            },
        )
        .await;
        let (_, elsewhere) = topology.complaint_events(tenant, other);
        assert!(
            written.is_disjoint(&elsewhere),
            "{tenant}'s events reached {other}"
        );
        let region = topology.lines("region", "SELECT event_id FROM review_inbox");
        assert!(
            region.iter().all(|id| !written.contains(id)),
            "{tenant}'s events reached the region's review"
        );
    }

    // A complaint resolved has a second event for its prefecture's review: each node applied
    // every such pair in the order the region wrote it, whatever the faults in between.
    for (tenant, node) in [("650100", "urumqi"), ("653100", "kashgar")] {
        let resolved: BTreeSet<String> = handled
            .resolved
            .iter()
            .filter(|(t, _)| *t == tenant)
            .map(|(_, n)| n.clone())
            .collect();
        assert!(!resolved.is_empty(), "{tenant}'s regulator resolved some");
        let in_order = eventually(
            "the resolutions applied",
            Duration::from_secs(60),
            || async { topology.applied_in_order(tenant, node) },
        )
        .await;
        assert_eq!(in_order, resolved, "complaints of {tenant} with two events");
    }

    // Every filing acknowledged is held once at the region, and its review task once, on
    // its prefecture's node alone.
    assert_eq!(filed.len(), FILERS.len());
    for ((name, uscc, node), filing_id) in FILERS.iter().zip(&filed) {
        let at_region = format!("SELECT COUNT(*) FROM filing_filing WHERE uscc = '{uscc}'");
        assert_eq!(topology.count("region", &at_region), 1, "{name} filed once");
        let tasks = format!("SELECT COUNT(*) FROM review_task WHERE filing_id = '{filing_id}'");
        eventually(
            "the filing's review task",
            Duration::from_secs(60),
            || async { (topology.count(node, &tasks) > 0).then_some(()) },
        )
        .await;
        let other = if *node == "urumqi" {
            "kashgar"
        } else {
            "urumqi"
        };
        assert_eq!(
            [*node, other, "region"].map(|n| topology.count(n, &tasks)),
            [1, 0, 0],
            "{name}'s task held once, on its prefecture's node"
        );
    }

    // Every referral reaches the department's node once, and the receipt its node signed
    // verifies against the regional CA.
    assert!(
        !handled.referrals.is_empty(),
        "some complaints were referred"
    );
    let department = ComplaintServiceClient::new(mtls(NODE, &callers, "department").await);
    let listed = eventually("the referrals received", Duration::from_secs(60), || {
        let mut department = department.clone();
        let wanted = handled.referrals.clone();
        async move {
            let listed = department
                .list_referrals(ListReferralsRequest::default())
                .await
                .ok()?
                .into_inner()
                .referrals;
            let with_receipts: HashMap<String, _> = listed
                .into_iter()
                .filter_map(|r| Some((r.referral_id.clone(), r.receipt?)))
                .collect();
            wanted
                .iter()
                .all(|id| with_receipts.contains_key(id))
                .then_some(with_receipts)
        }
    })
    .await;
    let ca = std::fs::read_to_string(callers.join("ca.pem")).unwrap();
    let received = topology.department_received();
    for id in &handled.referrals {
        let signer = super::referrals::receipt_signer(&ca, id, &listed[id])
            .unwrap_or_else(|e| panic!("the receipt for {id}: {e}"));
        assert_eq!(signer.subject, "market-regulation");
        assert_eq!(
            received
                .lines()
                .filter(|l| l.starts_with(id.as_str()))
                .count(),
            1,
            "{id} received once: {received}"
        );
    }

    // A filing reviewed on Urumqi's node, whose clock is now ahead, is timed by the region's
    // clock, where it was filed (its deadline counts from that time).
    let mut second = FilingServiceClient::new(mtls(NODE, &callers, "agency-urumqi-2").await);
    let req =
        super::filing::application(&mut second, SECOND_URUMQI_AGENCY, "2021-03-01", "topo-2").await;
    let filing = second
        .submit_filing(req)
        .await
        .unwrap()
        .into_inner()
        .filing
        .unwrap();
    let urumqi = ReviewServiceClient::new(mtls(NODE, &callers, "regulator-650100").await);
    let task = task_where(&urumqi, ListReviewTasksRequest::default(), |t| {
        t.filing_id == filing.filing_id
    })
    .await;
    let seconds = |t: Option<prost_types::Timestamp>| t.unwrap().seconds;
    let apart = seconds(task.created_at) - seconds(filing.submitted_at);
    assert!(
        apart.abs() <= 1,
        "the task is timed by the region's clock, not its node's ({apart} s apart)"
    );

    // The register grows by a correction, and its new head is cosigned by the witness whose
    // clock is now ahead.
    let mut regulator =
        DisclosureServiceClient::new(mtls(NODE, &callers, "regulator-650100").await);
    regulator
        .publish_correction(PublishCorrectionRequest {
            request_id: "topo-correction-1".into(),
            uscc: URUMQI_AGENCY.into(),
            corrects_sequence: 0,
            text: "更正：注册地址录入有误".into(),
        })
        .await
        .unwrap();
    let register = DisclosureServiceClient::new(server_tls(public, &callers).await);
    let head = super::register::head_covering(&register, before.size + 1).await;
    assert_eq!(head.cosignatures, 1, "{}", head.checkpoint);
    // Signed by the log's key, and extending the head served before the faults.
    let vkey =
        std::fs::read_to_string(Path::new(DIR).join("region/pki/register-log.vkey")).unwrap();
    super::register::extends(&register, &vkey, before.size, head.size)
        .await
        .expect("the register only grew through the faults");
}

/// How cost grows with replicas and prefecture nodes: for each shape of the topology, the
/// public's complaints acknowledged per second through the gateway (`TOPOLOGY_CALLERS`
/// callers, default 16, no pause, for `TOPOLOGY_SECONDS`, default 15), and the complaint
/// events applied per second by review wherever each tenant's review runs (from the first
/// event applied to the last). A benchmark: run by hand, as root,
/// `cargo test --test e2e -- --ignored topology::cost --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark that prints figures; run by hand"]
async fn cost_of_replicas_and_prefecture_nodes() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let knob = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (callers_n, seconds) = (knob("TOPOLOGY_CALLERS", 16), knob("TOPOLOGY_SECONDS", 15));
    let mut lines = Vec::new();
    for (replicas, prefecture_nodes) in [(1, 0), (2, 0), (1, 2), (2, 2)] {
        let shape = Shape {
            replicas,
            prefecture_nodes,
        };
        let Some(topology) = Topology::up_shaped(shape) else {
            return;
        };
        let callers = callers();
        let stop = tokio_util::sync::CancellationToken::new();
        let load = tokio::spawn(complaints_load(
            server_tls(PUBLIC, &callers).await,
            callers_n as usize,
            Duration::ZERO,
            stop.clone(),
            None,
        ));
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.cancel();
        let acked = load.await.unwrap();
        let first = acked.iter().map(|a| a.began).min().unwrap();
        let last = acked.iter().map(|a| a.ended).max().unwrap();
        let calls = acked.len() as f64 / (last - first).as_secs_f64();
        let nodes: &[&str] = if prefecture_nodes == 0 {
            &["region"]
        } else {
            &["urumqi", "kashgar"]
        };
        let applied = eventually("every event applied", Duration::from_secs(300), || async {
            let mut count = 0;
            let (mut from, mut to) = (i64::MAX, i64::MIN);
            for node in nodes {
                let row = topology.lines(
                    node,
                    "SELECT COUNT(*) || ' ' || MIN(received_at) || ' ' || MAX(received_at) \
                     FROM review_inbox WHERE source = 'complaints'",
                );
                let f: Vec<i64> = row
                    .first()?
                    .split(' ')
                    .map(|x| x.parse().unwrap())
                    .collect();
                count += f[0] as usize;
                from = from.min(f[1]);
                to = to.max(f[2]);
            }
            (count >= acked.len()).then_some((count, from, to))
        })
        .await;
        let events = applied.0 as f64 / ((applied.2 - applied.1) as f64 / 1e6);
        let line = format!(
            "{replicas} replica(s), {prefecture_nodes} prefecture node(s): {} complaints, \
             {calls:.0} calls/s, {events:.0} events/s applied",
            acked.len()
        );
        eprintln!("{line}");
        lines.push(line);
    }
    eprintln!(
        "topology cost ({callers_n} callers, {seconds} s):\n  {}",
        lines.join("\n  ")
    );
}
