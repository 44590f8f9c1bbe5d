//! ログインID・パスワードを忘れた方 through the portal.
//!
//! Both requests answer the same [`RecoveryRequested`] whatever was typed: a known or
//! unknown login ID or address, a locked, disabled or provisioned account, a wrong
//! roster attribute, a throttled mail (SEC-37, SEC-40, SEC-13). What the member asked
//! for only ever goes to the registered address. Nothing about the account changes until
//! a reset link is used and the reset completes.

use std::borrow::Cow;

use super::account::Ends;
use super::{MAX_CAS_RETRIES, Portal, busy, window_hit};
use crate::domain::{EmailAddress, InputError, LoginId, Password};
use crate::error::{Error, Rejection};
use crate::flow::recovery::{self, ResetEndReason, ResetState};
use crate::flow::registration::roster_matches;
use crate::flow::{FlowState, IdentityClaim, LinkStatus};
use crate::lang::Lang;
use crate::mail::{MailLink, MailMessage};
use crate::ports::{
    AccountLookup, AccountStatus, AccountWrite, AuditEvent, AuditKind, Commit, CommitOutcome,
    CounterWrite, FlowId, FlowRecord, FlowWrite, MemberId, SecurityStamp,
};
use crate::token::{FlowHandle, PasswordResetLinkToken};

