//! Typed secrets: link tokens, on-screen keys, one-time codes, bearer handles, and the
//! keyed digests that stores keep instead of them.
//!
//! Every secret has its own newtype, so a registration link token can never be passed
//! where a password-reset token is expected. Each has a private field, a constructor that
//! draws from a [`CryptoRng`] (SEC-01), a `Debug` that prints `[redacted]`, and an
//! `expose_secret()` accessor for the one place that must show it (a mail, a screen, a
//! cookie).
//!
//! Stores never see a secret: they see a [`TokenDigest`], an HMAC-SHA-256 keyed by the
//! host's secret key, with the secret's [`Purpose`] (and, for codes, the challenge they
//! belong to) mixed in as domain separation (SEC-03, SEC-04). Digests compare in constant
//! time (SEC-05).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::seal::KeyMaterial;

use crate::error::Rejection;

/// Random bytes in every link token and bearer handle: 256 bits (SEC-02 asks ≥ 128).
pub const TOKEN_BYTES: usize = 32;

/// Length of a link token or handle in URL-safe base64 without padding.
pub const TOKEN_CHARS: usize = 43;

/// Alphabet of the on-screen 認証キー and of temporary passwords: 32 symbols without
/// `0`/`O` and `1`/`I`, so a member copying a key by hand from a screen to a phone does
/// not trip over look-alikes. 32 symbols = 5 bits per character.
pub const UNAMBIGUOUS_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const KEY_ALPHABET: &[u8; 32] = UNAMBIGUOUS_ALPHABET;
/// Alphabet of the 暗証キー and the 確認コード.
const DIGITS: &[u8; 10] = b"0123456789";

/// Draws a uniform index in `0..n` (1 ≤ n ≤ 256) from `rng` by rejection sampling:
/// bytes at or above the largest multiple of `n` that fits in 256 are drawn again, so
/// every index is exactly equally likely (SEC-01). The crate's one copy (generated
/// secrets here, generated login IDs in [`crate::domain::LoginId`]). An `n` outside
/// `1..=256` is a bug (debug builds assert); release builds clamp it rather than panic.
pub(crate) fn uniform_index<R: CryptoRng + ?Sized>(rng: &mut R, n: usize) -> usize {
    debug_assert!((1..=256).contains(&n));
    let n = n.clamp(1, 256);
    // Largest multiple of n that fits in a byte's range; bytes at or above it are redrawn.
    let zone = 256 - (256 % n);
    loop {
        let mut byte = [0u8; 1];
        rng.fill_bytes(&mut byte);
        let b = usize::from(byte[0]);
        if b < zone {
            return b % n;
        }
    }
}

/// Draws `len` symbols uniformly from `alphabet`.
fn random_string<R: CryptoRng + ?Sized>(
    rng: &mut R,
    alphabet: &[u8],
    len: usize,
) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(len));
    while out.len() < len {
        // `uniform_index` is below `alphabet.len()`, so `get` always finds a symbol; an
        // empty alphabet would draw nothing rather than panic.
        match alphabet.get(uniform_index(rng, alphabet.len())) {
            Some(&b) => out.push(char::from(b)),
            None => break,
        }
    }
    out
}

/// What a secret is for. Mixed into its digest, so the digest of a registration token
/// can never match the digest of a reset token with the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Purpose {
    /// Link 1 of registration (R1 → R2).
    RegistrationLink,
    /// Link 2 of registration (R3 → R4).
    VerificationLink,
    /// The password-reset link.
    PasswordResetLink,
    /// The link that confirms a new e-mail address.
    EmailChangeLink,
    /// The handle binding a registration or reset flow to one browser.
    FlowHandle,
    /// The handle of one 暗証キー challenge (one code screen).
    OtpChallenge,
    /// The 暗証キー itself, bound to its challenge.
    OtpCode,
    /// The on-screen 認証キー, bound to its flow.
    AuthKey,
    /// A リカバリーコード, bound to its account and set.
    RecoveryCode,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::RegistrationLink => b"kenpo-auth/v1/registration-link",
            Purpose::VerificationLink => b"kenpo-auth/v1/verification-link",
            Purpose::PasswordResetLink => b"kenpo-auth/v1/password-reset-link",
            Purpose::EmailChangeLink => b"kenpo-auth/v1/email-change-link",
            Purpose::FlowHandle => b"kenpo-auth/v1/flow-handle",
            Purpose::OtpChallenge => b"kenpo-auth/v1/otp-challenge",
            Purpose::OtpCode => b"kenpo-auth/v1/otp-code",
            Purpose::AuthKey => b"kenpo-auth/v1/auth-key",
            Purpose::RecoveryCode => b"kenpo-auth/v1/recovery-code",
        }
    }
}

