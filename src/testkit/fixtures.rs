//! The one copy of the sample data that tests, examples and benchmarks share: a
//! fictional insurer (さくら健康保険組合), a policy with test-minimum hashing, a fixed
//! digest key, a three-member roster, sample passwords and addresses, and small builders
//! for what a member types.
//!
//! **For tests, examples and benchmarks only.** Everything here is public and fixed: the
//! secret key is thirty-two 7s, the policy hashes passwords at the cheapest Argon2id cost
//! (hence [`danger_test_minimum_policy`]), and the builders panic on malformed input (a
//! panic is how a test fails). A host never builds a portal from these.
//!
//! Values tests compare against are public constants, so a test can type them
//! (`claim(TARO_CARD, TARO_BIRTH)`); where one test needs something else (another policy
//! tweak, a member without a kana name), it starts from these and changes that one thing
//! at the call site.

// Fixtures panic on malformed input: that is a failed test, not a host's error path.
#![allow(clippy::expect_used, clippy::panic)]

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use time::macros::datetime;

use super::{ManualClock, MemoryDirectory};
use crate::domain::{BirthDate, CardNumber, EmailAddress, KanaName, Password};
use crate::error::{Error, Rejection};
use crate::flow::IdentityClaim;
use crate::password_hash::HashParams;
use crate::policy::{Deviation, InsurerProfile, Policy};
use crate::portal::{NewCredentials, Portal, PortalBuilder};
use crate::ports::{MemberId, MemberRecord, Relation};
use crate::token::{DigestKey, DigestKeyring};

// ── The insurer ─────────────────────────────────────────────────────────────────────────

/// The sample insurer's name.
pub const INSURER_NAME: &str = "さくら健康保険組合";
/// The sample portal's name.
pub const SERVICE_NAME: &str = "さくらけんぽWeb";
/// The sample insurer's sender address (its domain is [`SENDER_DOMAIN`]).
pub const SENDER_ADDRESS: &str = "no-reply@sakura-kenpo.example.jp";
/// The domain of [`SENDER_ADDRESS`] and [`BASE_URL`].
pub const SENDER_DOMAIN: &str = "sakura-kenpo.example.jp";
/// The sample insurer's support contact (「お心当たりのない場合」).
pub const SUPPORT_CONTACT: &str = "さくら健康保険組合 適用グループ 03-0000-0000";
/// The base every mailed link of the sample portal starts with (a reserved
/// `.example.jp` name: nothing answers there).
pub const BASE_URL: &str = "https://portal.sakura-kenpo.example.jp";

/// The sample insurer: [`INSURER_NAME`], [`SERVICE_NAME`], [`SENDER_ADDRESS`],
/// [`SUPPORT_CONTACT`] and [`BASE_URL`], with the profile's defaults otherwise.
pub fn sample_profile() -> InsurerProfile {
    InsurerProfile::new(
        INSURER_NAME,
        SERVICE_NAME,
        SENDER_ADDRESS,
        SUPPORT_CONTACT,
        BASE_URL,
    )
}

// ── Policy and keys ─────────────────────────────────────────────────────────────────────

/// The rationale [`danger_test_minimum_policy`] gives for its deviation.
pub const TEST_MINIMUM_RATIONALE: &str = "tests, examples and benchmarks only";

/// The strict default [`Policy`] with `HashParams::danger_test_minimum()` hashing
/// (allowed as `Deviation::WeakPasswordHashing`), so tests and benchmarks measure the
/// library rather than Argon2id, and no [`Policy::answer_floor`]. Everything else is
/// `Policy::default()`.
///
/// **Never for a real portal**: the hashing offers no resistance to an offline guess.
pub fn danger_test_minimum_policy() -> Policy {
    let mut p = Policy::default();
    p.hashing = HashParams::danger_test_minimum();
    // Tests assert what is answered and stored, not how long it took; the floor has
    // its own test and `benches/timing.rs` measures it.
    p.answer_floor = time::Duration::ZERO;
    p = p.allow_deviation(Deviation::LowAnswerFloor, TEST_MINIMUM_RATIONALE);
    p.allow_deviation(Deviation::WeakPasswordHashing, TEST_MINIMUM_RATIONALE)
}

/// The ID of the test secret key.
pub const SECRET_KEY_ID: u8 = 1;
/// The test secret key: public, so anyone can forge every digest made with it.
pub const SECRET_KEY: [u8; 32] = [7; 32];

/// A keyring holding only the test secret key ([`SECRET_KEY_ID`], [`SECRET_KEY`]): the
/// digests a portal built by [`portal_builder`] makes.
pub fn test_keyring() -> DigestKeyring {
    DigestKeyring::new(DigestKey::new(SECRET_KEY_ID, SECRET_KEY).expect("a 32-byte key"))
}

/// `Portal::builder()` with the sample insurer, [`danger_test_minimum_policy`] and the
/// test secret key. Add a store, a mailer, a roster and (usually) a clock; a later
/// `.policy(…)` or `.insurer(…)` replaces the sample one.
pub fn portal_builder() -> PortalBuilder {
    Portal::builder()
        .policy(danger_test_minimum_policy())
        .insurer(sample_profile())
        .secret_key(SECRET_KEY_ID, SECRET_KEY)
}

// ── Time ────────────────────────────────────────────────────────────────────────────────

/// Where the sample clocks start: 2026-11-24 09:00 UTC (18:00 in Japan).
pub const START: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

/// A [`ManualClock`] stopped at [`START`].
pub fn sample_clock() -> ManualClock {
    ManualClock::new(START)
}

// ── The roster ──────────────────────────────────────────────────────────────────────────

