//! Password::new and check_new_password with arbitrary rules and context words.
//!
//! Asserts: never panics; an accepted password is non-empty, at most 1 024 bytes, NFKC
//! already (`Password::new` of it is the identity) and `Debug` is redacted; a password
//! that passes `check_new_password` has a length within the clamped rules, is not on the
//! blocklist, is not one repeated character, and contains none of the (simple) context
//! words, the e-mail local part or the birth date as `YYYYMMDD`; each refusal names the
//! first rule that fails; `is_common_password` ignores ASCII case and width; errors carry
//! stable `password.*` codes.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::Lang;
use kenpo_auth::domain::password::birth_date_forms;
use kenpo_auth::domain::{
    Password, PasswordContext, PasswordError, PasswordRules, check_confirmation,
    check_new_password, is_common_password,
};
use kenpo_auth_fuzz::{assert_error_code, widen_ascii};
use libfuzzer_sys::fuzz_target;
use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    prefix: &'a str,
    /// Which context word (if any) to put inside the password.
    inject: Option<u8>,
    suffix: &'a str,
    min_chars: u16,
    max_chars: u16,
    words: Vec<&'a str>,
    email: &'a str,
    birth: Option<(u16, u8, u8)>,
}

/// The documented comparison form of passwords and context words: NFKC, lower case,
/// hiragana folded to katakana.
fn key(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
                char::from_u32(u32::from(c) + 0x60).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

/// A context word as `PasswordContext::add_word` documents it: trimmed, compared in
/// [`key`] form, dropped under 4 code points or over 1 024 bytes.
fn word_key(word: &str) -> Option<String> {
    let word = word.trim();
    if word.len() > 4 * 1024 {
        return None;
    }
    let k = key(word);
    let k = k.trim();
    (k.chars().count() >= 4 && k.len() <= 1024).then(|| k.to_owned())
}

/// A word the property can check without the library's normalisation: ASCII lower-case
/// letters and digits, at least 4 after trimming.
fn simple(word: &str) -> Option<&str> {
    let w = word.trim();
    (w.len() >= 4
        && w.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some(w)
}

fn error_code(e: PasswordError) {
    assert_error_code(
        e.code(),
        "password",
        &e.message(Lang::Ja),
        &e.message(Lang::En),
    );
}

fuzz_target!(|input: Input<'_>| {
    let birth = input.birth.and_then(|(y, m, d)| {
        let month = Month::try_from(m % 12 + 1).ok()?;
        Date::from_calendar_date(1900 + i32::from(y % 200), month, d % 31 + 1).ok()
    });
    let birth_word =
        birth.map(|b| format!("{:04}{:02}{:02}", b.year(), u8::from(b.month()), b.day()));
    let mut words: Vec<&str> = input.words.iter().take(16).copied().collect();
    if let Some(w) = &birth_word {
        words.push(w);
    }
    let local = input.email.rsplit_once('@').map(|(l, _)| l);
    if let Some(l) = local {
        words.push(l);
    }
    let injected = input
        .inject
        .and_then(|i| words.get(usize::from(i) % words.len().max(1)).copied())
        .unwrap_or("");
    let raw = format!("{}{injected}{}", input.prefix, input.suffix);

    let pw = match Password::new(raw.clone()) {
        Ok(pw) => pw,
        Err(e) => {
            error_code(e);
            match e {
                PasswordError::Empty => assert!(raw.is_empty(), "non-empty input called empty"),
                PasswordError::TooLongBytes => assert!(
                    raw.len() > 4 * 1024 || raw.nfkc().collect::<String>().len() > 1024,
                    "TooLongBytes for an input within the limits"
                ),
                other => panic!("Password::new refused with {other:?}"),
            }
            return;
        }
    };
    let secret = pw.expose_secret();
    assert!(raw.len() <= 4 * 1024, "raw input over 4 096 bytes accepted");
    assert_eq!(
        secret,
        raw.nfkc().collect::<String>(),
        "the secret is the NFKC form"
    );
    assert!(
        !secret.is_empty() && secret.len() <= 1024,
        "normalised size"
    );
    assert_eq!(
        format!("{pw:?}"),
        "Password([redacted])",
        "Debug must be redacted"
    );
    assert_eq!(pw.char_count(), secret.chars().count());
    let again = Password::new(secret).expect("a normalised password re-normalises");
    assert_eq!(again.expose_secret(), secret, "NFKC is idempotent");
    assert_eq!(check_confirmation(&pw, &again), Ok(()));

    // The blocklist ignores ASCII case and width.
    if secret.is_ascii() {
        let common = is_common_password(secret);
        assert_eq!(is_common_password(&secret.to_ascii_uppercase()), common);
        assert_eq!(is_common_password(&widen_ascii(secret)), common);
    }

    let rules = PasswordRules {
        min_chars: usize::from(input.min_chars),
        max_chars: usize::from(input.max_chars),
    };
    let eff = rules.clamped();
    assert!(eff.min_chars >= PasswordRules::FLOOR_MIN_CHARS);
    assert!(eff.max_chars >= PasswordRules::MIN_MAX_CHARS && eff.max_chars >= eff.min_chars);

    let mut ctx = PasswordContext::new();
    for w in input.words.iter().take(16) {
        ctx.add_word(w);
    }
    ctx = ctx.with_email(input.email);
    if let Some(b) = birth {
        ctx = ctx.with_birth_date(b);
    }

    let chars = pw.char_count();
    let in_bounds = (eff.min_chars..=eff.max_chars).contains(&chars);
    let mut first = secret.chars();
    let repeated = first.next().is_some_and(|c| first.all(|d| d == c));
    let common = is_common_password(secret) || repeated;
    let mut all_words: Vec<String> = input.words.iter().take(16).map(|w| w.to_string()).collect();
    if let Some((l, _)) = input.email.rsplit_once('@') {
        all_words.push(l.to_owned());
    }
    all_words.push(input.email.to_owned());
    if let Some(b) = birth {
        all_words.extend(birth_date_forms(b));
    }
    let secret_key = key(secret);
    let contains_context = all_words
        .iter()
        .filter_map(|w| word_key(w))
        .any(|w| secret_key.contains(&w));
    let contains_simple_word = words
        .iter()
        .filter_map(|w| simple(w))
        .any(|w| secret.contains(w));

    let expected = if chars < eff.min_chars {
        Err(PasswordError::TooShort { min: eff.min_chars })
    } else if chars > eff.max_chars {
        Err(PasswordError::TooLong { max: eff.max_chars })
    } else if common {
        Err(PasswordError::Common)
    } else if contains_context {
        Err(PasswordError::ContainsContext)
    } else {
        Ok(())
    };
    let got = check_new_password(&pw, &rules, &ctx);
    if let Err(e) = got {
        error_code(e);
    }
    if got.is_ok() {
        assert!(in_bounds && !common && !contains_simple_word);
    }
    assert_eq!(
        got, expected,
        "check_new_password must apply the rules in order"
    );
});
