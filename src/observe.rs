//! What operators watch: a [`tracing`](https://docs.rs/tracing/0.1) span around every
//! [`Portal`](crate::Portal) step and, with the `metrics` feature, counters and a latency
//! histogram through the [`metrics`](https://docs.rs/metrics/0.24) facade.
//!
//! The library installs nothing: spans go to whatever `tracing` subscriber the host set
//! up (none: they cost a branch each), and metrics to whatever `metrics` recorder it
//! installed — a Prometheus exporter, StatsD, OpenTelemetry (none: they are dropped).
//! The example portal serves them as Prometheus text on a loopback port of its own
//! (`examples/portal/metrics_endpoint.rs`).
//!
//! The names below are a stable interface: dashboards and alerts are written against
//! them. A name or label that changes is a breaking change, listed in `UPGRADING.md`.
//!
//! ## Spans
//!
//! Every step runs in one span named `kenpo.step` (target `kenpo_auth::observe`, level
//! INFO), from the first read to the answer: the store, mailer and roster calls and the
//! Argon2 work happen inside it, so whatever they log nests under it. It holds no
//! secret, address, login ID or identifier of a member.
//!
//! | field | value |
//! |---|---|
//! | `step` | the step, from the table of steps below |
//! | `outcome` | recorded as the step answers: `ok`, the [`Rejection::code`] (`otp.incorrect`, `login.failed`, …), or `error` for a host-side [`Error`] |
//! | `retries` | recorded only when the step lost a compare-and-set race to a concurrent request and decided again: how many times |
//!
//! What the span covers is the step's work, not the time a member waits: the answer
//! floor of [`start_registration`](crate::Portal::start_registration) and the recovery
//! requests (SEC-07, SEC-37) is added after it, and what a step parses before it reads
//! anything (a malformed address, a roster member not eligible for
//! [`provision_account`](crate::Portal::provision_account), and the temporary password
//! hashed for it) is answered before the span opens, and is not counted below either.
//!
//! ## Steps
//!
//! | `step` | method |
//! |---|---|
//! | `start_registration` | [`Portal::start_registration`](crate::Portal::start_registration) (R1) |
//! | `inspect_registration_link` | [`Portal::inspect_registration_link`](crate::Portal::inspect_registration_link) (R2, GET) |
//! | `open_registration_link` | [`Portal::open_registration_link`](crate::Portal::open_registration_link) (R2) |
//! | `sign_in_with_temporary_password` | [`Portal::sign_in_with_temporary_password`](crate::Portal::sign_in_with_temporary_password) (R2') |
//! | `verify_identity` | [`Portal::verify_identity`](crate::Portal::verify_identity) (R3) |
//! | `resend_verification_link` | [`Portal::resend_verification_link`](crate::Portal::resend_verification_link) (R3) |
//! | `inspect_verification_link` | [`Portal::inspect_verification_link`](crate::Portal::inspect_verification_link) (R4, GET) |
//! | `confirm_auth_key` | [`Portal::confirm_auth_key`](crate::Portal::confirm_auth_key) (R4) |
//! | `complete_registration` | [`Portal::complete_registration`](crate::Portal::complete_registration) (R5) |
//! | `start_login` | [`Portal::start_login`](crate::Portal::start_login) (L1) |
//! | `verify_otp` | [`Portal::verify_otp`](crate::Portal::verify_otp) (L2) |
//! | `close_otp_screen` | [`Portal::close_otp_screen`](crate::Portal::close_otp_screen) (L3) |
//! | `heartbeat_otp_screen` | [`Portal::heartbeat_otp_screen`](crate::Portal::heartbeat_otp_screen) (L3) |
//! | `resend_otp` | [`Portal::resend_otp`](crate::Portal::resend_otp) (L4) |
//! | `request_login_id_reminder` | [`Portal::request_login_id_reminder`](crate::Portal::request_login_id_reminder) |
//! | `request_password_reset` | [`Portal::request_password_reset`](crate::Portal::request_password_reset) |
//! | `inspect_password_reset_link` | [`Portal::inspect_password_reset_link`](crate::Portal::inspect_password_reset_link) |
//! | `open_password_reset_link` | [`Portal::open_password_reset_link`](crate::Portal::open_password_reset_link) |
//! | `complete_password_reset` | [`Portal::complete_password_reset`](crate::Portal::complete_password_reset) |
//! | `change_password` | [`Portal::change_password`](crate::Portal::change_password) |
//! | `change_email` | [`Portal::change_email`](crate::Portal::change_email) |
//! | `inspect_email_change_link` | [`Portal::inspect_email_change_link`](crate::Portal::inspect_email_change_link) |
//! | `confirm_email_change` | [`Portal::confirm_email_change`](crate::Portal::confirm_email_change) |
//! | `provision_account` | [`Portal::provision_account`](crate::Portal::provision_account) |
//! | `disable_account` | [`Portal::disable_account`](crate::Portal::disable_account) |
//! | `start_totp_setup` | [`Portal::start_totp_setup`](crate::Portal::start_totp_setup) |
//! | `confirm_totp_setup` | [`Portal::confirm_totp_setup`](crate::Portal::confirm_totp_setup) |
//! | `verify_totp` | [`Portal::verify_totp`](crate::Portal::verify_totp) (L2 with a 認証アプリ) |
//! | `use_recovery_code` | [`Portal::use_recovery_code`](crate::Portal::use_recovery_code) (L2 with a リカバリーコード) |
//! | `regenerate_recovery_codes` | [`Portal::regenerate_recovery_codes`](crate::Portal::regenerate_recovery_codes) |
//! | `remove_factor` | [`Portal::remove_factor`](crate::Portal::remove_factor) |
//! | `start_passkey_registration` | [`Portal::start_passkey_registration`](crate::Portal::start_passkey_registration) (feature `passkeys`) |
//! | `finish_passkey_registration` | [`Portal::finish_passkey_registration`](crate::Portal::finish_passkey_registration) (feature `passkeys`) |
//! | `verify_passkey` | [`Portal::verify_passkey`](crate::Portal::verify_passkey) (L2 with a パスキー; feature `passkeys`) |
//! | `remove_passkey` | [`Portal::remove_passkey`](crate::Portal::remove_passkey) (feature `passkeys`) |
//! | `start_passkey_login` | [`Portal::start_passkey_login`](crate::Portal::start_passkey_login) (パスキーだけでログイン; feature `passkeys`) |
//! | `finish_passkey_login` | [`Portal::finish_passkey_login`](crate::Portal::finish_passkey_login) (feature `passkeys`) |
//!
//! Not steps, and neither spanned nor counted: the parsing of
//! [`identity_claim`](crate::Portal::identity_claim), the session look-ups a host makes on
//! every page ([`account_summary`](crate::Portal::account_summary),
//! [`check_security_stamp`](crate::Portal::check_security_stamp)), the read of
//! [`registration_email`](crate::Portal::registration_email), and the housekeeping of
//! [`purge_expired`](crate::Portal::purge_expired): the host's own request span covers
//! them.
//!
//! ## Metrics (feature `metrics`)
//!
//! Named like Keycloak's event metrics (`keycloak_user_events_total{event, error}`): one
//! counter per audit event with what happened and how it ended, with the `kenpo_auth_`
//! prefix and Prometheus' unit suffixes.
//!
//! | name | type | labels | recorded |
//! |---|---|---|---|
//! | [`kenpo_auth_events_total`](EVENTS_TOTAL) | counter | `kind`, `outcome` | for every [`AuditEvent`] the portal hands its [`AuditSink`](crate::ports::AuditSink) |
//! | [`kenpo_auth_steps_total`](STEPS_TOTAL) | counter | `step`, `outcome` | when a step answers; labels as the span's fields |
//! | [`kenpo_auth_step_duration_seconds`](STEP_DURATION_SECONDS) | histogram | `step` | when a step answers: the time its span was open |
//! | [`kenpo_auth_outbox_depth`](OUTBOX_DEPTH) | gauge | — | reserved, not yet recorded: the outbox's pending mails (failed tries and give-ups are the events `mail_failed`, `mail_given_up`) |
//!
//! `kind` is the [`AuditKind`] in snake case (`login_succeeded`, `otp_failed`, …) and
//! `outcome` says how the event ended:
//!
//! | `outcome` | kinds |
//! |---|---|
//! | `success` | the step did what the member asked: `registration_started`, `registration_for_registered_address` (the owner was notified), `registration_link_opened`, `identity_verified`, `auth_key_confirmed`, `temporary_credentials_accepted`, `registration_completed`, `login_password_accepted`, `otp_screen_closed`, `otp_resent`, `verification_link_resent`, `login_succeeded`, `login_repeated` (the accepted code again, the same login), `password_rehashed`, `login_id_reminder_requested`, `password_reset_requested`, `password_reset_link_opened`, `password_reset_completed`, `password_changed`, `email_change_requested`, `email_changed`, `account_provisioned`, `account_disabled`, `factor_setup_started`, `factor_added`, `factor_removed`, `recovery_code_used` |
//! | `failure` | a wrong answer or a refusal: `identity_failed`, `auth_key_failed`, `temporary_credentials_failed`, `family_email_refused`, `login_failed`, `otp_failed`, `second_factor_failed`, `mail_failed` |
//! | `limited` | a limit was reached: `identity_member_blocked`, `account_locked`, `otp_attempts_exhausted`, `mail_throttled` |
//!
//! No label holds a member's identifier, an address or an event's free-form detail, so
//! the number of series is fixed by the tables above (and the rejection codes).
//!
//! ## Keep `/metrics` private
//!
//! Serve the metrics to your monitoring only (the example binds a loopback port of its
//! own). The per-step counters and durations are measured inside the answer floor, so a
//! member who could read them could learn what the floor hides from the answers: whether
//! a registration or a reset found an account (SEC-07, SEC-37).

