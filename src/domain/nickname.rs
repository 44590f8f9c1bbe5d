//! ニックネーム: the name the portal and its mails greet the member by.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::normalize;

/// A nickname: 1–20 code points of any script, after NFKC, trimming and collapsing runs
/// of spaces into one.
///
/// Why these rules:
/// - **Any script**, kana, kanji, Latin, emoji: it is the member's own greeting name.
/// - **NFKC** so `ﾀﾛｳ` and `タロウ` are one spelling and full-width spaces become
///   ordinary ones; **trim and collapse spaces** so a nickname never *looks* empty or
///   differs from another only by invisible padding.
/// - **No control, format or invisible characters** (line breaks, tabs, zero-width
///   space and joiner, bidi overrides such as U+202E, BOM, tag characters, Hangul fillers,
///   the braille blank, private-use and non-characters): they let a nickname break a
///   mail's layout, hide text, reverse what is shown, or look blank. One consequence:
///   emoji built with a zero-width joiner (family emoji) are refused; single emoji,
///   including ones with a variation selector such as `❤️`, are fine.
/// - **No `<` or `>`** (nor full-width `＜＞`, which NFKC folds into them): the nickname
///   is pasted into mails and pages, and while every template must escape it anyway, no
///   nickname needs angle brackets, and refusing them keeps one forgotten escape from
///   becoming markup injection. Other punctuation (`&`, quotes) stays allowed.
/// - **20 code points** fits a greeting line on a phone screen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Nickname(String);

impl Nickname {
    /// Most code points in a nickname.
    pub const MAX_CHARS: usize = 20;

    /// Raw inputs longer than this are rejected as too long without normalising.
    const MAX_RAW_BYTES: usize = 1024;

    /// Parses what the member typed into ニックネーム. Never panics, whatever the input.
    ///
    /// # Errors
    /// [`NicknameError::Empty`] when nothing but spaces was typed;
    /// [`NicknameError::InvalidChar`] for a control, format or invisible character or an
    /// angle bracket (checked before the length, as it is the more useful message);
    /// [`NicknameError::TooLong`] over [`Nickname::MAX_CHARS`] code points.
    pub fn parse(input: &str) -> Result<Nickname, NicknameError> {
        if input.len() > Self::MAX_RAW_BYTES {
            return Err(NicknameError::TooLong);
        }
        let normalised: String = input.nfkc().collect();
        let mut out = String::with_capacity(normalised.len());
        let mut prev: Option<char> = None;
        // DOM-4: zero-width characters at the ends go too.
        for c in normalize::trim(&normalised).chars() {
            if c == ' ' {
                if prev != Some(' ') {
                    out.push(' ');
                }
            } else if normalize::is_variation_selector(c) {
                // Only right after a visible character, and only one.
                match prev {
                    Some(p) if p != ' ' && !normalize::is_variation_selector(p) => out.push(c),
                    _ => return Err(NicknameError::InvalidChar),
                }
            } else if is_refused(c) {
                return Err(NicknameError::InvalidChar);
            } else {
                out.push(c);
            }
            prev = Some(c);
        }
        if out.is_empty() {
            return Err(NicknameError::Empty);
        }
        if out.chars().count() > Self::MAX_CHARS {
            return Err(NicknameError::TooLong);
        }
        Ok(Nickname(out))
    }

    /// The canonical form, to store and to paste (escaped) into pages and mails.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters a nickname may not contain (after NFKC and space handling).
fn is_refused(c: char) -> bool {
    c == '<'
        || c == '>'
        // Cc: C0, DEL, C1 (includes tab, CR, LF, NEL).
        || c.is_control()
        // Any whitespace other than U+0020: line/paragraph separators, ogham space …
        || c.is_whitespace()
        || normalize::is_invisible(c)
        || is_private_use_or_noncharacter(c)
}

/// Private-use code points (shown differently on every device, or as tofu) and
/// non-characters.
fn is_private_use_or_noncharacter(c: char) -> bool {
    let u = u32::from(c);
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{10FFFF}' | '\u{FDD0}'..='\u{FDEF}')
        || (u & 0xFFFE) == 0xFFFE
}

crate::domain::text_conversions! { Nickname, NicknameError;
    /// The nickname as is. Templates that produce HTML must still escape it.
    Display |n| &n.0;
    FromStr;
    /// Through [`Nickname::parse`], so a stored value is checked again when it is read.
    TryFrom<String>;
    Into<String> |n| n.0;
    AsRef<str> |n| &n.0;
}

/// Why a nickname was refused. Never carries the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NicknameError {
    /// Nothing, or only spaces, was typed.
    #[error("nickname is empty")]
    Empty,
    /// More than [`Nickname::MAX_CHARS`] code points.
    #[error("nickname is longer than 20 characters")]
    TooLong,
    /// A control, format or invisible character, or `<` / `>`.
    #[error("nickname contains a character that is not allowed")]
    InvalidChar,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::from_stored;
    use proptest::prelude::*;

