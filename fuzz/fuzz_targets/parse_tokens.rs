//! Every token parser on arbitrary strings: the six bearer tokens, AuthKey, OtpCode,
//! TokenDigest (TryFrom<String>) and PasswordHashString; plus tokens generated from a
//! seed.
//!
//! Asserts: never panics; the six bearer-token types accept exactly the same strings,
//! each a 43-character URL-safe base64 text that re-parses to itself, with a redacted
//! `Debug` and a digest that differs per purpose; an AuthKey is 4–16 symbols of the
//! confusable-free alphabet and reads back from lower case and full width; an OtpCode is
//! 4–10 ASCII digits and reads back from full width; a TokenDigest is 64 lower-case hex
//! characters and `to_hex` / `from_bytes` round-trip; a PasswordHashString keeps its
//! text exactly and its `Debug` never shows the hash; generated tokens of every kind parse
//! back to themselves.
#![no_main]

use arbitrary::Arbitrary;
use kenpo_auth::password_hash::PasswordHashString;
use kenpo_auth::token::{
    AuthKey, EmailChangeLinkToken, FlowHandle, OtpChallengeId, OtpCode, PasswordResetLinkToken,
    RegistrationLinkToken, TOKEN_CHARS, TokenDigest, UNAMBIGUOUS_ALPHABET, VerificationLinkToken,
};
use kenpo_auth_fuzz::{keyring, widen_ascii};
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    bytes: [u8; 32],
    seed: u64,
    len: u8,
}

macro_rules! check_bearer {
    ($ty:ty, $text:expr, $all:expr) => {{
        let parsed = <$ty>::parse($text);
        if let Ok(t) = &parsed {
            let s = t.expose_secret();
            assert_eq!(s.len(), TOKEN_CHARS, "token length");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "URL-safe base64 alphabet"
            );
            assert_eq!(<$ty>::parse(s).as_ref(), Ok(t), "token re-parses");
            assert_eq!(s.parse::<$ty>().ok().as_ref(), Some(t), "FromStr is parse");
            let dbg = format!("{t:?}");
            assert!(
                dbg.contains("[redacted]") && !dbg.contains(s),
                "Debug must redact"
            );
            let keys = keyring();
            assert!(t.digest_candidates(&keys).contains(&t.digest(&keys)));
        }
        assert_eq!(
            $text.parse::<$ty>().is_ok(),
            parsed.is_ok(),
            "FromStr accepts what parse accepts"
        );
        $all.push(parsed.is_ok());
        parsed.ok()
    }};
}

