//! 生年月日 (date of birth): the second factor next to the card number (DOM-11, DOM-13).
//!
//! Accepts 西暦 (`YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD`, `YYYY.MM.DD`, `YYYY年M月D日`) and
//! 和暦 (`平成2年4月1日`, `平成元年…`, `H02.04.01`, `H020401`, `㍻2年…`) with full-width
//! digits, and checks the calendar and the era boundaries. Sensitive (SEC-45): `Debug` is
//! masked, equality is constant-time.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::{Date, Month};

use crate::domain::normalize;
use crate::domain::password::birth_date_forms;

/// Why a date of birth was rejected. Never contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BirthDateError {
    /// Nothing left after trimming.
    #[error("date of birth is empty")]
    Empty,
    /// Not one of the accepted formats.
    #[error("date of birth is not in an accepted format")]
    Format,
    /// The format is fine but the date does not exist (e.g. 2 月 30 日).
    #[error("date of birth does not exist in the calendar")]
    InvalidDate,
    /// A 和暦 year/date outside its era (e.g. 平成31年5月1日, 昭和64年1月8日).
    #[error("date of birth lies outside the given Japanese era")]
    EraRange,
    /// Before 1900-01-01.
    #[error("date of birth is before 1900")]
    TooEarly,
    /// After today (DOM-13): a typo such as 2090 for 1990, told as a field error rather
    /// than a failed identity check.
    #[error("date of birth is in the future")]
    InFuture,
}

/// A Japanese era with its first and last day.
#[derive(Clone, Copy)]
struct Era {
    kanji: &'static str,
    letter: char,
    /// (year, month, day) of the first day; that year is 元年.
    first: (i32, u8, u8),
    /// Last day, or `None` for the current era.
    last: Option<(i32, u8, u8)>,
}

/// The 和暦 eras, the one table of the crate: the parser, [`BirthDate::context_words`]
/// and [`crate::domain::password::birth_date_forms`] all read it (through [`wareki`]).
///
/// 明治 begins on 1868-10-23 (明治改元, 慶応4年9月8日): the day the era name was
/// proclaimed. The proclamation dated 明治元年 back to the start of that lunar year
/// (1868-01-25), but no date before the proclamation was written in 明治, so a date
/// before 1868-10-23 has no era here. The other eras begin on the day after the
/// previous one ends.
const ERAS: [Era; 5] = [
    Era {
        kanji: "明治",
        letter: 'M',
        first: (1868, 10, 23),
        last: Some((1912, 7, 29)),
    },
    Era {
        kanji: "大正",
        letter: 'T',
        first: (1912, 7, 30),
        last: Some((1926, 12, 24)),
    },
    Era {
        kanji: "昭和",
        letter: 'S',
        first: (1926, 12, 25),
        last: Some((1989, 1, 7)),
    },
    Era {
        kanji: "平成",
        letter: 'H',
        first: (1989, 1, 8),
        last: Some((2019, 4, 30)),
    },
    Era {
        kanji: "令和",
        letter: 'R',
        first: (2019, 5, 1),
        last: None,
    },
];

fn ymd(y: i32, m: u8, d: u8) -> Result<Date, BirthDateError> {
    let month = Month::try_from(m).map_err(|_| BirthDateError::InvalidDate)?;
    Date::from_calendar_date(y, month, d).map_err(|_| BirthDateError::InvalidDate)
}

impl Era {
    fn contains(&self, date: Date) -> bool {
        let after_first = ymd(self.first.0, self.first.1, self.first.2).is_ok_and(|f| date >= f);
        let before_last = match self.last {
            Some((y, m, d)) => ymd(y, m, d).is_ok_and(|l| date <= l),
            None => true,
        };
        after_first && before_last
    }

    fn of(date: Date) -> Option<Era> {
        ERAS.iter().copied().find(|e| e.contains(date))
    }
}

/// The 和暦 of `date` from [`ERAS`]: the era's name, its letter (upper case) and the year
/// of the era (1 for 元年). `None` before 明治 (1868-10-23).
pub(crate) fn wareki(date: Date) -> Option<(&'static str, char, i32)> {
    let era = Era::of(date)?;
    Some((era.kanji, era.letter, date.year() - era.first.0 + 1))
}

/// A validated date of birth (1900-01-01 or later).
///
/// Serialised as `YYYY-MM-DD` because member rosters store it; deserialised through
/// [`BirthDate::parse`].
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BirthDate(Date);

/// Earliest accepted date of birth.
const MIN_YEAR: i32 = 1900;

