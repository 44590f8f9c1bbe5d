//! The insurer's roster entries, as the `MemberDirectory` port returns them.

use serde::{Deserialize, Serialize};

use crate::domain::{BirthDate, CardNumber, KanaName};

/// The insurer's own identifier of a roster member (a 被保険者 or 被扶養者). Opaque to the
/// library; it must not be derived from the card numbers in a way a reader could
/// reverse, because it appears in stores and audit events.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(String);

impl MemberId {
    /// Wraps the insurer's identifier.
    pub fn new(id: impl Into<String>) -> Self {
        MemberId(id.into())
    }

    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 本人 or 家族, as the insurer's record says — never inferred from the 枝番 (DOM-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Relation {
    /// 被保険者 (本人).
    Insured,
    /// 被扶養者 (家族).
    Dependent,
}

/// One roster entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberRecord {
    /// The insurer's identifier.
    pub member_id: MemberId,
    /// 記号・番号・枝番 on the member's 資格確認書 / 資格情報のお知らせ.
    pub card_number: CardNumber,
    /// 生年月日, the second factor of the identity check (DOM-11).
    pub birth_date: BirthDate,
    /// 氏名カナ, checked when the policy and the claim include it.
    pub kana_name: Option<KanaName>,
    /// 本人 / 家族.
    pub relation: Relation,
    /// Whether the member is currently insured (false after 資格喪失).
    pub eligible: bool,
}

impl MemberRecord {
    /// A roster entry.
    pub fn new(
        member_id: MemberId,
        card_number: CardNumber,
        birth_date: BirthDate,
        kana_name: Option<KanaName>,
        relation: Relation,
        eligible: bool,
    ) -> Self {
        MemberRecord {
            member_id,
            card_number,
            birth_date,
            kana_name,
            relation,
            eligible,
        }
    }
}
