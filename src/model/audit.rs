//! Security events (SEC-44): what happened, with pseudonymous identifiers only.

use serde::Serialize;
use time::OffsetDateTime;

use super::{AccountId, FlowId, MemberId};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum AuditKind {
    /// R1: a registration mail was requested (sent or throttled).
    RegistrationStarted,
    /// R1 for an address that already has an account: the owner was notified instead.
    RegistrationForRegisteredAddress,
    /// A mail was not sent because of a per-address throttle (SEC-13).
    MailThrottled,
    /// R2: link 1 was opened.
    RegistrationLinkOpened,
    /// R3: the roster check failed.
    IdentityFailed,
    /// R3: the member's identity checks hit the per-member limit; the member is blocked
    /// for the window (SEC-09). Insurers may want to be alerted.
    IdentityMemberBlocked,
    /// R3: identity confirmed, 認証キー shown.
    IdentityVerified,
    /// R4: wrong 認証キー.
    AuthKeyFailed,
    /// R4: 認証キー accepted.
    AuthKeyConfirmed,
    /// R2': temporary credentials accepted.
    TemporaryCredentialsAccepted,
    /// R2': temporary credentials refused.
    TemporaryCredentialsFailed,
    /// R5: the chosen address belongs to a family member.
    FamilyEmailRefused,
    /// R5: account created.
    RegistrationCompleted,
    /// L1: password accepted, 暗証キー sent.
    LoginPasswordAccepted,
    /// L1: login refused (wrong password, unknown ID, locked, disabled — detail says).
    LoginFailed,
    /// L1: the account hit the password-failure cap or delay.
    AccountLocked,
    /// L2: wrong 暗証キー.
    OtpFailed,
    /// L2: too many wrong 暗証キー entries; login aborted.
    OtpAttemptsExhausted,
    /// L3: code screen closed or lapsed.
    OtpScreenClosed,
    /// L4: 暗証キー resent.
    OtpResent,
    /// R3's link 2 was mailed again (the 認証キー unchanged).
    VerificationLinkResent,
    /// L2: logged in.
    LoginSucceeded,
    /// L2: the accepted code sent again within the repeat window; told of the login
    /// already made (no second login).
    LoginRepeated,
    /// Password hash upgraded to the current parameters (SEC-20).
    PasswordRehashed,
    /// A try to hand a mail to the mail system failed (detail: the kind of mail). The
    /// outbox tries again while the mail is useful.
    MailFailed,
    /// A mail was given up — refused for good, or undelivered until what it carries
    /// expired — and its allowance given back (detail: kind and reason).
    MailGivenUp,
    /// ログインIDを忘れた方: a reminder was asked for (detail: sent, no_match, throttled).
    LoginIdReminderRequested,
    /// パスワードを忘れた方: a reset was asked for (detail: sent, no_account, throttled).
    PasswordResetRequested,
    /// A reset link was opened (consumed).
    PasswordResetLinkOpened,
    /// A password reset completed; the lockout was cleared (SEC-25).
    PasswordResetCompleted,
    /// A logged-in member changed their password (SEC-18).
    PasswordChanged,
    /// A logged-in member asked to change their address; link mailed to the new one.
    EmailChangeRequested,
    /// The new address was confirmed and is now the account's (SEC-36).
    EmailChanged,
    /// The insurer provisioned (or re-issued) an account with a temporary password.
    AccountProvisioned,
    /// The insurer disabled an account (資格喪失).
    AccountDisabled,
    /// 2段階認証の設定 began (detail: the factor); its secret is shown once.
    FactorSetupStarted,
    /// A second factor was added (detail: `totp`, `recovery_codes` for a new set).
    FactorAdded,
    /// A second factor was removed (detail: the factor; `reset` when a password reset
    /// removed them under the policy).
    FactorRemoved,
    /// A wrong 確認コード or リカバリーコード (detail: `totp`, `recovery_code`,
    /// `totp_setup`); counted like a wrong 暗証キー (SEC-29).
    SecondFactorFailed,
    /// A リカバリーコード was used to log in (it is spent; the member is notified).
    RecoveryCodeUsed,
}

/// One security event, with pseudonymous identifiers only: never a secret, a full
/// address or a card number (SEC-44, SEC-45).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When (UTC).
    pub at: OffsetDateTime,
    /// What.
    pub kind: AuditKind,
    /// The account, if known.
    pub account: Option<AccountId>,
    /// The flow, if any.
    pub flow: Option<FlowId>,
    /// The roster member, if known.
    pub member: Option<MemberId>,
    /// The address involved, masked (`t***@example.jp`).
    pub email_masked: Option<String>,
    /// A short machine-readable detail (a rejection code, a count).
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at` with no identifiers yet.
    pub fn new(kind: AuditKind, at: OffsetDateTime) -> Self {
        AuditEvent {
            at,
            kind,
            account: None,
            flow: None,
            member: None,
            email_masked: None,
            detail: None,
        }
    }

    /// Names the account.
    pub fn account(mut self, id: &AccountId) -> Self {
        self.account = Some(id.clone());
        self
    }

    /// Names the flow.
    pub fn flow(mut self, id: &FlowId) -> Self {
        self.flow = Some(id.clone());
        self
    }

    /// Names the member.
    pub fn member(mut self, id: &MemberId) -> Self {
        self.member = Some(id.clone());
        self
    }

    /// Records the masked address.
    pub fn email(mut self, masked: String) -> Self {
        self.email_masked = Some(masked);
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}