/// Folds width and look-alikes so the grammar below sees ASCII digits, `/ . -`, upper-case
/// era letters and era kanji.
fn fold(input: &str) -> Result<String, BirthDateError> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let mapped = match c {
            '\u{FF0F}' => '/',
            '\u{FF0E}' | '\u{3002}' => '.',
            '\u{337E}' => {
                out.push_str("明治");
                continue;
            }
            '\u{337D}' => {
                out.push_str("大正");
                continue;
            }
            '\u{337C}' => {
                out.push_str("昭和");
                continue;
            }
            '\u{337B}' => {
                out.push_str("平成");
                continue;
            }
            '\u{32FF}' => {
                out.push_str("令和");
                continue;
            }
            '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
                // Full-width Latin letters (era abbreviations typed with the IME on).
                let offset = if c >= '\u{FF41}' { 0xFF41 } else { 0xFF21 };
                char::from_u32(u32::from(c) - offset + u32::from('A')).unwrap_or(c)
            }
            c if normalize::is_hyphen_lookalike(c) => '-',
            c => normalize::fold_digit(c).unwrap_or(c),
        };
        out.push(mapped.to_ascii_uppercase());
    }
    if out.chars().any(normalize::is_group_space) {
        // Spaces are padding only in the kanji form (`平成 2年 4月 1日`).
        if !out.contains('年') {
            return Err(BirthDateError::Format);
        }
        out.retain(|c| !normalize::is_group_space(c));
    }
    Ok(out)
}

/// A tiny cursor over the folded input.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// Takes a run of ASCII digits (possibly empty).
    fn digits(&mut self) -> &'a str {
        let end = self
            .rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest.len());
        let (run, rest) = self.rest.split_at(end);
        self.rest = rest;
        run
    }

    fn eat(&mut self, prefix: &str) -> bool {
        match self.rest.strip_prefix(prefix) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn eat_char(&mut self, pred: impl Fn(char) -> bool) -> Option<char> {
        let c = self.rest.chars().next().filter(|c| pred(*c))?;
        self.rest = self.rest.get(c.len_utf8()..).unwrap_or_default();
        Some(c)
    }

    fn at_end(&self) -> bool {
        self.rest.is_empty()
    }
}

fn num(run: &str, min_len: usize, max_len: usize) -> Result<u32, BirthDateError> {
    if run.len() < min_len || run.len() > max_len {
        return Err(BirthDateError::Format);
    }
    run.parse().map_err(|_| BirthDateError::Format)
}

fn to_u8(n: u32) -> Result<u8, BirthDateError> {
    u8::try_from(n).map_err(|_| BirthDateError::InvalidDate)
}

/// After the year: `M月D日` (日 optional) when `kanji`, else `<sep>M<sep>D` with one separator.
fn month_day(cur: &mut Cursor<'_>, kanji: bool) -> Result<(u8, u8), BirthDateError> {
    let (month, day);
    if kanji {
        month = num(cur.digits(), 1, 2)?;
        if !cur.eat("月") {
            return Err(BirthDateError::Format);
        }
        day = num(cur.digits(), 1, 2)?;
        cur.eat("日");
    } else {
        let sep = cur
            .eat_char(|c| matches!(c, '-' | '/' | '.'))
            .ok_or(BirthDateError::Format)?;
        month = num(cur.digits(), 1, 2)?;
        if cur.eat_char(|c| c == sep).is_none() {
            return Err(BirthDateError::Format);
        }
        day = num(cur.digits(), 1, 2)?;
    }
    if !cur.at_end() {
        return Err(BirthDateError::Format);
    }
    Ok((to_u8(month)?, to_u8(day)?))
}

fn parse_era(era: Era, cur: &mut Cursor<'_>) -> Result<Date, BirthDateError> {
    let (year, month, day) = if cur.eat("元") {
        let kanji = cur.eat("年");
        let (m, d) = month_day(cur, kanji)?;
        (1, m, d)
    } else {
        let run = cur.digits();
        if run.len() == 6 && cur.at_end() {
            // Compact `H020401`.
            let (y, md) = run.split_at(2);
            let (m, d) = md.split_at(2);
            (num(y, 2, 2)?, to_u8(num(m, 2, 2)?)?, to_u8(num(d, 2, 2)?)?)
        } else {
            let y = num(run, 1, 3)?;
            let kanji = cur.eat("年");
            let (m, d) = month_day(cur, kanji)?;
            (y, m, d)
        }
    };
    if year == 0 {
        return Err(BirthDateError::EraRange);
    }
    let year = i32::try_from(year).map_err(|_| BirthDateError::Format)?;
    let date = ymd(era.first.0 + year - 1, month, day)?;
    if !era.contains(date) {
        return Err(BirthDateError::EraRange);
    }
    Ok(date)
}

