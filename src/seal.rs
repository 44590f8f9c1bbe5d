//! Sealing: secrets the store must be able to give back, encrypted under a key the
//! host supplies.
//!
//! The store keeps digests of the secrets it only has to recognise (links, handles,
//! 暗証キー: SEC-03). A few it must hand back: a mail waiting in the outbox carries its
//! link or 暗証キー until it is delivered, and an authenticator app's shared secret is
//! needed at every login. Those are sealed — XChaCha20-Poly1305 with a random 192-bit
//! nonce (no nonce bookkeeping, no reuse risk at any volume) — under a key derived from
//! the host's secret for one purpose only, and bound by associated data to the record
//! they belong to. A database snapshot therefore holds no usable secret, and a sealed
//! value copied into another record, or used for another purpose, does not open.
//!
//! # Keys and rotation
//!
//! [`SealKeyring`] is the current key, which seals, and previous keys, which still open.
//! Unlike digest keys, a seal key may have to open what it sealed long ago (an
//! authenticator secret lives as long as its enrollment): keep a previous seal key until
//! nothing sealed under it remains. Each sealed value names the key (by its one-byte
//! identifier) that sealed it.
//!
//! When the host gives no seal key, the portal derives one from its digest keys (a
//! different key for each purpose, so neither can stand in for the other): enough for
//! the outbox, whose mails live a day at most. Hosts that enrol authenticator apps set
//! their own with [`PortalBuilder::seal_keys`](crate::portal::PortalBuilder::seal_keys).
//!
//! # Format
//!
//! `[format = 1][key id][nonce: 24 bytes][ciphertext][tag: 16 bytes]`, stored as bytes
//! (SQL) or base64 text (inside JSON).

use std::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::token::WeakKey;

/// The first byte of every sealed value.
const FORMAT: u8 = 1;
/// Bytes of nonce (XChaCha20).
const NONCE_LEN: usize = 24;
/// Bytes of authentication tag (Poly1305).
const TAG_LEN: usize = 16;
/// Format byte, key id, nonce.
const HEADER_LEN: usize = 2 + NONCE_LEN;

/// What a sealed value is for. Each purpose seals under its own key, derived from the
/// host's, and names itself in the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealPurpose {
    /// A mail waiting in the store's outbox (its recipient, wording, link or 暗証キー).
    OutboxMail,
    /// The shared secret of an authenticator app (TOTP).
    TotpSecret,
    /// The handle of the code screen the last L1 opened, kept on the account for the
    /// repeat window ([`RecentLogin`](crate::model::RecentLogin)).
    RecentLogin,
}

impl SealPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            SealPurpose::OutboxMail => b"kenpo-auth/v1/seal/outbox-mail",
            SealPurpose::TotpSecret => b"kenpo-auth/v1/seal/totp-secret",
            SealPurpose::RecentLogin => b"kenpo-auth/v1/seal/recent-login",
        }
    }
}

/// A host secret key with an identifier for rotation: at least
/// [`KeyMaterial::MIN_LEN`] bytes, wiped when dropped, never printed. The one type under
/// [`SealKey`] and [`DigestKey`](crate::token::DigestKey).
pub(crate) struct KeyMaterial {
    pub(crate) id: u8,
    key: Zeroizing<Vec<u8>>,
}

crate::redact::debug_redacted!(KeyMaterial { id, key });

impl KeyMaterial {
    /// Minimum key length: 32 bytes, the HMAC-SHA-256 block-size guidance.
    pub(crate) const MIN_LEN: usize = 32;

    /// `key` taken over (wiped when dropped), or refused when shorter than
    /// [`MIN_LEN`](Self::MIN_LEN).
    pub(crate) fn new(id: u8, key: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        let key = Zeroizing::new(key.into());
        if key.len() < Self::MIN_LEN {
            return Err(WeakKey { len: key.len() });
        }
        Ok(KeyMaterial { id, key })
    }

    /// HMAC-SHA-256 of the concatenated `parts` under this key.
    pub(crate) fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(&self.key, parts)
    }
}

/// One of the host's seal keys, with an identifier for rotation.
#[derive(Debug)]
pub struct SealKey(KeyMaterial);

impl SealKey {
    /// Minimum key length: 32 bytes.
    pub const MIN_LEN: usize = KeyMaterial::MIN_LEN;

    /// Wraps a key loaded from the host's secret store — never from the database the
    /// sealed values live in.
    pub fn new(id: u8, key: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        KeyMaterial::new(id, key).map(SealKey)
    }

