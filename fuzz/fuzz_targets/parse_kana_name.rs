//! KanaName::parse on arbitrary strings.
//!
//! Asserts: never panics; a parsed name is 1–100 characters of full-width katakana
//! (with ー and the middle dot ・ only); parsing is idempotent (`as_str` re-parses to
//! itself); the hiragana spelling and a spaced-out spelling of the result read back to
//! the same name (DOM-14); `Debug` is masked; errors carry a stable `kana_name.*` code.
#![no_main]

use kenpo_auth::Lang;
use kenpo_auth::domain::KanaName;
use kenpo_auth_fuzz::assert_error_code;
use libfuzzer_sys::fuzz_target;

fn is_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}')
}

fuzz_target!(|input: &str| {
    let k = match KanaName::parse(input) {
        Ok(k) => k,
        Err(e) => {
            assert_error_code(
                e.code(),
                "kana_name",
                &e.message(Lang::Ja),
                &e.message(Lang::En),
            );
            return;
        }
    };
    let s = k.as_str();
    let n = s.chars().count();
    assert!((1..=100).contains(&n), "kana name length {n}");
    assert!(
        s.chars().all(|c| is_katakana(c) || c == '・'),
        "only full-width katakana and ・"
    );
    assert_eq!(
        KanaName::parse(s).as_ref(),
        Ok(&k),
        "parse must be idempotent"
    );
    let stored: String = k.clone().into();
    assert_eq!(KanaName::try_from(stored).as_ref(), Ok(&k));
    assert_eq!(format!("{k:?}"), "KanaName(***)", "Debug must be masked");

    // ァ..ヶ as hiragana ぁ..ゖ: the member may type either.
    let hiragana: String = s
        .chars()
        .map(|c| match c {
            '\u{30A1}'..='\u{30F6}' => char::from_u32(u32::from(c) - 0x60).unwrap_or(c),
            _ => c,
        })
        .collect();
    assert_eq!(
        KanaName::parse(&hiragana).as_ref(),
        Ok(&k),
        "hiragana spelling"
    );
    // Spaces between the characters are not part of the name.
    let spaced: String = s.chars().flat_map(|c| [c, '\u{3000}']).collect();
    assert_eq!(KanaName::parse(&spaced).as_ref(), Ok(&k), "spaced spelling");
});