/// Keyed digest of a secret: what a store keeps and looks up by.
///
/// Equality is constant-time (SEC-05). `Hash` is ordinary: hashing a digest for a map
/// lookup reveals nothing useful, because finding a digest's neighbours does not help
/// guess a 256-bit token.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenDigest([u8; 32]);

impl std::hash::Hash for TokenDigest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl TokenDigest {
    /// The raw digest bytes, for stores that index a binary column.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a digest read back from a binary column.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        TokenDigest(bytes)
    }

    /// Lower-case hex, for text columns and map keys.
    pub fn to_hex(&self) -> String {
        crate::model::hex(&self.0)
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for TokenDigest {}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but a short prefix is all a log reader needs.
        write!(f, "TokenDigest({}…)", &self.to_hex()[..8])
    }
}

crate::domain::text_conversions! { TokenDigest, MalformedDigest;
    /// Reads a stored digest: exactly 64 lower-case hex characters.
    TryFrom<String> |s| crate::model::unhex(&s, false).map(TokenDigest).ok_or(MalformedDigest);
    /// Lower-case hex, as stored.
    Into<String> |d| d.to_hex();
}

/// A stored digest was not 64 lower-case hex characters (a corrupted store row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed token digest in storage")]
pub struct MalformedDigest;

/// One HMAC key of the host's, with an identifier for rotation.
#[derive(Debug)]
pub struct DigestKey(KeyMaterial);

impl DigestKey {
    /// Minimum key length: 32 bytes, the HMAC-SHA-256 block-size guidance.
    pub const MIN_LEN: usize = KeyMaterial::MIN_LEN;

    /// Wraps a key loaded from the host's secret store (never from the database the
    /// digests live in: a leaked database must not be enough to test guesses).
    pub fn new(id: u8, key: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        KeyMaterial::new(id, key).map(DigestKey)
    }

    /// The key's identifier.
    pub fn id(&self) -> u8 {
        self.0.id
    }

    fn digest(&self, purpose: Purpose, context: &[u8], secret: &[u8]) -> TokenDigest {
        let context_len = (context.len() as u64).to_be_bytes();
        let parts = [purpose.label(), &[0], &context_len, context, secret];
        TokenDigest(self.0.mac(&parts))
    }
}

/// A digest key shorter than [`DigestKey::MIN_LEN`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("digest key is {len} bytes; at least 32 are required")]
pub struct WeakKey {
    /// Length that was given.
    pub len: usize,
}

/// The host's digest keys: the current one, which makes every new digest, and previous
/// ones, still accepted so that rotating the key does not kill links already mailed.
#[derive(Debug)]
pub struct DigestKeyring {
    current: DigestKey,
    previous: Vec<DigestKey>,
}

