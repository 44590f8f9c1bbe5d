//! 新規利用登録 (R1–R5) through the portal.

use time::OffsetDateTime;

use super::driver::{Load, Memo};
use super::{Portal, typed_email};
use crate::domain::{Carrier, EmailAddress, InputError, LoginId, Password};
use crate::error::{Error, Rejection};
use crate::flow::delivery::Receipted;
use crate::flow::registration::{self, ChosenCredentials, IdentityFacts, LinkResent};
use crate::flow::{IdentityClaim, RegistrationState};
use crate::observe::StepName;
use crate::password_hash::Verification;
use crate::ports::AccountLoad;
use crate::ports::{AccountId, AccountLookup, MemberRecord};
use crate::token::{AuthKey, FlowHandle, VerificationLinkToken};

/// The answer to R1 — the same whether or not the address is known (SEC-07). It depends
/// only on the address as typed: a carrier advisory for docomo/au/SoftBank/Y!mobile
/// addresses (DOM-20) and a warning for legacy non-RFC addresses (DOM-21).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationStarted {
    /// The carrier, if the address is a carrier address.
    pub carrier: Option<Carrier>,
    /// The 受信設定 advisory to show under 送信完了, if any.
    pub carrier_advisory: Option<String>,
    /// Whether the address is a legacy docomo/au form some mail servers refuse.
    pub legacy_address_warning: bool,
    /// The text to show for such an address (DOM-21), in the insurer's language.
    pub legacy_address_advice: Option<String>,
    /// The receipt of the mail this step sent (link 1, or the notice to a registered address's owner; for a throttled request, a stand-in that answers the same): ask [`Portal::mail_status`] with it to
    /// tell the member truthfully whether the mail went out.
    pub receipt: crate::model::MailId,
}

/// The answer to R3: the 認証キー to show on screen once (「必ず控えてください」).
#[derive(Debug)]
pub struct AuthKeyShown {
    /// The key. Show it on this screen only.
    pub auth_key: AuthKey,
    /// When it and link 2 stop working.
    pub expires_at: OffsetDateTime,
    /// The receipt of link 2's mail: ask [`Portal::mail_status`] with it to
    /// tell the member truthfully whether the mail went out.
    pub receipt: crate::model::MailId,
}

/// What the member types at R5 (利用者情報入力).
#[derive(Debug)]
pub struct NewCredentials {
    /// 新ログインID.
    pub login_id: String,
    /// 新パスワード.
    pub password: Password,
    /// 新パスワード(確認).
    pub password_confirmation: Password,
    /// ニックネーム (optional).
    pub nickname: Option<String>,
}

/// The answer to R5: the account exists (登録完了).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// The new account.
    pub account_id: AccountId,
}

impl Portal {
    /// R1 (メールアドレス入力 → 送信する): mails link 1, or — when the address already has
    /// an account — a notice to its owner instead. The answer is the same either way,
    /// and also when the mail was throttled (SEC-07, SEC-13).
    ///
    /// It answers no sooner than [`Policy::answer_floor`](crate::Policy::answer_floor)
    /// after it began, and commits the same rows on every path, so neither its answer nor
    /// its timing says whether an account exists.
    pub async fn start_registration(&self, email: &str) -> Result<RegistrationStarted, Error> {
        let email = typed_email(email)?;
        let (load, requester) = self.address_start_load(&email);
        let email = &email;
        let step_name = StepName::StartRegistration;
        let ((), receipt) = self
            .floored(self.decide_receipted(
                step_name,
                (&load, Receipted::Registration),
                |loaded, env, rng| {
                    let (starts, mails) = loaded.start_budgets(requester.as_ref());
                    let registered = loaded.account.is_some();
                    registration::begin(
                        email.clone(),
                        registered,
                        (mails, starts),
                        &self.inner.urls,
                        env,
                        rng,
                    )
                },
            ))
            .await?;
        Ok(RegistrationStarted {
            carrier: email.carrier(),
            carrier_advisory: email
                .carrier()
                .map(|c| c.advisory(self.inner.profile.sender_domain(), self.inner.profile.lang)),
            legacy_address_warning: email.is_legacy_non_rfc(),
            legacy_address_advice: email
                .legacy_warning(self.inner.profile.lang)
                .map(str::to_owned),
            receipt,
        })
    }

