//! The pure registration core (R1–R5, R2') driven by an arbitrary list of operations,
//! with a clock that starts anywhere in `time`'s range (its very ends included) and
//! jumps by any `i32` number of seconds, and policy knobs turned to any value
//! `Policy::validate` accepts. Randomness comes from a `StdRng` seeded by the input.
//!
//! Every operation is checked against a small reference model; on top of that:
//! - no state reaches AwaitingCredentials without a roster record that matched the claim
//!   (and a 認証キー that came back through link 2) or temporary credentials;
//! - a link (1 or 2) or 認証キー accepted once is never accepted again, and every spent
//!   digest keeps answering "already used";
//! - nothing is accepted at or after its `expires_at`, and every `expires_at` is
//!   `now + ttl` (or, past the end of time, not before `now`);
//! - attempt counters only grow by one per counted attempt and never past the budget in
//!   force;
//! - no transition, status check or `purge_after` panics.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::domain::{BirthDate, CardNumber, EmailAddress, KanaName};
use kenpo_auth::flow::registration::{
    self, DeadReason, LinkStatus, RegistrationState, RosterCheck,
};
use kenpo_auth::flow::{Env, FlowState, IdentityClaim};
use kenpo_auth::ports::{AccountId, MemberId, MemberRecord, Relation, SecurityStamp};
use kenpo_auth::token::{
    AuthKey, DigestKeyring, FlowHandle, RegistrationLinkToken, TokenDigest, VerificationLinkToken,
};
use kenpo_auth::{Policy, Rejection};
use kenpo_auth_fuzz::{Knob, Start, advance, apply_knob, assert_deadline, base_policy, keyring};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::OffsetDateTime;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    seed: u64,
    start: Start,
    offset: i32,
    email: &'a str,
    roster: Roster<'a>,
    ops: Vec<Op<'a>>,
}

/// The roster entry the flow is meant to find; unparsable fields fall back to fictional
/// defaults.
#[derive(Arbitrary, Debug)]
struct Roster<'a> {
    card: &'a str,
    birth: &'a str,
    kana: Option<&'a str>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum LinkPick {
    /// The live link of this flow.
    Right,
    /// A fresh random token's digest.
    Random,
    /// A digest accepted before (any flow).
    Spent(u8),
    /// The right token's text under another purpose.
    OtherPurpose,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum HandlePick {
    /// The newest handle of this flow.
    Current,
    /// Any handle issued before (any flow).
    Old(u8),
    /// A fresh random handle.
    Random,
}

#[derive(Arbitrary, Debug)]
enum Field<'a> {
    Roster,
    Text(&'a str),
}

#[derive(Arbitrary, Debug)]
enum KanaField<'a> {
    Absent,
    Roster,
    Text(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Claim<'a> {
    card: Field<'a>,
    birth: Field<'a>,
    kana: KanaField<'a>,
}

