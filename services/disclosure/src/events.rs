//! The register projected from filing's events: each `filing.register_changed` masks the
//! record by the versioned policy, replaces what the register shows of the agency, and
//! appends its notice to the log, all in the event's transaction (so an event applied twice
//! — which the sink's inbox already prevents — could not publish twice either).

use creditmesh_domain::{Error, mask};
use creditmesh_proto::disclosure::v1::{AgencyRecord, FeeItem, FiledDocument, NoticeKind};
use creditmesh_proto::events::v1::{Event, RegisterChanged, SpotCheckDrawn};
use creditmesh_rpc::sink::{Applied, EventHandler, decode};
use creditmesh_storage::Tx;

use crate::convert::{notice_kind, status_of};
use crate::store::{self, NewNotice};

pub struct Handler;

#[tonic::async_trait]
impl EventHandler for Handler {
    async fn apply(&self, tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
        if event.r#type == SpotCheckDrawn::TYPE {
            return spot_check_drawn(tx, event).await;
        }
        if event.r#type != RegisterChanged::TYPE {
            return Ok(Applied::Done);
        }
        let e: RegisterChanged = decode(event)?;
        let Some(kind) = notice_kind(&e.notice) else {
            return Ok(Applied::NotApplied(format!(
                "unknown notice {:?}",
                e.notice
            )));
        };
        let at = creditmesh_rpc::sink::occurred_micros(event);
        // A record not yet on the register shows only from its approval on.
        let shown = store::agency_filing(tx, &e.uscc).await?;
        if shown.is_none() && kind != NoticeKind::Published {
            return Ok(Applied::NotApplied(format!(
                "{} notice for {}, which was never published",
                e.notice, e.uscc
            )));
        }
        if kind == NoticeKind::Published && shown.as_deref() == Some(e.filing_id.as_str()) {
            return Ok(Applied::NotApplied(format!(
                "filing {} is on the register already",
                e.filing_id
            )));
        }
        let mut record = masked(&e);
        let text = notice_text(kind, &record, &e);
        let seq = store::append_notice(
            tx,
            &NewNotice {
                tenant: &e.tenant,
                uscc: &e.uscc,
                kind,
                published_at: at,
                text: &text,
                corrects: None,
                record: Some(&record),
            },
        )
        .await?;
        record.register_version = seq as i64 + 1;
        store::put_agency(tx, &e.filing_id, &record, at).await?;
        Ok(Applied::Done)
    }
}

/// A spot-check draw is published whole (Art. 14: 双随机、一公开), so that anyone can draw again
/// with its seed and population digest and compare.
async fn spot_check_drawn(tx: &mut Tx, event: &Event) -> Result<Applied, Error> {
    let e: SpotCheckDrawn = decode(event)?;
    let text = format!(
        "信用服务机构抽查公示：{} 抽查 {} 家（抽取编号 {}，随机种子 {}，名录摘要 {}）：{}。",
        e.tenant,
        e.sampled_usccs.len(),
        e.draw_id,
        e.seed,
        e.population_digest,
        if e.sampled_usccs.is_empty() {
            "无".to_owned()
        } else {
            e.sampled_usccs.join("、")
        }
    );
    store::append_notice(
        tx,
        &NewNotice {
            tenant: &e.tenant,
            uscc: "",
            kind: NoticeKind::SpotCheckDraw,
            published_at: creditmesh_rpc::sink::occurred_micros(event),
            text: &text,
            corrects: None,
            record: None,
        },
    )
    .await?;
    Ok(Applied::Done)
}

/// What the register shows: the facts desensitised by the policy named in the record (Art. 10).
fn masked(e: &RegisterChanged) -> AgencyRecord {
    let facts = e.facts.clone().unwrap_or_default();
    AgencyRecord {
        uscc: e.uscc.clone(),
        agency_name: facts.agency_name,
        tenant: e.tenant.clone(),
        legal_representative: mask::person_name(&facts.legal_representative_name),
        registered_address: mask::address(&facts.registered_address),
        business_scope: mask::text(&facts.business_scope),
        filed_on: e.filed_on.clone(),
        masking_policy_version: mask::POLICY_VERSION.into(),
        status: status_of(&e.status) as i32,
        registered_capital_yuan: facts.registered_capital_yuan,
        professional_staff_count: facts.professional_staff_count,
        reviewing_tenant: e.reviewing_tenant.clone(),
        documents: e
            .documents
            .iter()
            .map(|d| FiledDocument {
                kind: d.kind.clone(),
                sha256: d.sha256.clone(),
                filed_on: d.filed_on.clone(),
            })
            .collect(),
        register_version: 0,
        fee_items: facts
            .fee_items
            .iter()
            .map(|i| FeeItem {
                service_item: mask::text(&i.service_item),
                fee: mask::text(&i.fee),
                basis: mask::text(&i.basis),
                unit: mask::text(&i.unit),
            })
            .collect(),
    }
}

