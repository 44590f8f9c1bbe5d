//! Shared pieces of the kenpo-auth fuzz targets: instants anywhere in `time`'s range, the
//! policy knobs the transition targets turn (only to values `Policy::validate` accepts),
//! a fixed digest keyring and the error-code check every parser target makes.

use arbitrary::Arbitrary;
use kenpo_auth::Policy;
use kenpo_auth::policy::Deviation;
use kenpo_auth::token::{DigestKey, DigestKeyring};
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// The first instant `time` can represent (UTC).
pub fn min_instant() -> OffsetDateTime {
    Date::MIN.midnight().assume_utc()
}

/// The last instant `time` can represent (UTC).
pub fn max_instant() -> OffsetDateTime {
    match Date::MAX.with_hms_nano(23, 59, 59, 999_999_999) {
        Ok(t) => t.assume_utc(),
        Err(_) => Date::MAX.midnight().assume_utc(),
    }
}

/// Where a run's clock starts. The edges of `time`'s range get their own variants so the
/// fuzzer reaches them without having to guess a 64-bit number.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Start {
    /// 2020-01-01T00:00Z plus up to 136 years.
    Ordinary(u32),
    /// Up to 136 years before the last representable instant.
    NearMax(u32),
    /// Up to 136 years after the first representable instant.
    NearMin(u32),
    /// Any Unix timestamp, clamped into the representable range.
    Anywhere(i64),
}

/// The instant a [`Start`] names, in the offset `offset_secs` when that is representable
/// (the instant is the same whatever the offset).
pub fn start_instant(start: Start, offset_secs: i32) -> OffsetDateTime {
    let secs = |n: u32| Duration::seconds(i64::from(n));
    let utc = match start {
        Start::Ordinary(n) => OffsetDateTime::from_unix_timestamp(1_577_836_800)
            .map_or(min_instant(), |t| t.saturating_add(secs(n))),
        Start::NearMax(n) => max_instant().saturating_sub(secs(n)),
        Start::NearMin(n) => min_instant().saturating_add(secs(n)),
        Start::Anywhere(ts) => {
            let lo = min_instant().unix_timestamp();
            let hi = max_instant().unix_timestamp();
            OffsetDateTime::from_unix_timestamp(ts.clamp(lo, hi)).unwrap_or(min_instant())
        }
    };
    UtcOffset::from_whole_seconds(offset_secs % 86_400)
        .ok()
        .and_then(|o| utc.checked_to_offset(o))
        .unwrap_or(utc)
}

/// Moves the harness clock; it stops at the ends of the representable range.
pub fn advance(now: OffsetDateTime, secs: i32) -> OffsetDateTime {
    now.saturating_add(Duration::seconds(i64::from(secs)))
}

/// The deadline `now + ttl` when it is representable. The core must never panic when it
/// is not; what it stores then is checked only for `>= now`.
pub fn deadline(now: OffsetDateTime, ttl: Duration) -> Option<OffsetDateTime> {
    now.checked_add(ttl)
}

/// Asserts an instant a transition computed as `now + ttl`: exact when representable,
/// otherwise at least not before `now` (for a positive `ttl`).
pub fn assert_deadline(what: &str, got: OffsetDateTime, now: OffsetDateTime, ttl: Duration) {
    match deadline(now, ttl) {
        Some(want) => assert_eq!(got, want, "{what}: expires_at must be now + ttl"),
        None => assert!(
            ttl.is_negative() || got >= now,
            "{what}: an unrepresentable deadline must saturate forwards"
        ),
    }
}

/// The policy every transition target starts from: the strict default, with the
/// deviations that let the fuzzer reach the looser ends of the validated ranges.
pub fn base_policy() -> Policy {
    let p = Policy::default()
        .allow_deviation(Deviation::LongOtpLifetime, "fuzzing the validated range")
        .allow_deviation(Deviation::ShortOtp, "fuzzing the validated range")
        .allow_deviation(Deviation::HighFailureCap, "fuzzing the validated range");
    assert!(p.validate().is_ok(), "the fuzz base policy must validate");
    p
}

/// A fixed keyring: the targets test the flows, not HMAC.
pub fn keyring() -> DigestKeyring {
    match DigestKey::new(1, [0x42u8; 32]) {
        Ok(k) => DigestKeyring::new(k),
        Err(_) => unreachable!("a 32-byte key is long enough"),
    }
}