fn parse_western(cur: &mut Cursor<'_>) -> Result<Date, BirthDateError> {
    let run = cur.digits();
    let (year, month, day) = if run.len() == 8 && cur.at_end() {
        let (y, md) = run.split_at(4);
        let (m, d) = md.split_at(2);
        (num(y, 4, 4)?, to_u8(num(m, 2, 2)?)?, to_u8(num(d, 2, 2)?)?)
    } else {
        let y = num(run, 4, 4)?;
        let kanji = cur.eat("年");
        let (m, d) = month_day(cur, kanji)?;
        (y, m, d)
    };
    let year = i32::try_from(year).map_err(|_| BirthDateError::Format)?;
    ymd(year, month, day)
}

impl BirthDate {
    /// Parses a date of birth in any accepted format (DOM-13). Never panics.
    pub fn parse(input: &str) -> Result<Self, BirthDateError> {
        let trimmed = normalize::trim(input);
        if trimmed.is_empty() {
            return Err(BirthDateError::Empty);
        }
        if trimmed.len() > 64 {
            return Err(BirthDateError::Format);
        }
        let folded = fold(trimmed)?;
        let mut cur = Cursor { rest: &folded };
        let era = ERAS
            .iter()
            .copied()
            .find(|e| cur.eat(e.kanji) || cur.eat_char(|c| c == e.letter).is_some());
        let date = match era {
            Some(era) => parse_era(era, &mut cur)?,
            None => parse_western(&mut cur)?,
        };
        if date.year() < MIN_YEAR {
            return Err(BirthDateError::TooEarly);
        }
        Ok(Self(date))
    }

    /// DOM-13: the date as long as it is not after `today` (the member's today, in
    /// Japan): a birth date in the future is a typo, told as such.
    pub fn not_after(self, today: Date) -> Result<Self, BirthDateError> {
        if self.0 > today {
            Err(BirthDateError::InFuture)
        } else {
            Ok(self)
        }
    }

    /// Wraps an already validated date (e.g. from an insurer roster), applying the 1900 floor.
    pub fn from_date(date: Date) -> Result<Self, BirthDateError> {
        if date.year() < MIN_YEAR {
            return Err(BirthDateError::TooEarly);
        }
        Ok(Self(date))
    }

    /// The calendar date.
    pub fn date(&self) -> Date {
        self.0
    }

    /// `YYYY-MM-DD`, the stored and compared form. Sensitive: not for logs or URLs (SEC-45).
    pub fn to_iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }

    /// Every spelling of this date a password blocklist must refuse (SEC-17: "DOB in all
    /// formats including 和暦"), derived from the same era table the parser uses:
    ///
    /// - 西暦: `yyyymmdd`, `yymmdd`, `mmdd`, `yyyy`, `mmddyyyy`, `ddmmyyyy`, unpadded `yyyymd`,
    ///   `yyyy-mm-dd`/`yyyy-m-d`, `mm-dd`/`m-d` (each with `-`, `/`, `.`), `yyyy年m月d日`,
    ///   `yyyy年mm月dd日`, `m月d日`, `mm月dd日`;
    /// - 和暦: `h020401`, `h20401`, `020401`, `h2.4.1`, `h02.04.01`, `h2/4/1`, `平成2年`,
    ///   `平成02年`, `平成2`, `平成2年4月1日`, and for the first year `平成元年`, `平成元年4月1日`,
    ///   `平成1年`.
    ///
    /// Letters are lower-case; compare case-insensitively. Very short forms (`4/1`) are
    /// included; dropping words below a minimum length is the blocklist's policy.
    pub fn context_words(&self) -> Vec<String> {
        let (y, m, d) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        // The first word parses back to this date.
        let mut words = vec![format!("{y:04}{m:02}{d:02}")];
        // The password blocklist's forms, and a few more a login ID must not be.
        words.extend(birth_date_forms(self.0).iter().map(|w| w.to_lowercase()));
        words.push(format!("{y}{m}{d}"));
        if let Some((k, letter, ey)) = wareki(self.0) {
            let l = letter.to_ascii_lowercase();
            words.push(format!("{l}{ey}{m:02}{d:02}"));
            words.push(format!("{k}{ey:02}年"));
            if ey == 1 {
                words.push(format!("{k}元年{m}月{d}日"));
            }
        }
        let mut unique = Vec::with_capacity(words.len());
        for w in words {
            if !unique.contains(&w) {
                unique.push(w);
            }
        }
        unique
    }
}

crate::domain::text_conversions! { BirthDate, BirthDateError;
    FromStr;
    TryFrom<String>;
    Into<String> |value| value.to_iso();
}

