//! 被保険者等記号・番号・枝番 (the member's card number): parsing, canonical form, masking.
//!
//! Rules: DOM-1…DOM-9, DOM-12, DOM-24, DOM-25; SEC-45 (sensitive, compared in constant time,
//! shown only masked). The type has no serde derive on purpose: stores keep member IDs, and a
//! card number should never be persisted or serialised by accident.

use std::fmt;
use std::hash::{Hash, Hasher};

use subtle::ConstantTimeEq;

use crate::domain::normalize;
use crate::lang::Lang;

/// Which characters an insurer allows in the 記号 (DOM-8).
///
/// 健保組合 issue numeric 記号, but 国保 and legacy pension-office symbols can contain kana,
/// kanji or a hyphen (JP Core's `１２－３４`), so the insurer profile decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SymbolCharset {
    /// ASCII digits only (the 健保組合 default; 支払基金 rejects non-numeric 記号 for 法別06/63).
    #[default]
    Digits,
    /// Digits, kana, kanji and hyphens. A 記号 that is not purely digits is kept full-width,
    /// digits included, as JP Core requires (`１２－３４`, `あいう`).
    DigitsAndJapanese,
}

/// Per-insurer shape of 記号 and 番号 (DOM-8, DOM-9).
///
/// The parser itself is the same for every source (DOM-12); only this profile differs between
/// insurers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardNumberFormat {
    /// Characters allowed in the 記号.
    pub symbol_charset: SymbolCharset,
    /// Cap for each of 記号 and 番号, counted as receipt bytes (ASCII = 1, anything else = 2,
    /// as in the レセプト電算 "max 38 bytes" fields). Default 38.
    pub max_bytes: usize,
    /// `(記号 length, 番号 length)` in characters when the insurer fixes them. Only then can
    /// input without separators (`99912345600`) be split, and separated input must match.
    pub fixed_lengths: Option<(usize, usize)>,
}

impl Default for CardNumberFormat {
    /// The 健保組合 profile: ASCII-digit 記号 and 番号, 38-byte cap, lengths not fixed.
    fn default() -> Self {
        Self {
            symbol_charset: SymbolCharset::Digits,
            max_bytes: 38,
            fixed_lengths: None,
        }
    }
}

/// One of the three parts of a card number, named in errors so the member knows where to look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardPart {
    /// 記号.
    Symbol,
    /// 番号.
    Number,
    /// 枝番.
    Branch,
}

impl CardPart {
    /// The word printed on the member's documents.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Symbol, Lang::En) => "symbol",
            (Self::Number, Lang::En) => "number",
            (Self::Branch, Lang::En) => "branch number",
            (Self::Symbol, _) => "記号",
            (Self::Number, _) => "番号",
            (Self::Branch, _) => "枝番",
        }
    }
}

impl fmt::Display for CardPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label(Lang::En))
    }
}

/// Why a card number was rejected. Never contains the input (DOM-24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum CardNumberError {
    /// Nothing left after trimming.
    #[error("card number is empty")]
    Empty,
    /// A separator at the start or end, two hyphens in a row, or more groups than the 記号
    /// charset allows.
    #[error("card number separators are misplaced, doubled or too many")]
    Separator,
    /// Separated input with fewer than three groups (usually the 枝番 is missing).
    #[error("card number needs symbol, number and branch number")]
    MissingPart,
    /// No separator, and the insurer profile does not fix the lengths (DOM-9).
    #[error("card number has no separator and cannot be split unambiguously")]
    Ambiguous,
    /// A character outside the allowed set (DOM-3, DOM-8).
    #[error("card number {part} contains a character that is not allowed")]
    NonDigit {
        /// The part with the bad character.
        part: CardPart,
    },
    /// The 枝番 is not exactly two digits (DOM-5).
    #[error("branch number must be exactly two digits")]
    BranchLength,
    /// A part does not have the length fixed by the insurer profile.
    #[error("card number {part} does not have the length the insurer uses")]
    Length {
        /// The part with the wrong length.
        part: CardPart,
    },
    /// A part exceeds the byte cap (DOM-8), or the input is far too long to be a card number.
    #[error("card number is too long")]
    TooLong,
}

