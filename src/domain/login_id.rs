//! ログインID: the name a member logs in with, chosen by the member (新ログインID) or
//! pre-issued by the insurer (SEC-42).

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::token::uniform_index;

/// A login ID in canonical form: ASCII, lower case, 6–32 characters of letters, digits
/// and `. _ - @`.
///
/// Why this shape:
/// - **ASCII only.** Members type IDs on phones, PCs and at the support desk's dictation;
///   half-width letters and digits survive all of these, kana and kanji do not (IME
///   variants, look-alikes such as `ー`/`-`). Full-width input is accepted and folded
///   (NFKC), because Japanese IMEs default to full width.
/// - **`.` `_` `-` `@`** are the separators members know from e-mail addresses, so IDs
///   such as `taro.kenpo` or IDs carried over from an older portal that used an
///   address-like ID keep working. None of them needs escaping in a URL, a log line or
///   HTML, and there is no whitespace, quote, `<`, `>`, `/`, `\` or `%`. Using one's own
///   e-mail address as the ID is refused by [`LoginId::ensure_not_identifying`]
///   (SEC-42), not by the character set.
/// - **Case-insensitive.** `Taro.Kenpo` and `taro.kenpo` are the same member: the
///   canonical lower-case form is what is stored, compared for uniqueness and looked up,
///   so two accounts can never differ only by case. The member's capitalisation is not
///   kept.
/// - **6–32 characters**: long enough not to be a 記号 or a short guessable name, short
///   enough to type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LoginId(String);

impl LoginId {
    /// Fewest characters in a login ID.
    pub const MIN_CHARS: usize = 6;
    /// Most characters in a login ID.
    pub const MAX_CHARS: usize = 32;
    /// Length of a generated (pre-issued) login ID: 10 symbols from a 32-symbol alphabet,
    /// 50 bits — not guessable from a roster, yet short enough to read over the phone.
    pub const GENERATED_CHARS: usize = 10;

    /// Raw inputs longer than this are rejected as too long before NFKC runs: 32
    /// full-width characters are 96 bytes, so this leaves room for generous surrounding
    /// whitespace and nothing else.
    const MAX_RAW_BYTES: usize = 1024;

    /// The alphabet of generated IDs: lower-case letters without `l` and `o`, digits
    /// without `0` and `1` (so none of `0 O 1 l I` can be misread), 32 symbols. Every
    /// symbol is allowed by [`LoginId::parse`] and already lower case.
    const GENERATED_ALPHABET: &'static [u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

    /// Parses what the member typed into 新ログインID or ログインID: NFKC (full-width →
    /// half-width), trim, check the characters and the length, lower-case.
    ///
    /// Never panics, whatever the input.
    ///
    /// # Errors
    /// [`LoginIdError::InvalidChar`] for any character outside ASCII letters, digits and
    /// `. _ - @` (checked first, because that is the more useful message for an input
    /// such as `やまだ`); [`LoginIdError::TooShort`] / [`LoginIdError::TooLong`] for the
    /// length.
    pub fn parse(input: &str) -> Result<LoginId, LoginIdError> {
        if input.len() > Self::MAX_RAW_BYTES {
            return Err(LoginIdError::TooLong);
        }
        let normalised: String = input.nfkc().collect();
        // DOM-4: a pasted ID keeps no zero-width characters at its ends either.
        let trimmed = super::normalize::trim(&normalised);
        if !trimmed.chars().all(is_allowed_char) {
            return Err(LoginIdError::InvalidChar);
        }
        // All ASCII from here, so bytes are characters.
        if trimmed.len() < Self::MIN_CHARS {
            return Err(LoginIdError::TooShort);
        }
        if trimmed.len() > Self::MAX_CHARS {
            return Err(LoginIdError::TooLong);
        }
        // `------` or `._._._` would be a login ID nobody can read back over the phone.
        if !trimmed.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return Err(LoginIdError::NoLetterOrDigit);
        }
        Ok(LoginId(trimmed.to_ascii_lowercase()))
    }

    /// A random login ID for the insurer to pre-issue (SEC-42): never derived from the
    /// 記号・番号, the name or a sequence.
    ///
    /// [`LoginId::GENERATED_CHARS`] symbols from a 32-symbol alphabet without `0 O 1 l I`,
    /// each drawn by rejection sampling (no modulo bias, SEC-01) from the caller's
    /// cryptographic RNG (pass `rand::rngs::SysRng` or `rand::rng()` in production).
    /// The result is always accepted by [`LoginId::parse`]. Uniqueness is the store's
    /// job: on a collision, generate again.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> LoginId {
        let alphabet = Self::GENERATED_ALPHABET;
        let id = (0..Self::GENERATED_CHARS)
            .map(|_| {
                let i = uniform_index(rng, alphabet.len());
                char::from(alphabet.get(i).copied().unwrap_or(b'a'))
            })
            .collect();
        LoginId(id)
    }

    /// The canonical form (lower case): store it, compare it, look it up by it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Refuses a chosen login ID that *is* the member's identifying data (SEC-42): the
    /// e-mail address, the 記号・番号, the birth date.
    ///
    /// Such an ID can be guessed by anyone who knows that data, and 健康保険法 §194-2
    /// restricts using the insurance number as a key. Pass the e-mail address (and its
    /// local part), the card number in the forms the member knows (`999-123456-00`,
    /// `99912345600`, 番号 alone) and the birth date forms
    /// (`crate::domain::password::birth_date_forms`). The comparison ignores case,
    /// width and the separators `. _ -`, so `999_123456_00` matches `999-123456-00`.
    ///
    /// # Errors
    /// [`LoginIdError::Identifying`] when the ID equals one of `identifying`.
    pub fn ensure_not_identifying<I, S>(&self, identifying: I) -> Result<(), LoginIdError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let own = skeleton(&self.0);
        for word in identifying {
            let word = word.as_ref();
            if word.len() > Self::MAX_RAW_BYTES {
                continue;
            }
            let other = skeleton(&word.nfkc().collect::<String>());
            if !other.is_empty() && other == own {
                return Err(LoginIdError::Identifying);
            }
        }
        Ok(())
    }
}

