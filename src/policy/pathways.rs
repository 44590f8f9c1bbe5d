//! SEC-47: every way into an account, with the controls on each — the security
//! inventory of the portal's entry points, kept beside the policy whose knobs bound them.
//!
//! [`Portal::pathways`] lists every public `Portal` entry point with the pathway it
//! belongs to, who calls it, and the throttles that bound it. The inventory test
//! (`tests/account.rs`) compares this table with the methods the source actually
//! defines, so a new entry point cannot ship without being inventoried.
//!
//! There are no default accounts: every account comes from a member's own registration
//! or from [`Portal::provision_account`]. No entry point lets the insurer or the host set
//! or read a member's password; the insurer can only issue a temporary password that
//! the member must replace at first use (SEC-41), or let a member's reset mail go out
//! ([`Portal::request_password_reset`] — the admin-initiated reset is that same call).

#[cfg(doc)]
use crate::Portal;

/// A way to reach, recover or change an account (SEC-47).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthPathway {
    /// 新規利用登録 R1–R5: e-mail link, roster check, on-screen 認証キー with link 2,
    /// own login ID and password.
    SelfRegistration,
    /// 事前登録 first use (R2'): the insurer-issued login ID and temporary password lead
    /// only to R5, where the member chooses their own (SEC-41).
    TemporaryCredentials,
    /// ログイン L1–L4: password, then the mailed 暗証キー.
    NormalLogin,
    /// ログインIDを忘れた方: the ID is mailed to the registered address only (SEC-40).
    LoginIdReminder,
    /// パスワードを忘れた方: mailed single-use link, roster re-check, new password
    /// (SEC-37, SEC-38). Also the admin-initiated reset: staff trigger the same mail.
    PasswordReset,
    /// パスワード変更 by a logged-in member, with the current password (SEC-18).
    PasswordChange,
    /// メールアドレス変更 by a freshly re-authenticated member, confirmed from the new
    /// address (SEC-36).
    EmailChange,
    /// The insurer issues (or re-issues) an account with a temporary password (SEC-41,
    /// SEC-42).
    InsurerProvisioning,
    /// The insurer disables an account on 資格喪失.
    InsurerDisabling,
    /// The host checks that a session's security stamp is current (SEC-34).
    SessionCheck,
    /// The host's periodic purge of dead flows and counters.
    Housekeeping,
    /// The host asks whether a step's mail went out, by the receipt the step answered
    /// (128 random bits, known only to that request's holder); a request that mailed
    /// nothing has a stand-in receipt that reads the same.
    MailDelivery,
    /// 2段階認証: setting up, regenerating and removing second factors by a freshly
    /// re-authenticated member (SEC-36), and logging in with them (L2 with a 認証アプリ
    /// or リカバリーコード, under the 暗証キー's budgets, SEC-29).
    SecondFactor,
}

/// A control that bounds how often, how long or how many times an entry point can be
/// used — what makes guessing or flooding through it hopeless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Throttle {
    /// Mails to one address: at least 60 s apart, at most 5 per hour; a throttled
    /// request answers like a sent one (SEC-13).
    MailPerAddress,
    /// Flow starts per requester (20 an hour, when the host names the requester with
    /// [`Portal::from_requester`]) and for the whole portal; a throttled request answers
    /// like a sent one (SEC-13).
    FlowStarts,
    /// Roster checks per flow (SEC-09).
    IdentityPerFlow,
    /// Roster checks per roster member across flows, registration and recovery alike
    /// (SEC-09).
    IdentityPerMember,
    /// Wrong 認証キー entries per key (SEC-11).
    AuthKeyTries,
    /// Wrong passwords per account: free tries, doubling delays, hard cap until a reset
    /// (SEC-24).
    PasswordFailures,
    /// Wrong 暗証キー entries per challenge (SEC-29).
    OtpPerChallenge,
    /// Consecutive wrong 暗証キー entries per account, then a cooldown (SEC-29).
    OtpPerAccount,
    /// 暗証キー再請求: cooldown and per-challenge cap (SEC-30).
    OtpResendCooldown,
    /// 暗証キー mails per account per hour (SEC-30).
    OtpMailsPerAccount,
    /// Link 2 mailed again: a mail interval apart, a few times per flow, before the
    /// link's unchanged deadline (SEC-13).
    LinkResendCap,
    /// The link or handle works once, before its expiry (SEC-02, SEC-06, SEC-38).
    SingleUseLink,
    /// Only within minutes of a full login (SEC-36).
    ReauthWindow,
    /// Bounded store batches.
    BoundedBatch,
}

impl Throttle {
    /// The rule of the security checklist the throttle implements.
    pub fn rule(self) -> &'static str {
        match self {
            Throttle::MailPerAddress | Throttle::FlowStarts => "SEC-13",
            Throttle::IdentityPerFlow | Throttle::IdentityPerMember => "SEC-09",
            Throttle::AuthKeyTries => "SEC-11",
            Throttle::PasswordFailures => "SEC-24",
            Throttle::OtpPerChallenge | Throttle::OtpPerAccount => "SEC-29",
            Throttle::OtpResendCooldown | Throttle::OtpMailsPerAccount => "SEC-30",
            Throttle::LinkResendCap => "SEC-13",
            Throttle::SingleUseLink => "SEC-38",
            Throttle::ReauthWindow => "SEC-36",
            Throttle::BoundedBatch => "DESIGN §4",
        }
    }
}

