//! The public facts of a filing (Art. 12) by the names people read on the register.

/// Each fact's field name, with its Chinese name.
const NAMES: &[(&str, &str)] = &[
    ("agency_name", "机构名称"),
    ("registered_address", "注册地址"),
    ("registered_capital_yuan", "注册资本"),
    ("business_scope", "经营范围"),
    ("legal_representative", "法定代表人"),
    ("chair", "董事长"),
    ("general_manager", "总经理"),
    ("professional_staff_count", "专业人员数量"),
    ("registered_division", "注册地所在行政区划"),
    ("fee_items", "收费项目及标准"),
];

/// The Chinese name of the fact `field`, if it is one.
pub fn name_zh(field: &str) -> Option<&'static str> {
    NAMES.iter().find(|(f, _)| *f == field).map(|(_, zh)| *zh)
}

/// `text` with each fact's field name replaced by its Chinese name.
pub fn named_zh(text: &str) -> String {
    NAMES
        .iter()
        .fold(text.to_owned(), |t, (field, zh)| t.replace(field, zh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_named_as_people_read_them() {
        assert_eq!(name_zh("business_scope"), Some("经营范围"));
        assert_eq!(name_zh("colour"), None);
        assert_eq!(
            named_zh("变更事项：registered_capital_yuan、business_scope。"),
            "变更事项：注册资本、经营范围。"
        );
    }
}
