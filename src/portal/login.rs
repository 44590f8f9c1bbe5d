//! Login (L1–L4) through the portal.

use time::OffsetDateTime;

use super::{MAX_CAS_RETRIES, Portal, busy, window_hit};
use crate::domain::{EmailAddress, LoginId, Nickname, Password};
use crate::error::{Error, Rejection};
use crate::flow::login::{self, LoginEndReason};
use crate::flow::{FlowState, LoginState};
use crate::mail::MailMessage;
use crate::password_hash::Verification;
use crate::ports::{
    Account, AccountId, AccountLookup, AccountStatus, AccountWrite, AuditEvent, AuditKind, Commit,
    CommitOutcome, FlowId, FlowRecord, FlowWrite, MemberId, SecurityStamp, Versioned,
};
use crate::token::{OtpChallengeId, OtpCode};

/// The answer to L1 and L4: the 暗証キー was mailed; show the 暗証キー入力 screen.
#[derive(Debug)]
pub struct OtpChallenge {
    /// The code screen's handle: keep it in the page (hidden field) or a cookie, and send
    /// it back with the code, the close beacon and heartbeats.
    pub challenge: OtpChallengeId,
    /// When the current code stops working.
    pub expires_at: OffsetDateTime,
    /// The registered address, masked, to show 「…へ送信しました」.
    pub masked_email: String,
}

/// The answer to L2: the member is logged in. Start the host's session now, with a new
/// session ID (SEC-32), and keep the security stamp in it.
///
/// Only the library makes one (`non_exhaustive`), so holding one proves a login
/// (password + 暗証キー) at `authenticated_at`; changing the e-mail address needs one
/// no older than the policy's re-authentication window (SEC-36).
#[derive(Debug)]
#[non_exhaustive]
pub struct Authenticated {
    /// Who logged in.
    pub account_id: AccountId,
    /// Compare it with [`Portal::check_security_stamp`] on later requests to end this
    /// session after a password, e-mail or login-ID change (SEC-34).
    pub security_stamp: SecurityStamp,
    /// When the 暗証キー was accepted.
    pub authenticated_at: OffsetDateTime,
}

/// What a logged-in member's pages show about their account.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountSummary {
    /// The account.
    pub account_id: AccountId,
    /// Its login ID.
    pub login_id: LoginId,
    /// Its registered address.
    pub email: Option<EmailAddress>,
    /// Its nickname (ニックネーム).
    pub nickname: Option<Nickname>,
    /// The roster member it belongs to.
    pub member: MemberId,
}

/// Which accounts a password check accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PasswordCheck {
    /// L1: active accounts with their own password.
    Login,
    /// R2': provisioned accounts with an unexpired temporary password.
    Temporary,
}

