//! The register desk (Art. 10, 15-18): the log's signed head and the witnesses that cosigned
//! it; an agency's notices, each corrected by a new notice or erased by a decision (its words
//! gone, its leaf still proving it was there).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use creditmesh_proto::disclosure::v1::{
    EraseNoticeRequest, GetRegisterHeadRequest, ListNoticesRequest, NoticeKind,
    PublishCorrectionRequest,
};
use http::StatusCode;
use serde::Deserialize;

use super::supervision::Form;
use super::{Desk, Frame, after_write, field, form_pairs, request_id, shown};
use crate::Lang;

pub struct NoticeView {
    pub sequence: i64,
    pub kind: String,
    pub published: String,
    pub text: String,
    pub erased: String,
    pub correct: Form,
    pub erase: Form,
}

#[derive(Template)]
#[template(path = "console/register.html")]
struct RegisterPage {
    f: Frame,
    size: i64,
    root: String,
    checkpoint: String,
    signers: Vec<String>,
    cosignatures: i32,
    uscc: String,
    notices: Vec<NoticeView>,
    errors: Vec<String>,
}

#[derive(Deserialize)]
pub struct RegisterQuery {
    #[serde(default)]
    uscc: String,
}

/// The names of those who signed the checkpoint (the log, then its witnesses), from its
/// signature lines ("— name signature").
fn signers(checkpoint: &str) -> Vec<String> {
    checkpoint
        .lines()
        .filter_map(|l| l.strip_prefix("— "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

async fn register_page(
    desk: &mut Desk,
    uscc: &str,
    errors: Vec<String>,
) -> Result<RegisterPage, tonic::Status> {
    let head = desk
        .register
        .get_register_head(GetRegisterHeadRequest {})
        .await?
        .into_inner();
    let f = Frame::new("公示 · The register");
    let notices = if uscc.is_empty() {
        Vec::new()
    } else {
        desk.register
            .list_notices(ListNoticesRequest {
                uscc: uscc.to_owned(),
                page_size: 100,
                ..Default::default()
            })
            .await?
            .into_inner()
            .notices
    };
    let q: String = form_urlencoded::byte_serialize(uscc.as_bytes()).collect();
    Ok(RegisterPage {
        size: head.size,
        root: head.root_hash,
        signers: signers(&head.checkpoint),
        checkpoint: head.checkpoint,
        cosignatures: head.cosignatures,
        uscc: uscc.to_owned(),
        notices: notices
            .into_iter()
            .map(|n| {
                let kind = NoticeKind::try_from(n.kind).unwrap_or_default();
                NoticeView {
                    sequence: n.sequence,
                    kind: format!("{} · {}", Lang::Zh.notice(kind), Lang::En.notice(kind)),
                    published: n
                        .published_at
                        .as_ref()
                        .map(|t| crate::page::cst_minute(t.seconds))
                        .unwrap_or_default(),
                    text: n.text,
                    erased: if n.erased {
                        format!("{}：{}", n.erased_by, n.erasure_reason)
                    } else {
                        String::new()
                    },
                    correct: Form {
                        action: f.action(&format!("/register/corrections?uscc={q}")),
                        request_id: request_id(),
                    },
                    erase: Form {
                        action: f.action(&format!("/register/erasures?uscc={q}")),
                        request_id: request_id(),
                    },
                }
            })
            .collect(),
        errors,
        f,
    })
}

pub async fn register(State(mut desk): State<Desk>, Query(q): Query<RegisterQuery>) -> Response {
    shown(
        register_page(&mut desk, q.uscc.trim(), Vec::new()).await,
        StatusCode::OK,
    )
}

async fn answered(desk: &mut Desk, uscc: &str, outcome: Result<(), tonic::Status>) -> Response {
    after_write(
        outcome.map(|()| String::new()),
        |_| {
            let q: String = form_urlencoded::byte_serialize(uscc.as_bytes()).collect();
            format!("/register?uscc={q}")
        },
        |errors| register_page(desk, uscc, errors),
    )
    .await
}

/// Publishes a correction of a notice: a new notice, the old one left as it was.
pub async fn correct(
    State(mut desk): State<Desk>,
    Query(q): Query<RegisterQuery>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let outcome = desk
        .register
        .publish_correction(PublishCorrectionRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            uscc: q.uscc.clone(),
            corrects_sequence: field(&pairs, "sequence").parse().unwrap_or(-1),
            text: field(&pairs, "text").trim().to_owned(),
        })
        .await
        .map(|_| ());
    answered(&mut desk, &q.uscc, outcome).await
}

/// Erases a notice's words by a decision, which the register shows in their place.
pub async fn erase(
    State(mut desk): State<Desk>,
    Query(q): Query<RegisterQuery>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let outcome = desk
        .register
        .erase_notice(EraseNoticeRequest {
            request_id: field(&pairs, "request_id").to_owned(),
            sequence: field(&pairs, "sequence").parse().unwrap_or(-1),
            reason: field(&pairs, "reason").trim().to_owned(),
            republish_masked: field(&pairs, "republish_masked") == "yes",
        })
        .await
        .map(|_| ());
    answered(&mut desk, &q.uscc, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_and_each_witness_that_signed_are_named() {
        let checkpoint = "creditmesh.xinjiang/register\n4\nq0Zv2dQ3Jx8=\n\n\
                          — creditmesh.xinjiang/register AbCdEf==\n\
                          — witness.kashgar/w1 GhIjKl==\n";
        assert_eq!(
            signers(checkpoint),
            ["creditmesh.xinjiang/register", "witness.kashgar/w1"]
        );
        assert!(signers("no signature lines\n").is_empty());
    }
}
