//! Every number the journeys run on: lifespans, lengths, attempt budgets, cooldowns and
//! caps, and the insurer's own profile.
//!
//! [`Policy::default()`] is strict: it holds the values of the project's security
//! checklist (NIST SP 800-63B-4, OWASP ASVS 5.0). [`Policy::seed_portal()`] behaves like
//! the portals members already know, and every way it is looser than the default is a
//! named [`Deviation`] with a written reason. [`Policy::validate`] refuses settings
//! outside the standards' limits unless such a deviation was allowed, and returns the
//! report of the ones that were (SEC-48).
//!
//! # The budgets, as a whole
//!
//! Every budget protects one secret or one resource, and is charged only where the
//! requester proved something it protects or spent what it protects. Every spent budget
//! answers exactly like the check it guards failing, so no answer tells whether a card
//! number, address or account exists.
//!
//! | budget | per | protects | charged when | spent means | default |
//! |---|---|---|---|---|---|
//! | `identity_tries_per_flow` | flow | the birth date behind a card number | R3, a reset's roster re-check | the flow ends | 5 |
//! | `identity_tries_per_member` | roster member, 24 h; a typed card number not on the roster (its keyed digest), so a miss costs what a hit does | the same, across flows | R3, a reset's re-check (the reset holder proved the mailbox) — never the forgot-ID form, whose answer is no oracle (SEC-25) | `IdentityNotConfirmed`, as a wrong birth date (SEC-09) | 10 |
//! | `auth_key_tries` | 認証キー | the on-screen key | R4 | the flow ends | 5 |
//! | `password_failure_cap` + delays | account | the password | L1, R2', password change | the generic login failure | 50, after 5 free |
//! | `otp_tries_per_challenge` | challenge | the 暗証キー | L2 | the challenge ends | 5 |
//! | `otp_failures_per_account` | account | the 暗証キー | L2 | cooldown, one password failure | 10 → 15 min |
//! | `otp_failures_per_account_per_day` | account, 24 h | the 暗証キー, against an attacker who has the password | L2 | no code is evaluated, no login starts | 100 (hard max, SEC-29) |
//! | `otp_mails_per_account_per_hour` | account | the member's mailbox | L1, L4 | the generic login failure (L1), `TooManyRequests` (L4) | 10 |
//! | `mails_per_address_per_hour`, `mail_min_interval` | address (every accepted key); a reset request's typed login ID | the mailbox | R1, forgot ID (matched or not), reset request (known ID or not), e-mail change | answered as sent | 5, 60 s |
//! | `mails_per_address_per_hour`, `mail_min_interval` (per flow) | an R3 flow's link 2 | the mailbox | link 2 resent | `TooManyRequests` (interval), `WrongStep` (cap) | 5, 60 s |
//! | `answer_floor` | R1, forgot ID, reset request | the answer time (SEC-07/37/40) | every such request | — | 30 ms |
//! | `flow_starts_per_requester_per_hour` | requester the host names | the portal's mail | R1, forgot ID, reset request | answered as sent | 20 |
//! | `flow_starts_per_hour` | the portal | the portal's mail | the same | answered as sent | 10 000 |

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Duration;

use crate::domain::{CardNumberFormat, PasswordRules};
use crate::lang::Lang;
use crate::password_hash::HashParams;

pub(crate) mod assurance;
mod bounds;
mod factors;
pub(crate) mod pathways;

pub use bounds::{KNOBS, Knob, KnobDeviation, KnobValue, Loosening};
pub use factors::{FactorPolicy, FactorRequirement};

/// A documented way in which a configuration is looser than the strict default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Deviation {
    /// Passwords shorter than 15 characters although the only other step is an e-mailed
    /// code, which NIST SP 800-63B-4 §3.1.3.1 does not recognise as a factor.
    EmailOtpCountsAsFactor,
    /// A 暗証キー that lives longer than 10 minutes (SEC-28).
    LongOtpLifetime,
    /// A 暗証キー with fewer than 6 digits (SEC-28).
    ShortOtp,
    /// Argon2id cheaper than m=19456 KiB, t=2, p=1 (SEC-19).
    WeakPasswordHashing,
    /// More than 100 consecutive failures allowed before the hard cap (SEC-24, SEC-29).
    HighFailureCap,
    /// Forgotten-password recovery by e-mail alone, without re-checking a roster
    /// attribute (SECURITY.md conflict 6).
    RecoveryByEmailAlone,
    /// R1, the forgot-ID form and the reset request answer sooner than 10 ms after they
    /// began (`Policy::answer_floor`; SEC-07, SEC-37, SEC-40 then rest on equal store work
    /// alone).
    LowAnswerFloor,
}

