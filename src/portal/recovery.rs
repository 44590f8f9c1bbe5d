//! ログインID・パスワードを忘れた方 through the portal.
//!
//! Both requests answer the same [`RecoveryRequested`] whatever was typed: a known or
//! unknown login ID or address, a locked, disabled or provisioned account, a wrong
//! roster attribute, a throttled mail (SEC-37, SEC-40, SEC-13). What the member asked
//! for only ever goes to the registered address. Nothing about the account changes until
//! a reset link is used and the reset completes.

use std::borrow::Cow;

use super::driver::by_login_id;
use super::driver::{Load, Memo, rendered};
use super::{Portal, typed_email};
use crate::domain::Password;
use crate::error::Error;
use crate::flow::IdentityClaim;
use crate::flow::delivery::Receipted;
use crate::flow::recovery::{self, ReminderFacts, ResetMails};
use crate::lang::Lang;
use crate::model::{Counter, CounterKey, MemberId, Versioned};
use crate::observe::StepName;
use crate::password_hash::PasswordHashString;
use crate::ports::MemberRecord;
use crate::token::FlowHandle;

/// The answer to a forgotten-ID or forgotten-password request: always the same, so it
/// says nothing about whether anything matched (SEC-37, SEC-40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryRequested {
    /// The receipt of the mail this request caused — or, when nothing matched or the request was throttled, of a stand-in that answers [`Portal::mail_status`] exactly as a mail does (SEC-37, SEC-40): ask [`Portal::mail_status`] with it to
    /// tell the member truthfully whether the mail went out.
    pub receipt: crate::model::MailId,
}

impl RecoveryRequested {
    /// The text to show: 「ご登録がある場合はメールを送信しました」.
    pub fn message(&self, lang: Lang) -> Cow<'static, str> {
        Cow::Borrowed(match lang {
            Lang::En => {
                "If the details match a registration, we have sent a mail to the registered address."
            }
            _ => "ご登録がある場合は、ご登録のメールアドレスにメールを送信しました。",
        })
    }
}

impl Portal {
    /// ログインIDを忘れた方: mails the login ID to the registered address when `email`
    /// belongs to an active account and — when
    /// [`Policy::recovery_requires_identity`](crate::Policy::recovery_requires_identity)
    /// (the default) — `identity` matches the account's roster entry. The ID is never
    /// returned (SEC-40). The answer is the same whether or not anything matched, and
    /// when the mail is throttled (SEC-13).
    ///
    /// No identity budget is charged (SEC-25): the answer never says whether the claim
    /// matched, so there is nothing to guess, and charging the member's budget would let
    /// anyone who knows the address block the member's own reset. The address's mail
    /// allowance is counted whether or not anything matched. Only a malformed address, or
    /// a missing `identity` where the policy needs one, is refused — neither says anything
    /// about accounts.
    ///
    /// It answers no sooner than [`Policy::answer_floor`](crate::Policy::answer_floor)
    /// after it began, and commits the same rows on every path, so neither its answer nor
    /// its timing says whether an account exists.
    pub async fn request_login_id_reminder(
        &self,
        email: &str,
        identity: Option<IdentityClaim>,
    ) -> Result<RecoveryRequested, Error> {
        let email = typed_email(email)?;
        let (load, requester) = &self.address_start_load(&email);
        let roster = &Memo::new();
        let (email, identity) = (&email, &identity);
        let step_name = StepName::RequestLoginIdReminder;
        let step = self.drive_receipted(
            step_name,
            (load, Receipted::LoginIdReminder),
            move |loaded, now| {
                Box::pin(async move {
                    let env = self.env(now);
                    if let Some(refused) = recovery::reminder_gate(identity.as_ref(), env) {
                        return Ok(refused);
                    }
                    // The roster is asked for the typed card whether or not the address has
                    // an account, so its latency says nothing (SEC-40); the core checks the
                    // entry belongs to the account's member.
                    let record = match identity {
                        Some(claim) => {
                            let directory = &self.inner.directory;
                            roster
                                .get_or_try(|| directory.find(&claim.card_number))
                                .await?
                        }
                        None => None,
                    };
                    let (starts, mails) = loaded.start_budgets(requester.as_ref());
                    let facts = ReminderFacts {
                        account: loaded.account.as_ref(),
                        record: record.as_ref(),
                        mails,
                        starts,
                    };
                    Ok(recovery::remind_login_id(
                        email,
                        identity.as_ref(),
                        facts,
                        env,
                    ))
                })
            },
        );
        let ((), receipt) = self.floored(step).await?;
        Ok(RecoveryRequested { receipt })
    }

