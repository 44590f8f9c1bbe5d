//! The bounds of every numeric [`Policy`] knob, in one table: [`KNOBS`].
//!
//! Each knob has a hard minimum and maximum that no deviation lifts, a strict default,
//! and, where a standard draws a tighter line than the hard bound, the named
//! [`Deviation`] a host must allow (with a rationale) to go past that line (SEC-48).
//! [`Policy::validate`] walks this table; hosts and documentation can print it.

use std::cmp::Ordering;
use std::fmt;

use time::Duration;

use super::{
    Deviation, MAX_CONFIRMATION_TTL, MAX_CONSECUTIVE_FAILURES, MAX_OTP_TTL, Policy,
    STRICT_MIN_PASSWORD_CHARS,
};
use crate::domain::PasswordRules;
use crate::domain::password::MAX_BYTES;
use crate::password_hash::HashParams;
use crate::token::{AuthKey, OtpCode};

/// The value of one knob: a span of time or a count.
///
/// Values of the same kind are ordered; values of different kinds are not comparable
/// (`partial_cmp` is `None`), which never happens inside one [`Knob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KnobValue {
    /// A lifespan, window, cooldown or delay.
    Duration(Duration),
    /// A length, number of digits, budget, cap or cost.
    Count(u64),
}

impl PartialOrd for KnobValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (KnobValue::Duration(a), KnobValue::Duration(b)) => a.partial_cmp(b),
            (KnobValue::Count(a), KnobValue::Count(b)) => a.partial_cmp(b),
            _ => None,
        }
    }
}

impl fmt::Display for KnobValue {
    /// Durations in the largest whole unit (`3 h`, `30 min`, `21 d`, `90 s`); counts as
    /// numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KnobValue::Count(n) => write!(f, "{n}"),
            KnobValue::Duration(d) => {
                let s = d.whole_seconds();
                let sub = d.subsec_nanoseconds();
                if sub != 0 {
                    write!(f, "{} ms", d.whole_milliseconds())
                } else if s != 0 && s % 86_400 == 0 {
                    write!(f, "{} d", s / 86_400)
                } else if s != 0 && s % 3_600 == 0 {
                    write!(f, "{} h", s / 3_600)
                } else if s != 0 && s % 60 == 0 {
                    write!(f, "{} min", s / 60)
                } else {
                    write!(f, "{s} s")
                }
            }
        }
    }
}

/// On which side of the strict value a setting is looser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loosening {
    /// Values below the strict value are looser (fewer digits, cheaper hashing).
    Below,
    /// Values above the strict value are looser (longer lifetimes, higher caps).
    Above,
}

/// The line a standard draws inside a knob's hard bounds, and the deviation that
/// permits crossing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KnobDeviation {
    /// The strictest value still allowed without the deviation.
    pub strict: KnobValue,
    /// Which side of `strict` needs the deviation.
    pub loosening: Loosening,
    /// The deviation a host must allow, with a rationale, to go past `strict`.
    pub deviation: Deviation,
}

/// One numeric knob of [`Policy`]: its bounds, strict default, and the deviation (if
/// any) that lets it go past a standard's line.
///
/// Build nothing from it: the table [`KNOBS`] is the only source of knobs.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Knob {
    /// The field's name as written in Rust (`password.min_chars` for nested fields).
    /// [`PolicyError`](super::PolicyError) names the same string.
    pub name: &'static str,
    /// Hard minimum: a smaller value is refused, whatever the deviations.
    pub min: KnobValue,
    /// The value of [`Policy::default()`] (the strict default); `None` when the knob is
    /// optional and off by default.
    pub default: Option<KnobValue>,
    /// Hard maximum: a larger value is refused, whatever the deviations.
    pub max: KnobValue,
    /// The standard's line inside `min..=max`, if the knob has one.
    pub deviation: Option<KnobDeviation>,
    /// Why the bounds are where they are; also the `reason` of an out-of-range error.
    pub why: &'static str,
    read: fn(&Policy) -> Option<KnobValue>,
    #[cfg(test)]
    pub(super) write: fn(&mut Policy, KnobValue),
}