impl Deviation {
    /// Stable identifier for logs and configuration files.
    pub fn code(self) -> &'static str {
        match self {
            Deviation::EmailOtpCountsAsFactor => "email_otp_counts_as_factor",
            Deviation::LongOtpLifetime => "long_otp_lifetime",
            Deviation::ShortOtp => "short_otp",
            Deviation::WeakPasswordHashing => "weak_password_hashing",
            Deviation::HighFailureCap => "high_failure_cap",
            Deviation::RecoveryByEmailAlone => "recovery_by_email_alone",
            Deviation::LowAnswerFloor => "low_answer_floor",
        }
    }

    /// What the deviation gives up, in plain words.
    pub fn describe(self, lang: Lang) -> &'static str {
        let (ja, en) = match self {
            Deviation::EmailOtpCountsAsFactor => (
                "メールで送る暗証キーを2段階目とみなし、15文字未満のパスワードを認めています。NIST SP 800-63B-4 ではメールは認証要素と認められないため、ログインは短いパスワードによる単要素認証(AAL1)です。",
                "Passwords may be shorter than 15 characters, counting the e-mailed 暗証キー as a second step. NIST SP 800-63B-4 does not recognise e-mail as an authentication factor, so the login is single-factor (AAL1) with a short password.",
            ),
            Deviation::LongOtpLifetime => (
                "暗証キーの有効期限が10分を超えています(上限は10分です)。",
                "The 暗証キー stays valid for more than 10 minutes (SEC-28 allows at most 10).",
            ),
            Deviation::ShortOtp => (
                "暗証キーが6桁未満です(20ビット未満)。",
                "The 暗証キー has fewer than 6 digits (less than 20 bits).",
            ),
            Deviation::WeakPasswordHashing => (
                "パスワードのハッシュ計算が Argon2id m=19456 KiB, t=2, p=1 (OWASP の最低値) より弱く設定されています。",
                "Password hashing is cheaper than Argon2id m=19456 KiB, t=2, p=1 (OWASP minimum).",
            ),
            Deviation::HighFailureCap => (
                "連続して100回を超える失敗を認めています(NIST の上限は100回です)。",
                "More than 100 consecutive failed attempts are allowed (NIST allows at most 100).",
            ),
            Deviation::RecoveryByEmailAlone => (
                "パスワードの再設定を、保険証情報の再確認なしにメールのURLだけで行えます。",
                "A forgotten password can be reset with the e-mailed link alone, without re-checking the insurance card data.",
            ),
            Deviation::LowAnswerFloor => (
                "新規登録・ID/パスワードを忘れた方の応答時間の下限が10ミリ秒未満です。登録の有無による処理時間のわずかな差が、応答時間から読み取られるおそれがあります。",
                "Registration and the forgotten-ID/password forms may answer sooner than 10 ms: the small difference in work between a known and an unknown account is no longer hidden in the answer time.",
            ),
        };
        lang.pick(ja, en)
    }
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A deviation the host allowed, with its reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedDeviation {
    /// Which deviation.
    pub deviation: Deviation,
    /// Why the insurer accepts it (shown in the deviation and assurance reports).
    pub rationale: Cow<'static, str>,
}

/// What [`Policy::validate`] found acceptable but looser than the strict default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviationReport {
    /// The deviations in force, each with the host's rationale.
    pub deviations: Vec<AllowedDeviation>,
}

impl DeviationReport {
    /// Whether the configuration is the strict one.
    pub fn is_strict(&self) -> bool {
        self.deviations.is_empty()
    }

    /// The report as plain text, one deviation per paragraph.
    pub fn render(&self, lang: Lang) -> String {
        if self.deviations.is_empty() {
            return match lang {
                Lang::En => "No deviations from the strict default policy.".to_owned(),
                _ => "既定の厳格な設定からの逸脱はありません。".to_owned(),
            };
        }
        let mut out = String::new();
        for d in &self.deviations {
            let label = match lang {
                Lang::En => "Reason",
                _ => "理由",
            };
            out.push_str(&format!(
                "- [{}] {}\n  {}: {}\n",
                d.deviation.code(),
                d.deviation.describe(lang),
                label,
                d.rationale
            ));
        }
        out
    }
}

/// A setting [`Policy::validate`] refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A setting is looser than the standards allow and no deviation permits it.
    #[error(
        "policy field `{field}` needs the deviation `{deviation}` to be allowed with a rationale"
    )]
    DeviationNotAllowed {
        /// The field at fault.
        field: &'static str,
        /// The deviation that would permit it.
        deviation: Deviation,
    },
    /// A setting is outside a hard limit that no deviation can lift.
    #[error("policy field `{field}` is out of range: {reason}")]
    OutOfRange {
        /// The field at fault.
        field: &'static str,
        /// What the limit is.
        reason: &'static str,
    },
    /// A rationale string was empty.
    #[error("deviation `{0}` was allowed without a rationale")]
    EmptyRationale(Deviation),
}

/// The second step after the password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SecondFactor {
    /// The e-mailed 暗証キー. Not recognised as an authentication factor by NIST SP
    /// 800-63B-4 (§3.1.3.1), which is why the strict policy asks for 15-character
    /// passwords with it.
    #[default]
    EmailOtp,
}

impl SecondFactor {
    /// Whether NIST SP 800-63B-4 recognises this as an authentication factor.
    pub fn nist_recognized(self) -> bool {
        match self {
            SecondFactor::EmailOtp => false,
        }
    }
}