impl PartialEq for BirthDate {
    /// Constant-time (SEC-45): the comparison does not reveal how close a guess was.
    fn eq(&self, other: &Self) -> bool {
        self.0
            .to_julian_day()
            .ct_eq(&other.0.to_julian_day())
            .into()
    }
}

impl Eq for BirthDate {}

impl Hash for BirthDate {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_julian_day().hash(state);
    }
}

// Masked (SEC-45).
crate::redact::debug_masked!(BirthDate, "****-**-**");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::from_stored;
    use proptest::prelude::*;

    fn iso(input: &str) -> Result<String, &'static str> {
        BirthDate::parse(input)
            .map(|b| b.to_iso())
            .map_err(|e| e.code())
    }

    // DOM-13: 西暦 formats, full-width digits, real calendar dates.
    #[test]
    fn dom_13_western_formats() {
        for (input, want) in [
            ("19900401", Ok("1990-04-01")),
            ("1990-04-01", Ok("1990-04-01")),
            ("1990/04/01", Ok("1990-04-01")),
            ("1990/4/1", Ok("1990-04-01")),
            ("1990.04.01", Ok("1990-04-01")),
            ("１９９０／０４／０１", Ok("1990-04-01")),
            ("１９９０－０４－０１", Ok("1990-04-01")),
            ("１９９００４０１", Ok("1990-04-01")),
            ("1990年4月1日", Ok("1990-04-01")),
            ("1990年 4月 1日", Ok("1990-04-01")),
            ("\u{3000}19900401\u{200B}", Ok("1990-04-01")),
            ("2000-02-29", Ok("2000-02-29")),
            ("1900-01-01", Ok("1900-01-01")),
            ("1900-02-29", Err("birth_date.invalid_date")),
            ("2023-02-29", Err("birth_date.invalid_date")),
            ("19901301", Err("birth_date.invalid_date")),
            ("1990-04-31", Err("birth_date.invalid_date")),
            ("1990-00-10", Err("birth_date.invalid_date")),
            ("1899-12-31", Err("birth_date.too_early")),
            ("1990-04/01", Err("birth_date.format")),
            ("1990 04 01", Err("birth_date.format")),
            ("900401", Err("birth_date.format")),
            ("199004011", Err("birth_date.format")),
            ("1990-004-01", Err("birth_date.format")),
            ("①990-04-01", Err("birth_date.format")),
            ("1990-04-01T00:00", Err("birth_date.format")),
            ("", Err("birth_date.empty")),
        ] {
            assert_eq!(iso(input), want.map(str::to_owned), "{input:?}");
        }
    }

    // DOM-13: 和暦 forms (kanji, 元年, letter abbreviations, compact, ligatures).
    #[test]
    fn dom_13_wareki_formats() {
        for (input, want) in [
            ("平成2年4月1日", "1990-04-01"),
            ("平成２年４月１日", "1990-04-01"),
            ("平成02年04月01日", "1990-04-01"),
            ("平成 2年 4月 1日", "1990-04-01"),
            ("平成2年4月1", "1990-04-01"),
            ("㍻2年4月1日", "1990-04-01"),
            ("H02.04.01", "1990-04-01"),
            ("h2.4.1", "1990-04-01"),
            ("Ｈ０２．０４．０１", "1990-04-01"),
            ("H2/4/1", "1990-04-01"),
            ("H020401", "1990-04-01"),
            ("平成2.4.1", "1990-04-01"),
            ("S50.01.15", "1975-01-15"),
            ("昭和50年1月15日", "1975-01-15"),
            ("R03.07.01", "2021-07-01"),
            ("令和元年5月1日", "2019-05-01"),
            ("㋿元年5月1日", "2019-05-01"),
            ("平成元年1月8日", "1989-01-08"),
            ("T10.03.03", "1921-03-03"),
            ("大正15年12月24日", "1926-12-24"),
            ("昭和元年12月25日", "1926-12-25"),
            ("明治33年1月1日", "1900-01-01"),
        ] {
            assert_eq!(iso(input), Ok(want.to_owned()), "{input:?}");
        }
    }

    // DOM-13: era boundaries are enforced.
    #[test]
    fn dom_13_wareki_boundaries() {
        for (input, want) in [
            ("平成31年4月30日", Ok("2019-04-30")),
            ("平成31年5月1日", Err("birth_date.era_range")),
            ("令和元年5月1日", Ok("2019-05-01")),
            ("令和元年4月30日", Err("birth_date.era_range")),
            ("昭和64年1月7日", Ok("1989-01-07")),
            ("昭和64年1月8日", Err("birth_date.era_range")),
            ("平成元年1月7日", Err("birth_date.era_range")),
            ("昭和元年12月24日", Err("birth_date.era_range")),
            ("大正15年12月25日", Err("birth_date.era_range")),
            ("平成0年4月1日", Err("birth_date.era_range")),
            ("H00.04.01", Err("birth_date.era_range")),
            ("平成31年2月29日", Err("birth_date.invalid_date")),
            ("明治32年12月31日", Err("birth_date.too_early")),
            ("平成100年1月1日", Err("birth_date.era_range")),
            ("平成1000年1月1日", Err("birth_date.format")),
            ("X02.04.01", Err("birth_date.format")),
        ] {
            assert_eq!(iso(input), want.map(str::to_owned), "{input:?}");
        }
    }

    // SEC-17: every spelling a password blocklist needs, including 和暦.
    #[test]
    fn sec_17_context_words() {
        let b = BirthDate::parse("1990-04-01").unwrap();
        let words = b.context_words();
        for w in [
            "19900401",
            "900401",
            "0401",
            "1990",
            "04011990",
            "01041990",
            "199041",
            "h020401",
            "h20401",
            "平成2年",
            "平成02年",
            "平成2年4月1日",
            "平成2",
            "020401",
            "h2.4.1",
            "h02.04.01",
            "h2/4/1",
            "1990-04-01",
            "1990/4/1",
            "1990.04.01",
            "04/01",
            "4-1",
            "1990年4月1日",
            "1990年04月01日",
            "4月1日",
            "04月01日",
        ] {
            assert!(words.iter().any(|x| x == w), "missing {w}: {words:?}");
        }
        let r = BirthDate::parse("令和元年5月1日").unwrap().context_words();
        for w in [
            "r010501",
            "令和元年",
            "令和1年",
            "令和1",
            "令和元年5月1日",
            "20190501",
        ] {
            assert!(r.iter().any(|x| x == w), "missing {w}: {r:?}");
        }
        let s = BirthDate::parse("1989-01-07").unwrap().context_words();
        assert!(s.iter().any(|x| x == "s640107"), "{s:?}");
        let unique: std::collections::HashSet<_> = words.iter().collect();
        assert_eq!(unique.len(), words.len());
    }

    // SEC-45: Debug is masked.
    #[test]
    fn sec_45_debug_masked() {
        let b = BirthDate::parse("1990-04-01").unwrap();
        assert_eq!(format!("{b:?}"), "BirthDate(****-**-**)");
        assert!(!format!("{b:#?}").contains("1990"));
    }

    // Conventions: serde as ISO through the parser.
    #[test]
    fn serde_iso_through_parser() {
        let b: BirthDate = from_stored("1990-04-01").unwrap();
        assert_eq!(String::from(b), "1990-04-01");
        assert!(from_stored::<BirthDate>("1990-02-30").is_err());
        assert_eq!(BirthDate::try_from("H02.04.01".to_owned()), Ok(b));
        assert_eq!(BirthDate::from_date(b.date()), Ok(b));
    }

    proptest! {
        // Conventions: never panics on any string.
        #[test]
        fn never_panics(
            s in any::<String>(),
            t in "[0-9０-９元年月日平成昭和令和大正HSRTＨ./／－ー 　-]{0,20}",
        ) {
            let _ = BirthDate::parse(&s);
            let _ = BirthDate::parse(&t);
        }

        // Round trip: parse(iso) == value, and every full-date context form (西暦/和暦 with
        // 年月日, era letter with `.` or `/`) parses back to the same date.
        #[test]
        fn canonical_round_trips(day in 0i32..80_000) {
            let date = Date::from_calendar_date(1900, Month::January, 1).unwrap()
                + time::Duration::days(i64::from(day));
            let b = BirthDate::from_date(date).unwrap();
            prop_assert_eq!(BirthDate::parse(&b.to_iso()).unwrap(), b);
            prop_assert_eq!(BirthDate::parse(&b.context_words()[0]).unwrap(), b);
            let full_date = |w: &&String| {
                (w.contains('年') && w.contains('日'))
                    || (w.starts_with(|c: char| c.is_ascii_alphabetic()) && w.contains(['.', '/']))
                    || (w.len() >= 8 && w.contains(['-', '/', '.']))
            };
            let words = b.context_words();
            let full: Vec<_> = words.iter().filter(full_date).collect();
            prop_assert!(full.len() >= 6, "{:?}", full);
            for w in full {
                prop_assert_eq!(BirthDate::parse(w).map_err(|e| e.code()), Ok(b), "{}", w);
            }
        }
    }
}
