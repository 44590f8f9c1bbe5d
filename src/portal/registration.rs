//! 新規利用登録 (R1–R5) through the portal.

use time::OffsetDateTime;

use super::{MAX_CAS_RETRIES, Portal, busy, window_hit};
use crate::domain::{
    BirthDate, CardNumber, Carrier, EmailAddress, InputError, KanaName, LoginId, Nickname,
    Password, PasswordContext, check_new_password,
};
use crate::error::{Error, Rejection};
use crate::flow::registration::{self, LinkStatus};
use crate::flow::{
    AwaitingCredentials, Dead, DeadReason, FlowState, IdentityClaim, RegistrationState,
};
use crate::mail::{MailLink, MailMessage};
use crate::password_hash::Verification;
use crate::ports::{
    Account, AccountId, AccountLookup, AccountStatus, AccountWrite, AuditEvent, AuditKind, Commit,
    CommitOutcome, FlowId, FlowRecord, FlowWrite, MemberRecord, SecurityStamp, Versioned,
};
use crate::token::{AuthKey, FlowHandle, RegistrationLinkToken, VerificationLinkToken};

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
}

/// The answer to R3: the 認証キー to show on screen once (「必ず控えてください」).
#[derive(Debug)]
pub struct AuthKeyShown {
    /// The key. Show it on this screen only.
    pub auth_key: AuthKey,
    /// When it and link 2 stop working.
    pub expires_at: OffsetDateTime,
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
    pub async fn start_registration(&self, email: &str) -> Result<RegistrationStarted, Error> {
        let email = EmailAddress::parse(email)
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let now = self.now();
        let answer = RegistrationStarted {
            carrier: email.carrier(),
            carrier_advisory: email
                .carrier()
                .map(|c| c.advisory(self.inner.profile.sender_domain(), self.inner.profile.lang)),
            legacy_address_warning: email.is_legacy_non_rfc(),
            legacy_address_advice: email
                .legacy_warning(self.inner.profile.lang)
                .map(str::to_owned),
        };
        let registered = self
            .inner
            .store
            .find_account(AccountLookup::Email(email.clone()))
            .await?
            .is_some();
        for _ in 0..MAX_CAS_RETRIES {
            let Some(counter) = self.mail_allowance(&email, now).await? else {
                self.audit(AuditEvent::new(AuditKind::MailThrottled, now).email(email.masked()));
                return Ok(answer);
            };
            // SEC-07: both branches do the same work — draw a link, digest it, insert a
            // flow, count the mail, send one mail — so neither the answer nor its timing
            // tells whether the address is registered. For a registered address the flow
            // is stored already dead and its link is never mailed; the owner gets a
            // notice instead.
            let (state, token) = {
                let mut rng = Self::rng();
                registration::start(email.clone(), self.env(now), &mut rng)
            };
            let expires_at = state.expires_at;
            let flow_id = FlowId::generate(&mut Self::rng());
            let stored = if registered {
                RegistrationState::Dead(Dead {
                    reason: DeadReason::AlreadyRegistered,
                    spent: vec![state.link],
                    at: now,
                })
            } else {
                RegistrationState::AwaitingLinkOpen(state)
            };
            let commit = Commit {
                flows: vec![FlowWrite {
                    expected: None,
                    record: FlowRecord {
                        id: flow_id.clone(),
                        state: FlowState::Registration(stored),
                    },
                }],
                counters: vec![counter],
                ..Commit::default()
            };
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                _ => continue,
            }
            let kind = if registered {
                AuditKind::RegistrationForRegisteredAddress
            } else {
                AuditKind::RegistrationStarted
            };
            self.audit(
                AuditEvent::new(kind, now)
                    .flow(&flow_id)
                    .email(email.masked()),
            );
            let message = if registered {
                MailMessage::AlreadyRegistered {
                    login_url: self.login_url(),
                }
            } else {
                let url = self
                    .inner
                    .profile
                    .link(&self.inner.paths.registration, token.expose_secret());
                MailMessage::RegistrationLink(MailLink {
                    url,
                    token,
                    expires_at,
                })
            };
            self.send_mail(&email, message).await;
            return Ok(answer);
        }
        Err(busy())
    }

    /// R2, GET of link 1: what the link would do, consuming nothing (mail scanners
    /// follow links).
    pub async fn inspect_registration_link(
        &self,
        token: &RegistrationLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(token).await
    }

    /// R2, POST of 【本人確認ページへ】: consumes link 1 and binds the flow to this
    /// browser. Keep the returned handle in the browser (cookie or hidden field).
    pub async fn open_registration_link(
        &self,
        token: &RegistrationLinkToken,
    ) -> Result<FlowHandle, Error> {
        let candidates = token.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::LinkInvalid.into());
            };
            let FlowState::Registration(state) = found.value.state.clone() else {
                return Err(Rejection::LinkInvalid.into());
            };
            let (next, handle) = {
                let mut rng = Self::rng();
                state.open_link(&digest, self.env(now), &mut rng)?
            };
            if self.replace_flow(&found, next).await? {
                self.audit(
                    AuditEvent::new(AuditKind::RegistrationLinkOpened, now).flow(&found.value.id),
                );
                return Ok(handle);
            }
        }
        Err(busy())
    }

    /// Reads what the member typed on 本人確認 into an [`IdentityClaim`], with the
    /// insurer's own 記号・番号 format (DOM-8): full-width digits and hyphen look-alikes
    /// are folded, and anything unreadable is a [`Rejection`] with its Japanese message.
    pub fn identity_claim(
        &self,
        card_number: &str,
        birth_date: &str,
        kana_name: Option<&str>,
    ) -> Result<IdentityClaim, Rejection> {
        let card_number =
            CardNumber::parse_with(card_number, &self.inner.profile.card_number_format)?;
        let birth_date = BirthDate::parse(birth_date)?;
        let kana_name = match kana_name.map(str::trim) {
            None | Some("") => None,
            Some(k) => Some(KanaName::parse(k)?),
        };
        Ok(IdentityClaim {
            card_number,
            birth_date,
            kana_name,
        })
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
        let candidates = handle.digest_candidates(&self.inner.keys);
        // The roster is asked only once the handle is known to belong to a live flow at
        // this step, so a forged handle cannot probe card numbers (SEC-09).
        let mut roster: Option<Option<MemberRecord>> = None;
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::WrongStep.into());
            };
            let FlowState::Registration(state) = found.value.state.clone() else {
                return Err(Rejection::WrongStep.into());
            };
            let p = &self.inner.policy;
            let at_step = matches!(&state, RegistrationState::AwaitingIdentity(s)
                if s.handle == digest && now < s.expires_at && s.attempts < p.identity_tries_per_flow);
            if !at_step {
                // Wrong step, expired or exhausted: the core says which, nothing changes.
                let step = {
                    let mut rng = Self::rng();
                    state.verify_identity(&digest, &claim, None, false, self.env(now), &mut rng)
                };
                return Err(step.result.err().unwrap_or(Rejection::WrongStep).into());
            }
            let record = match &roster {
                Some(r) => r.clone(),
                None => {
                    let r = self.inner.directory.find(&claim.card_number).await?;
                    roster = Some(r.clone());
                    r
                }
            };
            // SEC-09: count the check against the member before comparing anything.
            let (member_counter, member_exhausted) = match &record {
                Some(r) => {
                    let key = format!("identity:{}", r.member_id.as_str());
                    let current = self.inner.store.load_counter(&key).await?;
                    match window_hit(
                        key,
                        current,
                        now,
                        p.identity_member_window,
                        p.identity_tries_per_member,
                        None,
                    ) {
                        Ok(w) => (Some(w), false),
                        Err(_) => (None, true),
                    }
                }
                None => (None, false),
            };
            let step = {
                let mut rng = Self::rng();
                state.verify_identity(
                    &digest,
                    &claim,
                    record.as_ref(),
                    member_exhausted,
                    self.env(now),
                    &mut rng,
                )
            };
            let mut next_state = step.state;
            let mut result = step.result;
            // After identity is proven the member may be told about their own account
            // or a family member's use of the address.
            if let Ok(verified) = &result {
                let member_has_account = self
                    .inner
                    .store
                    .find_account(AccountLookup::Member(verified.member.clone()))
                    .await?
                    .is_some();
                let email = registration_email(&found.value.state);
                let email_taken = match email {
                    Some(e) => self
                        .inner
                        .store
                        .find_account(AccountLookup::Email(e.clone()))
                        .await?
                        .is_some(),
                    None => false,
                };
                if member_has_account || email_taken {
                    let reason = if member_has_account {
                        DeadReason::AlreadyRegistered
                    } else {
                        DeadReason::FamilyEmailInUse
                    };
                    next_state = RegistrationState::Dead(Dead {
                        reason,
                        spent: next_state.lookup_keys(),
                        at: now,
                    });
                    result = Err(if member_has_account {
                        Rejection::AlreadyRegistered
                    } else {
                        Rejection::FamilyEmailInUse
                    });
                }
            }
            let mut commit = Commit {
                flows: vec![FlowWrite {
                    expected: Some(found.version),
                    record: FlowRecord {
                        id: found.value.id.clone(),
                        state: FlowState::Registration(next_state),
                    },
                }],
                ..Commit::default()
            };
            if let Some(c) = member_counter {
                commit.counters.push(c);
            }
            match self.commit(commit).await? {
                CommitOutcome::Committed => {}
                _ => continue,
            }
            let member = record.as_ref().map(|r| r.member_id.clone());
            return match result {
                Ok(verified) => {
                    let mut ev =
                        AuditEvent::new(AuditKind::IdentityVerified, now).flow(&found.value.id);
                    if let Some(m) = &member {
                        ev = ev.member(m);
                    }
                    self.audit(ev);
                    if let Some(email) = registration_email(&found.value.state) {
                        let url = self.inner.profile.link(
                            &self.inner.paths.verification,
                            verified.link.expose_secret(),
                        );
                        self.send_mail(
                            email,
                            MailMessage::IdentityVerified(MailLink {
                                url,
                                token: verified.link,
                                expires_at: verified.expires_at,
                            }),
                        )
                        .await;
                    }
                    Ok(AuthKeyShown {
                        auth_key: verified.auth_key,
                        expires_at: verified.expires_at,
                    })
                }
                Err(rejection) => {
                    let kind = if member_exhausted {
                        AuditKind::IdentityMemberBlocked
                    } else if matches!(
                        rejection,
                        Rejection::FamilyEmailInUse | Rejection::AlreadyRegistered
                    ) {
                        AuditKind::FamilyEmailRefused
                    } else {
                        AuditKind::IdentityFailed
                    };
                    let mut ev = AuditEvent::new(kind, now)
                        .flow(&found.value.id)
                        .detail(rejection.code());
                    if let Some(m) = &member {
                        ev = ev.member(m);
                    }
                    self.audit(ev);
                    Err(rejection.into())
                }
            };
        }
        Err(busy())
    }

    /// R4, GET of link 2: what the link would do, consuming nothing.
    pub async fn inspect_verification_link(
        &self,
        token: &VerificationLinkToken,
    ) -> Result<LinkStatus, Error> {
        self.inspect_link(token).await
    }

    /// R4, POST of 認証: link 2 together with the 認証キー from the R3 screen. Consumes
    /// both and binds the flow to this browser (which may be another device than R3's).
    pub async fn confirm_auth_key(
        &self,
        token: &VerificationLinkToken,
        key: &AuthKey,
    ) -> Result<FlowHandle, Error> {
        let candidates = token.digest_candidates(&self.inner.keys);
        for _ in 0..MAX_CAS_RETRIES {
            let now = self.now();
            let Some((found, digest)) = self.find_flow(&candidates).await? else {
                return Err(Rejection::LinkInvalid.into());
            };
            let FlowState::Registration(state) = found.value.state.clone() else {
                return Err(Rejection::LinkInvalid.into());
            };
            let step = {
                let mut rng = Self::rng();
                state
                    .clone()
                    .confirm_auth_key(&digest, &key, self.env(now), &mut rng)
            };
            if step.state == state {
                // Nothing to record (expired, used, exhausted): answer without writing.
                return step.result.map_err(Error::from);
            }
            if !self.replace_flow(&found, step.state).await? {
                continue;
            }
            let kind = if step.result.is_ok() {
                AuditKind::AuthKeyConfirmed
            } else {
                AuditKind::AuthKeyFailed
            };
            self.audit(AuditEvent::new(kind, now).flow(&found.value.id));
            return step.result.map_err(Error::from);
        }
        Err(busy())
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
        let candidates = handle.digest_candidates(&self.inner.keys);
        let now = self.now();
        let Some((found, digest)) = self.find_flow(&candidates).await? else {
            return Err(Rejection::WrongStep.into());
        };
        let FlowState::Registration(state) = found.value.state.clone() else {
            return Err(Rejection::WrongStep.into());
        };
        if !matches!(state, RegistrationState::AwaitingIdentity(ref s) if s.handle == digest && now < s.expires_at)
        {
            return Err(Rejection::WrongStep.into());
        }
        let account = self.check_password(login_id, password, true).await?;
        let next = {
            let mut rng = Self::rng();
            state.accept_temporary_credentials(
                &digest,
                account.value.id.clone(),
                account.value.member.clone(),
                account.value.security_stamp.clone(),
                self.env(now),
                &mut rng,
            )?
        };
        let (next_state, new_handle) = next;
        if !self.replace_flow(&found, next_state).await? {
            return Err(busy());
        }
        self.audit(
            AuditEvent::new(AuditKind::TemporaryCredentialsAccepted, now)
                .flow(&found.value.id)
                .account(&account.value.id),
        );
        Ok(new_handle)
    }

    /// The address the account will get, to show read-only on 利用者情報入力 (R5). Only
    /// a handle at that step (after R4 or R2') can read it; any other handle is
    /// [`Rejection::WrongStep`], an expired step [`Rejection::Expired`].
    pub async fn registration_email(&self, handle: &FlowHandle) -> Result<EmailAddress, Error> {
        let candidates = handle.digest_candidates(&self.inner.keys);
        let now = self.now();
        let Some((found, digest)) = self.find_flow(&candidates).await? else {
            return Err(Rejection::WrongStep.into());
        };
        let FlowState::Registration(state) = &found.value.state else {
            return Err(Rejection::WrongStep.into());
        };
        Ok(state.ready_to_complete(&digest, now)?.email.clone())
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
        let candidates = handle.digest_candidates(&self.inner.keys);
        let now = self.now();
        let Some((found, digest)) = self.find_flow(&candidates).await? else {
            return Err(Rejection::WrongStep.into());
        };
        let FlowState::Registration(state) = found.value.state.clone() else {
            return Err(Rejection::WrongStep.into());
        };
        let ready = state.ready_to_complete(&digest, now)?.clone();

        let login_id = LoginId::parse(&credentials.login_id)
            .map_err(InputError::from)
            .map_err(Rejection::from)?;
        let nickname = match credentials.nickname.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(n) => Some(
                Nickname::parse(n)
                    .map_err(InputError::from)
                    .map_err(Rejection::from)?,
            ),
        };
        if credentials.password.expose_secret() != credentials.password_confirmation.expose_secret()
        {
            return Err(Rejection::PasswordConfirmationMismatch.into());
        }
        let context = self
            .password_context(&ready, &login_id, nickname.as_ref())
            .await?;
        if login_is_identifying(&login_id, &ready.email, &context.1) {
            return Err(Rejection::LoginIdIdentifying.into());
        }
        check_new_password(
            &credentials.password,
            &self.inner.policy.password,
            &context.0,
        )
        .map_err(InputError::from)
        .map_err(Rejection::from)?;

        let provisioned = match ready.proof.provisioned_account() {
            Some(id) => {
                let Some(acc) = self
                    .inner
                    .store
                    .find_account(AccountLookup::Id(id.clone()))
                    .await?
                else {
                    return Err(Rejection::WrongStep.into());
                };
                // SEC-41: a re-issue (new temporary password) or a disable since R2'
                // revokes this flow's proof, and so does the temporary password's expiry.
                if !provisioned_still_valid(&acc.value, ready.proof.provisioned_stamp(), now) {
                    return Err(Rejection::WrongStep.into());
                }
                // SEC-41: the temporary password cannot become the long-term one.
                if let Verification::Match { .. } = self
                    .inner
                    .hasher
                    .verify(&credentials.password, &acc.value.password_hash)
                    .await?
                {
                    return Err(Rejection::PasswordSameAsTemporary.into());
                }
                Some(acc)
            }
            None => None,
        };
        let password_hash = self.inner.hasher.hash(&credentials.password).await?;
        let (account_id, stamp) = {
            let mut rng = Self::rng();
            (
                provisioned
                    .as_ref()
                    .map(|a| a.value.id.clone())
                    .unwrap_or_else(|| AccountId::generate(&mut rng)),
                SecurityStamp::generate(&mut rng),
            )
        };
        let account = Account {
            id: account_id.clone(),
            login_id,
            email: Some(ready.email.clone()),
            member: ready.proof.member().clone(),
            nickname,
            password_hash,
            security_stamp: stamp,
            status: AccountStatus::Active,
            password_failures: 0,
            last_password_failure_at: None,
            otp_failures: 0,
            otp_cooldown_until: None,
            created_at: provisioned
                .as_ref()
                .map(|a| a.value.created_at)
                .unwrap_or(now),
        };
        let account_write = match &provisioned {
            Some(acc) => AccountWrite::Update {
                expected: acc.version,
                account: account.clone(),
            },
            None => AccountWrite::Create(account.clone()),
        };
        let commit = Commit {
            flows: vec![FlowWrite {
                expected: Some(found.version),
                record: FlowRecord {
                    id: found.value.id.clone(),
                    state: FlowState::Registration(state.complete(account_id.clone(), now)),
                },
            }],
            accounts: vec![account_write],
            ..Commit::default()
        };
        match self.commit(commit).await? {
            CommitOutcome::Committed => {}
            CommitOutcome::LoginIdTaken => return Err(Rejection::LoginIdTaken.into()),
            CommitOutcome::EmailTaken => {
                self.audit(
                    AuditEvent::new(AuditKind::FamilyEmailRefused, now)
                        .flow(&found.value.id)
                        .member(ready.proof.member()),
                );
                return Err(Rejection::FamilyEmailInUse.into());
            }
            CommitOutcome::MemberTaken => return Err(Rejection::AlreadyRegistered.into()),
            // Someone else completed or changed this flow first.
            _ => return Err(Rejection::WrongStep.into()),
        }
        self.audit(
            AuditEvent::new(AuditKind::RegistrationCompleted, now)
                .flow(&found.value.id)
                .account(&account_id)
                .member(ready.proof.member())
                .email(ready.email.masked()),
        );
        let login_url = self.login_url();
        self.send_mail(
            &ready.email,
            MailMessage::RegistrationCompleted { login_url },
        )
        .await;
        Ok(Registered { account_id })
    }

    /// The words a new password must not contain (SEC-17), and the identifying strings a
    /// login ID must not equal (SEC-42).
    async fn password_context(
        &self,
        ready: &AwaitingCredentials,
        login_id: &LoginId,
        nickname: Option<&Nickname>,
    ) -> Result<(PasswordContext, Vec<String>), Error> {
        let mut ctx = PasswordContext::new();
        let mut identifying = Vec::new();
        ctx.add_word(login_id.as_str());
        ctx.add_word(ready.email.canonical());
        if let Some((local, _)) = ready.email.canonical().split_once('@') {
            ctx.add_word(local);
        }
        ctx.add_word(&self.inner.profile.insurer_name);
        if let Some(n) = nickname {
            ctx.add_word(n.as_str());
        }
        if let Some(member) = self.inner.directory.get(ready.proof.member()).await? {
            let card = &member.card_number;
            for w in [card.symbol(), card.number()] {
                ctx.add_word(w);
            }
            let compact: String = card.canonical().chars().filter(|c| *c != '-').collect();
            ctx.add_word(&compact);
            identifying.push(card.canonical());
            identifying.push(compact);
            identifying.push(card.number().to_owned());
            // SEC-17: every spelling of the birth date, 西暦 and 和暦.
            ctx.add_birth_date(member.birth_date.date());
            identifying.extend(member.birth_date.context_words());
        }
        Ok((ctx, identifying))
    }

    pub(super) fn login_url(&self) -> String {
        format!("{}{}", self.inner.profile.base_url, self.inner.paths.login)
    }

    /// Replaces a flow read at `found.version`; `false` when it changed meanwhile.
    pub(super) async fn replace_flow(
        &self,
        found: &Versioned<FlowRecord>,
        state: RegistrationState,
    ) -> Result<bool, Error> {
        let commit = Commit {
            flows: vec![FlowWrite {
                expected: Some(found.version),
                record: FlowRecord {
                    id: found.value.id.clone(),
                    state: FlowState::Registration(state),
                },
            }],
            ..Commit::default()
        };
        Ok(self.commit(commit).await? == CommitOutcome::Committed)
    }
}

