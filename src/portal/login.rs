//! Login (L1–L4) through the portal.

use super::Portal;
use super::driver::{Load, Loaded, Memo};
use crate::domain::{EmailAddress, LoginId, Nickname, Password};
use crate::error::Error;
use crate::flow::Env;
use crate::flow::gate::PasswordCheck;
use crate::flow::login::{self, SecondStep};
use crate::flow::step::Step;
use crate::model::{Counter, CounterKey};
use crate::observe::StepName;
use crate::password_hash::{PasswordHashString, Verification};
use crate::ports::AccountLoad;
use crate::ports::{Account, AccountId, AccountLookup, MemberId, SecurityStamp, Versioned};
use crate::token::{OtpChallengeId, OtpCode};

pub use crate::flow::login::{Authenticated, OtpChallenge};

/// The loaded account's 暗証キー counters: mails this hour, wrong entries today.
fn otp_counters() -> Vec<String> {
    [
        CounterKey::OTP_MAILS_PREFIX,
        CounterKey::OTP_FAILURES_PREFIX,
    ]
    .map(String::from)
    .to_vec()
}

/// The hourly 暗証キー-mail counter of the loaded account.
fn otp_mails(loaded: &Loaded) -> Option<&Versioned<Counter>> {
    loaded.account_counters.first().and_then(Option::as_ref)
}

