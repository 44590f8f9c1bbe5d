//! Model-based test of 新規利用登録: random sequences of every R-step with right and wrong
//! inputs, clock ticks, and two family members who may share one address, run against the
//! real `Portal` and a small reference model. Every step's outcome must equal the model's.
//!
//! Invariants (SEC-08, SEC-10, SEC-11, SEC-46): no account without a verified identity; no
//! link, handle or 認証キー works twice or after expiry; e-mail addresses and members stay
//! unique across accounts.

mod common;

use common::*;
use kenpo_auth::token::{AuthKey, FlowHandle, RegistrationLinkToken, VerificationLinkToken};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::Duration;

/// Addresses the member may type: the family's shared one, and each member's own.
const ADDRESSES: [&str; 3] = [
    "yamada.family@example.jp",
    "taro.yamada@example.jp",
    "hanako.yamada@example.jp",
];
/// The two family members: (card, birth date).
const MEMBERS: [(&str, &str); 2] = [
    ("999-123456-00", "1985-04-12"),
    ("999-123456-01", "1987-09-30"),
];
const LOGIN_IDS: [&str; 3] = ["taro-sakura", "hanako-sakura", "yamada-home"];

const LINK1_TTL: i64 = 3 * 3600;
const STEP_TTL: i64 = 30 * 60;
const IDENTITY_TRIES: u32 = 5;
const MEMBER_TRIES: u32 = 10;
const KEY_TRIES: u32 = 5;

#[derive(Clone, Debug)]
enum Step {
    Start(usize),
    Open(usize),
    Identify {
        flow: usize,
        member: usize,
        right: bool,
    },
    Confirm {
        flow: usize,
        key: KeyChoice,
    },
    Complete {
        flow: usize,
        login: usize,
    },
    Tick(i64),
}

