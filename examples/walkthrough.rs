//! The whole member journey in the terminal: 新規利用登録 (R1–R5), then login with the
//! e-mailed 暗証キー (L1–L4), printing each screen and each mail the member would see.
//!
//! Everything runs in memory — `MemoryStore`, a `MemoryDirectory` with a fictional roster,
//! a `RecordingMailer` and a `ManualClock` — with the seed portal's policy and the real
//! (default) Argon2id cost, so it needs no setup:
//!
//! ```text
//! cargo run --example walkthrough
//! ```
//!
//! Links, keys and codes are read from the typed mails (`MailMessage::…`), never by
//! scraping the printed text, just as a host's tests should. The insurer, member and
//! addresses are fictional.

use std::error::Error;
use std::io::Write;
use std::sync::Arc;

use kenpo_auth::domain::{BirthDate, CardNumber, Password};
use kenpo_auth::flow::{IdentityClaim, LinkStatus};
use kenpo_auth::mail::{MailMessage, OutgoingMail, RecordingMailer};
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::ports::{MemberId, MemberRecord, Relation};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::{ManualClock, MemoryDirectory};
use kenpo_auth::token::{AuthKey, OtpCode};
use kenpo_auth::{InsurerProfile, Lang, Policy, Portal, Rejection};
use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime};

/// What the example returns on an unexpected turn: a message, never a panic.
type Outcome<T = ()> = Result<T, Box<dyn Error>>;

const INSURER: &str = "さくら健康保険組合";
const SERVICE: &str = "さくらけんぽWeb";
const SENDER: &str = "no-reply@sakura-kenpo.example.jp";
const MEMBER_EMAIL: &str = "taro.yamada@example.jp";
/// What the member types at 本人確認: full-width digits and a full-width hyphen, although
/// the screen asks for half-width — the library folds them.
const TYPED_CARD: &str = "９９９－１２３４５６－００";
const TYPED_BIRTH: &str = "1985年4月12日";
const LOGIN_ID: &str = "yamada-t2026";
const PASSWORD: &str = "hanami-Bento-7";
const WRONG_PASSWORD: &str = "hanami-bento-7";
const NICKNAME: &str = "たろう";

fn main() -> Outcome {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run(&mut out)
}

/// Runs the whole journey and writes the transcript to `out`.
///
/// The password hasher runs Argon2 on Tokio's blocking pool, so the journey runs inside
/// a small current-thread runtime of its own.
pub fn run(out: &mut impl Write) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(journey(out))
}

/// The portal and the in-memory parts the walkthrough looks into.
struct Demo {
    portal: Portal,
    mailer: RecordingMailer,
    clock: ManualClock,
}

fn demo() -> Outcome<Demo> {
    let directory = MemoryDirectory::new();
    directory.insert(MemberRecord::new(
        MemberId::new("SAKURA-0001"),
        CardNumber::parse("999-123456-00")?,
        BirthDate::parse("1985-04-12")?,
        None,
        Relation::Insured,
        true,
    ));
    // A family member: same 記号-番号, own 枝番, and (if registering) an own address.
    directory.insert(MemberRecord::new(
        MemberId::new("SAKURA-0002"),
        CardNumber::parse("999-123456-01")?,
        BirthDate::parse("1987-09-30")?,
        None,
        Relation::Dependent,
        true,
    ));
    let mailer = RecordingMailer::new();
    // 2026-11-24 18:00 in Japan.
    let clock = ManualClock::new(datetime!(2026-11-24 09:00 UTC));
    // A real host loads this key from its secret store; the demo draws a fresh one.
    let mut secret_key = [0u8; 32];
    rand::fill(&mut secret_key);
    let portal = Portal::builder()
        .store(MemoryStore::new())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        // The seed portal's rules (8-character passwords plus the e-mailed 暗証キー) with
        // the real Argon2id cost: the walkthrough hashes only a handful of times.
        .policy(Policy::seed_portal())
        .insurer(InsurerProfile::new(
            INSURER,
            SERVICE,
            SENDER,
            "さくら健康保険組合 適用グループ 03-0000-0000",
            "https://portal.sakura-kenpo.example.jp",
        ))
        .secret_key(1, secret_key)
        .build()?;
    Ok(Demo {
        portal,
        mailer,
        clock,
    })
}

