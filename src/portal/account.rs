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

use super::login::Authenticated;
use super::{MAX_CAS_RETRIES, Portal, busy};
use crate::domain::{
    EmailAddress, InputError, LoginId, Password, PasswordContext, check_confirmation,
    check_new_password,
};
use crate::error::{Error, Rejection};
use crate::flow::account::{self as email_flow, EmailChangeEndReason, EmailChangeState};
use crate::flow::gate::Gate;
use crate::flow::login::LoginEndReason;
use crate::flow::recovery::ResetEndReason;
use crate::flow::{FlowState, LinkStatus};
use crate::mail::{MailLink, MailMessage};
use crate::ports::{
    Account, AccountId, AccountLookup, AccountStatus, AccountWrite, AuditEvent, AuditKind, Commit,
    CommitOutcome, FlowId, FlowRecord, FlowWrite, MemberId, SecurityStamp, Versioned,
};
use crate::token::{EmailChangeLinkToken, TemporaryPassword};

/// Flows removed per store call by [`Portal::purge_expired`].
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

/// What [`Portal::disable_account`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisableOutcome {
    /// The account is now disabled.
    Disabled,
    /// It already was.
    AlreadyDisabled,
    /// No account has this identifier.
    UnknownAccount,
}

/// Which open flows of an account a change ends, and why.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Ends {
    pub(super) login: Option<LoginEndReason>,
    pub(super) reset: Option<ResetEndReason>,
    pub(super) email: Option<EmailChangeEndReason>,
}

impl Ends {
    /// A credential change: every open challenge, reset and address change ends (SEC-34).
    pub(super) const ALL: Ends = Ends {
        login: Some(LoginEndReason::AccountChanged),
        reset: Some(ResetEndReason::AccountChanged),
        email: Some(EmailChangeEndReason::AccountChanged),
    };
}

impl Portal {
    /// Writes that end the open flows of `account` named by `ends`, except `except`
    /// (the flow the caller writes itself). Login challenges are ended by
    /// [`Portal::end_open_challenges`].
    pub(super) async fn end_account_flows(
        &self,
        account: &AccountId,
        ends: Ends,
        now: OffsetDateTime,
        except: Option<&FlowId>,
    ) -> Result<Vec<FlowWrite>, Error> {
        let mut writes = match ends.login {
            Some(reason) => self.end_open_challenges(account, reason, now).await?,
            None => Vec::new(),
        };
        for f in self.inner.store.flows_of_account(account).await? {
            if except == Some(&f.value.id) {
                continue;
            }
            let next = match (f.value.state, ends.reset, ends.email) {
                (FlowState::PasswordReset(s), Some(reason), _) => {
                    s.end_for(reason, now).map(FlowState::PasswordReset)
                }
                (FlowState::EmailChange(s), _, Some(reason)) => {
                    s.end_for(reason, now).map(FlowState::EmailChange)
                }
                _ => None,
            };
            if let Some(state) = next {
                writes.push(FlowWrite {
                    expected: Some(f.version),
                    record: FlowRecord {
                        id: f.value.id,
                        state,
                    },
                });
            }
        }
        Ok(writes)
    }

    /// The words a member's new password must not contain (SEC-17): login ID, address
    /// and its local part, insurer name, nickname, 記号・番号 and the birth date forms.
    pub(super) async fn account_password_context(
        &self,
        account: &Account,
    ) -> Result<PasswordContext, Error> {
        let mut ctx = PasswordContext::new();
        ctx.add_word(account.login_id.as_str());
        if let Some(email) = &account.email {
            ctx.add_word(email.canonical());
            if let Some((local, _)) = email.canonical().split_once('@') {
                ctx.add_word(local);
            }
        }
        ctx.add_word(&self.inner.profile.insurer_name);
        if let Some(n) = &account.nickname {
            ctx.add_word(n.as_str());
        }
        if let Some(member) = self.inner.directory.get(&account.member).await? {
            let card = &member.card_number;
            ctx.add_word(card.symbol());
            ctx.add_word(card.number());
            let compact: String = card.canonical().chars().filter(|c| *c != '-').collect();
            ctx.add_word(&compact);
            // SEC-17: every spelling of the birth date, 西暦 and 和暦.
            ctx.add_birth_date(member.birth_date.date());
        }
        Ok(ctx)
    }

