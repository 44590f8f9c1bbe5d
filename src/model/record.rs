//! Versions for compare-and-set, and throttle counters.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version of a stored record, for compare-and-set. A new record has version 1; every
/// committed change adds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

impl Version {
    /// The version a record gets when it is first written.
    pub const FIRST: Version = Version(1);

    /// The version after one more change.
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

/// A record together with the version it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// Version the record had when read; pass it back to
    /// [`Store::commit`](crate::ports::Store::commit).
    pub version: Version,
    /// The record.
    pub value: T,
}

/// A throttle counter: how many events in the current window, and when the last one
/// was. Keys are built by the portal from digests, never from plaintext addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Key, e.g. `mail:<digest>` or `identity:<member>`.
    pub key: String,
    /// Start of the current window.
    pub window_start: OffsetDateTime,
    /// Events in the window.
    pub count: u32,
    /// When the last event happened.
    pub last_at: OffsetDateTime,
    /// When the counter may be purged.
    pub expires_at: OffsetDateTime,
}

/// What a write expects to find: the one compare-and-set vocabulary of every write in a
/// commit (object_store's `PutMode::Create` / `UpdateVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// The record must not exist yet (an insert).
    Absent,
    /// The record must still be at this version (a replace).
    At(Version),
}

impl Expect {
    /// `Absent` for `None`, `At(v)` for `Some(v)`: the expectation of a record read as
    /// `current`.
    pub fn of<T>(current: Option<&Versioned<T>>) -> Expect {
        current.map_or(Expect::Absent, |v| Expect::At(v.version))
    }

    /// The version to compare, `None` for an insert.
    pub fn version(self) -> Option<Version> {
        match self {
            Expect::Absent => None,
            Expect::At(v) => Some(v),
        }
    }
}

/// What a throttle counter counts, and whose. The one place counter keys are spelled:
/// stores see only [`CounterKey::render`]'s text, which holds no address or card number
/// (digests and pseudonymous identifiers only, SEC-45).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CounterKey {
    /// Mails to one address (SEC-13); the address's keyed digest, hex.
    MailsToAddress(String),
    /// 暗証キー mails to one account per hour (SEC-30).
    OtpMails(super::AccountId),
    /// Identity checks of one roster member across flows (SEC-09).
    IdentityChecks(super::MemberId),
    /// Wrong 暗証キー entries of one account in a day (SEC-29).
    OtpFailures(super::AccountId),
    /// Flows one requester started (SEC-13); the requester's keyed digest, hex.
    FlowStartsFrom(String),
    /// Flows the whole portal started (SEC-13).
    FlowStarts,
    /// Reset mails asked for one typed login ID (SEC-13, SEC-37); the keyed digest of its
    /// canonical form (or of the text as typed when it is no login ID), hex. Keyed by
    /// what was typed, not by the account, so a request for an unknown ID charges a
    /// counter exactly as one for a known ID does.
    MailsForLoginId(String),
    /// Identity checks of one typed card number that is not on the roster (SEC-09): the
    /// keyed digest of its canonical form, hex. R3 charges this where a card on the
    /// roster charges [`CounterKey::IdentityChecks`], so a miss costs what a hit does.
    IdentityChecksOfCard(String),
    /// Refused logins that wrote nothing else (SEC-23): an unknown ID, or an account
    /// refused before or after its password counted. A wrong password writes the account;
    /// these write this counter, so every refusal commits one row. Counted per bucket —
    /// the first three hex digits of the typed ID's keyed digest, 4 096 buckets — so a
    /// stream of made-up IDs updates rows instead of inserting one each. Not a throttle.
    RefusedLogins(String),
}

impl CounterKey {
    /// What every [`CounterKey::OtpMails`] key starts with, followed by the account's
    /// identifier: what a store's [`Load::account_counter`](crate::ports::Load::account_counter)
    /// is given to read the loaded account's counter.
    pub const OTP_MAILS_PREFIX: &'static str = "otp-mail:";

    /// What every [`CounterKey::OtpFailures`] key starts with, followed by the account's
    /// identifier.
    pub const OTP_FAILURES_PREFIX: &'static str = "otp-fail:";

    /// [`CounterKey::MailsToAddress`] of `email`: a keyed digest of its canonical form,
    /// so that counters hold no address.
    pub fn mails_to(
        email: &crate::domain::EmailAddress,
        keys: &crate::token::DigestKeyring,
    ) -> Self {
        Self::keyed(
            keys,
            b"mail-throttle",
            email.canonical().as_bytes(),
            CounterKey::MailsToAddress,
        )
    }