async fn journey(out: &mut impl Write) -> Outcome {
    let Demo {
        portal,
        mailer,
        clock,
    } = demo()?;

    writeln!(
        out,
        "{INSURER}「{SERVICE}」 新規利用登録からログインまで (すべて架空のデータです)\n"
    )?;
    frame(
        out,
        "設定",
        "保証レベル (Portal::assurance_report)",
        &portal.assurance_report(Lang::Ja),
    )?;

    // ── 新規利用登録 ──────────────────────────────────────────────────────────
    part(out, "新規利用登録")?;
    screen(
        out,
        "ログイン",
        "登録したログインIDとパスワードでログインしてください。\n\n\
         ログインID  [                    ]\n\
         パスワード  [                    ]  □パスワードを表示する\n\
         【ログイン】\n\n\
         ログインID・パスワードを忘れた方はこちら\n\
         ユーザー登録がお済みでない方は新規利用登録を行ってください。\n\
         【新規利用登録】",
    )?;
    act(
        out,
        "【新規利用登録】を押します (ログインIDやパスワードの入力は必要ありません)。",
    )?;
    screen(
        out,
        "新規利用登録",
        &format!(
            "メールアドレスを入力し、送信してください。\n\n\
             メールアドレス  [{MEMBER_EMAIL}]\n\
             【送信する】\n\n\
             ※登録されたメールアドレスは、健保からご案内などの連絡先として利用いたします。\n\
             \u{3000}ご了承のうえ、ご登録ください。"
        ),
    )?;
    act(out, "メールアドレスを入力し、【送信する】を押します。")?;
    let started = portal.start_registration(MEMBER_EMAIL).await?;
    let mut sent = format!(
        "入力されたメールアドレス宛に、利用登録のURLが記載されたメールを送信しました。\n\
         記載されたURLにアクセスして、利用登録の手続きを進めてください。\n\
         ※URLには有効期限がありますのでご注意ください。\n\
         しばらく経ってもメールが届かない場合は、メールアドレスの入力からやり直してください。\n\n\
         ★ご家族と重複するメールアドレスは使用できません。\n\
         \u{3000}一人ひとり個別のアドレスが必要です。\n\n\
         ★迷惑メール設定をされている方は、\n\
         \u{3000}{SENDER} が受信できるようにあらかじめ設定してください。"
    );
    if let Some(advisory) = &started.carrier_advisory {
        sent.push_str("\n\n");
        sent.push_str(advisory);
    }
    screen(out, "新規利用登録 送信完了", &sent)?;

    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let MailMessage::RegistrationLink(link1) = mail.message else {
        return Err(unexpected("「利用登録手続きのご案内」", &mail));
    };

    clock.advance(Duration::minutes(3));
    act(out, "メールに記載のURLにアクセスします。")?;
    let link1_until = match portal.inspect_registration_link(&link1.token).await? {
        LinkStatus::Valid { expires_at } => expires_at,
        other => return Err(format!("link 1 should be valid, it is {other:?}").into()),
    };
    screen(
        out,
        "新規利用登録 本人確認ページへ",
        &format!(
            "事前登録されていない方は、こちらから利用登録を開始してください。\n\
             【本人確認ページへ】\n\n\
             事前にお知らせしたログインIDと仮パスワードをお持ちの方は、こちらからログインしてください。\n\
             ログインID  [                    ]\n\
             仮パスワード [                    ]  □パスワードを表示する\n\
             【ログイン】\n\n\
             (このURLの有効期限: {})",
            jst(link1_until)
        ),
    )?;
    act(
        out,
        "【本人確認ページへ】を押します (ここで初めてURLを使用済みにします。メールの安全確認ソフトがURLを開いただけでは消費されません)。",
    )?;
    let handle = portal.open_registration_link(&link1.token).await?;

    screen(
        out,
        "本人確認",
        &format!(
            "記号番号枝番  [{TYPED_CARD}]\n\
             生年月日      [{TYPED_BIRTH}]\n\
             【確認】\n\n\
             記号番号枝番は、被保険者等の【記号】【番号】【枝番】を「ハイフン」でつなげた数字です。\n\
             (例) 999-123456-00\n\
             すべて半角文字で入力してください。\n\
             ※記号・番号・枝番は、資格確認書・資格情報のお知らせ、またはマイナポータルの「健康保険証」欄で確認できます。"
        ),
    )?;
    act(
        out,
        "記号番号枝番を全角で入力してしまいましたが、そのまま【確認】を押します。",
    )?;
    let card = CardNumber::parse(TYPED_CARD).map_err(|e| e.message(Lang::Ja).into_owned())?;
    let birth_date = BirthDate::parse(TYPED_BIRTH).map_err(|e| e.message(Lang::Ja).into_owned())?;
    note(
        out,
        &format!(
            "全角の数字とハイフンは半角に読み替えて受け付けます: {card} (画面やログでは記号・番号を伏せて表示します)"
        ),
    )?;
    let shown = portal
        .verify_identity(
            &handle,
            IdentityClaim {
                card_number: card,
                birth_date,
                kana_name: None,
            },
        )
        .await?;
    screen(
        out,
        "本人確認 認証キー表示",
        &format!(
            "本人確認が完了しました。\n\n\
             認証キー：{}\n\n\
             ※この認証キーは次のステップで必要になりますので、必ず控えてください。\n\
             ※認証キーはこの画面にだけ表示します。メールには記載しません。\n\
             最初に入力したメールアドレス宛に「本人確認完了のご案内」という件名のメールを送信しました。\n\
             メールに記載のURLにアクセスし、この認証キーを入力してください。\n\
             (認証キーとURLの有効期限: {})",
            shown.auth_key.expose_secret(),
            jst(shown.expires_at)
        ),
    )?;

    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let MailMessage::IdentityVerified(link2) = mail.message else {
        return Err(unexpected("「本人確認完了のご案内」", &mail));
    };

    clock.advance(Duration::minutes(2));
    act(
        out,
        "メールに記載のURLにアクセスします (別の端末からでも構いません)。",
    )?;
    if !matches!(
        portal.inspect_verification_link(&link2.token).await?,
        LinkStatus::Valid { .. }
    ) {
        return Err("link 2 should be valid".into());
    }
    let typed_key = shown.auth_key.expose_secret().to_lowercase();
    screen(
        out,
        "認証キー入力",
        &format!(
            "先ほどの画面に表示された認証キーを入力し、【認証】ボタンを押してください。\n\n\
             認証キー  [{typed_key}]\n\
             【認証】"
        ),
    )?;
    act(
        out,
        "控えておいた認証キーを (小文字のまま) 入力し、【認証】を押します。",
    )?;
    let handle = portal
        .confirm_auth_key(&link2.token, &typed_key.parse::<AuthKey>()?)
        .await?;

    let dots = "●".repeat(PASSWORD.chars().count());
    screen(
        out,
        "利用者情報入力",
        &format!(
            "新しいログインID、パスワードを入力してください。\n\n\
             新ログインID         [{LOGIN_ID}]\n\
             新パスワード         [{dots}]\n\
             新パスワード(確認)   [{dots}]  □パスワードを表示する\n\
             メールアドレス       {MEMBER_EMAIL}\n\
             ニックネーム         [{NICKNAME}]\n\
             【登録】\n\n\
             新ログインID・新パスワードは、ご自身で設定してください。\n\
             ※以後のログインで使用しますので、お忘れないようご注意ください。\n\
             ※パスワードは{}文字以上です。記号や数字を混ぜる決まりはありません。",
            portal.policy().password.min_chars
        ),
    )?;
    act(
        out,
        "新ログインIDと新パスワードを決めて、【登録】を押します。",
    )?;
    let registered = portal
        .complete_registration(
            &handle,
            NewCredentials {
                login_id: LOGIN_ID.to_owned(),
                password: Password::new(PASSWORD)?,
                password_confirmation: Password::new(PASSWORD)?,
                nickname: Some(NICKNAME.to_owned()),
            },
        )
        .await?;
    screen(
        out,
        "登録完了",
        &format!(
            "これで利用登録は完了です。\n\
             ログイン画面から、設定したログインIDとパスワードでログインしてください。\n\
             (アカウント番号: {} — ライブラリ内部の仮名IDで、加入者の情報は含みません)",
            registered.account_id
        ),
    )?;
    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;

    // ── ログイン ───────────────────────────────────────────────────────────────
    clock.advance(Duration::minutes(5));
    part(out, "ログイン")?;
    screen(
        out,
        "ログイン",
        &login_form(&"●".repeat(WRONG_PASSWORD.chars().count())),
    )?;
    act(out, "パスワードを打ち間違えて【ログイン】を押します。")?;
    let r = refused(
        portal
            .start_login(LOGIN_ID, &Password::new(WRONG_PASSWORD)?)
            .await,
    )?;
    screen(
        out,
        "ログイン (エラー)",
        &format!(
            "{}\n(ログインIDとパスワードのどちらが違うかは表示しません)\n\n{}",
            r.message(Lang::Ja),
            login_form("")
        ),
    )?;

    act(out, "正しいパスワードで【ログイン】を押します。")?;
    let challenge = portal
        .start_login(LOGIN_ID, &Password::new(PASSWORD)?)
        .await?;
    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let first_code = otp_of(&mail)?;
    screen(
        out,
        "暗証キー入力",
        &otp_screen(&challenge.masked_email, &wrong(&first_code)),
    )?;
    act(out, "暗証キーを打ち間違えて【ログイン】を押します。")?;
    let r = refused(
        portal
            .verify_otp(
                &challenge.challenge,
                &wrong(&first_code).parse::<OtpCode>()?,
            )
            .await,
    )?;
    screen(
        out,
        "暗証キー入力 (エラー)",
        &format!(
            "{}\n\n{}",
            r.message(Lang::Ja),
            otp_screen(&challenge.masked_email, "")
        ),
    )?;

    act(out, "すぐに【暗証キー再請求】を押します。")?;
    let r = refused(portal.resend_otp(&challenge.challenge).await)?;
    note(out, &format!("暗証キー再請求: {}", r.message(Lang::Ja)))?;
    clock.advance(Duration::seconds(61));
    act(out, "1分ほど待って、もう一度【暗証キー再請求】を押します。")?;
    let resent = portal.resend_otp(&challenge.challenge).await?;
    note(
        out,
        "暗証キー再請求: 新しい暗証キーをメールで送信しました。前の暗証キーはこの時点で無効です。",
    )?;
    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let second_code = otp_of(&mail)?;
    act(out, "うっかり前のメールの暗証キーを入力します。")?;
    let r = refused(
        portal
            .verify_otp(&resent.challenge, &first_code.parse::<OtpCode>()?)
            .await,
    )?;
    note(out, &format!("暗証キー入力: {}", r.message(Lang::Ja)))?;
    act(out, "新しいメールの暗証キーを入力します。")?;
    portal
        .verify_otp(&resent.challenge, &second_code.parse::<OtpCode>()?)
        .await?;
    note(
        out,
        "新しい暗証キーでログインできました。(ログアウトして、次の場面へ)",
    )?;

    clock.advance(Duration::minutes(30));
    part(out, "暗証キー入力画面を閉じてしまった場合")?;
    act(out, "ログインIDとパスワードで【ログイン】を押します。")?;
    let challenge = portal
        .start_login(LOGIN_ID, &Password::new(PASSWORD)?)
        .await?;
    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let code = otp_of(&mail)?;
    screen(
        out,
        "暗証キー入力",
        &otp_screen(&challenge.masked_email, ""),
    )?;
    act(
        out,
        "メールを見に行くつもりで、暗証キー入力画面を閉じてしまいます (ページが閉じたことをホストが close_otp_screen で伝えます)。",
    )?;
    portal.close_otp_screen(&challenge.challenge).await?;
    act(out, "戻ってきて、メールの暗証キーを入力します。")?;
    let r = refused(
        portal
            .verify_otp(&challenge.challenge, &code.parse::<OtpCode>()?)
            .await,
    )?;
    note(out, &format!("暗証キー入力: {}", r.message(Lang::Ja)))?;

    clock.advance(Duration::minutes(1));
    part(out, "ログイン完了まで")?;
    screen(
        out,
        "ログイン",
        &login_form(&"●".repeat(PASSWORD.chars().count())),
    )?;
    act(
        out,
        "もう一度ログインIDとパスワードで【ログイン】を押します。",
    )?;
    let challenge = portal
        .start_login(LOGIN_ID, &Password::new(PASSWORD)?)
        .await?;
    let mail = one_mail(&mailer)?;
    print_mail(out, &mail)?;
    let code = otp_of(&mail)?;
    screen(
        out,
        "暗証キー入力",
        &otp_screen(&challenge.masked_email, &code),
    )?;
    act(
        out,
        "画面を閉じずに暗証キーを入力し、【ログイン】を押します。",
    )?;
    let authenticated = portal
        .verify_otp(&challenge.challenge, &code.parse::<OtpCode>()?)
        .await?;
    let session_ok = portal
        .check_security_stamp(&authenticated.account_id, &authenticated.security_stamp)
        .await?;
    screen(
        out,
        "ログイン完了",
        &format!(
            "ログインしました。\n\
             (ホストはここで新しいセッションIDを発行し、セキュリティスタンプを保存します。スタンプの照合: {})",
            if session_ok { "有効" } else { "無効" }
        ),
    )?;
    screen(
        out,
        "ホーム",
        &format!(
            "{NICKNAME} さん、ようこそ。\n\n\
             ■ 資格情報のお知らせ  [サンプル表示]\n\
             \u{3000}保険者名: {INSURER}\n\
             \u{3000}記号・番号・枝番: 999-****56-00 (本人)\n\
             \u{3000}資格取得日: 2015年4月1日\n\n\
             ■ 医療費のお知らせ  [サンプル表示]\n\
             \u{3000}2026年10月診療分  医療機関 1件  医療費総額 12,340円  窓口負担 3,700円\n\n\
             ※この画面の内容はサンプルデータです。実際の内容は保険者のシステムから表示します。\n\
             【ログアウト】"
        ),
    )?;
    let left = mailer.take();
    if !left.is_empty() {
        return Err(format!("{} unexpected mail(s) left over", left.len()).into());
    }
    writeln!(out, "\nおわり。")?;
    Ok(())
}