#[derive(Clone, Copy, Debug)]
enum KeyChoice {
    Right,
    Wrong,
    OtherFlow(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    AwaitingLink,
    AwaitingIdentity,
    AwaitingKey,
    AwaitingCredentials,
    Done,
    Dead,
}

#[derive(Clone, Debug)]
struct Flow {
    email: usize,
    stage: Stage,
    expires_at: i64,
    attempts: u32,
    key_attempts: u32,
    member: Option<usize>,
    has_link2: bool,
    has_credentials_handle: bool,
    /// When R5 made the account, with the login ID chosen: the same R5 again within
    /// `Policy::repeat_window` is told the same account.
    done: Option<(i64, usize)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Code(&'static str),
}

#[derive(Clone, Debug, Default)]
struct Counter {
    start: i64,
    count: u32,
    last: i64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    now: i64,
    flows: Vec<Flow>,
    /// (member, address, login ID) of each account.
    accounts: Vec<(usize, usize, usize)>,
    mail: [Option<Counter>; 3],
    member_checks: [Option<Counter>; 2],
    last: Option<Outcome>,
    /// Whether the last `Start` opened a flow (the SUT checks it saw a link-1 mail).
    started_flow: bool,
}

/// `window_hit` of the portal: a fixed window from its first event, a cap, and an
/// optional minimum gap between events.
fn hit(c: &mut Option<Counter>, now: i64, window: i64, cap: u32, gap: Option<i64>) -> bool {
    // SEC-13: the least interval is measured from the last mail, even when that mail was
    // in the previous window.
    let had_event = c.is_some();
    let cur = match c.clone() {
        Some(c) if now < c.start + window => c,
        Some(c) => Counter {
            start: now,
            count: 0,
            last: c.last,
        },
        None => Counter {
            start: now,
            count: 0,
            last: now - window,
        },
    };
    if let Some(gap) = gap
        && had_event
        && now < cur.last + gap
    {
        return false;
    }
    if cur.count >= cap {
        return false;
    }
    *c = Some(Counter {
        count: cur.count + 1,
        last: now,
        ..cur
    });
    true
}

impl Model {
    fn step(&mut self, step: &Step) -> Outcome {
        self.started_flow = false;
        let now = self.now;
        match *step {
            Step::Tick(s) => {
                self.now += s;
                Outcome::Ok
            }
            Step::Start(e) => {
                if hit(&mut self.mail[e], now, 3600, 5, Some(60))
                    && !self.accounts.iter().any(|a| a.1 == e)
                {
                    self.flows.push(Flow {
                        email: e,
                        stage: Stage::AwaitingLink,
                        expires_at: now + LINK1_TTL,
                        attempts: 0,
                        key_attempts: 0,
                        member: None,
                        has_link2: false,
                        has_credentials_handle: false,
                        done: None,
                    });
                    self.started_flow = true;
                }
                Outcome::Ok
            }
            Step::Open(f) => {
                let flow = &mut self.flows[f];
                match flow.stage {
                    Stage::AwaitingLink if now >= flow.expires_at => Outcome::Code("expired"),
                    Stage::AwaitingLink => {
                        flow.stage = Stage::AwaitingIdentity;
                        flow.expires_at = now + STEP_TTL;
                        Outcome::Ok
                    }
                    _ => Outcome::Code("link.used"),
                }
            }
            Step::Identify {
                flow: f,
                member: m,
                right,
            } => {
                // The browser that passed R3, again: told so while link 2 lives.
                if self.flows[f].stage == Stage::AwaitingKey && now < self.flows[f].expires_at {
                    return Outcome::Code("identity.already_verified");
                }
                if self.flows[f].stage != Stage::AwaitingIdentity {
                    return Outcome::Code("flow.wrong_step");
                }
                if now >= self.flows[f].expires_at {
                    return Outcome::Code("expired");
                }
                let exhausted = !hit(
                    &mut self.member_checks[m],
                    now,
                    24 * 3600,
                    MEMBER_TRIES,
                    None,
                );
                if right && !exhausted {
                    let email = self.flows[f].email;
                    let member_has = self.accounts.iter().any(|a| a.0 == m);
                    let email_taken = self.accounts.iter().any(|a| a.1 == email);
                    let flow = &mut self.flows[f];
                    if member_has || email_taken {
                        flow.stage = Stage::Dead;
                        return Outcome::Code(if member_has {
                            "account.already_registered"
                        } else {
                            "email.family_in_use"
                        });
                    }
                    flow.stage = Stage::AwaitingKey;
                    flow.expires_at = now + STEP_TTL;
                    flow.member = Some(m);
                    flow.has_link2 = true;
                    return Outcome::Ok;
                }
                let flow = &mut self.flows[f];
                flow.attempts += 1;
                if flow.attempts >= IDENTITY_TRIES {
                    flow.stage = Stage::Dead;
                }
                // SEC-09: an exhausted member budget answers like a failed match.
                Outcome::Code("identity.not_confirmed")
            }
            Step::Confirm { flow: f, key } => {
                let flow = &mut self.flows[f];
                match flow.stage {
                    Stage::AwaitingKey if now >= flow.expires_at => Outcome::Code("expired"),
                    Stage::AwaitingKey => {
                        if matches!(key, KeyChoice::Right) {
                            flow.stage = Stage::AwaitingCredentials;
                            flow.expires_at = now + STEP_TTL;
                            flow.has_credentials_handle = true;
                            Outcome::Ok
                        } else {
                            flow.key_attempts += 1;
                            if flow.key_attempts >= KEY_TRIES {
                                flow.stage = Stage::Dead;
                                Outcome::Code("auth_key.attempts_exhausted")
                            } else {
                                Outcome::Code("auth_key.incorrect")
                            }
                        }
                    }
                    _ => Outcome::Code("link.used"),
                }
            }
            Step::Complete { flow: f, login } => {
                let flow = &self.flows[f];
                let repeat = kenpo_auth::Policy::default().repeat_window.whole_seconds();
                if let Some((at, chosen)) = flow.done
                    && chosen == login
                    && now < at + repeat
                {
                    return Outcome::Ok;
                }
                if flow.stage != Stage::AwaitingCredentials {
                    return Outcome::Code("flow.wrong_step");
                }
                if now >= flow.expires_at {
                    return Outcome::Code("expired");
                }
                let member = flow.member.unwrap_or(usize::MAX);
                let email = flow.email;
                if self.accounts.iter().any(|a| a.2 == login) {
                    return Outcome::Code("login_id.taken");
                }
                if self.accounts.iter().any(|a| a.1 == email) {
                    return Outcome::Code("email.family_in_use");
                }
                if self.accounts.iter().any(|a| a.0 == member) {
                    return Outcome::Code("account.already_registered");
                }
                self.accounts.push((member, email, login));
                self.flows[f].stage = Stage::Done;
                self.flows[f].done = Some((now, login));
                Outcome::Ok
            }
        }
    }
}

struct RegistrationModel;

impl ReferenceStateMachine for RegistrationModel {
    type State = Model;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Step> {
        let ticks = prop_oneof![
            Just(1i64),
            Just(59),
            Just(61),
            Just(STEP_TTL - 1),
            Just(STEP_TTL),
            Just(LINK1_TTL),
            Just(24 * 3600),
        ]
        .prop_map(Step::Tick);
        let start = (0..ADDRESSES.len()).prop_map(Step::Start);
        let n = state.flows.len();
        if n == 0 {
            return prop_oneof![4 => start, 1 => ticks].boxed();
        }
        let f = prop_oneof![3 => Just(n - 1), 1 => 0..n];
        let key = prop_oneof![
            2 => Just(KeyChoice::Right),
            3 => Just(KeyChoice::Wrong),
            1 => (0..n).prop_map(KeyChoice::OtherFlow),
        ];
        prop_oneof![
            3 => start,
            3 => f.clone().prop_map(Step::Open),
            6 => (f.clone(), 0..MEMBERS.len(), prop::bool::weighted(0.45))
                .prop_map(|(flow, member, right)| Step::Identify { flow, member, right }),
            6 => (f.clone(), key).prop_map(|(flow, key)| Step::Confirm { flow, key }),
            3 => (f, 0..LOGIN_IDS.len()).prop_map(|(flow, login)| Step::Complete { flow, login }),
            2 => ticks,
        ]
        .boxed()
    }