impl Portal {
    /// Verifies a login ID and password with the SEC-23/SEC-24 rules: one answer for an
    /// unknown ID, a wrong password, a locked, disabled or wrong-kind account; the same
    /// Argon2 work on every path; failures counted on the account.
    pub(super) async fn check_password_kind(
        &self,
        login_id: &str,
        password: &str,
        now: OffsetDateTime,
        kind: PasswordCheck,
    ) -> Result<Versioned<Account>, Error> {
        let failed = || Error::Rejected(Rejection::LoginFailed);
        // SEC-22: over-long input is refused before any hashing, with the same answer.
        let Ok(password) = Password::new(password) else {
            return Err(failed());
        };
        let account = match LoginId::parse(login_id) {
            Ok(id) => {
                self.inner
                    .store
                    .find_account(AccountLookup::LoginId(id.clone()))
                    .await?
            }
            Err(_) => None,
        };
        let Some(account) = account else {
            let _ = self.inner.hasher.verify_dummy(&password).await?;
            self.audit(AuditEvent::new(AuditKind::LoginFailed, now).detail("unknown_login_id"));
            return Err(failed());
        };
        let a = &account.value;
        let p = &self.inner.policy;
        let kind_ok = match (&a.status, kind) {
            (AccountStatus::Active, PasswordCheck::Login) => true,
            (
                AccountStatus::Provisioned {
                    temporary_expires_at,
                },
                PasswordCheck::Temporary,
            ) => now < *temporary_expires_at,
            _ => false,
        };
        let capped = a.password_failures >= p.password_failure_cap;
        let delayed = a
            .last_password_failure_at
            .is_some_and(|last| now < last.saturating_add(p.password_delay(a.password_failures)));
        let cooling = a.otp_cooldown_until.is_some_and(|until| now < until);
        let verification = self
            .inner
            .hasher
            .verify(&password, &a.password_hash)
            .await?;
        if !kind_ok || capped || delayed || cooling {
            let detail = if !kind_ok {
                "account_not_usable"
            } else if capped {
                "failure_cap"
            } else if delayed {
                "delay"
            } else {
                "otp_cooldown"
            };
            self.audit(
                AuditEvent::new(AuditKind::LoginFailed, now)
                    .account(&a.id)
                    .detail(detail),
            );
            return Err(failed());
        }
        match verification {
            Verification::Match { needs_rehash } => {
                let mut updated = a.clone();
                updated.password_failures = 0;
                updated.last_password_failure_at = None;
                if needs_rehash {
                    // SEC-20: upgrade the stored hash after a good password.
                    updated.password_hash = self.inner.hasher.hash(&password).await?;
                    self.audit(AuditEvent::new(AuditKind::PasswordRehashed, now).account(&a.id));
                }
                if updated != *a {
                    let commit = Commit {
                        accounts: vec![AccountWrite::Update {
                            expected: account.version,
                            account: updated.clone(),
                        }],
                        ..Commit::default()
                    };
                    if self.commit(commit).await? != CommitOutcome::Committed {
                        return Err(busy());
                    }
                    return Ok(Versioned {
                        version: account.version.next(),
                        value: updated,
                    });
                }
                Ok(account)
            }
            Verification::Mismatch => {
                self.record_password_failure(account, now).await?;
                Err(failed())
            }
        }
    }

    /// Counts one wrong password on the account (SEC-24), retrying on races; mails the
    /// lock notice when the failure reaches the point where delays begin or the cap.
    async fn record_password_failure(
        &self,
        mut account: Versioned<Account>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let p = &self.inner.policy;
        for _ in 0..MAX_CAS_RETRIES {
            let mut updated = account.value.clone();
            updated.password_failures = updated.password_failures.saturating_add(1);
            updated.last_password_failure_at = Some(now);
            let commit = Commit {
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: updated.clone(),
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                self.audit(
                    AuditEvent::new(AuditKind::LoginFailed, now)
                        .account(&updated.id)
                        .detail("wrong_password"),
                );
                let n = updated.password_failures;
                if n == p.password_free_failures || n == p.password_failure_cap {
                    self.audit(
                        AuditEvent::new(AuditKind::AccountLocked, now)
                            .account(&updated.id)
                            .detail(format!("failures={n}")),
                    );
                    if let Some(email) = &updated.email {
                        self.send_mail(email, MailMessage::AccountLocked { at: now })
                            .await;
                    }
                }
                return Ok(());
            }
            match self
                .inner
                .store
                .find_account(AccountLookup::Id(account.value.id.clone()))
                .await?
            {
                Some(fresh) => account = fresh,
                None => return Ok(()),
            }
        }
        Err(busy())
    }

    pub(super) async fn check_password(
        &self,
        login_id: &str,
        password: &str,
        now: OffsetDateTime,
        temporary: bool,
    ) -> Result<Versioned<Account>, Error> {
        let kind = if temporary {
            PasswordCheck::Temporary
        } else {
            PasswordCheck::Login
        };
        self.check_password_kind(login_id, password, now, kind)
            .await
    }

