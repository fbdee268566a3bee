//! What a decision on a review task may cite: each kind of task takes the grounds of its own
//! article (Art. 9 for a filing, Art. 12 for a change, Art. 18 for a deregistration), stored
//! under the project's own names.

use creditmesh_domain::{Error, Violations};
use creditmesh_proto::review::v1::{
    ChangeRefusalGround, DecideReviewTaskRequest, DeregistrationRefusalGround, RefusalGround,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filing,
    Change,
    Deregistration,
    Supervision,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Filing => "filing",
            Self::Change => "change",
            Self::Deregistration => "deregistration",
            Self::Supervision => "supervision",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "filing" => Self::Filing,
            "change" => Self::Change,
            "deregistration" => Self::Deregistration,
            "supervision" => Self::Supervision,
            _ => return None,
        })
    }
}

/// A decision's grounds as parsed from the request, before the task's kind is known.
#[derive(Debug, Default)]
pub struct Decision {
    approve: bool,
    filing: Vec<&'static str>,
    change: Vec<&'static str>,
    deregistration: Vec<&'static str>,
}

fn filing_ground(g: i32) -> Option<&'static str> {
    Some(match RefusalGround::try_from(g).ok()? {
        RefusalGround::NoCreditServiceInScope => "no_credit_service_in_scope",
        RefusalGround::SevereDishonesty => "severe_dishonesty",
        RefusalGround::FalseInformation => "false_information",
        RefusalGround::OtherSeriousViolation => "other_serious_violation",
        RefusalGround::Unspecified => return None,
    })
}

fn change_ground(g: i32) -> Option<&'static str> {
    Some(match ChangeRefusalGround::try_from(g).ok()? {
        ChangeRefusalGround::IncompleteMaterials => "incomplete_materials",
        ChangeRefusalGround::FalseInformation => "false_information",
        ChangeRefusalGround::ConditionsNotMet => "conditions_not_met",
        ChangeRefusalGround::SevereDishonesty => "severe_dishonesty",
        ChangeRefusalGround::Unspecified => return None,
    })
}

// The deprecated ground is matched so that it is refused by name.
#[allow(deprecated)]
fn deregistration_ground(g: i32) -> Option<&'static str> {
    Some(match DeregistrationRefusalGround::try_from(g).ok()? {
        // Art. 18 gives no such ground: the application itself says the agency stops.
        DeregistrationRefusalGround::StillOperating => return None,
        DeregistrationRefusalGround::DisposalPlanInadequate => "disposal_plan_inadequate",
        DeregistrationRefusalGround::IncompleteMaterials => "incomplete_materials",
        DeregistrationRefusalGround::Unspecified => return None,
    })
}

/// Checks what can be checked without the task: known grounds, none on an approval, a reason
/// on a refusal.
pub fn parse(v: &mut Violations, req: &DecideReviewTaskRequest) -> Decision {
    let mut list = |field: &str, values: &[i32], name: fn(i32) -> Option<&'static str>, article| {
        let mut names = Vec::new();
        for (i, g) in values.iter().enumerate() {
            match name(*g) {
                Some(n) => names.push(n),
                None => v.add(
                    format!("{field}[{i}]"),
                    format!("is not a ground of {article}"),
                ),
            }
        }
        if req.approve && !values.is_empty() {
            v.add(field, "an approval names no refusal grounds");
        }
        names
    };
    let decision = Decision {
        approve: req.approve,
        filing: list("grounds", &req.grounds, filing_ground, "Art. 9"),
        change: list(
            "change_grounds",
            &req.change_grounds,
            change_ground,
            "Art. 12",
        ),
        deregistration: list(
            "deregistration_grounds",
            &req.deregistration_grounds,
            deregistration_ground,
            "Art. 18",
        ),
    };
    if !req.approve {
        v.require("reason", &req.reason);
    }
    decision
}

impl Decision {
    /// The grounds a decision on a task of `kind` cites: on a refusal, at least one of that
    /// kind's article and none of another's. A supervision task is closed with a reason alone.
    pub fn grounds_for(&self, kind: Kind, reason: &str) -> Result<Vec<&'static str>, Error> {
        let lists = [
            ("grounds", Kind::Filing, &self.filing, "Art. 9"),
            ("change_grounds", Kind::Change, &self.change, "Art. 12"),
            (
                "deregistration_grounds",
                Kind::Deregistration,
                &self.deregistration,
                "Art. 18",
            ),
        ];
        let mut v = Violations::default();
        let mut own = Vec::new();
        for (field, of, names, article) in lists {
            if of == kind {
                if !self.approve && names.is_empty() {
                    v.add(
                        field,
                        format!("a refusal names at least one {article} ground"),
                    );
                }
                own.clone_from(names);
            } else if !names.is_empty() {
                v.add(
                    field,
                    format!("{article} grounds do not apply to a {} task", kind.name()),
                );
            }
        }
        if kind == Kind::Supervision && reason.trim().is_empty() {
            v.add(
                "reason",
                "closing a supervision task says how it was dealt with",
            );
        }
        v.finish()?;
        Ok(own)
    }
}
