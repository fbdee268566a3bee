//! What a filing holds, as stored: the facts of the application form and its documents.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub identity_number: String,
    /// The kind of document the number is of (`identity_document::DocumentKind::name`);
    /// empty for a resident identity number.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub document_type: String,
}

/// A service item and its fee (Art. 19).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeeItem {
    pub service_item: String,
    pub fee: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub basis: String,
}

/// The filed facts (Art. 6, 8(1)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub agency_name: String,
    pub uscc: String,
    pub registration_date: String,
    pub registered_address: String,
    pub registered_capital_yuan: i64,
    pub business_scope: String,
    pub legal_representative: Person,
    pub chair: Person,
    pub general_manager: Person,
    pub professional_staff_count: i32,
    pub information_security: String,
    pub internal_rules: Vec<i32>,
    pub contact_phone: String,
    pub contact_email: String,
    /// County-level division of the registered address (注册地), which routes the review.
    #[serde(default)]
    pub registered_division: String,
    /// Filings stored before Art. 19 items were asked for have none.
    #[serde(default)]
    pub fee_items: Vec<FeeItem>,
}

/// Document references by their place in the application (Art. 8).
pub type Documents = BTreeMap<String, Vec<String>>;
