//! パスワードを忘れた方: the password reset as a state machine.
//!
//! ```text
//! request ──▶ AwaitingLinkOpen ──POST link──▶ AwaitingNewPassword ──roster ok + new password──▶ Ended(Completed)
//!               │                               │  └─ roster check failed (attempts spent)
//!               │                               ├─ tries exhausted ───────────▶ Ended(IdentityAttemptsExhausted)
//!               ├─ another link of the account opened ┴─────────────────────▶ Ended(Superseded)
//!               └─ password / e-mail changed, account disabled ─────────────▶ Ended(AccountChanged)
//!
//! request for a login ID with no active account ──▶ Unmatched (never mailed; expires)
//! ```
//!
//! A request only adds: it never ends the account's earlier links (an outsider who knows
//! a login ID could otherwise kill the member's link at will), and for an unknown ID it
//! stores an [`UnmatchedReset`] in place of the real flow, so both cost the store the
//! same (SEC-37). Opening a link ends the account's other open links, so one reset at
//! most is ever in progress.
//!
//! The link is single use (SEC-38): opening it (POST) consumes it and binds the flow to
//! one browser with a [`FlowHandle`]. When [`Policy::recovery_requires_identity`] is on
//! (the default), the handle alone does not let the member set a password: a roster
//! attribute re-check (記号・番号・枝番 + 生年月日) must pass first, with the SEC-09 attempt
//! limits. Nothing about the account changes until the reset completes (SEC-37).
//!
//! [`Policy::recovery_requires_identity`]: crate::policy::Policy::recovery_requires_identity

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ends::Ends;
use super::link::{self, LinkStatus};
use super::registration::{
    Found, IdentityClaim, RosterCheck, address_mail_hit, address_mail_window, failed_attempt,
    identity_member_window,
};
use super::step::{Step as Decision, Write};
use super::throttle::{self, CounterHit, StartBudgets};
use super::{AccountView, Env, FlowRecord, FlowState, TOMBSTONE_TTL, Urls, active, deadline};
use crate::domain::EmailAddress;
use crate::error::Rejection;
use crate::mail::{MailLink, MailMessage};
use crate::model::{
    Account, AccountId, AuditEvent, AuditKind, Counter, CounterKey, Expect, FlowId, MemberRecord,
    SecurityStamp, Versioned,
};
use crate::password_hash::PasswordHashString;
use crate::token::{FlowHandle, MailedLink, PasswordResetLinkToken, TokenDigest};

/// The reset link was mailed; waiting for the member to open it and press the button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingResetLink {
    /// Whose password the link resets.
    pub account: AccountId,
    /// Digest of the link.
    pub link: TokenDigest,
    /// When the link dies (30 min by default, SEC-38).
    pub expires_at: OffsetDateTime,
}

/// A reset asked for a login ID that names no active account with an address (SEC-37).
/// It is stored as a real request is — one flow, found by the digest of a freshly drawn
/// link — so that the request costs the store the same either way. The link is never
/// mailed (its token is dropped); the flow holds no account and ends at `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnmatchedReset {
    /// Digest of the link that was drawn and dropped.
    pub link: TokenDigest,
    /// When the flow may go (as a real link's).
    pub expires_at: OffsetDateTime,
}

/// The link was opened in one browser; waiting for the roster re-check and the new
/// password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingNewPassword {
    /// Whose password is being reset.
    pub account: AccountId,
    /// Digest of the (spent) link, kept to answer "already used".
    pub link: TokenDigest,
    /// Digest of the browser's flow handle.
    pub handle: TokenDigest,
    /// Roster checks made in this flow (SEC-09).
    pub attempts: u32,
    /// Whether the roster check passed in this flow. Once it has, a refused new password
    /// (too short, a context word …) can be retyped without repeating the check.
    pub identity_confirmed: bool,
    /// When the step ends.
    pub expires_at: OffsetDateTime,
}

