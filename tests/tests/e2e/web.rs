//! gRPC-Web over HTTP/1.1 on the public listener, as a browser sends it.

use std::sync::Arc;

use creditmesh_proto::complaints::v1::{SubmitComplaintResponse, TrackComplaintRequest};
use creditmesh_tests::{Engine, TestMesh};
use prost::Message;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

crate::on_both_engines!(grpc_web_reaches_public_methods);

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
