//! SAMPLE data for the home page: a 資格情報のお知らせ built from the (fictional) roster
//! entry, and a made-up 医療費のお知らせ. Nothing here comes from a real insurer; the
//! page labels it サンプル.

use kenpo_auth::domain::InsurerNumber;
use kenpo_auth::ports::{MemberRecord, Relation};

use super::roster::DisplayInfo;

/// One line of the sample 資格情報のお知らせ.
#[derive(Clone, Debug)]
pub(crate) struct Field {
    /// Label.
    pub label: &'static str,
    /// Value as shown.
    pub value: String,
}

/// One month of the sample 医療費のお知らせ.
#[derive(Clone, Debug)]
pub(crate) struct MedicalRow {
    /// 診療年月.
    pub month: &'static str,
    /// 医療機関等 (fictional).
    pub provider: &'static str,
    /// 入院・入院外・調剤.
    pub kind: &'static str,
    /// 日数.
    pub days: u32,
    /// 医療費総額 (円).
    pub total: u32,
    /// 自己負担額 (円).
    pub own_share: u32,
}

/// A fictional 保険者番号 of a 健保組合 (法別 06) with a valid check digit.
pub(crate) const SAMPLE_INSURER_NUMBER: &str = "06999999";

fn yen(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out.push('円');
    out
}

fn date_ja(d: time::Date) -> String {
    format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
}

/// The sample 資格情報のお知らせ for a roster entry. The card number is shown masked:
/// the page is a demo of the notice, not a place to print 記号・番号 in full (SEC-45).
pub(crate) fn qualification(
    insurer: &str,
    m: &MemberRecord,
    d: Option<&DisplayInfo>,
) -> Vec<Field> {
    let insurer_number = InsurerNumber::parse(SAMPLE_INSURER_NUMBER)
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let relation = match m.relation {
        Relation::Insured => "本人(被保険者)",
        _ => "家族(被扶養者)",
    };
    vec![
        Field {
            label: "保険者名称",
            value: insurer.to_owned(),
        },
        Field {
            label: "保険者番号",
            value: insurer_number,
        },
        Field {
            label: "記号・番号・枝番",
            value: m.card_number.masked(),
        },
        Field {
            label: "氏名",
            value: d.map(|d| d.name.clone()).unwrap_or_default(),
        },
        Field {
            label: "氏名(カナ)",
            value: m
                .kana_name
                .as_ref()
                .map(|k| k.as_str().to_owned())
                .unwrap_or_default(),
        },
        Field {
            label: "生年月日",
            value: date_ja(m.birth_date.date()),
        },
        Field {
            label: "本人・家族の別",
            value: relation.to_owned(),
        },
        Field {
            label: "資格取得年月日",
            value: d.map(|d| date_ja(d.acquired_on)).unwrap_or_default(),
        },
        Field {
            label: "一部負担金の割合",
            value: "3割".to_owned(),
        },
    ]
}

/// The sample 医療費のお知らせ (the same made-up months for everyone).
pub(crate) fn medical_expenses() -> Vec<MedicalRow> {
    vec![
        MedicalRow {
            month: "2026年8月",
            provider: "さくら内科クリニック",
            kind: "入院外",
            days: 2,
            total: 8_460,
            own_share: 2_540,
        },
        MedicalRow {
            month: "2026年8月",
            provider: "さくら調剤薬局",
            kind: "調剤",
            days: 1,
            total: 3_120,
            own_share: 940,
        },
        MedicalRow {
            month: "2026年9月",
            provider: "みどり歯科医院",
            kind: "入院外",
            days: 3,
            total: 12_300,
            own_share: 3_690,
        },
        MedicalRow {
            month: "2026年10月",
            provider: "さくら内科クリニック",
            kind: "入院外",
            days: 1,
            total: 4_230,
            own_share: 1_270,
        },
    ]
}

/// The sample rows' totals: (医療費総額, 自己負担額), formatted.
pub(crate) fn totals(rows: &[MedicalRow]) -> (String, String) {
    let total = rows.iter().map(|r| r.total).sum();
    let own = rows.iter().map(|r| r.own_share).sum();
    (yen(total), yen(own))
}

/// Formats an amount in yen with thousands separators.
pub(crate) fn format_yen(n: u32) -> String {
    yen(n)
}
