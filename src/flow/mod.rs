//! The pure core: every journey as a persisted state enum and synchronous transitions.
//!
//! Nothing here does IO, reads the clock or owns an RNG. A transition takes the current
//! state, the member's input, [`Env`] (the instant, the policy, the digest keys) and an
//! RNG, and returns the next state and what to tell the member — or a
//! [`Rejection`](crate::Rejection). The [`Portal`](crate::Portal) loads, calls, commits
//! and mails; the property tests drive these functions directly.
//!
//! Each state variant carries its own `expires_at`; a state is expired when
//! `now >= expires_at`.

/// Implements a flow state's `lookup_keys` (every digest the flow can be found by) and
/// `purge_after` (when the store may delete it) from one row a variant:
/// `pattern => keys, purge time;`, where `keys` is an array or a `Vec` of digests. The
/// rows read as the table of what each state is found by and how long it is kept.
macro_rules! flow_index {
    ($state:ident; $($variant:pat => $keys:expr, $purge:expr;)+) => {
        // A row's pattern may bind a field that only one of the two methods reads.
        #[allow(unused_variables)]
        impl $state {
            pub(crate) fn lookup_keys(&self) -> Vec<TokenDigest> {
                match self {
                    $($variant => Vec::from($keys),)+
                }
            }

            pub(crate) fn purge_after(&self) -> OffsetDateTime {
                match self {
                    $($variant => $purge,)+
                }
            }
        }
    };
}

pub mod account;
pub mod delivery;
pub mod ends;
pub mod factor;
pub mod gate;
pub mod link;
pub mod login;
#[cfg(feature = "passkeys")]
pub mod passkey;
pub mod recovery;
pub mod registration;
pub mod step;
pub mod throttle;
pub mod urls;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::model::{Account, AccountId, AccountStatus, FlowId, Versioned};
use crate::policy::Policy;
use crate::token::{DigestKeyring, TokenDigest};

pub use account::{
    AwaitingEmailConfirmation, EmailChangeEnd, EmailChangeEndReason, EmailChangeState,
};
pub use ends::Ends;
pub use factor::{FactorInput, FactorSetupState, FactorSummary};
pub use link::LinkStatus;
pub use login::{
    Authenticated, AwaitingFactor, AwaitingOtp, LoginEnd, LoginEndReason, LoginFactor, LoginState,
    OtpConsumed, OtpVerdict, SecondStep,
};
pub use recovery::{
    AwaitingNewPassword, AwaitingResetLink, ResetEnd, ResetEndReason, ResetState, ResetStep,
    UnmatchedReset,
};
pub use registration::{
    AwaitingAuthKey, AwaitingCredentials, AwaitingIdentity, AwaitingLinkOpen, Completed, Dead,
    DeadReason, IdentityClaim, IdentityVerified, RegistrationProof, RegistrationState, Step,
};
pub use step::{Mail, Step as Decision, Write};
pub use urls::{LinkPaths, Urls};

/// What every transition needs from outside: the instant, the policy and the keys.
#[derive(Clone, Copy, Debug)]
pub struct Env<'a> {
    /// The instant of the member's action.
    pub now: OffsetDateTime,
    /// The rules.
    pub policy: &'a Policy,
    /// The digest keys.
    pub keys: &'a DigestKeyring,
}

/// `at + span`, saturating at the first or last instant `time` can represent instead of
/// panicking on overflow.
///
/// Every deadline of the core goes through here: a clock near the end of `time`'s range,
/// or a lifespan the policy accepts but that does not fit (`identity_step_ttl` and
/// `otp_resend_cooldown` have no upper bound), must never bring a request down. A
/// deadline that saturates to year 9999 is "not in this system's lifetime"; one that
/// saturates to year -9999 has passed. Either way `now >= expires_at` still decides
/// expiry, so nothing lives longer than asked within the representable range.
pub(crate) fn deadline(at: OffsetDateTime, span: Duration) -> OffsetDateTime {
    at.saturating_add(span)
}

/// A persisted flow of any kind.
///
/// Store this server-side only: it holds digests of the secrets the member holds, and
/// the attempt counters that make guessing them hopeless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FlowState {
    /// 新規利用登録 (R1–R5).
    Registration(RegistrationState),
    /// A login challenge: password accepted, 暗証キー pending (L1–L4).
    Login(LoginState),
    /// パスワードを忘れた方: a mailed reset link and its new-password step.
    PasswordReset(ResetState),
    /// メールアドレス変更: a confirmation link mailed to the new address.
    EmailChange(EmailChangeState),
    /// 2段階認証の設定: an authenticator app's secret shown, its first code awaited.
    FactorSetup(FactorSetupState),
    /// パスキーだけでログイン: a challenge for any of the site's passkeys.
    PasskeyLogin(factor::PasskeyLoginState),
}

