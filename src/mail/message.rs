//! What a mail says, as data. Rendering to text is separate ([`crate::mail::render`]),
//! so hosts can override wording and tests can read links and codes from the typed
//! message instead of scraping text.

use std::fmt;

use time::OffsetDateTime;

use crate::domain::EmailAddress;
use crate::lang::Lang;
use crate::token::{
    EmailChangeLinkToken, OtpCode, PasswordResetLinkToken, RegistrationLinkToken,
    VerificationLinkToken,
};

/// A link in a mail: the full URL (built from the configured base URL only, SEC-39) and
/// the typed token inside it. Its `Debug` shows the URL without its query (the token),
/// so a logged mail carries no bearer secret (SEC-04).
#[derive(Clone, PartialEq, Eq)]
pub struct MailLink<T> {
    /// The URL to print in the mail.
    pub url: String,
    /// The token the URL carries.
    pub token: T,
    /// When the link stops working.
    pub expires_at: OffsetDateTime,
}

impl<T: fmt::Debug> fmt::Debug for MailLink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let without_query = self.url.split('?').next().unwrap_or_default();
        f.debug_struct("MailLink")
            .field("url", &format_args!("{without_query}?[redacted]"))
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The content of one mail, without its wording.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailMessage {
    /// 「利用登録手続きのご案内」: link 1 (R1).
    RegistrationLink(MailLink<RegistrationLinkToken>),
    /// Sent instead of link 1 when the address already has an account (SEC-07): tells the
    /// owner someone asked, and where to log in or recover.
    AlreadyRegistered {
        /// The login page.
        login_url: String,
    },
    /// 「本人確認完了のご案内」: link 2 (R3). The 認証キー is NOT in it: it is on the
    /// screen, a different channel.
    IdentityVerified(MailLink<VerificationLinkToken>),
    /// 「利用登録完了のお知らせ」 (SEC-43).
    RegistrationCompleted {
        /// The login page.
        login_url: String,
    },
    /// 「暗証キーのご案内」 (L1, L4).
    LoginOtp {
        /// The 暗証キー.
        code: OtpCode,
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// The password was right but the 暗証キー step failed or was abandoned (SEC-31).
    LoginOtpAborted {
        /// When it happened.
        at: OffsetDateTime,
    },
    /// The account hit the password-failure limit (SEC-43).
    AccountLocked {
        /// When it happened.
        at: OffsetDateTime,
    },
    /// 「ログインIDのお知らせ」 (SEC-40): the login ID, mailed to the registered address only.
    LoginIdReminder {
        /// The login ID.
        login_id: String,
    },
    /// 「パスワード再設定のご案内」 (SEC-38).
    PasswordResetLink(MailLink<PasswordResetLinkToken>),
    /// 「パスワード変更のお知らせ」 (SEC-43).
    PasswordChanged {
        /// When it happened.
        at: OffsetDateTime,
    },
    /// Confirmation link sent to a new address (SEC-36).
    EmailChangeLink(MailLink<EmailChangeLinkToken>),
    /// Notice to the old address after an address change (SEC-36, SEC-43).
    EmailChanged {
        /// The new address, masked.
        new_address_masked: String,
        /// When it happened.
        at: OffsetDateTime,
    },
    /// 「2段階認証の設定のお知らせ」: a second factor was added, or a new set of
    /// リカバリーコード replaced the old one (SEC-43).
    SecondFactorAdded {
        /// Which factor.
        factor: crate::model::FactorKind,
        /// When it happened.
        at: OffsetDateTime,
    },
    /// 「2段階認証の解除のお知らせ」: a second factor was removed (SEC-43).
    SecondFactorRemoved {
        /// Which factor.
        factor: crate::model::FactorKind,
        /// When it happened.
        at: OffsetDateTime,
    },
    /// 「リカバリーコード使用のお知らせ」: a リカバリーコード was used to log in (SEC-43).
    RecoveryCodeUsed {
        /// When it happened.
        at: OffsetDateTime,
        /// Codes left in the set.
        remaining: u32,
    },
}

impl MailMessage {
    /// Stable name of the kind of mail, for logs and throttles.
    pub fn kind(&self) -> &'static str {
        match self {
            MailMessage::RegistrationLink(_) => "registration_link",
            MailMessage::AlreadyRegistered { .. } => "already_registered",
            MailMessage::IdentityVerified(_) => "identity_verified",
            MailMessage::RegistrationCompleted { .. } => "registration_completed",
            MailMessage::LoginOtp { .. } => "login_otp",
            MailMessage::LoginOtpAborted { .. } => "login_otp_aborted",
            MailMessage::AccountLocked { .. } => "account_locked",
            MailMessage::LoginIdReminder { .. } => "login_id_reminder",
            MailMessage::PasswordResetLink(_) => "password_reset_link",
            MailMessage::PasswordChanged { .. } => "password_changed",
            MailMessage::EmailChangeLink(_) => "email_change_link",
            MailMessage::EmailChanged { .. } => "email_changed",
            MailMessage::SecondFactorAdded { .. } => "second_factor_added",
            MailMessage::SecondFactorRemoved { .. } => "second_factor_removed",
            MailMessage::RecoveryCodeUsed { .. } => "recovery_code_used",
        }
    }

    /// Until when the mail is worth delivering: the deadline of the link or code it
    /// carries. `None` for a notice, which carries nothing that expires.
    pub fn useful_until(&self) -> Option<OffsetDateTime> {
        match self {
            MailMessage::RegistrationLink(l) => Some(l.expires_at),
            MailMessage::IdentityVerified(l) => Some(l.expires_at),
            MailMessage::PasswordResetLink(l) => Some(l.expires_at),
            MailMessage::EmailChangeLink(l) => Some(l.expires_at),
            MailMessage::LoginOtp { expires_at, .. } => Some(*expires_at),
            MailMessage::AlreadyRegistered { .. }
            | MailMessage::RegistrationCompleted { .. }
            | MailMessage::LoginOtpAborted { .. }
            | MailMessage::AccountLocked { .. }
            | MailMessage::LoginIdReminder { .. }
            | MailMessage::PasswordChanged { .. }
            | MailMessage::EmailChanged { .. }
            | MailMessage::SecondFactorAdded { .. }
            | MailMessage::SecondFactorRemoved { .. }
            | MailMessage::RecoveryCodeUsed { .. } => None,
        }
    }
}

/// Subject and text body, ready to send. Its `Debug` shows the subject and only the
/// body's length: the body holds the link or the 暗証キー (SEC-04).
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// Subject line (UTF-8; the transport encodes it).
    pub subject: String,
    /// Plain-text body (UTF-8).
    pub body: String,
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("subject", &self.subject)
            .field(
                "body",
                &format_args!("[redacted, {} chars]", self.body.chars().count()),
            )
            .finish()
    }
}

/// One mail to send: recipient, typed content and its rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipient (sent to its `for_sending()` spelling).
    pub to: EmailAddress,
    /// Language it was rendered in.
    pub lang: Lang,
    /// What it says, as data.
    pub message: MailMessage,
    /// How it says it.
    pub rendered: RenderedMail,
}
