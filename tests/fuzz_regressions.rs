//! Crashes the fuzz targets found (`fuzz/`), replayed through the same functions of the
//! pure core. The raw inputs are kept in `fuzz/regressions/<target>/<name>`; each test
//! here is the decoded input of the file with its name, step for step.
//!
//! All of them are one bug: every deadline was `now + ttl`, and `time` panics when the
//! sum passes 9999-12-31. A clock at the end of the range (or a lifespan the policy
//! accepts but that does not fit) panicked the request. Deadlines now saturate at the last
//! representable instant, which still counts as expired once reached (`now >= expires_at`).

use kenpo_auth::Policy;
use kenpo_auth::domain::{BirthDate, CardNumber, EmailAddress, KanaName};
use kenpo_auth::flow::login::{self, LoginState};
use kenpo_auth::flow::registration::{self, LinkStatus, RegistrationState, RosterCheck};
use kenpo_auth::flow::{Env, FlowState, IdentityClaim};
use kenpo_auth::ports::{AccountId, MemberId, MemberRecord, Relation, SecurityStamp};
use kenpo_auth::token::{DigestKey, DigestKeyring};
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// `Start::Anywhere(ts)` with a huge `ts`: clamped to the last whole second.
const LAST_SECOND: OffsetDateTime = datetime!(9999-12-31 23:59:59 UTC);
/// `Start::NearMax(0)`: the last representable instant.
const LAST_INSTANT: OffsetDateTime = datetime!(9999-12-31 23:59:59.999999999 UTC);

fn keys() -> DigestKeyring {
    DigestKeyring::new(DigestKey::new(1, [0x42u8; 32]).unwrap())
}

fn env<'a>(now: OffsetDateTime, policy: &'a Policy, keys: &'a DigestKeyring) -> Env<'a> {
    Env { now, policy, keys }
}

fn email() -> EmailAddress {
    EmailAddress::parse("taro.yamada@example.jp").unwrap()
}

fn roster() -> MemberRecord {
    MemberRecord::new(
        MemberId::new("member-1"),
        CardNumber::parse("999-123456-00").unwrap(),
        BirthDate::parse("1990-04-01").unwrap(),
        Some(KanaName::parse("ヤマダタロウ").unwrap()),
        Relation::Insured,
        true,
    )
}

fn claim(r: &MemberRecord) -> IdentityClaim {
    IdentityClaim {
        card_number: r.card_number.clone(),
        birth_date: r.birth_date,
        kana_name: r.kana_name.clone(),
    }
}

/// R1 and R2 at `now`: the flow in AwaitingIdentity and its handle's digest.
fn opened(
    now: OffsetDateTime,
    policy: &Policy,
    keys: &DigestKeyring,
    rng: &mut StdRng,
) -> (RegistrationState, kenpo_auth::token::TokenDigest) {
    let (s, link) = registration::start(email(), env(now, policy, keys), rng);
    let (state, handle) = RegistrationState::AwaitingLinkOpen(s)
        .open_link(&link.digest(keys), env(now, policy, keys), rng)
        .expect("link 1 is live until the last instant");
    (state, handle.digest(keys))
}

// fuzz/regressions/registration_transitions/start-at-end-of-time
#[test]
fn fuzz_r1_start_at_end_of_time_saturates_link_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(0);
    let (s, _link) = registration::start(email(), env(LAST_SECOND, &policy, &keys), &mut rng);
    assert_eq!(s.expires_at, LAST_INSTANT);
    assert!(
        s.expires_at > LAST_SECOND,
        "still live for the rest of the range"
    );
}

// fuzz/regressions/registration_transitions/purge-after-at-end-of-time
#[test]
fn fuzz_purge_after_at_end_of_time_saturates() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(0);
    let (s, _link) = registration::start(email(), env(LAST_SECOND, &policy, &keys), &mut rng);
    let flow = FlowState::Registration(RegistrationState::AwaitingLinkOpen(s));
    assert_eq!(flow.purge_after(), LAST_INSTANT);
}

