//! `SmtpMailer`: mail over SMTP (feature `smtp`), with the headers Japanese mail
//! clients and carriers expect.
//!
//! Every mail is UTF-8 `text/plain` (base64 or quoted-printable, whichever is
//! shorter), with an RFC 2047-encoded `Subject:` and `From:` display name (the insurer's
//! name), `Date:` in JST (`+0900`), a `Message-ID:` on the sender's domain and
//! `Auto-Submitted: auto-generated` (RFC 3834) so that auto-responders stay quiet.
//!
//! [`SmtpMailer::send`] talks to the server: put a [`QueuedMailer`] in front of it so
//! that a member's request never waits on SMTP.
//!
//! [`QueuedMailer`]: crate::mail::queue::QueuedMailer

mod config;
mod connection;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use lettre::Address;
use lettre::address::Envelope;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

pub use config::{SmtpConfig, SmtpConfigError, SmtpCredentials, SmtpSecurity};

use crate::lang::Lang;
use crate::mail::OutgoingMail;
use crate::policy::InsurerProfile;
use crate::ports::{MailError, Mailer};
use connection::{Connector, Pool};

/// Why one SMTP delivery failed. Never carries the server's reply text: servers repeat
/// the recipient's address in it, and these errors reach logs (SEC-44).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The server could not be reached (refused, unreachable, name not resolved).
    #[error("could not connect to the SMTP server")]
    Connect(#[source] std::io::Error),
    /// Connecting or sending took longer than the configured timeout.
    #[error("the SMTP server did not answer in time")]
    Timeout,
    /// The server answered 4xx: try again later.
    #[error("the SMTP server answered {code} (temporary)")]
    TransientReply {
        /// The reply code (e.g. 451).
        code: u16,
    },
    /// The server answered 5xx: it will not take this mail.
    #[error("the SMTP server answered {code} (permanent)")]
    PermanentReply {
        /// The reply code (e.g. 550).
        code: u16,
    },
    /// TLS, protocol or I/O failure during the session (e.g. a certificate that does not
    /// verify, a server without STARTTLS, a connection closed mid-way).
    #[error("SMTP session failed")]
    Session(#[source] lettre::transport::smtp::Error),
    /// TLS was required but no TLS parameters were built (a bug in the configuration
    /// path).
    #[error("TLS is required but not configured")]
    TlsNotConfigured,
    /// The recipient cannot be written in an SMTP envelope.
    #[error("the recipient address cannot be used in an SMTP envelope")]
    Recipient,
    /// The message could not be assembled.
    #[error("the mail could not be assembled")]
    Message(#[source] lettre::error::Error),
    /// `Date:` could not be formatted (a clock before 1900).
    #[error("the Date header could not be formatted")]
    Date,
}

impl SmtpError {
    /// Stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            SmtpError::Connect(_) => "smtp.connect",
            SmtpError::Timeout => "smtp.timeout",
            SmtpError::TransientReply { .. } => "smtp.transient_reply",
            SmtpError::PermanentReply { .. } => "smtp.permanent_reply",
            SmtpError::Session(_) => "smtp.session",
            SmtpError::TlsNotConfigured => "smtp.tls_not_configured",
            SmtpError::Recipient => "smtp.recipient",
            SmtpError::Message(_) => "smtp.message",
            SmtpError::Date => "smtp.date",
        }
    }

    /// A text for operators (members never see mail errors: the portal answers the
    /// same whether a mail went out or not).
    pub fn message(&self, lang: Lang) -> Cow<'static, str> {
        match lang {
            Lang::En => Cow::Owned(self.to_string()),
            _ => match self {
                SmtpError::Connect(_) => "メール送信サーバーに接続できません。".into(),
                SmtpError::Timeout => "メール送信サーバーが時間内に応答しません。".into(),
                SmtpError::TransientReply { code } => {
                    format!("メール送信サーバーが一時的なエラー({code})を返しました。").into()
                }
                SmtpError::PermanentReply { code } => {
                    format!("メール送信サーバーが送信を拒否しました({code})。").into()
                }
                SmtpError::Session(_) => {
                    "メール送信サーバーとの通信(TLS またはプロトコル)に失敗しました。".into()
                }
                SmtpError::TlsNotConfigured => "TLS が設定されていません。".into(),
                SmtpError::Recipient => "宛先のメールアドレスを SMTP で使えません。".into(),
                SmtpError::Message(_) => "メールを組み立てられません。".into(),
                SmtpError::Date => "Date ヘッダーを作れません。".into(),
            },
        }
    }

    /// Whether trying again later may work.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SmtpError::Connect(_)
                | SmtpError::Timeout
                | SmtpError::TransientReply { .. }
                | SmtpError::Session(_)
        )
    }

    /// Sorts a lettre error: replies by their code (without their text), the rest as
    /// session failures.
    fn from_lettre(e: lettre::transport::smtp::Error) -> Self {
        match e.status() {
            Some(code) => {
                let code = code.to_string().parse().unwrap_or(0);
                if e.is_permanent() {
                    SmtpError::PermanentReply { code }
                } else {
                    SmtpError::TransientReply { code }
                }
            }
            None if e.is_timeout() => SmtpError::Timeout,
            None => SmtpError::Session(e),
        }
    }

    /// Whether a failure on a reused connection may just mean the server closed it
    /// while idle, so a fresh connection is worth one try.
    fn may_be_stale_connection(&self) -> bool {
        matches!(
            self,
            SmtpError::Session(_) | SmtpError::Connect(_) | SmtpError::TransientReply { code: 421 }
        )
    }
}