// ── Screens ──────────────────────────────────────────────────────────────────────────

/// A framed box. Only the left edge is drawn: Japanese text and symbols such as ★ and ※
/// take one or two columns depending on the terminal, so a right edge would never line
/// up everywhere.
fn frame(out: &mut impl Write, kind: &str, title: &str, body: &str) -> Outcome {
    const RULE: &str = "────────────────────────────────────────────────────────────";
    writeln!(out, "╭─【{kind}】{title}")?;
    writeln!(out, "├{RULE}")?;
    for line in body.trim_end().lines() {
        if line.is_empty() {
            writeln!(out, "│")?;
        } else {
            writeln!(out, "│ {line}")?;
        }
    }
    writeln!(out, "╰{RULE}\n")?;
    Ok(())
}

fn screen(out: &mut impl Write, title: &str, body: &str) -> Outcome {
    frame(out, "画面", title, body)
}

/// Prints a mail as the member's mail app would show it: sender, recipient, subject and
/// the whole rendered body.
fn print_mail(out: &mut impl Write, mail: &OutgoingMail) -> Outcome {
    let body = format!(
        "差出人: {INSURER} <{SENDER}>\n\
         宛先:   {}\n\
         件名:   {}\n\n\
         {}",
        mail.to.for_sending(),
        mail.rendered.subject,
        mail.rendered.body
    );
    frame(out, "メール", &mail.rendered.subject, &body)
}

