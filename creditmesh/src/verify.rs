//! `creditmesh verify`: checks the register's answers offline against the log's verifier key,
//! or follows a register and reports the first inconsistency.
//!
//! Offline, each file is an answer as a stock gRPC client prints it (protobuf JSON, as
//! `grpcurl` writes): `GetNoticeProof` (the notice is in the signed tree), `GetConsistencyProof`
//! (the newer tree extends the older), `GetRegisterHead`, or a signed checkpoint note itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use creditmesh_disclosure::verify;
use creditmesh_proto::disclosure::v1::disclosure_service_client::DisclosureServiceClient;
use creditmesh_proto::disclosure::v1::{GetConsistencyProofRequest, GetRegisterHeadRequest};
use serde_json::Value;
use tlog_tiles::Checkpoint;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A field of a protobuf JSON answer, by its JSON name or its proto name.
fn field<'a>(v: &'a Value, json: &str, proto: &str) -> Option<&'a Value> {
    v.get(json).or_else(|| v.get(proto))
}

fn text(v: &Value, json: &str, proto: &str) -> String {
    field(v, json, proto)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An int64 (a string in protobuf JSON, a number from some printers; absent means 0).
fn int(v: &Value, json: &str, proto: &str) -> Result<u64> {
    match field(v, json, proto) {
        None => Ok(0),
        Some(Value::String(s)) => s.parse().with_context(|| format!("{json}: {s:?}")),
        Some(Value::Number(n)) => n.as_u64().with_context(|| format!("{json}: {n}")),
        Some(other) => bail!("{json}: not an integer: {other}"),
    }
}

fn bytes(v: &Value, json: &str, proto: &str) -> Result<Vec<u8>> {
    let s = text(v, json, proto);
    STANDARD
        .decode(s.as_bytes())
        .with_context(|| format!("{json}: not base64"))
}

fn proof(v: &Value) -> Result<Vec<Vec<u8>>> {
    match v.get("proof") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let s = h
                    .as_str()
                    .with_context(|| format!("proof[{i}]: not a string"))?;
                STANDARD
                    .decode(s)
                    .with_context(|| format!("proof[{i}]: not base64"))
            })
            .collect(),
        Some(other) => bail!("proof: not a list: {other}"),
    }
}

/// Whom a checkpoint must be signed by: one of the log's keys, and a quorum of witnesses.
pub struct Trust {
    /// The log's verifier keys, one per line.
    pub vkey: String,
    pub witnesses: Vec<creditmesh_disclosure::cosign::CosignerVerifier>,
    pub required: usize,
}

