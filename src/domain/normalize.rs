//! Shared input folding for the identifier parsers (DOM-2, DOM-3, DOM-4, DOM-12).
//!
//! Every parser in `crate::domain` goes through these functions so that a number copied from a
//! 資格確認書, a 資格情報のお知らせ, マイナポータル or an old 保険証 is folded the same way
//! (DOM-12). The folding is explicit on purpose: NFKC leaves most hyphen look-alikes alone and
//! turns ① or ¹ into digits (DOMAIN.md §3.2), so it is never used as the digit or separator test.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{
    CodePointMapData, CodePointMapDataBorrowed, CodePointSetData, CodePointSetDataBorrowed,
};
use unicode_normalization::UnicodeNormalization;

/// The hyphen look-alikes of DOM-2 that fold to `-` between digit groups.
///
/// Spaces (U+0020, U+3000) also separate groups but are listed in [`is_group_space`], because
/// they are padding rather than a separator of their own.
pub(crate) const HYPHEN_LOOKALIKES: [char; 14] = [
    '\u{002D}', // - HYPHEN-MINUS
    '\u{FF0D}', // － FULLWIDTH HYPHEN-MINUS
    '\u{FE63}', // ﹣ SMALL HYPHEN-MINUS
    '\u{2010}', // ‐ HYPHEN
    '\u{2011}', // ‑ NON-BREAKING HYPHEN
    '\u{2012}', // ‒ FIGURE DASH
    '\u{2013}', // – EN DASH
    '\u{2014}', // — EM DASH
    '\u{2015}', // ― HORIZONTAL BAR
    '\u{2212}', // − MINUS SIGN (Shift_JIS 0x817C under the JIS mapping)
    '\u{2043}', // ⁃ HYPHEN BULLET
    '\u{02D7}', // ˗ MODIFIER LETTER MINUS SIGN
    '\u{30FC}', // ー KATAKANA-HIRAGANA PROLONGED SOUND MARK
    '\u{FF70}', // ｰ HALFWIDTH KATAKANA-HIRAGANA PROLONGED SOUND MARK
];

/// Characters that IMEs and copy-paste put where a 長音 belongs; inside a kana run they mean
/// `ー` (DOM-14). DOM-2's set plus the box-drawing lines and wave dashes that neologdn/jaconv
/// also treat as 長音.
const PROLONGED_LOOKALIKES: [char; 6] = [
    '\u{2500}', // ─ BOX DRAWINGS LIGHT HORIZONTAL
    '\u{2501}', // ━ BOX DRAWINGS HEAVY HORIZONTAL
    '\u{301C}', // 〜 WAVE DASH
    '\u{FF5E}', // ～ FULLWIDTH TILDE
    '\u{007E}', // ~ TILDE
    '\u{30FC}', // ー (already canonical)
];

/// Zero-width characters that arrive with copy-paste from PDFs and web pages (DOM-4).
const ZERO_WIDTH: [char; 5] = ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

/// Trims leading and trailing whitespace, including U+3000 and the zero-width characters
/// U+200B, U+200C, U+200D, U+2060 and U+FEFF (DOM-4).
pub(crate) fn trim(input: &str) -> &str {
    input.trim_matches(|c: char| c.is_whitespace() || ZERO_WIDTH.contains(&c))
}

/// Maps ASCII `0-9` and full-width `０-９` to an ASCII digit; every other character, including
/// ①, ¹ and Arabic-Indic digits, gives `None` (DOM-3).
pub(crate) fn fold_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '\u{FF10}'..='\u{FF19}' => {
            char::from_u32(u32::from(c) - 0xFF10 + u32::from('0')).filter(char::is_ascii_digit)
        }
        _ => None,
    }
}

/// Folds full-width digits to ASCII and leaves every other character untouched.
pub(crate) fn fold_digits(input: &str) -> String {
    input.chars().map(|c| fold_digit(c).unwrap_or(c)).collect()
}

/// Whether `c` is one of the DOM-2 hyphen look-alikes.
pub(crate) fn is_hyphen_lookalike(c: char) -> bool {
    HYPHEN_LOOKALIKES.contains(&c)
}

/// Whether `c` is a space that may separate digit groups (U+0020, U+3000; DOM-2).
pub(crate) fn is_group_space(c: char) -> bool {
    matches!(c, '\u{0020}' | '\u{3000}')
}