impl DigestKeyring {
    /// A keyring with one key.
    pub fn new(current: DigestKey) -> Self {
        DigestKeyring {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a retired key that is still accepted when looking up or comparing digests.
    /// Drop it once the longest lifespan (24 h at most) has passed since rotation.
    pub fn with_previous(mut self, key: DigestKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The digest of `secret` under the current key. `context` binds the secret to
    /// something else (an OTP to its challenge, a 認証キー to its flow); pass `&[]` for
    /// link tokens and handles.
    pub fn digest(&self, purpose: Purpose, context: &[u8], secret: &[u8]) -> TokenDigest {
        self.current.digest(purpose, context, secret)
    }

    /// Digests under every accepted key, current first: look each up in turn.
    pub fn candidates(&self, purpose: Purpose, context: &[u8], secret: &[u8]) -> Vec<TokenDigest> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|k| k.digest(purpose, context, secret))
            .collect()
    }

    /// Key material for [`SealKeyring`](crate::seal::SealKeyring)s derived from these
    /// keys (a host that supplies no seal key): one per key, current first, each an HMAC
    /// of a fixed label under the key, so it reveals nothing about the key itself.
    pub(crate) fn seal_material(&self) -> Vec<(u8, [u8; 32])> {
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .map(|k| {
                let material = k.0.mac(&[b"kenpo-auth/v1/seal-key-from-digest-key"]);
                (k.id(), material)
            })
            .collect()
    }

    /// Whether `secret` matches `stored` under any accepted key, compared in constant
    /// time for each key (SEC-05).
    pub fn matches(
        &self,
        purpose: Purpose,
        context: &[u8],
        secret: &[u8],
        stored: &TokenDigest,
    ) -> bool {
        let mut hit = subtle::Choice::from(0u8);
        for key in std::iter::once(&self.current).chain(self.previous.iter()) {
            hit |= key.digest(purpose, context, secret).0.ct_eq(&stored.0);
        }
        hit.into()
    }
}

/// A string from a URL or form that is not a token of ours (wrong length or alphabet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a well-formed token")]
pub struct MalformedToken;

mod sealed {
    pub trait Sealed {}
}

/// A bearer secret whose keyed digest finds its flow: a mailed link, a flow handle or a
/// 暗証キー screen's handle. Sealed: only this crate's token types are bearers.
pub trait Bearer: sealed::Sealed {
    /// Digests under every accepted key (current first), for lookups during key
    /// rotation.
    fn candidates(&self, keys: &DigestKeyring) -> Vec<TokenDigest>;
}

/// A link mailed to a member (registration links 1 and 2, password reset, e-mail
/// change): a bearer token whose digest finds its flow. Sealed; one type per purpose,
/// so a link of one journey cannot be handed to another's step:
///
/// ```compile_fail
/// # async fn f(portal: &kenpo_auth::Portal, reset: &kenpo_auth::token::PasswordResetLinkToken) {
/// // A password-reset link where link 1 of registration is wanted does not compile.
/// portal.open_registration_link(reset).await;
/// # }
/// ```
pub trait MailedLink: Bearer {
    /// A fresh link and the digest its flow keeps.
    fn issue<R: CryptoRng + ?Sized>(keys: &DigestKeyring, rng: &mut R) -> (Self, TokenDigest)
    where
        Self: Sized;
}

macro_rules! mailed_link {
    ($($name:ident),*) => {$(
        impl MailedLink for $name {
            fn issue<R: CryptoRng + ?Sized>(keys: &DigestKeyring, rng: &mut R) -> (Self, TokenDigest) {
                let token = $name::generate(rng);
                let digest = token.digest(keys);
                (token, digest)
            }
        }
    )*};
}

/// `digest` and `matches` for a secret the member types, bound to what it was issued
/// for: the same text issued for two flows or challenges digests differently (SEC-04).
macro_rules! bound_digest {
    ($name:ident, $purpose:expr, $bound:literal) => {
        impl $name {
            #[doc = concat!("The digest a store keeps, bound to ", $bound, ".")]
            pub fn digest(&self, keys: &DigestKeyring, bound: &TokenDigest) -> TokenDigest {
                keys.digest($purpose, bound.as_bytes(), self.0.as_bytes())
            }

            #[doc = concat!("Whether this is the one stored for ", $bound, ", in constant time.")]
            pub fn matches(
                &self,
                keys: &DigestKeyring,
                bound: &TokenDigest,
                stored: &TokenDigest,
            ) -> bool {
                keys.matches($purpose, bound.as_bytes(), self.0.as_bytes(), stored)
            }
        }
    };
}

/// What a member retyped by hand: trimmed like every typed value (whitespace and the
/// zero-width characters, DOM-4) and
/// with full-width letters and digits folded to ASCII.
fn retyped(s: &str) -> Zeroizing<String> {
    Zeroizing::new(
        crate::domain::normalize::trim(s)
            .chars()
            .map(fold_fullwidth_ascii)
            .collect(),
    )
}

/// A short code the member types back (認証キー, 暗証キー, 確認コード, リカバリーコード),
/// read the same way for each: [`retyped`], the separators in `drop` removed, letters
/// upper-cased; refused unless it then has a length in `len` and only symbols of
/// `alphabet`.
fn typed_code(
    s: &str,
    alphabet: &[u8],
    len: std::ops::RangeInclusive<usize>,
    drop: &[char],
) -> Result<Zeroizing<String>, MalformedToken> {
    let folded: Zeroizing<String> = Zeroizing::new(
        retyped(s)
            .chars()
            .filter(|c| !drop.contains(c))
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if !len.contains(&folded.len()) || !folded.bytes().all(|b| alphabet.contains(&b)) {
        return Err(MalformedToken);
    }
    Ok(folded)
}

/// Equality of two secrets' text in time that depends only on their lengths.
fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

macro_rules! secret_text_impls {
    ($name:ident, $rejection:expr) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            /// Constant-time in the contents (SEC-02).
            fn eq(&self, other: &Self) -> bool {
                ct_eq(&self.0, &other.0)
            }
        }

        impl Eq for $name {}

        impl std::str::FromStr for $name {
            type Err = crate::error::Rejection;
            /// Parses what came back from the member, with the error a host answers
            #[doc = concat!("when it is malformed: [`", stringify!($rejection), "`](crate::error::", stringify!($rejection), ").")]
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).map_err(|_| $rejection)
            }
        }
    };
}

