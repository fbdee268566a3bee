//! Desensitisation (脱敏) of what the public register shows (Art. 10). The policy is
//! versioned; every masked record carries the version that masked it.

/// The version of the rules below. Change it whenever a rule changes.
pub const POLICY_VERSION: &str = "xj-mask-2";

fn stars(n: usize) -> String {
    "*".repeat(n)
}

/// A person's name: the first character stays (the family name), the rest is hidden.
pub fn person_name(name: &str) -> String {
    let name = name.trim();
    let mut chars = name.chars();
    match chars.next() {
        None => String::new(),
        Some(first) => format!("{first}{}", stars(chars.count().max(1))),
    }
}

/// A resident identity number: the first two and last two characters stay.
pub fn identity_number(id: &str) -> String {
    keep_ends(id.trim(), 2, 2)
}

/// A telephone number: a mobile keeps its first three and last four digits; any other keeps
/// its last four.
pub fn phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && digits.starts_with('1') {
        keep_ends(&digits, 3, 4)
    } else {
        keep_ends(&digits, 0, 4)
    }
}

/// An e-mail address: the first character of the local part and the domain stay.
pub fn email(email: &str) -> String {
    match email.trim().split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => stars(email.trim().chars().count()),
    }
}

/// An address: up to the county or district (the first `区`, `县` or `市` after the
/// prefecture), at most 12 characters, stays; the rest is hidden.
pub fn address(address: &str) -> String {
    let chars: Vec<char> = address.trim().chars().collect();
    let cut = chars
        .iter()
        .enumerate()
        .skip(4)
        .find(|(_, c)| matches!(c, '区' | '县'))
        .map(|(i, _)| i + 1)
        .unwrap_or(6)
        .min(12)
        .min(chars.len());
    let kept: String = chars[..cut].iter().collect();
    if cut < chars.len() {
        format!("{kept}****")
    } else {
        kept
    }
}

/// A bank account number: the last four digits stay.
pub fn bank_account(account: &str) -> String {
    let digits: String = account.chars().filter(|c| !c.is_whitespace()).collect();
    keep_ends(&digits, 0, 4)
}

/// A digit as written: ASCII or full-width (０–９), as its ASCII value.
fn digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
        _ => None,
    }
}

/// What may stand between the digits of one number as people write it: spaces (also the
/// ideographic one), hyphens and dashes (also full-width), dots and brackets round an area
/// code.
fn joins_digits(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{3000}' | '\u{a0}' | '-' | '－' | '‐' | '–' | '—' | '.' | '(' | ')' | '（' | '）'
    )
}

/// Whether the number `digits` written as `groups` (digit counts between separators) is a
/// date (2026-03-02, 2026.3.2), which is no one's personal data.
fn is_date(digits: &str, groups: &[usize]) -> bool {
    let year: u32 = digits.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    matches!(groups, [4, 1..=2, 1..=2]) && (1900..=2100).contains(&year)
}

