//! The region as separate hosts (`scripts/topology.sh`): the regional node with two replicas
//! of each service and the gateway, Urumqi's and Kashgar's nodes each with their own review
//! service on their own PostgreSQL cluster, in network namespaces of their own, with mutual
//! TLS on real addresses. An agency's filing crosses them: its review task lives on its
//! prefecture's node alone, and the decision taken there reaches the region's filing and
//! register.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use creditmesh_proto::complaints::v1::ListReferralsRequest;
use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::{GetRegisterHeadRequest, ListAgenciesRequest};
use creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient;
use creditmesh_proto::filing::v1::{FilingStatus, GetFilingRequest};
use creditmesh_proto::review::v1::review_service_client::ReviewServiceClient;
use creditmesh_proto::review::v1::{DecideReviewTaskRequest, ListReviewTasksRequest};
use creditmesh_tests::{eventually, mtls, server_tls};

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");
const DIR: &str = "/tmp/creditmesh-topology";
const URUMQI_AGENCY: &str = "91650102MA7XJ0003G";

/// The topology, started for this test and removed when it ends (unless `TOPOLOGY=running`
/// says one is already up, as `scripts/topology.sh test` does).
struct Topology {
    owned: bool,
}

impl Topology {
    fn up() -> Option<Self> {
        if std::env::var("TOPOLOGY").as_deref() == Ok("running") {
            return Some(Self { owned: false });
        }
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            eprintln!("topology: skipped, network namespaces need root");
            return None;
        }
        script("up");
        Some(Self { owned: true })
    }

    /// How many rows `sql` counts in the database of `node`.
    fn count(&self, node: &str, sql: &str) -> i64 {
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
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
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
            script("down");
        }
    }
}

fn script(command: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("bash")
        .arg(root.join("scripts/topology.sh"))
        .arg(command)
        .env("TOPOLOGY_BIN", BIN)
        .env("TOPOLOGY_DIR", DIR)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "topology.sh {command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn callers() -> PathBuf {
    Path::new(DIR).join("callers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filing_crosses_the_region_and_its_prefecture_node() {
    let Some(topology) = Topology::up() else {
        return;
    };
    let node: SocketAddr = "10.77.0.10:7443".parse().unwrap();
    let public: SocketAddr = "10.77.0.10:8080".parse().unwrap();
    let callers = callers();

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
            task_id: task.task_id,
            approve: true,
            ..Default::default()
        })
        .await
        .unwrap();
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