/// Every lifespan, length, budget, cooldown and cap of the journeys.
///
/// Fields are public so a host can start from a preset and change what it needs; call
/// [`Policy::validate`] (the `Portal` builder does) to check the result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Link 1 (「利用登録手続きのご案内」): 3 h; hard max 24 h, it is a confirmation code
    /// (NIST SP 800-63A-4 §3.1.8, SEC-06).
    pub registration_link_ttl: Duration,
    /// The identity step (R3) after link 1 was opened.
    pub identity_step_ttl: Duration,
    /// Link 2 and the 認証キー: 30 min; hard max 24 h (SEC-11).
    pub verification_link_ttl: Duration,
    /// The credentials step (R5) after the 認証キー was accepted: 30 min.
    pub credentials_step_ttl: Duration,
    /// Characters in the 認証キー (5 bits each; at least 4 = 20 bits).
    pub auth_key_len: usize,
    /// Wrong 認証キー entries before the key is dead (SEC-11).
    pub auth_key_tries: u32,
    /// Identity checks per registration flow (SEC-09).
    pub identity_tries_per_flow: u32,
    /// Identity checks per roster member within [`Self::identity_member_window`] before
    /// the member is blocked (SEC-09). Counted across flows, so opening new flows does
    /// not buy new tries.
    pub identity_tries_per_member: u32,
    /// Window of [`Self::identity_tries_per_member`].
    pub identity_member_window: Duration,

    /// 暗証キー lifetime: 10 min; above 10 min needs [`Deviation::LongOtpLifetime`].
    pub otp_ttl: Duration,
    /// 暗証キー digits: 6; fewer needs [`Deviation::ShortOtp`].
    pub otp_digits: usize,
    /// Wrong 暗証キー entries per challenge (SEC-29).
    pub otp_tries_per_challenge: u32,
    /// Consecutive wrong 暗証キー entries per account, across challenges and resends,
    /// before the login is aborted and the account cools down (SEC-29).
    pub otp_failures_per_account: u32,
    /// Cooldown after [`Self::otp_failures_per_account`].
    pub otp_account_cooldown: Duration,
    /// Wrong 暗証キー entries per account in any 24 hours, whatever cooldowns passed
    /// and however often the right password was given in between: 100 at most
    /// (SEC-29). When it is spent, no code is evaluated and no new login starts until
    /// the day's window ends.
    pub otp_failures_per_account_per_day: u32,
    /// Time between 暗証キー再請求 (SEC-30).
    pub otp_resend_cooldown: Duration,
    /// Resends per challenge (SEC-30).
    pub otp_resends_per_challenge: u32,
    /// 暗証キー mails per account per hour (SEC-30).
    pub otp_mails_per_account_per_hour: u32,
    /// When set, a challenge whose code screen has not reported a heartbeat for this long
    /// is dead, as if the screen had been closed (L3).
    pub otp_screen_heartbeat: Option<Duration>,

    /// Password length rules (SEC-14).
    pub password: PasswordRules,
    /// Failed passwords per account before delays start (SEC-24).
    pub password_free_failures: u32,
    /// First delay after the free failures; doubles with each failure (SEC-24).
    pub password_delay_start: Duration,
    /// Longest delay (SEC-24).
    pub password_delay_max: Duration,
    /// Consecutive failures after which only a password reset unlocks (SEC-24).
    pub password_failure_cap: u32,
    /// Argon2id cost (SEC-19).
    pub hashing: HashParams,
    /// The second step after the password.
    pub second_factor: SecondFactor,
    /// The second factors offered beyond the 暗証キー (2段階認証), and whether one is
    /// required.
    pub factors: FactorPolicy,

    /// Shortest time between two mails to one address (SEC-13).
    pub mail_min_interval: Duration,
    /// Mails to one address per hour (SEC-13).
    pub mails_per_address_per_hour: u32,
    /// Flows one requester may start per hour (SEC-13): registration, password reset and
    /// login-ID reminder requests from one IP or network prefix, as the host names it
    /// ([`crate::Portal::from_requester`]). Beyond it, nothing is started or mailed and
    /// the answer is the one a sent mail gets.
    pub flow_starts_per_requester_per_hour: u32,
    /// Flows the whole portal starts per hour, whoever asks (SEC-13): the last guard
    /// against a flood from many requesters. Beyond it, nothing is started or mailed and
    /// the answer is the one a sent mail gets.
    pub flow_starts_per_hour: u32,
    /// The least time R1, the forgot-ID form and the reset request take to answer
    /// (SEC-07, SEC-37, SEC-40). Their paths already do the same store work whether or
    /// not an account exists; what is left — an account read and decoded, a mail rendered
    /// and handed to the mailer — is microseconds that a patient requester could average
    /// out. Each of these steps therefore answers no sooner than this after it began, at
    /// a random moment within the fifth of it that follows (so the little that is left —
    /// a timer's phase — does not add up over many requests). It should exceed the slowest of these steps on the host's store (`benches/timing.rs`
    /// measures them); a step that takes longer answers when it is done. Zero turns the
    /// floor off. Needs the Tokio timer (every `#[tokio::main]` runtime has it). The
    /// mailer must queue (`QueuedMailer`; `SmtpMailer` alone waits for the SMTP server
    /// inside the step, and only a step that found an account mails).
    pub answer_floor: Duration,
    /// How long after a step succeeded the same request, repeated by the one who made it,
    /// is told the same outcome instead of a refusal (a double tap, a reload, a response
    /// lost on a phone's network): the accepted 暗証キー on its challenge (the same login,
    /// while the account is unchanged) and R5 with the same login ID (the same account).
    /// A repeat changes nothing and makes no second login or account. Zero: every repeat
    /// is refused as used.
    pub repeat_window: Duration,

    /// Password-reset link: 30 min, hard max 24 h (SEC-38).
    pub password_reset_link_ttl: Duration,
    /// Link confirming a new e-mail address: 30 min (SEC-36).
    pub email_change_link_ttl: Duration,
    /// A forgotten-password reset re-checks a roster attribute (SECURITY.md conflict 6).
    pub recovery_requires_identity: bool,
    /// Insurer-issued temporary passwords: 21 days (SEC-41).
    pub temporary_password_ttl: Duration,
    /// Mail the member when the password was right but the 暗証キー step failed (SEC-31).
    pub notify_on_otp_abort: bool,
    /// How recent a login (password + 暗証キー) must be to change the e-mail address:
    /// 5 min (SEC-36).
    pub reauth_window: Duration,

    allowed: Vec<AllowedDeviation>,
}

