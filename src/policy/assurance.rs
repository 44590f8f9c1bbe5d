//! What a configured policy achieves, in plain words, in Japanese or English: the text
//! of [`Portal::assurance_report`](crate::Portal::assurance_report), composed from the
//! [`Policy`] alone.

use super::{DeviationReport, Policy};
use crate::lang::Lang;

/// One line of the report in the requested language.
fn line(out: &mut String, lang: Lang, en: &str, ja: &str) {
    out.push_str(if matches!(lang, Lang::En) { en } else { ja });
    out.push('\n');
}

/// What the second-factor policy achieves (2段階認証).
fn factor_lines(out: &mut String, lang: Lang, p: &Policy, relying_party: bool) {
    use super::FactorRequirement;
    let f = &p.factors;
    let passkeys = f.passkeys && relying_party;
    if !(f.totp || passkeys) {
        line(
            out,
            lang,
            "Second factors: none beyond the e-mailed 暗証キー is offered.",
            "2段階認証: メールの暗証キー以外の認証方法は提供していません。",
        );
        return;
    }
    let (tries, acc, day) = (
        p.otp_tries_per_challenge,
        p.otp_failures_per_account,
        p.otp_failures_per_account_per_day,
    );
    line(
        out,
        lang,
        &format!(
            "Authenticator app (認証アプリ, TOTP RFC 6238): a member may set one up after a fresh login, confirmed by one code; the shared secret is stored sealed (XChaCha20-Poly1305) under the host's key. Password + authenticator-app code is two factors: AAL2 under NIST SP 800-63B-4 (not phishing-resistant). A code is accepted once (the last accepted 30-second step is kept: no replay), with ±1 step of clock skew, under the 暗証キー's budgets shared across factors ({tries} tries per screen, {acc} consecutive per account, {day} a day). A member with an app is always asked for it, never silently for the mailed 暗証キー."
        ),
        &format!(
            "認証アプリ(TOTP、RFC 6238): 再ログイン直後の加入者が設定でき、確認コード1回で有効になります。共有シークレットは運営者の鍵で暗号化(XChaCha20-Poly1305)して保存します。パスワードと認証アプリの確認コードは2要素で、NIST SP 800-63B-4 の AAL2 に当たります(フィッシング耐性はありません)。確認コードは1回限り有効(最後に受け付けた30秒単位の時刻を記録し再利用を拒否)、前後1単位の時刻のずれを許容し、試行回数は暗証キーと共通の上限(1画面{tries}回、アカウントごと連続{acc}回、1日{day}回)で数えます。認証アプリを設定した加入者に、黙ってメールの暗証キーを求めることはありません。"
        ),
    );
    if passkeys {
        line(
            out,
            lang,
            "Passkeys (パスキー, WebAuthn): registered by a member after a fresh login; user verification is required. Password + passkey is AAL2 and phishing-resistant: the relying party is the base URL's host and only its exact origin is accepted, so a look-alike site cannot use the member's passkey. Ceremony state stays server-side, single use. Synced passkeys are not hardware-bound, so this is not AAL3.",
            "パスキー(WebAuthn): 再ログイン直後の加入者が登録でき、本人確認(生体認証・PIN)を必須とします。パスワードとパスキーは AAL2 で、フィッシング耐性があります(ベースURLのホストをRP IDとし、そのオリジンだけを受け付けるため、似せたサイトではパスキーを使えません)。認証の状態はサーバー側に1回限りで保持します。同期されるパスキーは端末に固定されないため AAL3 には当たりません。",
        );
    }
    if passkeys && f.passkey_only_login {
        line(
            out,
            lang,
            "Passkey-only login (パスキーだけでログイン) is allowed: a discoverable passkey with user verification logs in without the login ID and password. It is a multi-factor cryptographic authenticator on its own (the device, and the biometric or PIN that unlocks it): AAL2 and phishing-resistant, with the account named by the passkey. Challenges are single use and count against the hourly flow-start budgets.",
            "パスキーだけでログイン: 本人確認付きのパスキーで、ログインIDとパスワードなしにログインできます。パスキーはそれだけで多要素(端末と、それを解除する生体認証またはPIN)の暗号認証器で、AAL2 かつフィッシング耐性があります。認証の状態は1回限りで、手続き開始の1時間あたりの上限で数えます。",
        );
    }
    if f.recovery_codes {
        line(
            out,
            lang,
            "Recovery codes (リカバリーコード): ten single-use codes shown once when the first factor is set up, stored as keyed digests, usable instead of the app; each use is notified by mail, and regenerating revokes the old set. A recovery code is a look-up secret: with the password, still AAL2.",
            "リカバリーコード: 最初の認証方法の設定時に1回だけ表示する1回限りのコード10個。鍵付きダイジェストで保存し、認証アプリの代わりに使えます。使用のたびにメールでお知らせし、再発行すると以前のコードは無効になります。パスワードとの組み合わせで AAL2 です。",
        );
    }
    match f.requirement {
        FactorRequirement::Optional => line(
            out,
            lang,
            "Requirement: optional. Members who set up no app keep logging in with the e-mailed 暗証キー (AAL1, see above); only those with an app reach AAL2.",
            "必須設定: 任意。認証アプリを設定していない加入者は、これまでどおりメールの暗証キーでログインします(AAL1、上記参照)。AAL2 になるのは認証アプリを設定した加入者だけです。",
        ),
        FactorRequirement::Required => line(
            out,
            lang,
            "Requirement: a second factor is required. Members who set up none still log in once with the e-mailed 暗証キー as a fallback (AAL1) and are sent to set one up at once; the last factor cannot be removed.",
            "必須設定: 2段階認証は必須です。未設定の加入者はメールの暗証キーでログインでき(AAL1)、その直後に設定画面へ案内されます。最後の認証方法は削除できません。",
        ),
    }
    if f.reset_removes_factors {
        line(
            out,
            lang,
            "Forgotten password removes second factors (policy): a completed reset takes the member's app and recovery codes away, so whoever controls the mailbox (and knows the card data, when required) can take over an AAL2 account at AAL1. The member is notified by mail.",
            "パスワード再設定で2段階認証を解除(ポリシー): 再設定が完了すると認証アプリとリカバリーコードが削除されるため、メールボックスを管理できる人(必要な場合は保険証情報も知る人)が AAL2 のアカウントを AAL1 で取得できることになります。解除はメールでお知らせします。",
        );
    } else {
        line(
            out,
            lang,
            "Forgotten password never bypasses an enrolled factor: after a reset, the next login still asks for the app (or a recovery code).",
            "パスワードを再設定しても2段階認証は解除されません。再設定後のログインでも認証アプリ(またはリカバリーコード)が必要です。",
        );
    }
}

