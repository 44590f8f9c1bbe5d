//! 氏名カナ (name in katakana): an optional second factor next to 生年月日 (DOM-11, DOM-14).
//!
//! Members type hiragana, full-width or half-width katakana, with or without a space between
//! family and given name; オンライン資格確認 returns half-width katakana. All of these fold to
//! one full-width katakana form so equality works. Kanji are rejected rather than matched
//! loosely (髙/高 and 﨑/崎 are not folded by NFKC, DOMAIN.md §3.4).

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::domain::normalize;

/// Longest accepted input before normalisation, in bytes (bounds NFKC expansion).
const MAX_INPUT_BYTES: usize = 1024;
/// Longest accepted name after normalisation, in characters.
const MAX_CHARS: usize = 100;

/// Why a kana name was rejected. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum KanaNameError {
    /// Nothing left after trimming and removing spaces.
    #[error("kana name is empty")]
    Empty,
    /// Contains kanji.
    #[error("kana name contains kanji")]
    Kanji,
    /// Contains Latin letters.
    #[error("kana name contains Latin letters")]
    Latin,
    /// Contains another character that is not katakana (digits, symbols, stray marks).
    #[error("kana name contains a character that is not kana")]
    InvalidChar,
    /// Longer than 100 characters.
    #[error("kana name is too long")]
    TooLong,
}

/// A name in normalised full-width katakana (DOM-14); equality is on this form.
///
/// Personal data: `Debug` is masked; [`KanaName::as_str`] gives the value where it is needed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KanaName(String);

fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
}

impl KanaName {
    /// Normalises and validates (DOM-14): NFKC (composes `ｶﾞ` → `ガ`) → hiragana to katakana
    /// → remove U+0020/U+3000 → recompose (so `か゛` becomes `ガ`) → hyphen/dash/tilde
    /// look-alikes after kana become `ー`. ヴ/ブ, ヂ/ジ, ヅ/ズ and small kana stay distinct.
    /// The middle dot `・` of foreign names is kept. Never panics.
    pub fn parse(input: &str) -> Result<Self, KanaNameError> {
        let trimmed = normalize::trim(input);
        if trimmed.len() > MAX_INPUT_BYTES {
            return Err(KanaNameError::TooLong);
        }
        let katakana: String = trimmed
            .nfkc()
            .map(normalize::hiragana_to_katakana)
            .filter(|c| !normalize::is_group_space(*c))
            .collect();
        let mut out = String::with_capacity(katakana.len());
        let mut prev_kana = false;
        let mut count = 0usize;
        for c in katakana.nfc() {
            let c = if prev_kana && normalize::is_prolonged_lookalike(c) {
                'ー'
            } else {
                c
            };
            if normalize::is_katakana(c) {
                prev_kana = true;
            } else if c == '・' {
                prev_kana = false;
            } else if normalize::is_kanji(c) {
                return Err(KanaNameError::Kanji);
            } else if is_latin_letter(c) {
                return Err(KanaNameError::Latin);
            } else {
                return Err(KanaNameError::InvalidChar);
            }
            count += 1;
            if count > MAX_CHARS {
                return Err(KanaNameError::TooLong);
            }
            out.push(c);
        }
        if out.is_empty() {
            return Err(KanaNameError::Empty);
        }
        Ok(Self(out))
    }

    /// The normalised full-width katakana, e.g. `ヤマダタロウ`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

crate::domain::text_conversions! { KanaName, KanaNameError;
    FromStr;
    TryFrom<String>;
    Into<String> |value| value.0;
}

// Masked: a name is personal data and must not reach logs.
crate::redact::debug_masked!(KanaName, "***");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::normalize::HYPHEN_LOOKALIKES;
    use crate::domain::test_support::from_stored;
    use crate::lang::Lang;
    use proptest::prelude::*;