/// Who calls an entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Caller {
    /// A member's browser, through the host's pages.
    Member,
    /// The insurer's staff or back office (the admin API).
    Insurer,
    /// The host itself (session checks, jobs).
    Host,
}

/// One public `Portal` entry point in the SEC-47 inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryPoint {
    /// The method's name.
    pub method: &'static str,
    /// The pathway it belongs to.
    pub pathway: AuthPathway,
    /// Who calls it.
    pub caller: Caller,
    /// What bounds it. Empty for calls that reveal nothing and spend nothing (a link's
    /// GET, closing a code screen, a stamp check) and for the insurer's calls, which the
    /// host must put behind its own staff authentication.
    pub throttles: &'static [Throttle],
}

/// Builds the inventory from rows `method: Pathway by Caller, [Throttle, …];`.
macro_rules! entry_points {
    ($($method:ident: $pathway:ident by $caller:ident, [$($throttle:ident),*];)*) => {
        &[$(EntryPoint {
            method: stringify!($method),
            pathway: AuthPathway::$pathway,
            caller: Caller::$caller,
            throttles: &[$(Throttle::$throttle),*],
        }),*]
    };
}

/// The SEC-47 inventory: every public `Portal` entry point.
pub const ENTRY_POINTS: &[EntryPoint] = entry_points! {
    start_registration: SelfRegistration by Member, [MailPerAddress, FlowStarts];
    inspect_registration_link: SelfRegistration by Member, [];
    open_registration_link: SelfRegistration by Member, [SingleUseLink];
    verify_identity: SelfRegistration by Member, [IdentityPerFlow, IdentityPerMember];
    inspect_verification_link: SelfRegistration by Member, [];
    confirm_auth_key: SelfRegistration by Member, [SingleUseLink, AuthKeyTries];
    resend_verification_link: SelfRegistration by Member, [LinkResendCap];
    sign_in_with_temporary_password: TemporaryCredentials by Member, [PasswordFailures];
    complete_registration: SelfRegistration by Member, [SingleUseLink];
    start_login: NormalLogin by Member, [PasswordFailures, OtpMailsPerAccount];
    verify_otp: NormalLogin by Member, [OtpPerChallenge, OtpPerAccount];
    resend_otp: NormalLogin by Member, [OtpResendCooldown, OtpMailsPerAccount];
    close_otp_screen: NormalLogin by Member, [];
    heartbeat_otp_screen: NormalLogin by Member, [];
    check_security_stamp: SessionCheck by Host, [];
    account_summary: SessionCheck by Host, [];
    registration_email: SelfRegistration by Member, [];
    request_login_id_reminder: LoginIdReminder by Member, [MailPerAddress, FlowStarts];
    request_password_reset: PasswordReset by Member, [MailPerAddress, FlowStarts];
    inspect_password_reset_link: PasswordReset by Member, [];
    open_password_reset_link: PasswordReset by Member, [SingleUseLink];
    complete_password_reset: PasswordReset by Member, [IdentityPerFlow, IdentityPerMember];
    change_password: PasswordChange by Member, [PasswordFailures];
    change_email: EmailChange by Member, [ReauthWindow, MailPerAddress];
    inspect_email_change_link: EmailChange by Member, [];
    confirm_email_change: EmailChange by Member, [SingleUseLink];
    provision_account: InsurerProvisioning by Insurer, [];
    disable_account: InsurerDisabling by Insurer, [];
    purge_expired: Housekeeping by Host, [BoundedBatch];
    mail_status: MailDelivery by Host, [];
    start_totp_setup: SecondFactor by Member, [ReauthWindow];
    confirm_totp_setup: SecondFactor by Member, [ReauthWindow, OtpPerChallenge];
    verify_totp: SecondFactor by Member, [OtpPerChallenge, OtpPerAccount];
    use_recovery_code: SecondFactor by Member, [OtpPerChallenge, OtpPerAccount];
    regenerate_recovery_codes: SecondFactor by Member, [ReauthWindow];
    remove_factor: SecondFactor by Member, [ReauthWindow];
    list_factors: SessionCheck by Host, [];
    start_passkey_registration: SecondFactor by Member, [ReauthWindow];
    finish_passkey_registration: SecondFactor by Member, [ReauthWindow, SingleUseLink];
    verify_passkey: SecondFactor by Member, [OtpPerChallenge, OtpPerAccount];
    remove_passkey: SecondFactor by Member, [ReauthWindow];
    start_passkey_login: SecondFactor by Member, [FlowStarts, SingleUseLink];
    finish_passkey_login: SecondFactor by Member, [SingleUseLink, OtpPerChallenge];
};
