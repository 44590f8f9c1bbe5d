//! メールアドレス変更 for a logged-in member, as a state machine.
//!
//! ```text
//! request (fresh re-auth) ──▶ AwaitingConfirmation ──POST link from the new address──▶ Ended(Confirmed)
//!                              ├─ a newer change request ───────────────────────────▶ Ended(Superseded)
//!                              └─ password / e-mail changed, account disabled ──────▶ Ended(AccountChanged)
//! ```
//!
//! The new address is inactive until its owner opens the link (SEC-36); the account
//! keeps its old address until then.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ends::Ends;
use super::gate::{self, Gate, PasswordCheck};
use super::link::LinkStatus;
use super::login::OtpConsumed;
use super::registration::{Found, address_mail_hit};
use super::step::{NewAccount, Step as Decision, Write};
use super::{AccountView, Env, FlowState, TOMBSTONE_TTL, Urls, deadline};
use crate::domain::{
    EmailAddress, InputError, LoginId, Nickname, Password, PasswordContext, PasswordRules,
};
use crate::error::Rejection;
use crate::mail::{MailLink, MailMessage};
use crate::model::{
    Account, AccountId, AccountStatus, AuditEvent, AuditKind, Counter, Expect, FlowId, MemberId,
    MemberRecord, SecurityStamp, Versioned,
};
use crate::password_hash::PasswordHashString;
use crate::token::{EmailChangeLinkToken, MailedLink, TokenDigest};

/// The confirmation link was mailed to the new address; waiting for it to come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingEmailConfirmation {
    /// Whose address changes.
    pub account: AccountId,
    /// The address the account will get.
    pub new_email: EmailAddress,
    /// Digest of the link.
    pub link: TokenDigest,
    /// When the link dies (30 min by default).
    pub expires_at: OffsetDateTime,
}

/// Why an address change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmailChangeEndReason {
    /// The new address was confirmed and is now the account's.
    Confirmed,
    /// A newer change was requested.
    Superseded,
    /// The password or e-mail changed, or the account was disabled (SEC-34).
    AccountChanged,
}

/// An address change that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EmailChangeEnd {
    /// Whose change it was.
    pub account: AccountId,
    /// Digest of the (spent) link, kept to answer "already used".
    pub link: TokenDigest,
    /// Why it ended.
    pub reason: EmailChangeEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where an address change is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmailChangeState {
    /// See [`AwaitingEmailConfirmation`].
    AwaitingConfirmation(AwaitingEmailConfirmation),
    /// See [`EmailChangeEnd`].
    Ended(EmailChangeEnd),
}

/// A fresh address change for `account`, and the link to mail to `new_email`.
pub fn start<R: rand::CryptoRng + ?Sized>(
    account: AccountId,
    new_email: EmailAddress,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingEmailConfirmation, EmailChangeLinkToken) {
    let (token, link) = EmailChangeLinkToken::issue(env.keys, rng);

    (
        AwaitingEmailConfirmation {
            account,
            new_email,
            link,
            expires_at: deadline(env.now, env.policy.email_change_link_ttl),
        },
        token,
    )
}

impl EmailChangeState {
    /// The account whose address changes.
    pub fn account(&self) -> &AccountId {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => &s.account,
            EmailChangeState::Ended(s) => &s.account,
        }
    }

    /// The GET of the link: what it would do if posted now, consuming nothing.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        if let EmailChangeState::AwaitingConfirmation(s) = self {
            LinkStatus::on(Some((&s.link, s.expires_at)), &[], link, now)
        } else {
            LinkStatus::on(None, &self.lookup_keys(), link, now)
        }
    }

    /// The POST of the link: the pending change, if the link may be used now. The
    /// portal commits [`EmailChangeState::confirm`] together with the account's new
    /// address.
    pub fn ready_to_confirm(
        &self,
        link: &TokenDigest,
        env: Env<'_>,
    ) -> Result<&AwaitingEmailConfirmation, Rejection> {
        self.link_status(link, env.now).openable()?;
        match self {
            EmailChangeState::AwaitingConfirmation(s) => Ok(s),
            EmailChangeState::Ended(_) => Err(Rejection::LinkUsed),
        }
    }

    /// The change committed: the state to store together with the account.
    pub fn confirm(self, now: OffsetDateTime) -> EmailChangeState {
        self.end(EmailChangeEndReason::Confirmed, now)
    }

    /// Ends an open change for `reason`. `None` when it was already over.
    pub fn end_for(self, reason: EmailChangeEndReason, now: OffsetDateTime) -> Option<Self> {
        match self {
            EmailChangeState::Ended(_) => None,
            open => Some(open.end(reason, now)),
        }
    }

    fn end(self, reason: EmailChangeEndReason, now: OffsetDateTime) -> EmailChangeState {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => EmailChangeState::Ended(EmailChangeEnd {
                account: s.account,
                link: s.link,
                reason,
                at: now,
            }),
            ended => ended,
        }
    }
}