    fn norm(input: &str) -> Result<String, &'static str> {
        KanaName::parse(input)
            .map(|k| k.as_str().to_owned())
            .map_err(|e| e.code())
    }

    // DOM-14: width, hiragana, spaces and voiced marks fold to one katakana form.
    #[test]
    fn dom_14_folds_kana_variants() {
        for (input, want) in [
            ("ヤマダ タロウ", "ヤマダタロウ"),
            ("ヤマダ　タロウ", "ヤマダタロウ"),
            ("やまだ　たろう", "ヤマダタロウ"),
            ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダタロウ"),
            ("ﾊﾟｸ", "パク"),
            ("か゛わ", "ガワ"),
            ("ゔぁ", "ヴァ"),
            ("ｶﾞｯｺｳ", "ガッコウ"),
            ("\u{3000}スズキ\u{200B}", "スズキ"),
            ("ジョン・スミス", "ジョン・スミス"),
            ("ｼﾞｮﾝ･ｽﾐｽ", "ジョン・スミス"),
        ] {
            assert_eq!(norm(input), Ok(want.to_owned()), "{input:?}");
        }
    }

    // DOM-14: prolonged-sound look-alikes after kana become ー.
    #[test]
    fn dom_14_unifies_prolonged_marks() {
        for sep in HYPHEN_LOOKALIKES
            .iter()
            .copied()
            .chain(['─', '━', '〜', '～', '~'])
        {
            let input = format!("サト{sep}ケン");
            assert_eq!(
                norm(&input),
                Ok("サトーケン".to_owned()),
                "U+{:04X}",
                u32::from(sep)
            );
            assert_eq!(norm(&format!("さと{sep}")), Ok("サトー".to_owned()));
        }
        assert_eq!(norm("ｻﾄｰ"), Ok("サトー".to_owned()));
        assert_eq!(norm("-サトウ"), Err("kana_name.invalid_char"));
    }

    // DOM-14: ヴ/ブ, ヂ/ジ, ヅ/ズ and small kana are not folded.
    #[test]
    fn dom_14_keeps_distinct_kana_distinct() {
        for (a, b) in [
            ("ヴィ", "ビ"),
            ("ヴ", "ブ"),
            ("ヂ", "ジ"),
            ("ヅ", "ズ"),
            ("ァ", "ア"),
            ("ッ", "ツ"),
            ("ャ", "ヤ"),
        ] {
            assert_ne!(
                KanaName::parse(a).unwrap(),
                KanaName::parse(b).unwrap(),
                "{a}/{b}"
            );
        }
        assert_eq!(
            KanaName::parse("やまだ たろう").unwrap(),
            KanaName::parse("ﾔﾏﾀﾞﾀﾛｳ").unwrap()
        );
    }

    // DOM-14: kanji and Latin letters are rejected with 「全角カナで入力してください」.
    #[test]
    fn dom_14_rejects_kanji_and_latin() {
        for (input, want) in [
            ("山田太郎", "kana_name.kanji"),
            ("ヤマ田", "kana_name.kanji"),
            ("髙橋", "kana_name.kanji"),
            ("Yamada", "kana_name.latin"),
            ("ＹＡＭＡＤＡ", "kana_name.latin"),
            ("José", "kana_name.latin"),
            ("ヤマダ1", "kana_name.invalid_char"),
            ("ヤマダ!", "kana_name.invalid_char"),
            ("ﾞア", "kana_name.invalid_char"),
            ("", "kana_name.empty"),
            ("　 ", "kana_name.empty"),
        ] {
            assert_eq!(norm(input), Err(want), "{input:?}");
        }
        for e in [
            KanaNameError::Kanji,
            KanaNameError::Latin,
            KanaNameError::InvalidChar,
        ] {
            assert!(e.message(Lang::Ja).contains("全角カナで入力してください"));
        }
        assert_eq!(norm(&"ア".repeat(101)), Err("kana_name.too_long"));
        assert_eq!(norm(&"ア".repeat(100)), Ok("ア".repeat(100)));
        assert_eq!(norm(&"ア".repeat(10_000)), Err("kana_name.too_long"));
    }

    // Personal data: Debug is masked.
    #[test]
    fn debug_masked() {
        let k = KanaName::parse("ヤマダ タロウ").unwrap();
        assert_eq!(format!("{k:?}"), "KanaName(***)");
    }

    // Conventions: serde through the parser.
    #[test]
    fn serde_through_parser() {
        let k: KanaName = from_stored("ﾔﾏﾀﾞ ﾀﾛｳ").unwrap();
        assert_eq!(String::from(k), "ヤマダタロウ");
        assert!(from_stored::<KanaName>("山田").is_err());
    }

    proptest! {
        // Conventions: never panics; whatever is accepted is already canonical (idempotent).
        #[test]
        fn never_panics_and_canonical_round_trips(
            s in any::<String>(),
            t in "[ぁ-ゖァ-ヺｦ-ﾟー・゛゜ 　\\-－—〜]{0,24}",
        ) {
            for input in [&s, &t] {
                if let Ok(k) = KanaName::parse(input) {
                    prop_assert_eq!(KanaName::parse(k.as_str()).unwrap(), k);
                }
            }
        }
    }
}
