//! The pure flow core, without a store, a mailer or a runtime: each registration and
//! login transition on its own, with the `Env { now, policy, keys }` the portal passes.
//!
//! Each timed call gets a fresh copy of its input state (cloned outside the timing), and
//! does what it does in the portal: draw its tokens from `rand::rng()` and digest them
//! with HMAC-SHA-256. The digest of the token the member presents is computed by the
//! portal before the transition, so it is outside these figures; `token/digest` shows
//! what one costs.
//!
//! Run: `cargo bench --bench transitions`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kenpo_auth::Policy;
use kenpo_auth::flow::registration::RosterCheck;
use kenpo_auth::flow::{Env, LoginState, RegistrationState, login, registration};
use kenpo_auth::ports::AccountId;
use kenpo_auth::testkit::fixtures::{self, TARO_BIRTH, TARO_CARD, TARO_EMAIL};
use kenpo_auth::token::{OtpCode, RegistrationLinkToken};

fn transitions(c: &mut Criterion) {
    let policy = Policy::default();
    let keys = fixtures::test_keyring();
    let env = Env {
        now: fixtures::START,
        policy: &policy,
        keys: &keys,
    };
    let rng = &mut rand::rng();
    let email = fixtures::address(TARO_EMAIL);
    let record = fixtures::taro();
    let claim = fixtures::claim(TARO_CARD, TARO_BIRTH);

    // One journey through the core, keeping each step's input state and the secrets the
    // member would present.
    let (awaiting_link, link1) = registration::start(email.clone(), env, rng);
    let awaiting_link = RegistrationState::AwaitingLinkOpen(awaiting_link);
    let link1 = link1.digest(&keys);
    let (awaiting_identity, handle) = awaiting_link.clone().open_link(&link1, env, rng).unwrap();
    let handle = handle.digest(&keys);
    let check = RosterCheck {
        claim: &claim,
        record: Some(&record),
        member_exhausted: false,
    };
    let step = awaiting_identity
        .clone()
        .verify_identity(&handle, check, env, rng);
    let verified = step.result.unwrap();
    let awaiting_key = step.state;
    let link2 = verified.link.digest(&keys);
    let auth_key = verified.auth_key;
    assert!(
        awaiting_key
            .clone()
            .confirm_auth_key(&link2, &auth_key, env, rng)
            .result
            .is_ok()
    );
    let account = AccountId::generate(rng);
    let (awaiting_otp, challenge, code) = login::issue(account.clone(), env, rng);
    let awaiting_otp = LoginState::AwaitingOtp(awaiting_otp);
    let challenge = challenge.digest(&keys);
    let wrong_code = OtpCode::parse(if code.expose_secret() == "000000" {
        "111111"
    } else {
        "000000"
    })
    .unwrap();

    let mut g = c.benchmark_group("transitions");
    g.bench_function("registration::start (R1)", |b| {
        b.iter_batched(
            || email.clone(),
            |email| registration::start(email, env, rng),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("RegistrationState::open_link (R2)", |b| {
        b.iter_batched(
            || awaiting_link.clone(),
            |s| s.open_link(&link1, env, rng).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("RegistrationState::verify_identity (R3, match)", |b| {
        b.iter_batched(
            || awaiting_identity.clone(),
            |s| {
                let step = s.verify_identity(&handle, check, env, rng);
                assert!(step.result.is_ok());
                step
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("RegistrationState::confirm_auth_key (R4, right key)", |b| {
        b.iter_batched(
            || awaiting_key.clone(),
            |s| {
                let step = s.confirm_auth_key(&link2, &auth_key, env, rng);
                assert!(step.result.is_ok());
                step
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("login::issue (L1)", |b| {
        b.iter_batched(
            || account.clone(),
            |account| login::issue(account, env, rng),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("LoginState::verify (L2, right code)", |b| {
        b.iter_batched(
            || awaiting_otp.clone(),
            |s| {
                let v = s.verify(&challenge, &code, 0, env);
                assert!(v.outcome.is_ok());
                v
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("LoginState::verify (L2, wrong code)", |b| {
        b.iter_batched(
            || awaiting_otp.clone(),
            |s| {
                let v = s.verify(&challenge, &wrong_code, 0, env);
                assert!(v.outcome.is_err());
                v
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("token");
    let token = RegistrationLinkToken::generate(rng);
    g.bench_function("digest (HMAC-SHA-256 of a link token)", |b| {
        b.iter(|| token.digest(&keys))
    });
    g.finish();
}

criterion_group!(benches, transitions);
criterion_main!(benches);
