//! 保険者番号 (insurer number): 8 digits with the MHLW check digit (DOM-10).
//!
//! Unlike 記号・番号 it identifies the insurer, not the member, so it has a plain `Display`
//! and serde support; it is still kept as a string so leading zeros survive (DOM-7).

use serde::{Deserialize, Serialize};

use crate::domain::normalize;

/// Why an insurer number was rejected. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InsurerNumberError {
    /// Nothing left after trimming.
    #[error("insurer number is empty")]
    Empty,
    /// A character other than a half-width or full-width digit (DOM-3).
    #[error("insurer number contains a non-digit character")]
    NonDigit,
    /// Not 8 digits (or 6 for 国保).
    #[error("insurer number must have 8 digits (6 for national health insurance)")]
    Length,
    /// The last digit does not match the MHLW check digit.
    #[error("insurer number check digit does not match")]
    CheckDigit,
}

/// A validated 保険者番号, always 8 ASCII digits (DOM-10).
///
/// 6-digit 国民健康保険 numbers are accepted and zero-padded to 8, as JP Core and the receipt
/// files store them; a number starting with `00` is therefore a 国保 number without 法別番号.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InsurerNumber(String);

/// MHLW check digit over `body` (ASCII digits): weights 2,1,2,… from the last digit, products
/// digit-summed, `(10 - s % 10) % 10`. It is the Luhn scheme, so leading zeros do not change
/// it and a padded 国保 number checks the same as its 5-digit body.
fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.saturating_sub(b'0'));
            let p = if i % 2 == 0 { d * 2 } else { d };
            p / 10 + p % 10
        })
        .sum();
    // The result is in 0..=9, so the narrowing cannot lose anything.
    ((10 - sum % 10) % 10) as u8
}

impl InsurerNumber {
    /// Parses 8 digits, or 6 for 国保, after trimming and folding full-width digits; verifies
    /// the check digit. Never panics.
    pub fn parse(input: &str) -> Result<Self, InsurerNumberError> {
        let trimmed = normalize::trim(input);
        if trimmed.is_empty() {
            return Err(InsurerNumberError::Empty);
        }
        if trimmed.len() > 64 {
            return Err(InsurerNumberError::Length);
        }
        let folded = normalize::fold_digits(trimmed);
        if !folded.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InsurerNumberError::NonDigit);
        }
        let padded = match folded.len() {
            8 => folded,
            6 => format!("00{folded}"),
            _ => return Err(InsurerNumberError::Length),
        };
        let bytes = padded.as_bytes();
        let (Some(body), Some(&last)) = (bytes.get(..7), bytes.get(7)) else {
            return Err(InsurerNumberError::Length);
        };
        if last.saturating_sub(b'0') != check_digit(body) {
            return Err(InsurerNumberError::CheckDigit);
        }
        Ok(Self(padded))
    }

    /// The canonical 8-digit string (e.g. `06139497`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 法別番号 (first two digits), or `None` for a 国保 number (padded with `00`).
    /// Profiles use it to check the kind of insurer (DOM-10).
    pub fn houbetsu(&self) -> Option<&str> {
        self.0.get(..2).filter(|h| *h != "00")
    }

    /// Whether this is a 健保組合 (法別 `06`, or `63` 特定健康保険組合 / 特例退職), the only
    /// numbers the 健保組合 profile accepts (DOM-10).
    pub fn is_health_insurance_society(&self) -> bool {
        matches!(self.houbetsu(), Some("06" | "63"))
    }

    /// Whether this is a 国民健康保険 number (no 法別番号).
    pub fn is_national_health_insurance(&self) -> bool {
        self.houbetsu().is_none()
    }
}