    /// Reads what the member typed on 本人確認 into an [`IdentityClaim`], with the
    /// insurer's own 記号・番号 format (DOM-8): full-width digits and hyphen look-alikes
    /// are folded, and anything unreadable — or a birth date after today (DOM-13) — is
    /// [`Error::Rejected`] with a [`Rejection::InvalidInput`] and its Japanese message,
    /// like every other step's field errors. It never fails otherwise.
    pub fn identity_claim(
        &self,
        card_number: &str,
        birth_date: &str,
        kana_name: Option<&str>,
    ) -> Result<IdentityClaim, Error> {
        let typed = (card_number, birth_date, kana_name);
        let format = &self.inner.profile.card_number_format;
        Ok(IdentityClaim::read(typed, format, self.now())?)
    }

    /// R3 (本人確認 → 確認): checks 記号・番号・枝番 and 生年月日 against the roster. On
    /// success returns the 認証キー to show once and mails link 2 to the R1 address.
    /// Attempts are limited per flow and per member across flows (SEC-09); a failure
    /// never says which attribute was wrong.
    pub async fn verify_identity(
        &self,
        handle: &FlowHandle,
        claim: IdentityClaim,
    ) -> Result<AuthKeyShown, Error> {
        let load = self.flow_load(handle);
        let roster: &Memo<Option<MemberRecord>> = &Memo::new();
        let claim = &claim;
        let ((auth_key, expires_at), receipt) = self
            .drive_receipted(
                StepName::VerifyIdentity,
                (&load, Receipted::Mailed),
                move |loaded, now| {
                    Box::pin(async move {
                        let env = self.env(now);
                        // The roster is asked only once the handle is known to belong to a live
                        // flow at this step, so a forged handle cannot probe card numbers (SEC-09).
                        if let Some(stop) = registration::identity_gate(loaded.found(), env) {
                            return Ok(stop);
                        }
                        let directory = &self.inner.directory;
                        let record = roster
                            .get_or_try(|| directory.find(&claim.card_number))
                            .await?;
                        let record = record.as_ref();
                        // What to read next depends on the roster's answer (the core says
                        // what): the budget and the member's account, in one more load.
                        let (budget, member_id) = registration::identity_budget(
                            record,
                            &claim.card_number,
                            &self.inner.keys,
                        );
                        // Whether the flow's address was taken meanwhile (a family member's
                        // account) is read in the same load.
                        let member = self
                            .load(&Load {
                                account: Some(AccountLoad::By(AccountLookup::Member(member_id))),
                                counters: vec![budget.render()],
                                address_taken: loaded
                                    .registration()
                                    .and_then(RegistrationState::email)
                                    .cloned(),
                                ..Load::default()
                            })
                            .await?;
                        let member_checks = member.counter(0).cloned();
                        let member_has_account = member.account.is_some();
                        let email_taken = member.address_taken;
                        let facts = IdentityFacts {
                            record,
                            budget: &budget,
                            member_checks: member_checks.as_ref(),
                            member_has_account,
                            email_taken,
                        };
                        let mut rng = Self::rng();
                        Ok(registration::confirm_identity(
                            loaded.found(),
                            claim,
                            facts,
                            &self.inner.urls,
                            env,
                            &mut rng,
                        ))
                    })
                },
            )
            .await?;
        Ok(AuthKeyShown {
            auth_key,
            expires_at,
            receipt,
        })
    }

    /// R4, POST of 認証: link 2 together with the 認証キー from the R3 screen. Consumes
    /// both and binds the flow to this browser (which may be another device than R3's).
    pub async fn confirm_auth_key(
        &self,
        token: &VerificationLinkToken,
        key: &AuthKey,
    ) -> Result<FlowHandle, Error> {
        let load = self.flow_load(token);
        self.decide(StepName::ConfirmAuthKey, &load, |loaded, env, rng| {
            registration::confirm_key(loaded.found(), key, env, rng)
        })
        .await
    }

    /// R3's 「メールが届かない場合」: mails link 2 again to the R1 address, for the browser
    /// that passed R3 (its R2 handle). The new link replaces the old one; the 認証キー
    /// already on screen stays valid and the deadline does not move (30 min from R3).
    /// `TooManyRequests { retry_after }` within `Policy::mail_min_interval` of the last
    /// mail; [`Rejection::WrongStep`] once `Policy::mails_per_address_per_hour` resends
    /// are spent or for any other handle; [`Rejection::Expired`] after the deadline.
    pub async fn resend_verification_link(&self, handle: &FlowHandle) -> Result<LinkResent, Error> {
        let load = self.flow_load(handle);
        let step_name = StepName::ResendVerificationLink;
        self.decide(step_name, &load, |loaded, env, rng| {
            registration::resend_link2(loaded.found(), &self.inner.urls, env, rng)
        })
        .await
    }

