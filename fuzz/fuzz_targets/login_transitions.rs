//! The pure login core (L1–L4) driven by an arbitrary list of operations over several
//! challenges of one account, with a clock that starts anywhere in `time`'s range (its
//! very ends included) and jumps by any `i32` number of seconds, and policy knobs turned
//! to any value `Policy::validate` accepts. Randomness comes from a `StdRng` seeded by
//! the input.
//!
//! Every operation is checked against a small reference model; on top of that:
//! - a 暗証キー verifies at most once per challenge, only the current code of that
//!   challenge, never at or after its `expires_at`, never after a heartbeat lapse, a
//!   close, an end (superseded, account changed) or exhaustion;
//! - an ended challenge stays ended, unchanged, whatever comes after;
//! - attempt counters grow by one per wrong code and never past the budget in force;
//!   resends never past the cap; the account counter follows SEC-29;
//! - no transition or `purge_after` panics.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::Policy;
use kenpo_auth::Rejection;
use kenpo_auth::flow::login::{self, LoginEndReason, LoginState};
use kenpo_auth::flow::{Env, FlowState};
use kenpo_auth::ports::AccountId;
use kenpo_auth::token::{DigestKeyring, OtpChallengeId, OtpCode, TokenDigest};
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
    ops: Vec<Op<'a>>,
}

#[derive(Arbitrary, Debug)]
enum CodePick<'a> {
    /// The challenge's current code.
    Right,
    /// An earlier code of the challenge (before a resend).
    Old(u8),
    /// A fresh random code.
    Wrong,
    /// Another challenge's current code.
    Foreign(u8),
    /// What the member typed.
    Text(&'a str),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ChallengePick {
    /// The challenge's own handle.
    Own,
    /// Another challenge's handle.
    Other(u8),
    /// A random handle.
    Random,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EndReason {
    Superseded,
    AccountChanged,
}

#[derive(Arbitrary, Debug)]
enum Op<'a> {
    /// L1: a new challenge; optionally ends the open ones as superseded (the portal does).
    Login { supersede: bool },
    /// L2.
    Verify {
        ch: u8,
        with: ChallengePick,
        code: CodePick<'a>,
    },
    /// L4.
    Resend { ch: u8, with: ChallengePick },
    /// L3 close.
    Close { ch: u8, with: ChallengePick },
    /// L3 heartbeat.
    Heartbeat { ch: u8, with: ChallengePick },
    /// A newer login or an account change ends the challenge.
    End { ch: u8, reason: EndReason },
    /// The clock moves (either way).
    Advance(i32),
    /// A policy setting changes.
    Knob(Knob),
}

struct Challenge {
    state: LoginState,
    digest: TokenDigest,
    /// Every code issued, the current one last.
    codes: Vec<OtpCode>,
    /// Successful verifications (at most one).
    authenticated: u32,
    /// Largest budgets in force since the challenge started.
    max_tries: u32,
    max_resends: u32,
}

struct Harness {
    keys: DigestKeyring,
    policy: Policy,
    now: OffsetDateTime,
    rng: StdRng,
    account: AccountId,
    challenges: Vec<Challenge>,
    account_failures: u32,
}

macro_rules! env {
    ($h:expr) => {
        Env {
            now: $h.now,
            policy: &$h.policy,
            keys: &$h.keys,
        }
    };
}

/// Whether the heartbeat policy says the screen is gone. `None` when the deadline is past
/// the end of time (then the model does not predict which way the core decides).
fn lapsed(policy: &Policy, last_seen: OffsetDateTime, now: OffsetDateTime) -> Option<bool> {
    match policy.otp_screen_heartbeat {
        None => Some(false),
        Some(hb) => last_seen.checked_add(hb).map(|t| now >= t),
    }
}

impl Harness {
    fn pick(&self, ch: u8) -> Option<usize> {
        match self.challenges.len() {
            0 => None,
            n => Some(usize::from(ch) % n),
        }
    }

