//! The password gate (SEC-23, SEC-24, SEC-29): which accounts a login ID and password
//! open, and what a wrong password costs.
//!
//! The driver looks the login ID up and runs Argon2 — against the account's hash, or a
//! dummy hash for an unknown ID, so every path costs the same — and hands the outcome
//! here. Every refusal is the same [`Rejection::LoginFailed`]; only the audit event says
//! why.

use crate::error::Rejection;
use crate::flow::Env;
use crate::flow::step::Step;
use crate::flow::throttle::{self, Window};
use crate::mail::MailMessage;
use crate::model::{
    Account, AccountStatus, AuditEvent, AuditKind, Counter, CounterKey, Expect, Versioned,
};
use crate::password_hash::{PasswordHashString, Verification};

/// Which accounts a password check accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gate {
    /// L1: active accounts with their own password.
    Login,
    /// R2': provisioned accounts with an unexpired temporary password.
    Temporary,
}

/// What Argon2 said about the password the member typed.
#[derive(Clone, Debug)]
pub struct PasswordCheck {
    /// The verification against the account's hash (or the dummy hash).
    pub verification: Verification,
    /// The password hashed again under the current parameters, when `verification`
    /// asked for it (SEC-20); applied only if the gate opens.
    pub rehashed: Option<PasswordHashString>,
}

/// The gate opened: the account as it is to be written in the step's commit. The write
/// is conditional on the version read, so a password reset or disable that commits in
/// between makes the step lose its race and decide again (SEC-34).
#[derive(Debug)]
pub struct Opened {
    /// The account with its failure count cleared (and its hash upgraded).
    pub account: Account,
    /// The version it was read at.
    pub expect: Expect,
    /// Events to record with the step.
    pub audit: Vec<AuditEvent>,
}

/// The counter a refusal that writes nothing else is recorded on (SEC-23): the
/// [`CounterKey::RefusedLogins`] of the login ID as typed, and its loaded value.
#[derive(Clone, Copy, Debug)]
pub struct Refusals<'a> {
    /// [`CounterKey::refused_logins`] of the typed login ID.
    pub key: &'a CounterKey,
    /// The counter as loaded.
    pub counter: Option<&'a Versioned<Counter>>,
}

impl Refusals<'_> {
    /// The window refused logins are counted in. Not a throttle: the count is there so
    /// every refusal writes one row, as a wrong password writes the account.
    pub const WINDOW: Window = Window {
        span: time::Duration::HOUR,
        cap: u32::MAX,
        min_interval: None,
    };
}

/// Decides a login ID + password. `account` is `None` for an unknown or unreadable ID
/// (then `check` came from the dummy hash).
///
/// Equal work (SEC-23): a wrong password writes the account (its failure count). Every
/// other refusal — an unknown ID, an account that is not usable, locked, delayed or
/// cooling down — writes `refusals`' counter instead, so each refusal commits one row
/// and the store's work does not tell them apart. Without `refusals` (a signed-in
/// member re-typing their password) those refusals write nothing.
pub fn check<T>(
    gate: Gate,
    account: Option<&Versioned<Account>>,
    check: PasswordCheck,
    refusals: Option<Refusals<'_>>,
    env: Env<'_>,
) -> Result<Opened, Step<T>> {
    let now = env.now;
    let failed = |detail: &'static str, account: Option<&Account>| {
        let mut ev = AuditEvent::new(AuditKind::LoginFailed, now).detail(detail);
        if let Some(a) = account {
            ev = ev.account(&a.id);
        }
        Step::reject(Rejection::LoginFailed).audit(ev)
    };
    let refused = |detail: &'static str, account: Option<&Account>| {
        let step = failed(detail, account);
        match refusals.and_then(|r| throttle::hit(r.key, r.counter, now, Refusals::WINDOW).ok()) {
            Some(hit) => step.counter(hit),
            None => step,
        }
    };
    let Some(stored) = account else {
        return Err(refused("unknown_login_id", None));
    };
    let a = &stored.value;
    let p = env.policy;
    let kind_ok = match (&a.status, gate) {
        (AccountStatus::Active, Gate::Login) => true,
        (
            AccountStatus::Provisioned {
                temporary_expires_at,
            },
            Gate::Temporary,
        ) => now < *temporary_expires_at,
        _ => false,
    };
    let capped = a.password_failures >= p.password_failure_cap;
    let delayed = a
        .last_password_failure_at
        .is_some_and(|last| now < last.saturating_add(p.password_delay(a.password_failures)));
    let cooling = a.otp_cooldown_until.is_some_and(|until| now < until);
    let refusal = if !kind_ok {
        Some("account_not_usable")
    } else if capped {
        Some("failure_cap")
    } else if delayed {
        Some("delay")
    } else if cooling {
        Some("otp_cooldown")
    } else {
        None
    };
    if let Some(detail) = refusal {
        return Err(refused(detail, Some(a)));
    }
    match check.verification {
        Verification::Match { .. } => {
            let mut account = a.clone();
            account.password_failures = 0;
            account.last_password_failure_at = None;
            let mut audit = Vec::new();
            if let Some(hash) = check.rehashed {
                account.password_hash = hash;
                audit.push(AuditEvent::new(AuditKind::PasswordRehashed, now).account(&a.id));
            }
            Ok(Opened {
                account,
                expect: Expect::At(stored.version),
                audit,
            })
        }
        Verification::Mismatch => {
            // SEC-24: count the failure on the account; the lock notice goes out when the
            // delays begin and when the cap is reached.
            let mut account = a.clone();
            account.password_failures = account.password_failures.saturating_add(1);
            account.last_password_failure_at = Some(now);
            let n = account.password_failures;
            let mut step = failed("wrong_password", Some(a));
            if n == p.password_free_failures || n == p.password_failure_cap {
                step = step.audit(
                    AuditEvent::new(AuditKind::AccountLocked, now)
                        .account(&a.id)
                        .detail(format!("failures={n}")),
                );
                if let Some(email) = &account.email {
                    step = step.mail(email.clone(), MailMessage::AccountLocked { at: now });
                }
            }
            Err(step.account(Expect::At(stored.version), account))
        }
    }
}
