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
use crate::mail::MailMessage;
use crate::model::{Account, AccountStatus, AuditEvent, AuditKind, Expect, Versioned};
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

/// Decides a login ID + password. `account` is `None` for an unknown or unreadable ID
/// (then `check` came from the dummy hash).
pub fn check<T>(
    gate: Gate,
    account: Option<&Versioned<Account>>,
    check: PasswordCheck,
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
    let Some(stored) = account else {
        return Err(failed("unknown_login_id", None));
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
        return Err(failed(detail, Some(a)));
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