/// 山田太郎, the insured (本人): member ID.
pub const TARO_MEMBER_ID: &str = "M001";
/// 山田太郎: 記号・番号・枝番.
pub const TARO_CARD: &str = "999-123456-00";
/// 山田太郎: 生年月日.
pub const TARO_BIRTH: &str = "1985-04-12";
/// 山田太郎: 氏名カナ.
pub const TARO_KANA: &str = "ヤマダ タロウ";
/// 山田太郎's own address.
pub const TARO_EMAIL: &str = "taro.yamada@example.jp";

/// 山田花子, Taro's dependent (家族: same 記号・番号, own 枝番): member ID.
pub const HANAKO_MEMBER_ID: &str = "M002";
/// 山田花子: 記号・番号・枝番.
pub const HANAKO_CARD: &str = "999-123456-01";
/// 山田花子: 生年月日.
pub const HANAKO_BIRTH: &str = "1987-09-30";
/// 山田花子: 氏名カナ.
pub const HANAKO_KANA: &str = "ヤマダ ハナコ";
/// 山田花子's own address.
pub const HANAKO_EMAIL: &str = "hanako.yamada@example.jp";

/// 鈴木一郎, an insured of another household: member ID.
pub const ICHIRO_MEMBER_ID: &str = "M003";
/// 鈴木一郎: 記号・番号・枝番.
pub const ICHIRO_CARD: &str = "999-654321-00";
/// 鈴木一郎: 生年月日.
pub const ICHIRO_BIRTH: &str = "1990-01-15";
/// 鈴木一郎: 氏名カナ.
pub const ICHIRO_KANA: &str = "スズキ イチロウ";
/// 鈴木一郎's own address.
pub const ICHIRO_EMAIL: &str = "ichiro.suzuki@example.jp";

/// An eligible roster entry from typed text; `kana` may be left out.
pub fn member(
    id: &str,
    card: &str,
    birth: &str,
    kana: Option<&str>,
    relation: Relation,
) -> MemberRecord {
    MemberRecord::new(
        MemberId::new(id),
        CardNumber::parse(card).expect("a sample card number"),
        BirthDate::parse(birth).expect("a sample birth date"),
        kana.map(|k| KanaName::parse(k).expect("a sample kana name")),
        relation,
        true,
    )
}

/// 山田太郎's roster entry (insured, eligible, with kana).
pub fn taro() -> MemberRecord {
    member(
        TARO_MEMBER_ID,
        TARO_CARD,
        TARO_BIRTH,
        Some(TARO_KANA),
        Relation::Insured,
    )
}

/// 山田花子's roster entry (dependent, eligible, with kana).
pub fn hanako() -> MemberRecord {
    member(
        HANAKO_MEMBER_ID,
        HANAKO_CARD,
        HANAKO_BIRTH,
        Some(HANAKO_KANA),
        Relation::Dependent,
    )
}

/// 鈴木一郎's roster entry (insured, eligible, with kana).
pub fn ichiro() -> MemberRecord {
    member(
        ICHIRO_MEMBER_ID,
        ICHIRO_CARD,
        ICHIRO_BIRTH,
        Some(ICHIRO_KANA),
        Relation::Insured,
    )
}

/// The sample roster's entries: [`taro`], [`hanako`], [`ichiro`].
pub fn sample_members() -> [MemberRecord; 3] {
    [taro(), hanako(), ichiro()]
}

/// A [`MemoryDirectory`] holding `members`.
pub fn roster_of(members: impl IntoIterator<Item = MemberRecord>) -> MemoryDirectory {
    let directory = MemoryDirectory::new();
    for m in members {
        directory.insert(m);
    }
    directory
}

/// The sample roster: a [`MemoryDirectory`] with [`sample_members`].
pub fn sample_roster() -> MemoryDirectory {
    roster_of(sample_members())
}

// ── What a member types ─────────────────────────────────────────────────────────────────

/// A password the strict policy accepts (15 characters, its minimum).
pub const PASSWORD: &str = "さくらの花が咲く春の午後に散歩";
/// A second accepted password, different from [`PASSWORD`].
pub const OTHER_PASSWORD: &str = "川沿いの道を自転車で走る朝";
/// The nickname [`credentials`] gives.
pub const NICKNAME: &str = "たろう";

/// A password from typed text; panics where `Password::new` refuses it.
pub fn password(s: &str) -> Password {
    Password::new(s).expect("a sample password")
}

/// An address from typed text; panics where `EmailAddress::parse` refuses it.
pub fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("a sample address")
}

/// What a member types at R3: card and birth date, no kana.
pub fn claim(card: &str, birth: &str) -> IdentityClaim {
    IdentityClaim {
        card_number: CardNumber::parse(card).expect("a sample card number"),
        birth_date: BirthDate::parse(birth).expect("a sample birth date"),
        kana_name: None,
    }
}

/// What a member types at R5: `password` twice, and the nickname [`NICKNAME`].
pub fn credentials(login_id: &str, password: &str) -> NewCredentials {
    NewCredentials {
        login_id: login_id.to_owned(),
        password: self::password(password),
        password_confirmation: self::password(password),
        nickname: Some(NICKNAME.to_owned()),
    }
}

/// A token, code or key as a host parses it from a form, query or cookie. Panics on
/// malformed text; for the host's answer to that, call `str::parse` and compare the
/// [`Rejection`].
pub fn parsed<T>(s: &str) -> T
where
    T: FromStr<Err = Rejection>,
{
    s.parse()
        .unwrap_or_else(|r| panic!("{s:?} should parse, got {r:?}"))
}

/// The rejection inside `e`; panics on any other error.
pub fn rejection(e: Error) -> Rejection {
    match e {
        Error::Rejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The rejection a call answered; panics on success or any other error.
pub fn rejection_of<T: fmt::Debug>(r: Result<T, Error>) -> Rejection {
    match r {
        Err(Error::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}
