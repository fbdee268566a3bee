//! Telling the complainant (Art. 24 "通知投诉举报人"): each notification is written to an outbox
//! in the transaction that accepts, refers or resolves the complaint, and a sender hands it to
//! the adapter of its channel — e-mail over SMTP for an e-mail address, an SMS gateway for a
//! mobile number, files in a directory for a channel with neither configured (the development
//! default) — retrying with backoff until it goes out. A complainant who left neither is told
//! through tracking alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::NotificationsConfig;
use creditmesh_domain::contact::Contact;
use creditmesh_pki::ContactKey;
use creditmesh_rpc::ServiceStore;
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::AnyConnection;
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;

use crate::notification_store;

/// How a complainant is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// One message to a complainant.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: String,
    pub channel: Channel,
    /// An e-mail address or a mobile number, as the channel needs.
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Where notifications go. One implementation per channel.
#[tonic::async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, message: &Outgoing) -> Result<(), String>;
}

/// E-mail over SMTP.
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Smtp {
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("smtp url: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|e| format!("sender {from:?}: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[tonic::async_trait]
impl Notifier for Smtp {
    async fn send(&self, m: &Outgoing) -> Result<(), String> {
        let to: Mailbox = m.to.parse().map_err(|e| format!("recipient: {e}"))?;
        // A single text/plain part in UTF-8 (MIME-Version, Content-Type with its charset, and
        // a transfer encoding lettre picks for the text), so any reader shows the Chinese.
        let mail = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@creditmesh>", m.id)))
            .singlepart(SinglePart::plain(m.body.clone()))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Files in a directory, one per notification (`<id>.txt`): the development default.
pub struct Files {
    dir: PathBuf,
}

#[tonic::async_trait]
impl Notifier for Files {
    async fn send(&self, m: &Outgoing) -> Result<(), String> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| e.to_string())?;
        let text = format!("To: {}\nSubject: {}\n\n{}\n", m.to, m.subject, m.body);
        tokio::fs::write(self.dir.join(format!("{}.txt", m.id)), text)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Text messages through an SMS gateway's HTTP interface: one JSON `POST` per message.
pub struct Sms {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Sms {
    pub fn new(url: &str, token: &str) -> Result<Self, String> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("sms url {url:?}: not an http(s) url"));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| format!("sms client: {e}"))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            token: token.to_owned(),
        })
    }
}

#[tonic::async_trait]
impl Notifier for Sms {
    async fn send(&self, m: &Outgoing) -> Result<(), String> {
        // A text message carries the subject and the first line of the body.
        let first = m.body.lines().next().unwrap_or_default();
        let body = serde_json::json!({
            "id": m.id,
            "to": m.to,
            "text": format!("{}：{first}", m.subject),
        });
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", m.id.as_str())
            .body(body.to_string());
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        let answer = request.send().await.map_err(|e| e.to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("sms gateway answered {}", answer.status()))
        }
    }
}

/// The adapter of each channel, as configured; a channel without one writes files.
pub struct Notifiers {
    pub email: Arc<dyn Notifier>,
    pub sms: Arc<dyn Notifier>,
}

impl Notifiers {
    fn of(&self, channel: Channel) -> &dyn Notifier {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }
}

/// The adapters the configuration names.
pub fn notifiers(cfg: &NotificationsConfig) -> Result<Notifiers, String> {
    let files = || -> Arc<dyn Notifier> {
        Arc::new(Files {
            dir: PathBuf::from(&cfg.dir),
        })
    };
    Ok(Notifiers {
        email: if cfg.smtp_url.is_empty() {
            files()
        } else {
            Arc::new(Smtp::new(&cfg.smtp_url, &cfg.from)?)
        },
        sms: if cfg.sms_url.is_empty() {
            files()
        } else {
            Arc::new(Sms::new(&cfg.sms_url, &cfg.sms_token)?)
        },
    })
}

/// The channel and address a contact can be told at: an e-mail address, a mainland mobile
/// number (11 digits from 13 to 19, with or without +86), or none (a landline, no contact).
pub fn reach(contact: &str) -> Option<(Channel, String)> {
    match creditmesh_domain::contact::parse(contact)? {
        Contact::Email(address) => address
            .parse::<Mailbox>()
            .is_ok()
            .then_some((Channel::Email, address)),
        Contact::Mobile(number) => Some((Channel::Sms, number)),
        // A number to call: the regulator or department calls; no message can be sent.
        Contact::Landline(_) => None,
    }
}

/// Queues a notification in `conn`'s transaction; nothing when there is no address.
pub async fn queue(
    conn: &mut AnyConnection,
    tenant: &str,
    tracking_number: &str,
    contact: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), StorageError> {
    let Some((channel, _)) = reach(contact) else {
        return Ok(());
    };
    // A complainant's contact stays on their complaint alone: the notification refers to it
    // and the sender reads it when it sends.
    insert(
        conn,
        tenant,
        tracking_number,
        "",
        channel,
        subject,
        body,
        now,
    )
    .await
}

