//! Model-based test of login with second factors (2段階認証): random sequences of
//! logins by two members with a 認証アプリ and リカバリーコード, 確認コード from their
//! own app (at the current step, one step off, two steps off) or from the other
//! member's, リカバリーコード (their own or the other member's), removal of the app, and
//! clock ticks, run against the real `Portal` and a small reference model. Every step's
//! outcome must equal the model's.
//!
//! With the `passkeys` feature each member also has a パスキー (a software authenticator):
//! assertions for the challenge, assertions replayed from another challenge, and removal
//! of the passkey join the steps.
//!
//! Invariants this proves (SEC-27 … SEC-29, SEC-43): no factor works twice (a time step
//! is accepted once, a リカバリーコード once, an assertion once); none works after its
//! challenge expired, for another member, or after it was removed; a wrong code or
//! assertion of any kind spends the one budget the 暗証キー has (per challenge and per
//! account, with the cooldown).

mod common;

use common::*;
use kenpo_auth::flow::SecondStep;
use kenpo_auth::flow::factor::totp_code;
use kenpo_auth::model::FactorKind;
use kenpo_auth::portal::Authenticated;
use kenpo_auth::token::{OtpChallengeId, RecoveryCode, TotpCode};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::{Duration, OffsetDateTime};

const LOGINS: [&str; 2] = ["taro-sakura", "hanako-sakura"];
const TRIES: u32 = 5;
const ACCOUNT_TRIES: u32 = 10;
const COOLDOWN: i64 = 900;
const CHALLENGE_TTL: i64 = 300;
const REAUTH: i64 = 300;
const STEP: i64 = 30;
const MAILS_PER_HOUR: u32 = 10;