macro_rules! bearer_token {
    ($(#[$doc:meta])* $name:ident, $purpose:expr, $rejection:expr) => {
        $(#[$doc])*
        ///
        /// The text is wiped from memory when the value is dropped; equality is
        /// constant-time.
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        secret_text_impls!($name, $rejection);

        impl $name {
            /// Draws a fresh token: 256 bits from `rng`, URL-safe base64 without padding.
            pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
                rng.fill_bytes(bytes.as_mut_slice());
                $name(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice())))
            }

            /// Accepts a token as it came back from a URL, form field or cookie. Only
            /// checks its shape; whether it is live is for the store to say.
            pub fn parse(s: &str) -> Result<Self, MalformedToken> {
                let s = s.trim();
                if s.len() != TOKEN_CHARS {
                    return Err(MalformedToken);
                }
                match URL_SAFE_NO_PAD.decode(s) {
                    Ok(bytes) if bytes.len() == TOKEN_BYTES => Ok($name(Zeroizing::new(s.to_owned()))),
                    _ => Err(MalformedToken),
                }
            }

            /// The token's text, to put in a link, a cookie or a hidden field.
            ///
            /// # Security Warning
            ///
            /// This is a bearer secret: whoever holds it can take the step it opens.
            /// Never log it, never put it in an error message, and send it only to the
            /// member it was issued to.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// The keyed digest a store keeps for this token.
            pub fn digest(&self, keys: &DigestKeyring) -> TokenDigest {
                keys.digest($purpose, &[], self.0.as_bytes())
            }

            /// Digests under every accepted key, for lookups during key rotation.
            pub fn digest_candidates(&self, keys: &DigestKeyring) -> Vec<TokenDigest> {
                keys.candidates($purpose, &[], self.0.as_bytes())
            }
        }

                impl sealed::Sealed for $name {}

        impl Bearer for $name {
            fn candidates(&self, keys: &DigestKeyring) -> Vec<TokenDigest> {
                self.digest_candidates(keys)
            }
        }

    };
}

bearer_token!(
    /// Link 1 of registration, mailed in 「利用登録手続きのご案内」 (R1); valid 3 h by
    /// default, single use, consumed by the POST of 【本人確認ページへ】.
    RegistrationLinkToken,
    Purpose::RegistrationLink,
    Rejection::LinkInvalid
);
bearer_token!(
    /// Link 2 of registration, mailed in 「本人確認完了のご案内」 (R3); valid 30 min, opened
    /// together with the on-screen 認証キー.
    VerificationLinkToken,
    Purpose::VerificationLink,
    Rejection::LinkInvalid
);
bearer_token!(
    /// The password-reset link (30 min, single use).
    PasswordResetLinkToken,
    Purpose::PasswordResetLink,
    Rejection::LinkInvalid
);
bearer_token!(
    /// The link that confirms a new e-mail address (30 min, single use).
    EmailChangeLinkToken,
    Purpose::EmailChangeLink,
    Rejection::LinkInvalid
);
bearer_token!(
    /// Binds a registration or recovery flow to one browser. The host keeps it in a
    /// cookie or hidden field and hands it back on each step; the store keeps its digest.
    FlowHandle,
    Purpose::FlowHandle,
    Rejection::WrongStep
);
bearer_token!(
    /// Names one 暗証キー challenge — one code screen. The 暗証キー is bound to it, so a
    /// code mailed for one login attempt cannot finish another (SEC-27).
    OtpChallengeId,
    Purpose::OtpChallenge,
    Rejection::OtpInvalid
);

impl FlowHandle {
    /// A fresh handle and the digest its flow keeps: what every step that binds a flow
    /// to a browser stores.
    pub fn issue<R: CryptoRng + ?Sized>(keys: &DigestKeyring, rng: &mut R) -> (Self, TokenDigest) {
        let handle = FlowHandle::generate(rng);
        let digest = handle.digest(keys);
        (handle, digest)
    }
}

