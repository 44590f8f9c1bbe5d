//! Model-based test of login (L1–L4): random sequences of logins, right/wrong/old/foreign
//! codes, resends, closed screens, heartbeats and clock ticks, run against the real
//! `Portal` and a small reference model. Every step's outcome must equal the model's.
//!
//! Invariants this proves (SEC-27 … SEC-30): a code works at most once; never after
//! expiry, close, resend or a newer login; never for another challenge; the attempt
//! budgets are never exceeded.

mod common;

use common::*;
use kenpo_auth::Rejection;
use kenpo_auth::token::{OtpChallengeId, OtpCode};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::Duration;

const LOGIN: &str = "taro-sakura";
const HEARTBEAT: i64 = 120;
const OTP_TTL: i64 = 600;
const TRIES: u32 = 5;
const ACCOUNT_TRIES: u32 = 10;
const COOLDOWN: i64 = 900;
const RESEND_GAP: i64 = 60;
const RESENDS: u32 = 3;
const MAILS_PER_HOUR: u32 = 10;

#[derive(Clone, Debug)]
enum Step {
    Login,
    Right(usize),
    Wrong(usize),
    Old(usize),
    Foreign(usize, usize),
    Resend(usize),
    Close(usize),
    Heartbeat(usize),
    Tick(i64),
}

#[derive(Clone, Debug)]
struct Challenge {
    open: bool,
    attempts: u32,
    resends: u32,
    sent_at: i64,
    expires_at: i64,
    last_seen: i64,
    codes: usize,
    /// When its code logged the member in: the same code again within the repeat
    /// window answers the same login (`Policy::repeat_window`).
    logged_in_at: Option<i64>,
}

/// What the member is told, as a comparable value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Code(&'static str),
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// The heartbeat policy of this run (`None`: only an explicit close kills a screen).
    heartbeat: Option<i64>,
    now: i64,
    challenges: Vec<Challenge>,
    otp_failures: u32,
    cooldown_until: Option<i64>,
    password_failures: u32,
    last_password_failure: Option<i64>,
    mail_window: Option<(i64, u32)>,
    last: Option<Outcome>,
    /// What each answered L1 (a step's index) showed: a challenge of `challenges`. An L1
    /// repeated within the repeat window shows the same one again (#14).
    slots: Vec<usize>,
    /// The challenge the last fresh L1 opened and when: what a repeat answers with,
    /// until that screen is closed or any code is tried.
    recent: Option<(usize, i64)>,
}

/// `Policy::repeat_window`, in seconds.
fn repeat_window() -> i64 {
    kenpo_auth::Policy::default().repeat_window.whole_seconds()
}

fn password_delay(failures: u32) -> i64 {
    if failures < 5 {
        0
    } else {
        (30i64 << (failures - 5).min(20)).min(3600)
    }
}

impl Model {
    fn lapsed(&self, i: usize) -> bool {
        self.heartbeat
            .is_some_and(|hb| self.now >= self.challenges[i].last_seen + hb)
    }

    fn alive(&self, i: usize) -> bool {
        self.challenges[i].open && !self.lapsed(i)
    }

    /// A heartbeat lapse ends the challenge the next time it is touched.
    fn touch(&mut self, i: usize) {
        if self.challenges[i].open && self.lapsed(i) {
            self.challenges[i].open = false;
        }
    }

    /// The per-account hourly cap on 暗証キー mails: a fixed window from its first mail.
    fn mail_allowed(&mut self) -> bool {
        let (start, count) = match self.mail_window {
            Some((start, count)) if self.now < start + 3600 => (start, count),
            _ => (self.now, 0),
        };
        if count >= MAILS_PER_HOUR {
            return false;
        }
        self.mail_window = Some((start, count + 1));
        true
    }

    /// Whether challenge `i` can take a code now: `Err` with the answer when it cannot.
    fn usable(&mut self, i: usize) -> Result<(), Outcome> {
        self.touch(i);
        if !self.challenges[i].open {
            return Err(Outcome::Code("otp.invalid"));
        }
        if self.now >= self.challenges[i].expires_at {
            // Only the current code lapsed: a resend can revive the screen, unless the
            // resends are spent.
            if self.challenges[i].resends >= RESENDS {
                return Err(Outcome::Code("otp.invalid"));
            }
            return Err(Outcome::Code("otp.expired"));
        }
        Ok(())
    }

