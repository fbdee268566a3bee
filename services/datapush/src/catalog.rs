//! The catalog of what agencies may push: each category's subjects, retention and the fields
//! of its JSON content, checked field by field.

use std::collections::HashMap;

use crate::config::CategoryConfig;
use crate::config::FieldConfig;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subjects {
    Person,
    Organisation,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Date,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub kind: FieldType,
    pub required: bool,
    pub label_zh: String,
    pub label_en: String,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub code: String,
    pub description: String,
    pub name_zh: String,
    pub name_en: String,
    pub retention_months: u32,
    /// The rule or policy the retention comes from, as the subject is shown it.
    pub retention_basis: String,
    pub retention_basis_zh: String,
    pub personal_data: bool,
    pub subjects: Subjects,
    pub fields: Vec<Field>,
}

/// The largest content accepted, in bytes of JSON.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

impl Category {
    /// Checks `content` (JSON) against the fields: an object, every required field present,
    /// every field of its type, no field the category does not name. Each problem names its
    /// field as `content.NAME`. Answers the content in one canonical form (keys ordered, no
    /// white space), so that the same content written otherwise is the same.
    pub fn check(&self, content: &[u8]) -> Result<Vec<u8>, Vec<(String, String)>> {
        if content.len() > MAX_CONTENT_BYTES {
            return Err(vec![(
                "content".into(),
                format!("is {} bytes, at most {MAX_CONTENT_BYTES}", content.len()),
            )]);
        }
        let value: Value = serde_json::from_slice(content)
            .map_err(|e| vec![("content".to_owned(), format!("is not JSON: {e}"))])?;
        let Value::Object(map) = value else {
            return Err(vec![("content".into(), "must be a JSON object".into())]);
        };
        let mut problems = Vec::new();
        for f in &self.fields {
            let field = || format!("content.{}", f.name);
            match map.get(&f.name) {
                None | Some(Value::Null) if f.required => {
                    problems.push((field(), "is required".into()))
                }
                None | Some(Value::Null) => {}
                Some(v) => {
                    if let Err(why) = f.kind.check(v) {
                        problems.push((field(), why));
                    }
                }
            }
        }
        for key in map.keys() {
            if !self.fields.iter().any(|f| &f.name == key) {
                problems.push((
                    format!("content.{key}"),
                    format!("is not a field of category {}", self.code),
                ));
            }
        }
        if problems.is_empty() {
            serde_json::to_vec(&Value::Object(map))
                .map_err(|e| vec![("content".to_owned(), e.to_string())])
        } else {
            Err(problems)
        }
    }
}

impl FieldType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "date" => Self::Date,
            _ => return None,
        })
    }

    fn check(self, v: &Value) -> Result<(), String> {
        let ok = match self {
            Self::String => v.as_str().is_some_and(|s| s.chars().count() <= 2000),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Number => v.is_number(),
            Self::Boolean => v.is_boolean(),
            Self::Date => v
                .as_str()
                .is_some_and(|s| creditmesh_domain::calendar::parse_iso_date(s).is_ok()),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Self::String => "must be a string of at most 2000 characters".into(),
                Self::Integer => "must be an integer".into(),
                Self::Number => "must be a number".into(),
                Self::Boolean => "must be true or false".into(),
                Self::Date => "must be a date, YYYY-MM-DD".into(),
            })
        }
    }
}

/// The categories agencies may push, by code.
#[derive(Debug, Clone)]
pub struct Catalog(HashMap<String, Category>);

