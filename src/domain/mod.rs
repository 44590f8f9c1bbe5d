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
mod normalize;
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

/// Why something the member typed was refused. Each variant keeps the field's own
/// error, with its stable code and its message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// メールアドレス.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// 記号・番号・枝番.
    #[error(transparent)]
    CardNumber(#[from] CardNumberError),
    /// 保険者番号.
    #[error(transparent)]
    InsurerNumber(#[from] InsurerNumberError),
    /// 生年月日.
    #[error(transparent)]
    BirthDate(#[from] BirthDateError),
    /// 氏名カナ.
    #[error(transparent)]
    KanaName(#[from] KanaNameError),
    /// ログインID.
    #[error(transparent)]
    LoginId(#[from] LoginIdError),
    /// ニックネーム.
    #[error(transparent)]
    Nickname(#[from] NicknameError),
    /// パスワード.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl InputError {
    /// Stable code of the underlying error, e.g. `"card_number.branch_length"`.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::Email(e) => e.code(),
            InputError::CardNumber(e) => e.code(),
            InputError::InsurerNumber(e) => e.code(),
            InputError::BirthDate(e) => e.code(),
            InputError::KanaName(e) => e.code(),
            InputError::LoginId(e) => e.code(),
            InputError::Nickname(e) => e.code(),
            InputError::Password(e) => e.code(),
        }
    }

    /// The member-facing message of the underlying error.
    pub fn message(&self, lang: Lang) -> Cow<'static, str> {
        match self {
            InputError::Email(e) => e.message(lang),
            InputError::CardNumber(e) => e.message(lang),
            InputError::InsurerNumber(e) => e.message(lang),
            InputError::BirthDate(e) => e.message(lang),
            InputError::KanaName(e) => e.message(lang),
            InputError::LoginId(e) => e.message(lang),
            InputError::Nickname(e) => e.message(lang),
            InputError::Password(e) => e.message(lang),
        }
    }
}
