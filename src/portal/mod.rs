//! The async driver: one method per member action.
//!
//! Each method loads what it needs from the [`Store`], calls the pure core in
//! [`crate::flow`], commits the result in one atomic [`Commit`], and only then mails
//! and answers. A commit that loses a race is retried from a fresh read, so a request
//! never acts on stale state.

mod account;
mod builder;
mod driver;
#[cfg(test)]
mod interaction_tests;
mod links;
mod login;
mod pathways;
mod recovery;
mod registration;

use std::sync::Arc;

use time::OffsetDateTime;

pub use crate::flow::LinkPaths;
pub use account::{
    CredentialsChanged, DisableOutcome, EmailChangeConfirmed, EmailChangeRequested,
    ProvisionedAccount,
};
pub use builder::{ConfigError, PortalBuilder};
pub use login::{AccountSummary, Authenticated, OtpChallenge};
pub use pathways::{AuthPathway, Caller, ENTRY_POINTS, EntryPoint, Throttle};
pub use recovery::RecoveryRequested;
pub use registration::{AuthKeyShown, NewCredentials, Registered, RegistrationStarted};

use crate::domain::EmailAddress;
use crate::error::{Error, Rejection};
use crate::flow::{Env, Urls};
use crate::lang::Lang;
use crate::mail::{MailMessage, MailTemplates, OutgoingMail};
use crate::password_hash::PasswordHasher;
use crate::policy::{DeviationReport, InsurerProfile, Policy};
use crate::ports::{
    AuditEvent, AuditKind, AuditSink, Clock, Commit, CommitOutcome, Counter, CounterWrite,
    FlowRecord, Mailer, MemberDirectory, Store, Versioned,
};
use crate::token::{DigestKeyring, Purpose, TokenDigest};

/// How often a request re-reads and re-decides after losing a compare-and-set race
/// before it answers [`Rejection::Busy`].
const MAX_CAS_RETRIES: usize = 16;

