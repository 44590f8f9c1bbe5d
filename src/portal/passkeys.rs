//! パスキー through the portal (feature `passkeys`): registration by a freshly logged-in
//! member, login with password + passkey, removal. The rules are the core's
//! ([`crate::flow::passkey`]).

use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::Portal;
use super::driver::Load;
use super::login::Authenticated;
use crate::error::Error;
use crate::flow::account::FreshLogin;
use crate::flow::factor::FactorInput;
use crate::flow::passkey::{self, PasskeyName};
pub use crate::flow::passkey::{PasskeyAdded, PasskeyLogin, PasskeyRegistration};
use crate::observe::StepName;
use crate::ports::AccountLoad;
use crate::ports::AccountLookup;
use crate::token::{FlowHandle, OtpChallengeId};

impl Portal {
    /// パスキーの登録, step 1: options for `navigator.credentials.create` (user
    /// verification required; the account's passkeys excluded). Needs a fresh login
    /// (SEC-36). The ceremony state is kept server-side in a flow bound to the returned
    /// handle, for [`Policy::factors`](crate::Policy::factors)' `setup_ttl`, single use.
    pub async fn start_passkey_registration(
        &self,
        fresh_auth: &Authenticated,
        name: &PasskeyName,
    ) -> Result<PasskeyRegistration, Error> {
        let webauthn = self.inner.webauthn.as_ref();
        let started = self
            .decide_fresh(
                StepName::StartPasskeyRegistration,
                fresh_auth,
                |view, fresh, env, rng| {
                    passkey::start_registration(view, fresh, name, webauthn, env, rng)
                },
            )
            .await?;
        Ok(started)
    }

    /// パスキーの登録, step 2: the browser's credential. Valid (right challenge, this
    /// origin, user verified), it becomes one of the account's passkeys — asked for at
    /// every login from then on — and a notice is mailed (SEC-43); the first factor
    /// brings ten リカバリーコード. Whatever the outcome, the registration is spent.
    pub async fn finish_passkey_registration(
        &self,
        fresh_auth: &Authenticated,
        handle: &FlowHandle,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyAdded, Error> {
        let load = self.flow_with_account_load(handle);
        let fresh = FreshLogin::from(fresh_auth);
        let webauthn = self.inner.webauthn.as_ref();
        let registered = self
            .decide(
                StepName::FinishPasskeyRegistration,
                &load,
                |loaded, env, rng| {
                    passkey::finish_registration(
                        loaded.found(),
                        loaded.view(),
                        (fresh, credential),
                        webauthn,
                        env,
                        rng,
                    )
                },
            )
            .await?;
        Ok(registered)
    }

    /// L2 with a パスキー: the browser's answer to the challenge's `passkey_options`.
    /// One of the account's passkeys, this origin, user verified: logged in
    /// (password + passkey: AAL2, phishing-resistant). Otherwise a try is counted like a
    /// wrong 暗証キー (SEC-29).
    pub async fn verify_passkey(
        &self,
        challenge: &OtpChallengeId,
        credential: &PublicKeyCredential,
    ) -> Result<Authenticated, Error> {
        self.verify_factor(
            StepName::VerifyPasskey,
            challenge,
            FactorInput::Passkey(credential),
        )
        .await
    }

    /// パスキーだけでログイン, step 1 (the login screen's 「パスキーでログイン」, when
    /// the policy's `factors.passkey_only_login` allows it): options for
    /// `navigator.credentials.get` listing no credential, so the device offers this
    /// site's passkeys. The challenge is kept server-side, single use, short-lived; each
    /// spends one of the hourly flow starts of the requester (named with
    /// [`Portal::from_requester`]) and of the portal (SEC-13).
    pub async fn start_passkey_login(&self) -> Result<PasskeyLogin, Error> {
        let webauthn = self.inner.webauthn.as_ref();
        let requester = &self.requester_counter();
        let load = Load {
            counters: Self::start_counters(requester.as_ref()),
            ..Load::default()
        };
        let started = self
            .decide(StepName::StartPasskeyLogin, &load, |loaded, env, rng| {
                let (starts, _) = loaded.start_budgets(requester.as_ref());
                passkey::start_discoverable(webauthn, starts, env, rng)
            })
            .await?;
        Ok(started)
    }

    /// パスキーだけでログイン, step 2: the browser's assertion. It names its account
    /// (the passkey's user handle); one of that account's passkeys, this origin, user
    /// verified, account usable: logged in. Every refusal is the same
    /// [`Rejection::SecondFactorIncorrect`](crate::Rejection::SecondFactorIncorrect).
    pub async fn finish_passkey_login(
        &self,
        challenge: &OtpChallengeId,
        credential: &PublicKeyCredential,
    ) -> Result<Authenticated, Error> {
        let webauthn = self.inner.webauthn.as_ref();
        let claimed = webauthn.and_then(|w| passkey::claimed_account(w, credential));
        let load = Load {
            account: claimed.map(|id| AccountLoad::By(AccountLookup::Id(id))),
            account_flows: true,
            ..self.flow_load(challenge)
        };
        self.decide(StepName::FinishPasskeyLogin, &load, |loaded, env, _| {
            passkey::finish_discoverable(loaded.found(), loaded.view(), credential, webauthn, env)
        })
        .await
    }

    /// パスキーの削除: removes one passkey by its credential ID. Needs a fresh login;
    /// under a required factor the last authenticator stays; open login challenges end;
    /// notified by mail (SEC-43).
    pub async fn remove_passkey(
        &self,
        fresh_auth: &Authenticated,
        credential_id: &str,
    ) -> Result<(), Error> {
        self.decide_fresh(
            StepName::RemovePasskey,
            fresh_auth,
            |view, fresh, env, _| passkey::remove(view, fresh, credential_id, env),
        )
        .await
    }
}
