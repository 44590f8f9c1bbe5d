//! InsurerNumber::parse on arbitrary strings, and on 7-digit bodies completed with an
//! independently computed check digit.
//!
//! Asserts: never panics; a parsed number is 8 ASCII digits whose last digit is the MHLW
//! check digit of the first seven (checked by a separate implementation here); it
//! re-parses to itself, also full-width; a 6-digit 国保 input is padded with `00` and has
//! no 法別番号; for every 7-digit body the right check digit is accepted and each of the
//! nine wrong ones refused with `insurer_number.check_digit`; errors carry a stable
//! `insurer_number.*` code.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::Lang;
use kenpo_auth::domain::{InsurerNumber, InsurerNumberError};
use kenpo_auth_fuzz::{assert_error_code, widen_ascii};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    body: u32,
}

/// Weights 2,1,2,… from the rightmost digit, products digit-summed, `(10 - s % 10) % 10`.
fn luhn_check_digit(body: &str) -> u32 {
    let mut sum = 0;
    for (i, c) in body.chars().rev().enumerate() {
        let d = c.to_digit(10).unwrap_or(0);
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    (10 - sum % 10) % 10
}

fn check_ok(n: &InsurerNumber) {
    let s = n.as_str();
    assert!(
        s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()),
        "8 ASCII digits"
    );
    let last = s[7..].parse::<u32>().unwrap_or(99);
    assert_eq!(last, luhn_check_digit(&s[..7]), "check digit");
    assert_eq!(
        InsurerNumber::parse(s).as_ref(),
        Ok(n),
        "canonical re-parses"
    );
    assert_eq!(
        InsurerNumber::parse(&widen_ascii(s)).as_ref(),
        Ok(n),
        "full-width re-parses"
    );
    assert_eq!(n.to_string(), s);
    assert_eq!(n.houbetsu().is_none(), s.starts_with("00"));
    assert_eq!(n.is_national_health_insurance(), s.starts_with("00"));
    assert_eq!(
        n.is_health_insurance_society(),
        s.starts_with("06") || s.starts_with("63")
    );
}

fuzz_target!(|input: Input<'_>| {
    match InsurerNumber::parse(input.text) {
        Ok(n) => {
            check_ok(&n);
            let digits: String = input.text.chars().filter(char::is_ascii_digit).collect();
            if digits.len() == 6 && input.text.trim() == digits {
                assert_eq!(n.as_str(), format!("00{digits}"), "国保 numbers are padded");
            }
        }
        Err(e) => assert_error_code(
            e.code(),
            "insurer_number",
            &e.message(Lang::Ja),
            &e.message(Lang::En),
        ),
    }

    let body = format!("{:07}", input.body % 10_000_000);
    let right = luhn_check_digit(&body);
    let good = InsurerNumber::parse(&format!("{body}{right}")).expect("valid check digit");
    check_ok(&good);
    for wrong in (0..10).filter(|d| *d != right) {
        assert_eq!(
            InsurerNumber::parse(&format!("{body}{wrong}")),
            Err(InsurerNumberError::CheckDigit),
            "a wrong check digit must be refused"
        );
    }
    // 国保: six digits, the padded body's check digit.
    if let Some(short) = body.strip_prefix("00") {
        assert_eq!(
            InsurerNumber::parse(&format!("{short}{right}")).as_ref(),
            Ok(&good),
            "a 6-digit 国保 number is its 00-padded 8-digit form"
        );
    }
});