mailed_link!(
    RegistrationLinkToken,
    VerificationLinkToken,
    PasswordResetLinkToken,
    EmailChangeLinkToken
);

/// The 認証キー shown on screen once at R3 and typed back at R4 with link 2 (SEC-11).
///
/// Its characters come from a confusable-free alphabet; parsing folds case and
/// full-width forms, because members retype it by hand.
#[derive(Clone)]
pub struct AuthKey(Zeroizing<String>);

secret_text_impls!(AuthKey, Rejection::AuthKeyIncorrect);

impl AuthKey {
    /// Fewest characters a policy may ask for: 4 × 5 bits = 20 bits (SEC-11).
    pub const MIN_LEN: usize = 4;
    /// Most characters a policy may ask for.
    pub const MAX_LEN: usize = 16;

    /// Draws a fresh key of `len` characters (clamped to `MIN_LEN..=MAX_LEN`).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, len: usize) -> Self {
        AuthKey(random_string(
            rng,
            KEY_ALPHABET,
            len.clamp(Self::MIN_LEN, Self::MAX_LEN),
        ))
    }

    /// Reads what the member typed: trims, folds full-width letters and digits and lower
    /// case. Any other character is refused.
    pub fn parse(s: &str) -> Result<Self, MalformedToken> {
        typed_code(s, KEY_ALPHABET, Self::MIN_LEN..=Self::MAX_LEN, &[]).map(AuthKey)
    }

    /// The key's text, to show once on the R3 screen.
    ///
    /// # Security Warning
    ///
    /// Show it to the member on the screen that verified their identity, and nowhere
    /// else: never in a mail (it must travel on a different channel from link 2), a log
    /// or an error.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

bound_digest!(
    AuthKey,
    Purpose::AuthKey,
    "the flow (its link 2) it was issued for"
);

/// The 暗証キー mailed at L1 and typed at L2: decimal digits, 6 by default (SEC-28).
#[derive(Clone)]
pub struct OtpCode(Zeroizing<String>);

secret_text_impls!(OtpCode, Rejection::OtpIncorrect);

impl OtpCode {
    /// Fewest digits any policy may ask for. The strict policy asks for 6 (20 bits,
    /// SEC-28); fewer needs an explicit deviation.
    pub const MIN_DIGITS: usize = 4;
    /// Most digits a policy may ask for.
    pub const MAX_DIGITS: usize = 10;

    /// Draws a fresh code of `digits` decimal digits (clamped to 4..=10), each digit by
    /// rejection sampling so that no digit is likelier than another (SEC-01).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R, digits: usize) -> Self {
        OtpCode(random_string(
            rng,
            DIGITS,
            digits.clamp(Self::MIN_DIGITS, Self::MAX_DIGITS),
        ))
    }

    /// Reads what the member typed: trims, folds full-width digits (０–９). Any other
    /// character, or a length outside 4..=10, is refused.
    pub fn parse(s: &str) -> Result<Self, MalformedToken> {
        typed_code(s, DIGITS, Self::MIN_DIGITS..=Self::MAX_DIGITS, &[]).map(OtpCode)
    }

    /// The code's digits, for the 「暗証キーのご案内」 mail.
    ///
    /// # Security Warning
    ///
    /// Put it in the mail to the account's registered address and nowhere else: never a
    /// log, a screen, an error or an audit event (SEC-04).
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

bound_digest!(
    OtpCode,
    Purpose::OtpCode,
    "the challenge (the code screen) it was issued for"
);

/// A 確認コード from the member's 認証アプリ (authenticator app, RFC 6238): six digits
/// that change every 30 seconds. Checked against the sealed shared secret, accepted once
/// (a time step is never accepted twice).
#[derive(Clone)]
pub struct TotpCode(Zeroizing<String>);

secret_text_impls!(TotpCode, Rejection::SecondFactorIncorrect);

impl TotpCode {
    /// Digits in a code (what every authenticator app shows by default).
    pub const DIGITS: usize = 6;

    /// Reads what the member typed: trims, drops the space some apps show in the middle
    /// (`123 456`), folds full-width digits. Anything but six digits is refused.
    pub fn parse(s: &str) -> Result<Self, MalformedToken> {
        typed_code(s, DIGITS, Self::DIGITS..=Self::DIGITS, &[' ']).map(TotpCode)
    }

