//! The second factors an account has set up (2段階認証): an authenticator app and a set
//! of リカバリーコード. Stored inside the account record (the stores keep it as JSON), so
//! every change to them is compare-and-set on the account like any other account write.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::seal::Sealed;
use crate::token::TokenDigest;

/// Which kind of second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FactorKind {
    /// 認証アプリ: codes from an authenticator app (TOTP, RFC 6238).
    Totp,
    /// リカバリーコード: single-use codes typed instead of the second factor.
    RecoveryCodes,
    /// パスキー (WebAuthn, with user verification).
    Passkey,
}

impl FactorKind {
    /// Stable identifier for logs, audit details and host routes.
    pub fn code(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::RecoveryCodes => "recovery_codes",
            FactorKind::Passkey => "passkey",
        }
    }
}

/// Every second factor of an account. Empty for accounts made before they existed
/// (`#[serde(default)]` on [`Account::factors`](super::Account::factors)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Factors {
    /// The authenticator app, when one is set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpFactor>,
    /// The current set of リカバリーコード, when one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryCodeSet>,
    /// The member's パスキー, in the order they were added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkeys: Vec<PasskeyFactor>,
}

impl Factors {
    /// Whether nothing is set up (what an account stored before factors existed reads as).
    pub fn is_empty(&self) -> bool {
        self.totp.is_none() && self.recovery.is_none() && self.passkeys.is_empty()
    }

    /// Whether the account has a factor that replaces the e-mailed 暗証キー at login
    /// (recovery codes alone do not: they stand in for a factor, they are not one).
    pub fn has_authenticator(&self) -> bool {
        self.totp.is_some() || !self.passkeys.is_empty()
    }
}

/// An authenticator app, set up by a logged-in member and confirmed with one code.
///
/// Store this server-side only: `secret` is sealed under the host's seal key
/// ([`SealPurpose::TotpSecret`](crate::seal::SealPurpose::TotpSecret)), bound to the
/// account, and never leaves the library in plain text after the setup screen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TotpFactor {
    /// The shared secret, sealed.
    pub secret: Sealed,
    /// The last time step (Unix time / 30 s) whose code was accepted: a code of this
    /// step or an earlier one is refused (no replay, RFC 6238 §5.2).
    pub last_step: u64,
    /// When it was set up.
    pub added_at: OffsetDateTime,
    /// When a code of it last logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// One パスキー of the account.
///
/// The credential (public key, counter, flags) is kept as webauthn-rs serialises its
/// `Passkey`, as text, so that accounts keep their passkeys whether or not this build has
/// the `passkeys` feature. It holds no secret: the private key never leaves the member's
/// device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PasskeyFactor {
    /// The credential ID, URL-safe Base64: what the member's device names it by, and what
    /// [`Portal::remove_passkey`](crate::Portal) takes.
    pub credential_id: String,
    /// The name the member chose (「iPhone」「会社のPC」).
    pub name: String,
    /// The credential as webauthn-rs serialises it (JSON).
    pub credential: String,
    /// When it was added.
    pub added_at: OffsetDateTime,
    /// When it last logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// One issued set of リカバリーコード: keyed digests only, each spent at most once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecoveryCodeSet {
    /// Which set this is (1 for the first; each regeneration adds one). Mixed into each
    /// code's digest, so a code of a revoked set never matches the new one.
    pub generation: u32,
    /// When the set was issued.
    pub issued_at: OffsetDateTime,
    /// One slot per code.
    pub codes: Vec<RecoveryCodeSlot>,
}

impl RecoveryCodeSet {
    /// Codes not used yet.
    pub fn remaining(&self) -> usize {
        self.codes.iter().filter(|c| c.used_at.is_none()).count()
    }
}

/// One リカバリーコード of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecoveryCodeSlot {
    /// Keyed digest of the code, bound to the account and the set's generation.
    pub digest: TokenDigest,
    /// When it was used; a used code never works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at: Option<OffsetDateTime>,
}