    /// L1 (ログイン): checks the login ID and password and mails a 暗証キー. Every
    /// failure — unknown ID, wrong password, locked, disabled — is the same
    /// [`Rejection::LoginFailed`] after the same Argon2 work (SEC-23). A new login ends
    /// the account's earlier open challenges.
    pub async fn start_login(&self, login_id: &str, password: &str) -> Result<OtpChallenge, Error> {
        let now = self.now();
        let account = self.check_password(login_id, password, now, false).await?;
        let email = account.value.email.clone().ok_or(Rejection::LoginFailed)?;
        let p = &self.inner.policy;
        for _ in 0..MAX_CAS_RETRIES {
            let key = format!("otp-mail:{}", account.value.id.as_str());
            let current = self.inner.store.load_counter(&key).await?;
            let Ok(counter) = window_hit(
                key,
                current,
                now,
                time::Duration::hours(1),
                p.otp_mails_per_account_per_hour,
                None,
            ) else {
                // SEC-23: the password was right, but saying "too many" here would tell a
                // guesser so. The hourly 暗証キー cap answers like every other failure.
                self.audit(
                    AuditEvent::new(AuditKind::LoginFailed, now)
                        .account(&account.value.id)
                        .detail("otp_mail_cap"),
                );
                return Err(Rejection::LoginFailed.into());
            };
            let (state, challenge, code) = {
                let mut rng = Self::rng();
                login::issue(account.value.id.clone(), self.env(now), &mut rng)
            };
            let expires_at = state.expires_at;
            let mut flows = self
                .end_open_challenges(&account.value.id, LoginEndReason::Superseded, now)
                .await?;
            let flow_id = FlowId::generate(&mut Self::rng());
            flows.push(FlowWrite {
                expected: None,
                record: FlowRecord {
                    id: flow_id.clone(),
                    state: FlowState::Login(LoginState::AwaitingOtp(state)),
                },
            });
            let commit = Commit {
                flows,
                counters: vec![counter],
                ..Commit::default()
            };
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                _ => continue,
            }
            self.audit(
                AuditEvent::new(AuditKind::LoginPasswordAccepted, now)
                    .account(&account.value.id)
                    .flow(&flow_id),
            );
            self.send_mail(&email, MailMessage::LoginOtp { code, expires_at })
                .await;
            return Ok(OtpChallenge {
                challenge,
                expires_at,
                masked_email: email.masked(),
            });
        }
        Err(busy())
    }

    /// Writes that end every open challenge of `account`.
    pub(super) async fn end_open_challenges(
        &self,
        account: &AccountId,
        reason: LoginEndReason,
        now: OffsetDateTime,
    ) -> Result<Vec<FlowWrite>, Error> {
        let mut writes = Vec::new();
        for f in self.inner.store.flows_of_account(account).await? {
            if let FlowState::Login(s) = f.value.state
                && let Some(ended) = s.end_for(reason, now)
            {
                writes.push(FlowWrite {
                    expected: Some(f.version),
                    record: FlowRecord {
                        id: f.value.id,
                        state: FlowState::Login(ended),
                    },
                });
            }
        }
        Ok(writes)
    }

    /// L2 (暗証キー入力 → ログイン): accepts the code once (SEC-28), only on its own
    /// challenge (SEC-27), within its tries (SEC-29). The attempt is recorded before the
    /// member is told anything.
    pub async fn verify_otp(&self, challenge: &str, code: &str) -> Result<Authenticated, Error> {
        let challenge = OtpChallengeId::parse(challenge).map_err(|_| Rejection::OtpInvalid)?;
        let code = OtpCode::parse(code).map_err(|_| Rejection::OtpIncorrect)?;
        let candidates = challenge.digest_candidates(&self.inner.keys);
        let p = &self.inner.policy;
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::OtpInvalid.into());
            };
            let FlowState::Login(state) = found.value.state.clone() else {
                return Err(Rejection::OtpInvalid.into());
            };
            let Some(account) = self
                .inner
                .store
                .find_account(AccountLookup::Id(state.account().clone()))
                .await?
            else {
                return Err(Rejection::OtpInvalid.into());
            };
            let verdict =
                state
                    .clone()
                    .verify(&digest, &code, account.value.otp_failures, self.env(now));
            if verdict.state == state && verdict.account_failures == account.value.otp_failures {
                // Nothing to record (finished, expired or exhausted challenge): a
                // rejection can be answered without writing. (Success always changes
                // the state, so it never takes this branch.)
                if let Err(r) = &verdict.outcome {
                    return Err(r.clone().into());
                }
            }
            let mut updated = account.value.clone();
            updated.otp_failures = verdict.account_failures;
            if verdict.account_limit_reached {
                // SEC-29: the account limit cools the account down and counts as a
                // password failure (SEC-24).
                updated.otp_cooldown_until = Some(now.saturating_add(p.otp_account_cooldown));
                updated.password_failures = updated.password_failures.saturating_add(1);
                updated.last_password_failure_at = Some(now);
            }
            let mut commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::Login(verdict.state),
                    },
                }],
                ..Commit::default()
            };
            if updated != account.value {
                commit.accounts.push(AccountWrite::Update {
                    expected: account.version,
                    account: updated.clone(),
                });
            }
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                _ => continue,
            }
            return match verdict.outcome {
                Ok(consumed) => {
                    self.audit(
                        AuditEvent::new(AuditKind::LoginSucceeded, now)
                            .account(consumed.account())
                            .flow(&found.value.id),
                    );
                    Ok(Authenticated {
                        account_id: consumed.account().clone(),
                        security_stamp: updated.security_stamp,
                        authenticated_at: now,
                    })
                }
                Err(rejection) => {
                    let kind = if verdict.aborted {
                        AuditKind::OtpAttemptsExhausted
                    } else {
                        AuditKind::OtpFailed
                    };
                    self.audit(
                        AuditEvent::new(kind, now)
                            .account(&updated.id)
                            .flow(&found.value.id)
                            .detail(rejection.code()),
                    );
                    if verdict.aborted
                        && p.notify_on_otp_abort
                        && let Some(email) = &updated.email
                    {
                        self.send_mail(email, MailMessage::LoginOtpAborted { at: now })
                            .await;
                    }
                    Err(rejection.into())
                }
            };
        }
        Err(busy())
    }

    /// L4 (暗証キー再請求): a new code for the same screen; the old code dies at once and
    /// the attempt budget carries over (SEC-12, SEC-30). During the cooldown the answer
    /// is [`Rejection::TooManyRequests`] with `retry_after`, and no mail goes out.
    pub async fn resend_otp(&self, challenge: &str) -> Result<OtpChallenge, Error> {
        let challenge = OtpChallengeId::parse(challenge).map_err(|_| Rejection::OtpInvalid)?;
        let candidates = challenge.digest_candidates(&self.inner.keys);
        let p = &self.inner.policy;
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::OtpInvalid.into());
            };
            let FlowState::Login(state) = found.value.state.clone() else {
                return Err(Rejection::OtpInvalid.into());
            };
            let account_id = state.account().clone();
            let (next, code) = {
                let mut rng = Self::rng();
                state.resend(&digest, self.env(now), &mut rng)?
            };
            let key = format!("otp-mail:{}", account_id.as_str());
            let current = self.inner.store.load_counter(&key).await?;
            let counter = window_hit(
                key,
                current,
                now,
                time::Duration::hours(1),
                p.otp_mails_per_account_per_hour,
                None,
            )
            .map_err(|retry_after| Rejection::TooManyRequests { retry_after })?;
            let LoginState::AwaitingOtp(awaiting) = &next else {
                return Err(Rejection::OtpInvalid.into());
            };
            let expires_at = awaiting.expires_at;
            let Some(account) = self
                .inner
                .store
                .find_account(AccountLookup::Id(account_id.clone()))
                .await?
            else {
                return Err(Rejection::OtpInvalid.into());
            };
            let Some(email) = account.value.email.clone() else {
                return Err(Rejection::OtpInvalid.into());
            };
            let commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::Login(next),
                    },
                }],
                counters: vec![counter],
                ..Commit::default()
            };
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                _ => continue,
            }
            self.audit(
                AuditEvent::new(AuditKind::OtpResent, now)
                    .account(&account_id)
                    .flow(&found.value.id),
            );
            self.send_mail(&email, MailMessage::LoginOtp { code, expires_at })
                .await;
            return Ok(OtpChallenge {
                challenge,
                expires_at,
                masked_email: email.masked(),
            });
        }
        Err(busy())
    }

    /// L3: the code screen was closed (the page's `pagehide` beacon, or its キャンセル
    /// button). The code dies; the member starts again at L1. Idempotent, and silent
    /// about unknown challenges.
    pub async fn close_otp_screen(&self, challenge: &str) -> Result<(), Error> {
        let Ok(challenge) = OtpChallengeId::parse(challenge) else {
            return Ok(());
        };
        let candidates = challenge.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Ok(());
            };
            let FlowState::Login(state) = found.value.state.clone() else {
                return Ok(());
            };
            let account = state.account().clone();
            let Some(next) = state.close(&digest, now) else {
                return Ok(());
            };
            let commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::Login(next),
                    },
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                self.audit(
                    AuditEvent::new(AuditKind::OtpScreenClosed, now)
                        .account(&account)
                        .flow(&found.value.id),
                );
                return Ok(());
            }
        }
        Err(busy())
    }

    /// L3 with a heartbeat policy: the code screen is still open. A challenge whose
    /// heartbeat lapsed is dead, and this answers [`Rejection::OtpInvalid`] so the page
    /// can send the member back to the login screen.
    pub async fn heartbeat_otp_screen(&self, challenge: &str) -> Result<(), Error> {
        let challenge = OtpChallengeId::parse(challenge).map_err(|_| Rejection::OtpInvalid)?;
        let candidates = challenge.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::OtpInvalid.into());
            };
            let FlowState::Login(state) = found.value.state.clone() else {
                return Err(Rejection::OtpInvalid.into());
            };
            let (next, alive) = state.clone().heartbeat(&digest, self.env(now));
            if next == state {
                return if alive {
                    Ok(())
                } else {
                    Err(Rejection::OtpInvalid.into())
                };
            }
            let commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::Login(next),
                    },
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                return if alive {
                    Ok(())
                } else {
                    Err(Rejection::OtpInvalid.into())
                };
            }
        }
        Err(busy())
    }

    /// What a logged-in member's pages show about their account: login ID, address,
    /// nickname and roster member (for the host's 資格情報 / 医療費 pages). `None` for an
    /// unknown or disabled account. Hosts call it after [`Portal::check_security_stamp`].
    pub async fn account_summary(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountSummary>, Error> {
        let found = self
            .inner
            .store
            .find_account(AccountLookup::Id(account.clone()))
            .await?;
        Ok(found
            .filter(|a| matches!(a.value.status, AccountStatus::Active))
            .map(|a| AccountSummary {
                account_id: a.value.id,
                login_id: a.value.login_id,
                email: a.value.email,
                nickname: a.value.nickname,
                member: a.value.member,
            }))
    }

    /// Whether a session's security stamp is still current. `false` after a password,
    /// e-mail or login-ID change, or when the account is gone or disabled: end the
    /// session (SEC-34).
    pub async fn check_security_stamp(
        &self,
        account: &AccountId,
        stamp: &SecurityStamp,
    ) -> Result<bool, Error> {
        let Some(a) = self
            .inner
            .store
            .find_account(AccountLookup::Id(account.clone()))
            .await?
        else {
            return Ok(false);
        };
        let same: bool = subtle::ConstantTimeEq::ct_eq(
            a.value.security_stamp.as_str().as_bytes(),
            stamp.as_str().as_bytes(),
        )
        .into();
        Ok(same && matches!(a.value.status, AccountStatus::Active))
    }
}
