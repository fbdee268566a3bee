//! The complaints service's configuration: the acceptance period (`[supervision]`), the
//! departments complaints are referred to (`[referrals]`) and how complainants are told
//! (`[notifications]`).

use std::sync::Arc;

/// What the complaints service runs with.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Working days after its receipt by which a complaint should be accepted or referred
    /// (Art. 24 leaves the period open).
    pub acceptance_working_days: u32,
    pub referrals: Arc<ReferralsConfig>,
    pub notifications: Arc<NotificationsConfig>,
}

/// The department nodes referrals are delivered to (`[[referrals.departments]]`). A regulator
/// may refer a complaint only to a department listed here.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReferralsConfig {
    pub departments: Vec<DepartmentPeer>,
}

/// One department node: which department of which division, and where it listens.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DepartmentPeer {
    /// The department's code, as in its certificate (`market-regulation`, …).
    pub department: String,
    /// Its division (GB/T 2260), as in its certificate.
    pub tenant: String,
    /// `https://host:port` of its referral receiver.
    pub url: String,
    /// The DNS name in its node's certificate.
    pub server_name: String,
}

impl ReferralsConfig {
    /// The node of `department` in `tenant`.
    pub fn node(&self, department: &str, tenant: &str) -> Option<&DepartmentPeer> {
        self.departments
            .iter()
            .find(|d| d.department == department && d.tenant == tenant)
    }
}

/// How complainants are told (`[notifications]`): by e-mail over SMTP when `smtp_url` is set,
/// else written as files into `dir` (the development default).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `smtp://host:port` (plain, for a relay on the host), `smtp+starttls://…` or
    /// `smtps://…`; credentials as `user:password@` in the URL.
    pub smtp_url: String,
    /// The sender of the mails.
    pub from: String,
    /// Where notifications are written for a channel with no adapter configured.
    pub dir: String,
    /// An SMS gateway: complainants who left a mobile number are told by a `POST` of
    /// `{"id", "to", "text"}` (JSON) to this URL; any 2xx answer is taken as sent.
    pub sms_url: String,
    /// Sent as `Authorization: Bearer …` to the SMS gateway, when set.
    pub sms_token: String,
}
