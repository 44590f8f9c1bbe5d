//! The example's mailer: every mail goes to the outbox folder as an `.eml` file (or to
//! the SMTP server of `SMTP_URL`), and — in development only — its link or code is also
//! printed on the console, so a developer can click through without opening the files.
//!
//! SEC-39 forbids tokens in logs. The echo is therefore a switch of this example
//! (`--dev-log-secrets`, on by default only for a loopback base URL), announced by a
//! DEV-ONLY banner at start-up, and it prints to stderr directly rather than through
//! `tracing`, so no log pipeline ever collects it. A production host uses an SMTP mailer
//! and never echoes.

use std::sync::Arc;

use async_trait::async_trait;
use kenpo_auth::mail::{MailMessage, OutgoingMail};
use kenpo_auth::ports::{MailError, Mailer};

/// The real delivery (outbox or SMTP) plus the optional DEV-ONLY console echo.
pub(crate) struct DevConsoleMailer {
    delivery: Arc<dyn Mailer>,
    echo_secrets: bool,
}

impl DevConsoleMailer {
    /// Sends through `delivery`; echoes links and codes when `echo_secrets` is set.
    pub(crate) fn new(delivery: Arc<dyn Mailer>, echo_secrets: bool) -> Self {
        DevConsoleMailer {
            delivery,
            echo_secrets,
        }
    }
}

/// The console line for a mail, when it carries something the member must use.
pub(crate) fn dev_echo_line(mail: &OutgoingMail) -> Option<String> {
    let to = mail.to.masked();
    let subject = &mail.rendered.subject;
    match &mail.message {
        MailMessage::RegistrationLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::IdentityVerified(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::PasswordResetLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::EmailChangeLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::LoginOtp { code, .. } => Some(format!(
            "{subject} → {to}: 暗証キー {}",
            code.expose_secret()
        )),
        _ => None,
    }
}

#[async_trait]
impl Mailer for DevConsoleMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.delivery.send(mail).await?;
        if self.echo_secrets
            && let Some(line) = dev_echo_line(mail)
        {
            eprintln!("[DEV-ONLY mail] {line}");
        }
        Ok(())
    }
}