/// A member's 記号・番号・枝番 in canonical form (DOM-1).
///
/// All parts are strings: leading zeros are significant (DOM-7). Equality is constant-time
/// over the canonical parts (SEC-45); `Debug` and `Display` show only [`CardNumber::masked`]
/// (DOM-24). The 枝番 says nothing about 本人/家族 (DOM-6): take the relation from the
/// insurer's record, never from this type.
#[derive(Clone)]
pub struct CardNumber {
    symbol: String,
    number: String,
    branch: String,
}

/// Early cap so a huge string is rejected before any allocation proportional to it.
fn input_cap(format: &CardNumberFormat) -> usize {
    format
        .max_bytes
        .saturating_mul(2)
        .saturating_add(16)
        .saturating_mul(4)
}

/// Bytes as counted in レセプト電算 fields: half-width = 1, full-width = 2.
fn receipt_bytes(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// Splits the trimmed input into groups at separators (DOM-2). A boundary is a run of
/// separator characters containing at most one hyphen look-alike; spaces around it are padding.
/// `ー`/`ｰ` after kana is a 長音 inside a Japanese 記号, not a separator.
fn split_groups(input: &str, japanese: bool) -> Result<Vec<String>, CardNumberError> {
    let mut groups: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_boundary = false;
    let mut hyphens = 0usize;
    let mut prev_kana = false;
    for c in input.chars() {
        let prolonged = japanese && prev_kana && matches!(c, 'ー' | 'ｰ');
        if !prolonged && (normalize::is_hyphen_lookalike(c) || normalize::is_group_space(c)) {
            if current.is_empty() && !in_boundary {
                // Separator at the very start (trim removed leading spaces, so it is a hyphen).
                return Err(CardNumberError::Separator);
            }
            if !in_boundary {
                groups.push(std::mem::take(&mut current));
                in_boundary = true;
                hyphens = 0;
            }
            if normalize::is_hyphen_lookalike(c) {
                hyphens += 1;
                if hyphens > 1 {
                    return Err(CardNumberError::Separator);
                }
            }
            prev_kana = false;
            continue;
        }
        in_boundary = false;
        prev_kana = normalize::is_kana(c);
        current.push(normalize::fold_digit(c).unwrap_or(c));
    }
    if in_boundary {
        return Err(CardNumberError::Separator);
    }
    groups.push(current);
    Ok(groups)
}

fn is_all_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Validates a 記号 made of one or more groups and returns its canonical form (DOM-8).
fn canonical_symbol(
    groups: &[String],
    format: &CardNumberFormat,
) -> Result<String, CardNumberError> {
    let bad = CardNumberError::NonDigit {
        part: CardPart::Symbol,
    };
    match format.symbol_charset {
        SymbolCharset::Digits => match groups {
            [single] if is_all_ascii_digits(single) => Ok(single.clone()),
            [_] => Err(bad),
            _ => Err(CardNumberError::Separator),
        },
        _ => {
            let mut parts = Vec::with_capacity(groups.len());
            for group in groups {
                let wide = normalize::widen_halfwidth_katakana(group);
                let ok = !wide.is_empty()
                    && wide.chars().all(|c| {
                        c.is_ascii_digit()
                            || normalize::is_hiragana(c)
                            || normalize::is_katakana(c)
                            || normalize::is_kanji(c)
                    });
                if !ok {
                    return Err(bad);
                }
                parts.push(wide);
            }
            match parts.as_slice() {
                [single] if is_all_ascii_digits(single) => Ok(single.clone()),
                _ => Ok(parts
                    .iter()
                    .map(|p| p.chars().map(normalize::widen_digit).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("\u{FF0D}")),
            }
        }
    }
}

impl CardNumber {
    /// Parses with the 健保組合 default profile ([`CardNumberFormat::default`]).
    pub fn parse(input: &str) -> Result<Self, CardNumberError> {
        Self::parse_with(input, &CardNumberFormat::default())
    }

    /// Parses member input or a number copied from any document (DOM-12) under an insurer
    /// profile: trims (DOM-4), folds full-width digits (DOM-3) and the DOM-2 separators, then
    /// splits from the right into 記号, 番号, 枝番 (DOM-9). Never panics.
    pub fn parse_with(input: &str, format: &CardNumberFormat) -> Result<Self, CardNumberError> {
        if input.len() > input_cap(format) {
            return Err(CardNumberError::TooLong);
        }
        let trimmed = normalize::trim(input);
        if trimmed.is_empty() {
            return Err(CardNumberError::Empty);
        }
        let japanese = !matches!(format.symbol_charset, SymbolCharset::Digits);
        let mut groups = split_groups(trimmed, japanese)?;

        if groups.len() == 1 {
            // No separator at all (DOM-9): only a profile with fixed lengths can split it.
            let Some((symbol_len, number_len)) = format.fixed_lengths else {
                return Err(CardNumberError::Ambiguous);
            };
            let chars: Vec<char> = groups.concat().chars().collect();
            let total = symbol_len.saturating_add(number_len).saturating_add(2);
            if symbol_len == 0 || number_len == 0 || chars.len() != total {
                return Err(CardNumberError::Ambiguous);
            }
            let (symbol, rest) = chars.split_at(symbol_len);
            let (number, branch) = rest.split_at(number_len);
            groups = vec![
                symbol.iter().collect(),
                number.iter().collect(),
                branch.iter().collect(),
            ];
        }

        // Split from the right: 枝番, then 番号, the rest is the 記号 (DOM-9).
        let (Some(branch), Some(number)) = (groups.pop(), groups.pop()) else {
            return Err(CardNumberError::MissingPart);
        };
        if groups.is_empty() {
            return Err(CardNumberError::MissingPart);
        }
        let symbol = canonical_symbol(&groups, format)?;
        if receipt_bytes(&symbol) > format.max_bytes {
            return Err(CardNumberError::TooLong);
        }
        if !is_all_ascii_digits(&number) {
            return Err(CardNumberError::NonDigit {
                part: CardPart::Number,
            });
        }
        if number.len() > format.max_bytes {
            return Err(CardNumberError::TooLong);
        }
        if !branch.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardNumberError::NonDigit {
                part: CardPart::Branch,
            });
        }
        // Exactly two digits; `0` is not padded to `00` (DOM-5).
        if branch.len() != 2 {
            return Err(CardNumberError::BranchLength);
        }
        if let Some((symbol_len, number_len)) = format.fixed_lengths {
            if symbol.chars().count() != symbol_len {
                return Err(CardNumberError::Length {
                    part: CardPart::Symbol,
                });
            }
            if number.len() != number_len {
                return Err(CardNumberError::Length {
                    part: CardPart::Number,
                });
            }
        }
        Ok(Self {
            symbol,
            number,
            branch,
        })
    }

    /// The 記号: ASCII digits, or full-width when it contains kana, kanji or a hyphen.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// The 番号 (ASCII digits, leading zeros kept).
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The 枝番 (two ASCII digits). Not a 本人/家族 flag (DOM-6).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// `記号-番号-枝番`, e.g. `999-123456-00` (DOM-1): the form to compare or key-hash.
    /// Sensitive (DOM-24): never log it or put it in a URL.
    pub fn canonical(&self) -> String {
        format!("{}-{}-{}", self.symbol, self.number, self.branch)
    }

    /// The form safe for screens and logs (DOM-24): 記号 and 枝番 kept, 番号 masked except its
    /// last two digits (`999-****56-00`). A 番号 shorter than four digits is masked entirely so
    /// the visible tail never reveals most of it.
    pub fn masked(&self) -> String {
        let len = self.number.len();
        let visible = if len >= 4 { 2 } else { 0 };
        let tail = self.number.get(len - visible..).unwrap_or_default();
        let stars = "*".repeat(len - visible);
        format!("{}-{stars}{tail}-{}", self.symbol, self.branch)
    }
}

