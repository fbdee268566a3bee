//! Desensitisation (脱敏) of what the public register shows (Art. 10). The policy is
//! versioned; every masked record carries the version that masked it.

/// The version of the rules below. Change it whenever a rule changes.
pub const POLICY_VERSION: &str = "xj-mask-1";

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

/// Free text: every run of seven or more digits (an identity number may end in X) is hidden
/// but for its last four, so no identity, phone or account number survives in a description.
pub fn text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && matches!(chars[i], 'X' | 'x') {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            if run.chars().count() >= 7 {
                out.push_str(&keep_ends(&run, 0, 4));
            } else {
                out.push_str(&run);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
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

    fn resident_id() -> impl Strategy<Value = String> {
        (1u32..1000, 1u32..29, 1u32..13, 1950u32..2005).prop_map(|(seq, d, m, y)| {
            let first17 = format!("650102{y:04}{m:02}{d:02}{seq:03}");
            format!(
                "{first17}{}",
                crate::resident_id::check_char(first17.as_bytes())
            )
        })
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
