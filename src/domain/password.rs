//! Passwords: the secret wrapper, the length policy, the bundled blocklist and the
//! context-word check (SEC-14 to SEC-17, SEC-22).
//!
//! The pieces are split on purpose:
//!
//! - [`Password::new`] only makes the input comparable (NFKC, SEC-16) and bounded
//!   (SEC-22). It is used *both* when a password is set and when one is verified at
//!   login, so the two sides always see the same bytes.
//! - [`check_new_password`] is the policy, applied only to a *new* password (set,
//!   change, reset): length in code points, the bundled blocklist and the context words.
//!   It is never applied at login: a member whose password predates a stricter policy must
//!   still be able to log in (and is then asked to change it by the host if it likes).
//!
//! There are no composition rules (SEC-15): no "must contain a digit / a capital / a
//! symbol". Kana-only passwords and passwords with spaces are fine.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use time::Date;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::birth_date::wareki;

/// Largest accepted password in bytes of UTF-8, after NFKC (SEC-22).
///
/// Argon2 cost does not grow much with input length, but parsing, normalising and
/// copying do, and a password field is an easy place to post megabytes. 1 024 bytes is
/// far above [`PasswordRules::DEFAULT_MAX_CHARS`] (128 code points of at most 4 bytes
/// each = 512 bytes), so no password the policy allows is ever cut off by this limit.
pub const MAX_BYTES: usize = 1024;

/// Raw inputs longer than this many bytes are rejected before NFKC runs (SEC-22).
///
/// NFKC can grow a string (one `ﷺ` becomes 18 code points), but no string over
/// `4 × MAX_BYTES` could be a valid password in any form we care about, so a 1 MB post
/// costs one length comparison.
const MAX_RAW_BYTES: usize = 4 * MAX_BYTES;

/// A password as the member typed it, NFKC-normalised and held as a secret.
///
/// Why a newtype: the value must never reach a log, a serialised record or an error
/// message. It has no `Serialize`, no `Display`, no `Clone`, and its `Debug` prints
/// `Password([redacted])`. The inner memory is zeroed on drop (`secrecy`).
///
/// Normalisation (SEC-16): NFKC only — full-width `ＡＢＣ` and ASCII `ABC` are the same
/// password, half-width `ｶﾞ` and `ガ` are the same. There is **no trimming** and **no case
/// folding**: `Abc` and `abc` are different passwords, and a trailing space counts.
pub struct Password(SecretString);

impl Password {
    /// Normalises a typed password (NFKC) and checks that it is non-empty and at most
    /// [`MAX_BYTES`] bytes after normalisation.
    ///
    /// Use it identically when setting and when verifying a password (SEC-16), so the
    /// member who typed full-width letters at registration can log in with half-width
    /// ones. It does *not* apply the length policy or the blocklist — that is
    /// [`check_new_password`], for new passwords only.
    ///
    /// At login, map every error from here to the generic login failure: telling an
    /// attacker "too long" at login helps nobody (SEC-22).
    ///
    /// # Errors
    /// [`PasswordError::Empty`] for empty input; [`PasswordError::TooLongBytes`] for input
    /// over `4 × MAX_BYTES` raw bytes (rejected without normalising) or over
    /// [`MAX_BYTES`] after NFKC.
    pub fn new(input: impl Into<String>) -> Result<Password, PasswordError> {
        let raw: String = input.into();
        if raw.is_empty() {
            return Err(PasswordError::Empty);
        }
        if raw.len() > MAX_RAW_BYTES {
            // Not zeroised on purpose: nothing this long can be anyone's password, and
            // zeroing a megabyte is exactly the work SEC-22 wants to avoid.
            return Err(PasswordError::TooLongBytes);
        }
        let raw = Zeroizing::new(raw);
        // Sized for the largest accepted result up front: a growing `String` would leave
        // its earlier, un-zeroed buffers behind in freed memory.
        let mut normalised = Zeroizing::new(String::with_capacity(MAX_BYTES));
        for c in raw.nfkc() {
            if normalised.len() + c.len_utf8() > MAX_BYTES {
                return Err(PasswordError::TooLongBytes);
            }
            normalised.push(c);
        }
        if normalised.is_empty() {
            return Err(PasswordError::Empty);
        }
        // Copy into an exactly sized box; the `Zeroizing` buffers are wiped on drop, so no
        // un-zeroed copy is left behind by a reallocation.
        Ok(Password(SecretString::from(normalised.as_str())))
    }