/// Why a reset flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResetEndReason {
    /// The new password was set.
    Completed,
    /// Another reset link of the account was opened.
    Superseded,
    /// The password or e-mail changed, or the account was disabled, while the flow was
    /// open (SEC-34).
    AccountChanged,
    /// Too many failed roster checks (SEC-09).
    IdentityAttemptsExhausted,
}

/// A reset flow that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ResetEnd {
    /// Whose reset it was.
    pub account: AccountId,
    /// Every digest the flow used, kept to answer "already used".
    pub spent: Vec<TokenDigest>,
    /// Why it ended.
    pub reason: ResetEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where a password reset is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResetState {
    /// See [`AwaitingResetLink`].
    AwaitingLinkOpen(AwaitingResetLink),
    /// See [`AwaitingNewPassword`].
    AwaitingNewPassword(AwaitingNewPassword),
    /// See [`ResetEnd`].
    Ended(ResetEnd),
    /// See [`UnmatchedReset`].
    Unmatched(UnmatchedReset),
}

/// A reset transition whose new state must be stored whatever the member is told
/// (roster attempts are spent on failure too).
#[derive(Debug)]
pub struct ResetStep {
    /// The state to store.
    pub state: ResetState,
    /// What to tell the member once the state is stored.
    pub result: Result<(), Rejection>,
}

/// A fresh reset flow for `account`, and the link to mail to its registered address.
pub fn start<R: rand::CryptoRng + ?Sized>(
    account: AccountId,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingResetLink, PasswordResetLinkToken) {
    let (token, link) = PasswordResetLinkToken::issue(env.keys, rng);

    (
        AwaitingResetLink {
            account,
            link,
            expires_at: deadline(env.now, env.policy.password_reset_link_ttl),
        },
        token,
    )
}