// The step table links the passkey methods, which exist only with the `passkeys` feature.
#![cfg_attr(not(feature = "passkeys"), allow(rustdoc::broken_intra_doc_links))]

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::Instrument as _;
use tracing::field::Empty;

#[cfg(doc)]
use crate::Rejection;
use crate::error::Error;
use crate::model::{AuditEvent, AuditKind};

/// Counter `kenpo_auth_events_total{kind, outcome}`: one per audit event.
pub const EVENTS_TOTAL: &str = "kenpo_auth_events_total";

/// Counter `kenpo_auth_steps_total{step, outcome}`: one per step answered, with `ok`,
/// the rejection's code or `error`.
pub const STEPS_TOTAL: &str = "kenpo_auth_steps_total";

/// Histogram `kenpo_auth_step_duration_seconds{step}`: the seconds a step's span was
/// open (its reads, decision, Argon2 work, commit, mails and audit events).
pub const STEP_DURATION_SECONDS: &str = "kenpo_auth_step_duration_seconds";

/// Gauge `kenpo_auth_outbox_depth`, reserved: the mails committed with their step and not
/// yet handed to the mailer. The outbox exists ([`crate::mail::delivery`]), but counting
/// its pending rows needs a store query the `Store` port does not offer yet, so nothing
/// records the gauge; failed tries and given-up mails are counted as the events
/// `mail_failed` and `mail_given_up`.
pub const OUTBOX_DEPTH: &str = "kenpo_auth_outbox_depth";