impl fmt::Debug for Knob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Knob")
            .field("name", &self.name)
            .field("min", &self.min)
            .field("default", &self.default)
            .field("max", &self.max)
            .field("deviation", &self.deviation)
            .finish_non_exhaustive()
    }
}

impl Knob {
    /// The knob's value in `policy`, or `None` when an optional knob is off.
    pub fn value(&self, policy: &Policy) -> Option<KnobValue> {
        (self.read)(policy)
    }

    /// Whether `value` lies within the hard bounds.
    pub fn in_bounds(&self, value: KnobValue) -> bool {
        value >= self.min && value <= self.max
    }

    /// The deviation `value` needs, if it is past the standard's line.
    pub fn deviation_for(&self, value: KnobValue) -> Option<Deviation> {
        let d = self.deviation?;
        let past = match d.loosening {
            Loosening::Below => value < d.strict,
            Loosening::Above => value > d.strict,
        };
        past.then_some(d.deviation)
    }

    /// One row of the Markdown table in the docs of [`KNOBS`].
    pub fn markdown_row(&self) -> String {
        let default = self
            .default
            .map_or_else(|| "off".to_owned(), |v| v.to_string());
        let deviation = match self.deviation {
            None => "—".to_owned(),
            Some(d) => format!(
                "{} {}: `{}`",
                match d.loosening {
                    Loosening::Below => "below",
                    Loosening::Above => "above",
                },
                d.strict,
                d.deviation.code()
            ),
        };
        format!(
            "| `{}` | {} | {} | {} | {} |",
            self.name, self.min, default, self.max, deviation
        )
    }
}

impl fmt::Display for Knob {
    /// In words: `otp_ttl: 1 min to 24 h, default 10 min; above 10 min needs
    /// long_otp_lifetime`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} to {}, default ", self.name, self.min, self.max)?;
        match self.default {
            Some(v) => write!(f, "{v}")?,
            None => f.write_str("off")?,
        }
        if let Some(d) = self.deviation {
            let side = match d.loosening {
                Loosening::Below => "below",
                Loosening::Above => "above",
            };
            write!(f, "; {side} {} needs {}", d.strict, d.deviation.code())?;
        }
        Ok(())
    }
}

const fn d(v: Duration) -> KnobValue {
    KnobValue::Duration(v)
}

const fn n(v: u64) -> KnobValue {
    KnobValue::Count(v)
}

const fn below(strict: KnobValue, deviation: Deviation) -> Option<KnobDeviation> {
    Some(KnobDeviation {
        strict,
        loosening: Loosening::Below,
        deviation,
    })
}

const fn above(strict: KnobValue, deviation: Deviation) -> Option<KnobDeviation> {
    Some(KnobDeviation {
        strict,
        loosening: Loosening::Above,
        deviation,
    })
}

// `as u64` widens `u32`/`usize` (at most 64 bits on every supported target).
macro_rules! knob {
    (duration $name:literal, $($field:ident).+, $min:expr, $default:expr, $max:expr, $dev:expr, $why:literal) => {
        Knob {
            name: $name,
            min: d($min),
            default: Some(d($default)),
            max: d($max),
            deviation: $dev,
            why: $why,
            read: |p| Some(KnobValue::Duration(p.$($field).+)),
            #[cfg(test)]
            write: |p, v| {
                if let KnobValue::Duration(v) = v {
                    p.$($field).+ = v;
                }
            },
        }
    };
    (count $name:literal, $($field:ident).+, $min:expr, $default:expr, $max:expr, $dev:expr, $why:literal) => {
        Knob {
            name: $name,
            min: n($min as u64),
            default: Some(n($default as u64)),
            max: n($max as u64),
            deviation: $dev,
            why: $why,
            read: |p| Some(KnobValue::Count(p.$($field).+ as u64)),
            #[cfg(test)]
            write: |p, v| {
                if let KnobValue::Count(v) = v {
                    if let Ok(v) = v.try_into() {
                        p.$($field).+ = v;
                    }
                }
            },
        }
    };
}

