//! CardNumber::parse (健保組合 default) and CardNumber::parse_with under arbitrary
//! formats: DigitsAndJapanese 記号, fixed (記号, 番号) lengths, any byte cap.
//!
//! Asserts: never panics; a parsed number has an ASCII-digit 番号, a two-digit 枝番 and
//! parts within the format (byte cap, fixed lengths, charset); `canonical` re-parses to
//! an equal number under the same format; a digits-only 記号 also reads back through every
//! DOM-2 hyphen look-alike, full-width digits (DOM-3) and, with fixed lengths, without
//! separators; what the default format accepts the Japanese one accepts equally; the
//! masked form (and Debug / Display) keeps 記号 and 枝番 but never the full 番号; errors
//! carry a stable `card_number.*` code.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::Lang;
use kenpo_auth::domain::{CardNumber, CardNumberFormat, SymbolCharset};
use kenpo_auth_fuzz::{assert_error_code, widen_ascii};
use libfuzzer_sys::fuzz_target;

/// Every DOM-2 hyphen look-alike plus the group spaces.
const SEPARATORS: [&str; 17] = [
    "-", "－", "﹣", "‐", "‑", "‒", "–", "—", "―", "−", "⁃", "˗", "ー", "ｰ", " ", "　", " - ",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    japanese: bool,
    fixed: Option<(u8, u8)>,
    max_bytes: Option<u8>,
    sep: u8,
}

fn receipt_bytes(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn check_ok(c: &CardNumber, format: &CardNumberFormat) {
    let (symbol, number, branch) = (c.symbol(), c.number(), c.branch());
    assert_eq!(c.canonical(), format!("{symbol}-{number}-{branch}"));
    assert!(
        !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
        "番号 must be ASCII digits"
    );
    assert!(
        branch.len() == 2 && branch.bytes().all(|b| b.is_ascii_digit()),
        "枝番 must be two ASCII digits"
    );
    assert!(!symbol.is_empty(), "記号 must not be empty");
    assert!(
        receipt_bytes(symbol) <= format.max_bytes,
        "記号 over the byte cap"
    );
    assert!(number.len() <= format.max_bytes, "番号 over the byte cap");
    if format.symbol_charset == SymbolCharset::Digits {
        assert!(
            symbol.bytes().all(|b| b.is_ascii_digit()),
            "記号 must be digits"
        );
    } else if !symbol.bytes().all(|b| b.is_ascii_digit()) {
        assert!(!symbol.is_ascii(), "a Japanese 記号 is kept full-width");
    }
    if let Some((sl, nl)) = format.fixed_lengths {
        assert_eq!(symbol.chars().count(), sl, "記号 length");
        assert_eq!(number.len(), nl, "番号 length");
    }

    // Canonical round trip (DOM-1).
    let again = CardNumber::parse_with(&c.canonical(), format).expect("canonical must re-parse");
    assert_eq!(&again, c);
    assert_eq!(again.canonical(), c.canonical());

    // Masking (DOM-24): 記号-****NN-枝番, never the full 番号.
    let masked = c.masked();
    let middle = masked
        .strip_prefix(&format!("{symbol}-"))
        .and_then(|m| m.strip_suffix(&format!("-{branch}")))
        .expect("masked keeps 記号 and 枝番 around the 番号");
    assert_eq!(middle.len(), number.len(), "mask keeps the 番号's length");
    assert!(
        !middle.contains(number),
        "masked form contains the full 番号"
    );
    let visible = middle.bytes().filter(|b| *b != b'*').count();
    assert!(
        visible <= 2 && (visible == 0 || number.len() >= 4),
        "mask shows too much of the 番号"
    );
    assert!(number.ends_with(middle.trim_start_matches('*')));
    assert!(!masked.contains(&c.canonical()));
    assert_eq!(c.to_string(), masked, "Display is masked");
    assert_eq!(
        format!("{c:?}"),
        format!("CardNumber({masked})"),
        "Debug is masked"
    );
}

fn check_spellings(c: &CardNumber, format: &CardNumberFormat, sep: u8) {
    let (symbol, number, branch) = (c.symbol(), c.number(), c.branch());
    if !symbol.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    // DOM-2: any hyphen look-alike or space between the parts.
    let s = SEPARATORS[usize::from(sep) % SEPARATORS.len()];
    let t = SEPARATORS[usize::from(sep / 17) % SEPARATORS.len()];
    let spelled = format!("{symbol}{s}{number}{t}{branch}");
    assert_eq!(
        CardNumber::parse_with(&spelled, format).as_ref(),
        Ok(c),
        "separator look-alikes must fold"
    );
    // DOM-3: full-width digits and hyphens.
    let wide = widen_ascii(&c.canonical());
    assert_eq!(
        CardNumber::parse_with(&wide, format).as_ref(),
        Ok(c),
        "full-width must fold"
    );
    // DOM-9: with fixed lengths, no separator is needed.
    if format.fixed_lengths.is_some() {
        let compact = format!("{symbol}{number}{branch}");
        assert_eq!(
            CardNumber::parse_with(&compact, format).as_ref(),
            Ok(c),
            "compact form"
        );
    }
}

fuzz_target!(|input: Input<'_>| {
    let default = CardNumberFormat::default();
    let mut format = CardNumberFormat::default();
    if input.japanese {
        format.symbol_charset = SymbolCharset::DigitsAndJapanese;
    }
    format.fixed_lengths = input.fixed.map(|(s, n)| (usize::from(s), usize::from(n)));
    if let Some(m) = input.max_bytes {
        format.max_bytes = usize::from(m);
    }

    let plain = CardNumber::parse(input.text);
    match &plain {
        Ok(c) => {
            check_ok(c, &default);
            check_spellings(c, &default, input.sep);
            // The Japanese charset is a superset of the digits-only one.
            let jp = CardNumberFormat {
                symbol_charset: SymbolCharset::DigitsAndJapanese,
                ..default
            };
            assert_eq!(
                CardNumber::parse_with(input.text, &jp).as_ref(),
                Ok(c),
                "DigitsAndJapanese must accept what Digits accepts"
            );
        }
        Err(e) => assert_error_code(
            e.code(),
            "card_number",
            &e.message(Lang::Ja),
            &e.message(Lang::En),
        ),
    }
    assert_eq!(plain, input.text.parse::<CardNumber>(), "FromStr is parse");

    match CardNumber::parse_with(input.text, &format) {
        Ok(c) => {
            check_ok(&c, &format);
            check_spellings(&c, &format, input.sep);
        }
        Err(e) => assert_error_code(
            e.code(),
            "card_number",
            &e.message(Lang::Ja),
            &e.message(Lang::En),
        ),
    }
});
