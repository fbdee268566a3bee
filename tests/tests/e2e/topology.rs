//! The region as separate hosts (`scripts/topology.sh`): the regional node with two replicas
//! of each service and the gateway, Urumqi's and Kashgar's nodes each with their own review
//! service on their own PostgreSQL cluster, in network namespaces of their own, with mutual
//! TLS on real addresses. An agency's filing crosses them: its review task lives on its
//! prefecture's node alone, and the decision taken there reaches the region's filing and
//! register.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::review::task_where;
use creditmesh_proto::complaints::v1::ListReferralsRequest;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::{
    GetRegisterHeadRequest, ListAgenciesRequest, PublishCorrectionRequest,
};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{FilingStatus, GetFilingRequest};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{DecideReviewTaskRequest, ListReviewTasksRequest};
use creditmesh_tests::{eventually, mtls, server_tls};
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
            .env("TOPOLOGY_BIN", BIN)
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
    an_agency_filed_through_its_prefecture(&topology).await;
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
}

/// The Urumqi agency files at the region; its review task is made on Urumqi's node alone, and
/// the decision taken there makes the filing active at the region and puts the agency on the
/// register, whose head the witness on Kashgar's node has cosigned. That head.
async fn an_agency_filed_through_its_prefecture(
    topology: &Topology,
) -> creditmesh_proto::disclosure::v1::GetRegisterHeadResponse {
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
    let head = eventually("a cosigned checkpoint", Duration::from_secs(30), || {
        let mut register = register.clone();
        async move {
            let head = register
                .get_register_head(GetRegisterHeadRequest::default())
                .await
                .ok()?
                .into_inner();
            (head.size > 0).then_some(head)
        }
    })
    .await;
    assert_eq!(head.cosignatures, 1, "{}", head.checkpoint);
    assert!(
        head.checkpoint.contains("\u{2014} witness.kashgar/w1 "),
        "{}",
        head.checkpoint
    );
    head
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
/// `callers` tasks each pausing `pause` between complaints; a refused or lost call is sent again with the same request id until it is
/// acknowledged, as a client of an idempotent call does.
async fn complaints_load(
    public: Channel,
    callers: usize,
    pause: Duration,
    stop: tokio_util::sync::CancellationToken,
) -> Vec<Acknowledged> {
    let tasks = (0..callers).map(|c| {
        let mut client = ComplaintServiceClient::new(public.clone());
        let stop = stop.clone();
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
                done.push(Acknowledged {
                    tenant,
                    tracking_number: answer.tracking_number,
                    began,
                    ended: Instant::now(),
                    failed_attempts,
                });
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

/// What a fault cost the callers: the attempts refused while it lasted, and the longest wait
/// for an acknowledgement by a complaint begun in its window.
fn cost(acked: &[Acknowledged], from: Instant, to: Instant) -> (u32, Duration) {
    let within = acked.iter().filter(|a| a.began >= from && a.began < to);
    within.fold((0, Duration::ZERO), |(failed, longest), a| {
        (failed + a.failed_attempts, longest.max(a.ended - a.began))
    })
}

/// Under a steady load of complaints at the region: a region replica of every service killed
/// with SIGKILL, Kashgar's node cut off then healed, the region's PostgreSQL restarted, and
/// Kashgar's node started again with its clock five minutes ahead. Every complaint the
/// callers submitted is stored once, every complaint event reaches its prefecture's node
/// exactly once (and no other node), and the register is still served cosigned. The figures
/// (attempts refused, longest wait, catch-up) are printed; `TOPOLOGY_OUTAGE_SECONDS` sets how
/// long the replica stays dead and the link down (default 5).
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
    let before = an_agency_filed_through_its_prefecture(&topology).await;
    let stop = tokio_util::sync::CancellationToken::new();
    // A steady load, not a flood: the suite runs beside it.
    let load = tokio::spawn(complaints_load(
        server_tls(public, &callers).await,
        4,
        Duration::from_millis(20),
        stop.clone(),
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

    let mut phases: Vec<(&str, Instant, Instant)> = Vec::new();
    let began = Instant::now();
    topology.fault(&["kill", "region", "serve-b"]);
    tokio::time::sleep(outage).await;
    topology.fault(&["revive", "region", "serve-b"]);
    phases.push((
        "a region replica of every service killed",
        began,
        Instant::now(),
    ));
    tokio::time::sleep(settle).await;

    let began = Instant::now();
    topology.fault(&["cut", "kashgar"]);
    tokio::time::sleep(outage).await;
    topology.fault(&["heal", "kashgar"]);
    let healed = Instant::now();
    phases.push(("Kashgar's node cut off", began, healed));
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
    phases.push(("the region's PostgreSQL restarted", began, Instant::now()));
    tokio::time::sleep(settle * 2).await;

    let began = Instant::now();
    topology.fault(&["skew", "kashgar", "serve", "300"]);
    topology.fault(&["skew", "urumqi", "serve", "300"]);
    phases.push((
        "Kashgar's and Urumqi's nodes restarted 5 min ahead",
        began,
        Instant::now(),
    ));
    tokio::time::sleep(settle * 2).await;
    stop.cancel();
    let acked = load.await.unwrap();
    let (pushed, refused_streams) = pushes.await.unwrap();

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
        assert_eq!(
            written.len(),
            acked.iter().filter(|a| a.tenant == tenant).count(),
            "one event for {tenant}'s review per complaint"
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
    let head = eventually("a larger cosigned head", Duration::from_secs(30), || {
        let mut register = register.clone();
        async move {
            let head = register
                .get_register_head(GetRegisterHeadRequest::default())
                .await
                .ok()?
                .into_inner();
            (head.size > before.size).then_some(head)
        }
    })
    .await;
    assert_eq!(head.cosignatures, 1, "{}", head.checkpoint);
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
