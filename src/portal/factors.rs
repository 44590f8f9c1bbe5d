//! 2段階認証 through the portal: setting up a 認証アプリ, リカバリーコード, and logging in
//! with them. Each method names its step; the rules are the core's
//! ([`crate::flow::factor`]).

use super::Portal;
use super::driver::Load;
use super::login::Authenticated;
use crate::error::Error;
use crate::flow::account::FreshLogin;
use crate::flow::factor::{self, FactorInput, FactorSummary, TotpLabel};
pub use crate::flow::factor::{TotpEnrolled, TotpSetup};
use crate::flow::step::Step;
use crate::flow::{AccountView, Env};
use crate::model::{AccountId, FactorKind};
use crate::observe::StepName;
use crate::ports::AccountLookup;
use crate::token::{FlowHandle, OtpChallengeId, RecoveryCode, TotpCode};
use rand::rngs::ThreadRng;

impl Portal {
    /// The load of a step a freshly logged-in member takes on their own account.
    pub(super) fn fresh_load(fresh_auth: &Authenticated) -> Load {
        super::driver::account_with_flows(AccountLookup::Id(fresh_auth.account_id.clone()))
    }

    /// Decides a step a freshly logged-in member takes on their own account (SEC-36):
    /// [`fresh_load`](Self::fresh_load) read, `decide` given the account's view and the
    /// fresh login.
    pub(super) async fn decide_fresh<'a, T: Send + 'a>(
        &'a self,
        name: StepName,
        fresh_auth: &Authenticated,
        mut decide: impl FnMut(AccountView<'_>, FreshLogin<'_>, Env<'_>, &mut ThreadRng) -> Step<T>,
    ) -> Result<T, Error> {
        let load = Self::fresh_load(fresh_auth);
        let fresh = FreshLogin::from(fresh_auth);
        self.decide(name, &load, |loaded, env, rng| {
            decide(loaded.view(), fresh, env, rng)
        })
        .await
    }

    /// 2段階認証の設定 → 認証アプリ, step 1: draws a new shared secret and shows it as a
    /// QR code ([`TotpSetup::qr_svg`]). Needs a fresh login (SEC-36): `fresh_auth` no
    /// older than [`Policy::reauth_window`](crate::Policy::reauth_window), stamp current;
    /// otherwise [`Rejection::ReauthenticationRequired`](crate::Rejection::ReauthenticationRequired).
    /// The secret is kept sealed server-side, bound to the returned handle, until
    /// [`Portal::confirm_totp_setup`].
    pub async fn start_totp_setup(&self, fresh_auth: &Authenticated) -> Result<TotpSetup, Error> {
        let issuer = self.inner.profile.service_name.as_str();
        let started = self
            .decide_fresh(
                StepName::StartTotpSetup,
                fresh_auth,
                |view, fresh, env, rng| {
                    factor::start_totp_setup(
                        view,
                        fresh,
                        TotpLabel { issuer },
                        &self.inner.seals,
                        env,
                        rng,
                    )
                },
            )
            .await?;
        Ok(started)
    }

    /// 2段階認証の設定 → 認証アプリ, step 2: the first 確認コード the app shows. Right, the
    /// app becomes the account's second factor — from the next login on it is asked for
    /// instead of the mailed 暗証キー — and, for a first factor, ten リカバリーコード are
    /// returned to show once. A notice is mailed (SEC-43). Wrong,
    /// [`Rejection::SecondFactorIncorrect`](crate::Rejection::SecondFactorIncorrect); after
    /// the policy's tries the setup is dead
    /// ([`Rejection::FactorSetupInvalid`](crate::Rejection::FactorSetupInvalid)).
    pub async fn confirm_totp_setup(
        &self,
        fresh_auth: &Authenticated,
        handle: &FlowHandle,
        code: &TotpCode,
    ) -> Result<TotpEnrolled, Error> {
        let load = self.flow_with_account_load(handle);
        let fresh = FreshLogin::from(fresh_auth);
        let confirmed = self
            .decide(StepName::ConfirmTotpSetup, &load, |loaded, env, rng| {
                factor::confirm_totp_setup(
                    loaded.found(),
                    loaded.view(),
                    (fresh, code),
                    &self.inner.seals,
                    env,
                    rng,
                )
            })
            .await?;
        Ok(confirmed)
    }

    /// L2 with the 認証アプリ (確認コード入力 → ログイン): the challenge
    /// [`Portal::start_login`] issued with
    /// [`SecondStep::AuthenticatorApp`](crate::flow::SecondStep::AuthenticatorApp). A code
    /// is accepted once (a time step is never accepted twice), with ±1 step of clock
    /// skew, within the 暗証キー's budgets (SEC-29).
    pub async fn verify_totp(
        &self,
        challenge: &OtpChallengeId,
        code: &TotpCode,
    ) -> Result<Authenticated, Error> {
        self.verify_factor(StepName::VerifyTotp, challenge, FactorInput::Totp(code))
            .await
    }

    /// L2 with a リカバリーコード instead of the 認証アプリ (「リカバリーコードを使う」):
    /// each code works once; its use is mailed to the member (SEC-43).
    pub async fn use_recovery_code(
        &self,
        challenge: &OtpChallengeId,
        code: &RecoveryCode,
    ) -> Result<Authenticated, Error> {
        self.verify_factor(
            StepName::UseRecoveryCode,
            challenge,
            FactorInput::RecoveryCode(code),
        )
        .await
    }

    pub(super) async fn verify_factor(
        &self,
        name: StepName,
        challenge: &OtpChallengeId,
        input: FactorInput<'_>,
    ) -> Result<Authenticated, Error> {
        self.decide_second_step(name, challenge, |loaded, today, env| {
            let verifiers = &self.verifiers();
            factor::verify(
                loaded.found(),
                loaded.view(),
                (input, today),
                verifiers,
                env,
            )
        })
        .await
    }

    /// リカバリーコードの再発行: ten new codes to show once; the old set stops working at
    /// once. Needs a fresh login and a 認証アプリ; notified by mail (SEC-43).
    pub async fn regenerate_recovery_codes(
        &self,
        fresh_auth: &Authenticated,
    ) -> Result<Vec<RecoveryCode>, Error> {
        self.decide_fresh(
            StepName::RegenerateRecoveryCodes,
            fresh_auth,
            factor::regenerate_recovery_codes,
        )
        .await
    }

    /// 2段階認証の解除: removes a factor. Needs a fresh login. Under
    /// [`FactorRequirement::Required`](crate::policy::FactorRequirement::Required) the
    /// last 認証アプリ stays
    /// ([`Rejection::LastFactorRequired`](crate::Rejection::LastFactorRequired)). Removing
    /// the last 認証アプリ also removes the リカバリーコード. Notified by mail (SEC-43).
    pub async fn remove_factor(
        &self,
        fresh_auth: &Authenticated,
        kind: FactorKind,
    ) -> Result<(), Error> {
        self.decide_fresh(StepName::RemoveFactor, fresh_auth, |view, fresh, env, _| {
            factor::remove_factor(view, fresh, kind, env)
        })
        .await
    }

    /// What the 2段階認証の設定 screen lists: each factor with when it was added and last
    /// used, and how many リカバリーコード are left. Empty for an unknown or disabled
    /// account. Hosts call it after [`Portal::check_security_stamp`].
    pub async fn list_factors(&self, account: &AccountId) -> Result<Vec<FactorSummary>, Error> {
        Ok(self
            .active_account(account)
            .await?
            .map(|a| factor::summarize(&a.value))
            .unwrap_or_default())
    }
}