flow_index! { EmailChangeState;
    EmailChangeState::AwaitingConfirmation(s) => [s.link], deadline(s.expires_at, TOMBSTONE_TTL);
    EmailChangeState::Ended(s) => [s.link], deadline(s.at, TOMBSTONE_TTL);
}

// ── The journeys of a logged-in member and of the insurer ─────────────────────────

/// パスワード変更 before anything is checked: the account whose password changes, or —
/// when it is gone — the answer every refusal of the current password gets,
/// [`Rejection::CurrentPasswordIncorrect`]. An account that exists but is not active
/// passes here and is refused by [`change_password`] after the same checks and the same
/// Argon2 work as a wrong password, so its answer costs the same time.
pub fn password_change_gate<'a>(
    held: AccountView<'a>,
) -> Result<&'a Versioned<Account>, Box<Decision<SecurityStamp>>> {
    held.account
        .ok_or_else(|| Box::new(Decision::reject(Rejection::CurrentPasswordIncorrect)))
}

/// パスワード変更: the current password goes through the login's gate — a wrong one
/// counts on the account and the SEC-24 delays and cap apply (SEC-18) — and every
/// refusal is [`Rejection::CurrentPasswordIncorrect`]. On success the new hash, a new
/// stamp, every open flow of the account ended (SEC-34) and the notice (SEC-43), in one
/// commit conditional on the account's version. Answers the new stamp.
pub fn change_password<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    current: PasswordCheck,
    new_hash: PasswordHashString,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<SecurityStamp> {
    let Some(stored) = held.active() else {
        return Decision::reject(Rejection::CurrentPasswordIncorrect);
    };
    let opened = match gate::check(Gate::Login, Some(stored), current, None, env) {
        Ok(opened) => opened,
        Err(mut refused) => {
            refused.answer = Err(Rejection::CurrentPasswordIncorrect);
            return refused;
        }
    };
    let now = env.now;
    let mut updated = opened.account;
    updated.password_hash = new_hash;
    updated.security_stamp = SecurityStamp::generate(rng);
    let mut d = Decision::answer(updated.security_stamp.clone())
        .writes(Ends::ALL.writes(held.flows, now, None))
        .audits(opened.audit)
        .audit(AuditEvent::new(AuditKind::PasswordChanged, now).account(&updated.id));
    d = d.mail_if(
        updated.email.as_ref(),
        MailMessage::PasswordChanged { at: now },
    );
    d.account(opened.expect, updated)
}

/// A login (password + 暗証キー) presented for a change that needs a fresh one.
#[derive(Clone, Copy, Debug)]
pub struct FreshLogin<'a> {
    /// The consumed code the login stands on.
    pub proof: &'a OtpConsumed,
    /// The security stamp the login was given.
    pub stamp: &'a SecurityStamp,
}

impl<'a> From<&'a super::login::Authenticated> for FreshLogin<'a> {
    fn from(login: &'a super::login::Authenticated) -> Self {
        FreshLogin {
            proof: login.proof(),
            stamp: &login.security_stamp,
        }
    }
}

