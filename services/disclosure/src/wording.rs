//! The register's words are the Measures' (登记建档, 撤销建档, 注销). Notices signed into the
//! log before that said 备案; the log is append-only, so each gets a correction notice that
//! says it again in the Measures' words — once, by whichever replica claims the job first.

use creditmesh_domain::Error;
use creditmesh_domain::tenant::REGION;
use creditmesh_proto::disclosure::v1::NoticeKind;
use creditmesh_rpc::{CallContext, ServiceStore, Written};
use creditmesh_storage::runs;

use crate::store::{self, NewNotice};

const JOB: &str = "wording-jiandang-1";

/// The phrases notices used, each with the Measures' words; longest first.
const PHRASES: &[(&str, &str)] = &[
    ("信用服务机构备案公示", "信用服务机构登记建档公示"),
    ("备案机关", "建档所在地社会信用主管部门"),
    ("备案日期", "建档日期"),
    ("备案信息变更公示", "建档信息变更公示"),
    ("撤销备案公示", "撤销建档公示"),
    ("已申请注销备案", "已向建档所在地社会信用主管部门申请注销"),
    ("申请注销备案", "申请注销"),
    ("注销备案申请未予同意", "注销申请未予同意"),
    ("已完成注销备案", "已注销"),
    ("注销备案公示", "注销公示"),
];

/// `text` in the Measures' words, or `None` when it holds none of the old phrases. Only the
/// notices' own phrases change: an agency's name that says 备案 stays as it is.
pub fn reworded(text: &str) -> Option<String> {
    let mut out = text.to_owned();
    for (old, new) in PHRASES {
        out = out.replace(old, new);
    }
    (out != text).then_some(out)
}

/// Appends a correction for every notice in the old words; answers how many.
pub async fn correct(store: &ServiceStore, ctx: &CallContext) -> Result<usize, Error> {
    // Once it has run, a start costs one read and leaves no audit line.
    let mut conn = store.db.acquire().await?;
    let done = runs::done(&mut conn, store::JOBS, JOB).await?;
    drop(conn);
    if done {
        return Ok(0);
    }
    let outcome = store
        .write(ctx, "CorrectWording", |mut tx| async move {
            let now = store.now();
            let mut corrected = 0;
            if runs::claim(&mut tx, store::JOBS, JOB, now).await? {
                for (seq, tenant, uscc, text) in store::notices_saying(&mut tx, "备案").await? {
                    let Some(words) = reworded(&text) else {
                        continue;
                    };
                    store::append_notice(
                        &mut tx,
                        &NewNotice {
                            tenant: &tenant,
                            uscc: &uscc,
                            kind: NoticeKind::Correction,
                            published_at: now,
                            text: &format!(
                                "用语更正：第 {seq} 号公告依《办法》用语更正为：{words}"
                            ),
                            corrects: Some(seq as u64),
                            record: None,
                        },
                    )
                    .await?;
                    corrected += 1;
                }
                let summary = format!("{corrected} notices corrected");
                runs::summarize(&mut tx, store::JOBS, JOB, &summary).await?;
            }
            Ok((
                tx,
                Written {
                    value: corrected,
                    tenant: REGION.to_string(),
                },
            ))
        })
        .await?;
    if outcome > 0 {
        tracing::info!(corrected = outcome, "notices in the old words corrected");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::reworded;

    #[test]
    fn only_the_notices_own_phrases_change() {
        assert_eq!(
            reworded("信用服务机构备案公示：甲（统一社会信用代码 X），备案机关 653100，备案日期 2026-01-05。")
                .unwrap(),
            "信用服务机构登记建档公示：甲（统一社会信用代码 X），建档所在地社会信用主管部门 653100，建档日期 2026-01-05。"
        );
        assert_eq!(
            reworded("申请注销备案：甲已申请注销备案，不再作为在册机构公示。").unwrap(),
            "申请注销：甲已向建档所在地社会信用主管部门申请注销，不再作为在册机构公示。"
        );
        assert_eq!(
            reworded("注销备案公示：甲已完成注销备案。").unwrap(),
            "注销公示：甲已注销。"
        );
        assert_eq!(reworded("建档信息变更公示：备案咨询有限公司"), None);
    }
}
