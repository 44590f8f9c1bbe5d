//! Account life: changes by a logged-in member (password, e-mail address) and the
//! insurer's side (事前登録 provisioning, 資格喪失 disabling, housekeeping).
//!
//! Every change of the password or the address changes the security stamp and ends the
//! account's open 暗証キー challenges, reset links and pending address changes, so other
//! sessions and outstanding secrets die with the old credentials (SEC-34).
//!
//! The login ID cannot be changed. It is not a recovery channel, the member can always
//! have it mailed (ログインIDを忘れた方), and a change would be one more way for a
//! hijacked session to lock the member out and one more "is this ID taken?" oracle —
//! for no gain the seed portal's members ask for.

use time::OffsetDateTime;

use super::driver::{Load, Memo, account_with_flows, rendered};
use super::login::Authenticated;
use super::{Portal, typed_email};
use crate::domain::{EmailAddress, InputError, LoginId, Nickname, Password, PasswordContext};
use crate::error::{Error, Rejection};
use crate::flow::AccountView;
use crate::flow::account as account_flow;
use crate::flow::account::FreshLogin;
use crate::model::CounterKey;
use crate::observe::StepName;
use crate::password_hash::PasswordHashString;
use crate::ports::{Account, AccountId, AccountLookup, MemberId, SecurityStamp};
use crate::token::{EmailChangeLinkToken, TemporaryPassword};

const PURGE_BATCH: usize = 500;

/// The answer to [`Portal::change_password`]: the new security stamp. Put it in the
/// session that made the change, so that this session stays valid while every other one
/// fails [`Portal::check_security_stamp`] (SEC-34).
#[derive(Debug)]
#[non_exhaustive]
pub struct CredentialsChanged {
    /// The account's new security stamp.
    pub security_stamp: SecurityStamp,
}

/// The answer to [`Portal::change_email`]: a confirmation link went to the new address
/// (or was throttled — the answer is the same, SEC-13). The account keeps its old address
/// until the link is used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailChangeRequested {
    /// The new address, masked, to show 「…へ確認メールを送信しました」.
    pub masked_new_email: String,
}

/// The answer to [`Portal::confirm_email_change`]: the address is changed and every
/// session of the account must log in again (the stamp changed, SEC-34).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmailChangeConfirmed {
    /// The account's new address, masked.
    pub masked_email: String,
}

/// The answer to [`Portal::provision_account`], for the insurer's letter (事前登録).
///
/// Print the login ID and the temporary password on the letter and keep neither: the
/// temporary password is stored only as a hash, and a re-issue revokes it (SEC-41).
#[derive(Debug)]
#[non_exhaustive]
pub struct ProvisionedAccount {
    /// The account (new, or the member's existing provisioned or disabled one).
    pub account_id: AccountId,
    /// The random login ID to print (SEC-42).
    pub login_id: LoginId,
    /// The random temporary password to print (SEC-41). Its `Debug` is redacted.
    pub temporary_password: TemporaryPassword,
    /// When the temporary password stops working.
    pub expires_at: OffsetDateTime,
}

pub use crate::flow::account::DisableOutcome;

impl Portal {
    /// The words a member's new password must not contain and the strings a login ID
    /// must not be ([`account_flow::password_context`]), with the member's roster entry.
    pub(super) async fn password_context(
        &self,
        login_id: &LoginId,
        email: Option<&EmailAddress>,
        nickname: Option<&Nickname>,
        member: &MemberId,
    ) -> Result<(PasswordContext, Vec<String>), Error> {
        let insurer = &self.inner.profile.insurer_name;
        let record = self.inner.directory.get(member).await?;
        let member = record.as_ref();
        let context = account_flow::password_context(login_id, email, nickname, insurer, member);
        Ok(context)
    }

    /// Checks 新パスワード (+確認) against the full policy with the account's context
    /// words (SEC-14, SEC-17).
    pub(super) async fn check_account_password(
        &self,
        account: &Account,
        new: &Password,
        confirmation: &Password,
    ) -> Result<(), Error> {
        account_flow::check_confirmation(new, confirmation)?;
        let (context, _) = self
            .password_context(
                &account.login_id,
                account.email.as_ref(),
                account.nickname.as_ref(),
                &account.member,
            )
            .await?;
        let policy = &self.inner.policy.password;
        Ok(account_flow::check_new_password(new, &context, policy)?)
    }