    /// Wraps the digits an authenticator computed (tests, the example's demo helper).
    pub(crate) fn from_digits(digits: Zeroizing<String>) -> Self {
        TotpCode(digits)
    }

    /// The code's digits.
    ///
    /// # Security Warning
    ///
    /// A live authentication code: never log it or put it in an error or audit event.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// A リカバリーコード: one of the ten single-use codes shown once when a second factor is
/// set up, typed instead of the 確認コード or パスキー when the member has lost them.
/// Twelve characters from the confusable-free alphabet (60 bits), shown as
/// `ABCD-EFGH-JKLM`; the store keeps only a keyed digest bound to the account.
#[derive(Clone)]
pub struct RecoveryCode(Zeroizing<String>);

secret_text_impls!(RecoveryCode, Rejection::SecondFactorIncorrect);

impl RecoveryCode {
    /// Characters in a code (without the hyphens).
    pub const LEN: usize = 12;

    /// Draws a fresh code.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        RecoveryCode(random_string(rng, KEY_ALPHABET, Self::LEN))
    }

    /// Reads what the member typed: trims, drops hyphens and spaces, folds full-width
    /// letters and digits and lower case. Anything else is refused.
    pub fn parse(s: &str) -> Result<Self, MalformedToken> {
        let separators = ['-', ' ', 'ー', '－'];
        typed_code(s, KEY_ALPHABET, Self::LEN..=Self::LEN, &separators).map(RecoveryCode)
    }

    /// The code as shown to the member once: `ABCD-EFGH-JKLM`.
    ///
    /// # Security Warning
    ///
    /// Show it on the screen that set up the second factor, once, and nowhere else:
    /// never in a mail, a log or an error. Whoever holds it can stand in for the
    /// member's second factor.
    pub fn expose_secret(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(Self::LEN + 2));
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }
}

bound_digest!(
    RecoveryCode,
    Purpose::RecoveryCode,
    "the account (and set) it was issued for"
);

/// A temporary password an insurer issues for 事前登録 (SEC-41): 16 characters from the
/// confusable-free alphabet (80 bits), never derived from member data. Stored as an
/// Argon2id hash like any password.
#[derive(Clone)]
pub struct TemporaryPassword(Zeroizing<String>);

impl PartialEq for TemporaryPassword {
    /// Constant-time in the contents (SEC-02).
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for TemporaryPassword {}

impl TemporaryPassword {
    /// Characters in a temporary password.
    pub const LEN: usize = 16;

    /// Draws a fresh temporary password.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        TemporaryPassword(random_string(rng, KEY_ALPHABET, Self::LEN))
    }

    /// The password, to print on the letter the insurer posts to the member.
    ///
    /// # Security Warning
    ///
    /// Hand it to the insurer's letter process only; never log or store it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TemporaryPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TemporaryPassword([redacted])")
    }
}