/// Bucket bounds, in seconds, suited to [`STEP_DURATION_SECONDS`] for exporters that need
/// them (Prometheus): a step without Argon2 takes a store round trip or two (well under
/// 10 ms); one with Argon2 about 20–50 ms on two cores, more while hashes queue for the
/// permits (SEC-22).
pub const STEP_DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Registers the description and unit of each metric above with the recorder the host
/// installed (call it once, after installing the recorder); exporters print them as
/// `# HELP` lines. Metrics are recorded whether or not it was called.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    use metrics::Unit;
    metrics::describe_counter!(
        EVENTS_TOTAL,
        Unit::Count,
        "Audit events recorded by kenpo-auth, by kind and outcome (success, failure, limited)."
    );
    metrics::describe_counter!(
        STEPS_TOTAL,
        Unit::Count,
        "kenpo-auth Portal steps answered, by step and outcome (ok, a rejection code, error)."
    );
    metrics::describe_histogram!(
        STEP_DURATION_SECONDS,
        Unit::Seconds,
        "Time a kenpo-auth Portal step took, from its first read to its answer (answer floor excluded)."
    );
    metrics::describe_gauge!(
        OUTBOX_DEPTH,
        Unit::Count,
        "Mails committed by kenpo-auth and not yet handed to the mailer (reserved)."
    );
}