/// The answer to a forgotten-ID or forgotten-password request: always the same, so it
/// says nothing about whether anything matched (SEC-37, SEC-40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryRequested;

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
    /// Roster checks count against the member like the registration's (SEC-09), so the
    /// form cannot be used to guess a member's birth date. Only a malformed address, or a
    /// missing `identity` where the policy needs one, is refused — neither says anything
    /// about accounts.
    pub async fn request_login_id_reminder(
        &self,
        email: &str,
        identity: Option<IdentityClaim>,
    ) -> Result<RecoveryRequested, Error> {
        let email = EmailAddress::parse(email)
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let p = &self.inner.policy;
        if p.recovery_requires_identity && identity.is_none() {
            return Err(Rejection::IdentityNotConfirmed.into());
        }
        let answer = RecoveryRequested;
        let target = self
            .inner
            .store
            .find_account(AccountLookup::Email(email.clone()))
            .await?
            .filter(|a| matches!(a.value.status, AccountStatus::Active));
        // A roster check counts against the member whose account has this address
        // (SEC-09). Without such an account there is nothing to learn, so nothing is
        // counted — and nobody can use this form to exhaust a member's budget by card
        // number alone.
        let (member, record) = match (&identity, &target) {
            (Some(_), Some(a)) => (
                Some(a.value.member.clone()),
                self.inner.directory.get(&a.value.member).await?,
            ),
            _ => (None, None),
        };
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let mut counters = Vec::new();
            let mut member_exhausted = false;
            if let Some(m) = &member {
                match self.identity_hit(m, now).await? {
                    Ok(w) => counters.push(w),
                    Err(()) => member_exhausted = true,
                }
            }
            let identity_ok = match &identity {
                None => true,
                Some(claim) => {
                    !member_exhausted && record.as_ref().is_some_and(|r| roster_matches(claim, r))
                }
            };
            let matched = target.as_ref().filter(|_| identity_ok);
            let mut send = None;
            let detail = match matched {
                None if member_exhausted => "member_blocked",
                None => "no_match",
                Some(a) => match (&a.value.email, self.mail_allowance(&email, now).await?) {
                    (Some(to), Some(counter)) => {
                        counters.push(counter);
                        send = Some((to.clone(), a.value.login_id.as_str().to_owned()));
                        "sent"
                    }
                    _ => "throttled",
                },
            };
            if !counters.is_empty() {
                let commit = Commit {
                    counters,
                    ..Commit::default()
                };
                if self.commit(commit).await? != CommitOutcome::Committed {
                    continue;
                }
            }
            let mut ev = AuditEvent::new(AuditKind::LoginIdReminderRequested, now)
                .email(email.masked())
                .detail(detail);
            if let Some(a) = matched {
                ev = ev.account(&a.value.id);
            }
            self.audit(ev);
            if let Some((to, login_id)) = send {
                self.send_mail(&to, MailMessage::LoginIdReminder { login_id })
                    .await;
            }
            return Ok(answer);
        }
        Err(busy())
    }

    /// パスワードを忘れた方: mails a reset link (30 min, single use, SEC-38) to the
    /// registered address of an active account — locked or not (SEC-25). An earlier
    /// unused link of the account dies. The answer is the same for an unknown, malformed,
    /// disabled or provisioned login ID and when the mail is throttled, and the account
    /// itself is not touched (SEC-37).
    ///
    /// Insurer staff who want to help a member use this same call with the member's login
    /// ID: they can trigger the mail, never see or set a password (SEC-47).
    pub async fn request_password_reset(&self, login_id: &str) -> Result<RecoveryRequested, Error> {
        let answer = RecoveryRequested;
        let now = self.now();
        let account = match LoginId::parse(login_id) {
            Ok(id) => {
                self.inner
                    .store
                    .find_account(AccountLookup::LoginId(id))
                    .await?
            }
            Err(_) => None,
        };
        let usable = account.filter(|a| matches!(a.value.status, AccountStatus::Active));
        let Some((account, email)) =
            usable.and_then(|a| a.value.email.clone().map(|e| (a.value, e)))
        else {
            self.audit(
                AuditEvent::new(AuditKind::PasswordResetRequested, now).detail("no_account"),
            );
            return Ok(answer);
        };
        for _ in 0..MAX_CAS_RETRIES {
            let Some(counter) = self.mail_allowance(&email, now).await? else {
                self.audit(
                    AuditEvent::new(AuditKind::PasswordResetRequested, now)
                        .account(&account.id)
                        .detail("throttled"),
                );
                return Ok(answer);
            };
            let (state, token) =
                recovery::start(account.id.clone(), self.env(now), &mut Self::rng());
            let expires_at = state.expires_at;
            let ends = Ends {
                reset: Some(ResetEndReason::Superseded),
                ..Ends::default()
            };
            let mut flows = self.end_account_flows(&account.id, ends, now, None).await?;
            let flow_id = FlowId::generate(&mut Self::rng());
            flows.push(FlowWrite {
                expected: None,
                record: FlowRecord {
                    id: flow_id.clone(),
                    state: FlowState::PasswordReset(ResetState::AwaitingLinkOpen(state)),
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
                AuditEvent::new(AuditKind::PasswordResetRequested, now)
                    .account(&account.id)
                    .flow(&flow_id)
                    .detail("sent"),
            );
            let url = self
                .inner
                .urls
                .link(|p| &p.password_reset, token.expose_secret());
            self.send_mail(
                &email,
                MailMessage::PasswordResetLink(MailLink {
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

    /// GET of the reset link: what it would do, consuming nothing (mail scanners follow
    /// links).
    pub async fn inspect_password_reset_link(
        &self,
        token: &PasswordResetLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(token).await
    }

    /// POST of the reset link: consumes it (single use, SEC-38) and binds the reset to
    /// this browser. Keep the returned handle in the browser (cookie or hidden field) for
    /// [`Portal::complete_password_reset`].
    pub async fn open_password_reset_link(
        &self,
        token: &PasswordResetLinkToken,
    ) -> Result<FlowHandle, Error> {
        let candidates = token.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::LinkInvalid.into());
            };
            let FlowState::PasswordReset(state) = found.value.state.clone() else {
                return Err(Rejection::LinkInvalid.into());
            };
            if self.active_account(state.account()).await?.is_none() {
                return Err(Rejection::LinkInvalid.into());
            }
            let account = state.account().clone();
            let (next, handle) = state.open_link(&digest, self.env(now), &mut Self::rng())?;
            let commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::PasswordReset(next),
                    },
                }],
                ..Commit::default()
            };
            if self.commit(commit).await? == CommitOutcome::Committed {
                self.audit(
                    AuditEvent::new(AuditKind::PasswordResetLinkOpened, now)
                        .account(&account)
                        .flow(&found.value.id),
                );
                return Ok(handle);
            }
        }
        Err(busy())
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
        let candidates = handle.digest_candidates(&self.inner.keys);
        let p = &self.inner.policy;
        let mut hashed: Option<crate::password_hash::PasswordHashString> = None;
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::WrongStep.into());
            };
            let FlowState::PasswordReset(stored) = found.value.state.clone() else {
                return Err(Rejection::WrongStep.into());
            };
            let Some(account) = self.active_account(stored.account()).await? else {
                return Err(Rejection::WrongStep.into());
            };
            let mut state = stored.clone();
            let mut counters = Vec::new();
            // 1. The roster re-check, counted before anything is compared (SEC-09).
            let needs_check = p.recovery_requires_identity
                && matches!(&state, ResetState::AwaitingNewPassword(s) if s.handle == digest && !s.identity_confirmed);
            if needs_check && let Some(claim) = &claim {
                let record = self.inner.directory.get(&account.value.member).await?;
                let member_exhausted = match self.identity_hit(&account.value.member, now).await? {
                    Ok(w) => {
                        counters.push(w);
                        false
                    }
                    Err(()) => true,
                };
                let step = state.check_identity(
                    &digest,
                    claim,
                    record.as_ref(),
                    member_exhausted,
                    self.env(now),
                );
                if let Err(rejection) = step.result {
                    if !self
                        .save_reset(&found, &stored, step.state, counters)
                        .await?
                    {
                        continue;
                    }
                    let kind = if member_exhausted {
                        AuditKind::IdentityMemberBlocked
                    } else {
                        AuditKind::IdentityFailed
                    };
                    self.audit(
                        AuditEvent::new(kind, now)
                            .account(&account.value.id)
                            .member(&account.value.member)
                            .flow(&found.value.id)
                            .detail(rejection.code()),
                    );
                    return Err(rejection.into());
                }
                state = step.state;
            }
            state.ready_to_complete(&digest, self.env(now))?;
            // 2. The new password, under the full policy.
            if let Err(e) = self
                .check_account_password(&account.value, &new_password, &confirmation)
                .await
            {
                // Keep a roster check that just passed, so the member need not repeat it.
                if !self.save_reset(&found, &stored, state, counters).await? {
                    continue;
                }
                return Err(e);
            }
            let password_hash = match &hashed {
                Some(h) => h.clone(),
                None => {
                    let h = self.inner.hasher.hash(&new_password).await?;
                    hashed = Some(h.clone());
                    h
                }
            };
            // 3. One commit: the password, the cleared lockout, the new stamp, the ended
            // flows.
            let mut updated = account.value.clone();
            updated.password_hash = password_hash;
            updated.security_stamp = SecurityStamp::generate(&mut Self::rng());
            updated.password_failures = 0;
            updated.last_password_failure_at = None;
            updated.otp_failures = 0;
            updated.otp_cooldown_until = None;
            let mut flows = self
                .end_account_flows(&updated.id, Ends::ALL, now, Some(&found.value.id))
                .await?;
            flows.push(FlowWrite {
                expected: Some(found.version),
                record: FlowRecord {
                    id: found.value.id.clone(),
                    state: FlowState::PasswordReset(state.complete(now)),
                },
            });
            let commit = Commit {
                flows,
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: updated.clone(),
                }],
                counters,
            };
            if self.commit(commit).await? != CommitOutcome::Committed {
                continue;
            }
            self.audit(
                AuditEvent::new(AuditKind::PasswordResetCompleted, now)
                    .account(&updated.id)
                    .flow(&found.value.id),
            );
            if let Some(email) = &updated.email {
                self.send_mail(email, MailMessage::PasswordChanged { at: now })
                    .await;
            }
            return Ok(());
        }
        Err(busy())
    }

    /// Stores a reset state that changed (with its counters); `false` when the flow
    /// changed meanwhile. Nothing to store is success.
    async fn save_reset(
        &self,
        found: &crate::ports::Versioned<FlowRecord>,
        stored: &ResetState,
        next: ResetState,
        counters: Vec<CounterWrite>,
    ) -> Result<bool, Error> {
        let mut commit = Commit {
            counters,
            ..Commit::default()
        };
        if next != *stored {
            commit.flows.push(FlowWrite {
                expected: Some(found.version),
                record: FlowRecord {
                    id: found.value.id.clone(),
                    state: FlowState::PasswordReset(next),
                },
            });
        }
        if commit.is_empty() {
            return Ok(true);
        }
        Ok(self.commit(commit).await? == CommitOutcome::Committed)
    }

    /// SEC-09: counts one roster check against `member` (shared with registration, so
    /// no path buys extra tries). `Err(())` when the member is blocked for the window.
    async fn identity_hit(
        &self,
        member: &MemberId,
        now: time::OffsetDateTime,
    ) -> Result<Result<CounterWrite, ()>, Error> {
        let p = &self.inner.policy;
        let key = format!("identity:{}", member.as_str());
        let current = self.inner.store.load_counter(&key).await?;
        Ok(window_hit(
            key,
            current,
            now,
            p.identity_member_window,
            p.identity_tries_per_member,
            None,
        )
        .map_err(|_| ()))
    }

    /// The recovery part of [`Portal::assurance_report`].
    pub(super) fn recovery_assurance(&self, lang: Lang) -> String {
        let p = &self.inner.policy;
        let reset_min = p.password_reset_link_ttl.whole_minutes();
        let temp_days = p.temporary_password_ttl.whole_days();
        let mut out = String::new();
        if matches!(lang, Lang::En) {
            if p.recovery_requires_identity {
                out.push_str(&format!(
                    "Forgotten password: a single-use link valid {reset_min} minutes is mailed to the registered address; before the new password is set, the insurance card numbers and date of birth are checked again against the roster (limited tries). Recovery therefore needs the mailbox and knowledge of the card data.\n"
                ));
                out.push_str("Forgotten login ID: the e-mail address plus the card numbers and date of birth; the ID is only mailed to the registered address.\n");
            } else {
                out.push_str(&format!(
                    "Forgotten password: a single-use link valid {reset_min} minutes is mailed to the registered address, and the link alone lets the member set a new password: whoever controls the mailbox controls the account.\n"
                ));
                out.push_str("Forgotten login ID: the e-mail address alone; the ID is only mailed to the registered address.\n");
            }
            out.push_str("A reset never logs the member in, clears the lockout, ends every other session and open 暗証キー, and is notified by mail. Every recovery answer is the same whether or not an account matched.\n");
            out.push_str(&format!(
                "Insurer-issued accounts: a random login ID and a random 16-character temporary password (80 bits) for the letter, valid {temp_days} days, usable only to choose the member's own login ID and password; re-issuing revokes the previous one. No administrator can set or see a member's password.\n"
            ));
        } else {
            if p.recovery_requires_identity {
                out.push_str(&format!(
                    "パスワードを忘れた方: 登録メールアドレスに1回限り有効なURL(有効期限{reset_min}分)を送り、新しいパスワードの設定前に記号・番号・枝番と生年月日を名簿と再確認します(試行回数制限あり)。再設定にはメールボックスと保険証情報の知識の両方が必要です。\n"
                ));
                out.push_str("ログインIDを忘れた方: メールアドレスと記号・番号・枝番・生年月日の入力が必要で、ログインIDは登録メールアドレスにのみ送ります。\n");
            } else {
                out.push_str(&format!(
                    "パスワードを忘れた方: 登録メールアドレスに1回限り有効なURL(有効期限{reset_min}分)を送り、URLだけで新しいパスワードを設定できます。メールボックスを管理できる人がアカウントを管理できることになります。\n"
                ));
                out.push_str("ログインIDを忘れた方: メールアドレスだけで、ログインIDを登録メールアドレスにのみ送ります。\n");
            }
            out.push_str("パスワードの再設定ではログインしません。ロックを解除し、他のすべてのセッションと未使用の暗証キーを無効にして、メールでお知らせします。どの手続きも、該当するアカウントの有無にかかわらず同じ応答です。\n");
            out.push_str(&format!(
                "保険者による事前登録: 通知書に印字するログインIDと16文字の仮パスワード(80ビット)は無作為に生成し、有効期限は{temp_days}日です。仮パスワードは本人がログインIDとパスワードを設定するためにだけ使え、再発行すると以前のものは無効になります。管理者が加入者のパスワードを設定したり見たりすることはできません。\n"
            ));
        }
        out
    }
}
