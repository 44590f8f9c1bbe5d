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
    /// Version the record had when read; pass it back to [`Store::commit`].
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