/// Lower case, separators `. _ -` and whitespace removed: the form in which an ID and
/// a piece of identifying data are compared.
fn skeleton(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '.' | '_' | '-') && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')
}

crate::domain::text_conversions! { LoginId, LoginIdError;
    /// The canonical form. A login ID is not a secret, but it is only ever shown to its
    /// member (in mails such as ログインIDのお知らせ) and to the support desk.
    Display |id| &id.0;
    FromStr;
    /// Through [`LoginId::parse`], so a stored value is checked again when it is read.
    TryFrom<String>;
    Into<String> |id| id.0;
    AsRef<str> |id| &id.0;
}

/// Why a login ID was refused. Never carries the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LoginIdError {
    /// Fewer than [`LoginId::MIN_CHARS`] characters (including empty input).
    #[error("login ID is shorter than 6 characters")]
    TooShort,
    /// More than [`LoginId::MAX_CHARS`] characters.
    #[error("login ID is longer than 32 characters")]
    TooLong,
    /// A character other than ASCII letters, digits and `. _ - @`.
    #[error("login ID contains a character that is not allowed")]
    InvalidChar,
    /// Made only of `. _ - @`, without a letter or digit.
    #[error("login ID has no letter or digit")]
    NoLetterOrDigit,
    /// The ID equals the member's e-mail address, card number or birth date (SEC-42).
    #[error("login ID equals identifying data")]
    Identifying,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::from_stored;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashSet;
    use std::convert::Infallible;

    // Parsing rules (DESIGN §3 `LoginId`): NFKC, trim, lower case, allowed characters.
    #[test]
    fn login_id_accepts_and_canonicalises() {
        for (input, canonical) in [
            ("taro.kenpo", "taro.kenpo"),
            ("Taro.Kenpo", "taro.kenpo"),
            ("ｔａｒｏ＿ｋｅｎｐｏ", "taro_kenpo"),
            ("　taro-01　", "taro-01"),
            (" hanako@sample ", "hanako@sample"),
            ("ＡＢＣ１２３", "abc123"),
            ("abcdef", "abcdef"),
            (
                "a234567890123456789012345678901b",
                "a234567890123456789012345678901b",
            ),
        ] {
            let id = LoginId::parse(input).unwrap();
            assert_eq!(id.as_str(), canonical, "{input}");
            assert_eq!(id.to_string(), canonical);
        }
    }

    // DOM-4: an ID pasted with a zero-width space or a BOM at either end is the ID.
    #[test]
    fn dom_04_zero_width_characters_at_the_ends_are_trimmed() {
        for pasted in [
            "taro-sakura\u{200B}",
            "\u{FEFF}taro-sakura",
            "\u{2060}taro-sakura\u{200D} ",
        ] {
            assert_eq!(
                LoginId::parse(pasted).unwrap().as_str(),
                "taro-sakura",
                "{pasted:?}"
            );
        }
    }

    #[test]
    fn login_id_rejects_with_reason() {
        for (input, err) in [
            ("", LoginIdError::TooShort),
            ("   ", LoginIdError::TooShort),
            ("abcde", LoginIdError::TooShort),
            ("a2345678901234567890123456789012x", LoginIdError::TooLong),
            ("やまだたろう", LoginIdError::InvalidChar),
            ("taro kenpo", LoginIdError::InvalidChar),
            ("taro<kenpo>", LoginIdError::InvalidChar),
            ("taro/kenpo", LoginIdError::InvalidChar),
            ("taro%20kenpo", LoginIdError::InvalidChar),
            ("------", LoginIdError::NoLetterOrDigit),
            ("._@_._", LoginIdError::NoLetterOrDigit),
            ("taro\u{200B}kenpo", LoginIdError::InvalidChar),
            ("tarö_kenpo", LoginIdError::InvalidChar),
            ("taro\nkenpo", LoginIdError::InvalidChar),
            ("taro\u{2010}kenpo", LoginIdError::InvalidChar),
        ] {
            assert_eq!(LoginId::parse(input), Err(err), "{input:?}");
        }
        assert_eq!(
            LoginId::parse(&"a".repeat(1_000_000)),
            Err(LoginIdError::TooLong)
        );
    }

    // Uniqueness is case-insensitive: two spellings are one ID.
    #[test]
    fn login_id_case_variants_are_the_same_member() {
        let a = LoginId::parse("TaroKenpo").unwrap();
        let b = LoginId::parse("tarokenpo").unwrap();
        let c = LoginId::parse("ＴＡＲＯＫＥＮＰＯ").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        let set: HashSet<_> = [a, b, c].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn login_id_serde_goes_through_parser() {
        let from = from_stored::<LoginId>;
        let id = LoginId::parse("Taro.Kenpo").unwrap();
        assert_eq!(String::from(id.clone()), "taro.kenpo");
        assert_eq!(from("TARO.KENPO").unwrap(), id);
        assert!(from("x").is_err());
        assert!(from("やまだたろう").is_err());
    }

    // SEC-42: a chosen ID may not equal the e-mail, card number or birth date.
    #[test]
    fn sec_42_rejects_id_equal_to_identifying_data() {
        let identifying = [
            "hanako.sample@example.jp",
            "hanako.sample",
            "999-123456-00",
            "123456",
            "19850412",
        ];
        for chosen in [
            "Hanako.Sample@example.jp",
            "hanako.sample",
            "hanako_sample",
            "999-123456-00",
            "99912345600",
            "999_123456_00",
            "１２３４５６",
            "1985-04-12",
        ] {
            let id = LoginId::parse(chosen).unwrap();
            assert_eq!(
                id.ensure_not_identifying(identifying),
                Err(LoginIdError::Identifying),
                "{chosen}"
            );
        }
        let fine = LoginId::parse("kumo.hare").unwrap();
        assert_eq!(fine.ensure_not_identifying(identifying), Ok(()));
        assert_eq!(fine.ensure_not_identifying(Vec::<String>::new()), Ok(()));
    }

    // SEC-42 / SEC-01: generated IDs parse, use only the unambiguous alphabet, and differ.
    #[test]
    fn sec_42_generated_login_ids_parse_and_use_unambiguous_alphabet() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut seen = HashSet::new();
        for _ in 0..2_000 {
            let id = LoginId::generate(&mut rng);
            assert_eq!(id.as_str().len(), LoginId::GENERATED_CHARS);
            assert_eq!(LoginId::parse(id.as_str()), Ok(id.clone()));
            for c in id.as_str().chars() {
                assert!(!"0O1lI".contains(c), "{id}");
                assert!(LoginId::GENERATED_ALPHABET.contains(&(c as u8)));
            }
            assert!(seen.insert(id), "repeat after {} ids", seen.len());
        }
        let alphabet: HashSet<_> = LoginId::GENERATED_ALPHABET.iter().collect();
        assert_eq!(alphabet.len(), 32, "alphabet has duplicates");
    }

    /// An RNG that hands out scripted bytes and counts what it was asked for.
    struct ScriptedRng {
        bytes: Vec<u8>,
        pos: usize,
        requested: usize,
    }

    impl rand::TryRng for ScriptedRng {
        type Error = Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            let mut b = [0u8; 4];
            self.try_fill_bytes(&mut b)?;
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            let mut b = [0u8; 8];
            self.try_fill_bytes(&mut b)?;
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            for d in dst {
                *d = self.bytes[self.pos % self.bytes.len()];
                self.pos += 1;
                self.requested += 1;
            }
            Ok(())
        }
    }
    impl rand::TryCryptoRng for ScriptedRng {}

    // SEC-01: randomness comes from the injected CryptoRng, and it is what decides the ID.
    #[test]
    fn sec_01_generator_draws_from_injected_rng() {
        let mut rng = ScriptedRng {
            bytes: vec![0, 31, 32, 255],
            pos: 0,
            requested: 0,
        };
        let id = LoginId::generate(&mut rng);
        assert_eq!(rng.requested, LoginId::GENERATED_CHARS);
        // 0 → 'a', 31 → '9', 32 → 'a', 255 → '9' (255 % 32 = 31).
        assert_eq!(id.as_str(), "a9a9a9a9a9");
    }

    // SEC-01: bytes that would bias the result are drawn again (rejection sampling).
    #[test]
    fn sec_01_rejection_sampling_discards_biased_bytes() {
        // n = 3: 256 % 3 = 1, so byte 255 must be rejected; 254 → 254 % 3 = 2.
        let mut rng = ScriptedRng {
            bytes: vec![255, 255, 254],
            pos: 0,
            requested: 0,
        };
        assert_eq!(uniform_index(&mut rng, 3), 2);
        assert_eq!(rng.requested, 3);
        // n = 24: limit 240; 239 accepted (239 % 24 = 23), 240..=255 rejected.
        let mut rng = ScriptedRng {
            bytes: vec![240, 250, 255, 239],
            pos: 0,
            requested: 0,
        };
        assert_eq!(uniform_index(&mut rng, 24), 23);
        assert_eq!(rng.requested, 4);
    }

    // SEC-01: chi-square over 10^6 generated symbols (31 degrees of freedom; the 1 %
    // critical value is 52.19).
    #[test]
    fn sec_01_generated_symbols_are_uniform_chi_square() {
        let mut rng = StdRng::seed_from_u64(0x006b_656e_706f);
        let mut counts = [0u64; 32];
        let ids = 100_000;
        for _ in 0..ids {
            for b in LoginId::generate(&mut rng).as_str().bytes() {
                let i = LoginId::GENERATED_ALPHABET
                    .iter()
                    .position(|&a| a == b)
                    .unwrap();
                counts[i] += 1;
            }
        }
        let total = (ids * LoginId::GENERATED_CHARS) as f64;
        let expected = total / 32.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 52.19, "chi2 = {chi2}");
    }

    proptest! {
        // Parsers never panic on arbitrary strings.
        #[test]
        fn login_id_parse_never_panics(s in any::<String>()) {
            let _ = LoginId::parse(&s);
        }

        // The canonical form round-trips: parse(canonical) == same value. (A login ID
        // needs a letter or digit: "-_-_--" is refused, so the generator starts with one.)
        #[test]
        fn login_id_canonical_round_trips(s in "[ 　]{0,2}[A-Za-z0-9][A-Za-z0-9._@-]{5,31}[ 　]{0,2}") {
            let id = LoginId::parse(&s).unwrap();
            prop_assert_eq!(LoginId::parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(LoginId::try_from(String::from(id.clone())), Ok(id.clone()));
            prop_assert_eq!(id.as_str().to_ascii_lowercase(), id.as_str());
        }

        // Full-width typing gives the same ID as half-width typing.
        #[test]
        fn login_id_fullwidth_equals_halfwidth(s in "[A-Za-z0-9]{6,32}") {
            let wide: String = s
                .chars()
                .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
                .collect();
            prop_assert_eq!(LoginId::parse(&wide), LoginId::parse(&s));
        }

        // SEC-42: every generated ID parses, whatever the seed.
        #[test]
        fn sec_42_generated_ids_parse_for_any_seed(seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let id = LoginId::generate(&mut rng);
            prop_assert_eq!(LoginId::parse(id.as_str()), Ok(id.clone()));
        }
    }
}
