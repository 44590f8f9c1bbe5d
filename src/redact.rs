//! `Debug` for values that hold a secret: the secret prints as `[redacted]` (SEC-04), so
//! a logged configuration or a panic message never carries a key or a password; and for
//! personal data, which prints only masked (SEC-45).

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

/// Implements `Debug` for a value that shows only a mask, as `Type(mask)`: fixed text
/// (`debug_masked!(KanaName, "***")`) or a masked form computed from the value
/// (`debug_masked!(CardNumber, |c| c.masked())`).
macro_rules! debug_masked {
    ($ty:ident, $mask:literal) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(", $mask, ")"))
            }
        }
    };
    ($ty:ident, |$value:ident| $mask:expr) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let $value = self;
                write!(f, concat!(stringify!($ty), "({})"), $mask)
            }
        }
    };
}

pub(crate) use debug_masked;