fn part(out: &mut impl Write, title: &str) -> Outcome {
    writeln!(out, "════ {title} ════\n")?;
    Ok(())
}

/// What the member does next.
fn act(out: &mut impl Write, text: &str) -> Outcome {
    writeln!(out, "▶ {text}\n")?;
    Ok(())
}

/// What the portal answers without changing screens.
fn note(out: &mut impl Write, text: &str) -> Outcome {
    writeln!(out, "  → {text}\n")?;
    Ok(())
}

fn login_form(password_dots: &str) -> String {
    format!(
        "登録したログインIDとパスワードでログインしてください。\n\n\
         ログインID  [{LOGIN_ID}]\n\
         パスワード  [{password_dots}]  □パスワードを表示する\n\
         【ログイン】\n\n\
         ログインID・パスワードを忘れた方はこちら\n\
         ユーザー登録がお済みでない方は新規利用登録を行ってください。"
    )
}

fn otp_screen(masked_email: &str, typed: &str) -> String {
    format!(
        "メールに記載された暗証キーを入力してください。\n\n\
         暗証キーをご登録のメールアドレスへ送信しました。\n\
         メールに記載している暗証キーを入力して、ログインを行ってください。\n\
         ※暗証キーを入力するまでこのページは閉じないでください。\n\n\
         {masked_email}\n\n\
         暗証キー  [{typed}]\n\
         【ログイン】　　【暗証キー再請求】\n\n\
         ・この暗証キーは今回1回限り有効です。\n\
         ・この暗証キーは約10分間有効です。ご登録いただいているメールアドレスの受信ボックスを10分以内にご確認ください。\n\
         ・メールが届かない場合は、「迷惑メール」フォルダに入っていないかご確認ください。\n\
         ・暗証キーが届いていない場合や、10分以上経過した場合は、暗証キー再請求を行ってください。"
    )
}