impl Catalog {
    /// The configured catalog, or the demonstration one when none is configured; every
    /// problem names its key.
    pub fn from_config(configured: &[CategoryConfig]) -> Result<Self, Vec<(String, String)>> {
        let demo = demo();
        let list = if configured.is_empty() {
            &demo
        } else {
            configured
        };
        let mut problems = Vec::new();
        let mut map = HashMap::new();
        for (i, c) in list.iter().enumerate() {
            let key = format!("datapush.categories[{i}]");
            let code_ok = !c.code.is_empty()
                && c.code.len() <= 64
                && c.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !code_ok {
                problems.push((format!("{key}.code"), "must be 1 to 64 of [a-z0-9-]".into()));
            }
            let subjects = match c.subjects.as_str() {
                "person" => Subjects::Person,
                "organisation" => Subjects::Organisation,
                "any" | "" => Subjects::Any,
                _ => {
                    problems.push((
                        format!("{key}.subjects"),
                        "must be person, organisation or any".into(),
                    ));
                    Subjects::Any
                }
            };
            if c.retention_months == 0 {
                problems.push((format!("{key}.retention_months"), "must be positive".into()));
            }
            if c.retention_basis.trim().is_empty() {
                problems.push((
                    format!("{key}.retention_basis"),
                    "is required: the rule or policy the retention comes from, shown to the subject".into(),
                ));
            }
            let mut fields = Vec::new();
            for (j, f) in c.fields.iter().enumerate() {
                match FieldType::parse(&f.r#type) {
                    Some(kind) if !f.name.is_empty() => fields.push(Field {
                        name: f.name.clone(),
                        kind,
                        required: f.required,
                        label_zh: f.label_zh.trim().to_owned(),
                        label_en: f.label_en.trim().to_owned(),
                    }),
                    _ => problems.push((
                        format!("{key}.fields[{j}]"),
                        "needs a name and a type: string, integer, number, boolean or date".into(),
                    )),
                }
            }
            if map.contains_key(&c.code) {
                problems.push((format!("{key}.code"), "appears twice".into()));
            }
            map.insert(
                c.code.clone(),
                Category {
                    code: c.code.clone(),
                    description: c.description.clone(),
                    name_zh: c.name_zh.trim().to_owned(),
                    name_en: c.name_en.trim().to_owned(),
                    retention_months: c.retention_months,
                    retention_basis: c.retention_basis.trim().to_owned(),
                    retention_basis_zh: c.retention_basis_zh.trim().to_owned(),
                    personal_data: c.personal_data,
                    subjects,
                    fields,
                },
            );
        }
        if problems.is_empty() {
            Ok(Self(map))
        } else {
            Err(problems)
        }
    }

    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.0.values()
    }

    pub fn get(&self, code: &str) -> Option<&Category> {
        self.0.get(code)
    }
}

fn field(name: &str, kind: &str, required: bool, (zh, en): (&str, &str)) -> FieldConfig {
    FieldConfig {
        name: name.into(),
        r#type: kind.into(),
        required,
        label_zh: zh.into(),
        label_en: en.into(),
    }
}

/// The earliest collection day still within a retention of `months` on `today`: the period
/// counts from the day after collection and ends at the end of the corresponding day (Civil
/// Code Art. 201-203), so a record collected on that day is kept through `today`.
pub fn retention_limit(today: time::Date, months: u32) -> Option<time::Date> {
    let m = today.month() as i32 - 1 - months as i32;
    let year = today.year() + m.div_euclid(12);
    let month = time::Month::try_from((m.rem_euclid(12) + 1) as u8).ok()?;
    let day = today.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day).ok()
}

/// The last day a record collected on `collected` is kept under a retention of `months`: the
/// corresponding day `months` on, or the last day of that month when it has none (Civil Code
/// Art. 202), as [`retention_limit`] counts it.
pub fn kept_until(collected: time::Date, months: u32) -> Option<time::Date> {
    let m = collected.month() as i32 - 1 + months as i32;
    let year = collected.year() + m.div_euclid(12);
    let month = time::Month::try_from((m.rem_euclid(12) + 1) as u8).ok()?;
    let day = collected.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day).ok()
}

