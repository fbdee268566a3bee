//! Datapush's configuration (`[datapush]`).

/// Pushed credit information (`[datapush]`): the catalog of categories, and the keys it is
/// sealed with at rest.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataPushConfig {
    /// The categories agencies may push; none configured: the built-in demonstration catalog.
    pub categories: Vec<CategoryConfig>,
    /// Key-encryption keys by tenant (a division code, or `*` for every tenant without its
    /// own), newest first, each `ID:BASE64` of 32 bytes. The newest seals; every listed key
    /// still opens what it sealed, so a key rotates by putting the new one first. None
    /// configured: one generated key in the PKI directory (`datapush-kek.key`).
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// Base64 of 32 bytes keying the hashes that find duplicates, a subject's records and
    /// access codes without opening anything. Unset: the one in the PKI directory
    /// (`datapush-index.key`).
    pub index_key: String,
    /// During a rotation of the index key, the key it moves to, looked up while `index_key`
    /// still writes. Unset: `datapush-index.next.key` in the PKI directory, when there.
    pub next_index_key: String,
    /// During a rotation, the key it moved from, looked up until every row is hashed again
    /// under `index_key`. Unset: `datapush-index.previous.key` in the PKI directory, when there.
    pub previous_index_key: String,
}

/// One category of the catalog (`[[datapush.categories]]`).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CategoryConfig {
    pub code: String,
    pub description: String,
    /// What the subject is shown the category as, in Chinese and English (the code when unset).
    pub name_zh: String,
    pub name_en: String,
    /// How long the platform keeps a record after it was collected, in months.
    pub retention_months: u32,
    /// Why it is kept that long: the rule or policy the term comes from, shown to the subject.
    /// Required. Art. 20 obliges agencies to keep their own service archives (信用服务档案) as
    /// national and regional rules say; it sets no term for the platform.
    pub retention_basis: String,
    /// The same in Chinese, for the Chinese pages (unset: `retention_basis` as written).
    pub retention_basis_zh: String,
    /// Whether its records hold personal information.
    pub personal_data: bool,
    /// Whose records it holds: `person`, `organisation` or `any`.
    pub subjects: String,
    /// The fields of a record's JSON content; no other field is accepted.
    pub fields: Vec<FieldConfig>,
}

/// One field of a category's content.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date` (YYYY-MM-DD).
    pub r#type: String,
    pub required: bool,
    /// What the subject is shown the field as, in Chinese and English (the name when unset).
    pub label_zh: String,
    pub label_en: String,
}