fn registration_email(state: &FlowState) -> Option<&EmailAddress> {
    match state {
        FlowState::Registration(RegistrationState::AwaitingIdentity(s)) => Some(&s.email),
        FlowState::Registration(RegistrationState::AwaitingAuthKey(s)) => Some(&s.email),
        FlowState::Registration(RegistrationState::AwaitingCredentials(s)) => Some(&s.email),
        FlowState::Registration(RegistrationState::AwaitingLinkOpen(s)) => Some(&s.email),
        _ => None,
    }
}

/// Whether a provisioned account may still be completed by a flow that passed R2'
/// when the account had `stamp`: still provisioned, temporary password unexpired, and
/// not re-issued or disabled since (both change the stamp).
fn provisioned_still_valid(
    account: &Account,
    stamp: Option<&SecurityStamp>,
    now: OffsetDateTime,
) -> bool {
    let unexpired = matches!(
        account.status,
        AccountStatus::Provisioned { temporary_expires_at } if now < temporary_expires_at
    );
    let same_stamp = stamp.is_some_and(|s| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            s.as_str().as_bytes(),
            account.security_stamp.as_str().as_bytes(),
        ))
    });
    unexpired && same_stamp
}

/// SEC-42: a chosen login ID may not be the e-mail address, the card number or the
/// birth date.
fn login_is_identifying(login_id: &LoginId, email: &EmailAddress, identifying: &[String]) -> bool {
    let id = login_id.as_str();
    let local = email.canonical().split_once('@').map(|(l, _)| l);
    id == email.canonical()
        || local == Some(id)
        || identifying.iter().any(|w| w.to_ascii_lowercase() == id)
}