    fn handle(&mut self, i: usize, with: ChallengePick) -> TokenDigest {
        match with {
            ChallengePick::Own => self.challenges[i].digest,
            ChallengePick::Other(j) => {
                self.challenges[usize::from(j) % self.challenges.len()].digest
            }
            ChallengePick::Random => OtpChallengeId::generate(&mut self.rng).digest(&self.keys),
        }
    }

    fn login(&mut self, supersede: bool) {
        if supersede {
            for c in &mut self.challenges {
                let open = c.state.is_open();
                match c
                    .state
                    .clone()
                    .end_for(LoginEndReason::Superseded, self.now)
                {
                    Some(next) => {
                        assert!(open, "end_for ended an ended challenge");
                        assert_ended(&next, LoginEndReason::Superseded, self.now);
                        c.state = next;
                    }
                    None => assert!(!open, "end_for left an open challenge open"),
                }
            }
        }
        let (s, id, code) = login::issue(self.account.clone(), env!(self), &mut self.rng);
        let digest = id.digest(&self.keys);
        assert_eq!(s.account, self.account);
        assert_eq!(s.challenge, digest);
        assert_eq!(s.code, code.digest(&self.keys, &digest));
        assert_eq!((s.attempts, s.resends), (0, 0));
        assert_eq!((s.sent_at, s.last_seen_at), (self.now, self.now));
        assert_deadline("otp", s.expires_at, self.now, self.policy.otp_ttl);
        let digits = self
            .policy
            .otp_digits
            .clamp(OtpCode::MIN_DIGITS, OtpCode::MAX_DIGITS);
        assert_eq!(code.expose_secret().len(), digits);
        assert!(
            self.challenges.iter().all(|c| c.digest != digest),
            "two challenges share a handle"
        );
        self.challenges.push(Challenge {
            state: LoginState::AwaitingOtp(s),
            digest,
            codes: vec![code],
            authenticated: 0,
            max_tries: self.policy.otp_tries_per_challenge,
            max_resends: self.policy.otp_resends_per_challenge,
        });
    }