    /// The key's identifier.
    pub fn id(&self) -> u8 {
        self.0.id
    }

    /// The cipher for one purpose: HMAC-SHA-256 of the purpose's label under this key.
    fn cipher(&self, purpose: SealPurpose) -> XChaCha20Poly1305 {
        let sub = Zeroizing::new(self.0.mac(&[purpose.label()]));
        XChaCha20Poly1305::new(&Key::from(*sub))
    }
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) else {
        // HMAC accepts keys of every length; the trait is fallible only for other MACs.
        return [0; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The host's seal keys: the current one, which seals, and previous ones, which still
/// open what they sealed.
#[derive(Debug)]
pub struct SealKeyring {
    current: SealKey,
    previous: Vec<SealKey>,
}

impl SealKeyring {
    /// A keyring with one key.
    pub fn new(current: SealKey) -> Self {
        SealKeyring {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a retired key that still opens what it sealed. Its identifier must differ
    /// from the current key's.
    pub fn with_previous(mut self, key: SealKey) -> Self {
        self.previous.push(key);
        self
    }

    /// A keyring from key material derived from the portal's digest keys
    /// (`DigestKeyring::seal_material`), one seal key per digest key, with the same
    /// identifiers.
    pub(crate) fn derived(keys: impl IntoIterator<Item = (u8, [u8; 32])>) -> Option<Self> {
        // Every derived key is 32 bytes; were one ever refused, no keyring (the builder
        // then asks for seal keys) rather than one whose current key moved.
        let derived: Option<Vec<SealKey>> = keys
            .into_iter()
            .map(|(id, material)| SealKey::new(id, material.to_vec()).ok())
            .collect();
        let mut derived = derived?.into_iter();
        let current = derived.next()?;
        Some(SealKeyring {
            current,
            previous: derived.collect(),
        })
    }

    /// Seals `plaintext` for `purpose`, bound to `context` (the record it belongs to):
    /// it opens only with the same purpose and context.
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        purpose: SealPurpose,
        context: &[u8],
        plaintext: &[u8],
        rng: &mut R,
    ) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let aad = associated_data(purpose, self.current.id(), context);
        let sealed = self.current.cipher(purpose).encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        );
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT);
        out.push(self.current.id());
        out.extend_from_slice(&nonce);
        // Encryption fails only for messages over 256 GiB; an empty body would not open,
        // so the failure cannot pass unnoticed.
        out.extend_from_slice(&sealed.unwrap_or_default());
        Sealed(out)
    }

    /// Opens what [`seal`](Self::seal) sealed for `purpose` and `context`, under
    /// whichever accepted key sealed it.
    pub fn open(
        &self,
        purpose: SealPurpose,
        context: &[u8],
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let bytes = sealed.0.as_slice();
        let (Some(&FORMAT), Some(&key_id)) = (bytes.first(), bytes.get(1)) else {
            return Err(SealError::Malformed);
        };
        let (Some(nonce), Some(body)) = (bytes.get(2..HEADER_LEN), bytes.get(HEADER_LEN..)) else {
            return Err(SealError::Malformed);
        };
        let nonce = XNonce::try_from(nonce).map_err(|_| SealError::Malformed)?;
        if body.len() < TAG_LEN {
            return Err(SealError::Malformed);
        }
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id() == key_id)
            .ok_or(SealError::UnknownKey(key_id))?;
        let aad = associated_data(purpose, key_id, context);
        key.cipher(purpose)
            .decrypt(
                &nonce,
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Inauthentic)
    }
}

/// The associated data of one sealed value: format, purpose, key and context, each
/// length-prefixed so no two different triples give the same bytes.
fn associated_data(purpose: SealPurpose, key_id: u8, context: &[u8]) -> Vec<u8> {
    let label = purpose.label();
    let mut aad = Vec::with_capacity(2 + 16 + label.len() + context.len());
    aad.push(FORMAT);
    aad.push(key_id);
    aad.extend_from_slice(&(label.len() as u64).to_be_bytes());
    aad.extend_from_slice(label);
    aad.extend_from_slice(&(context.len() as u64).to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

/// A sealed value as the store keeps it. Its `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps bytes read back from a store (checked when opened).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Sealed(bytes)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed([{} bytes])", self.0.len())
    }
}

impl From<Sealed> for String {
    fn from(s: Sealed) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(s.0)
    }
}

impl TryFrom<String> for Sealed {
    type Error = SealError;