/// A lifespan or cooldown: mostly small, sometimes any `i64` second count (which
/// `validate()` may refuse, or accept and overflow with).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Secs {
    /// 0 … 65 535 s.
    Small(u16),
    /// Any second count.
    Any(i64),
}

impl Secs {
    /// As a `time::Duration`.
    pub fn duration(self) -> Duration {
        match self {
            Secs::Small(n) => Duration::seconds(i64::from(n)),
            Secs::Any(n) => Duration::seconds(n),
        }
    }
}

/// A budget or cap: mostly small.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Count {
    /// 0 … 255.
    Small(u8),
    /// Any `u32`.
    Any(u32),
}

impl Count {
    /// As a `u32`.
    pub fn get(self) -> u32 {
        match self {
            Count::Small(n) => u32::from(n),
            Count::Any(n) => n,
        }
    }
}

/// One policy setting the transition targets change between steps.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Knob {
    /// `registration_link_ttl`.
    RegistrationLinkTtl(Secs),
    /// `identity_step_ttl`.
    IdentityStepTtl(Secs),
    /// `verification_link_ttl`.
    VerificationLinkTtl(Secs),
    /// `credentials_step_ttl`.
    CredentialsStepTtl(Secs),
    /// `auth_key_len`.
    AuthKeyLen(u8),
    /// `auth_key_tries`.
    AuthKeyTries(Count),
    /// `identity_tries_per_flow`.
    IdentityTriesPerFlow(Count),
    /// `otp_ttl`.
    OtpTtl(Secs),
    /// `otp_digits`.
    OtpDigits(u8),
    /// `otp_tries_per_challenge`.
    OtpTriesPerChallenge(Count),
    /// `otp_failures_per_account`.
    OtpFailuresPerAccount(Count),
    /// `otp_resend_cooldown`.
    OtpResendCooldown(Secs),
    /// `otp_resends_per_challenge`.
    OtpResendsPerChallenge(Count),
    /// `otp_screen_heartbeat`.
    OtpScreenHeartbeat(Option<Secs>),
}

/// Applies `knob` when the result still passes `Policy::validate`; returns whether it did.
pub fn apply_knob(policy: &mut Policy, knob: Knob) -> bool {
    let mut p = policy.clone();
    match knob {
        Knob::RegistrationLinkTtl(s) => p.registration_link_ttl = s.duration(),
        Knob::IdentityStepTtl(s) => p.identity_step_ttl = s.duration(),
        Knob::VerificationLinkTtl(s) => p.verification_link_ttl = s.duration(),
        Knob::CredentialsStepTtl(s) => p.credentials_step_ttl = s.duration(),
        Knob::AuthKeyLen(n) => p.auth_key_len = usize::from(n),
        Knob::AuthKeyTries(n) => p.auth_key_tries = n.get(),
        Knob::IdentityTriesPerFlow(n) => p.identity_tries_per_flow = n.get(),
        Knob::OtpTtl(s) => p.otp_ttl = s.duration(),
        Knob::OtpDigits(n) => p.otp_digits = usize::from(n),
        Knob::OtpTriesPerChallenge(n) => p.otp_tries_per_challenge = n.get(),
        Knob::OtpFailuresPerAccount(n) => p.otp_failures_per_account = n.get(),
        Knob::OtpResendCooldown(s) => p.otp_resend_cooldown = s.duration(),
        Knob::OtpResendsPerChallenge(n) => p.otp_resends_per_challenge = n.get(),
        Knob::OtpScreenHeartbeat(s) => p.otp_screen_heartbeat = s.map(Secs::duration),
    }
    if p.validate().is_ok() {
        *policy = p;
        true
    } else {
        false
    }
}

/// Asserts the shape of a stable error code: `<field>.<snake_case>`, and a non-empty
/// member-facing message in both languages.
pub fn assert_error_code(code: &str, field: &str, ja: &str, en: &str) {
    let rest = code.strip_prefix(field).and_then(|r| r.strip_prefix('.'));
    assert!(
        rest.is_some_and(
            |r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        ),
        "error code {code:?} is not `{field}.<snake_case>`"
    );
    assert!(!ja.is_empty() && !en.is_empty(), "{code}: empty message");
}

/// Full-width form of printable ASCII (`!`…`~` → U+FF01…U+FF5E), as Japanese IMEs type it.
pub fn widen_ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}