impl From<SmtpError> for MailError {
    fn from(e: SmtpError) -> Self {
        if e.is_transient() {
            MailError::Transient(Box::new(e))
        } else {
            MailError::Permanent(Box::new(e))
        }
    }
}

/// What begins a certificate in PEM.
const CERT_PEM_MARKER: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// The headers every mail of one insurer carries.
#[derive(Clone, Debug)]
struct SenderHeaders {
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// The sender's domain in ASCII, right of the `@` in every `Message-ID`.
    message_id_domain: String,
}

/// Sends mail through an SMTP server (feature `smtp`).
///
/// Built from a URL ([`SmtpMailer::from_url`]; the forms are listed on [`SmtpConfig`])
/// or a [`SmtpConfig`]. Connections are opened with `TCP_NODELAY` (lettre's own
/// sockets wait ~40 ms per message on the delayed ACK) and reused for
/// [`SmtpConfig::idle_timeout`]; at most [`SmtpConfig::max_connections`] are open at
/// once. A 4xx reply, a timeout or a broken connection is
/// [`MailError::Transient`]; a 5xx reply or an address SMTP cannot carry is
/// [`MailError::Permanent`].
///
/// A send on a reused connection that fails as if the server had closed it while idle
/// is tried once more on a new connection. If the connection broke after the server
/// had taken the mail but before its reply arrived, the member gets the mail twice —
/// the price of not losing it.
pub struct SmtpMailer {
    connector: Connector,
    pool: Pool,
    headers: SenderHeaders,
    timeout: Duration,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.connector.host)
            .field("port", &self.connector.port)
            .field("security", &self.connector.security)
            .field("idle_connections", &self.pool.idle_count())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the server in `url` (see [`SmtpConfig`] for the forms), sending as
    /// the insurer in `profile`: `From: 「insurer_name」 <sender_address>`.
    pub fn from_url(url: &str, profile: &InsurerProfile) -> Result<Self, SmtpConfigError> {
        Self::new(SmtpConfig::from_url(url)?, profile)
    }

    /// A mailer from a configuration, sending as the insurer in `profile`. Checks the
    /// configuration and the addresses now, so a bad one fails at start-up rather than
    /// at the first mail. Opens no connection (see [`SmtpMailer::test_connection`]).
    pub fn new(config: SmtpConfig, profile: &InsurerProfile) -> Result<Self, SmtpConfigError> {
        config.check()?;
        let sender: Address = profile
            .sender_address
            .trim()
            .parse()
            .map_err(|_| SmtpConfigError::SenderAddress)?;
        let name = profile.insurer_name.trim();
        let display = (!name.is_empty()).then(|| name.to_owned());
        let reply_to = match &config.reply_to {
            Some(r) => Some(Mailbox::new(
                display.clone(),
                r.trim().parse().map_err(|_| SmtpConfigError::ReplyTo)?,
            )),
            None => None,
        };
        let message_id_domain =
            idna::domain_to_ascii(sender.domain()).map_err(|_| SmtpConfigError::SenderAddress)?;
        if message_id_domain.is_empty() {
            return Err(SmtpConfigError::SenderAddress);
        }
        let hello_name = config
            .hello_name
            .clone()
            .unwrap_or_else(|| message_id_domain.clone());
        if hello_name.is_empty()
            || !hello_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(SmtpConfigError::HelloName);
        }
        let tls = match config.security {
            SmtpSecurity::Plain => None,
            _ => {
                let mut builder = TlsParameters::builder(config.host.clone());
                for pem in &config.root_certificates {
                    // lettre reads a PEM without any certificate as an empty list.
                    let has_cert = pem
                        .windows(CERT_PEM_MARKER.len())
                        .any(|w| w == CERT_PEM_MARKER);
                    if !has_cert {
                        return Err(SmtpConfigError::Certificate);
                    }
                    let cert =
                        Certificate::from_pem(pem).map_err(|_| SmtpConfigError::Certificate)?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build().map_err(|_| SmtpConfigError::Tls)?)
            }
        };
        let credentials = config
            .credentials
            .as_ref()
            .map(|c| Credentials::new(c.user().to_owned(), c.password().to_owned()));
        Ok(SmtpMailer {
            connector: Connector {
                host: config.host.clone(),
                port: config.port,
                security: config.security,
                tls,
                hello: ClientId::Domain(hello_name),
                credentials,
                timeout: config.timeout,
            },
            pool: Pool::new(config.max_connections, config.idle_timeout),
            headers: SenderHeaders {
                from: Mailbox::new(display, sender),
                reply_to,
                message_id_domain,
            },
            timeout: config.timeout,
        })
    }

    /// Connects (TLS, `EHLO`, `AUTH`) once and keeps the connection for the first
    /// mail: call it at start-up to find a wrong host, certificate or password before a
    /// member does.
    pub async fn test_connection(&self) -> Result<(), SmtpError> {
        let _slot = self.acquire_slot().await?;
        let conn = self.connector.connect().await?;
        self.pool.put(conn);
        Ok(())
    }

    /// Says `QUIT` on every idle connection. Call it at shutdown, after the queue in
    /// front has drained; connections in use are closed when their send ends.
    pub async fn close(&self) {
        for mut conn in self.pool.drain() {
            let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
        }
    }

    async fn acquire_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, SmtpError> {
        match tokio::time::timeout(self.timeout, self.pool.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(SmtpError::Timeout),
        }
    }

    async fn deliver(&self, mail: &OutgoingMail) -> Result<(), SmtpError> {
        let message = build_message(mail, &self.headers, OffsetDateTime::now_utc())?;
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let _slot = self.acquire_slot().await?;
        if let Some(mut conn) = self.pool.take() {
            match self.send_on(&mut conn, &envelope, &bytes).await {
                Ok(()) => {
                    self.pool.put(conn);
                    return Ok(());
                }
                // The server may have closed it while idle; idle connections of the
                // same age likely are closed too. Go on with a new one.
                Err(e) if e.may_be_stale_connection() => drop(self.pool.drain()),
                Err(e) => return Err(e),
            }
        }
        let mut conn = self.connector.connect().await?;
        self.send_on(&mut conn, &envelope, &bytes).await?;
        self.pool.put(conn);
        Ok(())
    }

    /// One `MAIL`/`RCPT`/`DATA` exchange within the timeout.
    async fn send_on(
        &self,
        conn: &mut lettre::transport::smtp::client::AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), SmtpError> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, bytes)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SmtpError::from_lettre(e)),
            Err(_) => Err(SmtpError::Timeout),
        }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.deliver(mail).await.map_err(MailError::from)
    }
}