/// メールアドレス変更: needs a fresh login of this account (SEC-36) — a consumed
/// 暗証キー no older than the re-authentication window, whose stamp is still current —
/// and mails a confirmation link to the new address, ending earlier pending changes.
/// Whether the address is taken is not said here (SEC-08); a throttled mail (SEC-13)
/// answers the same.
pub fn request_email_change<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    (new_email, mails): (EmailAddress, &[Option<Versioned<Counter>>]),
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<()> {
    let now = env.now;
    let FreshLogin { proof, stamp } = fresh;
    let age = now - proof.at();
    let stale = || Decision::reject(Rejection::ReauthenticationRequired);
    let Some(account) = held.active() else {
        return stale();
    };
    let same_stamp = account.value.security_stamp == *stamp;
    if proof.account() != &account.value.id
        || age.is_negative()
        || age > env.policy.reauth_window
        || !same_stamp
    {
        return stale();
    }
    let id = &account.value.id;
    let Ok(hit) = address_mail_hit(&new_email, mails, env) else {
        return Decision::answer(()).audit(
            AuditEvent::new(AuditKind::MailThrottled, now)
                .account(id)
                .email(new_email.masked()),
        );
    };
    let (state, token) = start(id.clone(), new_email.clone(), env, rng);
    let expires_at = state.expires_at;
    let url = urls.link(|p| &p.email_change, token.expose_secret());
    Decision::answer(())
        .writes(Ends::email(EmailChangeEndReason::Superseded).writes(held.flows, now, None))
        .flow(
            Expect::Absent,
            FlowId::generate(rng),
            FlowState::EmailChange(EmailChangeState::AwaitingConfirmation(state)),
        )
        .charge(hit)
        .audit(
            AuditEvent::new(AuditKind::EmailChangeRequested, now)
                .account(id)
                .email(new_email.masked()),
        )
        .mail(
            new_email,
            MailMessage::EmailChangeLink(MailLink {
                url,
                token,
                expires_at,
            }),
        )
}

/// POST of the address-confirmation link: the new address becomes the account's, with a
/// new stamp and every other open flow ended (SEC-34); the store decides uniqueness in
/// the same commit (SEC-08), and a taken address is said only to whoever holds the
/// link. Notices go to the old and the new address (SEC-43). Answers the masked address.
pub fn confirm_email<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    held: AccountView<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<String> {
    let now = env.now;
    let Some((record, digest)) = found else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    let FlowState::EmailChange(state) = &record.value.state else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    let pending = match state.ready_to_confirm(digest, env) {
        Ok(p) => p.clone(),
        Err(r) => return Decision::reject(r),
    };
    let Some(account) = held.active().filter(|a| a.value.id == pending.account) else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    let old_email = account.value.email.clone();
    let mut updated = account.value.clone();
    updated.email = Some(pending.new_email.clone());
    updated.security_stamp = SecurityStamp::generate(rng);
    let notice = MailMessage::EmailChanged {
        new_address_masked: pending.new_email.masked(),
        at: now,
    };
    let mut d = Decision::answer(pending.new_email.masked())
        .writes(Ends::ALL.writes(held.flows, now, Some(&record.value.id)))
        .advance(record, FlowState::EmailChange(state.clone().confirm(now)))
        .audit(
            AuditEvent::new(AuditKind::EmailChanged, now)
                .account(&updated.id)
                .flow(&record.value.id)
                .email(pending.new_email.masked()),
        );
    if let Some(old) = old_email
        && old.canonical() != pending.new_email.canonical()
    {
        d = d.mail(old, notice.clone());
    }
    d = d.mail(pending.new_email.clone(), notice);
    d.audit_if_email_taken.push(
        AuditEvent::new(AuditKind::FamilyEmailRefused, now)
            .account(&updated.id)
            .flow(&record.value.id),
    );
    d.account(Expect::At(account.version), updated)
}

/// What 事前登録 issued: the account, its random login ID and when the temporary
/// password stops working.
#[derive(Debug)]
#[non_exhaustive]
pub struct Provisioned {
    /// The account.
    pub account_id: AccountId,
    /// Its random login ID (SEC-42).
    pub login_id: LoginId,
    /// When the temporary password stops working.
    pub expires_at: time::OffsetDateTime,
}