    /// The normalised password, for hashing and for the policy checks.
    ///
    /// # Security Warning
    ///
    /// Leaking this value defeats the purpose of the wrapper. Pass it straight to the
    /// password hasher; never log it, put it in an error, a URL, a mail or a store.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Length in Unicode code points, the unit of the length policy (SEC-14):
    /// `パスワードです` counts as 7, not 21 bytes.
    pub fn char_count(&self) -> usize {
        self.expose_secret().chars().count()
    }
}

crate::redact::debug_masked!(Password, "[redacted]");

/// Length limits for new passwords, in code points (SEC-14).
///
/// The fields are public so a `Policy` can carry them, but [`check_new_password`]
/// always applies [`PasswordRules::clamped`]: a configuration can never go below the
/// floor of [`PasswordRules::FLOOR_MIN_CHARS`] or refuse passwords of
/// [`PasswordRules::MIN_MAX_CHARS`] characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    /// Fewest code points a new password may have.
    pub min_chars: usize,
    /// Most code points a new password may have.
    pub max_chars: usize,
}

impl PasswordRules {
    /// Strict default minimum: 15 code points (NIST SP 800-63B-4 for a password used as
    /// a single factor; SEC-14).
    pub const DEFAULT_MIN_CHARS: usize = 15;
    /// Hard floor for the minimum: 8 code points, the least NIST allows even when the
    /// password is one of two factors.
    pub const FLOOR_MIN_CHARS: usize = 8;
    /// Default maximum: 128 code points, generous for passphrases and password managers.
    pub const DEFAULT_MAX_CHARS: usize = 128;
    /// The maximum can never be set below 64: SEC-14 requires at least 64 characters to
    /// be accepted.
    pub const MIN_MAX_CHARS: usize = 64;

    /// The strict default: 15–128 code points.
    pub const fn strict() -> Self {
        PasswordRules {
            min_chars: Self::DEFAULT_MIN_CHARS,
            max_chars: Self::DEFAULT_MAX_CHARS,
        }
    }

    /// The seed portal's limits: 8–128 code points. Looser than [`PasswordRules::strict`];
    /// only acceptable when the password is one of two factors (see `Policy::seed_portal`).
    pub const fn seed_portal() -> Self {
        PasswordRules {
            min_chars: Self::FLOOR_MIN_CHARS,
            max_chars: Self::DEFAULT_MAX_CHARS,
        }
    }

    /// The limits actually enforced: `min_chars` raised to the floor, `max_chars` raised to
    /// at least [`PasswordRules::MIN_MAX_CHARS`] and to at least `min_chars`.
    ///
    /// Clamping instead of failing keeps a mistyped configuration from weakening the
    /// policy; the `Policy` report is where such a configuration is pointed out.
    pub fn clamped(self) -> Self {
        let min_chars = self.min_chars.max(Self::FLOOR_MIN_CHARS);
        let max_chars = self.max_chars.max(Self::MIN_MAX_CHARS).max(min_chars);
        PasswordRules {
            min_chars,
            max_chars,
        }
    }
}

impl Default for PasswordRules {
    /// [`PasswordRules::strict`].
    fn default() -> Self {
        Self::strict()
    }
}

/// Context words shorter than this many code points (after normalisation) are ignored.
///
/// A 2-digit 枝番 such as `00`, or a 3-digit 記号, would otherwise ban every password
/// that contains those digits anywhere.
pub const MIN_CONTEXT_WORD_CHARS: usize = 4;

/// Words a new password must not contain (SEC-17): what an attacker who targets this
/// member already knows or can guess.
///
/// Add the login ID, the e-mail address ([`PasswordContext::with_email`]), the birth date
/// ([`PasswordContext::with_birth_date`], every common format including 和暦), the
/// 記号 and 番号, the insurer and service names, the nickname, the name in romaji and kana,
/// and a temporary password being replaced.
///
/// Words are compared case-insensitively after NFKC, with hiragana folded to katakana
/// (so `やまだ` in a password matches the roster's `ヤマダ`). Words shorter than
/// [`MIN_CONTEXT_WORD_CHARS`] are ignored. A password is rejected when it *contains* a
/// word anywhere.
///
/// The words are personal data: `Debug` prints only how many there are.
#[derive(Clone, Default)]
pub struct PasswordContext {
    words: Vec<Zeroizing<String>>,
}

impl PasswordContext {
    /// An empty context (no words).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one word (builder style). See [`PasswordContext::add_word`].
    #[must_use]
    pub fn with_word(mut self, word: impl AsRef<str>) -> Self {
        self.add_word(word);
        self
    }