    fn apply(mut state: Model, step: &Step) -> Model {
        state.last = Some(state.step(step));
        state
    }

    fn preconditions(state: &Model, step: &Step) -> bool {
        let n = state.flows.len();
        match *step {
            Step::Open(f) => f < n,
            // The member's browser only holds a handle once the link was opened.
            Step::Identify { flow, .. } => {
                flow < n && state.flows[flow].stage != Stage::AwaitingLink
            }
            Step::Confirm { flow, key } => {
                flow < n
                    && state.flows[flow].has_link2
                    && match key {
                        KeyChoice::OtherFlow(g) => g < n && g != flow && state.flows[g].has_link2,
                        _ => true,
                    }
            }
            Step::Complete { flow, .. } => flow < n && state.flows[flow].has_credentials_handle,
            Step::Start(_) | Step::Tick(_) => true,
        }
    }
}

/// What the member's browser and mailbox hold for one flow.
#[derive(Default)]
struct Held {
    link1: Option<RegistrationLinkToken>,
    r2_handle: Option<FlowHandle>,
    link2: Option<VerificationLinkToken>,
    key: Option<AuthKey>,
    r4_handle: Option<FlowHandle>,
}

struct Sut {
    rt: tokio::runtime::Runtime,
    f: Fixture,
    flows: Vec<Held>,
}

fn outcome<T>(r: Result<T, kenpo_auth::Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Code(rejection(e).code()),
    }
}

impl Sut {
    fn run(&mut self, step: &Step, model: &Model) -> Outcome {
        let portal = self.f.portal.clone();
        match *step {
            Step::Tick(s) => {
                self.f.clock.advance(Duration::seconds(s));
                Outcome::Ok
            }
            Step::Start(e) => {
                let before = self.f.mailer.count();
                let r = self.rt.block_on(portal.start_registration(ADDRESSES[e]));
                let mails: Vec<_> = self.f.mailer.sent().into_iter().skip(before).collect();
                let link1 = mails.iter().find_map(|m| match &m.message {
                    kenpo_auth::mail::MailMessage::RegistrationLink(l) => Some(l.token.clone()),
                    _ => None,
                });
                assert_eq!(
                    link1.is_some(),
                    model.started_flow,
                    "flow creation at {step:?}"
                );
                if let Some(link1) = link1 {
                    self.flows.push(Held {
                        link1: Some(link1),
                        ..Held::default()
                    });
                }
                outcome(r)
            }
            Step::Open(f) => {
                let token = self.flows[f].link1.clone().unwrap();
                let r = self.rt.block_on(portal.open_registration_link(&token));
                if let Ok(h) = &r {
                    self.flows[f].r2_handle = Some(h.clone());
                }
                outcome(r)
            }
            Step::Identify {
                flow,
                member,
                right,
            } => {
                let handle = self.flows[flow].r2_handle.clone().unwrap();
                let (card, birth) = MEMBERS[member];
                let birth = if right { birth } else { "1970-01-01" };
                let before = self.f.mailer.count();
                let r = self
                    .rt
                    .block_on(portal.verify_identity(&handle, claim(card, birth)));
                if let Ok(shown) = &r {
                    let mail = self.f.mailer.sent().into_iter().nth(before).unwrap();
                    let kenpo_auth::mail::MailMessage::IdentityVerified(l) = mail.message else {
                        panic!("link 2 expected");
                    };
                    self.flows[flow].link2 = Some(l.token);
                    self.flows[flow].key = Some(shown.auth_key.clone());
                }
                outcome(r)
            }
            Step::Confirm { flow, key } => {
                let link2 = self.flows[flow].link2.clone().unwrap();
                let right = self.flows[flow].key.clone().unwrap();
                let typed = match key {
                    KeyChoice::Right => right.expose_secret().to_owned(),
                    KeyChoice::Wrong => {
                        if right.expose_secret() == "ZZZZZZZZ" {
                            "YYYYYYYY".to_owned()
                        } else {
                            "ZZZZZZZZ".to_owned()
                        }
                    }
                    KeyChoice::OtherFlow(g) => {
                        let other = self.flows[g].key.clone().unwrap();
                        assert_ne!(other, right, "two flows drew the same 認証キー");
                        other.expose_secret().to_owned()
                    }
                };
                let r = self
                    .rt
                    .block_on(portal.confirm_auth_key(&link2, &parsed(&typed)));
                if let Ok(h) = &r {
                    self.flows[flow].r4_handle = Some(h.clone());
                }
                outcome(r)
            }
            Step::Complete { flow, login } => {
                let handle = self.flows[flow].r4_handle.clone().unwrap();
                outcome(self.rt.block_on(
                    portal.complete_registration(&handle, credentials(LOGIN_IDS[login], PASSWORD)),
                ))
            }
        }
    }
}

impl StateMachineTest for RegistrationModel {
    type SystemUnderTest = Sut;
    type Reference = RegistrationModel;