/// Whether `c` is written for a 長音 when it follows kana (DOM-14).
pub(crate) fn is_prolonged_lookalike(c: char) -> bool {
    is_hyphen_lookalike(c) || PROLONGED_LOOKALIKES.contains(&c)
}

/// Hiragana letters and iteration marks (ぁ–ゖ, ゝ, ゞ, ゟ).
pub(crate) fn is_hiragana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309F}')
}

/// Full-width katakana letters, ー, ヽ, ヾ, ヿ and the small katakana extension block.
/// The middle dot `・` (U+30FB) is not a letter and is excluded.
pub(crate) fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}')
}

/// Half-width katakana including ｰ and the half-width (semi-)voiced marks.
pub(crate) fn is_halfwidth_katakana(c: char) -> bool {
    matches!(c, '\u{FF66}'..='\u{FF9F}')
}

/// Any kana a member can type: hiragana, katakana or half-width katakana.
pub(crate) fn is_kana(c: char) -> bool {
    is_hiragana(c) || is_katakana(c) || is_halfwidth_katakana(c)
}

/// CJK ideographs (BMP, extension A, compatibility, supplementary planes) and 々〆〇.
pub(crate) fn is_kanji(c: char) -> bool {
    matches!(
        c,
        '\u{3005}'..='\u{3007}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{3134F}'
    )
}

/// Turns runs of half-width katakana into full-width katakana, composing the separate voiced
/// marks (`ｶﾞ` → `ガ`), and leaves everything else (kanji in particular) untouched. NFKC is
/// applied only to the half-width runs so compatibility ideographs are not rewritten.
pub(crate) fn widen_halfwidth_katakana(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut run = String::new();
    for c in input.chars() {
        if is_halfwidth_katakana(c) {
            run.push(c);
        } else {
            if !run.is_empty() {
                out.extend(run.nfkc());
                run.clear();
            }
            out.push(c);
        }
    }
    out.extend(run.nfkc());
    out
}

/// Converts hiragana to katakana (ぁ–ゖ → ァ–ヶ, ゝゞ → ヽヾ); other characters are unchanged.
pub(crate) fn hiragana_to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(u32::from(c) + 0x60).unwrap_or(c)
        }
        _ => c,
    }
}

/// Converts ASCII digits to full-width digits (JP Core keeps a kana/kanji 記号 all full-width).
pub(crate) fn widen_digit(c: char) -> char {
    if c.is_ascii_digit() {
        char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap_or(c)
    } else {
        c
    }
}

/// Characters that render as nothing or as a blank, which no field may hide (DOM-4,
/// DOM-17): Unicode's Default_Ignorable_Code_Point (zero-width and bidi controls, the
/// Hangul fillers, variation selectors, tags, and the reserved code points beside them),
/// its format characters (general category Cf, which adds the prepended concatenation
/// marks and the Egyptian format controls), and the braille blank. The one list behind
/// the e-mail address's and the nickname's refusals, read from the Unicode data that
/// `idna` already carries (`icu_properties`), so it follows Unicode rather than a copy.
///
/// What members type most — ASCII, kana, kanji and full-width forms — holds none of them,
/// so it skips the tables (the unit test checks every code point it skips).
pub(crate) fn is_invisible(c: char) -> bool {
    !has_no_invisible(c) && in_unicode_invisible_set(c)
}

/// Blocks with no invisible character: ASCII and Latin-1 below the soft hyphen,
/// hiragana and katakana, CJK unified ideographs, full-width forms and half-width
/// katakana (up to, not including, the half-width Hangul filler U+FFA0).
fn has_no_invisible(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{AC}' | '\u{3040}'..='\u{30FF}' | '\u{4E00}'..='\u{9FFF}' | '\u{FF01}'..='\u{FF9F}'
    )
}

/// [`is_invisible`] without the ASCII shortcut.
fn in_unicode_invisible_set(c: char) -> bool {
    const IGNORABLE: CodePointSetDataBorrowed<'static> =
        CodePointSetData::new::<DefaultIgnorableCodePoint>();
    const CATEGORY: CodePointMapDataBorrowed<'static, GeneralCategory> =
        CodePointMapData::<GeneralCategory>::new();
    IGNORABLE.contains(c) || CATEGORY.get(c) == GeneralCategory::Format || c == '\u{2800}'
}

