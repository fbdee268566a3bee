//! The departments a complaint outside the regulator's remit is referred to (Art. 24: 网信、
//! 市场监管、数字化发展、民政、人社、公安、中国人民银行新疆分行 and others the region names), by the
//! code their certificates carry.

/// In the order of the contract's `Department` enum: the code of value `n` is `CODES[n - 1]`.
pub const CODES: &[&str] = &[
    "cyberspace",
    "market-regulation",
    "digital-development",
    "civil-affairs",
    "human-resources-social-security",
    "public-security",
    "pboc-branch",
];

/// A department outside [`CODES`], named by the referral itself and reached by letter; no
/// node or certificate carries it. The contract's value after the listed ones.
pub const OTHER: &str = "other";

/// Whether `code` names a department a node or certificate may carry.
pub fn is_known(code: &str) -> bool {
    CODES.contains(&code)
}

/// The code of the contract's `Department` value; `None` for unspecified or unknown values.
pub fn code_of(value: i32) -> Option<&'static str> {
    let i = usize::try_from(value).ok()?.checked_sub(1)?;
    match CODES.get(i) {
        Some(code) => Some(code),
        None if i == CODES.len() => Some(OTHER),
        None => None,
    }
}

/// The contract's `Department` value of a code; 0 (unspecified) for an unknown one.
pub fn value_of(code: &str) -> i32 {
    CODES
        .iter()
        .chain([&OTHER])
        .position(|c| *c == code)
        .map_or(0, |i| i as i32 + 1)
}

/// How the complainant is told who now handles the complaint.
pub fn name_zh(code: &str) -> &'static str {
    match code {
        "cyberspace" => "网信部门",
        "market-regulation" => "市场监管部门",
        "digital-development" => "数字化发展部门",
        "civil-affairs" => "民政部门",
        "human-resources-social-security" => "人力资源和社会保障部门",
        "public-security" => "公安机关",
        "pboc-branch" => "中国人民银行新疆分行",
        _ => "有关部门",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_contract_values_map_both_ways() {
        assert_eq!(code_of(2), Some("market-regulation"));
        assert_eq!(code_of(0), None);
        assert_eq!(code_of(8), Some(OTHER));
        assert_eq!(value_of(OTHER), 8);
        assert!(!is_known(OTHER));
        assert_eq!(code_of(9), None);
        assert_eq!(code_of(-1), None);
        for c in CODES {
            assert_eq!(code_of(value_of(c)), Some(*c));
        }
        assert_eq!(value_of("tax"), 0);
    }
}