    fn verify(&mut self, ch: u8, with: ChallengePick, pick: &CodePick<'_>) {
        let Some(i) = self.pick(ch) else { return };
        let code = match pick {
            CodePick::Right => self.challenges[i].codes.last().cloned(),
            CodePick::Old(k) => {
                let codes = &self.challenges[i].codes;
                codes.get(usize::from(*k) % codes.len()).cloned()
            }
            CodePick::Wrong => Some(OtpCode::generate(&mut self.rng, self.policy.otp_digits)),
            CodePick::Foreign(j) => {
                let n = self.challenges.len();
                self.challenges[usize::from(*j) % n].codes.last().cloned()
            }
            CodePick::Text(t) => OtpCode::parse(t).ok(),
        };
        let Some(code) = code else { return };
        let d = self.handle(i, with);
        let af = self.account_failures;
        let tries = self.policy.otp_tries_per_challenge;
        let limit = self.policy.otp_failures_per_account;
        let c = &self.challenges[i];
        let before = c.state.clone();
        let current = c.codes.last().map(|k| k.expose_secret().to_owned());
        let v = before.clone().verify(&d, &code, af, env!(self));
        let c = &mut self.challenges[i];

        let s = match &before {
            LoginState::AwaitingOtp(s) if s.challenge == d => s.clone(),
            _ => {
                assert_eq!(v.state, before, "a foreign or ended challenge changed");
                assert_eq!(v.account_failures, af);
                // The accepted code again on its own challenge, within the repeat window:
                // told of the same login (a repeat), never a second one.
                let repeat = matches!(&before, LoginState::Ended(e)
                    if e.reason == LoginEndReason::Authenticated
                        && e.challenge == d
                        && self.now < e.at + self.policy.repeat_window
                        && current.as_deref() == Some(code.expose_secret()));
                match &v.outcome {
                    Ok(consumed) => {
                        assert!(repeat && v.repeated, "an ended challenge logged in again");
                        assert!(consumed.is_repeat());
                    }
                    Err(e) => {
                        assert!(!repeat, "a repeat was refused");
                        assert_eq!(*e, Rejection::OtpInvalid);
                    }
                }
                return;
            }
        };
        match lapsed(&self.policy, s.last_seen_at, self.now) {
            Some(true) => {
                assert!(
                    v.outcome.is_err(),
                    "code accepted after the heartbeat lapsed"
                );
                assert_ended(&v.state, LoginEndReason::HeartbeatLapsed, self.now);
                c.state = v.state;
                return;
            }
            Some(false) => {}
            None => {
                if matches!(&v.state, LoginState::Ended(e) if e.reason == LoginEndReason::HeartbeatLapsed)
                {
                    assert!(v.outcome.is_err());
                    c.state = v.state;
                    return;
                }
            }
        }
        if self.now >= s.expires_at {
            assert!(v.outcome.is_err(), "code accepted at or after expires_at");
            assert_eq!(v.state, before, "an expired code changed the challenge");
            let expected = if s.resends >= self.policy.otp_resends_per_challenge {
                Rejection::OtpInvalid
            } else {
                Rejection::OtpExpired
            };
            assert_eq!(v.outcome.err(), Some(expected));
            return;
        }
        if s.attempts >= tries {
            assert_eq!(v.state, before);
            assert_eq!(v.outcome.err(), Some(Rejection::OtpAttemptsExhausted));
            return;
        }
        let right = current.as_deref() == Some(code.expose_secret());
        let replaced = !right
            && c.codes[..c.codes.len().saturating_sub(1)]
                .iter()
                .any(|k| k.expose_secret() == code.expose_secret());
        if replaced {
            // A code an earlier resend replaced: "type the newest", no try spent.
            assert_eq!(v.outcome.err(), Some(Rejection::OtpReplaced));
            assert_eq!(v.state, before);
            assert_eq!(v.account_failures, af);
            return;
        }
        match &v.outcome {
            Ok(consumed) => {
                assert!(right, "a code that is not the current one verified");
                assert_eq!(c.authenticated, 0, "a code verified twice on one challenge");
                c.authenticated += 1;
                assert_eq!(consumed.account(), &self.account);
                assert_ended(&v.state, LoginEndReason::Authenticated, self.now);
                assert_eq!(v.account_failures, 0);
                assert!(!v.aborted && !v.account_limit_reached);
            }
            Err(e) => {
                assert!(!right, "the current code was refused: {e:?}");
                let attempts = s.attempts + 1;
                let failures = af.saturating_add(1);
                let hit_limit = failures >= limit;
                assert_eq!(v.account_limit_reached, hit_limit);
                if attempts >= tries || hit_limit {
                    assert_eq!(*e, Rejection::OtpAttemptsExhausted);
                    assert!(v.aborted);
                    assert_ended(&v.state, LoginEndReason::AttemptsExhausted, self.now);
                    assert_eq!(v.account_failures, if hit_limit { 0 } else { failures });
                } else {
                    assert_eq!(*e, Rejection::OtpIncorrect);
                    assert!(!v.aborted);
                    assert_eq!(v.account_failures, failures);
                    let LoginState::AwaitingOtp(n) = &v.state else {
                        panic!("a wrong code ended the challenge early");
                    };
                    assert_eq!(n.attempts, attempts, "one try counted");
                    assert!(n.attempts <= tries);
                    assert_eq!(
                        (n.code, n.expires_at, n.resends, n.sent_at),
                        (s.code, s.expires_at, s.resends, s.sent_at)
                    );
                }
            }
        }
        self.account_failures = v.account_failures;
        c.state = v.state;
    }