impl ResetState {
    /// The account the reset belongs to; `None` for an [`UnmatchedReset`].
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            ResetState::AwaitingLinkOpen(s) => Some(&s.account),
            ResetState::AwaitingNewPassword(s) => Some(&s.account),
            ResetState::Ended(s) => Some(&s.account),
            ResetState::Unmatched(_) => None,
        }
    }

    /// The GET of the link: what it would do if posted now, consuming nothing.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        let waiting = match self {
            ResetState::AwaitingLinkOpen(s) => Some((&s.link, s.expires_at)),
            _ => None,
        };
        LinkStatus::on(waiting, &self.lookup_keys(), link, now)
    }

    /// The POST of the link: consumes it and binds the flow to this browser.
    pub fn open_link<R: rand::CryptoRng + ?Sized>(
        self,
        link: &TokenDigest,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(ResetState, FlowHandle), Rejection> {
        let (handle, bound) = link::open(self.link_status(link, env.now), env, rng)?;
        let ResetState::AwaitingLinkOpen(s) = self else {
            return Err(Rejection::LinkInvalid);
        };
        let next = AwaitingNewPassword {
            handle: bound,
            account: s.account,
            link: s.link,
            attempts: 0,
            identity_confirmed: false,
            expires_at: deadline(env.now, env.policy.credentials_step_ttl),
        };
        Ok((ResetState::AwaitingNewPassword(next), handle))
    }

    /// The roster re-check (SEC-09 limits): `record` is the roster entry of the
    /// account's member, `member_exhausted` the portal's answer from the per-member
    /// counter. The returned state always replaces the stored one. A flow whose check
    /// already passed answers `Ok` without comparing again.
    pub fn check_identity(
        self,
        handle: &TokenDigest,
        check: RosterCheck<'_>,
        env: Env<'_>,
    ) -> ResetStep {
        let s = match self {
            ResetState::AwaitingNewPassword(s) if s.handle == *handle => s,
            other => {
                return ResetStep {
                    state: other,
                    result: Err(Rejection::WrongStep),
                };
            }
        };
        if env.now >= s.expires_at {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Err(Rejection::Expired),
            };
        }
        if s.identity_confirmed {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Ok(()),
            };
        }
        if s.attempts >= env.policy.identity_tries_per_flow {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Err(Rejection::IdentityAttemptsExhausted),
            };
        }
        if check.matched().is_some() {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(AwaitingNewPassword {
                    identity_confirmed: true,
                    ..s
                }),
                result: Ok(()),
            };
        }
        let (attempts, used_up) = failed_attempt(s.attempts, env);
        let state = if used_up {
            ResetState::Ended(ResetEnd {
                account: s.account,
                spent: vec![s.link, s.handle],
                reason: ResetEndReason::IdentityAttemptsExhausted,
                at: env.now,
            })
        } else {
            ResetState::AwaitingNewPassword(AwaitingNewPassword { attempts, ..s })
        };
        ResetStep {
            state,
            result: Err(Rejection::IdentityNotConfirmed),
        }
    }

    /// Whether the new password may be set now: the handle is this flow's, the step is
    /// alive, and the roster check passed (when the policy asks for it).
    pub fn ready_to_complete(
        &self,
        handle: &TokenDigest,
        env: Env<'_>,
    ) -> Result<&AwaitingNewPassword, Rejection> {
        match self {
            ResetState::AwaitingNewPassword(s) if s.handle == *handle => {
                if env.now >= s.expires_at {
                    Err(Rejection::Expired)
                } else if env.policy.recovery_requires_identity && !s.identity_confirmed {
                    Err(Rejection::IdentityNotConfirmed)
                } else {
                    Ok(s)
                }
            }
            _ => Err(Rejection::WrongStep),
        }
    }

    /// The reset committed: the state to store together with the account's new password.
    pub fn complete(self, now: OffsetDateTime) -> ResetState {
        let completed = self.clone().end_for(ResetEndReason::Completed, now);
        completed.unwrap_or(self)
    }

    /// Ends an open reset for `reason` (another link opened, a password change, a
    /// disable). `None` when it was already over or never had an account.
    pub fn end_for(self, reason: ResetEndReason, now: OffsetDateTime) -> Option<ResetState> {
        let spent = self.lookup_keys();
        let account = match self {
            ResetState::AwaitingLinkOpen(s) => s.account,
            ResetState::AwaitingNewPassword(s) => s.account,
            ResetState::Ended(_) | ResetState::Unmatched(_) => return None,
        };
        Some(ResetState::Ended(ResetEnd {
            account,
            spent,
            reason,
            at: now,
        }))
    }
}