/// A record shown under an older masking policy, masked again under the current one: the
/// free text it shows is masked text, which the current policy leaves as it is but for what
/// the older one let through. `false` when it is current already.
pub fn remasked(r: &mut AgencyRecord) -> bool {
    if r.masking_policy_version == mask::POLICY_VERSION {
        return false;
    }
    r.business_scope = mask::text(&r.business_scope);
    for i in &mut r.fee_items {
        for field in [&mut i.service_item, &mut i.fee, &mut i.basis, &mut i.unit] {
            *field = mask::text(field);
        }
    }
    r.masking_policy_version = mask::POLICY_VERSION.into();
    true
}

/// A revocation's ground in the Measures' words, with its article and its code.
fn revocation_ground(code: &str) -> String {
    let words = match code {
        "severe_dishonesty" => "被列入严重失信主体名单（《办法》第十五条第一项）",
        "refused_rectification" => "违反建档承诺且拒不整改（《办法》第十五条第二项）",
        "unlicensed_credit_reporting" => {
            "未取得合法资质违规开展征信、信用评级业务（《办法》第十五条第三项）"
        }
        "no_annual_report" => "未按时提交年度报告（《办法》第十一条）",
        other => return other.to_owned(),
    };
    format!("{words}［{code}］")
}

/// The notice's words, from masked values only.
fn notice_text(kind: NoticeKind, r: &AgencyRecord, e: &RegisterChanged) -> String {
    let who = format!("{}（统一社会信用代码 {}）", r.agency_name, r.uscc);
    match kind {
        NoticeKind::Published => format!(
            "信用服务机构登记建档公示：{who}，建档所在地社会信用主管部门 {}（{}），建档日期 {}。",
            creditmesh_domain::Tenant::parse(&r.tenant)
                .map(|t| t.authority_name())
                .unwrap_or_default(),
            r.tenant,
            r.filed_on
        ),
        NoticeKind::Changed if e.changed_fields.is_empty() => {
            format!("建档信息变更公示：{who}，建档信息已变更，变更事项不属于公示内容。")
        }
        NoticeKind::Changed => format!(
            "建档信息变更公示：{who}，变更事项：{}。",
            e.changed_fields
                .iter()
                .map(|f| creditmesh_domain::facts::name_zh(f).unwrap_or(f))
                .collect::<Vec<_>>()
                .join("、")
        ),
        NoticeKind::Revoked => format!(
            "撤销建档公示：{who}，撤销依据：{}。",
            revocation_ground(&e.ground)
        ),
        NoticeKind::Deregistering => {
            format!("申请注销：{who}已向建档所在地社会信用主管部门申请注销，不再作为在册机构公示。")
        }
        NoticeKind::DeregistrationRefused => {
            format!("注销申请未予同意：{who}继续在册。")
        }
        NoticeKind::Deregistered => format!("注销公示：{who}已注销，信用网站停止公示其相关信息。"),
        NoticeKind::Correction
        | NoticeKind::Erasure
        | NoticeKind::SpotCheckDraw
        | NoticeKind::Unspecified => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_an_older_policy_is_masked_again_once() {
        let mut r = AgencyRecord {
            business_scope: "信用咨询；专线 133 9204 6178，*******8000".into(),
            masking_policy_version: "xj-mask-1".into(),
            fee_items: vec![FeeItem {
                basis: "咨询 0998-2345678".into(),
                fee: "4500".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(remasked(&mut r));
        assert_eq!(r.business_scope, "信用咨询；专线 *******6178，*******8000");
        assert_eq!(r.fee_items[0].basis, "咨询 *******5678");
        assert_eq!(r.fee_items[0].fee, "4500");
        assert_eq!(r.masking_policy_version, mask::POLICY_VERSION);
        let before = r.clone();
        assert!(!remasked(&mut r));
        assert_eq!(r, before);
    }

    #[test]
    fn a_change_notice_names_what_changed_or_says_nothing_published_did() {
        let r = AgencyRecord {
            agency_name: "示范机构".into(),
            uscc: "91650102MA7XJ0003G".into(),
            ..Default::default()
        };
        let changed = |fields: &[&str]| RegisterChanged {
            changed_fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            ..Default::default()
        };
        assert_eq!(
            notice_text(NoticeKind::Changed, &r, &changed(&["business_scope"])),
            "建档信息变更公示：示范机构（统一社会信用代码 91650102MA7XJ0003G），变更事项：经营范围。"
        );
        assert_eq!(
            notice_text(NoticeKind::Changed, &r, &changed(&[])),
            "建档信息变更公示：示范机构（统一社会信用代码 91650102MA7XJ0003G），建档信息已变更，变更事项不属于公示内容。"
        );
    }
}
