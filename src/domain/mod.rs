//! Domain types: what a Japanese member actually types, parsed into values that cannot
//! be wrong, and refused with a typed error in the member's words when it cannot be
//! read.

pub mod birth_date;
pub mod card_number;
pub mod email;
pub mod insurer_number;
pub mod kana_name;
pub mod login_id;
pub mod nickname;
pub(crate) mod normalize;
pub mod password;

use std::borrow::Cow;

pub use birth_date::{BirthDate, BirthDateError};
pub use card_number::{CardNumber, CardNumberError, CardNumberFormat, SymbolCharset};
pub use email::{Carrier, EmailAddress, EmailError, EmailMode};
pub use insurer_number::{InsurerNumber, InsurerNumberError};
pub use kana_name::{KanaName, KanaNameError};
pub use login_id::{LoginId, LoginIdError};
pub use nickname::{Nickname, NicknameError};
pub use password::{
    Password, PasswordContext, PasswordError, PasswordRules, check_confirmation,
    check_new_password, is_common_password,
};

use crate::lang::Lang;

/// The string conversions of a value read from text (the field types here, and the
/// stored identifiers of [`crate::model`] and [`crate::token`]): `FromStr` and
/// `TryFrom<String>` go through `$ty::parse` or the body given (so `str::parse` and
/// serde's `try_from = "String"` check a stored value again when it is read), and
/// `From<$ty> for String`, `AsRef<str>` and `Display` give the spelling the closure names.
///
/// Each line is one impl, with its doc comment above it:
///
/// ```text
/// text_conversions! { LoginId, LoginIdError;
///     FromStr;
///     TryFrom<String>;                  // or: TryFrom<String> |value| <custom body>;
///     Into<String> |id| id.0;
///     AsRef<str> |id| &id.0;
///     Display |id| &id.0;
/// }
/// ```
macro_rules! text_conversions {
    ($ty:ident, $err:ty;) => {};
    ($ty:ident, $err:ty; $(#[$m:meta])* FromStr; $($rest:tt)*) => {
        $(#[$m])*
        impl ::std::str::FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        $crate::domain::text_conversions!($ty, $err; $($rest)*);
    };
    ($ty:ident, $err:ty; $(#[$m:meta])* TryFrom<String>; $($rest:tt)*) => {
        $crate::domain::text_conversions!(
            $ty, $err; $(#[$m])* TryFrom<String> |value| Self::parse(&value); $($rest)*
        );
    };
    ($ty:ident, $err:ty; $(#[$m:meta])* TryFrom<String> |$v:ident| $body:expr; $($rest:tt)*) => {
        $(#[$m])*
        impl TryFrom<String> for $ty {
            type Error = $err;

            fn try_from($v: String) -> Result<Self, Self::Error> {
                $body
            }
        }
        $crate::domain::text_conversions!($ty, $err; $($rest)*);
    };
    ($ty:ident, $err:ty; $(#[$m:meta])* Into<String> |$v:ident| $into:expr; $($rest:tt)*) => {
        $(#[$m])*
        impl From<$ty> for String {
            fn from($v: $ty) -> Self {
                $into
            }
        }
        $crate::domain::text_conversions!($ty, $err; $($rest)*);
    };
    ($ty:ident, $err:ty; $(#[$m:meta])* AsRef<str> |$v:ident| $str:expr; $($rest:tt)*) => {
        $(#[$m])*
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                let $v = self;
                $str
            }
        }
        $crate::domain::text_conversions!($ty, $err; $($rest)*);
    };
    ($ty:ident, $err:ty; $(#[$m:meta])* Display |$v:ident| $str:expr; $($rest:tt)*) => {
        $(#[$m])*
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $v = self;
                f.write_str($str)
            }
        }
        $crate::domain::text_conversions!($ty, $err; $($rest)*);
    };
}
pub(crate) use text_conversions;

/// Declares [`InputError`], one variant per field error, with `code` and `message`
/// forwarded to the field's own error.
macro_rules! input_error {
    ($($(#[$doc:meta])* $variant:ident($err:ty),)*) => {
        /// Why something the member typed was refused. Each variant keeps the field's own
        /// error, with its stable code and its message.
        #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
        #[non_exhaustive]
        pub enum InputError {
            $(
                $(#[$doc])*
                #[error(transparent)]
                $variant(#[from] $err),
            )*
        }

        impl InputError {
            /// Stable code of the underlying error, e.g. `"card_number.branch_length"`.
            pub fn code(&self) -> &'static str {
                match self {
                    $(InputError::$variant(e) => e.code(),)*
                }
            }

            /// The member-facing message of the underlying error.
            pub fn message(&self, lang: Lang) -> Cow<'static, str> {
                match self {
                    $(InputError::$variant(e) => e.message(lang),)*
                }
            }
        }
    };
}

input_error! {
    /// メールアドレス.
    Email(EmailError),
    /// 記号・番号・枝番.
    CardNumber(CardNumberError),
    /// 保険者番号.
    InsurerNumber(InsurerNumberError),
    /// 生年月日.
    BirthDate(BirthDateError),
    /// 氏名カナ.
    KanaName(KanaNameError),
    /// ログインID.
    LoginId(LoginIdError),
    /// ニックネーム.
    Nickname(NicknameError),
    /// パスワード.
    Password(PasswordError),
}

/// Checks shared by the tests of the field types.
#[cfg(test)]
pub(crate) mod test_support {
    use serde::de::value::{Error as DeError, StringDeserializer};
    use serde::de::{DeserializeOwned, IntoDeserializer};

    /// Deserialises `stored` the way a store hands a string column to serde.
    pub(crate) fn from_stored<T: DeserializeOwned>(stored: &str) -> Result<T, DeError> {
        let de: StringDeserializer<DeError> = stored.to_owned().into_deserializer();
        T::deserialize(de)
    }
}