/// The recipient as lettre's address. Legacy docomo/au addresses (`a..b@docomo.ne.jp`,
/// DOM-21) break RFC 5322 and lettre refuses them; our parser accepted them with only
/// atext and dots in the local part, which cannot inject anything into an SMTP
/// command, and the carriers' servers take them bare.
fn recipient(to: &crate::domain::EmailAddress) -> Result<Address, SmtpError> {
    match Address::new(to.local_part(), to.domain()) {
        Ok(a) => Ok(a),
        Err(_) if to.is_legacy_non_rfc() => {
            Ok(Address::new_dangerous(to.local_part(), to.domain()))
        }
        Err(_) => Err(SmtpError::Recipient),
    }
}

/// `Date:` in Japan time, RFC 5322 style: `Tue, 25 Nov 2025 09:05:03 +0900`. Members
/// read it in their mail app; JST shows the hour they expect.
fn jst_date(now: OffsetDateTime) -> Result<String, SmtpError> {
    now.to_offset(time::macros::offset!(+9))
        .format(&Rfc2822)
        .map_err(|_| SmtpError::Date)
}

/// A fresh `Message-ID`: 128 random bits at the sender's domain (RFC 5322 §3.6.4).
fn message_id(domain: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    format!("<{}@{domain}>", crate::model::hex(&bytes))
}