/// Retry budgets (tries, checks, resends, mails) have a hard ceiling: past it a budget
/// stops limiting anything. 10 guesses at the shortest codes allowed (a 4-digit
/// 暗証キー, a 4-character 認証キー) succeed with probability 10⁻³ and 10⁻⁵.
const MAX_TRIES: u64 = 10;
/// Ceiling of the mail budgets: 20 mails an hour, one every three minutes, is already
/// a flood for a member's phone inbox (SEC-13, SEC-30).
const MAX_MAILS_PER_HOUR: u64 = 20;
/// Hard ceiling of the consecutive-failure caps, even with
/// [`Deviation::HighFailureCap`]: ten times NIST's 100.
const MAX_FAILURE_CAP: u64 = 1_000;
/// Shortest lifespan of a mailed link: carrier mail can take minutes to arrive.
const MIN_LINK_TTL: Duration = Duration::minutes(5);

/// Every numeric knob of [`Policy`] with its hard bounds, strict default and deviation.
///
/// [`Policy::validate`] refuses a value outside `min..=max` with
/// `PolicyError::OutOfRange` naming the knob, and a value past a knob's deviation line
/// unless that [`Deviation`] was allowed. The non-numeric settings (`second_factor`,
/// `recovery_requires_identity`, `notify_on_otp_abort`) are checked beside the table;
/// two rules relate knobs to each other: `password_delay_max ≥ password_delay_start`,
/// and Argon2's `hashing.m_cost_kib ≥ 8 × hashing.p_cost`.
///
/// | Knob | Min | Default | Max | Needs a deviation |
/// |---|---|---|---|---|
/// | `registration_link_ttl` | 5 min | 3 h | 1 d | — |
/// | `identity_step_ttl` | 5 min | 30 min | 1 d | — |
/// | `verification_link_ttl` | 5 min | 30 min | 1 d | — |
/// | `credentials_step_ttl` | 5 min | 30 min | 1 d | — |
/// | `auth_key_len` | 4 | 8 | 16 | — |
/// | `auth_key_tries` | 1 | 5 | 10 | — |
/// | `identity_tries_per_flow` | 1 | 5 | 10 | — |
/// | `identity_tries_per_member` | 1 | 10 | 20 | — |
/// | `identity_member_window` | 1 h | 1 d | 30 d | — |
/// | `otp_ttl` | 1 min | 10 min | 1 d | above 10 min: `long_otp_lifetime` |
/// | `otp_digits` | 4 | 6 | 10 | below 6: `short_otp` |
/// | `otp_tries_per_challenge` | 1 | 5 | 10 | — |
/// | `otp_failures_per_account` | 1 | 10 | 1000 | above 100: `high_failure_cap` |
/// | `otp_failures_per_account_per_day` | 1 | 100 | 100 | — |
/// | `otp_account_cooldown` | 1 min | 15 min | 1 d | — |
/// | `otp_resend_cooldown` | 10 s | 1 min | 1 h | — |
/// | `otp_resends_per_challenge` | 0 | 3 | 10 | — |
/// | `otp_mails_per_account_per_hour` | 1 | 10 | 20 | — |
/// | `otp_screen_heartbeat` | 10 s | off | 1 h | — |
/// | `password.min_chars` | 8 | 15 | 64 | below 15: `email_otp_counts_as_factor` |
/// | `password.max_chars` | 64 | 128 | 256 | — |
/// | `password_free_failures` | 0 | 5 | 10 | — |
/// | `password_delay_start` | 1 s | 30 s | 1 h | — |
/// | `password_delay_max` | 1 min | 1 h | 1 d | — |
/// | `password_failure_cap` | 3 | 50 | 1000 | above 100: `high_failure_cap` |
/// | `hashing.m_cost_kib` | 8 | 19456 | 1048576 | below 19456: `weak_password_hashing` |
/// | `hashing.t_cost` | 1 | 2 | 64 | below 2: `weak_password_hashing` |
/// | `hashing.p_cost` | 1 | 1 | 64 | — |
/// | `mail_min_interval` | 10 s | 1 min | 1 h | — |
/// | `mails_per_address_per_hour` | 1 | 5 | 20 | — |
/// | `flow_starts_per_requester_per_hour` | 1 | 20 | 1000 | — |
/// | `flow_starts_per_hour` | 100 | 10000 | 1000000 | — |
/// | `answer_floor` | 0 s | 30 ms | 1 s | below 10 ms: `low_answer_floor` |
/// | `repeat_window` | 0 s | 30 s | 1 min | — |
/// | `password_reset_link_ttl` | 5 min | 30 min | 1 d | — |
/// | `email_change_link_ttl` | 5 min | 30 min | 1 d | — |
/// | `temporary_password_ttl` | 1 d | 21 d | 90 d | — |
/// | `reauth_window` | 1 min | 5 min | 1 h | — |
/// | `factors.challenge_ttl` | 1 min | 5 min | 10 min | — |
/// | `factors.setup_ttl` | 1 min | 10 min | 30 min | — |
///
/// (The email-OTP deviation on `password.min_chars` applies only while the second
/// step is not a factor NIST recognises; today the only one, the e-mailed 暗証キー, is
/// not.)
pub const KNOBS: &[Knob] = &[
    knob!(duration "registration_link_ttl", registration_link_ttl,
        MIN_LINK_TTL, Duration::hours(3), MAX_CONFIRMATION_TTL, None,
        "link 1 lives 5 min to 24 h: it is a confirmation code (NIST SP 800-63A-4 §3.1.8, SEC-06)"),
    knob!(duration "identity_step_ttl", identity_step_ttl,
        Duration::minutes(5), Duration::minutes(30), Duration::hours(24), None,
        "a registration step lives 5 min to 24 h"),
    knob!(duration "verification_link_ttl", verification_link_ttl,
        MIN_LINK_TTL, Duration::minutes(30), MAX_CONFIRMATION_TTL, None,
        "link 2 and the 認証キー live 5 min to 24 h (SEC-11)"),
    knob!(duration "credentials_step_ttl", credentials_step_ttl,
        Duration::minutes(5), Duration::minutes(30), Duration::hours(24), None,
        "a registration step lives 5 min to 24 h"),
    knob!(count "auth_key_len", auth_key_len,
        AuthKey::MIN_LEN, 8, AuthKey::MAX_LEN, None,
        "the 認証キー has 4 to 16 characters (at least 20 bits, SEC-11)"),
    knob!(count "auth_key_tries", auth_key_tries,
        1, 5, MAX_TRIES, None,
        "1 to 10 wrong 認証キー entries: 10 guesses at a 4-character key succeed with odds 10⁻⁵ (SEC-11)"),
    knob!(count "identity_tries_per_flow", identity_tries_per_flow,
        1, 5, MAX_TRIES, None,
        "1 to 10 identity checks per registration: roster attributes are guessable and family members know them (SEC-09)"),
    knob!(count "identity_tries_per_member", identity_tries_per_member,
        1, 10, 2 * MAX_TRIES, None,
        "1 to 20 identity checks per roster member and window, across registrations (SEC-09)"),
    knob!(duration "identity_member_window", identity_member_window,
        Duration::hours(1), Duration::hours(24), Duration::days(30), None,
        "the per-member window is 1 h to 30 days: a shorter one refills the budget too often (SEC-09)"),
    knob!(duration "otp_ttl", otp_ttl,
        Duration::minutes(1), Duration::minutes(10), Duration::hours(24),
        above(d(MAX_OTP_TTL), Deviation::LongOtpLifetime),
        "the 暗証キー lives 1 min to 24 h; above 10 min only as a deviation (SEC-28)"),
    knob!(count "otp_digits", otp_digits,
        OtpCode::MIN_DIGITS, 6, OtpCode::MAX_DIGITS,
        below(n(6), Deviation::ShortOtp),
        "the 暗証キー has 4 to 10 digits; fewer than 6 only as a deviation (SEC-28)"),
    knob!(count "otp_tries_per_challenge", otp_tries_per_challenge,
        1, 5, MAX_TRIES, None,
        "1 to 10 wrong 暗証キー entries per challenge: 10 guesses at a 4-digit code succeed with odds 10⁻³ (SEC-29)"),
    knob!(count "otp_failures_per_account", otp_failures_per_account,
        1, 10, MAX_FAILURE_CAP,
        above(n(MAX_CONSECUTIVE_FAILURES as u64), Deviation::HighFailureCap),
        "1 to 1000 consecutive 暗証キー failures per account; above 100 only as a deviation (NIST SP 800-63B-4 §3.2.2, SEC-29)"),
    knob!(count "otp_failures_per_account_per_day", otp_failures_per_account_per_day,
        1, 100, MAX_CONSECUTIVE_FAILURES, None,
        "1 to 100 wrong 暗証キー entries per account in any 24 hours, which cooldowns and right passwords do not reset: never more than 100 (SEC-29)"),
    knob!(duration "otp_account_cooldown", otp_account_cooldown,
        Duration::minutes(1), Duration::minutes(15), Duration::hours(24), None,
        "the account cooldown after too many 暗証キー failures lasts 1 min to 24 h (SEC-29)"),
    knob!(duration "otp_resend_cooldown", otp_resend_cooldown,
        Duration::seconds(10), Duration::seconds(60), Duration::hours(1), None,
        "暗証キー再請求 waits 10 s to 1 h (SEC-30)"),
    knob!(count "otp_resends_per_challenge", otp_resends_per_challenge,
        0, 3, MAX_TRIES, None,
        "0 to 10 resends per challenge; each one is a mail (SEC-30)"),
    knob!(count "otp_mails_per_account_per_hour", otp_mails_per_account_per_hour,
        1, 10, MAX_MAILS_PER_HOUR, None,
        "1 to 20 暗証キー mails per account per hour (SEC-30)"),
    Knob {
        name: "otp_screen_heartbeat",
        min: d(Duration::seconds(10)),
        default: None,
        max: d(Duration::hours(1)),
        deviation: None,
        why: "when on, the code screen's heartbeat deadline is 10 s to 1 h: shorter kills screens on a slow network, longer is no deadline",
        read: |p| p.otp_screen_heartbeat.map(KnobValue::Duration),
        #[cfg(test)]
        write: |p, v| {
            if let KnobValue::Duration(v) = v {
                p.otp_screen_heartbeat = Some(v);
            }
        },
    },
    knob!(count "password.min_chars", password.min_chars,
        PasswordRules::FLOOR_MIN_CHARS, STRICT_MIN_PASSWORD_CHARS, PasswordRules::MIN_MAX_CHARS,
        below(n(STRICT_MIN_PASSWORD_CHARS as u64), Deviation::EmailOtpCountsAsFactor),
        "a password's minimum is 8 to 64 characters; below 15 only as a deviation (SEC-14)"),
    knob!(count "password.max_chars", password.max_chars,
        PasswordRules::MIN_MAX_CHARS, PasswordRules::DEFAULT_MAX_CHARS, MAX_BYTES / 4, None,
        "a password's maximum is 64 to 256 characters: at least 64 must be accepted (SEC-14), and 256 four-byte characters fill the 1024-byte input limit (SEC-22)"),
    knob!(count "password_free_failures", password_free_failures,
        0, 5, MAX_TRIES, None,
        "0 to 10 wrong passwords before delays start (SEC-24)"),
    knob!(duration "password_delay_start", password_delay_start,
        Duration::seconds(1), Duration::seconds(30), Duration::hours(1), None,
        "the first delay is 1 s to 1 h (SEC-24)"),
    knob!(duration "password_delay_max", password_delay_max,
        Duration::minutes(1), Duration::hours(1), Duration::hours(24), None,
        "the longest delay is 1 min to 24 h and not shorter than the first (SEC-24)"),
    knob!(count "password_failure_cap", password_failure_cap,
        3, 50, MAX_FAILURE_CAP,
        above(n(MAX_CONSECUTIVE_FAILURES as u64), Deviation::HighFailureCap),
        "3 to 1000 consecutive wrong passwords before only a reset unlocks; above 100 only as a deviation (NIST SP 800-63B-4 §3.2.2, SEC-24); below 3 one typo locks a member out"),
    knob!(count "hashing.m_cost_kib", hashing.m_cost_kib,
        8, HashParams::DEFAULT.m_cost_kib, HashParams::CEILING.m_cost_kib,
        below(n(HashParams::DEFAULT.m_cost_kib as u64), Deviation::WeakPasswordHashing),
        "Argon2id memory is 8 KiB to 1 GiB; below 19456 KiB only as a deviation (SEC-19, SEC-22)"),
    knob!(count "hashing.t_cost", hashing.t_cost,
        1, HashParams::DEFAULT.t_cost, HashParams::CEILING.t_cost,
        below(n(HashParams::DEFAULT.t_cost as u64), Deviation::WeakPasswordHashing),
        "Argon2id passes are 1 to 64; below 2 only as a deviation (SEC-19, SEC-22)"),
    knob!(count "hashing.p_cost", hashing.p_cost,
        1, HashParams::DEFAULT.p_cost, HashParams::CEILING.p_cost, None,
        "Argon2id lanes are 1 to 64 (SEC-22)"),
    knob!(duration "mail_min_interval", mail_min_interval,
        Duration::seconds(10), Duration::seconds(60), Duration::hours(1), None,
        "mails to one address are 10 s to 1 h apart (SEC-13)"),
    knob!(count "mails_per_address_per_hour", mails_per_address_per_hour,
        1, 5, MAX_MAILS_PER_HOUR, None,
        "1 to 20 mails per address per hour (SEC-13)"),
    knob!(count "flow_starts_per_requester_per_hour", flow_starts_per_requester_per_hour,
        1, 20, 1_000, None,
        "1 to 1000 flow starts (and mails) per requester per hour; 20 by default (SEC-13)"),
    knob!(count "flow_starts_per_hour", flow_starts_per_hour,
        100, 10_000, 1_000_000, None,
        "100 to 1 000 000 flow starts (and mails) per hour for the whole portal (SEC-13)"),
    knob!(duration "answer_floor", answer_floor,
        Duration::ZERO, Duration::milliseconds(30), Duration::seconds(1),
        below(d(Duration::milliseconds(10)), Deviation::LowAnswerFloor),
        "R1, forgot-ID and reset requests answer after 0 (off) to 1 s (SEC-07, SEC-37, SEC-40)"),
    knob!(duration "repeat_window", repeat_window,
        Duration::ZERO, Duration::seconds(30), Duration::minutes(1), None,
        "a repeated 暗証キー or R5 gets the same answer for 0 (never) to 60 s"),
    knob!(duration "password_reset_link_ttl", password_reset_link_ttl,
        MIN_LINK_TTL, Duration::minutes(30), MAX_CONFIRMATION_TTL, None,
        "the reset link lives 5 min to 24 h (SEC-38)"),
    knob!(duration "email_change_link_ttl", email_change_link_ttl,
        MIN_LINK_TTL, Duration::minutes(30), MAX_CONFIRMATION_TTL, None,
        "the new-address link lives 5 min to 24 h (SEC-36)"),
    knob!(duration "temporary_password_ttl", temporary_password_ttl,
        Duration::days(1), Duration::days(21), Duration::days(90), None,
        "a temporary password travels by post and lives 1 to 90 days (SEC-41)"),
    knob!(duration "reauth_window", reauth_window,
        Duration::minutes(1), Duration::minutes(5), Duration::hours(1), None,
        "a login counts as recent for 1 min to 1 h (SEC-36)"),
    knob!(duration "factors.challenge_ttl", factors.challenge_ttl,
        Duration::minutes(1), Duration::minutes(5), MAX_OTP_TTL, None,
        "the 確認コード screen of a login lives 1 to 10 min, like the 暗証キー it replaces (SEC-28)"),
    knob!(duration "factors.setup_ttl", factors.setup_ttl,
        Duration::minutes(1), Duration::minutes(10), Duration::minutes(30), None,
        "the 認証アプリの設定 screen (QR code shown, first code awaited) lives 1 to 30 min"),
];