/// Two categories to try the mesh with.
fn demo() -> Vec<CategoryConfig> {
    vec![
        CategoryConfig {
            code: "loan-repayment".into(),
            description: "repayment of a loan: amounts due and days overdue".into(),
            name_zh: "贷款还款".into(),
            name_en: "Loan repayment".into(),
            retention_months: 60,
            retention_basis: "demonstration policy: 60 months from collection, within the five \
                years《征信业管理条例》Art. 16 allows for adverse credit information"
                .into(),
            retention_basis_zh: "演示策略：自采集之日起保存60个月，\
                在《征信业管理条例》第十六条规定的不良信息保存五年期限内"
                .into(),
            personal_data: true,
            subjects: "any".into(),
            fields: vec![
                field(
                    "amount_due",
                    "number",
                    true,
                    ("应还金额（元）", "Amount due (yuan)"),
                ),
                field("due_on", "date", true, ("应还日期", "Due on")),
                field(
                    "days_overdue",
                    "integer",
                    true,
                    ("逾期天数", "Days overdue"),
                ),
                field("settled", "boolean", false, ("是否已结清", "Settled")),
                field("note", "string", false, ("备注", "Note")),
            ],
        },
        CategoryConfig {
            code: "contract-performance".into(),
            description: "performance of a commercial contract".into(),
            name_zh: "合同履约".into(),
            name_en: "Contract performance".into(),
            retention_months: 60,
            retention_basis: "demonstration policy: 60 months from collection".into(),
            retention_basis_zh: "演示策略：自采集之日起保存60个月".into(),
            personal_data: false,
            subjects: "organisation".into(),
            fields: vec![
                field("contract", "string", true, ("合同", "Contract")),
                field("performed", "boolean", true, ("是否已履行", "Performed")),
                field("note", "string", false, ("备注", "Note")),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loan() -> Category {
        Catalog::from_config(&[])
            .unwrap()
            .get("loan-repayment")
            .unwrap()
            .clone()
    }

    #[test]
    fn content_is_checked_field_by_field() {
        let c = loan();
        assert!(
            c.check(br#"{"amount_due": 1200.5, "due_on": "2026-03-01", "days_overdue": 30}"#)
                .is_ok()
        );
        let problems = c
            .check(br#"{"amount_due": "a lot", "due_on": "2026-02-30", "colour": "red"}"#)
            .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "content.amount_due",
                "content.due_on",
                "content.days_overdue",
                "content.colour"
            ]
        );
        assert_eq!(c.check(b"[1]").unwrap_err()[0].1, "must be a JSON object");
        assert!(c.check(b"{").unwrap_err()[0].1.starts_with("is not JSON"));
    }

    #[test]
    fn a_record_is_kept_through_the_day_retention_limit_lets_it_stay() {
        use time::macros::date;
        for (collected, months) in [
            (date!(2026 - 08 - 31), 6),
            (date!(2026 - 01 - 15), 60),
            (date!(2024 - 02 - 29), 12),
        ] {
            let last = kept_until(collected, months).unwrap();
            assert!(
                retention_limit(last, months).unwrap() <= collected,
                "{collected}"
            );
            let next = last.next_day().unwrap();
            assert!(
                retention_limit(next, months).unwrap() > collected,
                "{collected}"
            );
        }
        assert_eq!(
            kept_until(date!(2026 - 08 - 31), 6),
            Some(date!(2027 - 02 - 28))
        );
    }

    #[test]
    fn a_bad_catalog_names_its_keys() {
        let bad = CategoryConfig {
            code: "Bad Code".into(),
            subjects: "aliens".into(),
            fields: vec![field("x", "colour", true, ("", ""))],
            ..Default::default()
        };
        let problems = Catalog::from_config(&[bad]).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "datapush.categories[0].code",
                "datapush.categories[0].subjects",
                "datapush.categories[0].retention_months",
                "datapush.categories[0].retention_basis",
                "datapush.categories[0].fields[0]"
            ]
        );
    }
}