/// Who may be provisioned (SEC-41, SEC-47): a member the roster lists as eligible.
/// Checked before the temporary password is drawn and hashed.
pub fn check_provisionable(record: Option<&MemberRecord>) -> Result<(), Rejection> {
    match record {
        Some(r) if r.eligible => Ok(()),
        _ => Err(Rejection::UnknownMember),
    }
}

/// 事前登録 for an eligible roster member (the driver checked the roster): a new
/// provisioned account with a random login ID, or — for a member whose account is still
/// provisioned or disabled — a re-issue on the same account that revokes the previous
/// temporary password and any R2' it passed (new stamp, flows ended). A member who has
/// completed registration is refused.
pub fn provision<R: rand::CryptoRng + ?Sized>(
    member: &MemberId,
    held: AccountView<'_>,
    temporary_hash: PasswordHashString,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<Provisioned> {
    let now = env.now;
    let expires_at = now.saturating_add(env.policy.temporary_password_ttl);
    let status = AccountStatus::Provisioned {
        temporary_expires_at: expires_at,
    };
    let stamp = SecurityStamp::generate(rng);
    let (account, write, ends, detail) = match held.account {
        Some(a) if matches!(a.value.status, AccountStatus::Active) => {
            return Decision::reject(Rejection::AlreadyRegistered);
        }
        Some(a) => {
            let mut updated = a.value.clone();
            updated.password_hash = temporary_hash;
            updated.status = status;
            updated.security_stamp = stamp;
            // A provisioned account binds its address at R5.
            updated.email = None;
            updated.password_failures = 0;
            updated.last_password_failure_at = None;
            updated.otp_failures = 0;
            updated.otp_cooldown_until = None;
            let write = Write::Account {
                expect: Expect::At(a.version),
                account: updated.clone(),
            };
            (
                updated,
                write,
                Ends::ALL.writes(held.flows, now, None),
                "reissued",
            )
        }
        None => {
            let account = Account {
                id: AccountId::generate(rng),
                login_id: LoginId::generate(rng),
                email: None,
                member: member.clone(),
                nickname: None,
                password_hash: temporary_hash,
                security_stamp: stamp,
                status,
                password_failures: 0,
                last_password_failure_at: None,
                otp_failures: 0,
                otp_cooldown_until: None,
                created_at: now,
                factors: Default::default(),
                recent_login: None,
            };
            let write = Write::CreateAccount(NewAccount::new(account.clone()));
            (account, write, Vec::new(), "issued")
        }
    };
    let mut d = Decision::answer(Provisioned {
        account_id: account.id.clone(),
        login_id: account.login_id.clone(),
        expires_at,
    })
    .writes(ends)
    .write(write)
    .audit(
        AuditEvent::new(AuditKind::AccountProvisioned, now)
            .account(&account.id)
            .member(member)
            .detail(detail),
    );
    // A login-ID collision draws a new ID on the next try.
    d.redraw_on_login_id_taken = true;
    d
}

/// What 資格喪失 did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisableOutcome {
    /// The account is now disabled.
    Disabled,
    /// It already was.
    AlreadyDisabled,
    /// No such account.
    UnknownAccount,
}

/// 資格喪失: the account can no longer log in or recover, its stamp changes so every
/// session ends, and its open flows end (SEC-34).
pub fn disable<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<DisableOutcome> {
    let Some(a) = held.account else {
        return Decision::answer(DisableOutcome::UnknownAccount);
    };
    if matches!(a.value.status, AccountStatus::Disabled { .. }) {
        return Decision::answer(DisableOutcome::AlreadyDisabled);
    }
    let now = env.now;
    let mut updated = a.value.clone();
    updated.status = AccountStatus::Disabled { at: now };
    updated.security_stamp = SecurityStamp::generate(rng);
    Decision::answer(DisableOutcome::Disabled)
        .writes(Ends::ALL.writes(held.flows, now, None))
        .audit(AuditEvent::new(AuditKind::AccountDisabled, now).account(&a.value.id))
        .account(Expect::At(a.version), updated)
}

/// 新パスワード(確認) is 新パスワード: checked first, before anything is read for the
/// policy's rules, so a typo is answered as one even when the roster is down. The same
/// check for R5, a reset and a change.
pub fn check_confirmation(new: &Password, confirmation: &Password) -> Result<(), Rejection> {
    crate::domain::check_confirmation(new, confirmation)
        .map_err(|_| Rejection::PasswordConfirmationMismatch)
}