    /// パスワードを忘れた方: mails a reset link (30 min, single use, SEC-38) to the
    /// registered address of an active account — locked or not (SEC-25). The answer is
    /// the same for an unknown, malformed, disabled or provisioned login ID and when the
    /// mail is throttled, and nothing of the account's changes (SEC-37): earlier links
    /// stay alive until one of the account's links is opened, which ends the others.
    /// Mails are counted per login ID as typed.
    ///
    /// It answers no sooner than [`Policy::answer_floor`](crate::Policy::answer_floor)
    /// after it began, and commits the same rows on every path, so neither its answer nor
    /// its timing says whether an account exists.
    ///
    /// Insurer staff who want to help a member use this same call with the member's login
    /// ID: they can trigger the mail, never see or set a password (SEC-47).
    pub async fn request_password_reset(&self, login_id: &str) -> Result<RecoveryRequested, Error> {
        let requester = &self.requester_counter();
        let mail_keys = &CounterKey::mails_for_login_id_all(login_id, &self.inner.keys);
        let mut counters = Self::start_counters(requester.as_ref());
        counters.extend(rendered(mail_keys.iter().cloned()));
        let load = Load {
            account: by_login_id(login_id),
            counters,
            ..Load::default()
        };
        let step_name = StepName::RequestPasswordReset;
        let step = self.decide_receipted(
            step_name,
            (&load, Receipted::PasswordReset),
            move |loaded, env, rng| {
                let (starts, mails) = loaded.start_budgets(requester.as_ref());
                let mails = ResetMails {
                    keys: mail_keys,
                    counters: mails,
                };
                recovery::request_reset(
                    loaded.account.as_ref(),
                    (mails, starts),
                    &self.inner.urls,
                    env,
                    rng,
                )
            },
        );
        let ((), receipt) = self.floored(step).await?;
        Ok(RecoveryRequested { receipt })
    }

    /// Completes a password reset on the browser that opened the link.
    ///
    /// With [`Policy::recovery_requires_identity`](crate::Policy::recovery_requires_identity)
    /// (the default), `claim` (記号・番号・枝番 + 生年月日) must match the account's roster
    /// entry first; checks are limited per reset and per member like the registration's
    /// (SEC-09), and a failure never says which attribute was wrong. Once it has passed,
    /// a refused new password can be retyped without the claim. The new password must
    /// meet the full policy (SEC-14, SEC-17).
    ///
    /// On success: the new password is set, the lockout is cleared (password failures,
    /// 暗証キー failures and cooldown; SEC-25), the security stamp changes and the
    /// account's open 暗証キー challenges, other reset links and address changes end
    /// (SEC-34), and 「パスワード変更のお知らせ」 goes to the registered address (SEC-38,
    /// SEC-43). The member is NOT logged in: the next login still needs the password and
    /// a 暗証キー.
    pub async fn complete_password_reset(
        &self,
        handle: &FlowHandle,
        claim: Option<IdentityClaim>,
        new_password: Password,
        confirmation: Password,
    ) -> Result<(), Error> {
        let load = self.flow_with_account_load(handle);
        let roster = &Memo::new();
        let hashed: &Memo<PasswordHashString> = &Memo::new();
        let (claim, new_password, confirmation) = (&claim, &new_password, &confirmation);
        let step_name = StepName::CompletePasswordReset;
        self.drive(step_name, &load, move |loaded, now| {
            Box::pin(async move {
                let env = self.env(now);
                let account = loaded.account.as_ref();
                let member = account
                    .filter(|_| claim.is_some())
                    .map(|a| a.value.member.clone());
                let member_checks = match member {
                    Some(m) => self.member_checks(&m, roster).await?,
                    None => None,
                };
                let record = roster.get().flatten();
                let (checked, a) = match recovery::check_reset_claim(
                    loaded.found(),
                    account,
                    claim.as_ref(),
                    record.as_ref(),
                    member_checks.as_ref(),
                    env,
                ) {
                    Ok(checked) => checked,
                    Err(stop) => return Ok(*stop),
                };
                // The new password, under the full policy.
                match self
                    .check_account_password(&a.value, new_password, confirmation)
                    .await
                {
                    Ok(()) => {}
                    Err(Error::Rejected(r)) => return Ok(checked.refuse(loaded.found(), r)),
                    Err(e) => return Err(e),
                }
                let password_hash = self.hash_once(new_password, hashed).await?;
                let mut rng = Self::rng();
                Ok(recovery::complete_reset(
                    loaded.found(),
                    loaded.view(),
                    checked,
                    password_hash,
                    env,
                    &mut rng,
                ))
            })
        })
        .await
    }

    /// The roster entry of `member` (asked once per request, into `roster`) and the
    /// member's identity-check counter (SEC-09), for a roster re-check.
    async fn member_checks(
        &self,
        member: &MemberId,
        roster: &Memo<Option<MemberRecord>>,
    ) -> Result<Option<Versioned<Counter>>, Error> {
        roster
            .get_or_try(|| self.inner.directory.get(member))
            .await?;
        let key = CounterKey::IdentityChecks(member.clone()).render();
        Ok(self.inner.store.load_counter(&key).await?)
    }
}
