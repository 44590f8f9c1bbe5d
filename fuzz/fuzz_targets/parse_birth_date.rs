//! BirthDate::parse on arbitrary strings (西暦 and 和暦, every width and separator).
//!
//! Asserts: never panics; a parsed date is on or after 1900-01-01; `to_iso` is
//! `YYYY-MM-DD` and re-parses (also full-width, also as compact `YYYYMMDD`, also as
//! `YYYY年M月D日`) to an equal date; serde's string form round-trips; `Debug` is masked;
//! every password-blocklist spelling in `context_words` that parses at all parses to the
//! same date (before 3018, see below); errors carry a stable `birth_date.*` code.
#![no_main]

use kenpo_auth::Lang;
use kenpo_auth::domain::BirthDate;
use kenpo_auth_fuzz::{assert_error_code, widen_ascii};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let d = match BirthDate::parse(input) {
        Ok(d) => d,
        Err(e) => {
            assert_error_code(
                e.code(),
                "birth_date",
                &e.message(Lang::Ja),
                &e.message(Lang::En),
            );
            return;
        }
    };
    let date = d.date();
    assert!(date.year() >= 1900, "dates before 1900 are refused");
    let (y, m, day) = (date.year(), u8::from(date.month()), date.day());
    let iso = d.to_iso();
    assert_eq!(iso, format!("{y:04}-{m:02}-{day:02}"));
    assert_eq!(iso.len(), 10, "ISO form is YYYY-MM-DD");

    for spelling in [
        iso.clone(),
        widen_ascii(&iso),
        format!("{y:04}{m:02}{day:02}"),
        format!("{y}年{m}月{day}日"),
        format!("{y}/{m}/{day}"),
    ] {
        assert_eq!(
            BirthDate::parse(&spelling),
            Ok(d),
            "a canonical spelling must re-parse to the same date"
        );
    }
    let stored: String = d.into();
    assert_eq!(BirthDate::try_from(stored), Ok(d));
    assert_eq!(BirthDate::from_date(date), Ok(d));
    assert_eq!(
        format!("{d:?}"),
        "BirthDate(****-**-**)",
        "Debug must be masked"
    );

    // From 令和1000年 (3018) on, the letterless 和暦 form `{era year}{mm}{dd}` has 8 digits
    // and reads as another 西暦 date; that overlap only widens the password blocklist.
    if y < 3018 {
        for word in d.context_words() {
            if let Ok(other) = BirthDate::parse(&word) {
                assert_eq!(other, d, "context word spells another date");
            }
        }
    }
});