/// Free text, before it is published: every number of seven or more digits however it is
/// written — grouped by spaces or hyphens, in full-width digits, behind `+86`, an identity
/// number ending in X — is hidden but for its last four digits, and every e-mail address is
/// masked as [`email`] does, so no identity, phone or account number or address survives in
/// a description. Dates stay.
pub fn text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = email_at(&chars, i) {
            let address: String = chars[i..end].iter().collect();
            out.push_str(&email(&address));
            i = end;
            continue;
        }
        let plus = chars[i] == '+' && chars.get(i + 1).and_then(|c| digit(*c)).is_some();
        if digit(chars[i]).is_none() && !plus {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // One number: digits, each separator followed (after more separators) by a digit.
        let start = i;
        let (mut digits, mut groups, mut group) = (String::new(), Vec::new(), 0usize);
        let mut end = i + usize::from(plus);
        let mut j = end;
        while j < chars.len() {
            if let Some(d) = digit(chars[j]) {
                digits.push(d);
                group += 1;
                j += 1;
                end = j;
            } else if joins_digits(chars[j]) {
                let mut k = j;
                while k < chars.len() && joins_digits(chars[k]) {
                    k += 1;
                }
                if k < chars.len() && digit(chars[k]).is_some() {
                    if group > 0 {
                        groups.push(group);
                    }
                    group = 0;
                    j = k;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        groups.push(group);
        // An X right after a long number is an identity number's check character.
        if digits.len() >= 17 {
            let mut k = end;
            while k < chars.len() && joins_digits(chars[k]) {
                k += 1;
            }
            if matches!(chars.get(k), Some('X' | 'x' | 'Ｘ' | 'ｘ')) {
                digits.push('X');
                end = k + 1;
            }
        }
        let written: String = chars[start..end].iter().collect();
        if digits.len() >= 7 && !is_date(&digits, &groups) {
            out.push_str(&keep_ends(&digits, 0, 4));
        } else {
            out.push_str(&written);
        }
        i = end;
    }
    out
}

/// The end of an e-mail address starting at `at`, if one does: a local part of letters,
/// digits and `._%+-`, `@`, and a domain with a dot.
fn email_at(chars: &[char], at: usize) -> Option<usize> {
    let local = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    if at > 0 && local(&chars[at - 1]) {
        return None;
    }
    let mut i = at;
    while i < chars.len() && local(&chars[i]) {
        i += 1;
    }
    if i == at || chars.get(i) != Some(&'@') {
        return None;
    }
    let domain_start = i + 1;
    let mut j = domain_start;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '.' | '-')) {
        j += 1;
    }
    while j > domain_start && chars[j - 1] == '.' {
        j -= 1;
    }
    let domain: String = chars[domain_start..j].iter().collect();
    let (name, tld) = domain.rsplit_once('.')?;
    (!name.is_empty() && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        .then_some(j)
}

fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= head + tail {
        return stars(chars.len());
    }
    let mid = chars.len() - head - tail;
    format!(
        "{}{}{}",
        chars[..head].iter().collect::<String>(),
        stars(mid),
        chars[chars.len() - tail..].iter().collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn each_kind_is_masked() {
        assert_eq!(person_name("买买提·艾力"), "买*****");
        assert_eq!(person_name("王五"), "王*");
        assert_eq!(identity_number("65010219900307123X"), "65**************3X");
        assert_eq!(phone("138 0013 8000"), "138****8000");
        assert_eq!(phone("0991-1234567"), "*******4567");
        assert_eq!(email("aynur@example.org"), "a***@example.org");
        assert_eq!(
            address("新疆乌鲁木齐市天山区光明路88号"),
            "新疆乌鲁木齐市天山区****"
        );
        assert_eq!(bank_account("6222 0212 3456 7890"), "************7890");
        assert_eq!(text("call 13800138000 now"), "call *******8000 now");
        assert_eq!(text("room 1203"), "room 1203");
    }

    #[test]
    fn free_text_numbers_are_found_however_written() {
        assert_eq!(
            text("业务专线 133 9204 6178，投诉电话 151-8892-5615"),
            "业务专线 *******6178，投诉电话 *******5615"
        );
        assert_eq!(text("电话+86 138 0013 8000。"), "电话*********8000。");
        assert_eq!(text("热线１３８００１３８０００"), "热线*******8000");
        assert_eq!(text("(0991)1234567 转 8"), "(*******4567 转 8");
        assert_eq!(
            text("身份证 650102 19900307 123X 号"),
            "身份证 **************123X 号"
        );
        assert_eq!(
            text("联系 aynur.k@example.org 或 a@b.cn."),
            "联系 a***@example.org 或 a***@b.cn."
        );
        // Dates, amounts and short numbers stay.
        assert_eq!(
            text("自2026-03-02起，2026.3.2，注册资本 1000 万元，第 12 条"),
            "自2026-03-02起，2026.3.2，注册资本 1000 万元，第 12 条"
        );
        assert_eq!(text("not@an address, x@y"), "not@an address, x@y");
    }

    fn resident_id() -> impl Strategy<Value = String> {
        (1u32..1000, 1u32..29, 1u32..13, 1950u32..2005).prop_map(|(seq, d, m, y)| {
            let first17 = format!("650102{y:04}{m:02}{d:02}{seq:03}");
            format!(
                "{first17}{}",
                crate::resident_id::check_char(first17.as_bytes())
            )
        })
    }

    fn landline() -> impl Strategy<Value = String> {
        (
            prop_oneof![Just("0991"), Just("0998"), Just("0903")],
            1_000_000u32..10_000_000,
        )
            .prop_map(|(area, n)| format!("{area}{n}"))
    }

    fn mobile() -> impl Strategy<Value = String> {
        (3u32..10, 0u64..1_000_000_000).prop_map(|(p, rest)| format!("1{p}{rest:09}"))
    }

    proptest! {
        #[test]
        fn no_identity_or_phone_number_survives(
            before in "[a-zA-Z0-9 ，。,.:-]{0,20}",
            id in resident_id(),
            middle in "[a-zA-Z0-9 ，。]{0,20}",
            phone_number in mobile(),
            after in "[a-zA-Z0-9 ]{0,20}",
        ) {
            let original = format!("{before}{id}{middle}{phone_number}{after}");
            let masked = text(&original);
            prop_assert!(!masked.contains(&id), "{masked}");
            prop_assert!(!masked.contains(&phone_number), "{masked}");
            prop_assert!(!masked.contains(&id[..14]), "birth date and address survive: {masked}");
        }

        /// A phone or identity number spelled any way people write one, among words, leaves
        /// none of its digits but the last four.
        #[test]
        fn no_number_survives_however_it_is_spelled(
            before in "[a-wyzA-WYZ业务专线投诉电话：:，。 ]{0,12}",
            number in prop_oneof![mobile(), resident_id(), landline()],
            seps in proptest::collection::vec(
                prop_oneof![Just(""), Just(" "), Just("-"), Just("\u{3000}"), Just("－"), Just(". ")],
                18,
            ),
            full_width in any::<bool>(),
            plus86 in any::<bool>(),
            after in "[a-wyzA-WYZ号，。 ]{0,12}",
        ) {
            let mut spelled = String::new();
            if plus86 {
                spelled.push_str("+86 ");
            }
            for (i, c) in number.chars().enumerate() {
                if i > 0 {
                    spelled.push_str(seps[i % seps.len()]);
                }
                spelled.push(if full_width && c.is_ascii_digit() {
                    char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap()
                } else {
                    c
                });
            }
            let masked = text(&format!("{before}{spelled}{after}"));
            let digits: String = masked
                .chars()
                .filter_map(|c| digit(c).or((c == 'X').then_some(c)))
                .collect();
            prop_assert!(
                !digits.contains(&number[..number.len() - 4]),
                "{spelled} -> {masked}"
            );
            prop_assert!(digits.len() <= 4, "{spelled} -> {masked}");
        }

        #[test]
        fn no_email_address_survives(
            local in "[a-z][a-z0-9._]{2,12}",
            domain in "[a-z]{2,10}\\.(cn|com|org)",
            before in "[电话邮箱：: ]{0,6}",
        ) {
            let masked = text(&format!("{before}{local}@{domain}，"));
            prop_assert!(!masked.contains(&local), "{masked}");
            prop_assert!(masked.contains(&domain), "{masked}");
        }

        #[test]
        fn field_maskers_hide_the_middle(id in resident_id(), phone_number in mobile()) {
            // Only the ends survive; the middle is stars, whatever digits the ends repeat.
            prop_assert_eq!(
                identity_number(&id),
                format!("{}{}{}", &id[..2], "*".repeat(14), &id[16..])
            );
            prop_assert_eq!(
                phone(&phone_number),
                format!("{}****{}", &phone_number[..3], &phone_number[7..])
            );
        }
    }
}