/// 新パスワード under the full policy, with the member's context words (SEC-14,
/// SEC-17). The same check for R5, a reset and a change.
pub fn check_new_password(
    new: &Password,
    context: &PasswordContext,
    policy: &PasswordRules,
) -> Result<(), Rejection> {
    crate::domain::check_new_password(new, policy, context)
        .map_err(InputError::from)
        .map_err(Rejection::from)
}

/// The words a member's new password must not contain (SEC-17) — login ID, address and
/// its local part, insurer name, nickname, 記号・番号 and every spelling of the birth date
/// — and the identifying strings a login ID must not be (SEC-42), from the member's
/// roster entry when the roster has one.
pub(crate) fn password_context(
    login_id: &LoginId,
    email: Option<&EmailAddress>,
    nickname: Option<&Nickname>,
    insurer_name: &str,
    member: Option<&MemberRecord>,
) -> (PasswordContext, Vec<String>) {
    let mut ctx = PasswordContext::new();
    let mut identifying = Vec::new();
    ctx.add_word(login_id.as_str());
    if let Some(email) = email {
        ctx.add_word(email.canonical());
        if let Some((local, _)) = email.canonical().split_once('@') {
            ctx.add_word(local);
        }
    }
    ctx.add_word(insurer_name);
    if let Some(n) = nickname {
        ctx.add_word(n.as_str());
    }
    if let Some(member) = member {
        let card = &member.card_number;
        ctx.add_word(card.symbol());
        ctx.add_word(card.number());
        let compact: String = card.canonical().chars().filter(|c| *c != '-').collect();
        ctx.add_word(&compact);
        identifying.extend([card.canonical(), compact, card.number().to_owned()]);
        ctx.add_birth_date(member.birth_date.date());
        identifying.extend(member.birth_date.context_words());
    }
    (ctx, identifying)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::test_support::{T0, keys};
    use crate::policy::Policy;
    use time::Duration;

    // SEC-41, SEC-47: credentials are issued only to a member the roster lists as
    // eligible; one who has left (資格喪失) or is not listed is told so before anything
    // is drawn.
    #[test]
    fn sec_47_only_an_eligible_member_is_provisioned() {
        let record = |eligible| {
            MemberRecord::new(
                MemberId::new("M1"),
                crate::domain::CardNumber::parse("999-123456-00").unwrap(),
                crate::domain::BirthDate::parse("1985-04-12").unwrap(),
                None,
                crate::model::Relation::Insured,
                eligible,
            )
        };
        assert_eq!(check_provisionable(Some(&record(true))), Ok(()));
        for unknown in [Some(&record(false)), None] {
            assert_eq!(check_provisionable(unknown), Err(Rejection::UnknownMember));
        }
    }

    // SEC-36: the confirmation link lives email_change_link_ttl (30 min): usable at
    // expires_at - 1 s, refused at expires_at, and once confirmed it says "used".
    #[test]
    fn sec_36_confirmation_link_boundary_and_single_use() {
        let keys = keys();
        let p = Policy::default();
        let env = |now| Env {
            now,
            policy: &p,
            keys: &keys,
        };
        let (s, token) = start(
            AccountId::from_stored("a1"),
            EmailAddress::parse("new@example.jp").unwrap(),
            env(T0),
            &mut rand::rng(),
        );
        let d = token.digest(&keys);
        let state = EmailChangeState::AwaitingConfirmation(s);
        let end = T0 + Duration::minutes(30);
        assert!(
            state
                .ready_to_confirm(&d, env(end - Duration::seconds(1)))
                .is_ok()
        );
        assert_eq!(
            state.ready_to_confirm(&d, env(end)).err(),
            Some(Rejection::Expired)
        );
        let done = state.confirm(T0);
        assert_eq!(
            done.ready_to_confirm(&d, env(T0)).err(),
            Some(Rejection::LinkUsed)
        );
        assert!(
            done.end_for(EmailChangeEndReason::AccountChanged, T0)
                .is_none()
        );
    }
}
