//! The async shell: one method per member action, each a few lines that name its step.
//!
//! Every method goes through one driver (`driver.rs`): parse nothing (the secrets come
//! typed), load what the step reads from the [`Store`], ask the pure core in
//! [`crate::flow`] for a [`Decision`](crate::flow::Decision), commit its writes in one
//! atomic [`Commit`](crate::ports::Commit) with compare-and-set, re-read and decide
//! again after a lost race, and only then send its mails, record its audit events and
//! answer. No rule lives here: an `if` about policy belongs to the core.

mod account;
mod builder;
mod delivery;
mod driver;
mod factors;
#[cfg(test)]
mod interaction_tests;
mod links;
mod login;
#[cfg(feature = "passkeys")]
mod passkeys;
mod recovery;
mod registration;

use std::sync::Arc;

use time::OffsetDateTime;

pub use crate::flow::LinkPaths;
pub use crate::mail::DeliveryPass;
pub use crate::policy::pathways::{AuthPathway, Caller, ENTRY_POINTS, EntryPoint, Throttle};
pub use account::{
    CredentialsChanged, DisableOutcome, EmailChangeConfirmed, EmailChangeRequested,
    ProvisionedAccount,
};
pub use builder::{ConfigError, PortalBuilder};
pub use factors::{TotpEnrolled, TotpSetup};
pub use login::{AccountSummary, Authenticated, OtpChallenge};
#[cfg(feature = "passkeys")]
pub use passkeys::{PasskeyAdded, PasskeyLogin, PasskeyRegistration};
pub use recovery::RecoveryRequested;
pub use registration::{AuthKeyShown, NewCredentials, Registered, RegistrationStarted};

use crate::flow::{Env, Urls};
use crate::lang::Lang;
use crate::password_hash::PasswordHasher;
use crate::policy::{DeviationReport, InsurerProfile, Policy};
use crate::ports::{AuditEvent, AuditSink, Clock, MemberDirectory, Store};
use crate::token::DigestKeyring;

/// The library's front door: every step of the member journeys.
///
/// Cheap to clone (an `Arc` inside); share one between all request handlers.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
    /// Who is asking, as the host named them ([`Portal::from_requester`]).
    requester: Option<Arc<str>>,
}

struct Inner {
    store: Arc<dyn Store>,
    directory: Arc<dyn MemberDirectory>,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    /// The outbox: what sends, retries and records the steps' mails.
    dispatch: crate::mail::dispatch::Dispatch,
    policy: Policy,
    report: DeviationReport,
    profile: InsurerProfile,
    urls: Urls,
    keys: DigestKeyring,
    seals: Arc<crate::seal::SealKeyring>,
    hasher: PasswordHasher,
    /// The WebAuthn relying party, from the insurer profile's base URL.
    #[cfg(feature = "passkeys")]
    webauthn: Option<webauthn_rs::Webauthn>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("insurer", &self.inner.profile.insurer_name)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// Starts configuring a portal.
    pub fn builder() -> PortalBuilder {
        PortalBuilder::default()
    }

    /// This portal, for one request from `requester`: an IP address or network prefix
    /// (e.g. the client's /64 for IPv6), as the host decides — the library never parses
    /// HTTP. Registration, password-reset and login-ID-reminder requests then count
    /// against that requester's hourly budget of flow starts
    /// ([`Policy::flow_starts_per_requester_per_hour`], SEC-13) as well as the portal's
    /// ([`Policy::flow_starts_per_hour`]). A spent budget answers exactly like a sent mail
    /// and sends nothing. Only a keyed digest of `requester` is stored. Cheap: one `Arc`
    /// clone.
    pub fn from_requester(&self, requester: &str) -> Portal {
        Portal {
            inner: Arc::clone(&self.inner),
            requester: Some(Arc::from(requester)),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The insurer profile.
    pub fn insurer(&self) -> &InsurerProfile {
        &self.inner.profile
    }

    /// The SEC-47 inventory: every public entry point, its pathway, caller and
    /// throttles. Print it in the host's security documentation.
    pub fn pathways() -> &'static [EntryPoint] {
        ENTRY_POINTS
    }

    /// The deviations from the strict policy that the configuration uses (SEC-48).
    pub fn deviation_report(&self) -> &DeviationReport {
        &self.inner.report
    }

    /// What the configured policy achieves, in plain words, for the insurer's records
    /// and the start-up log.
    pub fn assurance_report(&self, lang: Lang) -> String {
        let inner = &self.inner;
        crate::policy::assurance::report(&inner.policy, &inner.report, self.offers_passkeys(), lang)
    }

    fn env(&self, now: OffsetDateTime) -> Env<'_> {
        Env {
            now,
            policy: &self.inner.policy,
            keys: &self.inner.keys,
        }
    }

    /// What checks second factors: the seal keys and, with passkeys, the relying party.
    fn verifiers(&self) -> crate::flow::factor::Verifiers<'_> {
        #[cfg(feature = "passkeys")]
        {
            let mut v = crate::flow::factor::Verifiers::sealed(&self.inner.seals);
            v.webauthn = self.inner.webauthn.as_ref();
            v
        }
        #[cfg(not(feature = "passkeys"))]
        crate::flow::factor::Verifiers::sealed(&self.inner.seals)
    }

    /// Whether the login screen may offer 「パスキーでログイン」 without a login ID and
    /// password: passkeys offered and the policy's `factors.passkey_only_login`.
    pub fn offers_passkey_only_login(&self) -> bool {
        self.offers_passkeys() && self.inner.policy.factors.passkey_only_login
    }

    /// Whether this build and configuration offer passkeys: the `passkeys` feature, the
    /// policy's `factors.passkeys`, and a base URL that can be a WebAuthn relying party
    /// (a domain name, not an IP address).
    pub fn offers_passkeys(&self) -> bool {
        #[cfg(feature = "passkeys")]
        {
            self.inner.policy.factors.passkeys && self.inner.webauthn.is_some()
        }
        #[cfg(not(feature = "passkeys"))]
        false
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn audit(&self, event: AuditEvent) {
        crate::mail::dispatch::audit(&*self.inner.audit, event);
    }

    fn rng() -> rand::rngs::ThreadRng {
        rand::rng()
    }
}

/// What the member typed as an e-mail address, or the field error to show them (DOM-15 …
/// DOM-22).
fn typed_email(typed: &str) -> Result<crate::domain::EmailAddress, crate::Rejection> {
    crate::domain::EmailAddress::parse(typed)
        .map_err(crate::domain::InputError::from)
        .map_err(crate::Rejection::from)
}