flow_index! { ResetState;
    ResetState::AwaitingLinkOpen(s) => [s.link], deadline(s.expires_at, TOMBSTONE_TTL);
    ResetState::AwaitingNewPassword(s) => [s.link, s.handle], deadline(s.expires_at, TOMBSTONE_TTL);
    ResetState::Ended(s) => s.spent.clone(), deadline(s.at, TOMBSTONE_TTL);
    ResetState::Unmatched(s) => [s.link], deadline(s.expires_at, TOMBSTONE_TTL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BirthDate, CardNumber};
    use crate::flow::test_support::{T0, env, keys};
    use crate::model::{MemberId, Relation};
    use crate::policy::Policy;
    use crate::token::DigestKeyring;
    use time::Duration;

    fn record() -> MemberRecord {
        MemberRecord::new(
            MemberId::new("M1"),
            CardNumber::parse("999-123456-00").unwrap(),
            BirthDate::parse("1985-04-12").unwrap(),
            None,
            Relation::Insured,
            true,
        )
    }

    /// One roster re-check at T0 under the default policy, with `birth` typed, against
    /// `record`.
    fn attempt(
        state: ResetState,
        handle: &TokenDigest,
        birth: &str,
        record: Option<&MemberRecord>,
        member_exhausted: bool,
    ) -> ResetStep {
        let (policy, keys, claim) = (Policy::default(), keys(), claim(birth));
        let check = RosterCheck {
            claim: &claim,
            record,
            member_exhausted,
        };
        state.check_identity(handle, check, env(T0, &policy, &keys))
    }

    fn claim(birth: &str) -> IdentityClaim {
        IdentityClaim {
            card_number: CardNumber::parse("999-123456-00").unwrap(),
            birth_date: BirthDate::parse(birth).unwrap(),
            kana_name: None,
        }
    }

    fn opened(policy: &Policy, keys: &DigestKeyring) -> (ResetState, TokenDigest, TokenDigest) {
        let mut rng = rand::rng();
        let (s, token) = start(
            AccountId::from_stored("a1"),
            env(T0, policy, keys),
            &mut rng,
        );
        let link = token.digest(keys);
        let (state, handle) = ResetState::AwaitingLinkOpen(s)
            .open_link(&link, env(T0, policy, keys), &mut rng)
            .unwrap();
        (state, link, handle.digest(keys))
    }

    // SEC-38: the link lives 30 minutes: valid at expires_at - 1 s, expired at expires_at.
    #[test]
    fn sec_38_link_boundary() {
        let (p, k) = (Policy::default(), keys());
        let mut rng = rand::rng();
        let (s, token) = start(AccountId::from_stored("a1"), env(T0, &p, &k), &mut rng);
        let state = ResetState::AwaitingLinkOpen(s);
        let d = token.digest(&k);
        let end = T0 + Duration::minutes(30);
        assert_eq!(
            state.link_status(&d, end - Duration::seconds(1)),
            LinkStatus::Valid { expires_at: end }
        );
        assert_eq!(state.link_status(&d, end), LinkStatus::Expired);
        assert_eq!(
            state
                .clone()
                .open_link(&d, env(end, &p, &k), &mut rng)
                .err(),
            Some(Rejection::Expired)
        );
    }

    // SEC-38 / SEC-02: the link opens once; a second POST says "already used".
    #[test]
    fn sec_38_link_is_single_use() {
        let (p, k) = (Policy::default(), keys());
        let (state, link, _) = opened(&p, &k);
        assert_eq!(state.link_status(&link, T0), LinkStatus::Used);
        assert_eq!(
            state
                .open_link(&link, env(T0, &p, &k), &mut rand::rng())
                .err(),
            Some(Rejection::LinkUsed)
        );
    }

    // SEC-09: the roster re-check fails without saying why, spends a try each time, and
    // the last try ends the flow; the right data then no longer helps.
    #[test]
    fn sec_09_reset_identity_tries_are_limited() {
        let (p, k) = (Policy::default(), keys());
        let (mut state, _, handle) = opened(&p, &k);
        let r = record();
        for i in 1..=p.identity_tries_per_flow {
            let step = attempt(state, &handle, "1985-04-13", Some(&r), false);
            assert_eq!(step.result, Err(Rejection::IdentityNotConfirmed));
            state = step.state;
            if i < p.identity_tries_per_flow {
                assert!(matches!(&state, ResetState::AwaitingNewPassword(s) if s.attempts == i));
            }
        }
        assert!(matches!(
            &state,
            ResetState::Ended(e) if e.reason == ResetEndReason::IdentityAttemptsExhausted
        ));
        let step = attempt(state, &handle, "1985-04-12", Some(&r), false);
        assert_eq!(step.result, Err(Rejection::WrongStep));
    }

    // SEC-09: a member blocked across flows fails even with the right data.
    #[test]
    fn sec_09_blocked_member_fails_with_right_data() {
        let (p, k) = (Policy::default(), keys());
        let (state, _, handle) = opened(&p, &k);
        let step = attempt(state, &handle, "1985-04-12", Some(&record()), true);
        // SEC-09: the same answer as a wrong birth date.
        assert_eq!(step.result, Err(Rejection::IdentityNotConfirmed));
    }

    // The new password can be set only after the roster check passed (policy default),
    // or right away when the insurer allowed recovery by e-mail alone.
    #[test]
    fn completion_needs_the_roster_check_when_required() {
        let k = keys();
        let p = Policy::default();
        let (state, _, handle) = opened(&p, &k);
        assert_eq!(
            state.ready_to_complete(&handle, env(T0, &p, &k)).err(),
            Some(Rejection::IdentityNotConfirmed)
        );
        let step = attempt(state, &handle, "1985-04-12", Some(&record()), false);
        assert_eq!(step.result, Ok(()));
        assert!(
            step.state
                .ready_to_complete(&handle, env(T0, &p, &k))
                .is_ok()
        );
        let mut loose = Policy::default();
        loose.recovery_requires_identity = false;
        let (state, _, handle) = opened(&loose, &k);
        assert!(
            state
                .ready_to_complete(&handle, env(T0, &loose, &k))
                .is_ok()
        );
    }

    // SEC-34: ending a flow keeps its digests (so a reused link says "used") and is
    // idempotent.
    #[test]
    fn sec_34_ended_flow_keeps_its_digests() {
        let (p, k) = (Policy::default(), keys());
        let (state, link, handle) = opened(&p, &k);
        let ended = state.end_for(ResetEndReason::AccountChanged, T0).unwrap();
        assert_eq!(ended.lookup_keys(), vec![link, handle]);
        assert_eq!(ended.link_status(&link, T0), LinkStatus::Used);
        assert!(ended.end_for(ResetEndReason::AccountChanged, T0).is_none());
    }
}

