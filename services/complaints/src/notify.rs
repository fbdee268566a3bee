//! Telling the complainant (Art. 24 "通知投诉举报人"): each notification is written to an outbox
//! in the transaction that accepts, refers or resolves the complaint, and a sender hands it to
//! the adapter of its channel — e-mail over SMTP for an e-mail address, an SMS gateway for a
//! mobile number, files in a directory for a channel with neither configured (the development
//! default) — retrying with backoff until it goes out. A complainant who left neither is told
//! through tracking alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use creditmesh_domain::contact::Contact;
use creditmesh_pki::ContactKey;
use creditmesh_rpc::ServiceStore;
use creditmesh_rpc::service::NotificationsConfig;
use creditmesh_storage::StorageError;
use creditmesh_storage::sqlx::{self, AnyConnection, Row};
use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio_util::sync::CancellationToken;

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
    sqlx::query(
        "INSERT INTO complaints_notification (id, tenant, tracking_number, address, subject, \
         body, created_at, next_at, channel) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(tenant.to_owned())
    .bind(reference.to_owned())
    .bind(to.to_owned())
    .bind(subject.to_owned())
    .bind(body.to_owned())
    .bind(now)
    .bind(channel.name())
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        let rows = sqlx::query(
            "SELECT n.id, n.address, n.subject, n.body, n.attempts, n.channel, \
             c.complainant_contact, n.tracking_number FROM complaints_notification n \
             LEFT JOIN complaints_complaint c ON c.tenant = n.tenant \
             AND c.tracking_number = n.tracking_number \
             WHERE n.sent_at IS NULL AND n.next_at <= $1 ORDER BY n.next_at LIMIT 20",
        )
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let channel: String = r.try_get(5)?;
                let address: String = r.try_get(1)?;
                // A complaint's notification is sent where its complaint says now; another's
                // where its sealed address says, opened only here.
                let to = if address.is_empty() {
                    r.try_get::<Option<String>, _>(6)?
                        .and_then(|contact| reach(&contact))
                        .map(|(_, to)| to)
                        .unwrap_or_default()
                } else {
                    let reference: String = r.try_get(7)?;
                    contacts.open(&reference, &address).unwrap_or_else(|e| {
                        tracing::warn!(%reference, error = %e, "a sealed contact does not open");
                        String::new()
                    })
                };
                Ok((
                    Outgoing {
                        id: r.try_get(0)?,
                        channel: if channel == "sms" {
                            Channel::Sms
                        } else {
                            Channel::Email
                        },
                        to,
                        subject: r.try_get(2)?,
                        body: r.try_get(3)?,
                    },
                    r.try_get::<i64, _>(4)?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()?
    };
    let mut sent = 0;
    for (m, attempts) in due {
        let claimed = {
            let mut conn = store.db.acquire().await?;
            sqlx::query(
                "UPDATE complaints_notification SET next_at = $1 \
                 WHERE id = $2 AND sent_at IS NULL AND next_at <= $3",
            )
            .bind(now + CLAIM.as_micros() as i64)
            .bind(m.id.clone())
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        };
        if !claimed {
            continue;
        }
        let outcome = if m.to.is_empty() {
            // The complaint no longer says where to reach its complainant (or a sealed address
            // does not open): nothing to send.
            let mut conn = store.db.acquire().await?;
            sqlx::query(
                "UPDATE complaints_notification SET sent_at = $1, \
                 last_error = 'not sent: no contact to reach' \
                 WHERE id = $2 AND sent_at IS NULL",
            )
            .bind(store.now())
            .bind(m.id.clone())
            .execute(&mut *conn)
            .await?;
            continue;
        } else {
            notifiers.of(m.channel).send(&m).await
        };
        let mut conn = store.db.acquire().await?;
        match outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE complaints_notification SET sent_at = $1, attempts = attempts + 1 \
                     WHERE id = $2 AND sent_at IS NULL",
                )
                .bind(store.now())
                .bind(m.id.clone())
                .execute(&mut *conn)
                .await?;
                sent += 1;
            }
            Err(e) => {
                tracing::warn!(notification = %m.id, error = %e, "complainant not told yet");
                let next = now + backoff(attempts).as_micros() as i64;
                sqlx::query(
                    "UPDATE complaints_notification SET attempts = attempts + 1, next_at = $1, \
                     last_error = $2 WHERE id = $3 AND sent_at IS NULL",
                )
                .bind(next)
                .bind(e.chars().take(500).collect::<String>())
                .bind(m.id.clone())
                .execute(&mut *conn)
                .await?;
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
    loop {
        if let Err(e) = send_due(&store, &notifiers, &contacts).await {
            tracing::warn!(error = %e, "notifications not sent");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
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