/// Hard maximum of a confirmation code's lifespan (links 1 and 2, reset links).
pub const MAX_CONFIRMATION_TTL: Duration = Duration::hours(24);
/// Strict maximum of the 暗証キー lifetime.
pub const MAX_OTP_TTL: Duration = Duration::minutes(10);
/// NIST's ceiling on consecutive failures (SP 800-63B-4 §3.2.2).
pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;
/// Password length when the second step is not a recognised factor (SEC-14).
pub const STRICT_MIN_PASSWORD_CHARS: usize = 15;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            registration_link_ttl: Duration::hours(3),
            identity_step_ttl: Duration::minutes(30),
            verification_link_ttl: Duration::minutes(30),
            credentials_step_ttl: Duration::minutes(30),
            auth_key_len: 8,
            auth_key_tries: 5,
            identity_tries_per_flow: 5,
            identity_tries_per_member: 10,
            identity_member_window: Duration::hours(24),
            otp_ttl: Duration::minutes(10),
            otp_digits: 6,
            otp_tries_per_challenge: 5,
            otp_failures_per_account: 10,
            otp_failures_per_account_per_day: 100,
            otp_account_cooldown: Duration::minutes(15),
            otp_resend_cooldown: Duration::seconds(60),
            otp_resends_per_challenge: 3,
            otp_mails_per_account_per_hour: 10,
            otp_screen_heartbeat: None,
            password: PasswordRules::default(),
            password_free_failures: 5,
            password_delay_start: Duration::seconds(30),
            password_delay_max: Duration::hours(1),
            password_failure_cap: 50,
            hashing: HashParams::DEFAULT,
            second_factor: SecondFactor::EmailOtp,
            factors: FactorPolicy::default(),
            mail_min_interval: Duration::seconds(60),
            mails_per_address_per_hour: 5,
            flow_starts_per_requester_per_hour: 20,
            flow_starts_per_hour: 10_000,
            answer_floor: Duration::milliseconds(30),
            repeat_window: Duration::seconds(30),
            password_reset_link_ttl: Duration::minutes(30),
            email_change_link_ttl: Duration::minutes(30),
            recovery_requires_identity: true,
            temporary_password_ttl: Duration::days(21),
            notify_on_otp_abort: true,
            reauth_window: Duration::minutes(5),
            allowed: Vec::new(),
        }
    }
}

impl Policy {
    /// The preset that behaves like the seed portal: 8-character passwords with the
    /// e-mailed 暗証キー counted as the second step, and the seed's lifespans (which are
    /// the defaults). Its one deviation is declared with its reason.
    pub fn seed_portal() -> Self {
        let mut p = Policy::default();
        p.password.min_chars = 8;
        p.allow_deviation(
            Deviation::EmailOtpCountsAsFactor,
            "加入者が慣れた8文字以上のパスワードと、メールの暗証キーによる2段階のログインを維持するため / \
             keeps the 8-character password plus e-mailed 暗証キー login members already know",
        )
    }

    /// Declares that the insurer accepts `deviation`, and why. The rationale appears in
    /// the deviation report and in `Portal::assurance_report()`.
    pub fn allow_deviation(
        mut self,
        deviation: Deviation,
        rationale: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.allowed.retain(|a| a.deviation != deviation);
        self.allowed.push(AllowedDeviation {
            deviation,
            rationale: rationale.into(),
        });
        self
    }

    fn allows(&self, d: Deviation) -> bool {
        self.allowed.iter().any(|a| a.deviation == d)
    }

    /// Checks every setting against the hard limits and the strict defaults.
    ///
    /// Every numeric knob is checked against its row of [`KNOBS`]: outside the row's
    /// `min..=max` is [`PolicyError::OutOfRange`] whatever the deviations; past the
    /// row's deviation line is [`PolicyError::DeviationNotAllowed`] unless that
    /// deviation was allowed.
    ///
    /// Returns the report of the deviations in force (only those the settings actually
    /// use), or the first setting that is refused.
    pub fn validate(&self) -> Result<DeviationReport, PolicyError> {
        for a in &self.allowed {
            if a.rationale.trim().is_empty() {
                return Err(PolicyError::EmptyRationale(a.deviation));
            }
        }
        let mut used = Vec::new();
        let mut need = |field: &'static str, d: Deviation| -> Result<(), PolicyError> {
            if !self.allows(d) {
                return Err(PolicyError::DeviationNotAllowed {
                    field,
                    deviation: d,
                });
            }
            if !used.contains(&d) {
                used.push(d);
            }
            Ok(())
        };