    /// Adds one word. It is normalised like the password (NFKC, lower case, hiragana →
    /// katakana, whitespace removed at both ends) and ignored when shorter than
    /// [`MIN_CONTEXT_WORD_CHARS`] code points. Over-long words (more than [`MAX_BYTES`]
    /// bytes) cannot be inside a valid password and are ignored too.
    pub fn add_word(&mut self, word: impl AsRef<str>) {
        let word = word.as_ref().trim();
        if word.len() > MAX_RAW_BYTES {
            return;
        }
        let key = comparison_key(word);
        let key_trimmed = key.trim();
        if key_trimmed.chars().count() < MIN_CONTEXT_WORD_CHARS || key_trimmed.len() > MAX_BYTES {
            return;
        }
        let key_trimmed = Zeroizing::new(key_trimmed.to_owned());
        if !self.words.contains(&key_trimmed) {
            self.words.push(key_trimmed);
        }
    }

    /// Adds an e-mail address: its local part (before the last `@`) and the whole address.
    #[must_use]
    pub fn with_email(mut self, address: impl AsRef<str>) -> Self {
        let address = address.as_ref();
        if let Some((local, _domain)) = address.rsplit_once('@') {
            self.add_word(local);
        }
        self.add_word(address);
        self
    }

    /// Adds a birth date in every format members write it, see [`birth_date_forms`].
    #[must_use]
    pub fn with_birth_date(mut self, date: Date) -> Self {
        self.add_birth_date(date);
        self
    }

    /// Adds every form of a birth date (see [`birth_date_forms`]), in place.
    pub fn add_birth_date(&mut self, date: Date) {
        for form in birth_date_forms(date) {
            self.add_word(form);
        }
    }

    /// How many words will be checked (after dropping short and duplicate ones).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether no word will be checked.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether `password` contains one of the words (after the same normalisation).
    fn is_contained_in(&self, password: &str) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let key = comparison_key(password);
        self.words.iter().any(|w| key.contains(w.as_str()))
    }
}

impl fmt::Debug for PasswordContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordContext")
            .field("words", &self.words.len())
            .finish()
    }
}

/// The forms a birth date takes when people put it in passwords (SEC-17: "DOB in all
/// formats including 和暦").
///
/// Because the context check is "contains", the short forms do most of the work: the
/// year (`1985`) and month-day (`0412`, `4/12`, `4月12日` …) catch `19850412`,
/// `850412`, `S600412` and `taro0412`. Longer forms are listed too, so the list reads as
/// the documentation of what is covered: `1985-04-12`, `1985/4/12`, `1985年4月12日`,
/// `昭和60年4月12日`, `S60.4.12`, `昭和60`, `平成元年` … Forms shorter than
/// [`MIN_CONTEXT_WORD_CHARS`] (e.g. `4/5`) are dropped by [`PasswordContext::add_word`].
/// The 和暦 forms use the birth-date parser's era table: 明治 from 1868-10-23 (明治改元),
/// no era before it.
pub fn birth_date_forms(date: Date) -> Vec<String> {
    let y = date.year();
    let m = u8::from(date.month());
    let d = date.day();
    let mut forms = vec![
        format!("{y}"),
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{m:02}{d:02}", y.rem_euclid(100)),
        format!("{m:02}{d:02}"),
        format!("{m:02}{d:02}{y:04}"),
        format!("{d:02}{m:02}{y:04}"),
        format!("{y}年{m}月{d}日"),
        format!("{y}年{m:02}月{d:02}日"),
        format!("{m}月{d}日"),
        format!("{m:02}月{d:02}日"),
    ];
    for sep in ['-', '/', '.'] {
        forms.push(format!("{y}{sep}{m:02}{sep}{d:02}"));
        forms.push(format!("{y}{sep}{m}{sep}{d}"));
        forms.push(format!("{m}{sep}{d}"));
        forms.push(format!("{m:02}{sep}{d:02}"));
    }
    if let Some((kanji, letter, era_year)) = wareki(date) {
        let year_words: Vec<String> = if era_year == 1 {
            vec![
                format!("{kanji}元年"),
                format!("{kanji}1年"),
                format!("{kanji}1"),
            ]
        } else {
            vec![format!("{kanji}{era_year}年"), format!("{kanji}{era_year}")]
        };
        forms.extend(year_words);
        forms.push(format!("{kanji}{era_year}年{m}月{d}日"));
        forms.push(format!("{letter}{era_year:02}{m:02}{d:02}"));
        forms.push(format!("{letter}{era_year}.{m}.{d}"));
        forms.push(format!("{letter}{era_year:02}.{m:02}.{d:02}"));
        forms.push(format!("{letter}{era_year}/{m}/{d}"));
        forms.push(format!("{era_year:02}{m:02}{d:02}"));
    }
    forms
}

