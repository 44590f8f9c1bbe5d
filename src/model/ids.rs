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
                $name(crate::model::hex(&b))
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
///
/// Equality is constant-time: comparing a session's stamp with the account's says
/// nothing, through its timing, about how much of it was right.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecurityStamp(String);

impl PartialEq for SecurityStamp {
    fn eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
    }
}

impl Eq for SecurityStamp {}

impl SecurityStamp {
    /// A fresh random stamp.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        SecurityStamp(super::hex(&b))
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

#[cfg(test)]
mod stamp_tests {
    use super::SecurityStamp;

    // SEC-34: a session's stamp is the account's only when it is the same text; the
    // comparison is constant-time, and a prefix or a longer text is another stamp.
    #[test]
    fn sec_34_a_stamp_equals_only_itself() {
        let stamp = SecurityStamp::generate(&mut rand::rng());
        let copy = SecurityStamp::from_session(stamp.as_str());
        assert_eq!(stamp, copy);
        let prefix = SecurityStamp::from_session(&stamp.as_str()[..31]);
        let longer = SecurityStamp::from_session(format!("{}0", stamp.as_str()));
        assert_ne!(stamp, prefix);
        assert_ne!(stamp, longer);
        assert_ne!(stamp, SecurityStamp::generate(&mut rand::rng()));
    }
}
