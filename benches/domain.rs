//! What the member types, read: the field parsers of `kenpo_auth::domain` on the inputs
//! of a registration, and the refusal texts of the message catalog.
//!
//! Every R1–R5 and login request parses some of these before anything else, so their
//! cost is the floor under every step. The e-mail and nickname parsers look up each
//! character in Unicode's Default_Ignorable_Code_Point and General_Category tables
//! (`icu_properties`).
//!
//! Run: `cargo bench --bench domain`

use criterion::{Criterion, criterion_group, criterion_main};
use kenpo_auth::Lang;
use kenpo_auth::domain::{
    BirthDate, CardNumber, EmailAddress, EmailError, KanaName, LoginId, Nickname,
};
use std::hint::black_box;

fn domain(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, input) in [
        ("email/plain", "taro.yamada@example.co.jp"),
        (
            "email/full_width",
            "ｔａｒｏ．ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ",
        ),
        ("email/legacy_docomo", "taro..yamada.@docomo.ne.jp"),
    ] {
        g.bench_function(name, |b| b.iter(|| EmailAddress::parse(black_box(input))));
    }
    g.bench_function("nickname", |b| {
        b.iter(|| Nickname::parse(black_box("やまだ たろう❤️")))
    });
    g.bench_function("card_number", |b| {
        b.iter(|| CardNumber::parse(black_box("９９９－１２３４５６－００")))
    });
    g.bench_function("birth_date", |b| {
        b.iter(|| BirthDate::parse(black_box("平成2年4月1日")))
    });
    g.bench_function("kana_name", |b| {
        b.iter(|| KanaName::parse(black_box("ﾔﾏﾀﾞ ﾀﾛｳ")))
    });
    g.bench_function("login_id", |b| {
        b.iter(|| LoginId::parse(black_box("taro-sakura")))
    });
    g.finish();
    c.bench_function("catalog/message", |b| {
        b.iter(|| black_box(EmailError::DomainEmpty).message(black_box(Lang::Ja)))
    });
}

criterion_group!(benches, domain);
criterion_main!(benches);