crate::domain::text_conversions! { InsurerNumber, InsurerNumberError;
    FromStr;
    TryFrom<String>;
    Into<String> |value| value.0;
    AsRef<str> |value| &value.0;
    Display |value| &value.0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::from_stored;
    use crate::lang::Lang;
    use proptest::prelude::*;

    // DOM-10: published numbers pass, spec examples that are not check-digit valid fail.
    #[test]
    fn dom_10_check_digit() {
        for valid in ["06139497", "01040013", "33120015", "00012344"] {
            assert!(InsurerNumber::parse(valid).is_ok(), "{valid}");
        }
        for invalid in ["00012345", "12345678", "06139496", "01040014", "33120010"] {
            assert_eq!(
                InsurerNumber::parse(invalid),
                Err(InsurerNumberError::CheckDigit),
                "{invalid}"
            );
        }
        assert_eq!(check_digit(b"0613949"), 7);
        assert_eq!(check_digit(b"0000000"), 0);
    }

    // DOM-10: every single-digit change of a valid number is caught (Luhn property).
    #[test]
    fn dom_10_check_digit_catches_single_substitutions() {
        let valid = b"06139497";
        for pos in 0..8 {
            for d in b'0'..=b'9' {
                if d == valid[pos] {
                    continue;
                }
                let mut v = *valid;
                v[pos] = d;
                let s = std::str::from_utf8(&v).unwrap();
                assert!(InsurerNumber::parse(s).is_err(), "{s}");
            }
        }
    }

    // DOM-10 + DOM-3/DOM-4: full-width digits fold, surroundings are trimmed, 6-digit 国保
    // numbers are padded; other lengths and characters are rejected.
    #[test]
    fn dom_10_parse_table() {
        for (input, want) in [
            ("０６１３９４９７", Ok("06139497")),
            ("\u{3000}06139497\u{200B}", Ok("06139497")),
            ("012344", Ok("00012344")),
            ("０１２３４４", Ok("00012344")),
            ("", Err(InsurerNumberError::Empty)),
            ("0613949", Err(InsurerNumberError::Length)),
            ("061394970", Err(InsurerNumberError::Length)),
            ("0613-9497", Err(InsurerNumberError::NonDigit)),
            ("0613949⑦", Err(InsurerNumberError::NonDigit)),
            ("06139٤97", Err(InsurerNumberError::NonDigit)),
            ("012345", Err(InsurerNumberError::CheckDigit)),
        ] {
            let got = InsurerNumber::parse(input);
            assert_eq!(
                got.as_ref().map(InsurerNumber::as_str),
                want.as_ref().map(|s| *s),
                "{input:?}"
            );
        }
    }

    // DOM-10: 法別 and the 健保組合 profile check.
    #[test]
    fn dom_10_houbetsu() {
        for (input, houbetsu, society) in [
            ("06139497", Some("06"), true),
            ("01040013", Some("01"), false),
            ("33120015", Some("33"), false),
            ("63000004", Some("63"), true),
            ("012344", None, false),
        ] {
            let n = InsurerNumber::parse(input).unwrap();
            assert_eq!(n.houbetsu(), houbetsu, "{input}");
            assert_eq!(n.is_health_insurance_society(), society, "{input}");
            assert_eq!(n.is_national_health_insurance(), houbetsu.is_none());
        }
    }

    // DOM-25: every refusal names the field.
    #[test]
    fn dom_25_refusals_name_the_insurer_number() {
        use InsurerNumberError as E;
        for e in [E::Empty, E::NonDigit, E::Length, E::CheckDigit] {
            assert!(e.message(Lang::Ja).contains("保険者番号"));
        }
    }

    // Conventions: serde goes through the parser.
    #[test]
    fn serde_through_parser() {
        let n: InsurerNumber = from_stored("０６１３９４９７").unwrap();
        assert_eq!(String::from(n.clone()), "06139497");
        assert_eq!(n.to_string(), "06139497");
        assert!(from_stored::<InsurerNumber>("12345678").is_err());
    }

    proptest! {
        // Conventions: never panics on any string.
        #[test]
        fn never_panics(s in any::<String>(), t in "[0-9０-９①¹٤ 　-]{0,12}") {
            let _ = InsurerNumber::parse(&s);
            let _ = InsurerNumber::parse(&t);
        }

        // DOM-10: appending the computed check digit always gives a valid number that
        // round-trips through its canonical form.
        #[test]
        fn canonical_round_trips(body in "[0-9]{7}") {
            let check = check_digit(body.as_bytes());
            let n = InsurerNumber::parse(&format!("{body}{check}")).unwrap();
            prop_assert_eq!(InsurerNumber::parse(n.as_str()).unwrap(), n.clone());
            let wrong = (check + 1) % 10;
            let corrupted = format!("{body}{wrong}");
            prop_assert!(InsurerNumber::parse(&corrupted).is_err());
        }
    }
}