    /// A code the screen had before a resend: "type the newest", no try spent.
    fn old_code(&mut self, i: usize) -> Outcome {
        match self.usable(i) {
            Err(o) => o,
            Ok(()) => Outcome::Code("otp.replaced"),
        }
    }

    /// A code was tried on `i`: when it made the login, or changed the recent screen's
    /// state (an attempt counted, or a lapsed screen ended), no L1 repeats the recent
    /// screen after that. A code tried on another screen leaves it.
    fn tried(&mut self, i: usize, before: &Challenge, logged_in: bool) {
        let c = &self.challenges[i];
        let changed = c.open != before.open || c.attempts != before.attempts;
        if logged_in || (changed && self.recent.is_some_and(|(r, _)| r == i)) {
            self.recent = None;
        }
    }

    fn wrong_code(&mut self, i: usize) -> Outcome {
        if let Err(o) = self.usable(i) {
            return o;
        }
        let c = &mut self.challenges[i];
        c.attempts += 1;
        self.otp_failures += 1;
        let account_limit = self.otp_failures >= ACCOUNT_TRIES;
        if c.attempts >= TRIES || account_limit {
            c.open = false;
            if account_limit {
                self.otp_failures = 0;
                self.cooldown_until = Some(self.now + COOLDOWN);
                self.password_failures += 1;
                self.last_password_failure = Some(self.now);
            }
            return Outcome::Code("otp.attempts_exhausted");
        }
        Outcome::Code("otp.incorrect")
    }

    fn step(&mut self, step: &Step) -> Outcome {
        // Steps name an answered L1; the model works on the challenge it showed.
        let step = &match *step {
            Step::Right(i) => Step::Right(self.slots[i]),
            Step::Wrong(i) => Step::Wrong(self.slots[i]),
            Step::Old(i) => Step::Old(self.slots[i]),
            Step::Foreign(i, j) => Step::Foreign(self.slots[i], self.slots[j]),
            Step::Resend(i) => Step::Resend(self.slots[i]),
            Step::Close(i) => Step::Close(self.slots[i]),
            Step::Heartbeat(i) => Step::Heartbeat(self.slots[i]),
            Step::Login => Step::Login,
            Step::Tick(s) => Step::Tick(s),
        };
        match *step {
            Step::Right(i) | Step::Wrong(i) | Step::Old(i) | Step::Foreign(i, _) => {
                let before = self.challenges[i].clone();
                let out = self.challenge_step(step);
                let repeated = !before.open && out == Outcome::Ok;
                if !repeated {
                    self.tried(i, &before, out == Outcome::Ok);
                }
                out
            }
            Step::Close(i) => {
                if self.challenges[i].open && self.recent.is_some_and(|(r, _)| r == i) {
                    self.recent = None;
                }
                self.challenge_step(step)
            }
            _ => self.challenge_step(step),
        }
    }

    fn challenge_step(&mut self, step: &Step) -> Outcome {
        match *step {
            Step::Tick(s) => {
                self.now += s;
                Outcome::Ok
            }
            Step::Login => {
                let cooling = self.cooldown_until.is_some_and(|u| self.now < u);
                let delayed = self
                    .last_password_failure
                    .is_some_and(|l| self.now < l + password_delay(self.password_failures));
                if cooling || delayed {
                    return Outcome::Code("login.failed");
                }
                self.password_failures = 0;
                self.last_password_failure = None;
                if let Some((r, at)) = self.recent
                    && self.now < at + repeat_window()
                    && self.now < self.challenges[r].expires_at
                {
                    // The same L1 moments later: the same screen, no mail.
                    self.slots.push(r);
                    return Outcome::Ok;
                }
                if !self.mail_allowed() {
                    return Outcome::Code("login.failed");
                }
                self.slots.push(self.challenges.len());
                self.recent = Some((self.challenges.len(), self.now));
                self.challenges.push(Challenge {
                    open: true,
                    attempts: 0,
                    resends: 0,
                    sent_at: self.now,
                    expires_at: self.now + OTP_TTL,
                    last_seen: self.now,
                    codes: 1,
                    logged_in_at: None,
                });
                Outcome::Ok
            }
            Step::Right(i) => {
                self.touch(i);
                let now = self.now;
                let c = &mut self.challenges[i];
                let repeat = repeat_window();
                if !c.open {
                    return match c.logged_in_at {
                        Some(at) if now < at + repeat => Outcome::Ok,
                        _ => Outcome::Code("otp.invalid"),
                    };
                }
                if now >= c.expires_at {
                    if c.resends >= RESENDS {
                        return Outcome::Code("otp.invalid");
                    }
                    return Outcome::Code("otp.expired");
                }
                c.open = false;
                c.logged_in_at = Some(now);
                self.otp_failures = 0;
                // The login made ends the account's other open challenges.
                for c in &mut self.challenges {
                    c.open = false;
                }
                Outcome::Ok
            }
            Step::Old(i) if self.challenges[i].codes > 1 => self.old_code(i),
            Step::Wrong(i) | Step::Old(i) | Step::Foreign(i, _) => self.wrong_code(i),
            Step::Resend(i) => {
                if !self.alive(i) {
                    return Outcome::Code("otp.invalid");
                }
                let c = &self.challenges[i];
                if self.now < c.sent_at + RESEND_GAP {
                    return Outcome::Code("too_many_requests");
                }
                if c.resends >= RESENDS {
                    return Outcome::Code("otp.invalid");
                }
                if !self.mail_allowed() {
                    return Outcome::Code("too_many_requests");
                }
                let now = self.now;
                let c = &mut self.challenges[i];
                c.resends += 1;
                c.sent_at = now;
                c.expires_at = now + OTP_TTL;
                c.last_seen = now;
                c.codes += 1;
                Outcome::Ok
            }
            Step::Close(i) => {
                self.challenges[i].open = false;
                Outcome::Ok
            }
            Step::Heartbeat(i) => {
                self.touch(i);
                if !self.challenges[i].open {
                    return Outcome::Code("otp.invalid");
                }
                self.challenges[i].last_seen = self.now;
                Outcome::Ok
            }
        }
    }
}

