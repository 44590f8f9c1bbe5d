//! Errors: what the member caused ([`Rejection`]) and what the host's side did ([`Error`]).

use time::Duration;

use crate::domain::InputError;

/// Why a member's request was refused.
///
/// Every variant has a stable [`code`](Rejection::code) for logs, tests and UI mapping,
/// and a [`message`](Rejection::message) in the words members see. No message says which
/// of login ID / password, or which identity attribute, was wrong (SEC-09, SEC-23).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Something the member typed could not be read (e-mail, 記号・番号・枝番, password …).
    #[error("invalid input: {0}")]
    InvalidInput(#[from] InputError),
    /// A link or handle is unknown or malformed.
    #[error("link or handle is not valid")]
    LinkInvalid,
    /// A link was already used.
    #[error("link was already used")]
    LinkUsed,
    /// A link, key or step has passed its lifespan.
    #[error("link or step has expired")]
    Expired,
    /// The request does not belong to the step the flow is at (SEC-10).
    #[error("this step is not available now")]
    WrongStep,
    /// The identity attributes did not match the roster (never says which, SEC-09).
    #[error("identity could not be confirmed")]
    IdentityNotConfirmed,
    /// R3 was sent again by the browser that already passed it (a double tap, a lost
    /// response). The 認証キー was shown once and is not shown again: the host shows the
    /// key it kept, or tells the member to go on with the key on the earlier screen and
    /// link 2 (which [`Portal::resend_verification_link`](crate::Portal::resend_verification_link)
    /// can mail again) before `expires_at`.
    #[error("identity already verified")]
    IdentityAlreadyVerified {
        /// When the 認証キー and link 2 stop working.
        expires_at: time::OffsetDateTime,
    },
    /// Too many identity checks for this flow or this member (SEC-09).
    #[error("too many identity attempts")]
    IdentityAttemptsExhausted,
    /// The 認証キー was wrong.
    #[error("authentication key is not correct")]
    AuthKeyIncorrect,
    /// The 認証キー is dead after too many wrong entries (SEC-11).
    #[error("authentication key attempts exhausted")]
    AuthKeyAttemptsExhausted,
    /// The address is bound to another family member's account (only said after the
    /// member's identity is proven).
    #[error("e-mail address is used by a family member")]
    FamilyEmailInUse,
    /// This member already has an account.
    #[error("member already has an account")]
    AlreadyRegistered,
    /// The login ID is taken.
    #[error("login ID is taken")]
    LoginIdTaken,
    /// The chosen login ID identifies the member (e-mail, card numbers, birth date;
    /// SEC-42).
    #[error("login ID must not be the e-mail address, card number or birth date")]
    LoginIdIdentifying,
    /// 新パスワード and 新パスワード(確認) differ.
    #[error("password confirmation does not match")]
    PasswordConfirmationMismatch,
    /// The new password is the temporary one (SEC-41).
    #[error("new password equals the temporary password")]
    PasswordSameAsTemporary,
    /// Login ID or password wrong, account unknown, locked or disabled: one answer for
    /// all (SEC-23).
    #[error("login failed")]
    LoginFailed,
    /// The 暗証キー was wrong.
    #[error("one-time code is not correct")]
    OtpIncorrect,
    /// The 暗証キー is no longer valid: used, screen closed, ended by a completed login
    /// or a password change, or past the challenge's resends. The member starts again
    /// at the login screen.
    #[error("one-time code is no longer valid")]
    OtpInvalid,
    /// The current 暗証キー passed its lifespan (10 minutes by default), but the code
    /// screen is still open: 「暗証キー再請求」 sends a new one. No try was spent.
    #[error("one-time code has expired")]
    OtpExpired,
    /// The code typed is one this screen had before a 暗証キー再請求: the member should
    /// type the one in the newest mail. No try was spent.
    #[error("one-time code was replaced by a newer one")]
    OtpReplaced,
    /// Too many wrong 暗証キー entries; the login was aborted (SEC-29).
    #[error("too many one-time code attempts")]
    OtpAttemptsExhausted,
    /// Wait before asking again (resend cooldown and caps, SEC-30).
    #[error("too many requests; retry after {retry_after}")]
    TooManyRequests {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Another request changed the same flow at the same moment; retrying may succeed.
    #[error("concurrent request; please retry")]
    Busy,
    /// A logged-in member's 現在のパスワード was wrong, or the account's password
    /// throttle (SEC-18, SEC-24) refuses checks for now. Counted like a login failure.
    #[error("current password is not correct")]
    CurrentPasswordIncorrect,
    /// The change needs a fresh login (password + 暗証キー) within the re-authentication
    /// window (SEC-36).
    #[error("fresh re-authentication required")]
    ReauthenticationRequired,
    /// Insurer side: no eligible roster member with this identifier (事前登録).
    #[error("no eligible roster member")]
    UnknownMember,
    /// The 確認コード (authenticator app) or リカバリーコード was wrong, already used, or
    /// belongs to another time step or account. A try was counted (SEC-29).
    #[error("second-factor code is not correct")]
    SecondFactorIncorrect,
    /// The policy does not offer this second factor, or the member has not set it up.
    #[error("second factor not available")]
    FactorUnavailable,
    /// The policy requires a second factor: the member's last one cannot be removed.
    #[error("the last second factor cannot be removed")]
    LastFactorRequired,
    /// The setup screen (認証アプリの設定) expired or was already finished; start again.
    #[error("factor setup is no longer valid")]
    FactorSetupInvalid,
    /// A passkey's name must be 1 to 32 visible characters.
    #[error("passkey name is not valid")]
    PasskeyNameInvalid,
}

impl Rejection {
    /// Whether the member must start the journey again (from the login screen, or from
    /// 新規利用登録 / the reset request) rather than correct something on the same
    /// screen. Frameworks use it to choose between showing the form again with the
    /// message and showing a dead end with a link back to the start.
    pub fn starts_over(&self) -> bool {
        matches!(
            self,
            Rejection::LinkInvalid
                | Rejection::LinkUsed
                | Rejection::Expired
                | Rejection::WrongStep
                | Rejection::IdentityAttemptsExhausted
                | Rejection::AuthKeyAttemptsExhausted
                | Rejection::FamilyEmailInUse
                | Rejection::AlreadyRegistered
                | Rejection::OtpInvalid
                | Rejection::OtpAttemptsExhausted
                | Rejection::ReauthenticationRequired
                | Rejection::FactorSetupInvalid
        )
    }

    /// How long the member should wait before trying again, where a cooldown applies.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejection::TooManyRequests { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

macro_rules! rejection_from_input {
    ($($t:ty),*) => {$(
        impl From<$t> for Rejection {
            fn from(e: $t) -> Self {
                Rejection::InvalidInput(InputError::from(e))
            }
        }
    )*};
}

rejection_from_input!(
    crate::domain::EmailError,
    crate::domain::CardNumberError,
    crate::domain::InsurerNumberError,
    crate::domain::BirthDateError,
    crate::domain::KanaNameError,
    crate::domain::LoginIdError,
    crate::domain::NicknameError,
    crate::domain::PasswordError
);

/// A host-side failure that has nothing to do with what the member did.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a `Portal` call can fail with.
///
/// `Rejected` is the member's doing: show its message. The others are the host's side:
/// log them, show a generic 「ただいまサービスを利用できません」 page, and let the member
/// retry — a failed step never leaves half-made state behind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The member's request was refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The store failed.
    #[error("store failed")]
    Store(#[from] crate::ports::StoreError),
    /// Sending a mail failed.
    #[error("mail delivery failed")]
    Mail(#[from] crate::ports::MailError),
    /// The member roster failed.
    #[error("member directory failed")]
    Directory(#[from] crate::ports::DirectoryError),
    /// Hashing a password failed.
    #[error("password hashing failed")]
    Hash(#[from] crate::password_hash::HashError),
}

impl Error {
    /// Whether the member may simply try again shortly: the store lost its connection
    /// or did not answer in time ([`StoreError::is_retryable`]), or the roster failed.
    /// Hosts answer these with their "try again" page (503 with `Retry-After`).
    ///
    /// [`StoreError::is_retryable`]: crate::ports::StoreError::is_retryable
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Store(e) => e.is_retryable(),
            Error::Directory(_) | Error::Mail(_) => true,
            Error::Rejected(_) | Error::Hash(_) => false,
        }
    }

    /// The rejection, if the member caused this error.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Error::Rejected(r) => Some(r),
            _ => None,
        }
    }
}