/// NFKC, then Unicode lower case, then hiragana folded to katakana: the form in which
/// passwords and context words are compared (never the form that is hashed).
fn comparison_key(s: &str) -> Zeroizing<String> {
    // Room for lower-casing growth (`İ` → `i̇`) so the buffer is not reallocated.
    let mut out = Zeroizing::new(String::with_capacity(s.len().saturating_mul(2)));
    for c in s.nfkc().flat_map(char::to_lowercase) {
        out.push(hiragana_to_katakana(c));
    }
    out
}

fn hiragana_to_katakana(c: char) -> char {
    match c {
        // ぁ..ゖ and ゝゞ map to ァ..ヶ and ヽヾ (a fixed offset of 0x60).
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(u32::from(c) + 0x60).unwrap_or(c)
        }
        _ => c,
    }
}

/// The bundled blocklist (SEC-17): one password per line, lower case, sorted; lines
/// starting with `#` are the provenance header. Source and licence: see the file header
/// (zxcvbn 3.1.1 PASSWORDS list, MIT), filtered to ≥ 8 code points.
const COMMON_PASSWORDS_TXT: &str = include_str!("common_passwords.txt");

struct Blocklist {
    entries: HashSet<&'static str>,
    longest_chars: usize,
}

static BLOCKLIST: LazyLock<Blocklist> = LazyLock::new(|| {
    let entries: HashSet<&'static str> = COMMON_PASSWORDS_TXT
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let longest_chars = entries.iter().map(|e| e.chars().count()).max().unwrap_or(0);
    Blocklist {
        entries,
        longest_chars,
    }
});

/// Whether `candidate` is on the bundled list of common passwords (SEC-17).
///
/// The comparison is an exact match after NFKC and lower-casing, so `PassWord1234` and
/// `ｐａｓｓｗｏｒｄ１２３４` both match `password1234`. Variants (`password!`,
/// `passwordpassword`) are deliberately not guessed at: the list holds the real ones.
/// Only the first few code points of a long candidate are ever normalised, so the cost
/// is bounded whatever the input.
pub fn is_common_password(candidate: &str) -> bool {
    let list = &*BLOCKLIST;
    // At most `longest_chars` code points of at most 4 bytes: never reallocated.
    let mut key = Zeroizing::new(String::with_capacity(list.longest_chars * 4));
    for (i, c) in candidate.nfkc().flat_map(char::to_lowercase).enumerate() {
        if i >= list.longest_chars {
            return false;
        }
        key.push(c);
    }
    list.entries.contains(key.as_str())
}

/// A password made of one character repeated (`aaaaaaaaaaaaaaa`, fifteen spaces) is as
/// guessable as a blocklist entry, whatever its length.
fn is_one_repeated_char(password: &str) -> bool {
    let mut chars = password.chars();
    match chars.next() {
        Some(first) => chars.all(|c| c == first),
        None => false,
    }
}

/// Checks a **new** password (set, change, reset) against the policy and says why it is
/// refused (SEC-14, SEC-15, SEC-17).
///
/// In order: length in code points (limits from [`PasswordRules::clamped`]), the bundled
/// blocklist ([`is_common_password`], plus one character repeated), then the context
/// words. No composition rules (SEC-15). Not for login: an existing password is verified
/// against its hash, never against today's policy.
///
/// # Errors
/// [`PasswordError::TooShort`], [`PasswordError::TooLong`], [`PasswordError::Common`] or
/// [`PasswordError::ContainsContext`]; the member sees the matching
/// [`PasswordError::message`].
pub fn check_new_password(
    pw: &Password,
    rules: &PasswordRules,
    context: &PasswordContext,
) -> Result<(), PasswordError> {
    let rules = rules.clamped();
    let chars = pw.char_count();
    if chars < rules.min_chars {
        return Err(PasswordError::TooShort {
            min: rules.min_chars,
        });
    }
    if chars > rules.max_chars {
        return Err(PasswordError::TooLong {
            max: rules.max_chars,
        });
    }
    let secret = pw.expose_secret();
    if is_common_password(secret) || is_one_repeated_char(secret) {
        return Err(PasswordError::Common);
    }
    if context.is_contained_in(secret) {
        return Err(PasswordError::ContainsContext);
    }
    Ok(())
}