#[derive(Arbitrary, Debug)]
enum RecordPick<'a> {
    None,
    Roster {
        eligible: bool,
        kana: bool,
    },
    Other {
        card: &'a str,
        birth: &'a str,
        kana: Option<&'a str>,
        eligible: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum KeyPick<'a> {
    Right,
    Wrong,
    Text(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// R1 again: a new flow replaces the current one.
    Restart(Option<&'a str>),
    /// R2 GET.
    Link1Status(LinkPick),
    /// R2 POST.
    OpenLink(LinkPick),
    /// R3.
    VerifyIdentity {
        handle: HandlePick,
        claim: Claim<'a>,
        record: RecordPick<'a>,
        member_exhausted: bool,
    },
    /// R2'.
    AcceptTemporary(HandlePick),
    /// R4 GET.
    Link2Status(LinkPick),
    /// R4 POST.
    ConfirmAuthKey { link: LinkPick, key: KeyPick<'a> },
    /// R5 (ready_to_complete, then complete when ready).
    Complete(HandlePick),
    /// The clock moves (either way).
    Advance(i32),
    /// A policy setting changes.
    Knob(Knob),
}

/// What the harness knows about the current flow.
struct Flow {
    state: RegistrationState,
    link1: RegistrationLinkToken,
    handle: Option<TokenDigest>,
    link2: Option<VerificationLinkToken>,
    auth_key: Option<AuthKey>,
    /// Set only when the harness's own roster check matched at R3.
    verified_member: Option<MemberId>,
    /// Set only when R2' was accepted.
    temporary: Option<(AccountId, MemberId)>,
    /// Digests this flow accepted (link 1, link 2): must stay "used".
    accepted: Vec<TokenDigest>,
    /// Largest budgets in force since the flow started.
    max_identity_tries: u32,
    max_auth_key_tries: u32,
}

struct Harness {
    keys: DigestKeyring,
    policy: Policy,
    now: OffsetDateTime,
    rng: StdRng,
    roster: MemberRecord,
    flow: Flow,
    /// Every link digest ever accepted, across flows.
    accepted_links: Vec<TokenDigest>,
    /// Every handle ever issued, across flows.
    handles: Vec<TokenDigest>,
}

fn default_record(roster: &Roster<'_>) -> MemberRecord {
    let card = CardNumber::parse(roster.card)
        .or_else(|_| CardNumber::parse("999-123456-00"))
        .expect("fallback card");
    let birth = BirthDate::parse(roster.birth)
        .or_else(|_| BirthDate::parse("1990-04-01"))
        .expect("fallback birth date");
    let kana = roster
        .kana
        .map(|k| KanaName::parse(k).or_else(|_| KanaName::parse("ヤマダタロウ")))
        .transpose()
        .expect("fallback kana");
    MemberRecord::new(
        MemberId::new("member-1"),
        card,
        birth,
        kana,
        Relation::Insured,
        true,
    )
}

fn default_email(s: &str) -> EmailAddress {
    EmailAddress::parse(s)
        .or_else(|_| EmailAddress::parse("taro.yamada@example.jp"))
        .expect("fallback e-mail")
}

/// The harness's own roster check: equal card, equal birth date, equal kana when both
/// sides have one, member eligible.
fn roster_matches(claim: &IdentityClaim, r: &MemberRecord) -> bool {
    let kana_ok = match (&claim.kana_name, &r.kana_name) {
        (Some(c), Some(k)) => c == k,
        _ => true,
    };
    claim.card_number == r.card_number && claim.birth_date == r.birth_date && kana_ok && r.eligible
}

fn expires_at(s: &RegistrationState) -> Option<OffsetDateTime> {
    match s {
        RegistrationState::AwaitingLinkOpen(s) => Some(s.expires_at),
        RegistrationState::AwaitingIdentity(s) => Some(s.expires_at),
        RegistrationState::AwaitingAuthKey(s) => Some(s.expires_at),
        RegistrationState::AwaitingCredentials(s) => Some(s.expires_at),
        _ => None,
    }
}

/// The transition environment from the harness's fields (so `rng` stays borrowable).
macro_rules! env {
    ($h:expr) => {
        Env {
            now: $h.now,
            policy: &$h.policy,
            keys: &$h.keys,
        }
    };
}

/// R1: a new flow, checked.
fn new_flow(
    keys: &DigestKeyring,
    policy: &Policy,
    now: OffsetDateTime,
    rng: &mut StdRng,
    email: EmailAddress,
) -> Flow {
    let env = Env { now, policy, keys };
    let (state, link1) = registration::start(email.clone(), env, rng);
    assert_eq!(state.email, email);
    assert_eq!(state.link, link1.digest(keys), "link 1 digest");
    assert_deadline(
        "link 1",
        state.expires_at,
        now,
        policy.registration_link_ttl,
    );
    Flow {
        state: RegistrationState::AwaitingLinkOpen(state),
        link1,
        handle: None,
        link2: None,
        auth_key: None,
        verified_member: None,
        temporary: None,
        accepted: Vec::new(),
        max_identity_tries: policy.identity_tries_per_flow,
        max_auth_key_tries: policy.auth_key_tries,
    }
}

impl Harness {
    fn random_digest(&mut self) -> TokenDigest {
        RegistrationLinkToken::generate(&mut self.rng).digest(&self.keys)
    }

    fn link1(&mut self, pick: LinkPick) -> TokenDigest {
        match pick {
            LinkPick::Right => self.flow.link1.digest(&self.keys),
            LinkPick::Random => self.random_digest(),
            LinkPick::Spent(i) => self.pick_spent(i),
            LinkPick::OtherPurpose => VerificationLinkToken::parse(self.flow.link1.expose_secret())
                .expect("same shape")
                .digest(&self.keys),
        }
    }

    fn link2(&mut self, pick: LinkPick) -> TokenDigest {
        let Some(link2) = self.flow.link2.clone() else {
            return self.link1(pick);
        };
        match pick {
            LinkPick::Right => link2.digest(&self.keys),
            LinkPick::Random => self.random_digest(),
            LinkPick::Spent(i) => self.pick_spent(i),
            LinkPick::OtherPurpose => RegistrationLinkToken::parse(link2.expose_secret())
                .expect("same shape")
                .digest(&self.keys),
        }
    }

    fn pick_spent(&mut self, i: u8) -> TokenDigest {
        match self.accepted_links.len() {
            0 => self.random_digest(),
            n => self.accepted_links[usize::from(i) % n],
        }
    }

    fn handle(&mut self, pick: HandlePick) -> TokenDigest {
        match (pick, self.flow.handle, self.handles.len()) {
            (HandlePick::Current, Some(h), _) => h,
            (HandlePick::Old(i), _, n) if n > 0 => self.handles[usize::from(i) % n],
            _ => FlowHandle::generate(&mut self.rng).digest(&self.keys),
        }
    }

    fn accept_link(&mut self, d: TokenDigest) {
        assert!(
            !self.accepted_links.contains(&d),
            "a link was accepted a second time"
        );
        self.accepted_links.push(d);
        self.flow.accepted.push(d);
    }

    fn issue_handle(&mut self, h: &FlowHandle) -> TokenDigest {
        let d = h.digest(&self.keys);
        assert!(!self.handles.contains(&d), "a handle was issued twice");
        self.handles.push(d);
        self.flow.handle = Some(d);
        d
    }

    fn open_link(&mut self, pick: LinkPick) {
        let d = self.link1(pick);
        let before = self.flow.state.clone();
        let status = before.link1_status(&d, self.now);
        let live = match &before {
            RegistrationState::AwaitingLinkOpen(s) if s.link == d => Some(s.clone()),
            _ => None,
        };
        let expect_ok = live.as_ref().is_some_and(|s| self.now < s.expires_at);
        let result = before.clone().open_link(&d, env!(self), &mut self.rng);
        match (&status, &result) {
            (LinkStatus::Valid { .. }, Ok(_))
            | (LinkStatus::Used, Err(Rejection::LinkUsed))
            | (LinkStatus::Expired, Err(Rejection::Expired))
            | (LinkStatus::Invalid, Err(Rejection::LinkInvalid)) => {}
            _ => panic!("GET said {status:?} but POST did {result:?}"),
        }
        match result {
            Ok((next, handle)) => {
                assert!(expect_ok, "link 1 accepted when it should not be");
                let s = live.expect("accepted from AwaitingLinkOpen");
                self.accept_link(d);
                let hd = self.issue_handle(&handle);
                let RegistrationState::AwaitingIdentity(n) = &next else {
                    panic!("R2 must lead to AwaitingIdentity, got {next:?}");
                };
                assert_eq!(n.email, s.email);
                assert_eq!(n.link, d);
                assert_eq!(n.handle, hd);
                assert_eq!(n.attempts, 0);
                assert_deadline(
                    "identity step",
                    n.expires_at,
                    self.now,
                    self.policy.identity_step_ttl,
                );
                self.flow.state = next;
                assert_eq!(self.flow.state.link1_status(&d, self.now), LinkStatus::Used);
            }
            Err(_) => assert!(!expect_ok, "live link 1 refused"),
        }
    }

    fn verify_identity(
        &mut self,
        handle: HandlePick,
        claim: &Claim<'_>,
        record: &RecordPick<'_>,
        member_exhausted: bool,
    ) {
        let card = match claim.card {
            Field::Roster => self.roster.card_number.clone(),
            Field::Text(t) => match CardNumber::parse(t) {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let birth = match claim.birth {
            Field::Roster => self.roster.birth_date,
            Field::Text(t) => match BirthDate::parse(t) {
                Ok(b) => b,
                Err(_) => return,
            },
        };
        let kana = match claim.kana {
            KanaField::Absent => None,
            KanaField::Roster => self.roster.kana_name.clone(),
            KanaField::Text(t) => match KanaName::parse(t) {
                Ok(k) => Some(k),
                Err(_) => return,
            },
        };
        let claim = IdentityClaim {
            card_number: card,
            birth_date: birth,
            kana_name: kana,
        };
        let record = match record {
            RecordPick::None => None,
            RecordPick::Roster { eligible, kana } => {
                let mut r = self.roster.clone();
                r.eligible = *eligible;
                if !kana {
                    r.kana_name = None;
                }
                Some(r)
            }
            RecordPick::Other {
                card,
                birth,
                kana,
                eligible,
            } => {
                let (Ok(c), Ok(b)) = (CardNumber::parse(card), BirthDate::parse(birth)) else {
                    return;
                };
                let k = match kana.map(KanaName::parse).transpose() {
                    Ok(k) => k,
                    Err(_) => return,
                };
                Some(MemberRecord::new(
                    MemberId::new("member-other"),
                    c,
                    b,
                    k,
                    Relation::Dependent,
                    *eligible,
                ))
            }
        };
        let d = self.handle(handle);
        let before = self.flow.state.clone();
        let budget = self.policy.identity_tries_per_flow;
        let step = before.clone().verify_identity(
            &d,
            RosterCheck {
                claim: &claim,
                record: record.as_ref(),
                member_exhausted,
            },
            env!(self),
            &mut self.rng,
        );
        let live = match &before {
            RegistrationState::AwaitingIdentity(s)
                if s.handle == d && self.now < s.expires_at && s.attempts < budget =>
            {
                Some(s.clone())
            }
            _ => None,
        };
        let Some(s) = live else {
            assert_eq!(step.state, before, "a refused R3 must not change the flow");
            assert!(step.result.is_err(), "R3 accepted off its step");
            return;
        };
        let matched = record
            .as_ref()
            .filter(|r| roster_matches(&claim, r))
            .filter(|_| !member_exhausted);
        match (matched, step.result) {
            (Some(r), Ok(v)) => {
                let RegistrationState::AwaitingAuthKey(n) = &step.state else {
                    panic!("R3 success must lead to AwaitingAuthKey");
                };
                assert_eq!(n.member, r.member_id);
                assert_eq!(v.member, r.member_id);
                assert_eq!(n.email, s.email);
                assert_eq!(n.attempts, 0);
                assert_eq!(n.link, v.link.digest(&self.keys));
                assert_eq!(n.auth_key, v.auth_key.digest(&self.keys, &n.link));
                assert_eq!(n.expires_at, v.expires_at);
                assert_deadline(
                    "link 2",
                    n.expires_at,
                    self.now,
                    self.policy.verification_link_ttl,
                );
                assert!(n.spent.contains(&s.link) && n.spent.contains(&s.handle));
                let want_len = self
                    .policy
                    .auth_key_len
                    .clamp(AuthKey::MIN_LEN, AuthKey::MAX_LEN);
                assert_eq!(v.auth_key.expose_secret().len(), want_len);
                self.flow.verified_member = Some(r.member_id.clone());
                self.flow.link2 = Some(v.link);
                self.flow.auth_key = Some(v.auth_key);
                self.flow.max_auth_key_tries = self.policy.auth_key_tries;
            }
            (Some(_), Err(e)) => panic!("matching roster record refused: {e:?}"),
            (None, Ok(_)) => panic!("R3 accepted without a matching roster record"),
            (None, Err(e)) => {
                // SEC-09: an exhausted member budget answers exactly like a failed match.
                assert_eq!(e, Rejection::IdentityNotConfirmed);
                let attempts = s.attempts + 1;
                assert!(attempts <= budget);
                if attempts >= budget {
                    let RegistrationState::Dead(dead) = &step.state else {
                        panic!("the last identity try must end the flow");
                    };
                    assert_eq!(dead.reason, DeadReason::IdentityAttemptsExhausted);
                    assert_eq!(dead.at, self.now);
                } else {
                    let RegistrationState::AwaitingIdentity(n) = &step.state else {
                        panic!("a failed identity try must stay at R3");
                    };
                    assert_eq!(n.attempts, attempts, "one try counted");
                    assert_eq!(
                        (n.handle, n.link, n.expires_at),
                        (s.handle, s.link, s.expires_at)
                    );
                }
            }
        }
        self.flow.state = step.state;
    }

    fn accept_temporary(&mut self, handle: HandlePick) {
        let d = self.handle(handle);
        let before = self.flow.state.clone();
        let account = AccountId::generate(&mut self.rng);
        let member = MemberId::new("member-provisioned");
        let expect_ok = matches!(&before,
            RegistrationState::AwaitingIdentity(s) if s.handle == d && self.now < s.expires_at);
        match before.clone().accept_temporary_credentials(
            &d,
            account.clone(),
            member.clone(),
            SecurityStamp::generate(&mut self.rng),
            env!(self),
            &mut self.rng,
        ) {
            Ok((next, h)) => {
                assert!(expect_ok, "R2' accepted off its step or after expiry");
                let hd = self.issue_handle(&h);
                let RegistrationState::AwaitingCredentials(n) = &next else {
                    panic!("R2' must lead to AwaitingCredentials");
                };
                assert_eq!(n.handle, hd);
                assert_eq!(n.proof.provisioned_account(), Some(&account));
                assert_eq!(n.proof.member(), &member);
                assert_deadline(
                    "credentials step",
                    n.expires_at,
                    self.now,
                    self.policy.credentials_step_ttl,
                );
                self.flow.temporary = Some((account, member));
                self.flow.state = next;
            }
            Err(e) => {
                assert!(!expect_ok, "R2' refused on its step: {e:?}");
            }
        }
    }

    fn confirm_auth_key(&mut self, link: LinkPick, key: &KeyPick<'_>) {
        let key = match (key, &self.flow.auth_key) {
            (KeyPick::Right, Some(k)) => k.clone(),
            (KeyPick::Right | KeyPick::Wrong, _) => {
                AuthKey::generate(&mut self.rng, self.policy.auth_key_len)
            }
            (KeyPick::Text(t), _) => match AuthKey::parse(t) {
                Ok(k) => k,
                Err(_) => return,
            },
        };
        let d = self.link2(link);
        let before = self.flow.state.clone();
        let budget = self.policy.auth_key_tries;
        let status = before.link2_status(&d, self.now);
        let step = before
            .clone()
            .confirm_auth_key(&d, &key, env!(self), &mut self.rng);
        let live = match &before {
            RegistrationState::AwaitingAuthKey(s) if s.link == d && self.now < s.expires_at => {
                Some(s.clone())
            }
            _ => None,
        };
        let Some(s) = live else {
            assert_eq!(step.state, before, "a refused R4 must not change the flow");
            let want = match status {
                LinkStatus::Used => Rejection::LinkUsed,
                LinkStatus::Expired => Rejection::Expired,
                LinkStatus::Invalid => Rejection::LinkInvalid,
                LinkStatus::Valid { .. } => panic!("GET says valid for a dead link 2"),
                _ => panic!("unknown link status"),
            };
            assert_eq!(step.result.err(), Some(want));
            return;
        };
        assert!(
            matches!(status, LinkStatus::Valid { .. }),
            "GET disagrees with POST"
        );
        if s.attempts >= budget {
            assert_eq!(step.state, before);
            assert_eq!(step.result.err(), Some(Rejection::AuthKeyAttemptsExhausted));
            return;
        }
        let right = self
            .flow
            .auth_key
            .as_ref()
            .is_some_and(|k| k.expose_secret() == key.expose_secret());
        match step.result {
            Ok(h) => {
                assert!(right, "R4 accepted a wrong 認証キー");
                assert!(
                    self.flow.verified_member.as_ref() == Some(&s.member),
                    "R4 for a member the roster did not confirm"
                );
                self.accept_link(d);
                let hd = self.issue_handle(&h);
                let RegistrationState::AwaitingCredentials(n) = &step.state else {
                    panic!("R4 success must lead to AwaitingCredentials");
                };
                assert_eq!(n.handle, hd);
                assert_eq!(n.proof.member(), &s.member);
                assert_eq!(n.proof.provisioned_account(), None);
                assert!(n.spent.contains(&d), "link 2 must be kept as spent");
                assert_deadline(
                    "credentials step",
                    n.expires_at,
                    self.now,
                    self.policy.credentials_step_ttl,
                );
                assert_eq!(step.state.link2_status(&d, self.now), LinkStatus::Used);
            }
            Err(e) => {
                assert!(!right, "R4 refused the right 認証キー: {e:?}");
                let attempts = s.attempts + 1;
                if attempts >= budget {
                    assert_eq!(e, Rejection::AuthKeyAttemptsExhausted);
                    let RegistrationState::Dead(dead) = &step.state else {
                        panic!("the last wrong 認証キー must end the flow");
                    };
                    assert_eq!(dead.reason, DeadReason::AuthKeyAttemptsExhausted);
                    assert!(dead.spent.contains(&d));
                } else {
                    assert_eq!(e, Rejection::AuthKeyIncorrect);
                    let RegistrationState::AwaitingAuthKey(n) = &step.state else {
                        panic!("a wrong 認証キー must stay at R4");
                    };
                    assert_eq!(n.attempts, attempts, "one try counted");
                    assert_eq!(
                        (n.link, n.auth_key, n.expires_at),
                        (s.link, s.auth_key, s.expires_at)
                    );
                }
            }
        }
        self.flow.state = step.state;
    }

    fn complete(&mut self, handle: HandlePick) {
        let d = self.handle(handle);
        let expect_ok = matches!(&self.flow.state,
            RegistrationState::AwaitingCredentials(s) if s.handle == d && self.now < s.expires_at);
        let ready = self.flow.state.ready_to_complete(&d, self.now);
        let Ok(s) = ready else {
            assert!(!expect_ok, "R5 refused on its step");
            return;
        };
        assert!(expect_ok, "R5 ready off its step or after expiry");
        let account = match s.proof.provisioned_account() {
            Some(a) => a.clone(),
            None => AccountId::generate(&mut self.rng),
        };
        let keys_before = self.flow.state.lookup_keys_for_test();
        let next = self.flow.state.clone().complete(account.clone(), self.now);
        let RegistrationState::Completed(c) = &next else {
            panic!("complete must lead to Completed");
        };
        assert_eq!(c.account, account);
        assert_eq!(c.at, self.now);
        assert_eq!(c.spent, keys_before);
        self.flow.state = next;
    }

    /// Invariants that hold between any two operations.
    fn check(&self) {
        let st = &self.flow.state;
        match st {
            RegistrationState::AwaitingIdentity(s) => assert!(
                s.attempts
                    <= self
                        .flow
                        .max_identity_tries
                        .max(self.policy.identity_tries_per_flow),
                "identity attempts past every budget"
            ),
            RegistrationState::AwaitingAuthKey(s) => {
                assert!(
                    s.attempts <= self.flow.max_auth_key_tries.max(self.policy.auth_key_tries),
                    "認証キー attempts past every budget"
                );
                assert!(self.flow.auth_key.is_some() && self.flow.verified_member.is_some());
            }
            RegistrationState::AwaitingCredentials(s) => {
                let by_roster = s.proof.provisioned_account().is_none()
                    && self.flow.verified_member.as_ref() == Some(s.proof.member())
                    && self.flow.accepted.len() == 2;
                let by_temporary = self.flow.temporary.as_ref().is_some_and(|(a, m)| {
                    s.proof.provisioned_account() == Some(a) && s.proof.member() == m
                });
                assert!(
                    by_roster || by_temporary,
                    "AwaitingCredentials without a roster match or temporary credentials"
                );
            }
            _ => {}
        }
        // Spent digests keep answering "already used".
        let keys = st.lookup_keys_for_test();
        for d in &self.flow.accepted {
            assert!(keys.contains(d), "an accepted link was forgotten");
            assert_eq!(st.link1_status(d, self.now), LinkStatus::Used);
            assert_eq!(st.link2_status(d, self.now), LinkStatus::Used);
        }
        let flow = FlowState::Registration(st.clone());
        let purge = flow.purge_after();
        if let Some(e) = expires_at(st) {
            assert!(purge >= e, "purged before it expires");
        }
        assert!(flow.account().is_some() == matches!(st, RegistrationState::Completed(_)));
    }
}

/// `lookup_keys` is crate-private; `FlowState::lookup_keys` is the public way to it.
trait LookupKeys {
    fn lookup_keys_for_test(&self) -> Vec<TokenDigest>;
}

impl LookupKeys for RegistrationState {
    fn lookup_keys_for_test(&self) -> Vec<TokenDigest> {
        FlowState::Registration(self.clone()).lookup_keys()
    }
}

fuzz_target!(|input: Input<'_>| {
    let now = kenpo_auth_fuzz::start_instant(input.start, input.offset);
    let roster = default_record(&input.roster);
    let keys = keyring();
    let policy = base_policy();
    let mut rng = StdRng::seed_from_u64(input.seed);
    let flow = new_flow(&keys, &policy, now, &mut rng, default_email(input.email));
    let mut h = Harness {
        keys,
        policy,
        now,
        rng,
        roster,
        flow,
        accepted_links: Vec::new(),
        handles: Vec::new(),
    };
    h.check();
    for op in input.ops.iter().take(64) {
        match op {
            Op::Restart(email) => {
                let email = default_email(email.unwrap_or(""));
                h.flow = new_flow(&h.keys, &h.policy, h.now, &mut h.rng, email);
            }
            Op::Link1Status(pick) => {
                let d = h.link1(*pick);
                let st = h.flow.state.link1_status(&d, h.now);
                if let LinkStatus::Valid { expires_at } = st {
                    assert!(h.now < expires_at, "GET says valid at or after expiry");
                    assert!(
                        !h.accepted_links.contains(&d),
                        "GET says valid for a used link"
                    );
                }
            }
            Op::OpenLink(pick) => h.open_link(*pick),
            Op::VerifyIdentity {
                handle,
                claim,
                record,
                member_exhausted,
            } => h.verify_identity(*handle, claim, record, *member_exhausted),
            Op::AcceptTemporary(handle) => h.accept_temporary(*handle),
            Op::Link2Status(pick) => {
                let d = h.link2(*pick);
                let st = h.flow.state.link2_status(&d, h.now);
                if let LinkStatus::Valid { expires_at } = st {
                    assert!(h.now < expires_at, "GET says valid at or after expiry");
                    assert!(
                        !h.accepted_links.contains(&d),
                        "GET says valid for a used link"
                    );
                }
            }
            Op::ConfirmAuthKey { link, key } => h.confirm_auth_key(*link, key),
            Op::Complete(handle) => h.complete(*handle),
            Op::Advance(secs) => h.now = advance(h.now, *secs),
            Op::Knob(k) => {
                if apply_knob(&mut h.policy, *k) {
                    h.flow.max_identity_tries = h
                        .flow
                        .max_identity_tries
                        .max(h.policy.identity_tries_per_flow);
                    h.flow.max_auth_key_tries =
                        h.flow.max_auth_key_tries.max(h.policy.auth_key_tries);
                }
            }
        }
        h.check();
    }
});