/// The loaded account's wrong 暗証キー entries today (SEC-29).
fn otp_failures_today(loaded: &Loaded) -> Option<&Versioned<Counter>> {
    loaded.account_counters.get(1).and_then(Option::as_ref)
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

impl Portal {
    /// Argon2id of a new password, computed once per request: a retry after a lost race
    /// reuses the hash in `memo`.
    pub(super) async fn hash_once(
        &self,
        password: &Password,
        memo: &Memo<PasswordHashString>,
    ) -> Result<PasswordHashString, Error> {
        let hasher = &self.inner.hasher;
        Ok(memo.get_or_try(|| hasher.hash(password)).await?)
    }

    /// Runs Argon2 for a login ID and password: against the account's hash, or the dummy
    /// hash when there is no account, so both paths cost the same (SEC-23); and hashes
    /// the password again when the stored hash is below the current parameters (SEC-20).
    /// `cache` keeps the outcome across compare-and-set retries of one request, so a
    /// lost race does not pay for Argon2 twice unless the hash itself changed.
    pub(super) async fn check_password_hash(
        &self,
        account: Option<&Versioned<Account>>,
        password: &Password,
        cache: &Memo<(Option<PasswordHashString>, PasswordCheck)>,
    ) -> Result<PasswordCheck, Error> {
        let stored = account.map(|a| a.value.password_hash.clone());
        if let Some((hash, check)) = cache.get()
            && hash == stored
        {
            return Ok(check);
        }
        let hasher = &self.inner.hasher;
        let verification = match &stored {
            Some(hash) => hasher.verify(password, hash).await?,
            None => hasher.verify_dummy(password).await?,
        };
        let rehashed = match verification {
            Verification::Match { needs_rehash: true } => Some(hasher.hash(password).await?),
            _ => None,
        };
        let check = PasswordCheck {
            verification,
            rehashed,
        };
        cache.set((stored, check.clone()));
        Ok(check)
    }

    /// L1 (ログイン): checks the login ID and password and mails a 暗証キー. Every
    /// failure — unknown ID, wrong password, locked, disabled — is the same
    /// [`Rejection::LoginFailed`](crate::Rejection::LoginFailed) after the same Argon2 work (SEC-23), and commits one
    /// row: the account's failure count for a wrong password, the typed ID's refusal
    /// counter for every other refusal. Earlier open challenges of the account stay alive
    /// (a double tap, a second device): the login that completes ends them.
    ///
    /// Build the [`Password`] with [`Password::new`]; at login, answer any error it gives
    /// with [`Rejection::LoginFailed`](crate::Rejection::LoginFailed) too (SEC-22).
    pub async fn start_login(
        &self,
        login_id: &str,
        password: &Password,
    ) -> Result<OtpChallenge, Error> {
        let (load, refused) = &self.password_load(
            login_id,
            Load {
                account_counters: otp_counters(),
                ..Load::default()
            },
        );
        let cache = &Memo::new();
        self.drive(StepName::StartLogin, load, move |loaded, now| {
            Box::pin(async move {
                let check = self
                    .check_password_hash(loaded.account.as_ref(), password, cache)
                    .await?;
                Ok(login::start(
                    loaded.view(),
                    check,
                    (otp_mails(&loaded), otp_failures_today(&loaded)),
                    loaded.refusals(refused),
                    &self.verifiers(),
                    self.env(now),
                    &mut Self::rng(),
                ))
            })
        })
        .await
    }

    fn challenge_load(&self, challenge: &OtpChallengeId, account: bool) -> Load {
        Load {
            account: account.then_some(AccountLoad::OfFlow),
            account_counters: if account { otp_counters() } else { Vec::new() },
            ..self.flow_load(challenge)
        }
    }

    /// L2 (暗証キー入力 → ログイン): accepts the code once (SEC-28), only on its own
    /// challenge (SEC-27), within its tries (SEC-29). The attempt is recorded before the
    /// member is told anything.
    pub async fn verify_otp(
        &self,
        challenge: &OtpChallengeId,
        code: &OtpCode,
    ) -> Result<Authenticated, Error> {
        self.decide_second_step(StepName::VerifyOtp, challenge, |loaded, today, env| {
            login::verify(loaded.found(), loaded.view(), (code, today), env)
        })
        .await
    }

    /// Decides L2 on `challenge`, whatever the factor: reads the challenge, its account
    /// with the account's flows (a login ends the others) and its 暗証キー counters;
    /// `decide` gets them and the account's wrong entries today (SEC-29).
    pub(super) async fn decide_second_step(
        &self,
        name: StepName,
        challenge: &OtpChallengeId,
        mut decide: impl FnMut(&Loaded, Option<&Versioned<Counter>>, Env<'_>) -> Step<Authenticated>,
    ) -> Result<Authenticated, Error> {
        let load = Load {
            account_flows: true,
            ..self.challenge_load(challenge, true)
        };
        self.decide(name, &load, |loaded, env, _| {
            decide(loaded, otp_failures_today(loaded), env)
        })
        .await
    }

    /// L4 (暗証キー再請求): a new code for the same screen; the old code dies at once and
    /// the attempt budget carries over (SEC-12, SEC-30). During the cooldown the answer
    /// is [`Rejection::TooManyRequests`](crate::Rejection::TooManyRequests) with `retry_after`, and no mail goes out.
    pub async fn resend_otp(&self, challenge: &OtpChallengeId) -> Result<OtpChallenge, Error> {
        let load = self.challenge_load(challenge, true);
        let resent = self
            .decide(StepName::ResendOtp, &load, |loaded, env, rng| {
                login::resend(
                    loaded.found(),
                    loaded.account.as_ref(),
                    otp_mails(loaded),
                    env,
                    rng,
                )
            })
            .await?;
        Ok(OtpChallenge {
            challenge: challenge.clone(),
            expires_at: resent.expires_at,
            masked_email: resent.masked_email,
            receipt: Some(resent.receipt),
            second_step: SecondStep::EmailedCode,
            passkey_options: None,
        })
    }

    /// L3: the code screen was closed (the page's `pagehide` beacon, or its キャンセル
    /// button). The code dies; the member starts again at L1. Idempotent, and silent
    /// about unknown challenges.
    pub async fn close_otp_screen(&self, challenge: &OtpChallengeId) -> Result<(), Error> {
        // The owner too: a closed screen is no longer one an L1 repeat answers with.
        let load = Load {
            account: Some(AccountLoad::OfFlow),
            ..self.flow_load(challenge)
        };
        self.decide(StepName::CloseOtpScreen, &load, |loaded, env, _| {
            login::close(loaded.found(), loaded.account.as_ref(), env)
        })
        .await
    }

    /// L3 with a heartbeat policy: the code screen is still open. A challenge whose
    /// heartbeat lapsed is dead, and this answers [`Rejection::OtpInvalid`](crate::Rejection::OtpInvalid) so the page
    /// can send the member back to the login screen.
    pub async fn heartbeat_otp_screen(&self, challenge: &OtpChallengeId) -> Result<(), Error> {
        let load = self.challenge_load(challenge, false);
        self.decide(StepName::HeartbeatOtpScreen, &load, |loaded, env, _| {
            login::heartbeat(loaded.found(), env)
        })
        .await
    }

    /// What a logged-in member's pages show about their account: login ID, address,
    /// nickname and roster member (for the host's 資格情報 / 医療費 pages). `None` for an
    /// unknown or disabled account. Hosts call it after [`Portal::check_security_stamp`].
    pub async fn account_summary(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountSummary>, Error> {
        Ok(self.active_account(account).await?.map(|a| AccountSummary {
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
        let current = self.active_account(account).await?;
        Ok(current.is_some_and(|a| a.value.security_stamp == *stamp))
    }

    /// The account `account` names when it is active: what a logged-in member's pages
    /// may show (`None` for an unknown or disabled account).
    pub(super) async fn active_account(
        &self,
        account: &AccountId,
    ) -> Result<Option<Versioned<Account>>, Error> {
        let found = self
            .inner
            .store
            .find_account(AccountLookup::Id(account.clone()))
            .await?;
        Ok(found.filter(|a| crate::flow::active(Some(a)).is_some()))
    }
}