#[derive(Clone, Debug)]
enum Step {
    /// L1 for member `m`.
    Login(usize),
    /// A 確認コード on challenge `c` from member `owner`'s app, `offset` steps off now.
    Totp {
        c: usize,
        owner: usize,
        offset: i64,
    },
    /// リカバリーコード `j` of member `owner` on challenge `c`.
    Recovery {
        c: usize,
        owner: usize,
        j: usize,
    },
    /// Member `m` removes the app (needs a fresh login).
    Remove(usize),
    /// The passkey of challenge `c`'s member answers it (`replay`: the last assertion
    /// made for any challenge is sent to `c` instead).
    Passkey {
        c: usize,
        replay: bool,
    },
    /// Member `m` removes the passkey (needs a fresh login).
    RemovePasskey(usize),
    Tick(i64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Code(&'static str),
}

#[derive(Clone, Debug)]
struct Challenge {
    member: usize,
    /// Whether it offers the passkey (its options went to the browser).
    passkey: bool,
    /// Whether it asks for the app (false: the 暗証キー was mailed).
    factor: bool,
    open: bool,
    attempts: u32,
    expires_at: i64,
}

#[derive(Clone, Debug, Default)]
struct Member {
    has_app: bool,
    has_passkey: bool,
    last_step: i64,
    used: [bool; 10],
    otp_failures: u32,
    cooldown_until: Option<i64>,
    password_failures: u32,
    last_password_failure: Option<i64>,
    logged_in_at: Option<i64>,
    /// The hourly 暗証キー-mail window (start, count), once the app is removed.
    mail_window: Option<(i64, u32)>,
}

#[derive(Clone, Debug)]
struct Model {
    /// Seconds since the start of the time step the run began in.
    now: i64,
    members: [Member; 2],
    challenges: Vec<Challenge>,
    /// The challenge the last assertion was made for.
    last_assertion: Option<usize>,
    last: Option<Outcome>,
}

fn password_delay(failures: u32) -> i64 {
    if failures < 5 {
        0
    } else {
        (30i64 << (failures - 5).min(20)).min(3600)
    }
}

impl Model {
    fn step_now(&self) -> i64 {
        self.now.div_euclid(STEP)
    }

    /// Whether challenge `c` can take a code: `Err` with the answer when it cannot.
    fn usable(&mut self, c: usize) -> Result<(), Outcome> {
        let now = self.now;
        let ch = &mut self.challenges[c];
        if !ch.open || !ch.factor {
            return Err(Outcome::Code("otp.invalid"));
        }
        if now >= ch.expires_at {
            ch.open = false;
            return Err(Outcome::Code("otp.invalid"));
        }
        Ok(())
    }

    fn accept(&mut self, c: usize) -> Outcome {
        let m = self.challenges[c].member;
        for (i, ch) in self.challenges.iter_mut().enumerate() {
            if ch.member == m && (i == c || ch.open) {
                ch.open = false;
            }
        }
        let member = &mut self.members[m];
        member.otp_failures = 0;
        member.logged_in_at = Some(self.now);
        Outcome::Ok
    }

    fn reject(&mut self, c: usize) -> Outcome {
        let now = self.now;
        let m = self.challenges[c].member;
        let ch = &mut self.challenges[c];
        ch.attempts += 1;
        let member = &mut self.members[m];
        let failures = member.otp_failures + 1;
        let limit = failures >= ACCOUNT_TRIES;
        member.otp_failures = if limit { 0 } else { failures };
        if limit {
            member.cooldown_until = Some(now + COOLDOWN);
            member.password_failures += 1;
            member.last_password_failure = Some(now);
        }
        if ch.attempts >= TRIES || limit {
            ch.open = false;
            Outcome::Code("otp.attempts_exhausted")
        } else {
            Outcome::Code("factor.incorrect")
        }
    }

    /// A factor was removed: its member's open challenges end; the リカバリーコード go
    /// with the last authenticator.
    fn removed(&mut self, m: usize) {
        for ch in self.challenges.iter_mut().filter(|ch| ch.member == m) {
            ch.open = false;
        }
        let member = &mut self.members[m];
        if !member.has_app && !member.has_passkey {
            member.used = [true; 10];
        }
    }

    fn step(&mut self, step: &Step) -> Outcome {
        match *step {
            Step::Tick(s) => {
                self.now += s;
                Outcome::Ok
            }
            Step::Login(m) => {
                let now = self.now;
                let member = &mut self.members[m];
                let cooling = member.cooldown_until.is_some_and(|u| now < u);
                let delayed = member
                    .last_password_failure
                    .is_some_and(|l| now < l + password_delay(member.password_failures));
                if cooling || delayed {
                    return Outcome::Code("login.failed");
                }
                member.password_failures = 0;
                member.last_password_failure = None;
                let factor = member.has_app || member.has_passkey;
                if !factor {
                    let (start, count) = match member.mail_window {
                        Some((start, count)) if now < start + 3600 => (start, count),
                        _ => (now, 0),
                    };
                    if count >= MAILS_PER_HOUR {
                        return Outcome::Code("login.failed");
                    }
                    member.mail_window = Some((start, count + 1));
                }
                let passkey = factor && member.has_passkey;
                self.challenges.push(Challenge {
                    member: m,
                    passkey,
                    factor,
                    open: true,
                    attempts: 0,
                    expires_at: now + if factor { CHALLENGE_TTL } else { 600 },
                });
                Outcome::Ok
            }
            Step::Totp { c, owner, offset } => {
                if let Err(o) = self.usable(c) {
                    return o;
                }
                let m = self.challenges[c].member;
                let step = self.step_now() + offset;
                let right = owner == m
                    && self.members[m].has_app
                    && offset.abs() <= 1
                    && step > self.members[m].last_step;
                if right {
                    self.members[m].last_step = step;
                    self.accept(c)
                } else {
                    self.reject(c)
                }
            }
            Step::Recovery { c, owner, j } => {
                if let Err(o) = self.usable(c) {
                    return o;
                }
                let m = self.challenges[c].member;
                let member = &self.members[m];
                let right = owner == m && (member.has_app || member.has_passkey) && !member.used[j];
                if right {
                    self.members[m].used[j] = true;
                    self.accept(c)
                } else {
                    self.reject(c)
                }
            }
            Step::Remove(m) => {
                let fresh = self.members[m]
                    .logged_in_at
                    .is_some_and(|at| self.now - at <= REAUTH);
                if !fresh {
                    return Outcome::Code("auth.reauthentication_required");
                }
                if !self.members[m].has_app {
                    return Outcome::Code("factor.unavailable");
                }
                self.members[m].has_app = false;
                self.removed(m);
                Outcome::Ok
            }
            Step::RemovePasskey(m) => {
                let fresh = self.members[m]
                    .logged_in_at
                    .is_some_and(|at| self.now - at <= REAUTH);
                if !fresh {
                    return Outcome::Code("auth.reauthentication_required");
                }
                if !self.members[m].has_passkey {
                    return Outcome::Code("factor.unavailable");
                }
                self.members[m].has_passkey = false;
                self.removed(m);
                Outcome::Ok
            }
            Step::Passkey { c, replay } => {
                let made_for = if replay { self.last_assertion } else { Some(c) };
                if !replay {
                    // A fresh assertion can only be made for a challenge that offers the
                    // passkey (the SUT's device answers its options).
                    self.last_assertion = Some(c);
                }
                if let Err(o) = self.usable(c) {
                    return o;
                }
                let m = self.challenges[c].member;
                if made_for == Some(c) && self.members[m].has_passkey && self.challenges[c].passkey
                {
                    self.accept(c)
                } else {
                    self.reject(c)
                }
            }
        }
    }
}

struct FactorModel;

impl ReferenceStateMachine for FactorModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        // The app's last accepted step is the setup's, long before the run.
        let member = Member {
            has_app: true,
            has_passkey: cfg!(feature = "passkey-tests"),
            last_step: i64::MIN / 2,
            ..Member::default()
        };
        // Seconds since the start of a time step (the run starts 1 s into one).
        Just(Model {
            now: 1,
            members: [member.clone(), member],
            challenges: Vec::new(),
            last_assertion: None,
            last: None,
        })
        .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let ticks = prop_oneof![
            Just(1i64),
            Just(29),
            Just(30),
            Just(31),
            Just(60),
            Just(299),
            Just(300),
            Just(900),
        ]
        .prop_map(Step::Tick);
        let n = state.challenges.len();
        if n == 0 {
            return prop_oneof![3 => (0..2usize).prop_map(Step::Login), 1 => ticks].boxed();
        }
        let c = prop_oneof![3 => Just(n - 1), 1 => 0..n];
        let owner = prop_oneof![4 => Just(None), 1 => Just(Some(()))];
        let steps = prop_oneof![
            2 => (0..2usize).prop_map(Step::Login),
            5 => (c.clone(), owner.clone(), -2i64..=1).prop_map({
                let members: Vec<usize> = state.challenges.iter().map(|c| c.member).collect();
                move |(c, foreign, offset)| Step::Totp {
                    c,
                    owner: foreign.map_or(members[c], |()| 1 - members[c]),
                    offset,
                }
            }),
            2 => (c, owner, 0..3usize).prop_map({
                let members: Vec<usize> = state.challenges.iter().map(|c| c.member).collect();
                move |(c, foreign, j)| Step::Recovery {
                    c,
                    owner: foreign.map_or(members[c], |()| 1 - members[c]),
                    j,
                }
            }),
            1 => (0..2usize).prop_map(Step::Remove),
            3 => ticks,
        ];
        if !cfg!(feature = "passkey-tests") {
            return steps.boxed();
        }
        let c = prop_oneof![3 => Just(n - 1), 1 => 0..n];
        let can_replay = state.last_assertion.is_some();
        prop_oneof![
            6 => steps,
            3 => (c, any::<bool>()).prop_map(move |(c, r)| Step::Passkey {
                c,
                replay: r && can_replay,
            }),
            1 => (0..2usize).prop_map(Step::RemovePasskey),
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.last = Some(state.step(step));
        state
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        let n = state.challenges.len();
        match *step {
            Step::Totp { c, .. } | Step::Recovery { c, .. } => c < n,
            // A fresh assertion needs a challenge that offered the passkey; a replay needs
            // an assertion made before.
            Step::Passkey { c, replay } => {
                c < n
                    && (if replay {
                        state.last_assertion.is_some()
                    } else {
                        state.challenges[c].passkey
                    })
            }
            Step::Login(_) | Step::Remove(_) | Step::RemovePasskey(_) | Step::Tick(_) => true,
        }
    }
}

struct Sut {
    rt: tokio::runtime::Runtime,
    f: Fixture,
    start: OffsetDateTime,
    secrets: Vec<String>,
    recovery: Vec<Vec<RecoveryCode>>,
    challenges: Vec<OtpChallengeId>,
    auths: Vec<Option<Authenticated>>,
    /// (member, time step) of every accepted 確認コード, and (member, index) of every
    /// accepted リカバリーコード.
    accepted_steps: Vec<(usize, i64)>,
    accepted_codes: Vec<(usize, usize)>,
    /// Challenges a passkey assertion logged in on.
    accepted_assertions: Vec<usize>,
    #[cfg(feature = "passkey-tests")]
    passkeys: Passkeys,
}

/// Each member's software passkey, and what the SUT needs to answer challenges with it.
#[cfg(feature = "passkey-tests")]
#[derive(Default)]
struct Passkeys {
    devices: Vec<webauthn_authenticator_rs::softpasskey::SoftPasskey>,
    credential_ids: Vec<String>,
    /// The `navigator.credentials.get` options of each challenge, when it offered them.
    options: Vec<Option<webauthn_rs::prelude::RequestChallengeResponse>>,
    last: Option<webauthn_rs::prelude::PublicKeyCredential>,
}

#[cfg(feature = "passkey-tests")]
fn origin() -> url::Url {
    url::Url::parse(kenpo_auth::testkit::fixtures::BASE_URL).unwrap()
}

impl Sut {
    fn outcome<T>(r: Result<T, kenpo_auth::Error>) -> Outcome {
        match r {
            Ok(_) => Outcome::Ok,
            Err(e) => Outcome::Code(rejection(e).code()),
        }
    }

