//! Which second factors (2段階認証) the portal offers, and whether one is required.

use serde::{Deserialize, Serialize};
use time::Duration;

/// Whether members must have a second factor beyond the e-mailed 暗証キー.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FactorRequirement {
    /// 暗証キー as today: members may set up a 認証アプリ, which then replaces the
    /// 暗証キー for them at every login (never a silent downgrade to the mail).
    #[default]
    Optional,
    /// A 認証アプリ (or, later, a パスキー) is required. Members who have set up none
    /// still log in with the 暗証キー as a fallback, but their
    /// [`Authenticated`](crate::portal::Authenticated) says
    /// [`must_set_up_factor`](crate::portal::Authenticated::must_set_up_factor): the host
    /// sends them to 2段階認証の設定 before anything else. The last factor cannot be
    /// removed.
    Required,
}

/// The second factors a portal offers, and what they change.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactorPolicy {
    /// Offer 認証アプリ (TOTP, RFC 6238) codes. On by default: nothing changes for a
    /// member until they set one up. Hosts that enable it should supply their own seal
    /// key ([`PortalBuilder::seal_keys`](crate::portal::PortalBuilder::seal_keys)): the
    /// shared secrets live as long as the enrollment.
    pub totp: bool,
    /// Offer パスキー (WebAuthn, user verification required) as a second factor. On by
    /// default; effective only in builds with the `passkeys` feature. The relying party
    /// is the insurer profile's `base_url` (its host as RP ID, its origin as the only
    /// accepted origin).
    pub passkeys: bool,
    /// パスキーだけでログイン: members with a passkey may log in with it alone (no
    /// login ID, no password: a discoverable credential with user verification, which is
    /// itself multi-factor — the device and the biometric or PIN). Off by default.
    /// Passkeys registered while it is on are asked to be discoverable.
    pub passkey_only_login: bool,
    /// Issue ten リカバリーコード with the first factor a member sets up.
    pub recovery_codes: bool,
    /// Whether a second factor is required.
    pub requirement: FactorRequirement,
    /// Whether a completed password reset (パスワードを忘れた方) removes the member's
    /// second factors. Off by default: a reset sets a new password, and the next login
    /// still asks for the 認証アプリ. On, whoever controls the mailbox (and, with
    /// [`Policy::recovery_requires_identity`](crate::Policy::recovery_requires_identity),
    /// knows the card data) controls the account: the assurance report says so.
    pub reset_removes_factors: bool,
    /// How long the 確認コード screen of a login lives: 5 min.
    pub challenge_ttl: Duration,
    /// How long the 認証アプリの設定 screen (QR code shown, first code awaited) lives:
    /// 10 min.
    pub setup_ttl: Duration,
}

impl Default for FactorPolicy {
    fn default() -> Self {
        FactorPolicy {
            totp: true,
            passkeys: true,
            passkey_only_login: false,
            recovery_codes: true,
            requirement: FactorRequirement::Optional,
            reset_removes_factors: false,
            challenge_ttl: Duration::minutes(5),
            setup_ttl: Duration::minutes(10),
        }
    }
}