/// Queues a notification to someone with no complaint here (a subject who objected to a
/// pushed record): their `contact` is kept sealed under `contacts`, bound to `reference`, and
/// opened only by the sender.
#[allow(clippy::too_many_arguments)]
pub async fn queue_to(
    conn: &mut AnyConnection,
    contacts: &ContactKey,
    tenant: &str,
    reference: &str,
    contact: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), StorageError> {
    let Some((channel, to)) = reach(contact) else {
        return Ok(());
    };
    let sealed = contacts
        .seal(reference, &to)
        .map_err(|e| StorageError::Other(format!("sealing a contact: {e}")))?;
    insert(
        conn, tenant, reference, &sealed, channel, subject, body, now,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    conn: &mut AnyConnection,
    tenant: &str,
    reference: &str,
    to: &str,
    channel: Channel,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), StorageError> {
    notification_store::insert(
        conn,
        &notification_store::NewNotification {
            tenant,
            reference,
            address: to,
            channel: channel.name(),
            subject,
            body,
            now,
        },
    )
    .await
}

/// How long after `attempts` failures a notification is tried again: doubling from 5 s, at
/// most an hour.
fn backoff(attempts: i64) -> Duration {
    Duration::from_secs((5u64 << attempts.clamp(0, 10)).min(3600))
}

/// How long a sender holds a notification it claimed before another may try it.
const CLAIM: Duration = Duration::from_secs(60);

/// Sends what is due, once each however many senders run: a sender first claims a
/// notification (a guarded update moving its next attempt past the claim), sends it, then marks
/// it sent.
pub async fn send_due(
    store: &ServiceStore,
    notifiers: &Notifiers,
    contacts: &ContactKey,
) -> Result<usize, StorageError> {
    let now = store.now();
    let due: Vec<(Outgoing, i64)> = {
        let mut conn = store.db.acquire().await?;
        notification_store::due(&mut conn, now)
            .await?
            .into_iter()
            .map(|n| {
                // A complaint's notification is sent where its complaint says now; another's
                // where its sealed address says, opened only here.
                let to = if n.address.is_empty() {
                    n.complainant_contact
                        .and_then(|contact| reach(&contact))
                        .map(|(_, to)| to)
                        .unwrap_or_default()
                } else {
                    contacts.open(&n.reference, &n.address).unwrap_or_else(|e| {
                        let reference = &n.reference;
                        tracing::warn!(%reference, error = %e, "a sealed contact does not open");
                        String::new()
                    })
                };
                let channel = if n.channel == "sms" {
                    Channel::Sms
                } else {
                    Channel::Email
                };
                let m = Outgoing {
                    id: n.id,
                    channel,
                    to,
                    subject: n.subject,
                    body: n.body,
                };
                (m, n.attempts)
            })
            .collect()
    };
    let mut sent = 0;
    for (m, attempts) in due {
        let claimed = {
            let mut conn = store.db.acquire().await?;
            notification_store::claim(&mut conn, &m.id, now, now + CLAIM.as_micros() as i64).await?
        };
        if !claimed {
            continue;
        }
        let outcome = if m.to.is_empty() {
            // The complaint no longer says where to reach its complainant (or a sealed address
            // does not open): nothing to send.
            let mut conn = store.db.acquire().await?;
            notification_store::unreachable(&mut conn, &m.id, store.now()).await?;
            continue;
        } else {
            notifiers.of(m.channel).send(&m).await
        };
        let mut conn = store.db.acquire().await?;
        match outcome {
            Ok(()) => {
                notification_store::sent(&mut conn, &m.id, store.now()).await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(notification = %m.id, error = %e, "complainant not told yet");
                let next = now + backoff(attempts).as_micros() as i64;
                let error: String = e.chars().take(500).collect();
                notification_store::failed(&mut conn, &m.id, next, &error).await?;
            }
        }
    }
    Ok(sent)
}

/// Sends notifications as they come due, until `stop`.
pub async fn run(
    store: ServiceStore,
    notifiers: Notifiers,
    contacts: ContactKey,
    stop: CancellationToken,
) {
    let (store, notifiers, contacts) = (&store, &notifiers, &contacts);
    creditmesh_rpc::timer::every(Duration::from_millis(500), &stop, || async move {
        if let Err(e) = send_due(store, notifiers, contacts).await {
            tracing::warn!(error = %e, "notifications not sent");
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_address_or_a_mobile_number_is_told_directly() {
        assert_eq!(
            reach(" aynur@example.org "),
            Some((Channel::Email, "aynur@example.org".into()))
        );
        assert_eq!(
            reach("+86 139-1234-5678"),
            Some((Channel::Sms, "13912345678".into()))
        );
        assert_eq!(reach("13912345678").map(|r| r.0), Some(Channel::Sms));
        assert_eq!(reach("12912345678"), None);
        assert_eq!(reach("0991-1234567"), None);
        assert_eq!(reach("not @ mail"), None);
        assert_eq!(reach(""), None);
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