struct LoginModel;

impl ReferenceStateMachine for LoginModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        prop_oneof![Just(None), Just(Some(HEARTBEAT))]
            .prop_map(|heartbeat| Model {
                heartbeat,
                ..Model::default()
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let n = state.slots.len();
        let ticks = prop_oneof![
            Just(1i64),
            Just(30),
            Just(59),
            Just(61),
            Just(61),
            Just(61),
            Just(119),
            Just(60),
            Just(300),
            Just(599),
            Just(900),
            Just(3600),
        ]
        .prop_map(Step::Tick);
        if n == 0 {
            return prop_oneof![3 => Just(Step::Login), 1 => ticks].boxed();
        }
        // Mostly the newest challenge (older ones are usually superseded), sometimes any.
        let i = prop_oneof![3 => Just(n - 1), 1 => 0..n];
        prop_oneof![
            2 => Just(Step::Login),
            3 => i.clone().prop_map(Step::Right),
            4 => i.clone().prop_map(Step::Wrong),
            1 => i.clone().prop_map(Step::Old),
            1 => (i.clone(), 0..n).prop_map(|(a, b)| Step::Foreign(a, b)),
            4 => i.clone().prop_map(Step::Resend),
            1 => i.clone().prop_map(Step::Close),
            1 => i.prop_map(Step::Heartbeat),
            3 => ticks,
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.last = Some(state.step(step));
        state
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        let n = state.slots.len();
        match *step {
            Step::Right(i)
            | Step::Wrong(i)
            | Step::Old(i)
            | Step::Resend(i)
            | Step::Close(i)
            | Step::Heartbeat(i) => i < n,
            Step::Foreign(i, j) => i < n && j < n && i != j,
            Step::Login | Step::Tick(_) => true,
        }
    }
}

struct Sut {
    rt: tokio::runtime::Runtime,
    f: Fixture,
    challenges: Vec<(OtpChallengeId, Vec<OtpCode>)>,
    /// Each answered L1: its entry in `challenges` (a repeat shows one already there).
    slots: Vec<usize>,
    /// Each login answered: the challenge, and when its code was accepted.
    successes: Vec<(usize, time::OffsetDateTime)>,
}

/// A code that is not `current`.
fn not(current: &OtpCode, candidate: &OtpCode) -> OtpCode {
    if candidate != current {
        return candidate.clone();
    }
    let c = current.expose_secret();
    let last = c.as_bytes()[c.len() - 1];
    let flipped = if last == b'9' {
        '0'
    } else {
        char::from(last + 1)
    };
    parsed(&format!("{}{}", &c[..c.len() - 1], flipped))
}

impl Sut {
    fn outcome<T>(r: Result<T, kenpo_auth::Error>) -> Outcome {
        match r {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Code(rejection(e).code()),
        }
    }

    fn run(&mut self, step: &Step) -> Outcome {
        let portal = self.f.portal.clone();
        let slot = |i: usize| self.slots[i];
        let step = &match *step {
            Step::Right(i) => Step::Right(slot(i)),
            Step::Wrong(i) => Step::Wrong(slot(i)),
            Step::Old(i) => Step::Old(slot(i)),
            Step::Foreign(i, j) => Step::Foreign(slot(i), slot(j)),
            Step::Resend(i) => Step::Resend(slot(i)),
            Step::Close(i) => Step::Close(slot(i)),
            Step::Heartbeat(i) => Step::Heartbeat(slot(i)),
            Step::Login => Step::Login,
            Step::Tick(s) => Step::Tick(s),
        };
        match *step {
            Step::Tick(s) => {
                self.f.clock.advance(Duration::seconds(s));
                Outcome::Ok
            }
            Step::Login => {
                let r = self.rt.block_on(portal.start_login(LOGIN, &pw(PASSWORD)));
                if let Ok(ch) = &r {
                    let shown = ch.challenge.expose_secret();
                    match self
                        .challenges
                        .iter()
                        .position(|(id, _)| id.expose_secret() == shown)
                    {
                        Some(existing) => self.slots.push(existing),
                        None => {
                            self.slots.push(self.challenges.len());
                            self.challenges
                                .push((ch.challenge.clone(), vec![self.f.otp(TARO)]));
                        }
                    }
                }
                Self::outcome(r)
            }
            Step::Right(i) => {
                let (id, codes) = &self.challenges[i];
                let code = codes.last().unwrap().clone();
                let r = self.rt.block_on(portal.verify_otp(id, &code));
                if let Ok(a) = &r {
                    self.successes.push((i, a.authenticated_at));
                }
                Self::outcome(r)
            }
            Step::Wrong(i) | Step::Old(i) | Step::Foreign(i, _) => {
                let (id, codes) = &self.challenges[i];
                let current = codes.last().unwrap();
                let candidate = match *step {
                    Step::Old(_) if codes.len() > 1 => codes[0].clone(),
                    Step::Foreign(_, j) => self.challenges[j].1.last().unwrap().clone(),
                    _ => current.clone(),
                };
                let code = not(current, &candidate);
                Self::outcome(self.rt.block_on(portal.verify_otp(id, &code)))
            }
            Step::Resend(i) => {
                let id = self.challenges[i].0.clone();
                let r = self.rt.block_on(portal.resend_otp(&id));
                if r.is_ok() {
                    let code = self.f.otp(TARO);
                    self.challenges[i].1.push(code);
                }
                Self::outcome(r)
            }
            Step::Close(i) => Self::outcome(
                self.rt
                    .block_on(portal.close_otp_screen(&self.challenges[i].0)),
            ),
            Step::Heartbeat(i) => Self::outcome(
                self.rt
                    .block_on(portal.heartbeat_otp_screen(&self.challenges[i].0)),
            ),
        }
    }
}

impl StateMachineTest for LoginModel {
    type SystemUnderTest = Sut;
    type Reference = LoginModel;

    fn init_test(model: &Model) -> Sut {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut policy = danger_test_minimum_policy();
        policy.otp_screen_heartbeat = model.heartbeat.map(Duration::seconds);
        let f = fixture_with(policy);
        rt.block_on(f.register(TARO, "999-123456-00", "1985-04-12", LOGIN));
        // Start the model's clock after registration's mails.
        f.clock.advance(Duration::hours(2));
        Sut {
            rt,
            f,
            challenges: Vec::new(),
            slots: Vec::new(),
            successes: Vec::new(),
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let got = sut.run(&step);
        assert_eq!(Some(&got), model.last.as_ref(), "step {step:?}");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        // A challenge is authenticated at most once: a repeat within the window is told
        // of the same login (the same instant), never of a second one.
        let mut logins = sut.successes.clone();
        logins.sort_unstable();
        logins.dedup();
        let mut challenges: Vec<usize> = logins.iter().map(|(i, _)| *i).collect();
        challenges.sort_unstable();
        challenges.dedup();
        assert_eq!(challenges.len(), logins.len(), "a code worked twice");
        // Attempts never exceed the budget.
        assert!(model.challenges.iter().all(|c| c.attempts <= TRIES));
        assert!(model.otp_failures < ACCOUNT_TRIES);
        let _ = Rejection::OtpInvalid;
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 2048,
        .. ProptestConfig::default()
    })]
    #[test]
    fn login_matches_reference_model(sequential 1..60 => LoginModel);
}