    /// [`CounterKey::mails_to`] under every key the keyring accepts, current first: during
    /// a digest-key rotation the counter written under the previous key still counts
    /// (SEC-13), so a rotation does not give every address a fresh allowance.
    pub fn mails_to_all(
        email: &crate::domain::EmailAddress,
        keys: &crate::token::DigestKeyring,
    ) -> Vec<Self> {
        Self::under_every_key(
            keys,
            b"mail-throttle",
            email.canonical().as_bytes(),
            CounterKey::MailsToAddress,
        )
    }

    /// The key `kind` of the keyed digest of `text` under `label`, with the current key.
    fn keyed(
        keys: &crate::token::DigestKeyring,
        label: &[u8],
        text: &[u8],
        kind: fn(String) -> Self,
    ) -> Self {
        kind(
            keys.digest(crate::token::Purpose::FlowHandle, label, text)
                .to_hex(),
        )
    }

    /// The key `kind` of the keyed digest of `text` under `label`, under every key the
    /// keyring accepts, current first.
    fn under_every_key(
        keys: &crate::token::DigestKeyring,
        label: &[u8],
        text: &[u8],
        kind: fn(String) -> Self,
    ) -> Vec<Self> {
        keys.candidates(crate::token::Purpose::FlowHandle, label, text)
            .into_iter()
            .map(|d| kind(d.to_hex()))
            .collect()
    }

    /// [`CounterKey::FlowStartsFrom`] of the requester the host named (an IP or network
    /// prefix): a keyed digest, so that counters hold no address.
    pub fn flow_starts_from(requester: &str, keys: &crate::token::DigestKeyring) -> Self {
        Self::keyed(
            keys,
            b"requester-throttle",
            requester.as_bytes(),
            CounterKey::FlowStartsFrom,
        )
    }

    /// [`CounterKey::MailsForLoginId`] of what was typed as a login ID, under every key
    /// the keyring accepts, current first (as [`CounterKey::mails_to_all`]).
    pub fn mails_for_login_id_all(typed: &str, keys: &crate::token::DigestKeyring) -> Vec<Self> {
        Self::under_every_key(
            keys,
            b"reset-throttle",
            Self::typed_login_id(typed).as_bytes(),
            CounterKey::MailsForLoginId,
        )
    }

    /// [`CounterKey::IdentityChecksOfCard`] of a typed card number.
    pub fn identity_checks_of_card(
        card: &crate::domain::CardNumber,
        keys: &crate::token::DigestKeyring,
    ) -> Self {
        Self::keyed(
            keys,
            b"card-checks",
            card.canonical().as_bytes(),
            CounterKey::IdentityChecksOfCard,
        )
    }

    /// [`CounterKey::RefusedLogins`] of what was typed as a login ID: its bucket.
    pub fn refused_logins(typed: &str, keys: &crate::token::DigestKeyring) -> Self {
        Self::keyed(
            keys,
            b"refused-logins",
            Self::typed_login_id(typed).as_bytes(),
            |hex| CounterKey::RefusedLogins(hex.chars().take(3).collect()),
        )
    }

    /// The canonical form of a typed login ID, or the text as typed when it is none, so
    /// that every spelling of one ID counts on one counter.
    fn typed_login_id(typed: &str) -> std::borrow::Cow<'_, str> {
        match crate::domain::LoginId::parse(typed) {
            Ok(id) => std::borrow::Cow::Owned(id.as_str().to_owned()),
            Err(_) => std::borrow::Cow::Borrowed(typed),
        }
    }

    /// The key as stored.
    pub fn render(&self) -> String {
        match self {
            CounterKey::MailsToAddress(digest) => format!("mail:{digest}"),
            CounterKey::OtpMails(account) => {
                format!("{}{}", Self::OTP_MAILS_PREFIX, account.as_str())
            }
            CounterKey::IdentityChecks(member) => format!("identity:{}", member.as_str()),
            CounterKey::FlowStartsFrom(digest) => format!("starts-from:{digest}"),
            CounterKey::FlowStarts => "starts:all".to_owned(),
            CounterKey::MailsForLoginId(digest) => format!("reset-mail:{digest}"),
            CounterKey::RefusedLogins(digest) => format!("refused-login:{digest}"),
            CounterKey::IdentityChecksOfCard(digest) => format!("identity-card:{digest}"),
            CounterKey::OtpFailures(account) => {
                format!("{}{}", Self::OTP_FAILURES_PREFIX, account.as_str())
            }
        }
    }
}
