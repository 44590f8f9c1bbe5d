//! The demo roster: a CSV shipped with the example (`roster.csv`), read into the
//! library's `MemoryDirectory`, plus the two display-only columns the sample
//! 資格情報のお知らせ shows.
//!
//! A real insurer implements `MemberDirectory` over its 資格 data instead.

use std::collections::HashMap;

use async_trait::async_trait;
use kenpo_auth::domain::{BirthDate, CardNumber, KanaName};
use kenpo_auth::ports::{DirectoryError, MemberDirectory, MemberId, MemberRecord, Relation};
use kenpo_auth::testkit::MemoryDirectory;
use time::Date;

/// Display-only roster columns for the sample notices.
#[derive(Clone, Debug)]
pub(crate) struct DisplayInfo {
    /// 氏名 (fictional).
    pub name: String,
    /// 資格取得年月日.
    pub acquired_on: Date,
}

/// The roster: the library's directory and the sample display columns.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    directory: MemoryDirectory,
    display: HashMap<String, DisplayInfo>,
    count: usize,
}

/// A line of the CSV that could not be read. Names the line and the column, never the
/// value (it may be a card number).
#[derive(Debug)]
pub(crate) struct RosterError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for RosterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

impl std::error::Error for RosterError {}

const HEADER: [&str; 8] = [
    "member_id",
    "card_number",
    "birth_date",
    "kana_name",
    "relation",
    "eligible",
    "display_name",
    "acquired_on",
];

impl Roster {
    /// Reads the CSV: `#` comments, one header line, then one member per line. Fields
    /// hold no commas or quotes, so a plain split is enough.
    pub(crate) fn from_csv(text: &str) -> Result<Roster, RosterError> {
        let mut roster = Roster::default();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = row.split(',').map(str::trim).collect();
            if !header_seen {
                if fields != HEADER {
                    return Err(RosterError {
                        line,
                        what: format!("header must be {}", HEADER.join(",")),
                    });
                }
                header_seen = true;
                continue;
            }
            let err = |what: &str| RosterError {
                line,
                what: what.to_owned(),
            };
            let [id, card, birth, kana, relation, eligible, name, acquired] = fields[..] else {
                return Err(err("expected 8 columns"));
            };
            let card = CardNumber::parse(card).map_err(|_| err("card_number"))?;
            let birth = BirthDate::parse(birth).map_err(|_| err("birth_date"))?;
            let kana = match kana {
                "" => None,
                k => Some(KanaName::parse(k).map_err(|_| err("kana_name"))?),
            };
            let relation = match relation {
                "本人" | "insured" => Relation::Insured,
                "家族" | "dependent" => Relation::Dependent,
                _ => return Err(err("relation must be 本人 or 家族")),
            };
            let eligible = match eligible {
                "true" | "有効" => true,
                "false" | "喪失" => false,
                _ => return Err(err("eligible must be true or false")),
            };
            let acquired_on = BirthDate::parse(acquired)
                .map(|d| d.date())
                .map_err(|_| err("acquired_on"))?;
            roster.directory.insert(MemberRecord::new(
                MemberId::new(id),
                card,
                birth,
                kana,
                relation,
                eligible,
            ));
            roster.display.insert(
                id.to_owned(),
                DisplayInfo {
                    name: name.to_owned(),
                    acquired_on,
                },
            );
            roster.count += 1;
        }
        if !header_seen {
            return Err(RosterError {
                line: 0,
                what: "no header line".to_owned(),
            });
        }
        Ok(roster)
    }

    /// How many members were read.
    pub(crate) fn member_count(&self) -> usize {
        self.count
    }

    /// The display columns of a member.
    pub(crate) fn display(&self, id: &MemberId) -> Option<&DisplayInfo> {
        self.display.get(id.as_str())
    }
}

#[async_trait]
impl MemberDirectory for Roster {
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError> {
        self.directory.find(card).await
    }

    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError> {
        self.directory.get(id).await
    }
}