    /// パスワード変更 for a logged-in member: 現在のパスワード, 新パスワード and
    /// 新パスワード(確認).
    ///
    /// The host calls it for the account of a session it has checked with
    /// [`Portal::check_security_stamp`]. The current password is verified exactly like
    /// a login: a wrong one counts on the account, and the delays and hard cap of
    /// SEC-24 apply (SEC-18); every such refusal is
    /// [`Rejection::CurrentPasswordIncorrect`]. The new password is checked first, so a
    /// typo in it costs no attempt. On success the stamp changes, the account's open
    /// challenges, reset links and address changes end, and 「パスワード変更のお知らせ」
    /// goes to the registered address (SEC-34, SEC-43).
    pub async fn change_password(
        &self,
        account_id: &AccountId,
        current: Password,
        new: Password,
        confirmation: Password,
    ) -> Result<CredentialsChanged, Error> {
        let load = account_with_flows(AccountLookup::Id(account_id.clone()));
        let cache = &Memo::new();
        let hashed: &Memo<PasswordHashString> = &Memo::new();
        let (current, new, confirmation) = (&current, &new, &confirmation);
        let security_stamp = self
            .drive(StepName::ChangePassword, &load, move |loaded, now| {
                Box::pin(async move {
                    let env = self.env(now);
                    let a = match account_flow::password_change_gate(loaded.view()) {
                        Ok(a) => a,
                        Err(stop) => return Ok(*stop),
                    };
                    // The new password is checked first, so a typo in it costs no attempt.
                    self.check_account_password(&a.value, new, confirmation)
                        .await?;
                    let current = self.check_password_hash(Some(a), current, cache).await?;
                    let new_hash = self.hash_once(new, hashed).await?;
                    let mut rng = Self::rng();
                    Ok(account_flow::change_password(
                        loaded.view(),
                        current,
                        new_hash,
                        env,
                        &mut rng,
                    ))
                })
            })
            .await?;
        Ok(CredentialsChanged { security_stamp })
    }

    /// メールアドレス変更 for a logged-in member: mails a confirmation link to the new
    /// address; the account keeps its old address until the link is used
    /// ([`Portal::confirm_email_change`]).
    ///
    /// Needs a fresh login (SEC-36): `fresh_auth` must be the [`Authenticated`] of a
    /// login (password + 暗証キー) of this account no older than
    /// [`Policy::reauth_window`](crate::Policy::reauth_window) (5 min), whose stamp is
    /// still current. A typical screen asks for the new address, then runs L1–L2 again
    /// and calls this with the result. Otherwise
    /// [`Rejection::ReauthenticationRequired`].
    ///
    /// Whether the new address already belongs to another account is not said here (it
    /// would tell any logged-in member which addresses are registered); it is checked
    /// when the link comes back, by the owner of that mailbox (SEC-08).
    pub async fn change_email(
        &self,
        account_id: &AccountId,
        fresh_auth: &Authenticated,
        new_email: &str,
    ) -> Result<EmailChangeRequested, Error> {
        let new_email = typed_email(new_email)?;
        let load = Load {
            counters: rendered(CounterKey::mails_to_all(&new_email, &self.inner.keys)),
            ..account_with_flows(AccountLookup::Id(account_id.clone()))
        };
        let fresh = FreshLogin::from(fresh_auth);
        let new_email = &new_email;
        self.decide(StepName::ChangeEmail, &load, |loaded, env, rng| {
            account_flow::request_email_change(
                AccountView {
                    account: loaded
                        .account
                        .as_ref()
                        .filter(|a| a.value.id == *account_id),
                    flows: &loaded.account_flows,
                },
                fresh,
                (new_email.clone(), &loaded.counters),
                &self.inner.urls,
                env,
                rng,
            )
        })
        .await?;
        Ok(EmailChangeRequested {
            masked_new_email: new_email.masked(),
        })
    }