impl Trust {
    /// The log's keys and the witness keys in the files given; `required` defaults to all of
    /// the witnesses.
    pub fn load(
        keys: &[PathBuf],
        witness_keys: &[PathBuf],
        required: Option<usize>,
    ) -> Result<Self> {
        let witnesses = witness_keys
            .iter()
            .map(|f| {
                creditmesh_disclosure::cosign::CosignerVerifier::parse(&read_vkey(f)?)
                    .map_err(|e| anyhow::anyhow!("witness key {}: {e}", f.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let required = required.unwrap_or(witnesses.len());
        if required > witnesses.len() {
            bail!(
                "--cosignatures {required} asks for more witnesses than the {} keys given",
                witnesses.len()
            );
        }
        let vkey = keys
            .iter()
            .map(|f| read_vkey(f))
            .collect::<Result<Vec<_>>>()?
            .join("\n");
        verify::verifiers(&vkey).map_err(|e| anyhow::anyhow!("--key: {e}"))?;
        Ok(Self {
            vkey,
            witnesses,
            required,
        })
    }

    /// Trusts the log's key alone.
    pub fn log_only(vkey: &str) -> Self {
        Self {
            vkey: vkey.to_owned(),
            witnesses: Vec::new(),
            required: 0,
        }
    }
}

fn signed(note: &str, trust: &Trust) -> Result<Checkpoint> {
    let c = verify::checkpoint(note, &trust.vkey).map_err(anyhow::Error::msg)?;
    let cosigned: Vec<&str> = trust
        .witnesses
        .iter()
        .filter(|w| w.verify(note).is_ok())
        .map(|w| w.name())
        .collect();
    if cosigned.len() < trust.required {
        bail!(
            "the checkpoint of {} notices carries {} of the {} witness cosignatures required{}",
            c.size(),
            cosigned.len(),
            trust.required,
            if cosigned.is_empty() {
                String::new()
            } else {
                format!(" ({})", cosigned.join(", "))
            }
        );
    }
    Ok(c)
}

/// Checks one answer; says what it proved.
pub fn check_answer(answer: &str, trust: &Trust) -> Result<String> {
    let Ok(v) = serde_json::from_str::<Value>(answer) else {
        let c = signed(answer, trust)?;
        return Ok(format!(
            "checkpoint of {} notices signed by {}",
            c.size(),
            c.origin()
        ));
    };
    if let Some(notice) = v.get("notice") {
        let c = signed(&text(&v, "checkpoint", "checkpoint"), trust)?;
        let sequence = int(notice, "sequence", "sequence")?;
        let tree_size = int(&v, "treeSize", "tree_size")?;
        if tree_size != c.size() {
            bail!(
                "the answer names a tree of {tree_size} notices, its checkpoint one of {}",
                c.size()
            );
        }
        let salt = bytes(notice, "salt", "salt")?;
        let content = bytes(notice, "content", "content")?;
        let claimed = text(notice, "leafHash", "leaf_hash");
        if salt.is_empty() && content.is_empty() {
            // Erased: its content is gone by a decision, its leaf still proves its place.
            let leaf = verify::parse_leaf_hash(&claimed).map_err(anyhow::Error::msg)?;
            verify::leaf_inclusion(&c, sequence, leaf, &proof(&v)?).map_err(anyhow::Error::msg)?;
            return Ok(format!(
                "notice {sequence} (erased by {}; its leaf) is in the tree of {} notices signed by {}",
                text(notice, "erasedBy", "erased_by"),
                c.size(),
                c.origin()
            ));
        }
        let leaf = creditmesh_disclosure::log::leaf_hash(&salt, &content);
        if !salt.is_empty() && !claimed.is_empty() && hex::encode(leaf.0) != claimed {
            bail!("notice {sequence}: its leaf hash is not the hash of its salt and content");
        }
        verify::inclusion(&c, sequence, &salt, &content, &proof(&v)?)
            .map_err(anyhow::Error::msg)?;
        return Ok(format!(
            "notice {sequence} is in the tree of {} notices signed by {}",
            c.size(),
            c.origin()
        ));
    }
    if v.get("fromCheckpoint").is_some() || v.get("from_checkpoint").is_some() {
        let older = signed(&text(&v, "fromCheckpoint", "from_checkpoint"), trust)?;
        let newer = signed(&text(&v, "toCheckpoint", "to_checkpoint"), trust)?;
        verify::consistency(&older, &newer, &proof(&v)?).map_err(anyhow::Error::msg)?;
        return Ok(format!(
            "the tree of {} notices extends the tree of {}",
            newer.size(),
            older.size()
        ));
    }
    if v.get("checkpoint").is_some() {
        let c = signed(&text(&v, "checkpoint", "checkpoint"), trust)?;
        return Ok(format!(
            "checkpoint of {} notices signed by {}",
            c.size(),
            c.origin()
        ));
    }
    bail!("not an answer of the register: no notice, checkpoint or consistency proof")
}

pub fn read_vkey(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("verifier key {}", path.display()))?
        .trim()
        .to_owned())
}

/// Checks every file; stops at the first that fails, naming it.
pub fn files(trust: &Trust, files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        bail!("nothing to verify: give answers of the register as files, or --follow");
    }
    for f in files {
        let answer =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        match check_answer(&answer, trust) {
            Ok(what) => println!("valid: {}: {what}", f.display()),
            Err(e) => bail!("invalid: {}: {e:#}", f.display()),
        }
    }
    Ok(())
}

/// The checkpoint note in `file` (as a witness holds it, or as saved from an earlier head),
/// its signatures checked.
pub fn checkpoint_file(file: &Path, trust: &Trust) -> Result<Checkpoint> {
    let note =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    signed(&note, trust).with_context(|| format!("{}", file.display()))
}

/// Follows the register at `url` (its public listener), checking every new checkpoint's
/// signature and that it extends the last one seen — from the start, `since` when given (a
/// register restored from a backup must extend what its witnesses hold); returns at the first
/// inconsistency.
pub async fn follow(
    trust: &Trust,
    url: &str,
    ca: &Path,
    domain: &str,
    interval: Duration,
    since: Option<Checkpoint>,
) -> Result<()> {
    let pem = std::fs::read_to_string(ca).with_context(|| format!("CA {}", ca.display()))?;
    let tls = ClientTlsConfig::new()
        .domain_name(domain.to_owned())
        .ca_certificate(Certificate::from_pem(pem));
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(10))
        .tls_config(tls)?
        .connect_lazy();
    let mut register = DisclosureServiceClient::new(channel);
    let mut first = true;
    let mut last = since;
    loop {
        match register.get_register_head(GetRegisterHeadRequest {}).await {
            Err(e) => eprintln!("register unreachable: {}", e.message()),
            Ok(head) => {
                let head = head.into_inner();
                let c = signed(&head.checkpoint, trust)
                    .context("inconsistent: the newest checkpoint")?;
                match &last {
                    Some(old) if c.size() < old.size() => bail!(
                        "inconsistent: the register shrank from {} to {} notices",
                        old.size(),
                        c.size()
                    ),
                    Some(old) if c.size() == old.size() && c.hash() != old.hash() => bail!(
                        "inconsistent: two checkpoints of {} notices with different roots (a fork)",
                        c.size()
                    ),
                    Some(old) if c.size() > old.size() => {
                        let p = register
                            .get_consistency_proof(GetConsistencyProofRequest {
                                from_size: old.size() as i64,
                                to_size: c.size() as i64,
                            })
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "inconsistent: no consistency proof: {}",
                                    e.message()
                                )
                            })?
                            .into_inner();
                        verify::consistency(old, &c, &p.proof)
                            .map_err(|e| anyhow::anyhow!("inconsistent: {e}"))?;
                        println!(
                            "consistent: {} notices, root {}, extends {}",
                            c.size(),
                            c.hash(),
                            old.size()
                        );
                    }
                    Some(_) if first => println!(
                        "consistent: {} notices, root {}, the checkpoint given",
                        c.size(),
                        c.hash()
                    ),
                    Some(_) => {}
                    None => println!("checkpoint: {} notices, root {}", c.size(), c.hash()),
                }
                first = false;
                last = Some(c);
            }
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_that_is_not_the_registers_is_named() {
        let trust = Trust::log_only("x+00000000+AA==");
        let e = check_answer("{\"other\": 1}", &trust).unwrap_err();
        assert!(
            e.to_string().contains("not an answer of the register"),
            "{e}"
        );
        let e = check_answer("not a note", &trust).unwrap_err();
        assert!(e.to_string().contains("verifier key"), "{e}");
    }

    #[test]
    fn integers_come_as_strings_numbers_or_not_at_all() {
        let v: Value = serde_json::from_str(r#"{"a": "12", "b": 7}"#).unwrap();
        assert_eq!(int(&v, "a", "a").unwrap(), 12);
        assert_eq!(int(&v, "b", "b").unwrap(), 7);
        assert_eq!(int(&v, "c", "c").unwrap(), 0);
    }
}
