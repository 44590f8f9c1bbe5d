//! The language a member reads messages and mails in.

use serde::{Deserialize, Serialize};

/// Language of member-facing text (rejection messages, mails).
///
/// Japanese is the default because the members of a 健保組合 read Japanese; English is
/// offered for members who ask for it and for host developers reading logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Lang {
    /// 日本語 (default).
    #[default]
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The Japanese or the English one of two texts, in this language.
    pub(crate) fn pick<T>(self, ja: T, en: T) -> T {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
}