    /// POST of the address-confirmation link: the new address becomes the account's.
    /// Uniqueness is decided by the store in the same commit (SEC-08): an address bound
    /// to another account is refused with [`Rejection::FamilyEmailInUse`] — said only to
    /// whoever holds the link, i.e. controls that mailbox. The stamp changes, open
    /// challenges, reset links and other address changes end (SEC-34), and
    /// 「メールアドレス変更のお知らせ」 goes to the old and the new address (SEC-43).
    pub async fn confirm_email_change(
        &self,
        token: &EmailChangeLinkToken,
    ) -> Result<EmailChangeConfirmed, Error> {
        let load = self.flow_with_account_load(token);
        let masked_email = self
            .decide(StepName::ConfirmEmailChange, &load, |loaded, env, rng| {
                account_flow::confirm_email(loaded.found(), loaded.view(), env, rng)
            })
            .await?;
        Ok(EmailChangeConfirmed { masked_email })
    }

    /// Insurer side, 事前登録: an account for roster member `member` with a random login
    /// ID (SEC-42) and a random temporary password (SEC-41), valid
    /// [`Policy::temporary_password_ttl`](crate::Policy::temporary_password_ttl) (21
    /// days). The member's first use goes through R2'
    /// ([`Portal::sign_in_with_temporary_password`]) and R5, where they choose their own
    /// login ID and password; the temporary password can never become theirs.
    ///
    /// Calling it again for a member whose account is still provisioned (or disabled, on
    /// re-joining the insurer) re-issues: a new temporary password and expiry on the same
    /// account, and the old one — and any R2' it already passed — stops working. A member
    /// who has completed registration is refused ([`Rejection::AlreadyRegistered`]); so
    /// is one not eligible on the roster ([`Rejection::UnknownMember`]).
    ///
    /// This is the only insurer-side credential operation: no API sets or shows a
    /// member's own password (SEC-47).
    pub async fn provision_account(&self, member: &MemberId) -> Result<ProvisionedAccount, Error> {
        let record = self.inner.directory.get(member).await?;
        account_flow::check_provisionable(record.as_ref())?;
        let temporary_password = TemporaryPassword::generate(&mut Self::rng());
        let as_password = Password::new(temporary_password.expose_secret())
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let password_hash = self.inner.hasher.hash(&as_password).await?;
        let load = account_with_flows(AccountLookup::Member(member.clone()));
        let password_hash = &password_hash;
        let issued = self
            .decide(StepName::ProvisionAccount, &load, |loaded, env, rng| {
                account_flow::provision(member, loaded.view(), password_hash.clone(), env, rng)
            })
            .await?;
        Ok(ProvisionedAccount {
            account_id: issued.account_id,
            login_id: issued.login_id,
            temporary_password,
            expires_at: issued.expires_at,
        })
    }

    /// Insurer side, 資格喪失: the account can no longer log in or recover (every
    /// attempt gets the generic answer), its stamp changes so every session ends, and its
    /// open challenges, reset links and address changes end (SEC-34). The account is
    /// kept (it still holds the member and the address); [`Portal::provision_account`]
    /// re-issues credentials if the member re-joins.
    pub async fn disable_account(&self, account_id: &AccountId) -> Result<DisableOutcome, Error> {
        let load = account_with_flows(AccountLookup::Id(account_id.clone()));
        self.decide(StepName::DisableAccount, &load, |loaded, env, rng| {
            account_flow::disable(loaded.view(), env, rng)
        })
        .await
    }

    /// Housekeeping: removes up to `limit` dead flows, throttle counters and outbox mails
    /// (a day after their last deadline, once their status no longer matters), asking the
    /// store for at most 500 at a time so no single call holds it long. Returns how many
    /// were removed. Run it from a periodic job.
    pub async fn purge_expired(&self, limit: usize) -> Result<usize, Error> {
        let now = self.now();
        let mut total = 0;
        while total < limit {
            let batch = PURGE_BATCH.min(limit - total);
            let removed = self.inner.store.purge_expired(now, batch).await?;
            total += removed;
            if removed < batch {
                break;
            }
        }
        Ok(total)
    }
}
