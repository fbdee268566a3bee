//! Field checks several register calls share.

use creditmesh_domain::error::Violations;
use creditmesh_domain::uscc::Uscc;

const MAX_PAGE: i32 = 100;
const DEFAULT_PAGE: i32 = 20;

pub(crate) fn page_size(v: &mut Violations, size: i32) -> i64 {
    creditmesh_domain::page::size(v, size, DEFAULT_PAGE, MAX_PAGE)
}

pub(crate) fn uscc_field(v: &mut Violations, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return String::new();
    }
    match Uscc::parse(value) {
        Ok(u) => u.as_str().to_owned(),
        Err(e) => {
            v.add(field, e.to_string());
            String::new()
        }
    }
}