/// The assurance report of `p` with its `deviations` (what [`Policy::validate`] found),
/// for a portal that offers passkeys or not (`relying_party`).
pub(crate) fn report(
    p: &Policy,
    deviations: &DeviationReport,
    relying_party: bool,
    lang: Lang,
) -> String {
    let (min_chars, m, t, par) = (
        p.password.min_chars,
        p.hashing.m_cost_kib,
        p.hashing.t_cost,
        p.hashing.p_cost,
    );
    let (digits, otp_min) = (p.otp_digits, p.otp_ttl.whole_minutes());
    let reset_min = p.password_reset_link_ttl.whole_minutes();
    let temp_days = p.temporary_password_ttl.whole_days();
    let mut out = String::new();
    line(
        &mut out,
        lang,
        &format!(
            "Login: password (at least {min_chars} characters, Argon2id m={m} KiB t={t} p={par}) followed by a {digits}-digit 暗証キー mailed to the registered address, valid {otp_min} minutes, single use."
        ),
        &format!(
            "ログイン: パスワード({min_chars}文字以上、Argon2id m={m} KiB t={t} p={par})の後、登録メールアドレスに送る{digits}桁の暗証キー(有効期限{otp_min}分、1回限り)。"
        ),
    );
    line(
        &mut out,
        lang,
        "Assurance: NIST SP 800-63B-4 does not recognise e-mail as an authentication factor, so this login is single-factor (AAL1), not multi-factor (AAL2); the e-mailed code proves control of the mailbox, and limits guessing and stolen-password reuse.",
        "保証レベル: NIST SP 800-63B-4 はメールを認証要素と認めていないため、このログインは多要素(AAL2)ではなく単要素(AAL1)です。メールの暗証キーはメールボックスの管理を確認し、推測や流出したパスワードの悪用を抑えるものです。",
    );
    factor_lines(&mut out, lang, p, relying_party);
    line(
        &mut out,
        lang,
        "Self-registration checks knowledge of the insurance card numbers and date of birth (knowledge-based, low assurance under NIST SP 800-63A-4); insurer-issued temporary credentials sent by post are the stronger path.",
        "新規利用登録の本人確認は記号・番号・枝番と生年月日の知識によるもの(NIST SP 800-63A-4 では低い保証)です。保険者が郵送する仮パスワードによる事前登録の方が強い経路です。",
    );
    if p.recovery_requires_identity {
        line(
            &mut out,
            lang,
            &format!(
                "Forgotten password: a single-use link valid {reset_min} minutes is mailed to the registered address; before the new password is set, the insurance card numbers and date of birth are checked again against the roster (limited tries). Recovery therefore needs the mailbox and knowledge of the card data."
            ),
            &format!(
                "パスワードを忘れた方: 登録メールアドレスに1回限り有効なURL(有効期限{reset_min}分)を送り、新しいパスワードの設定前に記号・番号・枝番と生年月日を名簿と再確認します(試行回数制限あり)。再設定にはメールボックスと保険証情報の知識の両方が必要です。"
            ),
        );
        line(
            &mut out,
            lang,
            "Forgotten login ID: the e-mail address plus the card numbers and date of birth; the ID is only mailed to the registered address.",
            "ログインIDを忘れた方: メールアドレスと記号・番号・枝番・生年月日の入力が必要で、ログインIDは登録メールアドレスにのみ送ります。",
        );
    } else {
        line(
            &mut out,
            lang,
            &format!(
                "Forgotten password: a single-use link valid {reset_min} minutes is mailed to the registered address, and the link alone lets the member set a new password: whoever controls the mailbox controls the account."
            ),
            &format!(
                "パスワードを忘れた方: 登録メールアドレスに1回限り有効なURL(有効期限{reset_min}分)を送り、URLだけで新しいパスワードを設定できます。メールボックスを管理できる人がアカウントを管理できることになります。"
            ),
        );
        line(
            &mut out,
            lang,
            "Forgotten login ID: the e-mail address alone; the ID is only mailed to the registered address.",
            "ログインIDを忘れた方: メールアドレスだけで、ログインIDを登録メールアドレスにのみ送ります。",
        );
    }
    line(
        &mut out,
        lang,
        "A reset never logs the member in, clears the lockout, ends every other session and open 暗証キー, and is notified by mail. Every recovery answer is the same whether or not an account matched.",
        "パスワードの再設定ではログインしません。ロックを解除し、他のすべてのセッションと未使用の暗証キーを無効にして、メールでお知らせします。どの手続きも、該当するアカウントの有無にかかわらず同じ応答です。",
    );
    line(
        &mut out,
        lang,
        &format!(
            "Insurer-issued accounts: a random login ID and a random 16-character temporary password (80 bits) for the letter, valid {temp_days} days, usable only to choose the member's own login ID and password; re-issuing revokes the previous one. No administrator can set or see a member's password."
        ),
        &format!(
            "保険者による事前登録: 通知書に印字するログインIDと16文字の仮パスワード(80ビット)は無作為に生成し、有効期限は{temp_days}日です。仮パスワードは本人がログインIDとパスワードを設定するためにだけ使え、再発行すると以前のものは無効になります。管理者が加入者のパスワードを設定したり見たりすることはできません。"
        ),
    );
    let (per_flow, per_member, member_h) = (
        p.identity_tries_per_flow,
        p.identity_tries_per_member,
        p.identity_member_window.whole_hours(),
    );
    let (key_tries, pw_free, pw_cap) = (
        p.auth_key_tries,
        p.password_free_failures,
        p.password_failure_cap,
    );
    let (otp_ch, otp_acc, otp_day, otp_mails) = (
        p.otp_tries_per_challenge,
        p.otp_failures_per_account,
        p.otp_failures_per_account_per_day,
        p.otp_mails_per_account_per_hour,
    );
    let (addr_h, req_h, all_h) = (
        p.mails_per_address_per_hour,
        p.flow_starts_per_requester_per_hour,
        p.flow_starts_per_hour,
    );
    line(
        &mut out,
        lang,
        &format!(
            "Budgets — per flow: {per_flow} identity checks, {key_tries} 認証キー tries, {otp_ch} 暗証キー tries per challenge; per member: {per_member} identity checks in {member_h} h; per account: {pw_free} free password failures then doubling delays and a hard stop at {pw_cap}, {otp_acc} consecutive wrong 暗証キー then a cooldown, {otp_day} wrong 暗証キー a day, {otp_mails} 暗証キー mails an hour; per address: {addr_h} mails an hour; per requester: {req_h} flow starts an hour; the whole portal: {all_h} flow starts an hour. A spent budget answers like the check it guards failing, or like a sent mail."
        ),
        &format!(
            "試行回数の上限 — 手続きごと: 本人確認{per_flow}回、認証キー{key_tries}回、暗証キー{otp_ch}回(1画面あたり)。加入者ごと: 本人確認{member_h}時間に{per_member}回。アカウントごと: パスワード誤り{pw_free}回まで待ち時間なし、その後は待ち時間が倍増し{pw_cap}回で停止、暗証キー連続{otp_acc}回の誤りで一時停止、暗証キーの誤りは1日{otp_day}回まで、暗証キーのメールは1時間{otp_mails}通まで。メールアドレスごと: 1時間{addr_h}通まで。アクセス元ごと: 手続きの開始は1時間{req_h}回まで。ポータル全体: 1時間{all_h}回まで。上限に達したときの応答は、確認の失敗またはメール送信済みの場合と同じです。"
        ),
    );
    out.push_str(&deviations.render(lang));
    out
}