/// A step's name, as the `step` field and label carry it (the table of steps in the
/// module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepName {
    StartRegistration,
    InspectRegistrationLink,
    OpenRegistrationLink,
    SignInWithTemporaryPassword,
    VerifyIdentity,
    ResendVerificationLink,
    InspectVerificationLink,
    ConfirmAuthKey,
    CompleteRegistration,
    StartLogin,
    VerifyOtp,
    CloseOtpScreen,
    HeartbeatOtpScreen,
    ResendOtp,
    RequestLoginIdReminder,
    RequestPasswordReset,
    InspectPasswordResetLink,
    OpenPasswordResetLink,
    CompletePasswordReset,
    ChangePassword,
    ChangeEmail,
    InspectEmailChangeLink,
    ConfirmEmailChange,
    ProvisionAccount,
    DisableAccount,
    StartTotpSetup,
    ConfirmTotpSetup,
    VerifyTotp,
    UseRecoveryCode,
    RegenerateRecoveryCodes,
    RemoveFactor,
    // The passkey steps exist in every build (the docs table and metrics names do not
    // change with features); only builds with `passkeys` take them.
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    StartPasskeyRegistration,
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    FinishPasskeyRegistration,
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    VerifyPasskey,
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    RemovePasskey,
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    StartPasskeyLogin,
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    FinishPasskeyLogin,
}

impl StepName {
    /// Every step, in the order of the module docs' table.
    #[cfg(test)]
    const ALL: [StepName; 37] = [
        StepName::StartRegistration,
        StepName::InspectRegistrationLink,
        StepName::OpenRegistrationLink,
        StepName::SignInWithTemporaryPassword,
        StepName::VerifyIdentity,
        StepName::ResendVerificationLink,
        StepName::InspectVerificationLink,
        StepName::ConfirmAuthKey,
        StepName::CompleteRegistration,
        StepName::StartLogin,
        StepName::VerifyOtp,
        StepName::CloseOtpScreen,
        StepName::HeartbeatOtpScreen,
        StepName::ResendOtp,
        StepName::RequestLoginIdReminder,
        StepName::RequestPasswordReset,
        StepName::InspectPasswordResetLink,
        StepName::OpenPasswordResetLink,
        StepName::CompletePasswordReset,
        StepName::ChangePassword,
        StepName::ChangeEmail,
        StepName::InspectEmailChangeLink,
        StepName::ConfirmEmailChange,
        StepName::ProvisionAccount,
        StepName::DisableAccount,
        StepName::StartTotpSetup,
        StepName::ConfirmTotpSetup,
        StepName::VerifyTotp,
        StepName::UseRecoveryCode,
        StepName::RegenerateRecoveryCodes,
        StepName::RemoveFactor,
        StepName::StartPasskeyRegistration,
        StepName::FinishPasskeyRegistration,
        StepName::VerifyPasskey,
        StepName::RemovePasskey,
        StepName::StartPasskeyLogin,
        StepName::FinishPasskeyLogin,
    ];