/// Folds full-width ASCII (U+FF01..U+FF5E) to ASCII; leaves everything else alone.
fn fold_fullwidth_ascii(c: char) -> char {
    let u = c as u32;
    if (0xFF01..=0xFF5E).contains(&u) {
        char::from_u32(u - 0xFEE0).unwrap_or(c)
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashSet;

    fn keys() -> DigestKeyring {
        DigestKeyring::new(DigestKey::new(1, [7u8; 32]).unwrap())
    }

    /// An RNG that counts the bytes asked of it, to prove generators draw from the
    /// `CryptoRng` they are given (SEC-01).
    struct CountingRng {
        inner: StdRng,
        bytes: usize,
    }
    impl rand::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.bytes += 4;
            Ok(rand::Rng::next_u32(&mut self.inner))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.bytes += 8;
            Ok(rand::Rng::next_u64(&mut self.inner))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            self.bytes += dst.len();
            rand::Rng::fill_bytes(&mut self.inner, dst);
            Ok(())
        }
    }
    impl rand::TryCryptoRng for CountingRng {}

    #[test]
    fn sec_01_every_generator_draws_from_the_given_rng() {
        let mut rng = CountingRng {
            inner: StdRng::seed_from_u64(1),
            bytes: 0,
        };
        let _ = RegistrationLinkToken::generate(&mut rng);
        assert_eq!(rng.bytes, 32);
        let before = rng.bytes;
        let _ = OtpCode::generate(&mut rng, 6);
        assert!(rng.bytes >= before + 6);
        let before = rng.bytes;
        let _ = AuthKey::generate(&mut rng, 8);
        assert!(rng.bytes >= before + 8);
        let before = rng.bytes;
        let _ = TemporaryPassword::generate(&mut rng);
        assert!(rng.bytes >= before + 16);
    }

    #[test]
    fn sec_01_otp_digits_pass_chi_square() {
        // 10^6 digits; chi-square with 9 degrees of freedom, p = 0.01 critical value 21.67.
        let mut rng = StdRng::seed_from_u64(42);
        let mut counts = [0u64; 10];
        for _ in 0..100_000 {
            let code = OtpCode::generate(&mut rng, 10);
            for b in code.expose_secret().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        let total: u64 = counts.iter().sum();
        assert_eq!(total, 1_000_000);
        let expected = total as f64 / 10.0;
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 21.67, "chi-square {chi2} over {counts:?}");
    }

    #[test]
    fn sec_01_rejection_sampling_has_no_modulo_bias() {
        // 256 % 10 = 6: plain `byte % 10` would make 0..=5 about 2.3 % likelier than 6..=9.
        // An RNG that emits every byte value equally often must give equal digit counts.
        struct Sweep(u8);
        impl rand::TryRng for Sweep {
            type Error = core::convert::Infallible;
            fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
                unreachable!()
            }
            fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
                unreachable!()
            }
            fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
                for b in dst {
                    *b = self.0;
                    self.0 = self.0.wrapping_add(1);
                }
                Ok(())
            }
        }
        impl rand::TryCryptoRng for Sweep {}
        let mut rng = Sweep(0);
        let mut counts = [0u32; 10];
        // 250 accepted draws per full sweep of 256 bytes.
        for _ in 0..2500 {
            counts[uniform_index(&mut rng, 10)] += 1;
        }
        assert!(counts.iter().all(|&c| c == 250), "{counts:?}");
    }

    #[test]
    fn sec_02_link_tokens_carry_256_bits_and_do_not_repeat() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let t = RegistrationLinkToken::generate(&mut rng);
            assert_eq!(t.expose_secret().len(), TOKEN_CHARS);
            let raw = URL_SAFE_NO_PAD.decode(t.expose_secret()).unwrap();
            assert_eq!(raw.len(), 32);
            assert!(seen.insert(t.expose_secret().to_owned()));
        }
    }

    #[test]
    fn sec_03_digest_holds_neither_the_token_nor_its_bytes() {
        let mut rng = StdRng::seed_from_u64(4);
        let t = PasswordResetLinkToken::generate(&mut rng);
        let d = t.digest(&keys());
        let stored = serde_json_like(&d);
        assert!(!stored.contains(t.expose_secret()));
        let raw = URL_SAFE_NO_PAD.decode(t.expose_secret()).unwrap();
        assert_ne!(d.as_bytes().as_slice(), raw.as_slice());
    }

    fn serde_json_like(d: &TokenDigest) -> String {
        String::from(*d)
    }

    #[test]
    fn sec_03_a_token_with_one_bit_flipped_does_not_match() {
        let mut rng = StdRng::seed_from_u64(5);
        let t = RegistrationLinkToken::generate(&mut rng);
        let mut raw = URL_SAFE_NO_PAD.decode(t.expose_secret()).unwrap();
        raw[31] ^= 1;
        let flipped = RegistrationLinkToken::parse(&URL_SAFE_NO_PAD.encode(&raw)).unwrap();
        assert_ne!(t.digest(&keys()), flipped.digest(&keys()));
    }

    #[test]
    fn sec_04_same_code_under_two_challenges_digests_differently() {
        let mut rng = StdRng::seed_from_u64(6);
        let a = OtpChallengeId::generate(&mut rng).digest(&keys());
        let b = OtpChallengeId::generate(&mut rng).digest(&keys());
        let code = OtpCode::parse("123456").unwrap();
        assert_ne!(code.digest(&keys(), &a), code.digest(&keys(), &b));
        assert!(code.matches(&keys(), &a, &code.digest(&keys(), &a)));
        assert!(!code.matches(&keys(), &b, &code.digest(&keys(), &a)));
    }

    #[test]
    fn sec_04_debug_never_prints_a_secret() {
        let mut rng = StdRng::seed_from_u64(7);
        let code = OtpCode::generate(&mut rng, 6);
        let key = AuthKey::generate(&mut rng, 8);
        let link = VerificationLinkToken::generate(&mut rng);
        let temp = TemporaryPassword::generate(&mut rng);
        for (dbg, secret) in [
            (format!("{code:?}"), code.expose_secret().to_owned()),
            (format!("{key:?}"), key.expose_secret().to_owned()),
            (format!("{link:?}"), link.expose_secret().to_owned()),
            (format!("{temp:?}"), temp.expose_secret().to_owned()),
        ] {
            assert!(dbg.contains("[redacted]"));
            assert!(!dbg.contains(&secret));
        }
    }

    #[test]
    fn purposes_separate_digests_of_the_same_bytes() {
        let mut rng = StdRng::seed_from_u64(8);
        let reg = RegistrationLinkToken::generate(&mut rng);
        let reset = PasswordResetLinkToken::parse(reg.expose_secret()).unwrap();
        assert_ne!(reg.digest(&keys()), reset.digest(&keys()));
    }

    #[test]
    fn rotated_key_still_matches_old_digests() {
        let old = DigestKeyring::new(DigestKey::new(1, [1u8; 32]).unwrap());
        let new = DigestKeyring::new(DigestKey::new(2, [2u8; 32]).unwrap())
            .with_previous(DigestKey::new(1, [1u8; 32]).unwrap());
        let mut rng = StdRng::seed_from_u64(9);
        let t = RegistrationLinkToken::generate(&mut rng);
        let stored = t.digest(&old);
        assert!(t.digest_candidates(&new).contains(&stored));
        assert_ne!(t.digest(&new), stored);
        let challenge = t.digest(&old);
        let code = OtpCode::parse("654321").unwrap();
        assert!(code.matches(&new, &challenge, &code.digest(&old, &challenge)));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            DigestKey::new(1, vec![0u8; 31]).unwrap_err(),
            WeakKey { len: 31 }
        );
    }

    #[test]
    fn sec_11_auth_key_uses_unambiguous_symbols_and_folds_what_members_type() {
        let mut rng = StdRng::seed_from_u64(10);
        for _ in 0..1000 {
            let k = AuthKey::generate(&mut rng, 8);
            assert_eq!(k.expose_secret().len(), 8);
            assert!(!k.expose_secret().contains(['0', 'O', '1', 'I']));
        }
        let k = AuthKey::parse(" ａｂｃ２３４ｘｙ ").unwrap();
        assert_eq!(k.expose_secret(), "ABC234XY");
        assert!(AuthKey::parse("ABC0").is_err());
        assert!(AuthKey::parse("").is_err());
    }

    #[test]
    fn sec_28_otp_parse_folds_fullwidth_and_refuses_other_digits() {
        assert_eq!(
            OtpCode::parse("１２３４５６").unwrap().expose_secret(),
            "123456"
        );
        assert!(OtpCode::parse("123").is_err());
        assert!(OtpCode::parse("12345678901").is_err());
        assert!(OtpCode::parse("①23456").is_err());
        assert!(OtpCode::parse("١٢٣٤٥٦").is_err());
    }

    #[test]
    fn digest_hex_round_trips_and_rejects_garbage() {
        let d = keys().digest(Purpose::FlowHandle, &[], b"x");
        assert_eq!(TokenDigest::try_from(d.to_hex()).unwrap(), d);
        assert!(TokenDigest::try_from("zz".repeat(32)).is_err());
        assert!(TokenDigest::try_from("ab".to_owned()).is_err());
        // Stored digests are lower case: an upper-case row is a corrupted one.
        assert!(TokenDigest::try_from(d.to_hex().to_uppercase()).is_err());
        assert!(TokenDigest::try_from(format!("{}00", d.to_hex())).is_err());
    }

    proptest::proptest! {
        #[test]
        fn token_parsers_never_panic(s in ".*") {
            let _ = RegistrationLinkToken::parse(&s);
            let _ = AuthKey::parse(&s);
            let _ = OtpCode::parse(&s);
            let _ = TokenDigest::try_from(s.clone());
        }

        #[test]
        fn generated_tokens_round_trip(seed in proptest::prelude::any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let t = FlowHandle::generate(&mut rng);
            proptest::prop_assert_eq!(FlowHandle::parse(t.expose_secret()).unwrap(), t);
            let k = AuthKey::generate(&mut rng, 8);
            proptest::prop_assert_eq!(AuthKey::parse(k.expose_secret()).unwrap(), k);
            let c = OtpCode::generate(&mut rng, 6);
            proptest::prop_assert_eq!(OtpCode::parse(c.expose_secret()).unwrap(), c);
        }
    }
}
