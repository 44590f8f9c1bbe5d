//! The outbox: mails a step committed, waiting for (or done with) delivery.

use std::fmt;

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::seal::Sealed;

/// One mail in the outbox, and the receipt a host asks its delivery status by
/// ([`Portal::mail_status`](crate::Portal::mail_status)).
///
/// 128 random bits, written as 32 lower-case hex digits: only the request that caused
/// the mail learns it, and it cannot be guessed, so a status is only ever told to that
/// request's holder. Equality is ordinary (a receipt is not a credential: it opens
/// nothing, and says only "sent" or "not yet").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MailId([u8; 16]);

impl MailId {
    /// A fresh, random identifier.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        MailId(bytes)
    }

    /// The 32 hex digits.
    pub fn to_hex(&self) -> String {
        crate::model::hex(&self.0)
    }

    /// Reads a receipt as it comes back from a host's page or URL: 32 hex digits in
    /// either case, spaces around them trimmed.
    pub fn parse(s: &str) -> Result<Self, MalformedMailId> {
        super::unhex(s.trim(), true)
            .map(MailId)
            .ok_or(MalformedMailId)
    }
}

impl fmt::Debug for MailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MailId({})", self.to_hex())
    }
}

/// A string that is not a [`MailId`] (32 hex digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a mail receipt")]
pub struct MalformedMailId;

crate::domain::text_conversions! { MailId, MalformedMailId;
    /// The 32 hex digits.
    Display |id| &id.to_hex();
    /// Same as [`MailId::parse`].
    FromStr;
    /// Same as [`MailId::parse`].
    TryFrom<String>;
    /// The 32 hex digits, as stored.
    Into<String> |id| id.to_hex();
}

/// Where a mail is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delivery {
    /// Not delivered yet: the next try is due at [`OutboxMail::due_at`].
    Pending,
    /// The mail system took it.
    Delivered {
        /// When.
        at: OffsetDateTime,
    },
    /// Given up: it will not be sent.
    Failed {
        /// When.
        at: OffsetDateTime,
        /// Why.
        reason: Undeliverable,
    },
}

/// Why a mail was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Undeliverable {
    /// The mail system refused it for good (an unknown mailbox, a policy).
    Refused,
    /// What it carries expired before any try got through.
    Expired,
    /// It can no longer be opened (sealed under a key the portal no longer holds).
    Unreadable,
}

/// A mail-allowance event a mail was charged, given back if the mail is never
/// delivered ("a send that failed does not spend the allowance").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The counter charged ([`Counter::key`](crate::model::Counter::key)).
    pub key: String,
    /// The window the charge fell in: no refund once the counter has moved to another.
    pub window_start: OffsetDateTime,
    /// When it was charged (the counter's `last_at` after the charge).
    pub at: OffsetDateTime,
    /// The counter's `last_at` before the charge, restored when no later event moved it,
    /// so the least interval between mails does not hold against a mail that never went.
    pub last_before: OffsetDateTime,
}

/// One mail in the store's outbox.
///
/// What it says — recipient, wording, the link or 暗証キー — is [`sealed`](Self::sealed)
/// under the portal's seal keys ([`crate::seal`]); the rest is what delivery needs to
/// schedule it, in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxMail {
    /// Its identifier: the receipt.
    pub id: MailId,
    /// The kind of mail ([`MailMessage::kind`](crate::mail::MailMessage::kind)), for
    /// logs and metrics.
    pub kind: String,
    /// The mail, sealed ([`SealPurpose::OutboxMail`](crate::seal::SealPurpose), bound
    /// to [`Self::id`]).
    pub sealed: Sealed,
    /// When the step that caused it committed.
    pub created_at: OffsetDateTime,
    /// Until when it is worth delivering (the deadline of what it carries).
    pub useful_until: OffsetDateTime,
    /// Where it is in its delivery.
    pub delivery: Delivery,
    /// Tries made so far.
    pub attempts: u32,
    /// When the next try is due (while [`Delivery::Pending`]).
    pub due_at: OffsetDateTime,
    /// Until when a delivery worker holds it (claimed and sending). No other worker
    /// claims it before then; a worker that died lets it go when the lease ends.
    pub leased_until: Option<OffsetDateTime>,
    /// Allowance events to give back if it is never delivered.
    pub refunds: Vec<Refund>,
    /// When the store may delete it (after its status stopped mattering).
    pub purge_after: OffsetDateTime,
}

impl OutboxMail {
    /// Whether a worker may claim it at `now`: pending, due, and not held.
    pub fn claimable(&self, now: OffsetDateTime) -> bool {
        self.delivery == Delivery::Pending
            && self.due_at <= now
            && self.leased_until.is_none_or(|until| until <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::{MailId, MalformedMailId};

    // A receipt reads back from a host's page in either case, trimmed; nothing else is
    // a receipt (a sign before a digit pair used to pass `from_str_radix`).
    #[test]
    fn a_receipt_reads_back_in_either_case_and_nothing_else_does() {
        let id: MailId = "00112233445566778899aabbccddeeff".parse().unwrap();
        assert_eq!(id.to_hex(), "00112233445566778899aabbccddeeff");
        assert_eq!(" 00112233445566778899AABBCCDDEEFF\n".parse(), Ok(id));
        for bad in [
            "+0112233445566778899aabbccddeeff",
            "00112233445566778899aabbccddeef",
            "00112233445566778899aabbccddeeff00",
            "00112233445566778899aabbccddeefg",
            "",
        ] {
            assert_eq!(bad.parse::<MailId>(), Err(MalformedMailId), "{bad:?}");
        }
    }
}