        for knob in KNOBS {
            let Some(value) = knob.value(self) else {
                continue;
            };
            if !knob.in_bounds(value) {
                return Err(PolicyError::OutOfRange {
                    field: knob.name,
                    reason: knob.why,
                });
            }
            match knob.deviation_for(value) {
                // Short passwords are a deviation only because the e-mailed code is not
                // a factor NIST recognises (SEC-14).
                Some(Deviation::EmailOtpCountsAsFactor) if self.second_factor.nist_recognized() => {
                }
                Some(d) => need(knob.name, d)?,
                None => {}
            }
        }
        if self.password_delay_max < self.password_delay_start {
            return Err(PolicyError::OutOfRange {
                field: "password_delay_max",
                reason: "must not be shorter than password_delay_start",
            });
        }
        // Argon2 needs 8 KiB of memory per lane.
        if u64::from(self.hashing.m_cost_kib) < 8 * u64::from(self.hashing.p_cost) {
            return Err(PolicyError::OutOfRange {
                field: "hashing.m_cost_kib",
                reason: "Argon2 needs at least 8 KiB per lane (8 × hashing.p_cost)",
            });
        }
        if !self.recovery_requires_identity {
            need(
                "recovery_requires_identity",
                Deviation::RecoveryByEmailAlone,
            )?;
        }

        Ok(DeviationReport {
            deviations: self
                .allowed
                .iter()
                .filter(|a| used.contains(&a.deviation))
                .cloned()
                .collect(),
        })
    }

    /// The delay owed after `failures` consecutive wrong passwords (SEC-24): none for the
    /// free ones, then [`Self::password_delay_start`] doubling up to
    /// [`Self::password_delay_max`].
    pub fn password_delay(&self, failures: u32) -> Duration {
        if failures < self.password_free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - self.password_free_failures).min(30);
        let factor = 1i64 << doublings;
        let start = self.password_delay_start.whole_seconds().max(1);
        let secs = start.saturating_mul(factor);
        Duration::seconds(secs).min(self.password_delay_max)
    }
}

/// Who the portal belongs to: the insurer's names, addresses and links. Nothing
/// insurer-specific is hard-coded in the library.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InsurerProfile {
    /// The insurer's name as members know it (e.g. 「さくら健康保険組合」), used in mails.
    pub insurer_name: String,
    /// The portal's name (e.g. 「さくらけんぽWeb」), used in the 暗証キー mail.
    pub service_name: String,
    /// Envelope and `From:` address of the mails; its domain is the one members must
    /// allow in their carrier's 受信設定.
    pub sender_address: String,
    /// Where a member turns when a mail was not theirs (「お心当たりのない場合」).
    pub support_contact: String,
    /// The only base every mailed link is built from (SEC-39): never the request's Host.
    pub base_url: String,
    /// Language of mails unless a member asks otherwise.
    pub lang: Lang,
    /// What 記号・番号 look like at this insurer (DOM-8).
    pub card_number_format: CardNumberFormat,
    /// How long mailed links and the 暗証キー are good for, as the mails say it
    /// (「※URLの有効期限は3時間です。」) next to the instant. The [`Portal`](crate::Portal)
    /// sets it from its [`Policy`] when it is built; [`InsurerProfile::new`] starts with
    /// the default policy's durations.
    pub mail_validity: MailValidity,
}

/// The lifetimes mails state as durations (「3時間」「30分」「10分以内に」), taken from a
/// [`Policy`] so that the wording and the rules cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailValidity {
    /// Link 1 (「利用登録手続きのご案内」): `Policy::registration_link_ttl`.
    pub registration_link: Duration,
    /// Link 2 and the 認証キー (「本人確認完了のご案内」): `Policy::verification_link_ttl`.
    pub verification_link: Duration,
    /// The 暗証キー (「暗証キーのご案内」): `Policy::otp_ttl`.
    pub login_otp: Duration,
    /// The password-reset link: `Policy::password_reset_link_ttl`.
    pub password_reset_link: Duration,
    /// The address-change link: `Policy::email_change_link_ttl`.
    pub email_change_link: Duration,
}

impl MailValidity {
    /// The durations `policy` gives.
    pub fn of(policy: &Policy) -> Self {
        MailValidity {
            registration_link: policy.registration_link_ttl,
            verification_link: policy.verification_link_ttl,
            login_otp: policy.otp_ttl,
            password_reset_link: policy.password_reset_link_ttl,
            email_change_link: policy.email_change_link_ttl,
        }
    }
}

impl Default for MailValidity {
    /// The default [`Policy`]'s durations (the seed's: 3時間, 30分, 10分).
    fn default() -> Self {
        MailValidity::of(&Policy::default())
    }
}

/// An [`InsurerProfile`] that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A required text is empty.
    #[error("insurer profile field `{0}` is empty")]
    Empty(&'static str),
    /// The base URL is not `https://` (plain `http://` is accepted for loopback only).
    #[error("base_url must be https:// (http:// only for localhost / 127.0.0.1)")]
    InsecureBaseUrl,
    /// The base URL carries a query or fragment, which links cannot extend safely.
    #[error("base_url must not contain '?' or '#'")]
    BaseUrlWithQuery,
}

impl InsurerProfile {
    /// A profile with the given names and base URL; other fields take defaults
    /// (Japanese, 健保組合 card format).
    pub fn new(
        insurer_name: impl Into<String>,
        service_name: impl Into<String>,
        sender_address: impl Into<String>,
        support_contact: impl Into<String>,
        base_url: impl Into<String>,
    ) -> Self {
        InsurerProfile {
            insurer_name: insurer_name.into(),
            service_name: service_name.into(),
            sender_address: sender_address.into(),
            support_contact: support_contact.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            lang: Lang::Ja,
            card_number_format: CardNumberFormat::default(),
            mail_validity: MailValidity::default(),
        }
    }