// fuzz/regressions/registration_transitions/open-link-at-end-of-time
#[test]
fn fuzz_r2_open_link_at_end_of_time_saturates_identity_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(3_314_650_422_504_849_408);
    let (state, _) = opened(LAST_SECOND, &policy, &keys, &mut rng);
    let RegistrationState::AwaitingIdentity(s) = state else {
        panic!("R2 leads to AwaitingIdentity");
    };
    assert_eq!(s.expires_at, LAST_INSTANT);
}

// fuzz/regressions/registration_transitions/temporary-credentials-at-end-of-time
#[test]
fn fuzz_r2_temporary_credentials_at_end_of_time_saturate_credentials_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(175_921_860_706_304);
    let (state, handle) = opened(LAST_SECOND, &policy, &keys, &mut rng);
    let account = AccountId::generate(&mut rng);
    let (next, _h) = state
        .accept_temporary_credentials(
            &handle,
            account.clone(),
            MemberId::new("member-provisioned"),
            SecurityStamp::generate(&mut rng),
            env(LAST_SECOND, &policy, &keys),
            &mut rng,
        )
        .expect("R2' on its step");
    let RegistrationState::AwaitingCredentials(s) = next else {
        panic!("R2' leads to AwaitingCredentials");
    };
    assert_eq!(s.expires_at, LAST_INSTANT);
    assert_eq!(s.proof.provisioned_account(), Some(&account));
}

// fuzz/regressions/registration_transitions/verify-identity-at-end-of-time
#[test]
fn fuzz_r3_verify_identity_at_end_of_time_saturates_link2_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(506_373_484_713_082_918);
    let (state, handle) = opened(LAST_SECOND, &policy, &keys, &mut rng);
    let r = roster();
    let step = state.verify_identity(
        &handle,
        RosterCheck {
            claim: &claim(&r),
            record: Some(&r),
            member_exhausted: false,
        },
        env(LAST_SECOND, &policy, &keys),
        &mut rng,
    );
    let verified = step.result.expect("the roster matches");
    assert_eq!(verified.expires_at, LAST_INSTANT);
    assert!(matches!(step.state, RegistrationState::AwaitingAuthKey(_)));
}

// No crash file: R4 computed its deadline exactly like R2' (fixed in the same change);
// this replays the path the fuzzer now covers.
#[test]
fn fuzz_r4_confirm_auth_key_at_end_of_time_saturates_credentials_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(4);
    let (state, handle) = opened(LAST_SECOND, &policy, &keys, &mut rng);
    let r = roster();
    let step = state.verify_identity(
        &handle,
        RosterCheck {
            claim: &claim(&r),
            record: Some(&r),
            member_exhausted: false,
        },
        env(LAST_SECOND, &policy, &keys),
        &mut rng,
    );
    let verified = step.result.unwrap();
    let link2 = verified.link.digest(&keys);
    assert!(matches!(
        step.state.link2_status(&link2, LAST_SECOND),
        LinkStatus::Valid { .. }
    ));
    let done = step.state.confirm_auth_key(
        &link2,
        &verified.auth_key,
        env(LAST_SECOND, &policy, &keys),
        &mut rng,
    );
    done.result.expect("the right 認証キー before expiry");
    let RegistrationState::AwaitingCredentials(s) = &done.state else {
        panic!("R4 leads to AwaitingCredentials");
    };
    assert_eq!(s.expires_at, LAST_INSTANT);
    // At the last instant itself everything has expired.
    assert!(
        done.state
            .ready_to_complete(&s.handle, LAST_INSTANT)
            .is_err()
    );
}

// fuzz/regressions/login_transitions/issue-at-end-of-time
#[test]
fn fuzz_l1_issue_at_end_of_time_saturates_otp_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(6_600_416_010_021_502_974);
    let account = AccountId::generate(&mut rng);
    let (s, _id, _code) = login::issue(account, env(LAST_SECOND, &policy, &keys), &mut rng);
    assert_eq!(s.expires_at, LAST_INSTANT);
}