    /// The stable name: the `Portal` method's.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepName::StartRegistration => "start_registration",
            StepName::InspectRegistrationLink => "inspect_registration_link",
            StepName::OpenRegistrationLink => "open_registration_link",
            StepName::SignInWithTemporaryPassword => "sign_in_with_temporary_password",
            StepName::VerifyIdentity => "verify_identity",
            StepName::ResendVerificationLink => "resend_verification_link",
            StepName::InspectVerificationLink => "inspect_verification_link",
            StepName::ConfirmAuthKey => "confirm_auth_key",
            StepName::CompleteRegistration => "complete_registration",
            StepName::StartLogin => "start_login",
            StepName::VerifyOtp => "verify_otp",
            StepName::CloseOtpScreen => "close_otp_screen",
            StepName::HeartbeatOtpScreen => "heartbeat_otp_screen",
            StepName::ResendOtp => "resend_otp",
            StepName::RequestLoginIdReminder => "request_login_id_reminder",
            StepName::RequestPasswordReset => "request_password_reset",
            StepName::InspectPasswordResetLink => "inspect_password_reset_link",
            StepName::OpenPasswordResetLink => "open_password_reset_link",
            StepName::CompletePasswordReset => "complete_password_reset",
            StepName::ChangePassword => "change_password",
            StepName::ChangeEmail => "change_email",
            StepName::InspectEmailChangeLink => "inspect_email_change_link",
            StepName::ConfirmEmailChange => "confirm_email_change",
            StepName::ProvisionAccount => "provision_account",
            StepName::DisableAccount => "disable_account",
            StepName::StartTotpSetup => "start_totp_setup",
            StepName::ConfirmTotpSetup => "confirm_totp_setup",
            StepName::VerifyTotp => "verify_totp",
            StepName::UseRecoveryCode => "use_recovery_code",
            StepName::RegenerateRecoveryCodes => "regenerate_recovery_codes",
            StepName::RemoveFactor => "remove_factor",
            StepName::StartPasskeyRegistration => "start_passkey_registration",
            StepName::FinishPasskeyRegistration => "finish_passkey_registration",
            StepName::VerifyPasskey => "verify_passkey",
            StepName::RemovePasskey => "remove_passkey",
            StepName::StartPasskeyLogin => "start_passkey_login",
            StepName::FinishPasskeyLogin => "finish_passkey_login",
        }
    }
}

/// Runs one step's work in its `kenpo.step` span, and records its outcome and duration.
pub(crate) async fn step<T>(
    name: StepName,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let span = tracing::info_span!(
        "kenpo.step",
        step = name.as_str(),
        outcome = Empty,
        retries = Empty
    );
    let began = Instant::now();
    let answer = work.instrument(span.clone()).await;
    let outcome = step_outcome(&answer);
    span.record("outcome", outcome);
    record_step(name, outcome, began.elapsed());
    answer
}

/// Notes on the current step's span that it lost `retries` compare-and-set races so far.
pub(crate) fn retried(retries: usize) {
    tracing::Span::current().record("retries", retries);
}

/// Counts one audit event (before the portal hands it to the host's sink).
pub(crate) fn audited(event: &AuditEvent) {
    record_event(event.kind);
}

/// The `outcome` of a step's answer.
fn step_outcome<T>(answer: &Result<T, Error>) -> &'static str {
    match answer {
        Ok(_) => "ok",
        Err(Error::Rejected(rejection)) => rejection.code(),
        Err(_) => "error",
    }
}