    fn code(&self, owner: usize, at: OffsetDateTime) -> TotpCode {
        totp_code(&self.secrets[owner], at).unwrap()
    }

    fn run(&mut self, step: &Step, model: &Model) -> Outcome {
        let portal = self.f.portal.clone();
        let now = self.f.now();
        match *step {
            Step::Tick(s) => {
                self.f.clock.advance(Duration::seconds(s));
                Outcome::Ok
            }
            Step::Login(m) => {
                let r = self
                    .rt
                    .block_on(portal.start_login(LOGINS[m], &pw(PASSWORD)));
                if let Ok(ch) = &r {
                    assert_eq!(
                        matches!(ch.second_step, SecondStep::AuthenticatorApp { .. }),
                        model.members[m].has_app || model.members[m].has_passkey,
                        "never downgraded to the 暗証キー while a factor is set up"
                    );
                    self.challenges.push(ch.challenge.clone());
                    #[cfg(feature = "passkey-tests")]
                    self.passkeys.options.push(ch.passkey_options.clone());
                }
                Self::outcome(r)
            }
            Step::Totp { c, owner, offset } => {
                let at = now + Duration::seconds(offset * STEP);
                let mut code = self.code(owner, at);
                let member = model.challenges[c].member;
                if owner != member || offset.abs() > 1 {
                    // A code that is wrong for this challenge: the other member's, or two
                    // steps off. On the rare collision with a code the app would accept
                    // now, use one it would not.
                    let valid: Vec<String> = (-1..=1)
                        .map(|k| {
                            self.code(member, now + Duration::seconds(k * STEP))
                                .expose_secret()
                                .to_owned()
                        })
                        .collect();
                    if valid.contains(&code.expose_secret().to_owned()) {
                        let other = (0..1000)
                            .map(|n| format!("{n:06}"))
                            .find(|c| !valid.contains(c))
                            .unwrap();
                        code = parsed(&other);
                    }
                }
                let r = self
                    .rt
                    .block_on(portal.verify_totp(&self.challenges[c], &code));
                match r {
                    Ok(a) => {
                        let step = (now - self.start).whole_seconds().div_euclid(STEP) + offset;
                        self.accepted_steps.push((member, step));
                        self.auths[member] = Some(a);
                        Outcome::Ok
                    }
                    Err(e) => Self::outcome::<()>(Err(e)),
                }
            }
            Step::Recovery { c, owner, j } => {
                let code = self.recovery[owner][j].clone();
                let r = self
                    .rt
                    .block_on(portal.use_recovery_code(&self.challenges[c], &code));
                match r {
                    Ok(a) => {
                        self.accepted_codes.push((owner, j));
                        self.auths[owner] = Some(a);
                        Outcome::Ok
                    }
                    Err(e) => Self::outcome::<()>(Err(e)),
                }
            }
            Step::Passkey { c, replay } => self.passkey(c, replay, model),
            Step::RemovePasskey(m) => self.remove_passkey(m),
            Step::Remove(m) => match &self.auths[m] {
                Some(auth) => Self::outcome(
                    self.rt
                        .block_on(portal.remove_factor(auth, FactorKind::Totp)),
                ),
                None => Outcome::Code("auth.reauthentication_required"),
            },
        }
    }
}

#[cfg(feature = "passkey-tests")]
impl Sut {
    fn passkey(&mut self, c: usize, replay: bool, model: &Model) -> Outcome {
        use webauthn_authenticator_rs::WebauthnAuthenticator;
        let member = model.challenges[c].member;
        let assertion = if replay {
            self.passkeys.last.clone().unwrap()
        } else {
            let options = self.passkeys.options[c].clone().unwrap();
            let a = self.passkeys.devices[member]
                .do_authentication(origin(), options)
                .unwrap();
            self.passkeys.last = Some(a.clone());
            a
        };
        let portal = self.f.portal.clone();
        match self
            .rt
            .block_on(portal.verify_passkey(&self.challenges[c], &assertion))
        {
            Ok(a) => {
                self.accepted_assertions.push(c);
                self.auths[member] = Some(a);
                Outcome::Ok
            }
            Err(e) => Self::outcome::<()>(Err(e)),
        }
    }