// fuzz/regressions/login_transitions/purge-after-at-end-of-time
#[test]
fn fuzz_login_purge_after_at_end_of_time_saturates() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(4_657_957_195_739_103_230);
    let account = AccountId::generate(&mut rng);
    let (s, id, _code) = login::issue(account, env(LAST_INSTANT, &policy, &keys), &mut rng);
    let open = LoginState::AwaitingOtp(s);
    assert_eq!(FlowState::Login(open.clone()).purge_after(), LAST_INSTANT);
    let closed = open.close(&id.digest(&keys), LAST_INSTANT).unwrap();
    assert_eq!(FlowState::Login(closed).purge_after(), LAST_INSTANT);
}

// fuzz/regressions/login_transitions/resend-cooldown-at-end-of-time
#[test]
fn fuzz_l4_resend_cooldown_at_end_of_time_saturates() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(7_161_677_745_521_754_110);
    let account = AccountId::generate(&mut rng);
    let (s, id, _code) = login::issue(account, env(LAST_INSTANT, &policy, &keys), &mut rng);
    // Sent at the last instant: the cooldown ends there too, so the resend goes ahead
    // and its code is dead on arrival (nothing lives past the end of the range).
    let (next, _code) = LoginState::AwaitingOtp(s)
        .resend(
            &id.digest(&keys),
            env(LAST_INSTANT, &policy, &keys),
            &mut rng,
        )
        .expect("cooldown saturates to now");
    let LoginState::AwaitingOtp(n) = next else {
        panic!("resend keeps the challenge open");
    };
    assert_eq!(n.expires_at, LAST_INSTANT);
}

// fuzz/regressions/login_transitions/resend-otp-ttl-at-end-of-time
#[test]
fn fuzz_l4_resend_after_advancing_to_end_of_time_saturates_otp_deadline() {
    let (policy, keys) = (Policy::default(), keys());
    let mut rng = StdRng::seed_from_u64(72_057_591_410_418_686);
    let account = AccountId::generate(&mut rng);
    let start = LAST_INSTANT - Duration::seconds(570_359_872);
    let (s, id, _code) = login::issue(account, env(start, &policy, &keys), &mut rng);
    let now = LAST_INSTANT;
    let (next, _code) = LoginState::AwaitingOtp(s)
        .resend(&id.digest(&keys), env(now, &policy, &keys), &mut rng)
        .expect("the cooldown is long over");
    let LoginState::AwaitingOtp(n) = next else {
        panic!("resend keeps the challenge open");
    };
    assert_eq!((n.sent_at, n.expires_at), (now, LAST_INSTANT));
}

// fuzz/regressions/login_transitions/heartbeat-at-end-of-time
#[test]
fn fuzz_l3_heartbeat_deadline_at_end_of_time_saturates() {
    let (keys, mut policy) = (keys(), Policy::default());
    policy.otp_screen_heartbeat = Some(Duration::seconds(25_377));
    let mut rng = StdRng::seed_from_u64(7_161_676_685_767_828_478);
    let account = AccountId::generate(&mut rng);
    let (s, id, _code) = login::issue(account, env(LAST_SECOND, &policy, &keys), &mut rng);
    let d = id.digest(&keys);
    let state = LoginState::AwaitingOtp(s);
    // The heartbeat has not lapsed (its deadline saturates past `now`) …
    let (alive_state, alive) = state
        .clone()
        .heartbeat(&d, env(LAST_SECOND, &policy, &keys));
    assert!(alive && alive_state.is_open());
    // … and the resend the fuzzer sent is refused by the cooldown, not by a panic.
    assert!(
        state
            .resend(&d, env(LAST_SECOND, &policy, &keys), &mut rng)
            .is_err()
    );
}