    fn resend(&mut self, ch: u8, with: ChallengePick) {
        let Some(i) = self.pick(ch) else { return };
        let d = self.handle(i, with);
        let before = self.challenges[i].state.clone();
        let result = before.clone().resend(&d, env!(self), &mut self.rng);
        let s = match &before {
            LoginState::AwaitingOtp(s) if s.challenge == d => s.clone(),
            _ => {
                assert_eq!(result.err(), Some(Rejection::OtpInvalid));
                return;
            }
        };
        let p = &self.policy;
        let expected: Option<Result<(), Rejection>> = match lapsed(p, s.last_seen_at, self.now) {
            Some(true) => Some(Err(Rejection::OtpInvalid)),
            None => None,
            Some(false) if s.attempts >= p.otp_tries_per_challenge => {
                Some(Err(Rejection::OtpAttemptsExhausted))
            }
            Some(false) => match s.sent_at.checked_add(p.otp_resend_cooldown) {
                None => None,
                Some(ready) if self.now < ready => Some(Err(Rejection::TooManyRequests {
                    retry_after: ready - self.now,
                })),
                Some(_) if s.resends >= p.otp_resends_per_challenge => {
                    Some(Err(Rejection::OtpInvalid))
                }
                Some(_) => Some(Ok(())),
            },
        };
        match result {
            Ok((next, code)) => {
                if let Some(e) = expected {
                    assert_eq!(e, Ok(()), "resend accepted against the rules");
                }
                assert!(
                    s.resends < p.otp_resends_per_challenge,
                    "resend past the cap"
                );
                assert!(s.attempts < p.otp_tries_per_challenge);
                let LoginState::AwaitingOtp(n) = &next else {
                    panic!("resend must keep the challenge open");
                };
                assert_eq!(n.challenge, s.challenge);
                assert_eq!(n.code, code.digest(&self.keys, &s.challenge));
                assert_eq!(n.attempts, s.attempts, "the attempt budget carries over");
                assert_eq!(n.resends, s.resends + 1);
                assert_eq!((n.sent_at, n.last_seen_at), (self.now, self.now));
                assert_deadline("otp", n.expires_at, self.now, p.otp_ttl);
                let c = &mut self.challenges[i];
                c.codes.push(code);
                c.state = next;
            }
            Err(e) => {
                if let Some(want) = expected {
                    assert_eq!(Err(e.clone()), want, "resend refused for the wrong reason");
                }
                if let Rejection::TooManyRequests { retry_after } = e {
                    assert!(retry_after.is_positive(), "retry_after must be positive");
                }
            }
        }
    }

    fn close(&mut self, ch: u8, with: ChallengePick) {
        let Some(i) = self.pick(ch) else { return };
        let d = self.handle(i, with);
        let c = &mut self.challenges[i];
        let open = matches!(&c.state, LoginState::AwaitingOtp(s) if s.challenge == d);
        match c.state.clone().close(&d, self.now) {
            Some(next) => {
                assert!(open, "close changed a foreign or ended challenge");
                assert_ended(&next, LoginEndReason::ScreenClosed, self.now);
                c.state = next;
            }
            None => assert!(!open, "close left an open challenge open"),
        }
    }

    fn heartbeat(&mut self, ch: u8, with: ChallengePick) {
        let Some(i) = self.pick(ch) else { return };
        let d = self.handle(i, with);
        let before = self.challenges[i].state.clone();
        let (next, alive) = before.clone().heartbeat(&d, env!(self));
        let c = &mut self.challenges[i];
        match &before {
            LoginState::AwaitingOtp(s) if s.challenge == d => {
                match lapsed(&self.policy, s.last_seen_at, self.now) {
                    Some(true) => {
                        assert!(!alive);
                        assert_ended(&next, LoginEndReason::HeartbeatLapsed, self.now);
                    }
                    Some(false) => {
                        assert!(alive);
                        let LoginState::AwaitingOtp(n) = &next else {
                            panic!("a heartbeat ended a live challenge");
                        };
                        assert_eq!(n.last_seen_at, self.now);
                        assert_eq!(
                            (n.code, n.attempts, n.expires_at),
                            (s.code, s.attempts, s.expires_at)
                        );
                    }
                    None => assert_eq!(alive, next.is_open()),
                }
            }
            _ => {
                assert!(!alive);
                assert_eq!(
                    next, before,
                    "a heartbeat changed a foreign or ended challenge"
                );
            }
        }
        c.state = next;
    }

