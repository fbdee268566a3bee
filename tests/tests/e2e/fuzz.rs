//! Arbitrary requests to every method of the contracts, each from a caller the policy lets
//! in, so that every request validator sees them: well-formed messages with hostile field
//! values (empty, huge, control characters, other scripts, impossible dates and codes, unknown
//! enum values, deep nesting) and malformed bytes. None may be answered `INTERNAL`, `UNKNOWN`,
//! `DATA_LOSS`, nor `UNAVAILABLE` for any reason but a busy database (an answer too large for
//! its headers once broke the backend's stream); a failure names the method, the seed and the
//! request's bytes.

use std::collections::HashMap;

use bytes::{Buf, BufMut};
use creditmesh_gateway::policy::{POLICY, Role};
use creditmesh_tests::{Engine, TestMesh};
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

crate::on_both_engines!(arbitrary_requests_are_never_answered_with_an_internal_error);

/// Requests per method and engine.
const PER_METHOD: u64 = 64;

async fn arbitrary_requests_are_never_answered_with_an_internal_error(engine: Engine) {
    let Some(t) = TestMesh::start(engine).await else {
        return;
    };
    let pool = Pool::load();
    let mut channels: HashMap<&str, Channel> = HashMap::new();
    for name in [
        "agency",
        "regulator-650100",
        "regulator-650000",
        "department",
    ] {
        channels.insert(name, t.node(name).await);
    }
    channels.insert("public", t.public().await);
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut codes: HashMap<Code, u64> = HashMap::new();
    for (method, roles) in POLICY {
        let Some(role) = roles.first() else {
            continue; // reached service to service only
        };
        let caller = match role {
            Role::Agency => "agency",
            Role::PrefectureRegulator => "regulator-650100",
            Role::RegionalRegulator => "regulator-650000",
            Role::Department => "department",
            Role::Public => "public",
            Role::Service => continue,
        };
        let m = pool.method(method);
        for i in 0..PER_METHOD {
            let seed = fnv(method) ^ i;
            let mut rng = Rng::new(seed);
            let mut bytes = pool.message(&mut rng, &m.input, 0);
            if rng.below(5) == 0 {
                malform(&mut rng, &mut bytes);
            }
            let answer = call(channels[caller].clone(), method, m, bytes.clone()).await;
            calls += 1;
            *codes
                .entry(answer.as_ref().err().map_or(Code::Ok, |s| s.code()))
                .or_insert(0) += 1;
            // A busy database is the one honest reason to be unavailable here.
            let broken = |s: &tonic::Status| match s.code() {
                Code::Internal | Code::Unknown | Code::DataLoss => true,
                Code::Unavailable => !s.message().starts_with("storage is busy"),
                _ => false,
            };
            if let Err(status) = answer
                && broken(&status)
            {
                failures.push(format!(
                    "{method} seed {seed}: {:?} {:?}; request {}",
                    status.code(),
                    status.message(),
                    hex(&bytes)
                ));
            }
        }
    }
    assert!(calls > 40 * PER_METHOD, "only {calls} calls were made");
    // The requests reached the validators: most are refused as invalid, and not by the edge.
    let invalid = codes.get(&Code::InvalidArgument).copied().unwrap_or(0);
    assert!(invalid > calls / 3, "{codes:?}");
    assert_eq!(codes.get(&Code::PermissionDenied), None, "{codes:?}");
    eprintln!("answers to {calls} arbitrary requests: {codes:?}");
    assert!(
        failures.is_empty(),
        "{} of {calls} arbitrary requests answered with an internal error:\n{}",
        failures.len(),
        failures.join("\n")
    );
    t.stop().await;
}

async fn call(
    channel: Channel,
    method: &str,
    m: &Method,
    bytes: Vec<u8>,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = format!("/{method}").parse().unwrap();
    let deadline = std::time::Duration::from_secs(20);
    let answer = async {
        match (m.client_streaming, m.server_streaming) {
            (false, false) => grpc
                .unary(tonic::Request::new(bytes), path, Raw)
                .await
                .map(|_| ()),
            (true, false) => grpc
                .client_streaming(
                    tonic::Request::new(futures::stream::iter([bytes.clone(), bytes])),
                    path,
                    Raw,
                )
                .await
                .map(|_| ()),
            (false, true) => {
                let mut s = grpc
                    .server_streaming(tonic::Request::new(bytes), path, Raw)
                    .await?
                    .into_inner();
                s.message().await.map(|_| ())
            }
            (true, true) => {
                let mut s = grpc
                    .streaming(
                        tonic::Request::new(futures::stream::iter([bytes])),
                        path,
                        Raw,
                    )
                    .await?
                    .into_inner();
                s.message().await.map(|_| ())
            }
        }
    };
    tokio::time::timeout(deadline, answer)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::unknown(format!("no answer in {deadline:?}"))))
}

