//! LoginId::parse and Nickname::parse on arbitrary strings.
//!
//! Asserts, login ID: never panics; a parsed ID is 6–32 characters of lower-case ASCII
//! letters, digits and `. _ - @`; it re-parses to itself, also upper-cased and full-width;
//! it is refused as identifying when compared with itself (SEC-42) unless it is made
//! only of the separators that comparison ignores.
//! Nickname: never panics; a parsed nickname is 1–20 code points, re-parses to itself,
//! has no `<`/`>`, control characters or line breaks, no leading/trailing space and no
//! doubled space. Both: serde's string form round-trips; errors carry stable
//! `login_id.*` / `nickname.*` codes.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::Lang;
use kenpo_auth::domain::{LoginId, LoginIdError, Nickname};
use kenpo_auth_fuzz::{assert_error_code, widen_ascii};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    login_id: &'a str,
    nickname: &'a str,
}

fn check_login_id(input: &str) {
    let id = match LoginId::parse(input) {
        Ok(id) => id,
        Err(e) => {
            assert_error_code(
                e.code(),
                "login_id",
                &e.message(Lang::Ja),
                &e.message(Lang::En),
            );
            return;
        }
    };
    let s = id.as_str();
    assert!((6..=32).contains(&s.len()), "login ID length");
    assert!(
        s.bytes().all(|b| b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'.' | b'_' | b'-' | b'@')),
        "login ID characters"
    );
    assert_eq!(LoginId::parse(s).as_ref(), Ok(&id), "canonical re-parses");
    assert_eq!(
        LoginId::parse(&s.to_ascii_uppercase()).as_ref(),
        Ok(&id),
        "case-insensitive"
    );
    assert_eq!(
        LoginId::parse(&widen_ascii(s)).as_ref(),
        Ok(&id),
        "full-width folds"
    );
    assert_eq!(id.to_string(), s);
    let stored: String = id.clone().into();
    assert_eq!(LoginId::try_from(stored).as_ref(), Ok(&id));
    // The comparison ignores `. _ -`; an ID made only of them has nothing to compare.
    if s.bytes().any(|b| !matches!(b, b'.' | b'_' | b'-')) {
        assert_eq!(
            id.ensure_not_identifying([s]),
            Err(LoginIdError::Identifying),
            "an ID equal to identifying data must be refused"
        );
        assert_eq!(
            id.ensure_not_identifying([s.to_ascii_uppercase()]),
            Err(LoginIdError::Identifying)
        );
    }
}

fn check_nickname(input: &str) {
    let n = match Nickname::parse(input) {
        Ok(n) => n,
        Err(e) => {
            assert_error_code(
                e.code(),
                "nickname",
                &e.message(Lang::Ja),
                &e.message(Lang::En),
            );
            return;
        }
    };
    let s = n.as_str();
    assert!((1..=20).contains(&s.chars().count()), "nickname length");
    assert!(!s.contains(['<', '>']), "angle brackets");
    assert!(!s.chars().any(char::is_control), "control characters");
    assert!(
        !s.chars().any(|c| c.is_whitespace() && c != ' '),
        "whitespace other than U+0020"
    );
    assert_eq!(s, s.trim(), "no leading or trailing space");
    assert!(!s.contains("  "), "no doubled space");
    assert_eq!(
        Nickname::parse(s).as_ref(),
        Ok(&n),
        "parse must be idempotent"
    );
    assert_eq!(n.to_string(), s);
    let stored: String = n.clone().into();
    assert_eq!(Nickname::try_from(stored).as_ref(), Ok(&n));
}

fuzz_target!(|input: Input<'_>| {
    check_login_id(input.login_id);
    check_nickname(input.nickname);
});