/// A stored flow: its identifier and state. The state names the digests it can be
/// found by ([`FlowState::lookup_keys`]) and when it may be purged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Identifier.
    pub id: FlowId,
    /// Where the flow is.
    pub state: FlowState,
}

/// How long a finished flow is kept so that a reused link says "already used" rather
/// than "unknown" (DOM-23).
pub const TOMBSTONE_TTL: time::Duration = time::Duration::hours(24);

impl FlowState {
    /// What a mailed link with this digest would do now (the GET of a link landing),
    /// whatever kind of flow it belongs to. Digests are separated by purpose, so a link
    /// of one kind never matches another kind's digest.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        match self {
            FlowState::Registration(s) => s.link_status(link, now),
            FlowState::PasswordReset(s) => s.link_status(link, now),
            FlowState::EmailChange(s) => s.link_status(link, now),
            FlowState::Login(_) | FlowState::FactorSetup(_) | FlowState::PasskeyLogin(_) => {
                LinkStatus::Invalid
            }
        }
    }

    /// Every digest this flow can be found by: its live secrets and the spent ones it
    /// keeps to answer "already used".
    pub fn lookup_keys(&self) -> Vec<TokenDigest> {
        match self {
            FlowState::Registration(s) => s.lookup_keys(),
            FlowState::Login(s) => s.lookup_keys(),
            FlowState::PasswordReset(s) => s.lookup_keys(),
            FlowState::EmailChange(s) => s.lookup_keys(),
            FlowState::FactorSetup(s) => s.lookup_keys(),
            FlowState::PasskeyLogin(s) => s.lookup_keys(),
        }
    }

    /// When the store may delete the flow.
    pub fn purge_after(&self) -> OffsetDateTime {
        match self {
            FlowState::Registration(s) => s.purge_after(),
            FlowState::Login(s) => s.purge_after(),
            FlowState::PasswordReset(s) => s.purge_after(),
            FlowState::EmailChange(s) => s.purge_after(),
            FlowState::FactorSetup(s) => s.purge_after(),
            FlowState::PasskeyLogin(s) => s.purge_after(),
        }
    }

    /// The account the flow belongs to, if any.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            FlowState::Registration(s) => s.account(),
            FlowState::Login(s) => Some(s.account()),
            FlowState::PasswordReset(s) => s.account(),
            FlowState::EmailChange(s) => Some(s.account()),
            FlowState::FactorSetup(s) => Some(s.account()),
            FlowState::PasskeyLogin(_) => None,
        }
    }
}

/// An account as a step loaded it, with every flow it owns (in creation order): what a
/// decision needs to act on the account and end its open flows (SEC-34).
#[derive(Clone, Copy, Debug)]
pub struct AccountView<'a> {
    /// The account, if one was found.
    pub account: Option<&'a Versioned<Account>>,
    /// Its flows (empty when there is no account).
    pub flows: &'a [Versioned<FlowRecord>],
}

impl<'a> AccountView<'a> {
    /// The account, if it was found and is active (registered and usable).
    pub(crate) fn active(&self) -> Option<&'a Versioned<Account>> {
        active(self.account)
    }
}

/// The account, if it is active (registered and usable).
pub(crate) fn active(account: Option<&Versioned<Account>>) -> Option<&Versioned<Account>> {
    account.filter(|a| matches!(a.value.status, AccountStatus::Active))
}

/// What the core's unit tests share: one instant, one keyring, one environment.
#[cfg(test)]
pub(crate) mod test_support {
    use time::OffsetDateTime;
    use time::macros::datetime;

    use super::Env;
    use crate::policy::Policy;
    use crate::token::{DigestKey, DigestKeyring};

    /// The instant the tests start at.
    pub(crate) const T0: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

    /// A fixed test keyring.
    pub(crate) fn keys() -> DigestKeyring {
        DigestKeyring::new(DigestKey::new(1, [3u8; 32]).unwrap())
    }

    /// The environment at `now`.
    pub(crate) fn env<'a>(
        now: OffsetDateTime,
        policy: &'a Policy,
        keys: &'a DigestKeyring,
    ) -> Env<'a> {
        Env { now, policy, keys }
    }
}