fuzz_target!(|input: Input<'_>| {
    let keys = keyring();
    let text = input.text;

    // Bearer tokens: one shape for all six, digests separated by purpose.
    let mut oks = Vec::new();
    let reg = check_bearer!(RegistrationLinkToken, text, oks);
    let ver = check_bearer!(VerificationLinkToken, text, oks);
    let reset = check_bearer!(PasswordResetLinkToken, text, oks);
    let _ = check_bearer!(EmailChangeLinkToken, text, oks);
    let handle = check_bearer!(FlowHandle, text, oks);
    let challenge = check_bearer!(OtpChallengeId, text, oks);
    assert!(
        oks.iter().all(|ok| *ok == oks[0]),
        "bearer tokens disagree on shape"
    );
    if let (Some(a), Some(b), Some(c), Some(d), Some(e)) = (reg, ver, reset, handle, challenge) {
        let ds = [
            a.digest(&keys),
            b.digest(&keys),
            c.digest(&keys),
            d.digest(&keys),
            e.digest(&keys),
        ];
        for (i, x) in ds.iter().enumerate() {
            for y in &ds[i + 1..] {
                assert_ne!(x, y, "two purposes gave the same digest");
            }
        }
    }

    // AuthKey (認証キー).
    if let Ok(k) = AuthKey::parse(text) {
        let s = k.expose_secret();
        assert!(
            (AuthKey::MIN_LEN..=AuthKey::MAX_LEN).contains(&s.len()),
            "key length"
        );
        assert!(
            s.bytes().all(|b| UNAMBIGUOUS_ALPHABET.contains(&b)),
            "key alphabet"
        );
        assert_eq!(AuthKey::parse(s).as_ref(), Ok(&k));
        assert_eq!(AuthKey::parse(&s.to_ascii_lowercase()).as_ref(), Ok(&k));
        assert_eq!(AuthKey::parse(&widen_ascii(s)).as_ref(), Ok(&k));
        assert_eq!(format!("{k:?}"), "AuthKey([redacted])");
        let flow = TokenDigest::from_bytes(input.bytes);
        assert!(k.matches(&keys, &flow, &k.digest(&keys, &flow)));
    }

    // OtpCode (暗証キー).
    if let Ok(c) = OtpCode::parse(text) {
        let s = c.expose_secret();
        assert!((OtpCode::MIN_DIGITS..=OtpCode::MAX_DIGITS).contains(&s.len()));
        assert!(s.bytes().all(|b| b.is_ascii_digit()), "code digits");
        assert_eq!(OtpCode::parse(s).as_ref(), Ok(&c));
        assert_eq!(OtpCode::parse(&widen_ascii(s)).as_ref(), Ok(&c));
        assert_eq!(format!("{c:?}"), "OtpCode([redacted])");
        let ch = TokenDigest::from_bytes(input.bytes);
        assert!(c.matches(&keys, &ch, &c.digest(&keys, &ch)));
    }

    // TokenDigest as stored in text columns.
    if let Ok(d) = TokenDigest::try_from(text.to_owned()) {
        assert_eq!(
            d.to_hex(),
            text,
            "only canonical lower-case hex is accepted"
        );
        assert_eq!(String::from(d), text);
        assert_eq!(TokenDigest::from_bytes(*d.as_bytes()), d);
    } else {
        assert!(
            text.len() != 64
                || !text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "well-formed hex refused"
        );
    }
    let d = TokenDigest::from_bytes(input.bytes);
    assert_eq!(TokenDigest::try_from(d.to_hex()), Ok(d));
    assert_eq!(
        TokenDigest::try_from(d.to_hex().to_uppercase()).is_ok(),
        d.to_hex() == d.to_hex().to_uppercase()
    );

    // PasswordHashString as loaded from storage.
    match PasswordHashString::parse(text) {
        Ok(h) => {
            assert_eq!(h.as_str(), text, "the stored text is kept exactly");
            assert_eq!(PasswordHashString::parse(h.as_str()).as_ref(), Ok(&h));
            assert_eq!(
                PasswordHashString::try_from(text.to_owned()).as_ref(),
                Ok(&h)
            );
            assert_eq!(text.parse::<PasswordHashString>().as_ref(), Ok(&h));
            let dbg = format!("{h:?}");
            let mut parts = text.rsplitn(3, '$');
            let hash = parts.next().unwrap_or("");
            let salt = parts.next().unwrap_or("");
            let prefix = parts.next().unwrap_or("");
            assert_eq!(dbg, format!("PasswordHashString(\"{prefix}$…\")"));
            assert!(
                !dbg.contains(&format!("{salt}${hash}")),
                "Debug shows the salt and hash"
            );
        }
        Err(e) => assert_eq!(e.code(), "password_hash.malformed_stored_hash"),
    }

    // Generated tokens parse back to themselves.
    let mut rng = StdRng::seed_from_u64(input.seed);
    let t = RegistrationLinkToken::generate(&mut rng);
    assert_eq!(
        RegistrationLinkToken::parse(t.expose_secret()).as_ref(),
        Ok(&t)
    );
    let h = FlowHandle::generate(&mut rng);
    assert_eq!(
        FlowHandle::parse(&format!(" {} ", h.expose_secret())).as_ref(),
        Ok(&h)
    );
    let k = AuthKey::generate(&mut rng, usize::from(input.len));
    let want = usize::from(input.len).clamp(AuthKey::MIN_LEN, AuthKey::MAX_LEN);
    assert_eq!(k.expose_secret().len(), want);
    assert_eq!(AuthKey::parse(k.expose_secret()).as_ref(), Ok(&k));
    let c = OtpCode::generate(&mut rng, usize::from(input.len));
    let want = usize::from(input.len).clamp(OtpCode::MIN_DIGITS, OtpCode::MAX_DIGITS);
    assert_eq!(c.expose_secret().len(), want);
    assert_eq!(OtpCode::parse(c.expose_secret()).as_ref(), Ok(&c));
});