    /// Checks the profile: names present, base URL HTTPS (SEC-39).
    pub fn validate(&self) -> Result<(), ProfileError> {
        for (v, f) in [
            (&self.insurer_name, "insurer_name"),
            (&self.service_name, "service_name"),
            (&self.sender_address, "sender_address"),
            (&self.support_contact, "support_contact"),
            (&self.base_url, "base_url"),
        ] {
            if v.trim().is_empty() {
                return Err(ProfileError::Empty(f));
            }
        }
        let url = self.base_url.as_str();
        if url.contains(['?', '#']) {
            return Err(ProfileError::BaseUrlWithQuery);
        }
        let loopback = ["http://localhost", "http://127.0.0.1", "http://[::1]"]
            .iter()
            .any(|p| {
                url.strip_prefix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            });
        if !url.starts_with("https://") && !loopback {
            return Err(ProfileError::InsecureBaseUrl);
        }
        Ok(())
    }

    /// The sender's domain, for the 受信設定 advisory.
    pub fn sender_domain(&self) -> &str {
        self.sender_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("")
    }

    /// A link under the base URL: `{base_url}{path}?token={token}`.
    pub fn link(&self, path: &str, token: &str) -> String {
        format!("{}{}?token={}", self.base_url, path, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sec_48_default_is_strict_and_valid() {
        let report = Policy::default().validate().unwrap();
        assert!(report.is_strict());
        assert_eq!(Policy::default().password.min_chars, 15);
    }

    #[test]
    fn sec_48_seed_portal_declares_its_deviation() {
        let report = Policy::seed_portal().validate().unwrap();
        assert_eq!(report.deviations.len(), 1);
        assert_eq!(
            report.deviations[0].deviation,
            Deviation::EmailOtpCountsAsFactor
        );
        assert!(report.render(Lang::Ja).contains("AAL1"));
        assert!(report.render(Lang::En).contains("Reason"));
    }

    #[test]
    fn sec_48_each_loosening_needs_an_explicit_deviation() {
        type Change = Box<dyn Fn(&mut Policy)>;
        let cases: Vec<(Change, Deviation)> = vec![
            (
                Box::new(|p| p.otp_ttl = Duration::minutes(15)),
                Deviation::LongOtpLifetime,
            ),
            (Box::new(|p| p.otp_digits = 5), Deviation::ShortOtp),
            (
                Box::new(|p| p.hashing.m_cost_kib = 8 * 1024),
                Deviation::WeakPasswordHashing,
            ),
            (
                Box::new(|p| p.password_failure_cap = 200),
                Deviation::HighFailureCap,
            ),
            (
                Box::new(|p| p.password.min_chars = 8),
                Deviation::EmailOtpCountsAsFactor,
            ),
            (
                Box::new(|p| p.recovery_requires_identity = false),
                Deviation::RecoveryByEmailAlone,
            ),
            (
                Box::new(|p| p.answer_floor = Duration::milliseconds(5)),
                Deviation::LowAnswerFloor,
            ),
        ];
        for (change, deviation) in cases {
            let mut p = Policy::default();
            change(&mut p);
            assert_eq!(
                p.validate().unwrap_err(),
                PolicyError::DeviationNotAllowed {
                    field: match deviation {
                        Deviation::LongOtpLifetime => "otp_ttl",
                        Deviation::ShortOtp => "otp_digits",
                        Deviation::WeakPasswordHashing => "hashing.m_cost_kib",
                        Deviation::HighFailureCap => "password_failure_cap",
                        Deviation::EmailOtpCountsAsFactor => "password.min_chars",
                        Deviation::LowAnswerFloor => "answer_floor",
                        _ => "recovery_requires_identity",
                    },
                    deviation
                }
            );
            let p = p.allow_deviation(deviation, "tested");
            let report = p.validate().unwrap();
            assert_eq!(report.deviations.len(), 1);
            assert_eq!(report.deviations[0].deviation, deviation);
        }
    }

    #[test]
    fn sec_06_links_over_24_hours_are_refused_even_with_deviations() {
        let p = Policy {
            registration_link_ttl: Duration::hours(25),
            ..Policy::default()
        };
        assert_eq!(out_of_range(&p), Some("registration_link_ttl"));
    }

    #[test]
    fn sec_14_password_floor_is_eight_even_with_deviation() {
        let mut p = Policy::default().allow_deviation(Deviation::EmailOtpCountsAsFactor, "x");
        p.password.min_chars = 7;
        assert!(out_of_range(&p).is_some());
    }

    #[test]
    fn every_duration_is_positive_and_bounded() {
        type Change = Box<dyn Fn(&mut Policy, Duration)>;
        /// A field's name, its setter and a value past its upper bound.
        macro_rules! field {
            ($name:ident, $too_long:expr) => {
                (
                    stringify!($name),
                    Box::new(|p: &mut Policy, d| p.$name = d) as Change,
                    $too_long,
                )
            };
        }
        let fields: Vec<(&str, Change, Duration)> = vec![
            field!(otp_account_cooldown, Duration::days(2)),
            field!(otp_resend_cooldown, Duration::hours(2)),
            field!(identity_step_ttl, Duration::days(2)),
            field!(credentials_step_ttl, Duration::days(2)),
            field!(identity_member_window, Duration::days(31)),
            field!(temporary_password_ttl, Duration::days(91)),
            field!(reauth_window, Duration::hours(2)),
            field!(password_delay_max, Duration::days(2)),
        ];
        for (field, set, too_long) in fields {
            for bad in [
                Duration::ZERO,
                Duration::seconds(-1),
                too_long,
                Duration::MAX,
            ] {
                let mut p = Policy::default();
                set(&mut p, bad);
                assert_eq!(out_of_range(&p), Some(field), "{field} = {bad}");
            }
        }
        let p = Policy {
            otp_screen_heartbeat: Some(Duration::hours(2)),
            ..Policy::default()
        };
        assert!(p.validate().is_err());
    }

    /// The field `p.validate()` finds out of range, if that is what it finds.
    fn out_of_range(p: &Policy) -> Option<&'static str> {
        match p.validate() {
            Err(PolicyError::OutOfRange { field, .. }) => Some(field),
            _ => None,
        }
    }

    const ALL_DEVIATIONS: [Deviation; 7] = [
        Deviation::EmailOtpCountsAsFactor,
        Deviation::LongOtpLifetime,
        Deviation::ShortOtp,
        Deviation::WeakPasswordHashing,
        Deviation::HighFailureCap,
        Deviation::RecoveryByEmailAlone,
        Deviation::LowAnswerFloor,
    ];

    fn with_every_deviation(mut p: Policy) -> Policy {
        for d in ALL_DEVIATIONS {
            p = p.allow_deviation(d, "tested");
        }
        p
    }

    fn step(v: KnobValue, up: bool) -> Option<KnobValue> {
        match v {
            KnobValue::Duration(d) => Some(KnobValue::Duration(if up {
                d + Duration::seconds(1)
            } else {
                d - Duration::seconds(1)
            })),
            KnobValue::Count(n) if up => n.checked_add(1).map(KnobValue::Count),
            KnobValue::Count(n) => n.checked_sub(1).map(KnobValue::Count),
        }
    }

    /// SEC-48, SEC-24, SEC-29: every knob in the table is refused one step past each hard
    /// bound, even with every deviation allowed, naming the knob; at the bound it is
    /// accepted, or needs exactly the knob's own deviation.
    #[test]
    fn sec_48_every_knob_is_refused_past_its_bounds_and_accepted_at_them() {
        for knob in KNOBS {
            for (bound, up) in [(knob.min, false), (knob.max, true)] {
                let mut p = Policy::default();
                (knob.write)(&mut p, bound);
                assert_eq!(knob.value(&p), Some(bound), "{} written", knob.name);
                match p.validate() {
                    Ok(report) => assert!(report.is_strict(), "{} = {bound}", knob.name),
                    Err(e) => {
                        let d = knob.deviation_for(bound);
                        assert_eq!(
                            Some(e),
                            d.map(|deviation| PolicyError::DeviationNotAllowed {
                                field: knob.name,
                                deviation
                            }),
                            "{} = {bound}",
                            knob.name
                        );
                        let report = p
                            .clone()
                            .allow_deviation(d.unwrap(), "tested")
                            .validate()
                            .unwrap();
                        assert_eq!(report.deviations.len(), 1);
                        assert_eq!(Some(report.deviations[0].deviation), d);
                    }
                }

                let Some(past) = step(bound, up) else {
                    continue; // a count of 0 has nothing below it
                };
                let mut p = with_every_deviation(Policy::default());
                (knob.write)(&mut p, past);
                assert_eq!(
                    out_of_range(&p),
                    Some(knob.name),
                    "{} = {past} must be out of range",
                    knob.name
                );
            }
        }
    }

    /// A 4-character 認証キー with u32::MAX tries used to pass; every budget is capped.
    #[test]
    fn sec_11_sec_29_retry_budgets_have_a_ceiling() {
        let p = Policy {
            auth_key_len: 4,
            auth_key_tries: u32::MAX,
            ..Policy::default()
        };
        assert_eq!(out_of_range(&p), Some("auth_key_tries"));
        let p = with_every_deviation(Policy {
            otp_failures_per_account: u32::MAX,
            ..Policy::default()
        });
        assert_eq!(out_of_range(&p), Some("otp_failures_per_account"));
    }

    #[test]
    fn knob_table_is_consistent_with_the_default_policy() {
        let default = Policy::default();
        let mut names = std::collections::HashSet::new();
        for knob in KNOBS {
            assert!(names.insert(knob.name), "{} listed twice", knob.name);
            assert_eq!(knob.value(&default), knob.default, "{}", knob.name);
            assert!(knob.min <= knob.max, "{}", knob.name);
            if let Some(v) = knob.default {
                assert!(knob.in_bounds(v), "{}", knob.name);
                assert_eq!(knob.deviation_for(v), None, "{} default", knob.name);
            }
            if let Some(dev) = knob.deviation {
                assert!(knob.in_bounds(dev.strict), "{}", knob.name);
            }
        }
    }

    /// A new field of `Policy` does not compile here until it is listed, and then fails
    /// until it is in [`KNOBS`] or named as non-numeric.
    #[test]
    fn knob_table_covers_every_policy_field() {
        macro_rules! fields {
            ($ty:ident { $($f:ident),* $(,)? } = $v:expr) => {{
                let $ty { $($f: _),* } = $v;
                [$(stringify!($f)),*]
            }};
        }
        let policy = fields!(
            Policy {
                registration_link_ttl,
                identity_step_ttl,
                verification_link_ttl,
                credentials_step_ttl,
                auth_key_len,
                auth_key_tries,
                identity_tries_per_flow,
                identity_tries_per_member,
                identity_member_window,
                otp_ttl,
                otp_digits,
                otp_tries_per_challenge,
                otp_failures_per_account,
                otp_failures_per_account_per_day,
                otp_account_cooldown,
                otp_resend_cooldown,
                otp_resends_per_challenge,
                otp_mails_per_account_per_hour,
                otp_screen_heartbeat,
                password,
                password_free_failures,
                password_delay_start,
                password_delay_max,
                password_failure_cap,
                hashing,
                second_factor,
                factors,
                mail_min_interval,
                mails_per_address_per_hour,
                flow_starts_per_requester_per_hour,
                flow_starts_per_hour,
                answer_floor,
                repeat_window,
                password_reset_link_ttl,
                email_change_link_ttl,
                recovery_requires_identity,
                temporary_password_ttl,
                notify_on_otp_abort,
                reauth_window,
                allowed,
            } = Policy::default()
        );
        let password = fields!(
            PasswordRules {
                min_chars,
                max_chars
            } = PasswordRules::default()
        );
        let factors = fields!(
            FactorPolicy {
                totp,
                passkeys,
                passkey_only_login,
                recovery_codes,
                requirement,
                reset_removes_factors,
                challenge_ttl,
                setup_ttl,
            } = FactorPolicy::default()
        );
        let hashing = fields!(
            HashParams {
                m_cost_kib,
                t_cost,
                p_cost
            } = HashParams::DEFAULT
        );
        // Not numbers: checked beside the table. `allowed` is the deviation list itself.
        let not_knobs = [
            "second_factor",
            "recovery_requires_identity",
            "notify_on_otp_abort",
            "allowed",
            "password",
            "hashing",
            "factors",
            "factors.totp",
            "factors.passkeys",
            "factors.passkey_only_login",
            "factors.recovery_codes",
            "factors.requirement",
            "factors.reset_removes_factors",
        ];
        let mut expected: Vec<String> = policy
            .iter()
            .filter(|f| !not_knobs.contains(f))
            .map(|f| (*f).to_owned())
            .chain(password.iter().map(|f| format!("password.{f}")))
            .chain(hashing.iter().map(|f| format!("hashing.{f}")))
            .chain(factors.iter().map(|f| format!("factors.{f}")))
            .filter(|f| !not_knobs.contains(&f.as_str()))
            .collect();
        let mut table: Vec<String> = KNOBS.iter().map(|k| k.name.to_owned()).collect();
        expected.sort();
        table.sort();
        assert_eq!(table, expected);
    }

    /// The Markdown table in the docs of `KNOBS` is the table itself.
    #[test]
    fn knob_table_docs_match_the_table() {
        let source = include_str!("policy/bounds.rs");
        for knob in KNOBS {
            let row = format!("/// {}\n", knob.markdown_row());
            assert!(source.contains(&row), "docs lack or misstate: {row}");
        }
        let otp = KNOBS.iter().find(|k| k.name == "otp_ttl").unwrap();
        assert_eq!(
            otp.to_string(),
            "otp_ttl: 1 min to 1 d, default 10 min; above 10 min needs long_otp_lifetime"
        );
    }

    #[test]
    fn argon2_needs_eight_kib_per_lane() {
        let mut p = Policy::default();
        p.hashing.p_cost = 64;
        p.hashing.m_cost_kib = 8 * 64 - 1;
        let p = with_every_deviation(p);
        assert_eq!(out_of_range(&p), Some("hashing.m_cost_kib"));
    }

    #[test]
    fn empty_rationale_is_refused() {
        let p = Policy::seed_portal().allow_deviation(Deviation::EmailOtpCountsAsFactor, " ");
        assert_eq!(
            p.validate(),
            Err(PolicyError::EmptyRationale(
                Deviation::EmailOtpCountsAsFactor
            ))
        );
    }

    #[test]
    fn sec_24_delay_schedule_doubles_from_30s_to_one_hour() {
        let p = Policy::default();
        let secs: Vec<i64> = (0..14)
            .map(|n| p.password_delay(n).whole_seconds())
            .collect();
        assert_eq!(
            secs,
            vec![0, 0, 0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(p.password_delay(u32::MAX), Duration::hours(1));
    }

    #[test]
    fn sec_39_base_url_must_be_https_except_loopback() {
        let mk = |u: &str| {
            InsurerProfile::new(
                "さくら健康保険組合",
                "さくらけんぽWeb",
                "no-reply@sakura-kenpo.example.jp",
                "03-0000-0000",
                u,
            )
        };
        assert!(
            mk("https://portal.sakura-kenpo.example.jp")
                .validate()
                .is_ok()
        );
        assert!(mk("http://127.0.0.1:8080").validate().is_ok());
        assert!(mk("http://localhost").validate().is_ok());
        assert_eq!(
            mk("http://portal.sakura-kenpo.example.jp").validate(),
            Err(ProfileError::InsecureBaseUrl)
        );
        assert_eq!(
            mk("http://localhost.evil.example").validate(),
            Err(ProfileError::InsecureBaseUrl)
        );
        assert_eq!(
            mk("https://x.example/?a=1").validate(),
            Err(ProfileError::BaseUrlWithQuery)
        );
        assert_eq!(
            mk("https://portal.example/").link("/r", "tok"),
            "https://portal.example/r?token=tok"
        );
    }
}