    /// Checks 新パスワード (+確認) against the full policy with the account's context
    /// words (SEC-14, SEC-17).
    pub(super) async fn check_account_password(
        &self,
        account: &Account,
        new: &Password,
        confirmation: &Password,
    ) -> Result<(), Error> {
        if check_confirmation(new, confirmation).is_err() {
            return Err(Rejection::PasswordConfirmationMismatch.into());
        }
        let context = self.account_password_context(account).await?;
        check_new_password(new, &self.inner.policy.password, &context)
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        Ok(())
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
        let now = self.now();
        let refused = || Error::Rejected(Rejection::CurrentPasswordIncorrect);
        let Some(account) = self.active_account(account_id).await? else {
            return Err(refused());
        };
        self.check_account_password(&account.value, &new, &confirmation)
            .await?;
        let verified = self
            .check_password_kind(account.value.login_id.as_str(), &current, Gate::Login)
            .await
            .map_err(|e| match e {
                Error::Rejected(Rejection::LoginFailed) => refused(),
                other => other,
            })?;
        if verified.value.id != account.value.id {
            return Err(refused());
        }
        let password_hash = self.inner.hasher.hash(&new).await?;
        let mut account = verified;
        for _ in 0..MAX_CAS_RETRIES {
            let stamp = SecurityStamp::generate(&mut Self::rng());
            let mut updated = account.value.clone();
            updated.password_hash = password_hash.clone();
            updated.security_stamp = stamp.clone();
            let flows = self
                .end_account_flows(&updated.id, Ends::ALL, now, None)
                .await?;
            let commit = Commit {
                flows,
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: updated.clone(),
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                self.audit(AuditEvent::new(AuditKind::PasswordChanged, now).account(&updated.id));
                if let Some(email) = &updated.email {
                    self.send_mail(email, MailMessage::PasswordChanged { at: now })
                        .await;
                }
                return Ok(CredentialsChanged {
                    security_stamp: stamp,
                });
            }
            match self.active_account(account_id).await? {
                Some(fresh) => account = fresh,
                None => return Err(refused()),
            }
        }
        Err(busy())
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
        let new_email = EmailAddress::parse(new_email)
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let now = self.now();
        let stale = || Error::Rejected(Rejection::ReauthenticationRequired);
        let age = now - fresh_auth.authenticated_at;
        if fresh_auth.account_id != *account_id
            || age.is_negative()
            || age > self.inner.policy.reauth_window
        {
            return Err(stale());
        }
        let Some(account) = self.active_account(account_id).await? else {
            return Err(stale());
        };
        let same_stamp: bool = subtle::ConstantTimeEq::ct_eq(
            account.value.security_stamp.as_str().as_bytes(),
            fresh_auth.security_stamp.as_str().as_bytes(),
        )
        .into();
        if !same_stamp {
            return Err(stale());
        }
        let answer = EmailChangeRequested {
            masked_new_email: new_email.masked(),
        };
        for _ in 0..MAX_CAS_RETRIES {
            let Some(counter) = self.mail_allowance(&new_email, now).await? else {
                self.audit(
                    AuditEvent::new(AuditKind::MailThrottled, now)
                        .account(account_id)
                        .email(new_email.masked()),
                );
                return Ok(answer);
            };
            let (state, token) = email_flow::start(
                account_id.clone(),
                new_email.clone(),
                self.env(now),
                &mut Self::rng(),
            );
            let expires_at = state.expires_at;
            let ends = Ends {
                email: Some(EmailChangeEndReason::Superseded),
                ..Ends::default()
            };
            let mut flows = self.end_account_flows(account_id, ends, now, None).await?;
            flows.push(FlowWrite {
                expected: None,
                record: FlowRecord {
                    id: FlowId::generate(&mut Self::rng()),
                    state: FlowState::EmailChange(EmailChangeState::AwaitingConfirmation(state)),
                },
            });
            let commit = Commit {
                flows,
                counters: vec![counter],
                ..Commit::default()
            };
            if self.commit(commit).await? != CommitOutcome::Committed {
                continue;
            }
            self.audit(
                AuditEvent::new(AuditKind::EmailChangeRequested, now)
                    .account(account_id)
                    .email(new_email.masked()),
            );
            let url = self
                .inner
                .urls
                .link(|p| &p.email_change, token.expose_secret());
            self.send_mail(
                &new_email,
                MailMessage::EmailChangeLink(MailLink {
                    url,
                    token,
                    expires_at,
                }),
            )
            .await;
            return Ok(answer);
        }
        Err(busy())
    }