/// Damages an encoded message: truncates it, flips a byte, or appends a field with a wire
/// type its number does not have.
fn malform(rng: &mut Rng, bytes: &mut Vec<u8>) {
    match rng.below(3) {
        0 if !bytes.is_empty() => {
            let keep = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(keep);
        }
        1 if !bytes.is_empty() => {
            let at = rng.below(bytes.len() as u64) as usize;
            bytes[at] ^= 1 << rng.below(8);
        }
        _ => bytes.extend_from_slice(&[0x0d, 0xff, 0xff]),
    }
}

struct Method {
    input: String,
    client_streaming: bool,
    server_streaming: bool,
}

/// The message types of the contracts, by fully qualified name.
struct Pool {
    messages: HashMap<String, DescriptorProto>,
    methods: HashMap<String, Method>,
}

impl Pool {
    fn load() -> Self {
        let fds = FileDescriptorSet::decode(creditmesh_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut messages = HashMap::new();
        let mut methods = HashMap::new();
        fn walk(prefix: &str, d: &DescriptorProto, out: &mut HashMap<String, DescriptorProto>) {
            let name = format!("{prefix}.{}", d.name());
            for nested in &d.nested_type {
                walk(&name, nested, out);
            }
            out.insert(name, d.clone());
        }
        for file in &fds.file {
            let package = format!(".{}", file.package());
            for d in &file.message_type {
                walk(&package, d, &mut messages);
            }
            for s in &file.service {
                for m in &s.method {
                    methods.insert(
                        format!("{}.{}/{}", file.package(), s.name(), m.name()),
                        Method {
                            input: m.input_type().to_owned(),
                            client_streaming: m.client_streaming(),
                            server_streaming: m.server_streaming(),
                        },
                    );
                }
            }
        }
        Self { messages, methods }
    }

    fn method(&self, name: &str) -> &Method {
        self.methods
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the contracts"))
    }

    /// A random, well-formed encoding of the message type `name`.
    fn message(&self, rng: &mut Rng, name: &str, depth: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(d) = self.messages.get(name) else {
            return out; // a well-known type: left empty
        };
        for f in &d.field {
            if rng.below(10) < 4 {
                continue;
            }
            let n = if f.label() == Label::Repeated {
                rng.below(4)
            } else {
                1
            };
            for _ in 0..n {
                let number = u64::from(f.number() as u32);
                match f.r#type() {
                    Type::Message | Type::Group => {
                        if depth < 4 {
                            let inner = self.message(rng, f.type_name(), depth + 1);
                            len_delimited(&mut out, number, &inner);
                        }
                    }
                    Type::String => len_delimited(&mut out, number, &string(rng)),
                    Type::Bytes => {
                        let b: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                        len_delimited(&mut out, number, &b);
                    }
                    Type::Double | Type::Fixed64 | Type::Sfixed64 => {
                        varint(&mut out, number << 3 | 1);
                        out.put_u64_le(rng.next());
                    }
                    Type::Float | Type::Fixed32 | Type::Sfixed32 => {
                        varint(&mut out, number << 3 | 5);
                        out.put_u32_le(rng.next() as u32);
                    }
                    _ => {
                        varint(&mut out, number << 3);
                        let v = match rng.below(6) {
                            0 => 0,
                            1 => 1,
                            2 => u64::MAX, // -1
                            3 => i32::MAX as u64,
                            4 => rng.below(100),
                            _ => rng.next(),
                        };
                        varint(&mut out, v);
                    }
                }
            }
        }
        out
    }
}

const STRINGS: &[&str] = &[
    "",
    " ",
    "650100",
    "653100",
    "650000",
    "110000",
    "91653101MA78KT005T",
    "91650102MA7XJ0003G",
    "2026-02-29",
    "2024-02-29",
    "2026-13-01",
    "0000-00-00",
    "9999-12-31",
    "1899-12-31",
    "-2026-01-01",
    "' OR '1'='1",
    "\0",
    "\u{202e}",
    "新疆维吾尔自治区乌鲁木齐市",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00",
    "-1",
    "NaN",
    "spiffe://creditmesh.xinjiang/regulator/650000",
    "application/pdf",
    "0190b1f0-7d3c-7cc1-8d1e-5f1c2b3a4d5e",
];

fn string(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 | 1 => STRINGS[rng.below(STRINGS.len() as u64) as usize]
            .as_bytes()
            .to_vec(),
        2 => (0..rng.below(40))
            .map(|_| b' ' + rng.below(95) as u8)
            .collect(),
        3 => "字".repeat(rng.below(3000) as usize).into_bytes(),
        4 => vec![b'x'; 20_000],
        _ => (0..rng.below(40))
            .flat_map(|_| {
                char::from_u32(rng.below(0x2_0000) as u32)
                    .unwrap_or('\u{fffd}')
                    .to_string()
                    .into_bytes()
            })
            .collect(),
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_delimited(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn hex(b: &[u8]) -> String {
    let shown: String = b.iter().take(256).map(|x| format!("{x:02x}")).collect();
    if b.len() > 256 {
        format!("{shown}… ({} bytes)", b.len())
    } else {
        shown
    }
}

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Messages as bytes, unencoded and undecoded.
#[derive(Clone, Copy)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}