crate::domain::text_conversions! { CardNumber, CardNumberError;
    /// Same as [`CardNumber::parse`] (健保組合 default profile).
    FromStr;
}

impl PartialEq for CardNumber {
    /// Constant-time comparison of the canonical parts (SEC-45).
    fn eq(&self, other: &Self) -> bool {
        let same = self.symbol.as_bytes().ct_eq(other.symbol.as_bytes())
            & self.number.as_bytes().ct_eq(other.number.as_bytes())
            & self.branch.as_bytes().ct_eq(other.branch.as_bytes());
        same.into()
    }
}

impl Eq for CardNumber {}

impl Hash for CardNumber {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.symbol.hash(state);
        self.number.hash(state);
        self.branch.hash(state);
    }
}

crate::redact::debug_masked!(CardNumber, |c| c.masked());

impl fmt::Display for CardNumber {
    /// Masked (DOM-24); use [`CardNumber::canonical`] where the full value is really needed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::normalize::HYPHEN_LOOKALIKES;
    use proptest::prelude::*;

    fn japanese() -> CardNumberFormat {
        CardNumberFormat {
            symbol_charset: SymbolCharset::DigitsAndJapanese,
            ..CardNumberFormat::default()
        }
    }

    fn ok(input: &str) -> String {
        match CardNumber::parse(input) {
            Ok(c) => c.canonical(),
            Err(e) => panic!("{input:?} rejected: {}", e.code()),
        }
    }