// ── The journey: what each recovery step decides from what the driver loaded ──────

/// What ログインIDを忘れた方 learned: the account of the typed address, its roster
/// entry (read only when a claim was typed and the address has an account), and the
/// address's mail counter.
#[derive(Debug, Default)]
pub struct ReminderFacts<'a> {
    /// The account whose registered address was typed.
    pub account: Option<&'a Versioned<Account>>,
    /// The roster entry of the typed card number (the core checks it is the account's
    /// member's).
    pub record: Option<&'a MemberRecord>,
    /// Mails to the typed address (SEC-13).
    pub mails: &'a [Option<Versioned<Counter>>],
    /// The requester's and the portal's flow starts (SEC-13).
    pub starts: StartBudgets<'a>,
}

/// ログインIDを忘れた方 without the card data the policy asks for: refused before any
/// budget is spent or anything is read — which says nothing about accounts.
pub fn reminder_gate<T>(identity: Option<&IdentityClaim>, env: Env<'_>) -> Option<Decision<T>> {
    (env.policy.recovery_requires_identity && identity.is_none())
        .then(|| Decision::reject(Rejection::IdentityNotConfirmed))
}

/// ログインIDを忘れた方: the login ID goes to the registered address when the address
/// belongs to an active account and — when the policy asks — the claim matches its
/// roster entry. The answer is always the same (SEC-40); only a missing claim where the
/// policy needs one is refused, which says nothing about accounts. No identity budget is
/// charged (SEC-25): the answer is no oracle, and the mail throttle (SEC-13) bounds what
/// reaches the member. The address's mail allowance is counted on every path, so a
/// match and a miss commit the same rows (SEC-40).
pub fn remind_login_id(
    email: &EmailAddress,
    identity: Option<&IdentityClaim>,
    facts: ReminderFacts<'_>,
    env: Env<'_>,
) -> Decision<()> {
    if let Some(refused) = reminder_gate(identity, env) {
        return refused;
    }
    throttle::within_start_budgets(facts.starts, env, (), || {
        let now = env.now;
        let target = active(facts.account);
        let mut hits: Vec<CounterHit> = Vec::new();
        // SEC-25: no identity budget is charged here. The answer is the same whether or not
        // the claim matched (SEC-40) and the login ID only ever goes to the registered
        // address, so a guess teaches the requester nothing; charging the member's budget
        // would only let anyone who knows the address block the member's own recovery.
        // `facts.record` is the roster entry of the typed card: it must be the account's
        // member's, and match what was typed.
        let identity_ok = match identity {
            None => true,
            Some(claim) => RosterCheck {
                claim,
                record: facts.record,
                member_exhausted: false,
            }
            .matched()
            .is_some_and(|r| target.is_some_and(|a| r.member_id == a.value.member)),
        };
        let matched = target.filter(|_| identity_ok);
        // Equal work (SEC-40): the typed address's mail allowance is counted whether or
        // not a login ID goes out, so a match commits the same rows as a miss.
        let mut decision = Decision::answer(());
        let detail = match (address_mail_hit(email, facts.mails, env), matched) {
            (Err(_), _) => "throttled",
            (Ok(hit), None) => {
                decision.refunds.push(hit.refund());
                hits.push(hit);
                "no_match"
            }
            (Ok(hit), Some(a)) => {
                decision.refunds.push(hit.refund());
                hits.push(hit);
                match &a.value.email {
                    Some(to) => {
                        decision = decision.mail(
                            to.clone(),
                            MailMessage::LoginIdReminder {
                                login_id: a.value.login_id.as_str().to_owned(),
                            },
                        );
                        "sent"
                    }
                    None => "no_match",
                }
            }
        };
        let mut ev = AuditEvent::new(AuditKind::LoginIdReminderRequested, now)
            .email(email.masked())
            .detail(detail);
        if let Some(a) = matched {
            ev = ev.account(&a.value.id);
        }
        decision
            .writes(hits.into_iter().map(Write::Counter))
            .audit(ev)
    })
}