    fn end(&mut self, ch: u8, reason: EndReason) {
        let Some(i) = self.pick(ch) else { return };
        let reason = match reason {
            EndReason::Superseded => LoginEndReason::Superseded,
            EndReason::AccountChanged => LoginEndReason::AccountChanged,
        };
        let c = &mut self.challenges[i];
        let open = c.state.is_open();
        match c.state.clone().end_for(reason, self.now) {
            Some(next) => {
                assert!(open, "end_for changed an ended challenge");
                assert_ended(&next, reason, self.now);
                c.state = next;
            }
            None => assert!(!open, "end_for left an open challenge open"),
        }
    }

    /// Invariants that hold between any two operations.
    fn check(&self, before: &[LoginState]) {
        for (k, c) in self.challenges.iter().enumerate() {
            assert!(c.authenticated <= 1, "a challenge authenticated twice");
            if let Some(LoginState::Ended(old)) = before.get(k) {
                assert_eq!(
                    &c.state,
                    &LoginState::Ended(old.clone()),
                    "an ended challenge changed"
                );
            }
            assert_eq!(c.state.account(), &self.account);
            match &c.state {
                LoginState::AwaitingOtp(s) => {
                    assert!(
                        s.attempts <= c.max_tries.max(self.policy.otp_tries_per_challenge),
                        "attempts past every budget"
                    );
                    assert!(
                        s.resends <= c.max_resends.max(self.policy.otp_resends_per_challenge),
                        "resends past every cap"
                    );
                    assert_eq!(usize::try_from(s.resends).ok(), Some(c.codes.len() - 1));
                }
                LoginState::Ended(e) => {
                    assert_eq!(e.challenge, c.digest);
                    assert_eq!(
                        c.authenticated == 1,
                        e.reason == LoginEndReason::Authenticated
                    );
                }
                _ => {}
            }
            let flow = FlowState::Login(c.state.clone());
            assert_eq!(flow.lookup_keys(), vec![c.digest]);
            let purge = flow.purge_after();
            match &c.state {
                LoginState::AwaitingOtp(s) => assert!(purge >= s.expires_at),
                LoginState::Ended(e) => assert!(purge >= e.at),
                _ => {}
            }
        }
    }
}

fn assert_ended(state: &LoginState, reason: LoginEndReason, now: OffsetDateTime) {
    match state {
        LoginState::Ended(e) => {
            assert_eq!(e.reason, reason, "ended for the wrong reason");
            assert_eq!(e.at, now);
        }
        other => panic!("expected Ended({reason:?}), got {other:?}"),
    }
}

fuzz_target!(|input: Input<'_>| {
    let now = kenpo_auth_fuzz::start_instant(input.start, input.offset);
    let mut rng = StdRng::seed_from_u64(input.seed);
    let account = AccountId::generate(&mut rng);
    let mut h = Harness {
        keys: keyring(),
        policy: base_policy(),
        now,
        rng,
        account,
        challenges: Vec::new(),
        account_failures: 0,
    };
    h.login(false);
    for op in input.ops.iter().take(64) {
        let before: Vec<LoginState> = h.challenges.iter().map(|c| c.state.clone()).collect();
        match op {
            Op::Login { supersede } => {
                if h.challenges.len() < 8 {
                    h.login(*supersede);
                }
            }
            Op::Verify { ch, with, code } => h.verify(*ch, *with, code),
            Op::Resend { ch, with } => h.resend(*ch, *with),
            Op::Close { ch, with } => h.close(*ch, *with),
            Op::Heartbeat { ch, with } => h.heartbeat(*ch, *with),
            Op::End { ch, reason } => h.end(*ch, *reason),
            Op::Advance(secs) => h.now = advance(h.now, *secs),
            Op::Knob(k) => {
                if apply_knob(&mut h.policy, *k) {
                    for c in &mut h.challenges {
                        c.max_tries = c.max_tries.max(h.policy.otp_tries_per_challenge);
                        c.max_resends = c.max_resends.max(h.policy.otp_resends_per_challenge);
                    }
                }
            }
        }
        h.check(&before);
    }
});