/// The library's front door: every step of the member journeys.
///
/// Cheap to clone (an `Arc` inside); share one between all request handlers.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    directory: Arc<dyn MemberDirectory>,
    clock: Arc<dyn Clock>,
    audit: Arc<dyn AuditSink>,
    templates: Arc<dyn MailTemplates>,
    policy: Policy,
    report: DeviationReport,
    profile: InsurerProfile,
    urls: Urls,
    keys: DigestKeyring,
    hasher: PasswordHasher,
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

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// The insurer profile.
    pub fn insurer(&self) -> &InsurerProfile {
        &self.inner.profile
    }

    /// The deviations from the strict policy that the configuration uses (SEC-48).
    pub fn deviation_report(&self) -> &DeviationReport {
        &self.inner.report
    }

    /// What the configured policy achieves, in plain words, for the insurer's records
    /// and the start-up log.
    pub fn assurance_report(&self, lang: Lang) -> String {
        let p = &self.inner.policy;
        let en = matches!(lang, Lang::En);
        let mut out = String::new();
        if en {
            out.push_str(&format!(
                "Login: password (at least {} characters, Argon2id m={} KiB t={} p={}) followed by a {}-digit 暗証キー mailed to the registered address, valid {} minutes, single use.\n",
                p.password.min_chars,
                p.hashing.m_cost_kib,
                p.hashing.t_cost,
                p.hashing.p_cost,
                p.otp_digits,
                p.otp_ttl.whole_minutes()
            ));
            out.push_str("Assurance: NIST SP 800-63B-4 does not recognise e-mail as an authentication factor, so this login is single-factor (AAL1), not multi-factor (AAL2); the e-mailed code proves control of the mailbox, and limits guessing and stolen-password reuse.\n");
            out.push_str("Self-registration checks knowledge of the insurance card numbers and date of birth (knowledge-based, low assurance under NIST SP 800-63A-4); insurer-issued temporary credentials sent by post are the stronger path.\n");
        } else {
            out.push_str(&format!(
                "ログイン: パスワード({}文字以上、Argon2id m={} KiB t={} p={})の後、登録メールアドレスに送る{}桁の暗証キー(有効期限{}分、1回限り)。\n",
                p.password.min_chars,
                p.hashing.m_cost_kib,
                p.hashing.t_cost,
                p.hashing.p_cost,
                p.otp_digits,
                p.otp_ttl.whole_minutes()
            ));
            out.push_str("保証レベル: NIST SP 800-63B-4 はメールを認証要素と認めていないため、このログインは多要素(AAL2)ではなく単要素(AAL1)です。メールの暗証キーはメールボックスの管理を確認し、推測や流出したパスワードの悪用を抑えるものです。\n");
            out.push_str("新規利用登録の本人確認は記号・番号・枝番と生年月日の知識によるもの(NIST SP 800-63A-4 では低い保証)です。保険者が郵送する仮パスワードによる事前登録の方が強い経路です。\n");
        }
        out.push_str(&self.recovery_assurance(lang));
        out.push_str(&self.inner.report.render(lang));
        out
    }

    fn env(&self, now: OffsetDateTime) -> Env<'_> {
        Env {
            now,
            policy: &self.inner.policy,
            keys: &self.inner.keys,
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn audit(&self, event: AuditEvent) {
        self.inner.audit.record(event);
    }

    /// Looks a flow up by every digest the keyring accepts for one secret (current key
    /// first), and returns it with the digest that found it — the one its state knows.
    async fn find_flow(
        &self,
        candidates: &[TokenDigest],
    ) -> Result<Option<(Versioned<FlowRecord>, TokenDigest)>, Error> {
        for d in candidates {
            if let Some(found) = self.inner.store.find_flow(d).await? {
                return Ok(Some((found, *d)));
            }
        }
        Ok(None)
    }

    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, Error> {
        Ok(self.inner.store.commit(commit).await?)
    }

    /// Renders and sends one mail. The caller has already committed the state the mail
    /// belongs to, so a failed send loses nothing: it is audited and logged, and the
    /// member can ask again (resend, or repeat the step).
    async fn send_mail(&self, to: &EmailAddress, message: MailMessage) {
        let lang = self.inner.profile.lang;
        let rendered = self
            .inner
            .templates
            .render(&message, &self.inner.profile, lang);
        let kind = message.kind();
        let mail = OutgoingMail {
            to: to.clone(),
            lang,
            message,
            rendered,
        };
        if let Err(e) = self.inner.mailer.send(&mail).await {
            tracing::warn!(target: "kenpo_auth::mail", error = %e, kind, to = %to.masked(), "mail not sent");
            self.audit(
                AuditEvent::new(AuditKind::MailFailed, self.now())
                    .email(to.masked())
                    .detail(kind),
            );
        }
    }

    /// The throttle key of an address: a keyed digest of its canonical form, so that
    /// counters hold no address.
    fn address_key(&self, email: &EmailAddress) -> String {
        let d = self.inner.keys.digest(
            Purpose::FlowHandle,
            b"mail-throttle",
            email.canonical().as_bytes(),
        );
        format!("mail:{}", d.to_hex())
    }

    /// SEC-13: whether a mail to this address may go now (≥ min interval since the last,
    /// ≤ N per hour). Returns the counter write that records the mail when allowed.
    async fn mail_allowance(
        &self,
        email: &EmailAddress,
        now: OffsetDateTime,
    ) -> Result<Option<CounterWrite>, Error> {
        let key = self.address_key(email);
        let p = &self.inner.policy;
        let current = self.inner.store.load_counter(&key).await?;
        Ok(window_hit(
            key,
            current,
            now,
            time::Duration::hours(1),
            p.mails_per_address_per_hour,
            Some(p.mail_min_interval),
        )
        .ok())
    }

    fn rng() -> rand::rngs::ThreadRng {
        rand::rng()
    }
}

/// Counts one event in a fixed window counter. `Err(retry_after)` when the event is not
/// allowed (cap reached, or closer than `min_interval` to the last one); otherwise the
/// write that records it.
pub(crate) fn window_hit(
    key: String,
    current: Option<Versioned<Counter>>,
    now: OffsetDateTime,
    window: time::Duration,
    cap: u32,
    min_interval: Option<time::Duration>,
) -> Result<CounterWrite, time::Duration> {
    let (expected, counter) = match current {
        Some(v) if now < v.value.window_start.saturating_add(window) => (Some(v.version), v.value),
        Some(v) => (
            Some(v.version),
            Counter {
                key: key.clone(),
                window_start: now,
                count: 0,
                last_at: v.value.last_at,
                expires_at: now.saturating_add(window),
            },
        ),
        None => (
            None,
            Counter {
                key: key.clone(),
                window_start: now,
                count: 0,
                last_at: now.saturating_sub(window),
                expires_at: now.saturating_add(window),
            },
        ),
    };
    if let Some(gap) = min_interval {
        let ready = counter.last_at.saturating_add(gap);
        if counter.count > 0 && now < ready {
            return Err(ready - now);
        }
    }
    if counter.count >= cap {
        return Err(counter.window_start.saturating_add(window) - now);
    }
    Ok(CounterWrite {
        expected,
        counter: Counter {
            count: counter.count + 1,
            last_at: now,
            ..counter
        },
    })
}

/// Maps a failed commit of a member's step to what the member is told.
pub(crate) fn busy() -> Error {
    Error::Rejected(Rejection::Busy)
}