/// The reset mails asked for one typed login ID: the [`CounterKey::MailsForLoginId`]
/// keys (current first) and the counters loaded for them.
#[derive(Clone, Copy, Debug)]
pub struct ResetMails<'a> {
    /// [`CounterKey::mails_for_login_id_all`] of the typed login ID.
    pub keys: &'a [CounterKey],
    /// One per key.
    pub counters: &'a [Option<Versioned<Counter>>],
}

/// パスワードを忘れた方: a reset link to the registered address of an active account —
/// locked or not (SEC-25). The same answer for an unknown, disabled or provisioned login
/// ID and for a throttled mail, and the account itself is not touched (SEC-37).
///
/// Equal work (SEC-37): the mail allowance is counted on the login ID as typed, known or
/// not, and an unknown ID stores an [`UnmatchedReset`] where a known one stores its
/// flow, so both commit the same rows. Earlier links of the account stay alive: opening
/// one ends the others ([`open_reset`]).
pub fn request_reset<R: rand::CryptoRng + ?Sized>(
    account: Option<&Versioned<Account>>,
    (mails, starts): (ResetMails<'_>, StartBudgets<'_>),
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<()> {
    throttle::within_start_budgets(starts, env, (), || {
        let now = env.now;
        let target = active(account).and_then(|a| a.value.email.as_ref().map(|e| (&a.value, e)));
        let event = |detail: &'static str| {
            let ev = AuditEvent::new(AuditKind::PasswordResetRequested, now).detail(detail);
            match target {
                Some((a, _)) => ev.account(&a.id),
                None => ev,
            }
        };
        let Some(key) = mails.keys.first() else {
            return Decision::answer(()).audit(event("throttled"));
        };
        let Ok(hit) = throttle::hit_across(key, mails.counters, now, address_mail_window(env))
        else {
            return Decision::answer(()).audit(event("throttled"));
        };
        // The link is drawn and digested on both paths; only a real one is mailed.
        let (token, link) = PasswordResetLinkToken::issue(env.keys, rng);
        let expires_at = deadline(now, env.policy.password_reset_link_ttl);
        let flow_id = FlowId::generate(rng);
        let decision = Decision::answer(()).charge(hit);
        let Some((account, email)) = target else {
            return decision
                .flow(
                    Expect::Absent,
                    flow_id,
                    FlowState::PasswordReset(ResetState::Unmatched(UnmatchedReset {
                        link,
                        expires_at,
                    })),
                )
                .audit(event("no_account"));
        };
        let url = urls.link(|p| &p.password_reset, token.expose_secret());
        decision
            .flow(
                Expect::Absent,
                flow_id.clone(),
                FlowState::PasswordReset(ResetState::AwaitingLinkOpen(AwaitingResetLink {
                    account: account.id.clone(),
                    link,
                    expires_at,
                })),
            )
            .audit(event("sent").flow(&flow_id))
            .mail(
                email.clone(),
                MailMessage::PasswordResetLink(MailLink {
                    url,
                    token,
                    expires_at,
                }),
            )
    })
}