    fn remove_passkey(&mut self, m: usize) -> Outcome {
        let portal = self.f.portal.clone();
        match &self.auths[m] {
            Some(auth) => Self::outcome(
                self.rt
                    .block_on(portal.remove_passkey(auth, &self.passkeys.credential_ids[m])),
            ),
            None => Outcome::Code("auth.reauthentication_required"),
        }
    }
}

#[cfg(not(feature = "passkey-tests"))]
impl Sut {
    fn passkey(&mut self, _: usize, _: bool, _: &Model) -> Outcome {
        unreachable!("no passkey steps without the feature")
    }

    fn remove_passkey(&mut self, _: usize) -> Outcome {
        unreachable!("no passkey steps without the feature")
    }
}

impl StateMachineTest for FactorModel {
    type SystemUnderTest = Sut;
    type Reference = FactorModel;

    fn init_test(_: &Model) -> Sut {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let f = fixture();
        let mut secrets = Vec::new();
        let mut recovery = Vec::new();
        #[cfg(feature = "passkey-tests")]
        let mut passkeys = Passkeys::default();
        for (m, (email, card, birth)) in [
            (TARO, "999-123456-00", "1985-04-12"),
            (HANAKO, "999-123456-01", "1987-09-30"),
        ]
        .into_iter()
        .enumerate()
        {
            rt.block_on(f.register(email, card, birth, LOGINS[m]));
            let auth = rt.block_on(f.login(LOGINS[m], PASSWORD, email));
            let setup = rt.block_on(f.portal.start_totp_setup(&auth)).unwrap();
            let code = totp_code(setup.secret_base32(), f.now()).unwrap();
            let enrolled = rt
                .block_on(f.portal.confirm_totp_setup(&auth, &setup.handle, &code))
                .unwrap();
            secrets.push(setup.secret_base32().to_owned());
            recovery.push(enrolled.recovery_codes);
            #[cfg(feature = "passkey-tests")]
            {
                use webauthn_authenticator_rs::WebauthnAuthenticator;
                let mut device = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
                let name = "iPhone".parse().unwrap();
                let started = rt
                    .block_on(f.portal.start_passkey_registration(&auth, &name))
                    .unwrap();
                let credential = device.do_registration(origin(), started.options).unwrap();
                let added = rt
                    .block_on(f.portal.finish_passkey_registration(
                        &auth,
                        &started.handle,
                        &credential,
                    ))
                    .unwrap();
                passkeys.devices.push(device);
                passkeys.credential_ids.push(added.credential_id);
            }
            f.after_mail_interval();
        }
        // Start one second into a fresh time step, after every setup's step, and far
        // from the registration's mails and logins.
        f.clock.advance(Duration::hours(2));
        let s = f.now().unix_timestamp();
        f.clock
            .advance(Duration::seconds(STEP - s.rem_euclid(STEP) + 1));
        let start = f.now() - Duration::seconds(1);
        Sut {
            rt,
            f,
            start,
            secrets,
            recovery,
            challenges: Vec::new(),
            auths: vec![None, None],
            accepted_steps: Vec::new(),
            accepted_codes: Vec::new(),
            accepted_assertions: Vec::new(),
            #[cfg(feature = "passkey-tests")]
            passkeys,
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        // `model` is the state after `step`; the SUT decides from its own store.
        let got = sut.run(&step, model);
        assert_eq!(Some(&got), model.last.as_ref(), "step {step:?}");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let mut steps = sut.accepted_steps.clone();
        steps.sort_unstable();
        steps.dedup();
        assert_eq!(
            steps.len(),
            sut.accepted_steps.len(),
            "a time step worked twice"
        );
        let mut codes = sut.accepted_codes.clone();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            sut.accepted_codes.len(),
            "a リカバリーコード worked twice"
        );
        let mut assertions = sut.accepted_assertions.clone();
        assertions.sort_unstable();
        assertions.dedup();
        assert_eq!(
            assertions.len(),
            sut.accepted_assertions.len(),
            "two logins on one passkey challenge"
        );
        assert!(model.challenges.iter().all(|c| c.attempts <= TRIES));
        assert!(model.members.iter().all(|m| m.otp_failures < ACCOUNT_TRIES));
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn second_factors_follow_the_model(sequential 1..40 => FactorModel);
}
