//! EmailAddress::parse / parse_with on arbitrary strings.
//!
//! Asserts: never panics; a parsed address is ASCII, within the RFC 5321 lengths, and
//! `canonical` is `for_sending` with the local part lower-cased; `for_sending` and
//! `canonical` both re-parse to an equal address with the same spelling and legacy flag;
//! strict mode accepts exactly the non-legacy addresses of the default mode; the masked
//! and `Debug` forms reveal at most the first character of the local part; errors carry a
//! stable `email.*` code.
#![no_main]

use kenpo_auth::Lang;
use kenpo_auth::domain::{EmailAddress, EmailError, EmailMode};
use kenpo_auth_fuzz::assert_error_code;
use libfuzzer_sys::fuzz_target;

fn check_ok(input: &str, e: &EmailAddress) {
    let send = e.for_sending();
    let canon = e.canonical();
    let local = e.local_part();
    let domain = e.domain();
    assert!(
        send.is_ascii() && canon.is_ascii(),
        "address must be ASCII after folding"
    );
    assert_eq!(send, format!("{local}@{domain}"));
    assert_eq!(canon, format!("{}@{domain}", local.to_ascii_lowercase()));
    assert!(send.len() <= 254, "address over 254 characters");
    assert!((1..=64).contains(&local.len()), "local part length");
    assert!(
        domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'),
        "domain must be dotted"
    );
    assert_eq!(
        domain,
        domain.to_ascii_lowercase(),
        "domain must be lower case"
    );
    assert!(
        domain.split('.').all(|l| (1..=63).contains(&l.len())),
        "domain label length"
    );

    let legacy = local.contains("..") || local.starts_with('.') || local.ends_with('.');
    assert_eq!(e.is_legacy_non_rfc(), legacy, "legacy flag");
    assert_eq!(
        e.quoted_form().is_some(),
        legacy,
        "quoted form only for legacy"
    );
    assert_eq!(e.legacy_warning(Lang::Ja).is_some(), legacy);

    // Round trips: the stored spelling and the uniqueness key read back the same.
    let again = EmailAddress::parse(send).expect("for_sending must re-parse");
    assert_eq!(&again, e);
    assert_eq!(
        again.for_sending(),
        send,
        "for_sending must be a fixed point"
    );
    assert_eq!(again.is_legacy_non_rfc(), legacy);
    let canon_again = EmailAddress::parse(canon).expect("canonical must re-parse");
    assert_eq!(&canon_again, e);
    assert_eq!(canon_again.canonical(), canon);
    assert_eq!(e.to_string(), send, "Display is for_sending");
    let stored: String = e.clone().into();
    assert_eq!(EmailAddress::try_from(stored).ok().as_ref(), Some(e));

    // Strict mode: the same address without the legacy spellings.
    match EmailAddress::parse_with(input, EmailMode::Rfc5322Strict) {
        Ok(strict) => {
            assert!(!legacy, "strict mode accepted a legacy address");
            assert_eq!(&strict, e);
            assert_eq!(strict.for_sending(), send);
        }
        Err(err) => {
            assert!(legacy, "strict mode refused a non-legacy address");
            assert_eq!(err, EmailError::LegacyNotAllowed);
        }
    }

    // Masking (SEC-44): at most the first character of the local part.
    let masked = e.masked();
    let canon_local = &canon[..local.len()];
    let shown = if canon_local.chars().count() >= 2 {
        canon_local
            .chars()
            .next()
            .map(String::from)
            .unwrap_or_default()
    } else {
        String::new()
    };
    assert_eq!(masked, format!("{shown}***@{domain}"), "masked shape");
    let mask_local = &masked[..masked.len() - domain.len() - 1];
    let tail_all_stars = canon_local.chars().skip(1).all(|c| c == '*');
    if !tail_all_stars {
        assert!(
            !mask_local.contains(canon_local),
            "masked form reveals the local part"
        );
    }
    assert_eq!(format!("{e:?}"), format!("EmailAddress({masked})"));
}

fuzz_target!(|input: &str| {
    match EmailAddress::parse(input) {
        Ok(e) => check_ok(input, &e),
        Err(err) => {
            assert_error_code(
                err.code(),
                "email",
                &err.message(Lang::Ja),
                &err.message(Lang::En),
            );
            // Strict mode is never more lenient than the default.
            assert!(EmailAddress::parse_with(input, EmailMode::Rfc5322Strict).is_err());
        }
    }
});