    fn try_from(s: String) -> Result<Self, SealError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(s)
            .map(Sealed)
            .map_err(|_| SealError::Malformed)
    }
}

/// Why a sealed value did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Not a sealed value of this format (truncated or not ours).
    #[error("sealed value is malformed")]
    Malformed,
    /// Sealed under a key the keyring no longer holds.
    #[error("sealed under key {0}, which the keyring does not hold")]
    UnknownKey(u8),
    /// The key is right but the value was altered, or it belongs to another record or
    /// purpose.
    #[error("sealed value failed authentication")]
    Inauthentic,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: u8, byte: u8) -> SealKeyring {
        SealKeyring::new(SealKey::new(id, vec![byte; 32]).expect("32 bytes"))
    }

    #[test]
    fn sealed_values_open_for_their_purpose_and_record_only() {
        let keys = ring(1, 7);
        let sealed = keys.seal(
            SealPurpose::OutboxMail,
            b"mail-1",
            b"code 123456",
            &mut rand::rng(),
        );
        let opened = keys.open(SealPurpose::OutboxMail, b"mail-1", &sealed);
        assert_eq!(
            opened.as_deref().map(Vec::as_slice),
            Ok(&b"code 123456"[..])
        );
        assert_eq!(
            keys.open(SealPurpose::OutboxMail, b"mail-2", &sealed),
            Err(SealError::Inauthentic)
        );
        assert_eq!(
            keys.open(SealPurpose::TotpSecret, b"mail-1", &sealed),
            Err(SealError::Inauthentic)
        );
    }

    #[test]
    fn sec_03_the_stored_bytes_hold_no_plaintext() {
        let keys = ring(1, 7);
        let secret = b"https://portal.example.jp/r?t=AAAAAAAAAAAAAAAAAAAAAAAA";
        let sealed = keys.seal(SealPurpose::OutboxMail, b"m", secret, &mut rand::rng());
        assert!(
            !sealed
                .as_bytes()
                .windows(8)
                .any(|w| secret.windows(8).any(|s| s == w))
        );
        // Two seals of the same text differ (random nonce).
        let again = keys.seal(SealPurpose::OutboxMail, b"m", secret, &mut rand::rng());
        assert_ne!(sealed, again);
    }

    #[test]
    fn a_flipped_bit_or_a_cut_value_does_not_open() {
        let keys = ring(1, 7);
        let sealed = keys.seal(SealPurpose::OutboxMail, b"m", b"hello", &mut rand::rng());
        for i in 0..sealed.as_bytes().len() {
            let mut bytes = sealed.as_bytes().to_vec();
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 1;
            }
            assert!(
                keys.open(SealPurpose::OutboxMail, b"m", &Sealed(bytes))
                    .is_err()
            );
        }
        for len in 0..sealed.as_bytes().len() {
            let cut = Sealed(sealed.as_bytes().get(..len).unwrap_or_default().to_vec());
            assert!(keys.open(SealPurpose::OutboxMail, b"m", &cut).is_err());
        }
    }

    #[test]
    fn rotation_keeps_old_values_open_and_seals_under_the_new_key() {
        let old = ring(1, 7);
        let sealed_before = old.seal(SealPurpose::TotpSecret, b"a", b"secret", &mut rand::rng());
        let rotated = SealKeyring::new(SealKey::new(2, vec![9; 32]).expect("32 bytes"))
            .with_previous(SealKey::new(1, vec![7; 32]).expect("32 bytes"));
        assert!(
            rotated
                .open(SealPurpose::TotpSecret, b"a", &sealed_before)
                .is_ok()
        );
        let sealed_after = rotated.seal(SealPurpose::TotpSecret, b"a", b"secret", &mut rand::rng());
        assert_eq!(sealed_after.as_bytes().get(1), Some(&2));
        assert_eq!(
            old.open(SealPurpose::TotpSecret, b"a", &sealed_after),
            Err(SealError::UnknownKey(2))
        );
    }

    #[test]
    fn serde_round_trips_as_text() {
        let keys = ring(1, 7);
        let sealed = keys.seal(SealPurpose::OutboxMail, b"m", b"x", &mut rand::rng());
        let json = serde_json::to_string(&sealed).expect("serialises");
        let back: Sealed = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, sealed);
        assert!(format!("{sealed:?}").starts_with("Sealed(["));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            SealKey::new(1, vec![0; 31]).err(),
            Some(WeakKey { len: 31 })
        );
    }
}