    fn err(input: &str) -> &'static str {
        match CardNumber::parse(input) {
            Ok(c) => panic!("{input:?} accepted as {c:?}"),
            Err(e) => e.code(),
        }
    }

    // DOM-1: canonical output is half-width 記号-番号-枝番.
    #[test]
    fn dom_01_canonical_form() {
        let c = CardNumber::parse("999-123456-00").unwrap();
        assert_eq!(
            (c.symbol(), c.number(), c.branch()),
            ("999", "123456", "00")
        );
        assert_eq!(c.canonical(), "999-123456-00");
    }

    // DOM-2: every character of the DOM-2 set separates groups.
    #[test]
    fn dom_02_folds_every_hyphen_lookalike() {
        assert_eq!(HYPHEN_LOOKALIKES.len(), 14);
        for sep in HYPHEN_LOOKALIKES {
            let input = format!("999{sep}123456{sep}00");
            assert_eq!(ok(&input), "999-123456-00", "U+{:04X}", u32::from(sep));
        }
        for sep in [' ', '\u{3000}'] {
            let input = format!("999{sep}123456{sep}00");
            assert_eq!(ok(&input), "999-123456-00", "U+{:04X}", u32::from(sep));
        }
    }

    // DOM-2: spaces around a single hyphen are padding; a doubled hyphen or a separator at an
    // end is an error.
    #[test]
    fn dom_02_separator_runs() {
        for (input, want) in [
            ("999 - 123456 - 00", Ok("999-123456-00")),
            ("999　－　123456　－　00", Ok("999-123456-00")),
            ("999  123456  00", Ok("999-123456-00")),
            ("999--123456-00", Err("card_number.separator")),
            ("999-−123456-00", Err("card_number.separator")),
            ("999 - - 123456-00", Err("card_number.separator")),
            ("-999-123456-00", Err("card_number.separator")),
            ("999-123456-00-", Err("card_number.separator")),
            ("999-123456-00 －", Err("card_number.separator")),
            ("999-123-456-00", Err("card_number.separator")),
            ("999_123456_00", Err("card_number.ambiguous")),
            ("999/123456/00", Err("card_number.ambiguous")),
        ] {
            let got = CardNumber::parse(input)
                .map(|c| c.canonical())
                .map_err(|e| e.code());
            assert_eq!(got, want.map(str::to_owned), "{input:?}");
        }
    }

    // DOM-3: full-width digits fold; ①, ¹, Arabic-Indic and other "numeric" chars are rejected.
    #[test]
    fn dom_03_rejects_non_ascii_numerics() {
        assert_eq!(ok("９９９－１２３４５６－００"), "999-123456-00");
        for input in [
            "①99-123456-00",
            "999-12345¹-00",
            "999-١٢٣٤٥٦-00",
            "999-۱۲۳۴۵۶-00",
            "999-१२३४५६-00",
            "999-𝟏23456-00",
            "999-123456-0①",
            "999-123456-٠٠",
            "九九九-123456-00",
        ] {
            assert_eq!(err(input), "card_number.non_digit", "{input:?}");
        }
    }

    // DOM-4: surrounding whitespace and zero-width characters are trimmed.
    #[test]
    fn dom_04_trims_before_parsing() {
        assert_eq!(
            ok("\u{3000}999-123456-00\u{200B}\u{FEFF} "),
            "999-123456-00"
        );
        assert_eq!(err(" \u{3000}\u{200B} "), "card_number.empty");
        assert_eq!(err(""), "card_number.empty");
    }

    // DOM-5: 枝番 is exactly 2 digits, never padded.
    #[test]
    fn dom_05_branch_exactly_two_digits() {
        for (input, want) in [
            ("999-123456-0", "card_number.branch_length"),
            ("999-123456-000", "card_number.branch_length"),
            ("999-123456-０", "card_number.branch_length"),
            ("999-123456-0a", "card_number.non_digit"),
            ("999-123456", "card_number.missing_part"),
        ] {
            assert_eq!(err(input), want, "{input:?}");
        }
        assert_eq!(ok("999-123456-99"), "999-123456-99");
        assert_eq!(
            CardNumberError::BranchLength.message(Lang::Ja),
            "枝番は半角数字2桁で入力してください。"
        );
    }

    // DOM-7: 記号/番号 are strings; leading zeros are kept and significant.
    #[test]
    fn dom_07_leading_zeros_kept() {
        let c = CardNumber::parse("0012-0071-01").unwrap();
        assert_eq!((c.symbol(), c.number()), ("0012", "0071"));
        assert_ne!(c, CardNumber::parse("12-71-01").unwrap());
        assert_ne!(c, CardNumber::parse("0012-071-01").unwrap());
    }

    // DOM-8: kana/kanji/hyphen 記号 only under a Japanese profile, kept full-width (JP Core).
    #[test]
    fn dom_08_symbol_charset_per_profile() {
        let jp = japanese();
        for (input, want) in [
            ("１２－３４－123456－00", "１２－３４-123456-00"),
            ("12-34-123456-00", "１２－３４-123456-00"),
            ("あいう-１８７-05", "あいう-187-05"),
            ("ｱｲｳ-187-05", "アイウ-187-05"),
            ("泉いう-187-05", "泉いう-187-05"),
            ("ソー１-187-05", "ソー１-187-05"),
            ("999-123456-00", "999-123456-00"),
        ] {
            let got = CardNumber::parse_with(input, &jp).map(|c| c.canonical());
            assert_eq!(got, Ok(want.to_owned()), "{input:?}");
        }
        for input in ["１２－３４－123456－00", "あいう-187-05", "泉いう-187-05"] {
            assert!(CardNumber::parse(input).is_err(), "{input:?} under Digits");
        }
        for input in ["ABC-187-05", "a1-187-05", "12-あ-05"] {
            assert_eq!(
                CardNumber::parse_with(input, &jp).map_err(|e| e.code()),
                Err("card_number.non_digit"),
                "{input:?}"
            );
        }
    }

    // DOM-8: 38-byte cap per part, counted as receipt bytes (full-width = 2).
    #[test]
    fn dom_08_byte_cap() {
        let n38 = "1".repeat(38);
        assert!(CardNumber::parse(&format!("9-{n38}-00")).is_ok());
        assert_eq!(err(&format!("9-{n38}1-00")), "card_number.too_long");
        assert_eq!(err(&format!("{n38}1-1-00")), "card_number.too_long");
        let kana19 = "あ".repeat(19);
        assert!(CardNumber::parse_with(&format!("{kana19}-1-00"), &japanese()).is_ok());
        let kana20 = "あ".repeat(20);
        assert_eq!(
            CardNumber::parse_with(&format!("{kana20}-1-00"), &japanese()).map_err(|e| e.code()),
            Err("card_number.too_long")
        );
        assert_eq!(err(&"9".repeat(100_000)), "card_number.too_long");
    }

    // DOM-9: split from the right; no-separator input only with fixed lengths.
    #[test]
    fn dom_09_split_from_right_and_ambiguity() {
        assert_eq!(err("99912345600"), "card_number.ambiguous");
        assert_eq!(err("９９９１２３４５６００"), "card_number.ambiguous");
        let fixed = CardNumberFormat {
            fixed_lengths: Some((3, 6)),
            ..CardNumberFormat::default()
        };
        for (input, want) in [
            ("99912345600", Ok("999-123456-00")),
            ("９９９１２３４５６００", Ok("999-123456-00")),
            ("999-123456-00", Ok("999-123456-00")),
            ("9991234560", Err("card_number.ambiguous")),
            ("99-123456-00", Err("card_number.length")),
            ("999-12345-00", Err("card_number.length")),
        ] {
            let got = CardNumber::parse_with(input, &fixed)
                .map(|c| c.canonical())
                .map_err(|e| e.code());
            assert_eq!(got, want.map(str::to_owned), "{input:?}");
        }
    }

    // DOM-12: the same number copied from different documents gives one value.
    #[test]
    fn dom_12_one_parser_for_all_sources() {
        let want = CardNumber::parse("999-123456-00").unwrap();
        for input in [
            "９９９－１２３４５６－００",
            "999−123456−00",
            "999 123456 00",
            "\u{FEFF}999ー123456ー00\u{3000}",
            "999‐123456‐00",
        ] {
            assert_eq!(CardNumber::parse(input).unwrap(), want, "{input:?}");
            assert_eq!(input.parse::<CardNumber>().unwrap(), want);
        }
    }

    // DOM-24 / SEC-45: Debug and Display never contain the full 番号.
    #[test]
    fn dom_24_debug_and_display_masked() {
        for (input, masked) in [
            ("999-123456-00", "999-****56-00"),
            ("1-0071-01", "1-**71-01"),
            ("1-987-01", "1-***-01"),
            ("1-98-01", "1-**-01"),
        ] {
            let c = CardNumber::parse(input).unwrap();
            assert_eq!(c.masked(), masked);
            assert_eq!(c.to_string(), masked);
            assert_eq!(format!("{c:?}"), format!("CardNumber({masked})"));
            assert!(!format!("{c:?} {c} {c:#?}").contains(c.number()));
        }
    }

    // DOM-25: the refusals about separators show the example in the card's form.
    #[test]
    fn dom_25_separator_refusals_show_the_example() {
        for e in [
            CardNumberError::Separator,
            CardNumberError::MissingPart,
            CardNumberError::Ambiguous,
        ] {
            let ja = e.message(Lang::Ja);
            assert!(ja.contains("999-123456-00") && ja.contains("ハイフン区切り"));
            assert!(ja.contains("記号・番号・枝番"));
        }
    }

    fn lookalike_string() -> impl Strategy<Value = String> {
        let pieces: Vec<char> = HYPHEN_LOOKALIKES
            .iter()
            .copied()
            .chain("0123456789０１２３４５６７８９ 　①¹١あｱﾞ漢\u{200B}\u{FEFF}".chars())
            .collect();
        proptest::collection::vec(
            prop_oneof![
                3 => proptest::sample::select(pieces),
                1 => any::<char>(),
            ],
            0..48,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::char::range('0', '9'), min..=max)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        // Conventions: the parser never panics on any string, under any profile.
        #[test]
        fn never_panics(s in any::<String>(), t in lookalike_string()) {
            let fixed = CardNumberFormat { fixed_lengths: Some((3, 6)), ..japanese() };
            for input in [&s, &t] {
                let _ = CardNumber::parse(input);
                let _ = CardNumber::parse_with(input, &japanese());
                let _ = CardNumber::parse_with(input, &fixed);
            }
        }

        // DOM-1/DOM-12: parse(canonical) == value, also from full-width input with any DOM-2
        // separator; the masked forms never show the whole 番号 (DOM-24).
        #[test]
        fn canonical_round_trips(
            symbol in digits(1, 8),
            number in digits(4, 10),
            branch in digits(2, 2),
            sep in proptest::sample::select(HYPHEN_LOOKALIKES.to_vec()),
        ) {
            let canonical = format!("{symbol}-{number}-{branch}");
            let c = CardNumber::parse(&canonical).unwrap();
            prop_assert_eq!(c.canonical(), canonical.clone());
            prop_assert_eq!(&CardNumber::parse(&c.canonical()).unwrap(), &c);
            let wide: String = canonical
                .chars()
                .map(|ch| if ch == '-' { sep } else { normalize::widen_digit(ch) })
                .collect();
            prop_assert_eq!(&CardNumber::parse(&wide).unwrap(), &c);
            let masked_number = c.masked().split('-').nth(1).unwrap().to_owned();
            prop_assert_ne!(masked_number, number);
        }

        // DOM-8: a Japanese 記号 round-trips through its full-width canonical form.
        #[test]
        fn japanese_canonical_round_trips(
            symbol in "[あ-んア-ン泉0-9]{1,6}(-[0-9]{1,3})?",
            number in digits(1, 8),
            branch in digits(2, 2),
        ) {
            let c = CardNumber::parse_with(&format!("{symbol}-{number}-{branch}"), &japanese()).unwrap();
            let again = CardNumber::parse_with(&c.canonical(), &japanese()).unwrap();
            prop_assert_eq!(again, c);
        }
    }
}