/// Builds the message: headers from the insurer, subject and body from the rendering.
fn build_message(
    mail: &OutgoingMail,
    headers: &SenderHeaders,
    now: OffsetDateTime,
) -> Result<Message, SmtpError> {
    // A subject is one line; a stray control character must not start a new header.
    let subject: String = mail
        .rendered
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let to = recipient(&mail.to)?;
    // Set explicitly: lettre would re-parse `To:`, which refuses legacy addresses.
    let envelope = Envelope::new(Some(headers.from.email.clone()), vec![to.clone()])
        .map_err(SmtpError::Message)?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(headers.from.clone())
        .to(Mailbox::new(None, to))
        .subject(subject)
        .message_id(Some(message_id(&headers.message_id_domain)))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".to_owned(),
        ));
    if let Some(reply_to) = &headers.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let mut message = builder
        .singlepart(SinglePart::plain(mail.rendered.body.clone()))
        .map_err(SmtpError::Message)?;
    // lettre writes `Date:` in UTC and would replace a `+0900` date it cannot parse
    // back, so the JST one goes in after building.
    let date = jst_date(now)?;
    message
        .headers_mut()
        .insert_raw(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("Date"),
            date.clone(),
            date,
        ));
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use crate::mail::{MailMessage, RenderedMail};

    fn profile() -> InsurerProfile {
        InsurerProfile::new(
            "さくら健康保険組合",
            "さくらけんぽWeb",
            "no-reply@sakura-kenpo.example.jp",
            "03-0000-0000",
            "https://portal.sakura-kenpo.example.jp",
        )
    }

    fn mail(to: &str) -> OutgoingMail {
        OutgoingMail {
            to: EmailAddress::parse(to).unwrap(),
            lang: Lang::Ja,
            message: MailMessage::RegistrationCompleted {
                login_url: "https://portal.sakura-kenpo.example.jp/login".into(),
            },
            rendered: RenderedMail {
                subject: "【さくら健康保険組合】利用登録完了のお知らせ".into(),
                body: "利用登録が完了しました。\nお心当たりのない場合は 03-0000-0000 へ。\n".into(),
            },
        }
    }

    fn built(m: &OutgoingMail) -> String {
        let mailer = SmtpMailer::from_url("smtp://127.0.0.1:2525", &profile()).unwrap();
        let at = time::macros::datetime!(2025-11-25 00:05:03 UTC);
        let msg = build_message(m, &mailer.headers, at).unwrap();
        String::from_utf8(msg.formatted()).unwrap()
    }

    // Members read the time in JST; the header says +0900 and the JST wall clock.
    #[test]
    fn smtp_date_header_is_jst() {
        let text = built(&mail("taro@example.jp"));
        assert!(
            text.contains("Date: Tue, 25 Nov 2025 09:05:03 +0900\r\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("\r\nDate: ").count() + usize::from(text.starts_with("Date: ")),
            1
        );
    }

    // Message-ID is on the sender's domain; Auto-Submitted silences auto-responders.
    #[test]
    fn smtp_message_id_and_auto_submitted() {
        let text = built(&mail("taro@example.jp"));
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap();
        assert!(
            id.starts_with('<') && id.ends_with("@sakura-kenpo.example.jp>"),
            "{id}"
        );
        assert_eq!(id.len(), "<@sakura-kenpo.example.jp>".len() + 32);
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"));
        assert_ne!(message_id("a.example"), message_id("a.example"));
    }

    // Non-ASCII never goes raw into headers: subject and display name are RFC 2047
    // encoded, the body is UTF-8 text/plain in a 7-bit transfer encoding.
    #[test]
    fn smtp_headers_are_encoded_and_body_is_utf8() {
        let text = built(&mail("taro@example.jp"));
        let head = text.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "{head}");
        assert!(head.contains("Subject: =?utf-8?"), "{head}");
        assert!(head.contains("From: =?utf-8?"), "{head}");
        assert!(head.contains("<no-reply@sakura-kenpo.example.jp>"));
        assert!(head.contains("To: taro@example.jp"));
        assert!(head.contains("MIME-Version: 1.0"));
        assert!(
            head.contains("Content-Type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(text.is_ascii());
    }

    // A control character in a subject cannot add a header.
    #[test]
    fn smtp_subject_cannot_inject_headers() {
        let mut m = mail("taro@example.jp");
        m.rendered.subject = "Hello\r\nBcc: evil@example.com".into();
        let text = built(&m);
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }

    // DOM-21: a legacy docomo address is delivered to, bare.
    #[test]
    fn smtp_legacy_carrier_address_is_sendable() {
        let to = EmailAddress::parse("docomo..ab1234yz.@docomo.ne.jp").unwrap();
        assert!(to.is_legacy_non_rfc());
        let a = recipient(&to).unwrap();
        assert_eq!(a.to_string(), "docomo..ab1234yz.@docomo.ne.jp");
        let mut m = mail("taro@example.jp");
        m.to = to;
        assert!(built(&m).contains("To: docomo..ab1234yz.@docomo.ne.jp\r\n"));
    }

    // Reply-To carries the insurer's name and the configured address.
    #[test]
    fn smtp_reply_to_from_config() {
        let config = SmtpConfig::from_url("smtp://127.0.0.1:2525")
            .unwrap()
            .reply_to("help@sakura-kenpo.example.jp");
        let mailer = SmtpMailer::new(config, &profile()).unwrap();
        let at = OffsetDateTime::now_utc();
        let text = String::from_utf8(
            build_message(&mail("a@example.jp"), &mailer.headers, at)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(text.contains("Reply-To: =?utf-8?"), "{text}");
        assert!(text.contains("<help@sakura-kenpo.example.jp>"));
    }

    // A bad sender, Reply-To or EHLO name fails at start-up, not at the first mail.
    #[test]
    fn smtp_bad_addresses_fail_at_construction() {
        let mut p = profile();
        p.sender_address = "not an address".into();
        assert_eq!(
            SmtpMailer::from_url("smtp://127.0.0.1", &p).unwrap_err(),
            SmtpConfigError::SenderAddress
        );
        let config = |url| SmtpConfig::from_url(url).unwrap();
        let refused = |c| SmtpMailer::new(c, &profile()).unwrap_err();
        assert_eq!(
            refused(config("smtp://127.0.0.1").reply_to("nope")),
            SmtpConfigError::ReplyTo
        );
        assert_eq!(
            refused(config("smtp://127.0.0.1").hello_name("a b")),
            SmtpConfigError::HelloName
        );
        assert_eq!(
            refused(config("smtps://127.0.0.1").add_root_certificate_pem("not pem")),
            SmtpConfigError::Certificate
        );
    }

    // 4xx, timeouts and broken sessions may pass; 5xx and bad addresses will not.
    #[test]
    fn smtp_errors_sort_into_transient_and_permanent() {
        let transient = [
            SmtpError::Timeout,
            SmtpError::TransientReply { code: 451 },
            SmtpError::Connect(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ];
        for e in transient {
            assert!(matches!(MailError::from(e), MailError::Transient(_)));
        }
        let permanent = [
            SmtpError::PermanentReply { code: 550 },
            SmtpError::Recipient,
        ];
        for e in permanent {
            let code = e.code();
            assert!(
                matches!(MailError::from(e), MailError::Permanent(_)),
                "{code}"
            );
        }
    }
}