/// Checks that 新パスワード and 新パスワード(確認) are the same (after NFKC), comparing in
/// constant time for equal lengths.
///
/// # Errors
/// [`PasswordError::MismatchConfirmation`] when they differ.
pub fn check_confirmation(new: &Password, confirmation: &Password) -> Result<(), PasswordError> {
    let same: bool = new
        .expose_secret()
        .as_bytes()
        .ct_eq(confirmation.expose_secret().as_bytes())
        .into();
    if same {
        Ok(())
    } else {
        Err(PasswordError::MismatchConfirmation)
    }
}

/// Why a password was refused. Never carries the password itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Nothing was typed.
    #[error("password is empty")]
    Empty,
    /// Over [`MAX_BYTES`] bytes after NFKC, or over four times that before (SEC-22).
    #[error("password is longer than the byte limit")]
    TooLongBytes,
    /// Fewer code points than the policy minimum (SEC-14).
    #[error("password is shorter than {min} characters")]
    TooShort {
        /// The minimum in force, shown to the member.
        min: usize,
    },
    /// More code points than the policy maximum (SEC-14).
    #[error("password is longer than {max} characters")]
    TooLong {
        /// The maximum in force, shown to the member.
        max: usize,
    },
    /// On the bundled list of common passwords (SEC-17).
    #[error("password is a commonly used password")]
    Common,
    /// Contains a context word: login ID, e-mail, birth date, card number … (SEC-17).
    #[error("password contains personal or service information")]
    ContainsContext,
    /// 新パスワード and 新パスワード(確認) differ.
    #[error("password and confirmation do not match")]
    MismatchConfirmation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;
    use proptest::prelude::*;
    use std::time::{Duration, Instant};
    use time::macros::date;

    fn pw(s: &str) -> Password {
        Password::new(s).unwrap()
    }

    fn check(s: &str) -> Result<(), PasswordError> {
        check_new_password(&pw(s), &PasswordRules::strict(), &PasswordContext::new())
    }

    // SEC-14: minimum 15 code points by default.
    #[test]
    fn sec_14_fourteen_chars_rejected_fifteen_accepted() {
        assert_eq!(
            check("kumoriyukiyama"),
            Err(PasswordError::TooShort { min: 15 })
        );
        assert_eq!(check("kumoriyukiyamax"), Ok(()));
        assert_eq!(
            PasswordError::TooShort { min: 15 }.message(Lang::Ja),
            "パスワードは15文字以上で入力してください。"
        );
    }

    // SEC-14: at least 64 accepted, 128 accepted, 129 rejected.
    #[test]
    fn sec_14_sixty_four_and_128_accepted_129_rejected() {
        let base = "tsukimisoba-hanabi-kawara-";
        let make = |n: usize| base.chars().cycle().take(n).collect::<String>();
        assert_eq!(check(&make(64)), Ok(()));
        assert_eq!(check(&make(128)), Ok(()));
        assert_eq!(check(&make(129)), Err(PasswordError::TooLong { max: 128 }));
        // 128 kana = 384 bytes: still within MAX_BYTES.
        let kana: String = "あいうえおかきくけこ".chars().cycle().take(128).collect();
        assert_eq!(check(&kana), Ok(()));
    }

    // SEC-14: length is counted in code points.
    #[test]
    fn sec_14_counts_code_points_not_bytes() {
        assert_eq!(pw("パスワードです").char_count(), 7);
        assert_eq!(pw("🍣🍣").char_count(), 2);
    }

    // SEC-14: configurable down to a floor of 8, never below; max never below 64.
    #[test]
    fn sec_14_rules_are_clamped_to_floor() {
        let loose = PasswordRules {
            min_chars: 4,
            max_chars: 10,
        };
        assert_eq!(
            loose.clamped(),
            PasswordRules {
                min_chars: 8,
                max_chars: 64
            }
        );
        let ctx = PasswordContext::new();
        assert_eq!(
            check_new_password(&pw("kumoriy"), &loose, &ctx),
            Err(PasswordError::TooShort { min: 8 })
        );
        assert_eq!(check_new_password(&pw("kumoriya"), &loose, &ctx), Ok(()));
        let seed = PasswordRules::seed_portal();
        assert_eq!(check_new_password(&pw("kumoriya"), &seed, &ctx), Ok(()));
        let inverted = PasswordRules {
            min_chars: 100,
            max_chars: 70,
        };
        assert_eq!(inverted.clamped().max_chars, 100);
    }

    // SEC-15: no composition rules; lowercase-only, kana-only and spaces are fine.
    #[test]
    fn sec_15_no_composition_rules() {
        for ok in [
            "suzumenonamidahodo",
            "すずめのなみだほどのあめがふる",
            "ツバメが低く飛ぶと雨が降るらしい",
            "correct horse battery staple",
            "  leading and trailing  ",
            "ŽluťoučkýKůňÚpělĎábelské",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    // SEC-16: full-width equals ASCII after NFKC; half-width kana compose.
    #[test]
    fn sec_16_nfkc_fullwidth_equals_ascii() {
        assert_eq!(pw("ＡＢＣ").expose_secret(), "ABC");
        assert_eq!(pw("ｶﾞｷﾞｸﾞ").expose_secret(), "ガギグ");
        assert_eq!(pw("ｐａｓｓ　ｗｏｒｄ").expose_secret(), "pass word");
    }

    // SEC-16: no trimming, no case folding, no truncation.
    #[test]
    fn sec_16_no_trim_no_case_fold_no_truncation() {
        assert_eq!(pw(" abc ").expose_secret(), " abc ");
        assert_ne!(pw("Abc").expose_secret(), pw("abc").expose_secret());
        let p = "kawazu-tobikomu-mizu-no-oto";
        assert_ne!(pw(p).expose_secret(), pw(&format!("{p}x")).expose_secret());
        let a = format!("{}a", "z".repeat(199));
        let b = format!("{}b", "z".repeat(199));
        assert_eq!(a.len(), 200);
        assert_ne!(pw(&a).expose_secret(), pw(&b).expose_secret());
        assert!(check_confirmation(&pw(&a), &pw(&b)).is_err());
    }

    // SEC-16: confirmation compares normalised forms.
    #[test]
    fn sec_16_confirmation_compares_after_nfkc() {
        assert_eq!(
            check_confirmation(&pw("ｓｅｃｒｅｔ１２３"), &pw("secret123")),
            Ok(())
        );
        assert_eq!(
            check_confirmation(&pw("secret123"), &pw("secret124")),
            Err(PasswordError::MismatchConfirmation)
        );
        assert_eq!(
            check_confirmation(&pw("secret123"), &pw("secret1234")),
            Err(PasswordError::MismatchConfirmation)
        );
    }

    // SEC-17: real top-list entries are rejected, whatever the case or width.
    #[test]
    fn sec_17_rejects_each_blocklist_entry() {
        let seed = PasswordRules::seed_portal();
        let ctx = PasswordContext::new();
        for common in [
            "password",
            "12345678",
            "baseball",
            "iloveyou",
            "trustno1",
            "1qaz2wsx",
            "sunshine",
            "qwertyuiop",
            "1234567890",
            "princess",
            "PassWord1",
            "ＦＯＯＴＢＡＬＬ",
        ] {
            assert_eq!(
                check_new_password(&pw(common), &seed, &ctx),
                Err(PasswordError::Common),
                "{common}"
            );
        }
        for long_common in ["qwertyuiop12345", "1qaz2wsx3edc4rfv", "passwordstandard"] {
            assert_eq!(check(long_common), Err(PasswordError::Common));
        }
    }

    // SEC-17: one character repeated counts as common.
    #[test]
    fn sec_17_rejects_one_repeated_character() {
        assert_eq!(check(&" ".repeat(15)), Err(PasswordError::Common));
        assert_eq!(check(&"あ".repeat(20)), Err(PasswordError::Common));
        assert_eq!(check(&format!("{}b", "a".repeat(15))), Ok(()));
    }

    // SEC-17: the bundled list has ≥ 10 000 entries, each ≥ 8 code points, lower case,
    // NFKC, sorted and unique.
    #[test]
    fn sec_17_bundled_list_is_large_sorted_and_normalised() {
        let entries: Vec<&str> = COMMON_PASSWORDS_TXT
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(entries.len() >= 10_000, "{}", entries.len());
        assert_eq!(BLOCKLIST.entries.len(), entries.len());
        for w in entries.windows(2) {
            assert!(w[0] < w[1], "not sorted/unique: {:?}", w);
        }
        for e in &entries {
            assert!(e.chars().count() >= PasswordRules::FLOOR_MIN_CHARS, "{e}");
            assert_eq!(e.to_lowercase(), *e);
            assert_eq!(e.nfkc().collect::<String>(), *e);
            assert_eq!(e.trim(), *e);
        }
    }

    #[test]
    fn sec_17_is_common_password_bounds_work_on_long_input() {
        assert!(is_common_password("password"));
        assert!(!is_common_password(""));
        let long = "password".repeat(100_000);
        assert!(!is_common_password(&long));
    }

    // SEC-17: each context word is rejected (case-insensitive, after NFKC, kana folded).
    #[test]
    fn sec_17_rejects_each_context_word() {
        let ctx = PasswordContext::new()
            .with_word("taro.kenpo")
            .with_email("hanako.sample@example.jp")
            .with_birth_date(date!(1985 - 04 - 12))
            .with_word("123456") // 番号
            .with_word("サンプル健康保険組合")
            .with_word("ヤマダタロウ")
            .with_word("yamada")
            .with_word("ぽんたろう");
        for bad in [
            "my-TARO.KENPO-is-great",
            "hanako.sample-and-cats",
            "hanako.sample@example.jp!",
            "Spring19850412Blossom",
            "spring-1985-04-12-blossom",
            "spring0412blossom-rain",
            "spring-4/12-blossom-rain",
            "昭和60年4月12日生まれです",
            "birthday-S60.4.12-yay",
            "my card 123456 is here",
            "ｍｙ ｃａｒｄ １２３４５６ ｉｓ ｈｅｒｅ",
            "サンプル健康保険組合のパスワード",
            "やまだたろうのひみつのことばです",
            "ｙａｍａｄａ-secret-phrase",
            "ポンタロウのしっぽはふさふさでかわいい",
        ] {
            assert_eq!(
                check_new_password(&pw(bad), &PasswordRules::strict(), &ctx),
                Err(PasswordError::ContainsContext),
                "{bad}"
            );
        }
        assert_eq!(
            check_new_password(
                &pw("kumo-no-ue-wa-itsumo-hare"),
                &PasswordRules::strict(),
                &ctx
            ),
            Ok(())
        );
    }

    // SEC-17: words under 4 code points are ignored (枝番 "00", 記号 "999").
    #[test]
    fn sec_17_short_context_words_ignored() {
        let ctx = PasswordContext::new()
            .with_word("00")
            .with_word("999")
            .with_word(" ");
        assert!(ctx.is_empty());
        assert_eq!(
            check_new_password(&pw("room-00-floor-999-x"), &PasswordRules::strict(), &ctx),
            Ok(())
        );
    }

    // SEC-17: 和暦 and Gregorian forms of a birth date.
    #[test]
    fn sec_17_birth_date_forms_cover_wareki() {
        let forms = birth_date_forms(date!(1989 - 01 - 08));
        for f in [
            "19890108",
            "1989-01-08",
            "1989/1/8",
            "平成元年",
            "H010108",
            "0108",
        ] {
            assert!(forms.iter().any(|x| x == f), "{f} missing");
        }
        let forms = birth_date_forms(date!(1989 - 01 - 07));
        assert!(forms.iter().any(|x| x == "昭和64年"));
        let forms = birth_date_forms(date!(2019 - 05 - 01));
        assert!(forms.iter().any(|x| x == "令和元年"));
        let forms = birth_date_forms(date!(1925 - 03 - 03));
        assert!(forms.iter().any(|x| x == "大正14年3月3日"));
        // No era before 明治, and extreme dates do not panic.
        for d in [
            Date::MIN,
            Date::MAX,
            date!(1868 - 01 - 24),
            date!(1900 - 02 - 28),
        ] {
            assert!(!birth_date_forms(d).is_empty());
        }
        // One era table with the birth-date parser: 明治 begins on 1868-10-23 (明治改元).
        assert!(wareki(date!(1868 - 01 - 24)).is_none());
        assert!(wareki(date!(1868 - 10 - 22)).is_none());
        assert_eq!(wareki(date!(1868 - 10 - 23)), Some(("明治", 'M', 1)));
        assert_eq!(wareki(date!(1912 - 07 - 29)), Some(("明治", 'M', 45)));
        assert_eq!(wareki(date!(1912 - 07 - 30)), Some(("大正", 'T', 1)));
        assert_eq!(wareki(date!(1900 - 02 - 28)), Some(("明治", 'M', 33)));
    }

    // SEC-17: the context does not print the personal data it holds.
    #[test]
    fn sec_17_context_debug_hides_words() {
        let ctx = PasswordContext::new().with_word("hanako.sample");
        let dbg = format!("{ctx:?}");
        assert!(!dbg.contains("hanako"), "{dbg}");
        assert_eq!(dbg, "PasswordContext { words: 1 }");
    }

    // SEC-17: a refusal says why, in the seed's words, and never echoes the password.
    #[test]
    fn sec_17_refusals_say_why() {
        for (typed, reason, ja) in [
            (
                "qwertyuiop12345",
                PasswordError::Common,
                "よく使われているパスワードは使用できません。",
            ),
            (
                &"x".repeat(129),
                PasswordError::TooLong { max: 128 },
                "パスワードは128文字以内で入力してください。",
            ),
        ] {
            assert_eq!(check(typed), Err(reason));
            assert_eq!(reason.message(Lang::Ja), ja);
            assert!(!reason.message(Lang::En).contains(typed));
        }
        assert_eq!(
            PasswordError::ContainsContext.message(Lang::Ja),
            "ログインID、メールアドレス、生年月日、記号・番号などを含むパスワードは使用できません。"
        );
    }

    // SEC-22: empty and over-long inputs are refused by the constructor.
    #[test]
    fn sec_22_empty_and_byte_limit() {
        assert_eq!(Password::new("").err(), Some(PasswordError::Empty));
        assert!(Password::new("a".repeat(MAX_BYTES)).is_ok());
        assert_eq!(
            Password::new("a".repeat(MAX_BYTES + 1)).err(),
            Some(PasswordError::TooLongBytes)
        );
        // 341 × U+FDFA is 1 023 raw bytes but about 11 KB after NFKC.
        assert_eq!(
            Password::new("\u{FDFA}".repeat(341)).err(),
            Some(PasswordError::TooLongBytes)
        );
        // Full-width letters shrink under NFKC: 1 024 of them (3 072 raw bytes) fit.
        assert!(Password::new("Ａ".repeat(MAX_BYTES)).is_ok());
    }

    // SEC-22: a 1 MB password is rejected in under 1 ms, before any normalisation.
    #[test]
    fn sec_22_megabyte_password_rejected_before_normalising() {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let big = "\u{FDFA}".repeat(350_000); // ~1 MB, would expand 18×
            let start = Instant::now();
            let result = Password::new(big);
            best = best.min(start.elapsed());
            assert_eq!(result.err(), Some(PasswordError::TooLongBytes));
        }
        assert!(best < Duration::from_millis(1), "{best:?}");
    }

    // Debug never shows the secret (DESIGN §3).
    #[test]
    fn sec_16_debug_never_shows_secret() {
        let p = pw("hidden-treasure-phrase");
        assert_eq!(format!("{p:?}"), "Password([redacted])");
        assert_eq!(format!("{p:#?}"), "Password([redacted])");
        let e = check_new_password(&p, &PasswordRules::strict(), &PasswordContext::new());
        assert_eq!(e, Ok(()));
    }

    proptest! {
        // SEC-22: the constructor and the policy never panic.
        #[test]
        fn sec_22_password_new_never_panics(s in any::<String>()) {
            if let Ok(p) = Password::new(s.clone()) {
                prop_assert!(p.expose_secret().len() <= MAX_BYTES);
                prop_assert!(!p.expose_secret().is_empty());
                let ctx = PasswordContext::new().with_word(&s);
                let _ = check_new_password(&p, &PasswordRules::strict(), &ctx);
            }
            let _ = is_common_password(&s);
        }

        // SEC-16: normalisation is idempotent, so set and verify agree.
        #[test]
        fn sec_16_normalisation_is_idempotent(s in "\\PC{1,40}") {
            let once = Password::new(s).unwrap();
            let twice = Password::new(once.expose_secret()).unwrap();
            prop_assert_eq!(once.expose_secret(), twice.expose_secret());
        }

        // SEC-17: a password that contains a context word is always rejected.
        #[test]
        fn sec_17_context_word_anywhere_rejected(
            pre in "[a-z ]{0,10}", word in "[a-z0-9]{4,12}", post in "[a-z ]{0,10}"
        ) {
            // The tail keeps it at ≥ 15 code points and off the blocklist.
            let p = pw(&format!("{pre}{word}{post}-kumo-no-ue-hare"));
            let ctx = PasswordContext::new().with_word(word.to_uppercase());
            let r = check_new_password(&p, &PasswordRules::strict(), &ctx);
            prop_assert_eq!(r, Err(PasswordError::ContainsContext));
        }
    }
}