#[cfg(feature = "metrics")]
fn record_step(name: StepName, outcome: &'static str, took: Duration) {
    metrics::counter!(STEPS_TOTAL, "step" => name.as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!(STEP_DURATION_SECONDS, "step" => name.as_str()).record(took.as_secs_f64());
}

#[cfg(not(feature = "metrics"))]
fn record_step(_: StepName, _: &'static str, _: Duration) {}

#[cfg(feature = "metrics")]
fn record_event(kind: AuditKind) {
    metrics::counter!(EVENTS_TOTAL, "kind" => kind_label(kind), "outcome" => event_outcome(kind))
        .increment(1);
}

#[cfg(not(feature = "metrics"))]
fn record_event(_: AuditKind) {}

/// The `kind` label: the [`AuditKind`] in snake case.
#[cfg(any(feature = "metrics", test))]
fn kind_label(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::RegistrationStarted => "registration_started",
        AuditKind::RegistrationForRegisteredAddress => "registration_for_registered_address",
        AuditKind::MailThrottled => "mail_throttled",
        AuditKind::RegistrationLinkOpened => "registration_link_opened",
        AuditKind::IdentityFailed => "identity_failed",
        AuditKind::IdentityMemberBlocked => "identity_member_blocked",
        AuditKind::IdentityVerified => "identity_verified",
        AuditKind::AuthKeyFailed => "auth_key_failed",
        AuditKind::AuthKeyConfirmed => "auth_key_confirmed",
        AuditKind::TemporaryCredentialsAccepted => "temporary_credentials_accepted",
        AuditKind::TemporaryCredentialsFailed => "temporary_credentials_failed",
        AuditKind::FamilyEmailRefused => "family_email_refused",
        AuditKind::RegistrationCompleted => "registration_completed",
        AuditKind::LoginPasswordAccepted => "login_password_accepted",
        AuditKind::LoginFailed => "login_failed",
        AuditKind::AccountLocked => "account_locked",
        AuditKind::OtpFailed => "otp_failed",
        AuditKind::OtpAttemptsExhausted => "otp_attempts_exhausted",
        AuditKind::OtpScreenClosed => "otp_screen_closed",
        AuditKind::OtpResent => "otp_resent",
        AuditKind::VerificationLinkResent => "verification_link_resent",
        AuditKind::LoginSucceeded => "login_succeeded",
        AuditKind::LoginRepeated => "login_repeated",
        AuditKind::PasswordRehashed => "password_rehashed",
        AuditKind::MailFailed => "mail_failed",
        AuditKind::MailGivenUp => "mail_given_up",
        AuditKind::LoginIdReminderRequested => "login_id_reminder_requested",
        AuditKind::PasswordResetRequested => "password_reset_requested",
        AuditKind::PasswordResetLinkOpened => "password_reset_link_opened",
        AuditKind::PasswordResetCompleted => "password_reset_completed",
        AuditKind::PasswordChanged => "password_changed",
        AuditKind::EmailChangeRequested => "email_change_requested",
        AuditKind::EmailChanged => "email_changed",
        AuditKind::AccountProvisioned => "account_provisioned",
        AuditKind::AccountDisabled => "account_disabled",
        AuditKind::FactorSetupStarted => "factor_setup_started",
        AuditKind::FactorAdded => "factor_added",
        AuditKind::FactorRemoved => "factor_removed",
        AuditKind::SecondFactorFailed => "second_factor_failed",
        AuditKind::RecoveryCodeUsed => "recovery_code_used",
    }
}

/// The `outcome` label of an audit event: how what it records ended.
#[cfg(any(feature = "metrics", test))]
fn event_outcome(kind: AuditKind) -> &'static str {
    match kind {
        AuditKind::IdentityFailed
        | AuditKind::AuthKeyFailed
        | AuditKind::TemporaryCredentialsFailed
        | AuditKind::FamilyEmailRefused
        | AuditKind::LoginFailed
        | AuditKind::OtpFailed
        | AuditKind::SecondFactorFailed
        | AuditKind::MailFailed
        | AuditKind::MailGivenUp => "failure",
        AuditKind::IdentityMemberBlocked
        | AuditKind::AccountLocked
        | AuditKind::OtpAttemptsExhausted
        | AuditKind::MailThrottled => "limited",
        AuditKind::RegistrationStarted
        | AuditKind::RegistrationForRegisteredAddress
        | AuditKind::RegistrationLinkOpened
        | AuditKind::IdentityVerified
        | AuditKind::AuthKeyConfirmed
        | AuditKind::TemporaryCredentialsAccepted
        | AuditKind::RegistrationCompleted
        | AuditKind::LoginPasswordAccepted
        | AuditKind::OtpScreenClosed
        | AuditKind::OtpResent
        | AuditKind::VerificationLinkResent
        | AuditKind::LoginSucceeded
        | AuditKind::LoginRepeated
        | AuditKind::PasswordRehashed
        | AuditKind::LoginIdReminderRequested
        | AuditKind::PasswordResetRequested
        | AuditKind::PasswordResetLinkOpened
        | AuditKind::PasswordResetCompleted
        | AuditKind::PasswordChanged
        | AuditKind::EmailChangeRequested
        | AuditKind::EmailChanged
        | AuditKind::AccountProvisioned
        | AuditKind::AccountDisabled
        | AuditKind::FactorSetupStarted
        | AuditKind::FactorAdded
        | AuditKind::FactorRemoved
        | AuditKind::RecoveryCodeUsed => "success",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Rejection;

    const MODULE_DOCS: &str = include_str!("observe.rs");

    /// The snake case of a `Debug` name (`LoginSucceeded` → `login_succeeded`).
    fn snake(debug: &str) -> String {
        let mut out = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn every_step_is_in_the_docs_table_under_its_method_name() {
        for step in StepName::ALL {
            assert_eq!(step.as_str(), snake(&format!("{step:?}")));
            let row = format!(
                "//! | `{0}` | [`Portal::{0}`](crate::Portal::{0})",
                step.as_str()
            );
            assert!(MODULE_DOCS.contains(&row), "no docs row for {step:?}");
        }
    }

    #[test]
    fn every_audit_kind_label_is_its_snake_case_and_in_the_outcome_table() {
        let kinds = [
            AuditKind::RegistrationStarted,
            AuditKind::RegistrationForRegisteredAddress,
            AuditKind::MailThrottled,
            AuditKind::RegistrationLinkOpened,
            AuditKind::IdentityFailed,
            AuditKind::IdentityMemberBlocked,
            AuditKind::IdentityVerified,
            AuditKind::AuthKeyFailed,
            AuditKind::AuthKeyConfirmed,
            AuditKind::TemporaryCredentialsAccepted,
            AuditKind::TemporaryCredentialsFailed,
            AuditKind::FamilyEmailRefused,
            AuditKind::RegistrationCompleted,
            AuditKind::LoginPasswordAccepted,
            AuditKind::LoginFailed,
            AuditKind::AccountLocked,
            AuditKind::OtpFailed,
            AuditKind::OtpAttemptsExhausted,
            AuditKind::OtpScreenClosed,
            AuditKind::OtpResent,
            AuditKind::VerificationLinkResent,
            AuditKind::LoginSucceeded,
            AuditKind::LoginRepeated,
            AuditKind::PasswordRehashed,
            AuditKind::MailFailed,
            AuditKind::LoginIdReminderRequested,
            AuditKind::PasswordResetRequested,
            AuditKind::PasswordResetLinkOpened,
            AuditKind::PasswordResetCompleted,
            AuditKind::PasswordChanged,
            AuditKind::EmailChangeRequested,
            AuditKind::EmailChanged,
            AuditKind::AccountProvisioned,
            AuditKind::AccountDisabled,
            AuditKind::FactorSetupStarted,
            AuditKind::FactorAdded,
            AuditKind::FactorRemoved,
            AuditKind::SecondFactorFailed,
            AuditKind::RecoveryCodeUsed,
        ];
        for kind in kinds {
            let label = kind_label(kind);
            assert_eq!(label, snake(&format!("{kind:?}")));
            let row = MODULE_DOCS
                .lines()
                .find(|l| l.starts_with(&format!("//! | `{}` |", event_outcome(kind))))
                .unwrap_or_else(|| panic!("no outcome row for {kind:?}"));
            assert!(
                row.contains(&format!("`{label}`")),
                "{label} not under {}",
                event_outcome(kind)
            );
        }
    }

    #[test]
    fn step_outcome_is_ok_the_rejection_code_or_error() {
        assert_eq!(step_outcome(&Ok::<(), Error>(())), "ok");
        let rejected: Result<(), Error> = Err(Rejection::OtpIncorrect.into());
        assert_eq!(step_outcome(&rejected), "otp.incorrect");
        let busy: Result<(), Error> = Err(Error::Rejected(Rejection::Busy));
        assert_eq!(step_outcome(&busy), "busy");
        let down = crate::ports::StoreError::Backend("connection lost".into());
        assert_eq!(step_outcome(&Err::<(), Error>(down.into())), "error");
    }
}