/// An instant as members read it, in Japan time.
fn jst(at: OffsetDateTime) -> String {
    let t = at.checked_to_offset(offset!(+9)).unwrap_or(at);
    format!(
        "{}年{}月{}日 {:02}:{:02}(日本時間)",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

// ── Reading the journey ──────────────────────────────────────────────────────────────

/// The single mail the last step sent.
fn one_mail(mailer: &RecordingMailer) -> Outcome<OutgoingMail> {
    let sent: [OutgoingMail; 1] = mailer
        .take()
        .try_into()
        .map_err(|v: Vec<OutgoingMail>| format!("expected one mail, got {}", v.len()))?;
    let [mail] = sent;
    Ok(mail)
}

/// The 暗証キー of a 「暗証キーのご案内」 mail, from its typed content.
fn otp_of(mail: &OutgoingMail) -> Outcome<String> {
    match &mail.message {
        MailMessage::LoginOtp { code, .. } => Ok(code.expose_secret().to_owned()),
        _ => Err(unexpected("「暗証キーのご案内」", mail)),
    }
}

/// A code that differs from `code` in its first digit: the member's typo.
fn wrong(code: &str) -> String {
    code.char_indices()
        .map(|(i, c)| match (i, c.to_digit(10)) {
            (0, Some(d)) => char::from_digit((d + 1) % 10, 10).unwrap_or('0'),
            _ => c,
        })
        .collect()
}

/// The rejection a step was expected to answer with.
fn refused<T>(result: Result<T, kenpo_auth::Error>) -> Outcome<Rejection> {
    match result {
        Err(kenpo_auth::Error::Rejected(r)) => Ok(r),
        Err(e) => Err(e.into()),
        Ok(_) => Err("the portal accepted a step the walkthrough expected it to refuse".into()),
    }
}

fn unexpected(wanted: &str, got: &OutgoingMail) -> Box<dyn Error> {
    format!("expected the mail {wanted}, got {:?}", got.message.kind()).into()
}
