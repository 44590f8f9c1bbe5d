//! `Debug` for values that hold a secret: the secret prints as `[redacted]` (SEC-04), so
//! a logged configuration or a panic message never carries a key or a password.

/// Implements `Debug` for a struct that shows one identifying field and hides one
/// secret field.
macro_rules! debug_redacted {
    ($ty:ident { $shown:ident, $secret:ident }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field(stringify!($shown), &self.$shown)
                    .field(stringify!($secret), &"[redacted]")
                    .finish()
            }
        }
    };
}

pub(crate) use debug_redacted;