    // Nickname rules (DESIGN §3): NFKC, trim, collapse spaces, any script.
    #[test]
    fn nickname_accepts_any_script_and_canonicalises() {
        for (input, canonical) in [
            ("たろう", "たろう"),
            ("ﾀﾛｳ", "タロウ"),
            ("  山田　太郎  ", "山田 太郎"),
            ("山田 \u{3000} 太郎", "山田 太郎"),
            ("Taro & Hanako", "Taro & Hanako"),
            ("ＫＥＮＰＯ", "KENPO"),
            ("🍣", "🍣"),
            ("❤\u{FE0F}", "❤\u{FE0F}"),
            ("Zoë", "Zoë"),
            ("Zoe\u{0308}", "Zoë"),
            (
                "あいうえおかきくけこさしすせそたちつてと",
                "あいうえおかきくけこさしすせそたちつてと",
            ),
        ] {
            let n = Nickname::parse(input).unwrap();
            assert_eq!(n.as_str(), canonical, "{input:?}");
            assert_eq!(n.to_string(), canonical);
        }
    }

    // DOM-4: a nickname pasted with a zero-width space or a BOM at either end.
    #[test]
    fn dom_04_zero_width_characters_at_the_ends_are_trimmed() {
        let n = Nickname::parse("\u{FEFF}さくら\u{200B}").unwrap();
        assert_eq!(n.as_str(), "さくら");
    }

    #[test]
    fn nickname_rejects_with_reason() {
        for (input, err) in [
            ("", NicknameError::Empty),
            ("   ", NicknameError::Empty),
            ("\u{3000}", NicknameError::Empty),
            (
                "あいうえおかきくけこさしすせそたちつてとな",
                NicknameError::TooLong,
            ),
            ("taro\nhanako", NicknameError::InvalidChar),
            ("taro\thanako", NicknameError::InvalidChar),
            // DOM-4 trims zero-width characters at the ends; inside they stay invalid.
            ("ta\u{200B}ro", NicknameError::InvalidChar),
            ("👨\u{200D}👩\u{200D}👧", NicknameError::InvalidChar),
            ("\u{202E}olleh", NicknameError::InvalidChar),
            ("ta\u{FEFF}ro", NicknameError::InvalidChar),
            ("taro\u{2028}hanako", NicknameError::InvalidChar),
            ("\u{3164}", NicknameError::InvalidChar),
            ("\u{FFA0}\u{FFA0}", NicknameError::InvalidChar),
            ("\u{2800}", NicknameError::InvalidChar),
            ("\u{E000}", NicknameError::InvalidChar),
            ("\u{FE0F}", NicknameError::InvalidChar),
            ("a\u{FE0F}\u{FE0F}", NicknameError::InvalidChar),
            ("<b>taro</b>", NicknameError::InvalidChar),
            ("＜script＞", NicknameError::InvalidChar),
            ("taro\u{E0041}", NicknameError::InvalidChar),
            ("taro\u{0000}", NicknameError::InvalidChar),
        ] {
            assert_eq!(Nickname::parse(input), Err(err), "{input:?}");
        }
        assert_eq!(
            Nickname::parse(&"あ".repeat(500_000)),
            Err(NicknameError::TooLong)
        );
    }

    #[test]
    fn nickname_serde_goes_through_parser() {
        let from = from_stored::<Nickname>;
        assert_eq!(from(" ﾀﾛｳ ").unwrap().as_str(), "タロウ");
        assert!(from("<x>").is_err());
        assert_eq!(String::from(Nickname::parse("たろう").unwrap()), "たろう");
    }

    proptest! {
        // Parsers never panic on arbitrary strings, and what they accept is canonical.
        #[test]
        fn nickname_parse_never_panics(s in any::<String>()) {
            if let Ok(n) = Nickname::parse(&s) {
                let count = n.as_str().chars().count();
                prop_assert!((1..=Nickname::MAX_CHARS).contains(&count));
                prop_assert_eq!(Nickname::parse(n.as_str()), Ok(n.clone()));
            }
        }

        // The canonical form round-trips: parse(canonical) == same value.
        #[test]
        fn nickname_canonical_round_trips(s in "[ 　]{0,2}[a-zA-Zあ-んア-ン一-龠ｱ-ﾝ ]{1,18}[ 　]{0,2}") {
            if let Ok(n) = Nickname::parse(&s) {
                prop_assert_eq!(Nickname::parse(n.as_str()), Ok(n.clone()));
                prop_assert_eq!(Nickname::try_from(String::from(n.clone())), Ok(n.clone()));
                prop_assert!(!n.as_str().contains("  "));
                prop_assert_eq!(n.as_str().trim(), n.as_str());
            }
        }
    }
}
