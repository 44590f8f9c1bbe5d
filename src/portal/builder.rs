//! Configuring a [`Portal`].

use std::sync::Arc;

use super::{Inner, Portal};
use crate::flow::delivery::DeliverySchedule;
use crate::flow::{LinkPaths, Urls};
use crate::mail::dispatch::{Dispatch, Parts};
use crate::mail::{DefaultTemplates, MailTemplates};
use crate::password_hash::{HashError, Offload, PasswordHasher, Pepper};
use crate::policy::{InsurerProfile, Policy, PolicyError, ProfileError};
use crate::ports::{AuditSink, Clock, Mailer, MemberDirectory, Store, SystemClock, TracingAudit};
use crate::seal::SealKeyring;
use crate::token::{DigestKey, DigestKeyring, WeakKey};

/// A portal configuration that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required part was not given.
    #[error("portal builder: `{0}` is required")]
    Missing(&'static str),
    /// The policy was refused (SEC-48).
    #[error("policy refused")]
    Policy(#[from] PolicyError),
    /// The insurer profile was refused.
    #[error("insurer profile refused")]
    Profile(#[from] ProfileError),
    /// The digest key is too short.
    #[error("secret key refused")]
    Key(#[from] WeakKey),
    /// The password hasher could not be built.
    #[error("password hasher refused")]
    Hasher(#[from] HashError),
}

/// Builds a [`Portal`]; see [`Portal::builder`].
///
/// Required: `store`, `mailer`, `directory`, `insurer`, `secret_key`. Optional: `clock`
/// (system clock), `audit` (tracing), `policy` (strict default), `templates` (Japanese
/// defaults), `pepper`, `link_paths`, `max_concurrent_hashes`, `hash_offload`.
#[derive(Default)]
#[must_use]
pub struct PortalBuilder {
    store: Option<Arc<dyn Store>>,
    mailer: Option<Arc<dyn Mailer>>,
    directory: Option<Arc<dyn MemberDirectory>>,
    clock: Option<Arc<dyn Clock>>,
    audit: Option<Arc<dyn AuditSink>>,
    templates: Option<Arc<dyn MailTemplates>>,
    policy: Option<Policy>,
    profile: Option<InsurerProfile>,
    paths: Option<LinkPaths>,
    secret_key: Option<Vec<u8>>,
    previous_keys: Vec<(u8, Vec<u8>)>,
    key_id: u8,
    pepper: Option<Pepper>,
    previous_peppers: Vec<Pepper>,
    max_concurrent_hashes: Option<usize>,
    hash_offload: Offload,
    seal_keys: Option<SealKeyring>,
    delivery: Option<DeliverySchedule>,
}

/// Builder setters that store one value: `name: field: Type;` writes `pub fn name(mut
/// self, value: Type) -> Self` setting `self.field`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl PortalBuilder {
            $($(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.$field = Some(value);
                self
            })*
        }
    };
}

setters! {
    /// A store already shared elsewhere.
    shared_store: store: Arc<dyn Store>;
    /// A mailer already shared elsewhere (e.g. a `RecordingMailer` a test reads).
    shared_mailer: mailer: Arc<dyn Mailer>;
    /// A roster already shared elsewhere.
    shared_directory: directory: Arc<dyn MemberDirectory>;
    /// Where `now` comes from (default: the system clock).
    clock: clock: Arc<dyn Clock>;
    /// Where security events go (default: `tracing`).
    audit: audit: Arc<dyn AuditSink>;
    /// Mail wording (default: the Japanese and English texts of [`DefaultTemplates`]).
    templates: templates: Arc<dyn MailTemplates>;
    /// The rules (default: [`Policy::default`], the strict one). Validated by `build`.
    policy: policy: Policy;
    /// The insurer's names and base URL.
    insurer: profile: InsurerProfile;
    /// Paths of the pages mailed links land on.
    link_paths: paths: LinkPaths;
}

impl PortalBuilder {
    /// Where flows, accounts and counters live.
    pub fn store(self, store: impl Store + 'static) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// How mail leaves.
    pub fn mailer(self, mailer: impl Mailer + 'static) -> Self {
        self.shared_mailer(Arc::new(mailer))
    }

    /// The insurer roster.
    pub fn directory(self, directory: impl MemberDirectory + 'static) -> Self {
        self.shared_directory(Arc::new(directory))
    }

    /// The HMAC key for token digests (≥ 32 bytes, from the host's secret store — never
    /// from the database the digests live in).
    pub fn secret_key(mut self, id: u8, key: impl Into<Vec<u8>>) -> Self {
        self.key_id = id;
        self.secret_key = Some(key.into());
        self
    }

    /// A retired digest key still accepted for links already mailed.
    pub fn previous_secret_key(mut self, id: u8, key: impl Into<Vec<u8>>) -> Self {
        self.previous_keys.push((id, key.into()));
        self
    }

    /// A pepper for password hashes (SEC-21), and retired ones still accepted.
    pub fn pepper(mut self, pepper: Pepper, previous: Vec<Pepper>) -> Self {
        self.pepper = Some(pepper);
        self.previous_peppers = previous;
        self
    }

    /// How many Argon2 computations may run at once (SEC-22; default: the number of
    /// CPUs).
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = Some(n);
        self
    }

    /// Where Argon2 runs while a request awaits it (default [`Offload::BlockingPool`];
    /// [`Offload::PinnedThreads`] for a process that has its cores to itself,
    /// [`Offload::InPlace`] for the least latency per login — see
    /// [`crate::password_hash#runtime`]).
    pub fn hash_offload(mut self, offload: Offload) -> Self {
        self.hash_offload = offload;
        self
    }

    /// The keys that seal what the store must give back ([`crate::seal`]): mails waiting
    /// in the outbox, authenticator-app secrets. Without them the portal derives seal
    /// keys from its digest keys, which suits the outbox (mails live a day at most) but
    /// not secrets that must outlive a digest-key rotation.
    pub fn seal_keys(mut self, keys: SealKeyring) -> Self {
        self.seal_keys = Some(keys);
        self
    }

    /// How the outbox schedules delivery: lease, retry backoff, how long a notice is
    /// tried, how long a status stays readable (default: [`DeliverySchedule::default`]).
    pub fn delivery(mut self, schedule: DeliverySchedule) -> Self {
        self.delivery = Some(schedule);
        self
    }

    /// Checks the configuration and builds the portal.
    pub fn build(self) -> Result<Portal, ConfigError> {
        let store = self.store.ok_or(ConfigError::Missing("store"))?;
        let mailer = self.mailer.ok_or(ConfigError::Missing("mailer"))?;
        let directory = self.directory.ok_or(ConfigError::Missing("directory"))?;
        let mut profile = self.profile.ok_or(ConfigError::Missing("insurer"))?;
        let secret = self.secret_key.ok_or(ConfigError::Missing("secret_key"))?;
        profile.validate()?;
        let policy = self.policy.unwrap_or_default();
        let report = policy.validate()?;
        // The mails state the policy's lifetimes (「※URLの有効期限は3時間です。」).
        profile.mail_validity = crate::policy::MailValidity::of(&policy);
        let mut keys = DigestKeyring::new(DigestKey::new(self.key_id, secret)?);
        for (id, k) in self.previous_keys {
            keys = keys.with_previous(DigestKey::new(id, k)?);
        }
        let seals = match self.seal_keys {
            Some(seals) => seals,
            None => SealKeyring::derived(keys.seal_material())
                .ok_or(ConfigError::Missing("seal_keys"))?,
        };
        let hasher = PasswordHasher::new(
            policy.hashing,
            self.pepper,
            self.previous_peppers,
            self.max_concurrent_hashes
                .unwrap_or_else(PasswordHasher::default_max_concurrent),
        )?
        .with_offload(self.hash_offload)?;
        #[cfg(feature = "passkeys")]
        let webauthn = crate::flow::passkey::relying_party(&profile);
        let store: Arc<dyn Store> = store;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let audit = self.audit.unwrap_or_else(|| Arc::new(TracingAudit));
        let seals = Arc::new(seals);
        let dispatch = Dispatch::new(Parts {
            store: Arc::clone(&store),
            mailer,
            clock: Arc::clone(&clock),
            audit: Arc::clone(&audit),
            templates: self.templates.unwrap_or_else(|| Arc::new(DefaultTemplates)),
            profile: profile.clone(),
            seals: Arc::clone(&seals),
            schedule: self.delivery.unwrap_or_default(),
            transport: Default::default(),
        });
        Ok(Portal {
            requester: None,
            inner: Arc::new(Inner {
                store,
                directory,
                clock,
                audit,
                dispatch,
                policy,
                report,
                urls: Urls::new(&profile, self.paths.unwrap_or_default()),
                profile,
                keys,
                seals,
                hasher,
                #[cfg(feature = "passkeys")]
                webauthn,
            }),
        })
    }
}