/// Variation selectors: they choose a glyph for the character before them (an emoji's
/// colour form, an ideographic variant).
pub(crate) fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    // DOM-17: one list of invisible characters. Whatever it holds, an e-mail address
    // and a nickname both refuse, in the middle of the text where trimming cannot help;
    // it holds at least what the two hand-written lists it replaced held.
    #[test]
    fn dom_17_the_address_and_the_nickname_refuse_the_same_invisibles() {
        use crate::domain::{EmailAddress, EmailError, Nickname, NicknameError};
        let invisible: Vec<char> = ('\0'..=char::MAX).filter(|&c| is_invisible(c)).collect();
        // The shortcut drops nothing: no code point it skips is in Unicode's set.
        assert!(
            ('\0'..=char::MAX)
                .filter(|&c| has_no_invisible(c))
                .all(|c| !in_unicode_invisible_set(c))
        );
        // Every range of the two hand-written lists this set replaced (the address's and
        // the nickname's, at d521018).
        #[rustfmt::skip]
        let replaced: [(u32, u32); 31] = [
            (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C),
            (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
            (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
            (0x202A, 0x202E), (0x2060, 0x206F), (0x2800, 0x2800), (0x3164, 0x3164),
            (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFFB),
            (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
            (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
            (0xE0001, 0xE0001), (0xE0020, 0xE007F), (0xE0100, 0xE01EF),
            (0x2066, 0x206F), (0xFFF9, 0xFFFB),
        ];
        for (first, last) in replaced {
            for c in (first..=last).filter_map(char::from_u32) {
                assert!(invisible.contains(&c), "U+{:04X}", u32::from(c));
            }
        }
        for visible in ['a', 'あ', '漢', 'ー', '・', '\u{3000}', '❤'] {
            assert!(!is_invisible(visible), "{visible}");
        }
        for c in invisible {
            let address = format!("taro{c}yamada@example.jp");
            assert_eq!(
                EmailAddress::parse(&address).map(|_| ()),
                Err(EmailError::ControlCharacter),
                "U+{:04X}",
                u32::from(c)
            );
            // A nickname keeps a variation selector right after a visible character (an
            // emoji's colour form); anywhere else it is refused like the rest.
            let typed = if is_variation_selector(c) {
                format!("たろう {c}さん")
            } else {
                format!("たろう{c}さん")
            };
            assert_eq!(
                Nickname::parse(&typed).map(|_| ()),
                Err(NicknameError::InvalidChar),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    // DOM-4: leading/trailing whitespace incl. U+3000 and zero-width characters is trimmed.
    #[test]
    fn dom_04_trims_ideographic_space_and_zero_width() {
        for (input, want) in [
            ("\u{3000}999\u{3000}", "999"),
            ("\u{200B}999\u{FEFF}", "999"),
            ("\u{FEFF} \t999 \u{200B}\u{3000}", "999"),
            ("9 9", "9 9"),
            ("", ""),
        ] {
            assert_eq!(trim(input), want, "{input:?}");
        }
    }

    // DOM-3: only ASCII and full-width digits are digits.
    #[test]
    fn dom_03_fold_digit_accepts_only_ascii_and_fullwidth() {
        for (i, c) in "０１２３４５６７８９".chars().enumerate() {
            assert_eq!(fold_digit(c), char::from_digit(i as u32, 10), "{c}");
        }
        for c in ['①', '¹', '١', '۱', '१', '𝟏', 'Ⅰ', '一', 'a', '-'] {
            assert_eq!(fold_digit(c), None, "{c}");
        }
    }

    #[test]
    fn widen_halfwidth_katakana_composes_voiced_marks() {
        assert_eq!(widen_halfwidth_katakana("ｶﾞｷﾞ漢ﾊﾟｰ"), "ガギ漢パー");
        assert_eq!(widen_halfwidth_katakana("１２"), "１２");
    }

    #[test]
    fn kana_helpers() {
        assert_eq!(hiragana_to_katakana('ゔ'), 'ヴ');
        assert_eq!(hiragana_to_katakana('ゝ'), 'ヽ');
        assert_eq!(hiragana_to_katakana('ア'), 'ア');
        assert_eq!(widen_digit('7'), '７');
        assert!(is_kanji('髙') && is_kanji('々') && !is_kanji('あ'));
    }
}
