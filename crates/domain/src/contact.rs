//! How a person can be reached: an e-mail address, a mainland mobile number (both can be
//! sent a message), or a landline number (to be called).

/// A contact a person gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact {
    Email(String),
    /// Eleven digits, without a country prefix.
    Mobile(String),
    /// An area code from 0 and the subscriber's 7 or 8 digits (`0991-1234567`), written without
    /// separators; no message can be sent to it.
    Landline(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error(
        "must be a mainland mobile number (11 digits from 13 to 19), a landline number with its area code (0991-1234567) or an e-mail address"
    )]
    Unrecognised,
}

/// [`parse`], with the reason when `s` is no contact; an empty contact is one too.
pub fn check(s: &str) -> Result<Contact, ContactError> {
    parse(s).ok_or(ContactError::Unrecognised)
}

/// A landline number: `0`, an area code of 2 or 3 more digits, and 7 or 8 subscriber digits
/// (10 to 12 digits in all), spaces, dashes and brackets around the area code ignored.
fn landline(c: &str) -> Option<String> {
    let digits: String = c
        .chars()
        .filter(|ch| !matches!(ch, ' ' | '-' | '(' | ')' | '（' | '）'))
        .collect();
    let b = digits.as_bytes();
    ((10..=12).contains(&b.len())
        && b[0] == b'0'
        && b[1] != b'0'
        && b.iter().all(u8::is_ascii_digit))
    .then_some(digits)
}

/// The contact `s` names: an e-mail address of plain form, a mainland mobile number (11
/// digits from 13 to 19, with or without +86, spaces and dashes ignored), or a landline
/// number with its area code; `None` otherwise.
pub fn parse(s: &str) -> Option<Contact> {
    let c = s.trim();
    if let Some((local, domain)) = c.split_once('@') {
        let plain = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && c.len() <= 254
            && !c.chars().any(|ch| ch.is_whitespace() || ch.is_control());
        return plain.then(|| Contact::Email(c.to_owned()));
    }
    let digits: String = c.chars().filter(|ch| !matches!(ch, ' ' | '-')).collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .unwrap_or(&digits);
    let b = digits.as_bytes();
    let mobile = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    if mobile {
        return Some(Contact::Mobile(digits.to_owned()));
    }
    landline(c).map(Contact::Landline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_or_a_mobile_number() {
        assert_eq!(
            parse(" aynur@example.org "),
            Some(Contact::Email("aynur@example.org".into()))
        );
        assert_eq!(
            parse("+86 139-1234-5678"),
            Some(Contact::Mobile("13912345678".into()))
        );
        assert_eq!(parse("12912345678"), None);
        assert_eq!(
            parse("0991-1234567"),
            Some(Contact::Landline("09911234567".into()))
        );
        assert_eq!(
            parse("(010) 6512 3456"),
            Some(Contact::Landline("01065123456".into()))
        );
        assert_eq!(parse("0099-1234567"), None);
        assert_eq!(parse("0991-12"), None);
        assert_eq!(check("请联系我"), Err(ContactError::Unrecognised));
        assert_eq!(check("abc"), Err(ContactError::Unrecognised));
        assert_eq!(parse("not @ mail"), None);
        assert_eq!(parse("a@b"), None);
        assert_eq!(parse(""), None);
    }
}