fn reset_of<'a>(
    found: Option<Found<'a>>,
) -> Option<(&'a Versioned<FlowRecord>, &'a TokenDigest, &'a ResetState)> {
    match found {
        Some((record, digest)) => match &record.value.state {
            FlowState::PasswordReset(s) => Some((record, digest, s)),
            _ => None,
        },
        None => None,
    }
}

fn replace_reset(record: &Versioned<FlowRecord>, state: ResetState) -> Write {
    Write::Flow {
        expect: Expect::At(record.version),
        id: record.value.id.clone(),
        state: FlowState::PasswordReset(state),
    }
}

/// POST of the reset link: consumes it (single use, SEC-38) and binds the reset to this
/// browser — for an account that is still active. The account's other open reset links
/// end (one reset in progress at most); a request never ends them, so an outsider's
/// request cannot kill the member's link.
pub fn open_reset<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    held: AccountView<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<FlowHandle> {
    let (Some((record, digest, state)), Some(account)) = (reset_of(found), held.active()) else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    match state.clone().open_link(digest, env, rng) {
        Err(r) => Decision::reject(r),
        Ok((next, handle)) => Decision::answer(handle)
            .writes(Ends::reset(ResetEndReason::Superseded).writes(
                held.flows,
                env.now,
                Some(&record.value.id),
            ))
            .write(replace_reset(record, next))
            .audit(
                AuditEvent::new(AuditKind::PasswordResetLinkOpened, env.now)
                    .account(&account.value.id)
                    .flow(&record.value.id),
            ),
    }
}

/// A reset whose roster re-check (if any) is settled: the state to keep and the
/// counter the check spent. The new password comes next.
#[derive(Debug)]
pub struct ResetChecked {
    state: ResetState,
    changed: bool,
    hits: Vec<CounterHit>,
}

impl ResetChecked {
    /// The new password was refused: keep a roster check that just passed (so the member
    /// need not repeat it) and answer `rejection`.
    pub fn refuse<T>(self, found: Option<Found<'_>>, rejection: Rejection) -> Decision<T> {
        let mut d = Decision::reject(rejection).writes(self.hits.into_iter().map(Write::Counter));
        if self.changed
            && let Some((record, _, _)) = reset_of(found)
        {
            d = d.write(replace_reset(record, self.state));
        }
        d
    }
}

