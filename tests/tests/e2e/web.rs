//! gRPC-Web over HTTP/1.1 on the public listener, as a browser sends it.

use std::sync::Arc;

use creditmesh_proto::complaints::v1::{SubmitComplaintResponse, TrackComplaintRequest};
use creditmesh_tests::{Engine, TestMesh};
use prost::Message;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

crate::on_both_engines!(
    grpc_web_reaches_public_methods,
    the_gateway_counts_the_visitor_a_forwarder_names,
);

/// Posts one gRPC-Web call and returns the response head (lowercased) and its body.
async fn post(t: &TestMesh, path: &str, message: Vec<u8>) -> (String, Vec<u8>) {
    let config = creditmesh_tests::public_tls_config(&t.pki_dir, b"http/1.1");
    let tcp = tokio::net::TcpStream::connect(t.mesh.public_addr)
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body).await.unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut body = raw[split..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        b = &b[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Splits a gRPC-Web body into data messages and the trailer block.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut data, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let payload = body[5..5 + len].to_vec();
        if body[0] & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(&payload).to_ascii_lowercase());
        } else {
            data.push(payload);
        }
        body = &body[5 + len..];
    }
    (data, trailers)
}

async fn grpc_web_reaches_public_methods(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let (head, body) = post(
        &t,
        "/creditmesh.complaints.v1.ComplaintService/SubmitComplaint",
        super::complaints::complaint("web-1", "").encode_to_vec(),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let (data, trailers) = frames(&body);
    assert!(trailers.contains("grpc-status:0"), "{trailers:?} {head}");
    let answer = SubmitComplaintResponse::decode(data[0].as_slice()).unwrap();
    assert!(answer.tracking_number.starts_with("TS"));

    let (head, body) = post(
        &t,
        "/creditmesh.complaints.v1.ComplaintService/TrackComplaint",
        TrackComplaintRequest {
            tracking_number: answer.tracking_number,
            access_code: "WRONG".into(),
        }
        .encode_to_vec(),
    )
    .await;
    let (_, trailers) = frames(&body);
    let status_5 = |s: &str| s.contains("grpc-status: 5") || s.contains("grpc-status:5");
    assert!(status_5(&head) || status_5(&trailers), "{head} {trailers}");

    // Bytes that do not decode are the caller's error, never INTERNAL: garbage, a truncated
    // varint, a wrong wire type, invalid UTF-8 in a string field.
    for garbage in [
        vec![0xff, 0xff, 0xff],
        vec![0x0a, 0x80],
        vec![0x08, 0x01],
        vec![0x0a, 0x02, 0xff, 0xfe],
    ] {
        let (head, body) = post(
            &t,
            "/creditmesh.complaints.v1.ComplaintService/SubmitComplaint",
            garbage.clone(),
        )
        .await;
        let (_, trailers) = frames(&body);
        let status_3 = |s: &str| s.contains("grpc-status: 3") || s.contains("grpc-status:3");
        assert!(
            status_3(&head) || status_3(&trailers),
            "{garbage:?}: {head} {trailers}"
        );
    }

    // Methods the policy keeps off the public listener stay off it over gRPC-Web too.
    let (head, body) = post(
        &t,
        "/creditmesh.review.v1.ReviewService/GetCreditFile",
        vec![],
    )
    .await;
    let (_, trailers) = frames(&body);
    let status_7 = |s: &str| s.contains("grpc-status: 7") || s.contains("grpc-status:7");
    assert!(status_7(&head) || status_7(&trailers), "{head} {trailers}");
    t.stop().await;
}

/// A public client that names `visitor` with `token` on every call, as the website does.
async fn forwarding(
    t: &TestMesh,
    visitor: &str,
    token: &str,
) -> creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        impl tonic::service::Interceptor + Clone + use<>,
    >,
> {
    use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
    let visitor: tonic::metadata::MetadataValue<_> = visitor.parse().unwrap();
    let token: tonic::metadata::MetadataValue<_> = token.parse().unwrap();
    ComplaintServiceClient::with_interceptor(t.public().await, move |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert(creditmesh_rpc::FORWARDED_FOR_HEADER, visitor.clone());
        r.metadata_mut()
            .insert(creditmesh_rpc::FORWARDER_HEADER, token.clone());
        Ok(r)
    })
}

fn track() -> TrackComplaintRequest {
    TrackComplaintRequest {
        tracking_number: "TS-NOBODY".into(),
        access_code: "nothing".into(),
    }
}

/// Default gateway limits but one public call per second per address, the rest unrated.
pub fn one_public_call_per_second() -> creditmesh_gateway::limits::LimitsConfig {
    use creditmesh_gateway::limits::{LimitsConfig, RateLimits};
    LimitsConfig {
        rate_per_second: RateLimits {
            public: 1,
            ..RateLimits::off()
        },
        ..LimitsConfig::default()
    }
}

/// With the forwarder token from the PKI directory, the gateway counts a public call against
/// the visitor it names (rate, places, and the address the backend sees); without it, against
/// the connection's own address, whatever address the call names.
async fn the_gateway_counts_the_visitor_a_forwarder_names(engine: Engine) {
    let Some(t) = TestMesh::start_with(engine, one_public_call_per_second()).await else {
        return;
    };
    let token = creditmesh_pki::read_forwarder_token(&t.pki_dir)
        .unwrap()
        .expect("the dev PKI makes a forwarder token");
    let refused = |r: Result<tonic::Response<_>, tonic::Status>| matches!(r, Err(e) if e.code() == tonic::Code::ResourceExhausted);

    // One visitor's second call in the second is over its rate; another visitor's is not.
    let mut first = forwarding(&t, "203.0.113.1", &token).await;
    assert!(!refused(first.track_complaint(track()).await));
    assert!(refused(first.track_complaint(track()).await));
    let mut second = forwarding(&t, "203.0.113.2", &token).await;
    assert!(!refused(second.track_complaint(track()).await));

    // Without the token the named address counts for nothing: the caller's own does.
    let mut liar = forwarding(&t, "203.0.113.3", "0".repeat(64).as_str()).await;
    assert!(!refused(liar.track_complaint(track()).await));
    assert!(
        refused(liar.track_complaint(track()).await),
        "counted as the connection's address"
    );
    let mut third = forwarding(&t, "203.0.113.4", &token).await;
    assert!(!refused(third.track_complaint(track()).await));

    // The backend keeps the visitor's address (its per-address upload cap counts it).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    use creditmesh_proto::complaints::v1::upload_evidence_request::Part;
    use creditmesh_proto::complaints::v1::{EvidenceMetadata, UploadEvidenceRequest};
    let pdf = super::filing::pdf("forwarded evidence");
    second
        .upload_evidence(futures::stream::iter(vec![
            UploadEvidenceRequest {
                part: Some(Part::Metadata(EvidenceMetadata {
                    file_name: "receipt.pdf".into(),
                    size_bytes: pdf.len() as i64,
                })),
            },
            UploadEvidenceRequest {
                part: Some(Part::Chunk(pdf)),
            },
        ]))
        .await
        .unwrap();
    assert_eq!(
        creditmesh_tests::scalar_i64(
            &t.db_url("complaints"),
            "SELECT COUNT(*) FROM complaints_upload WHERE address = '203.0.113.2'"
        )
        .await,
        1
    );
    t.stop().await;
}