    /// GET of the address-confirmation link: what it would do, consuming nothing (mail
    /// scanners follow links).
    pub async fn inspect_email_change_link(
        &self,
        token: &EmailChangeLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(token).await
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
        let candidates = token.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::LinkInvalid.into());
            };
            let FlowState::EmailChange(state) = found.value.state.clone() else {
                return Err(Rejection::LinkInvalid.into());
            };
            let pending = state.ready_to_confirm(&digest, self.env(now))?.clone();
            let Some(account) = self.active_account(&pending.account).await? else {
                return Err(Rejection::LinkInvalid.into());
            };
            let old_email = account.value.email.clone();
            let mut updated = account.value.clone();
            updated.email = Some(pending.new_email.clone());
            updated.security_stamp = SecurityStamp::generate(&mut Self::rng());
            let mut flows = self
                .end_account_flows(&updated.id, Ends::ALL, now, Some(&found.value.id))
                .await?;
            flows.push(FlowWrite {
                expected: Some(found.version),
                record: FlowRecord {
                    id: found.value.id.clone(),
                    state: FlowState::EmailChange(state.confirm(now)),
                },
            });
            let commit = Commit {
                flows,
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: updated.clone(),
                }],
                ..Commit::default()
            };
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                CommitOutcome::EmailTaken => {
                    self.audit(
                        AuditEvent::new(AuditKind::FamilyEmailRefused, now)
                            .account(&updated.id)
                            .flow(&found.value.id),
                    );
                    return Err(Rejection::FamilyEmailInUse.into());
                }
                _ => continue,
            }
            self.audit(
                AuditEvent::new(AuditKind::EmailChanged, now)
                    .account(&updated.id)
                    .flow(&found.value.id)
                    .email(pending.new_email.masked()),
            );
            let notice = MailMessage::EmailChanged {
                new_address_masked: pending.new_email.masked(),
                at: now,
            };
            if let Some(old) = &old_email
                && old.canonical() != pending.new_email.canonical()
            {
                self.send_mail(old, notice.clone()).await;
            }
            self.send_mail(&pending.new_email, notice).await;
            return Ok(EmailChangeConfirmed {
                masked_email: pending.new_email.masked(),
            });
        }
        Err(busy())
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
        let eligible = self
            .inner
            .directory
            .get(member)
            .await?
            .is_some_and(|r| r.eligible);
        if !eligible {
            return Err(Rejection::UnknownMember.into());
        }
        let temporary_password = TemporaryPassword::generate(&mut Self::rng());
        let as_password = Password::new(temporary_password.expose_secret())
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let password_hash = self.inner.hasher.hash(&as_password).await?;
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let expires_at = now.saturating_add(self.inner.policy.temporary_password_ttl);
            let status = AccountStatus::Provisioned {
                temporary_expires_at: expires_at,
            };
            let stamp = SecurityStamp::generate(&mut Self::rng());
            let existing = self
                .inner
                .store
                .find_account(AccountLookup::Member(member.clone()))
                .await?;
            let (account, write, flows, detail) = match existing {
                Some(a) if matches!(a.value.status, AccountStatus::Active) => {
                    return Err(Rejection::AlreadyRegistered.into());
                }
                Some(a) => {
                    let mut updated = a.value.clone();
                    updated.password_hash = password_hash.clone();
                    updated.status = status;
                    updated.security_stamp = stamp;
                    // A provisioned account binds its address at R5.
                    updated.email = None;
                    updated.password_failures = 0;
                    updated.last_password_failure_at = None;
                    updated.otp_failures = 0;
                    updated.otp_cooldown_until = None;
                    let flows = self
                        .end_account_flows(&updated.id, Ends::ALL, now, None)
                        .await?;
                    let write = AccountWrite::Update {
                        expected: a.version,
                        account: updated.clone(),
                    };
                    (updated, write, flows, "reissued")
                }
                None => {
                    let mut rng = Self::rng();
                    let account = Account {
                        id: AccountId::generate(&mut rng),
                        login_id: LoginId::generate(&mut rng),
                        email: None,
                        member: member.clone(),
                        nickname: None,
                        password_hash: password_hash.clone(),
                        security_stamp: stamp,
                        status,
                        password_failures: 0,
                        last_password_failure_at: None,
                        otp_failures: 0,
                        otp_cooldown_until: None,
                        created_at: now,
                    };
                    let write = AccountWrite::Create(account.clone());
                    (account, write, Vec::new(), "issued")
                }
            };
            let commit = Commit {
                flows,
                accounts: vec![write],
                ..Commit::default()
            };
            // A login-ID collision draws a new ID; a concurrent provisioning of the same
            // member is found on the next read.
            if self.commit(commit).await? != CommitOutcome::Committed {
                continue;
            }
            self.audit(
                AuditEvent::new(AuditKind::AccountProvisioned, now)
                    .account(&account.id)
                    .member(member)
                    .detail(detail),
            );
            return Ok(ProvisionedAccount {
                account_id: account.id,
                login_id: account.login_id,
                temporary_password,
                expires_at,
            });
        }
        Err(busy())
    }

    /// Insurer side, 資格喪失: the account can no longer log in or recover (every
    /// attempt gets the generic answer), its stamp changes so every session ends, and its
    /// open challenges, reset links and address changes end (SEC-34). The account is
    /// kept (it still holds the member and the address); [`Portal::provision_account`]
    /// re-issues credentials if the member re-joins.
    pub async fn disable_account(&self, account_id: &AccountId) -> Result<DisableOutcome, Error> {
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some(account) = self
                .inner
                .store
                .find_account(AccountLookup::Id(account_id.clone()))
                .await?
            else {
                return Ok(DisableOutcome::UnknownAccount);
            };
            if matches!(account.value.status, AccountStatus::Disabled { .. }) {
                return Ok(DisableOutcome::AlreadyDisabled);
            }
            let mut updated = account.value.clone();
            updated.status = AccountStatus::Disabled { at: now };
            updated.security_stamp = SecurityStamp::generate(&mut Self::rng());
            let flows = self
                .end_account_flows(account_id, Ends::ALL, now, None)
                .await?;
            let commit = Commit {
                flows,
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: updated,
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                self.audit(AuditEvent::new(AuditKind::AccountDisabled, now).account(account_id));
                return Ok(DisableOutcome::Disabled);
            }
        }
        Err(busy())
    }

    /// Housekeeping: removes up to `limit` dead flows and throttle counters, asking the
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

    /// The account, if it exists and is active.
    pub(super) async fn active_account(
        &self,
        id: &AccountId,
    ) -> Result<Option<Versioned<Account>>, Error> {
        Ok(self
            .inner
            .store
            .find_account(AccountLookup::Id(id.clone()))
            .await?
            .filter(|a| matches!(a.value.status, AccountStatus::Active)))
    }
}