    /// R2' (事前登録の方): the insurer-issued login ID and 仮パスワード instead of R3–R4.
    /// Returns a new handle for R5. The temporary password can never become the
    /// long-term one (SEC-41); failures count against the account like login failures.
    pub async fn sign_in_with_temporary_password(
        &self,
        handle: &FlowHandle,
        login_id: &str,
        password: &Password,
    ) -> Result<FlowHandle, Error> {
        let (load, refused) = &self.password_load(login_id, self.flow_load(handle));
        let cache = &Memo::new();
        let step_name = StepName::SignInWithTemporaryPassword;
        self.drive(step_name, load, move |loaded, now| {
            Box::pin(async move {
                let env = self.env(now);
                // A handle that is not at the identity step costs no Argon2 work.
                if let Some(stop) = registration::credentials_entry_refused(loaded.found(), env.now)
                {
                    return Ok(stop);
                }
                let account = loaded.account.as_ref();
                let check = self.check_password_hash(account, password, cache).await?;
                let mut rng = Self::rng();
                Ok(registration::temporary_sign_in(
                    loaded.found(),
                    account,
                    check,
                    loaded.refusals(refused),
                    env,
                    &mut rng,
                ))
            })
        })
        .await
    }

    /// The address the account will get, to show read-only on 利用者情報入力 (R5). Only
    /// a handle at that step (after R4 or R2') can read it; any other handle is
    /// [`Rejection::WrongStep`], an expired step [`Rejection::Expired`].
    pub async fn registration_email(&self, handle: &FlowHandle) -> Result<EmailAddress, Error> {
        let load = self.flow_load(handle);
        let loaded = self.load(&load).await?;
        let ready = registration::credentials_step(loaded.found(), self.now())?;
        Ok(ready.email.clone())
    }

    /// R5 (利用者情報入力 → 登録): validates 新ログインID, 新パスワード (+確認) and
    /// ニックネーム, and creates the account atomically with completing the flow. Login
    /// ID, address and member are each unique; a family member's address gets its own
    /// message (「ご家族と重複するメールアドレスは使用できません」).
    pub async fn complete_registration(
        &self,
        handle: &FlowHandle,
        credentials: NewCredentials,
    ) -> Result<Registered, Error> {
        let load = self.flow_load(handle);
        let hashed = &Memo::new();
        let credentials = &credentials;
        self.drive(StepName::CompleteRegistration, &load, move |loaded, now| {
            Box::pin(async move {
                let env = self.env(now);
                let typed = LoginId::parse(&credentials.login_id);
                let ready =
                    match registration::completion_gate(loaded.found(), typed.as_ref().ok(), env) {
                        Ok(ready) => ready,
                        Err(stop) => return Ok(*stop),
                    };
                let login_id = typed.map_err(InputError::from).map_err(Rejection::from)?;
                let nickname = registration::read_nickname(credentials.nickname.as_deref())?;
                let (password, confirmation) =
                    (&credentials.password, &credentials.password_confirmation);
                crate::flow::account::check_confirmation(password, confirmation)?;
                let (context, identifying) = self
                    .password_context(
                        &login_id,
                        Some(&ready.email),
                        nickname.as_ref(),
                        ready.proof.member(),
                    )
                    .await?;
                registration::check_chosen(
                    (&login_id, &ready.email, &identifying),
                    password,
                    &context,
                    &self.inner.policy.password,
                )?;
                let provisioned = match ready.proof.provisioned_account() {
                    None => None,
                    Some(id) => {
                        self.inner
                            .store
                            .find_account(AccountLookup::Id(id.clone()))
                            .await?
                    }
                };
                let temporary =
                    registration::temporary_to_differ_from(ready, provisioned.as_ref(), env.now);
                let is_temporary = match temporary {
                    None => false,
                    Some(stored) => matches!(
                        self.inner.hasher.verify(password, stored).await?,
                        Verification::Match { .. }
                    ),
                };
                registration::check_not_temporary(is_temporary)?;
                let password_hash = self.hash_once(&credentials.password, hashed).await?;
                let chosen = ChosenCredentials {
                    login_id,
                    nickname,
                    password_hash,
                };
                let mut rng = Self::rng();
                Ok(registration::complete(
                    loaded.found(),
                    chosen,
                    provisioned.as_ref(),
                    &self.inner.urls,
                    env,
                    &mut rng,
                ))
            })
        })
        .await
        .map(|account_id| Registered { account_id })
    }
}
