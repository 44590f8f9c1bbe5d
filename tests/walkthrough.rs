//! Runs `examples/walkthrough.rs` and checks its transcript: every screen and every mail
//! of the journey appears, in the order the member meets them, so the example cannot
//! silently skip a step or stop early.

#[allow(dead_code)]
#[path = "../examples/walkthrough.rs"]
mod walkthrough;

/// Each needle must occur after the previous one. Screens are printed as `【画面】title`,
/// mails as `件名:   subject`, messages verbatim.
const IN_ORDER: &[&str] = &[
    // The configuration's assurance report comes first.
    "保証レベル (Portal::assurance_report)",
    "単要素(AAL1)",
    "email_otp_counts_as_factor",
    // 新規利用登録
    "【画面】ログイン\n",
    "【新規利用登録】",
    "【画面】新規利用登録\n",
    "【送信する】",
    "【画面】新規利用登録 送信完了",
    "★ご家族と重複するメールアドレスは使用できません。",
    "★迷惑メール設定をされている方は、",
    "件名:   利用登録手続きのご案内",
    "/registration/link?token=",
    "【画面】新規利用登録 本人確認ページへ",
    "【本人確認ページへ】",
    "【画面】本人確認\n",
    "[９９９－１２３４５６－００]",
    "すべて半角文字で入力してください。",
    "半角に読み替えて受け付けます: 999-****56-00",
    "【画面】本人確認 認証キー表示",
    "必ず控えてください",
    "件名:   本人確認完了のご案内",
    "/registration/verify?token=",
    "【画面】認証キー入力",
    "【画面】利用者情報入力",
    "【画面】登録完了",
    "件名:   利用登録完了のお知らせ",
    // ログイン: wrong password, the generic message.
    "【画面】ログイン\n",
    "【画面】ログイン (エラー)",
    "ログインIDまたはパスワードが正しくありません。",
    // Right password: the 暗証キー mail and screen, a wrong key.
    "件名:   暗証キーのご案内",
    "【画面】暗証キー入力\n",
    "※暗証キーを入力するまでこのページは閉じないでください。",
    "【画面】暗証キー入力 (エラー)",
    "暗証キーが正しくありません。",
    // 暗証キー再請求: refused within the cooldown, then a new mail; the old key is refused,
    // and the member is told to type the newest.
    "暗証キー再請求: 短時間に操作が繰り返されました。",
    "暗証キー再請求: 新しい暗証キーをメールで送信しました。",
    "件名:   暗証キーのご案内",
    "暗証キー入力: この暗証キーは再請求により無効になりました。",
    "新しい暗証キーでログインできました。",
    // The closed code screen.
    "件名:   暗証キーのご案内",
    "【画面】暗証キー入力\n",
    "close_otp_screen",
    "暗証キー入力: この暗証キーは無効になりました。",
    // Success.
    "【画面】ログイン\n",
    "件名:   暗証キーのご案内",
    "【画面】暗証キー入力\n",
    "【画面】ログイン完了",
    "スタンプの照合: 有効",
    "【画面】ホーム",
    "資格情報のお知らせ  [サンプル表示]",
    "医療費のお知らせ  [サンプル表示]",
    "サンプルデータです",
    "おわり。",
];

fn transcript() -> String {
    let mut out = Vec::new();
    if let Err(e) = walkthrough::run(&mut out) {
        panic!("the walkthrough failed: {e}");
    }
    String::from_utf8(out).expect("the transcript is UTF-8")
}

#[test]
fn walkthrough_shows_every_screen_and_mail_in_order() {
    let text = transcript();
    let mut from = 0;
    for needle in IN_ORDER {
        match text[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!(
                "{needle:?} missing after byte {from} of the transcript:\n{}",
                &text[from..]
            ),
        }
    }
}

#[test]
fn walkthrough_sends_exactly_the_journeys_mails() {
    // Registration: link 1, link 2, completion notice. Login: 4 × 暗証キー (first login,
    // the resend, the closed screen, the success).
    let text = transcript();
    let subjects: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("│ 件名:   "))
        .collect();
    assert_eq!(
        subjects,
        [
            "利用登録手続きのご案内",
            "本人確認完了のご案内",
            "利用登録完了のお知らせ",
            "暗証キーのご案内",
            "暗証キーのご案内",
            "暗証キーのご案内",
            "暗証キーのご案内",
        ]
    );
}
