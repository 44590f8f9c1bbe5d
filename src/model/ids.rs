//! Identifiers: pseudonymous, random, safe for logs and audit events.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier (128 bits, hex).
            pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                $name(b.iter().map(|x| format!("{x:02x}")).collect())
            }

            /// Rebuilds an identifier read back from storage.
            pub fn from_stored(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// Pseudonymous account identifier: random, carries no member data, safe for logs
    /// and audit events (SEC-44).
    AccountId
);
opaque_id!(
    /// Identifier of one flow (a registration, a login challenge, a reset). Internal to
    /// the store; members only ever hold tokens and handles.
    FlowId
);

/// Changes whenever the password, e-mail address or login ID changes. Hosts keep it in
/// their session and compare it ([`crate::Portal::check_security_stamp`]) to end other
/// sessions after such a change (SEC-34).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecurityStamp(String);

impl SecurityStamp {
    /// A fresh random stamp.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        SecurityStamp(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    /// The stamp's text, to keep in the host's session.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a stamp from the host's session.
    pub fn from_session(s: impl Into<String>) -> Self {
        SecurityStamp(s.into())
    }
}

impl fmt::Debug for SecurityStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityStamp(…)")
    }
}