/// The first half of completing a reset: the flow is at its new-password step for an
/// active account, and — when the policy asks — the claim matches the account's roster
/// entry, counted on the flow and the member before anything is compared (SEC-09).
pub fn check_reset_claim<'a>(
    found: Option<Found<'_>>,
    account: Option<&'a Versioned<Account>>,
    claim: Option<&IdentityClaim>,
    record: Option<&MemberRecord>,
    member_checks: Option<&Versioned<Counter>>,
    env: Env<'_>,
) -> Result<(ResetChecked, &'a Versioned<Account>), Box<Decision<()>>> {
    let (Some((record_f, digest, stored)), Some(account)) = (reset_of(found), active(account))
    else {
        return Err(Box::new(Decision::reject(Rejection::WrongStep)));
    };
    let now = env.now;
    let mut state = stored.clone();
    let mut hits = Vec::new();
    let needs_check = env.policy.recovery_requires_identity
        && matches!(&state, ResetState::AwaitingNewPassword(s) if s.handle == *digest && !s.identity_confirmed);
    if needs_check && let Some(claim) = claim {
        let member = &account.value.member;
        let member_exhausted = match throttle::hit(
            &CounterKey::IdentityChecks(member.clone()),
            member_checks,
            now,
            identity_member_window(env),
        ) {
            Ok(hit) => {
                hits.push(hit);
                false
            }
            Err(_) => true,
        };
        let step = state.check_identity(
            digest,
            RosterCheck {
                claim,
                record,
                member_exhausted,
            },
            env,
        );
        if let Err(rejection) = step.result {
            let kind = if member_exhausted {
                AuditKind::IdentityMemberBlocked
            } else {
                AuditKind::IdentityFailed
            };
            let mut d = Decision::reject(rejection.clone())
                .writes(hits.into_iter().map(Write::Counter))
                .audit(
                    AuditEvent::new(kind, now)
                        .account(&account.value.id)
                        .member(member)
                        .flow(&record_f.value.id)
                        .detail(rejection.code()),
                );
            if step.state != *stored {
                d = d.write(replace_reset(record_f, step.state));
            }
            return Err(Box::new(d));
        }
        state = step.state;
    }
    if let Err(r) = state.ready_to_complete(digest, env) {
        return Err(Box::new(Decision::reject(r)));
    }
    let checked = ResetChecked {
        changed: state != *stored,
        state,
        hits,
    };
    Ok((checked, account))
}

/// The second half: the new password (checked and hashed by the driver), the cleared
/// lockout (SEC-25), a new stamp, every other open flow of the account ended (SEC-34)
/// and the notice (SEC-38, SEC-43) — in one commit. The member is not logged in.
pub fn complete_reset<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    held: AccountView<'_>,
    checked: ResetChecked,
    password_hash: PasswordHashString,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<()> {
    let (Some((record, _, _)), Some(account)) = (reset_of(found), held.active()) else {
        return Decision::reject(Rejection::WrongStep);
    };
    let now = env.now;
    let mut updated = account.value.clone();
    updated.password_hash = password_hash;
    updated.security_stamp = SecurityStamp::generate(rng);
    updated.password_failures = 0;
    updated.last_password_failure_at = None;
    updated.otp_failures = 0;
    updated.otp_cooldown_until = None;
    let mut d = Decision::answer(())
        .writes(Ends::ALL.writes(held.flows, now, Some(&record.value.id)))
        .write(replace_reset(record, checked.state.complete(now)))
        .writes(checked.hits.into_iter().map(Write::Counter))
        .audit(
            AuditEvent::new(AuditKind::PasswordResetCompleted, now)
                .account(&updated.id)
                .flow(&record.value.id),
        );
    d = d.mail_if(
        updated.email.as_ref(),
        MailMessage::PasswordChanged { at: now },
    );
    if env.policy.factors.reset_removes_factors && !updated.factors.is_empty() {
        // Only when the policy says so (and the assurance report says what it costs): a
        // reset by mailbox (and card data) takes the 認証アプリ and リカバリーコード away,
        // so the next login falls back to the 暗証キー. By default a reset never
        // bypasses an enrolled factor.
        // One notice per kind of authenticator taken away (SEC-43).
        let mut removed = Vec::new();
        if updated.factors.totp.is_some() {
            removed.push(crate::model::FactorKind::Totp);
        }
        if !updated.factors.passkeys.is_empty() {
            removed.push(crate::model::FactorKind::Passkey);
        }
        updated.factors = crate::model::Factors::default();
        d = d.audit(
            AuditEvent::new(AuditKind::FactorRemoved, now)
                .account(&updated.id)
                .detail("reset"),
        );
        if let Some(email) = &updated.email {
            for factor in removed {
                d = d.mail(
                    email.clone(),
                    MailMessage::SecondFactorRemoved { factor, at: now },
                );
            }
        }
    }
    d.account(Expect::At(account.version), updated)
}