    fn init_test(_: &Model) -> Sut {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Sut {
            rt,
            f: fixture(),
            flows: Vec::new(),
        }
    }

    fn apply(mut sut: Sut, model: &Model, step: Step) -> Sut {
        let got = sut.run(&step, model);
        assert_eq!(Some(&got), model.last.as_ref(), "step {step:?}");
        sut
    }

    fn check_invariants(sut: &Sut, model: &Model) {
        let accounts = sut.f.store.danger_accounts();
        assert_eq!(accounts.len(), model.accounts.len());
        // E-mail addresses and members stay unique (SEC-08, one account per member).
        let mut emails: Vec<_> = accounts
            .iter()
            .map(|a| a.email.as_ref().unwrap().canonical().to_owned())
            .collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), accounts.len());
        let mut members: Vec<_> = accounts.iter().map(|a| a.member.clone()).collect();
        members.sort();
        members.dedup();
        assert_eq!(members.len(), accounts.len());
        // No account without a verified identity: every account's member is the one the
        // roster matched in that flow, and its address is the flow's.
        for (member, email, _) in &model.accounts {
            let id = format!("M00{}", member + 1);
            assert!(accounts.iter().any(|a| a.member.as_str() == id
                && a.email.as_ref().unwrap().canonical() == ADDRESSES[*email]));
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 4096,
        .. ProptestConfig::default()
    })]
    #[test]
    fn registration_matches_reference_model(sequential 1..60 => RegistrationModel);
}
