//! The wording of every mail, in Japanese (default) and English.
//!
//! The Japanese texts follow the insurer mails members already know (「利用登録手続きのご案内」,
//! 「本人確認完了のご案内」, 「暗証キーのご案内」): they open with 「{insurer}です。」, end
//! with the 「※本メールに覚えがない場合は…」 and 「※本メールには返信できません…」 notes and
//! the insurer's name as signature. Nothing insurer-specific is hard-coded: every name
//! comes from the [`InsurerProfile`].
//!
//! Three rules hold for every default template, and a host that overrides one should
//! keep them:
//!
//! - **Links come only from the message** (SEC-39). A link is printed exactly as it is in
//!   [`MailLink::url`](crate::mail::MailLink) or `login_url`, which the caller built from
//!   the configured base URL. The templates never build a URL themselves, not even from
//!   [`InsurerProfile::base_url`].
//! - **No secret but the mail's own.** The link (or the 暗証キー in 「暗証キーのご案内」,
//!   the login ID in 「ログインIDのお知らせ」) is the only secret in a mail. The on-screen
//!   認証キー is never mailed (it travels on the other channel, SEC-11), and neither is a
//!   password or a 記号・番号・枝番: [`MailMessage`] does not even carry them.
//! - **Security notices say whom to call** (SEC-43): registration completed, identity
//!   verified, login ID reminder, password changed, e-mail changed, account locked and an
//!   abandoned 暗証キー login all end with 「お心当たりのない場合は、{support_contact}
//!   までご連絡ください。」. Mails the reader may simply not have asked for (links, the
//!   暗証キー) end with the seed's 「本メールを破棄してください」 instead.
//!
//! Validity is printed both ways, as members need it: the duration the insurer's guide
//! and the seed's mails teach (「※URLの有効期限は3時間です。」「10分以内に」), taken from
//! [`InsurerProfile::mail_validity`] — which the `Portal` sets from its `Policy`, so the
//! words and the rules agree — and the instant it ends, in Japan time (UTC+9), which a
//! mail read hours later still gets right: 「2026年11月24日 15:30(日本時間)を過ぎた場合は…」.

use std::borrow::Cow;

use time::OffsetDateTime;
use time::macros::offset;

use crate::lang::Lang;
use crate::mail::{MailMessage, RenderedMail};
use crate::model::FactorKind;
use crate::policy::{InsurerProfile, MailValidity};

/// Wording of every mail. Hosts override single mails by implementing this trait and
/// delegating the rest to [`DefaultTemplates`].
///
/// A template turns the typed [`MailMessage`] into a subject and a plain-text body. It
/// must not fail and must not add links of its own (SEC-39): print the URLs the message
/// carries, nothing else.
///
/// ```
/// use kenpo_auth::lang::Lang;
/// use kenpo_auth::mail::render::{DefaultTemplates, MailTemplates};
/// use kenpo_auth::mail::{MailMessage, RenderedMail};
/// use kenpo_auth::policy::InsurerProfile;
///
/// /// Our own wording for the lock notice; every other mail stays the default.
/// struct OurTemplates;
///
/// impl MailTemplates for OurTemplates {
///     fn render(&self, message: &MailMessage, profile: &InsurerProfile, lang: Lang) -> RenderedMail {
///         match message {
///             MailMessage::AccountLocked { .. } if lang == Lang::Ja => RenderedMail {
///                 subject: "【重要】アカウントロックのお知らせ".to_owned(),
///                 body: format!("{}です。\nアカウントをロックしました。\n", profile.insurer_name),
///             },
///             _ => DefaultTemplates.render(message, profile, lang),
///         }
///     }
/// }
///
/// let profile = InsurerProfile::new(
///     "さくら健康保険組合",
///     "さくらけんぽWeb",
///     "no-reply@sakura-kenpo.example.jp",
///     "さくら健康保険組合 適用グループ 03-0000-0000",
///     "https://portal.sakura-kenpo.example.jp",
/// );
/// let notice = MailMessage::RegistrationCompleted {
///     login_url: "https://portal.sakura-kenpo.example.jp/login".to_owned(),
/// };
/// let mail = OurTemplates.render(&notice, &profile, Lang::Ja);
/// assert_eq!(mail.subject, "利用登録完了のお知らせ");
/// ```
pub trait MailTemplates: Send + Sync {
    /// The subject and body of `message` for the insurer `profile`, in `lang`.
    fn render(&self, message: &MailMessage, profile: &InsurerProfile, lang: Lang) -> RenderedMail;
}

/// The library's own wording: the seed portal's mails in Japanese, with English versions
/// that state the same facts. Used unless the host supplies its own [`MailTemplates`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultTemplates;

impl MailTemplates for DefaultTemplates {
    fn render(&self, message: &MailMessage, profile: &InsurerProfile, lang: Lang) -> RenderedMail {
        let names = Names::of(profile);
        match lang {
            Lang::En => english(message, &names).finish(&names, Lang::En),
            _ => japanese(message, &names).finish(&names, Lang::Ja),
        }
    }
}

/// Renders `message` with the [`DefaultTemplates`]; a shortcut for code that never
/// overrides wording.
pub fn render(message: &MailMessage, profile: &InsurerProfile, lang: Lang) -> RenderedMail {
    DefaultTemplates.render(message, profile, lang)
}

/// The profile's names, cleaned once so no template can forget to.
struct Names<'a> {
    insurer: Cow<'a, str>,
    service: Cow<'a, str>,
    support: Cow<'a, str>,
    validity: MailValidity,
}

impl<'a> Names<'a> {
    fn of(profile: &'a InsurerProfile) -> Self {
        Names {
            insurer: one_line(&profile.insurer_name),
            service: one_line(&profile.service_name),
            support: one_line(&profile.support_contact),
            validity: profile.mail_validity,
        }
    }
}

/// How a mail ends, before the no-reply note and the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// The reader may simply not have asked for it: 「本メールを破棄してください」.
    Discard,
    /// Something happened to the account or identity (SEC-43): whom to call.
    Contact,
    /// The mail's own notes say what to do when it was not expected (the 暗証キー: reset
    /// the password). A discard note as well would contradict them.
    Notes,
}

/// A mail before its common frame (opening, closing notes, signature) is added.
struct Draft {
    subject: &'static str,
    /// Paragraphs after the opening line, separated by blank lines.
    paragraphs: Vec<String>,
    /// 「※」 notes, printed before the closing notes.
    notes: Vec<String>,
    closing: Closing,
}

impl Draft {
    fn finish(self, names: &Names<'_>, lang: Lang) -> RenderedMail {
        let (opening, bullet, closing, no_reply) = match lang {
            Lang::En => (
                format!("This is a message from {}.", names.insurer),
                "* ",
                match self.closing {
                    Closing::Discard => Some(
                        "If you did not expect this mail, please accept our apologies and delete it."
                            .to_owned(),
                    ),
                    Closing::Contact => Some(format!(
                        "If this was not you, please contact {}.",
                        names.support
                    )),
                    Closing::Notes => None,
                },
                "This mail was sent from a send-only address; please do not reply to it.",
            ),
            _ => (
                format!("{}です。", names.insurer),
                "※",
                match self.closing {
                    Closing::Discard => Some(
                        "本メールに覚えがない場合は、大変お手数ですが本メールを破棄してください。"
                            .to_owned(),
                    ),
                    Closing::Contact => Some(format!(
                        "お心当たりのない場合は、{} までご連絡ください。",
                        names.support
                    )),
                    Closing::Notes => None,
                },
                "本メールには返信できませんのでご了承ください。",
            ),
        };
        let mut body = opening;
        body.push_str("\n\n");
        for paragraph in &self.paragraphs {
            body.push_str(paragraph);
            body.push_str("\n\n");
        }
        for note in self
            .notes
            .iter()
            .map(String::as_str)
            .chain(closing.as_deref())
            .chain([no_reply])
        {
            body.push_str(bullet);
            body.push_str(note);
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&names.insurer);
        body.push('\n');
        RenderedMail {
            subject: self.subject.to_owned(),
            body,
        }
    }
}

/// The label of the login screen's recovery link, as members see it.
const FORGOT_JA: &str = "「ログインID・パスワードを忘れた方はこちら」";
const FORGOT_EN: &str =
    "\"Forgot your login ID or password?\" (「ログインID・パスワードを忘れた方はこちら」)";

fn japanese(message: &MailMessage, n: &Names<'_>) -> Draft {
    let service = &n.service;
    match message {
        MailMessage::RegistrationLink(link) => Draft {
            subject: "利用登録手続きのご案内",
            paragraphs: vec![
                format!(
                    "{service}の利用登録手続きを依頼された方へお知らせしています。\n\
                     以下のURLにアクセスして、利用登録の手続きを行ってください。"
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![format!(
                "URLの有効期限は{}です。{}を過ぎた場合は、メールアドレスの登録からやり直してください。",
                span_ja(n.validity.registration_link),
                when_ja(link.expires_at)
            )],
            closing: Closing::Discard,
        },
        MailMessage::AlreadyRegistered { login_url } => Draft {
            subject: "利用登録のお申し込みについて",
            paragraphs: vec![
                format!(
                    "このメールアドレスで{service}の利用登録のお申し込みがありましたが、\
                     このメールアドレスは既に利用登録がお済みです。\n\
                     以下のURLから、登録済みのログインIDとパスワードでログインしてください。"
                ),
                one_line(login_url).into_owned(),
                format!(
                    "ログインIDまたはパスワードをお忘れの場合は、ログイン画面の{FORGOT_JA}から手続きを行ってください。"
                ),
            ],
            notes: vec![
                "ご家族と重複するメールアドレスは使用できません。ご家族の利用登録には、一人ひとり個別のメールアドレスをご利用ください。".to_owned(),
                "このお申し込みによって、ご登録内容が変更されることはありません。".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::IdentityVerified(link) => Draft {
            subject: "本人確認完了のご案内",
            paragraphs: vec![
                "本人確認の手続きが完了しました。\n\
                 引き続き利用者情報の登録が必要になりますので、以下のURLにアクセスして、利用登録の手続きを行ってください。\n\
                 URLにアクセスした後、本人確認の画面に表示された認証キーを入力してください。"
                    .to_owned(),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "URLの有効期限は{}です。{}を過ぎた場合は、新規利用登録からやり直してください。",
                    span_ja(n.validity.verification_link),
                    when_ja(link.expires_at)
                ),
                "認証キーは本メールには記載していません。本人確認の画面に表示された認証キーをご利用ください。".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::RegistrationCompleted { login_url } => Draft {
            subject: "利用登録完了のお知らせ",
            paragraphs: vec![
                format!(
                    "{service}の利用登録が完了しました。\n\
                     次回からは、以下のURLから、登録したログインIDとパスワードでログインしてください。"
                ),
                one_line(login_url).into_owned(),
            ],
            notes: vec![
                "ログインIDとパスワードは、安全のため本メールには記載していません。".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::LoginOtp { code, expires_at } => Draft {
            subject: "暗証キーのご案内",
            paragraphs: vec![
                format!(
                    "{service}へログインするための暗証キーをお知らせします。\n\
                     暗証キー入力画面に以下の暗証キーを入力し、ログインを行ってください。"
                ),
                format!("暗証キー：{}", one_line(code.expose_secret())),
            ],
            notes: vec![
                "暗証キーは1回限り有効です。".to_owned(),
                format!(
                    "{}以内にログインがされないと、暗証キーは無効になります。有効期限は{}です。",
                    span_ja(n.validity.login_otp),
                    when_ja(*expires_at)
                ),
                "暗証キー入力画面を閉じてしまうと、発行された暗証キーは無効になります。その際は初めから再度手続きを行ってください。".to_owned(),
                format!(
                    "ログインしていないのに本メールが届いた場合は、パスワードが第三者に知られているおそれがあります。ログイン画面の{FORGOT_JA}からパスワードを再設定してください。"
                ),
            ],
            closing: Closing::Notes,
        },
        MailMessage::LoginOtpAborted { at } => Draft {
            subject: "暗証キーによるログインが完了しませんでした",
            paragraphs: vec![
                format!(
                    "{service}へのログインで、パスワードは正しく入力されましたが、暗証キーによるログインが完了しませんでした。"
                ),
                format!("日時：{}", when_ja(*at)),
                format!(
                    "ご自身の操作であれば、対応は不要です。もう一度ログイン画面からログインしてください。\n\
                     ご自身の操作でない場合は、パスワードが第三者に知られているおそれがあります。\
                     ログイン画面の{FORGOT_JA}からパスワードを再設定してください。"
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::AccountLocked { at } => Draft {
            subject: "アカウントロックのお知らせ",
            paragraphs: vec![
                format!(
                    "{service}へのログインでパスワードの誤りが続いたため、アカウントをロックしました。"
                ),
                format!("ロック日時：{}", when_ja(*at)),
                format!(
                    "ロックを解除するには、ログイン画面の{FORGOT_JA}からパスワードを再設定してください。"
                ),
            ],
            notes: vec![
                "ご自身の操作でない場合は、第三者がログインを試みたおそれがあります。".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::LoginIdReminder { login_id } => Draft {
            subject: "ログインIDのお知らせ",
            paragraphs: vec![
                format!(
                    "{service}のログインIDのお問い合わせを受け付けましたので、ご登録のログインIDをお知らせします。"
                ),
                format!("ログインID：{}", one_line(login_id)),
                format!(
                    "パスワードはお知らせしていません。パスワードがご不明の場合は、ログイン画面の{FORGOT_JA}から再設定してください。"
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::PasswordResetLink(link) => Draft {
            subject: "パスワード再設定のご案内",
            paragraphs: vec![
                format!(
                    "{service}のパスワード再設定の手続きを依頼された方へお知らせしています。\n\
                     以下のURLにアクセスして、パスワードの再設定を行ってください。"
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "URLの有効期限は{}です。{}を過ぎた場合は、ログイン画面の{FORGOT_JA}からやり直してください。",
                    span_ja(n.validity.password_reset_link),
                    when_ja(link.expires_at)
                ),
                "パスワードの再設定が完了するまで、現在のパスワードは変更されません。".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::PasswordChanged { at } => Draft {
            subject: "パスワード変更のお知らせ",
            paragraphs: vec![
                format!("{service}のパスワードが変更されました。"),
                format!("変更日時：{}", when_ja(*at)),
                "次回からは新しいパスワードでログインしてください。".to_owned(),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::EmailChangeLink(link) => Draft {
            subject: "メールアドレス変更の確認",
            paragraphs: vec![
                format!(
                    "{service}にご登録のメールアドレスを、このメールアドレスに変更するお手続きを受け付けました。\n\
                     以下のURLにアクセスして、変更を完了してください。"
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "URLの有効期限は{}です。{}を過ぎた場合は、メールアドレスの変更からやり直してください。",
                    span_ja(n.validity.email_change_link),
                    when_ja(link.expires_at)
                ),
                "URLにアクセスして変更を完了するまで、ご登録のメールアドレスは変更されません。".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::EmailChanged {
            new_address_masked,
            at,
        } => Draft {
            subject: "メールアドレス変更のお知らせ",
            paragraphs: vec![
                format!(
                    "{service}にご登録のメールアドレスが変更されました。今後のお知らせは新しいメールアドレスにお送りします。"
                ),
                format!(
                    "新しいメールアドレス：{}\n変更日時：{}",
                    one_line(new_address_masked),
                    when_ja(*at)
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::SecondFactorAdded { factor, at } => Draft {
            subject: "2段階認証の設定のお知らせ",
            paragraphs: vec![
                match factor {
                    FactorKind::RecoveryCodes => format!(
                        "{service}のリカバリーコードが新しく発行されました。以前に発行したリカバリーコードは使えなくなりました。"
                    ),
                    _ => format!(
                        "{service}の2段階認証に{}が設定されました。次回からのログインでは、パスワードの後に{}をご利用ください。",
                        factor_ja(*factor),
                        factor_ja(*factor)
                    ),
                },
                format!("設定日時：{}", when_ja(*at)),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::SecondFactorRemoved { factor, at } => Draft {
            subject: "2段階認証の解除のお知らせ",
            paragraphs: vec![
                format!(
                    "{service}の2段階認証から{}が削除されました。",
                    factor_ja(*factor)
                ),
                format!("削除日時：{}", when_ja(*at)),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::RecoveryCodeUsed { at, remaining } => Draft {
            subject: "リカバリーコード使用のお知らせ",
            paragraphs: vec![
                format!("{service}へのログインにリカバリーコードが使用されました。"),
                format!("使用日時：{}\n残りのリカバリーコード：{remaining}個", when_ja(*at)),
                "認証アプリをなくされた場合は、ログイン後に2段階認証の設定から新しい認証アプリを設定し、リカバリーコードを再発行してください。".to_owned(),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
    }
}

fn english(message: &MailMessage, n: &Names<'_>) -> Draft {
    let service = &n.service;
    match message {
        MailMessage::RegistrationLink(link) => Draft {
            subject: "How to continue your registration",
            paragraphs: vec![
                format!(
                    "You asked to register for {service}.\n\
                     Please open the link below to continue your registration."
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![format!(
                "This link is valid for {}, until {}. After that, please start again by entering your e-mail address.",
                span_en(n.validity.registration_link),
                when_en(link.expires_at)
            )],
            closing: Closing::Discard,
        },
        MailMessage::AlreadyRegistered { login_url } => Draft {
            subject: "About your registration request",
            paragraphs: vec![
                format!(
                    "Someone asked to register for {service} with this e-mail address, \
                     but this address is already registered.\n\
                     Please log in with your login ID and password at the link below."
                ),
                one_line(login_url).into_owned(),
                format!(
                    "If you have forgotten your login ID or password, use {FORGOT_EN} on the login screen."
                ),
            ],
            notes: vec![
                "An e-mail address cannot be shared with a family member. Each family member needs their own address to register.".to_owned(),
                "This request has not changed anything in your registration.".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::IdentityVerified(link) => Draft {
            subject: "Identity check completed",
            paragraphs: vec![
                "Your identity check is complete.\n\
                 To finish your registration, please open the link below and enter your user details.\n\
                 After opening the link, enter the authentication key (認証キー) shown on the identity-check screen."
                    .to_owned(),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "This link is valid for {}, until {}. After that, please register again from the start.",
                    span_en(n.validity.verification_link),
                    when_en(link.expires_at)
                ),
                "The authentication key is not in this mail. Use the key shown on the identity-check screen.".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::RegistrationCompleted { login_url } => Draft {
            subject: "Registration completed",
            paragraphs: vec![
                format!(
                    "Your registration for {service} is complete.\n\
                     From now on, please log in with your login ID and password at the link below."
                ),
                one_line(login_url).into_owned(),
            ],
            notes: vec![
                "For your security, your login ID and password are not in this mail.".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::LoginOtp { code, expires_at } => Draft {
            subject: "Your one-time login code (暗証キー)",
            paragraphs: vec![
                format!(
                    "Here is your one-time code (暗証キー) to log in to {service}.\n\
                     Enter it on the code-entry screen to log in."
                ),
                format!("Code (暗証キー): {}", one_line(code.expose_secret())),
            ],
            notes: vec![
                "The code can be used only once.".to_owned(),
                format!(
                    "The code stops working if you have not logged in within {}, by {}.",
                    span_en(n.validity.login_otp),
                    when_en(*expires_at)
                ),
                "If you close the code-entry screen, the code stops working. In that case, please log in again from the start.".to_owned(),
                format!(
                    "If you did not try to log in, someone else may know your password. Please reset it with {FORGOT_EN} on the login screen."
                ),
            ],
            closing: Closing::Notes,
        },
        MailMessage::LoginOtpAborted { at } => Draft {
            subject: "A login with your password was not completed",
            paragraphs: vec![
                format!(
                    "Someone entered your correct password to log in to {service}, but the login was not completed with the one-time code (暗証キー)."
                ),
                format!("When: {}", when_en(*at)),
                format!(
                    "If this was you, there is nothing to do; please log in again.\n\
                     If it was not you, someone else may know your password. \
                     Please reset it with {FORGOT_EN} on the login screen."
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::AccountLocked { at } => Draft {
            subject: "Your account has been locked",
            paragraphs: vec![
                format!(
                    "Your {service} account has been locked because of repeated wrong passwords."
                ),
                format!("Locked at: {}", when_en(*at)),
                format!(
                    "To unlock it, reset your password with {FORGOT_EN} on the login screen."
                ),
            ],
            notes: vec![
                "If this was not you, someone else may have tried to log in.".to_owned(),
            ],
            closing: Closing::Contact,
        },
        MailMessage::LoginIdReminder { login_id } => Draft {
            subject: "Your login ID",
            paragraphs: vec![
                format!("You asked for your {service} login ID. Here it is."),
                format!("Login ID: {}", one_line(login_id)),
                format!(
                    "Your password is not in this mail. If you have forgotten it, reset it with {FORGOT_EN} on the login screen."
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::PasswordResetLink(link) => Draft {
            subject: "Resetting your password",
            paragraphs: vec![
                format!(
                    "You asked to reset your {service} password.\n\
                     Please open the link below to set a new password."
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "This link is valid for {}, until {}. After that, please start again with {FORGOT_EN} on the login screen.",
                    span_en(n.validity.password_reset_link),
                    when_en(link.expires_at)
                ),
                "Your current password stays unchanged until you set a new one.".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::PasswordChanged { at } => Draft {
            subject: "Your password was changed",
            paragraphs: vec![
                format!("The password of your {service} account was changed."),
                format!("Changed at: {}", when_en(*at)),
                "From now on, please log in with the new password.".to_owned(),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::EmailChangeLink(link) => Draft {
            subject: "Confirm your new e-mail address",
            paragraphs: vec![
                format!(
                    "We received a request to change the e-mail address of your {service} account to this address.\n\
                     Please open the link below to complete the change."
                ),
                one_line(&link.url).into_owned(),
            ],
            notes: vec![
                format!(
                    "This link is valid for {}, until {}. After that, please request the change again.",
                    span_en(n.validity.email_change_link),
                    when_en(link.expires_at)
                ),
                "Your registered address stays unchanged until you open the link and complete the change.".to_owned(),
            ],
            closing: Closing::Discard,
        },
        MailMessage::EmailChanged {
            new_address_masked,
            at,
        } => Draft {
            subject: "Your e-mail address was changed",
            paragraphs: vec![
                format!(
                    "The e-mail address of your {service} account was changed. From now on, we will write to the new address."
                ),
                format!(
                    "New address: {}\nChanged at: {}",
                    one_line(new_address_masked),
                    when_en(*at)
                ),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::SecondFactorAdded { factor, at } => Draft {
            subject: "Two-step verification was set up",
            paragraphs: vec![
                match factor {
                    FactorKind::RecoveryCodes => format!(
                        "New recovery codes were issued for your {service} account. The codes issued before no longer work."
                    ),
                    _ => format!(
                        "{} was added to the two-step verification of your {service} account. From your next login, use it after your password.",
                        factor_en(*factor)
                    ),
                },
                format!("Set up at: {}", when_en(*at)),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::SecondFactorRemoved { factor, at } => Draft {
            subject: "Two-step verification was changed",
            paragraphs: vec![
                format!(
                    "{} was removed from the two-step verification of your {service} account.",
                    factor_en(*factor)
                ),
                format!("Removed at: {}", when_en(*at)),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
        MailMessage::RecoveryCodeUsed { at, remaining } => Draft {
            subject: "A recovery code was used",
            paragraphs: vec![
                format!("A recovery code was used to log in to your {service} account."),
                format!("Used at: {}\nRecovery codes left: {remaining}", when_en(*at)),
                "If you lost your authenticator app, log in, set up a new one under two-step verification, and issue new recovery codes.".to_owned(),
            ],
            notes: Vec::new(),
            closing: Closing::Contact,
        },
    }
}

/// A factor as the Japanese mails name it.
fn factor_ja(factor: FactorKind) -> &'static str {
    match factor {
        FactorKind::Totp => "認証アプリ",
        FactorKind::RecoveryCodes => "リカバリーコード",
        FactorKind::Passkey => "パスキー",
    }
}

/// A factor as the English mails name it.
fn factor_en(factor: FactorKind) -> &'static str {
    match factor {
        FactorKind::Totp => "An authenticator app",
        FactorKind::RecoveryCodes => "The recovery codes",
        FactorKind::Passkey => "A passkey",
    }
}

/// A lifetime as the seed's mails say it: 「3時間」「30分」「1時間30分」「2日」.
fn span_ja(d: time::Duration) -> String {
    let minutes = d.whole_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!("{days}日"));
    }
    if hours > 0 {
        out.push_str(&format!("{hours}時間"));
    }
    if mins > 0 || out.is_empty() {
        out.push_str(&format!("{mins}分"));
    }
    out
}

/// The same in English: "3 hours", "30 minutes", "1 hour 30 minutes".
fn span_en(d: time::Duration) -> String {
    let minutes = d.whole_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(unit(days, "day"));
    }
    if hours > 0 {
        parts.push(unit(hours, "hour"));
    }
    if mins > 0 || parts.is_empty() {
        parts.push(unit(mins, "minute"));
    }
    parts.join(" ")
}

/// Japan Standard Time: members read every time in it, whatever the server's zone.
const JST: time::UtcOffset = offset!(+9);

/// An instant as members read it: 「2026年11月24日 15:30(日本時間)」.
fn when_ja(at: OffsetDateTime) -> String {
    match at.checked_to_offset(JST) {
        Some(t) => format!(
            "{}年{}月{}日 {:02}:{:02}(日本時間)",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        // Only at the edge of the representable years; print it in its own offset.
        None => format!(
            "{}年{}月{}日 {:02}:{:02}(UTC{})",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            offset_text(at.offset())
        ),
    }
}

/// An instant in English, still in Japan time: "15:30 on 24 November 2026 (Japan time)".
fn when_en(at: OffsetDateTime) -> String {
    match at.checked_to_offset(JST) {
        Some(t) => format!(
            "{:02}:{:02} on {} {} {} (Japan time)",
            t.hour(),
            t.minute(),
            t.day(),
            t.month(),
            t.year()
        ),
        None => format!(
            "{:02}:{:02} on {} {} {} (UTC{})",
            at.hour(),
            at.minute(),
            at.day(),
            at.month(),
            at.year(),
            offset_text(at.offset())
        ),
    }
}

fn offset_text(o: time::UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// A value printed into a mail, kept on its line: control characters (CR, LF, TAB …)
/// and bidirectional overrides are dropped, so no value — a login ID, a host's insurer
/// name — can add lines, fake a second link or reorder what the member reads.
fn one_line(s: &str) -> Cow<'_, str> {
    fn unwanted(c: char) -> bool {
        c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if s.chars().any(unwanted) {
        Cow::Owned(s.chars().filter(|&c| !unwanted(c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::datetime;

    use super::*;
    use crate::mail::MailLink;
    use crate::token::{
        AuthKey, EmailChangeLinkToken, OtpCode, PasswordResetLinkToken, RegistrationLinkToken,
        VerificationLinkToken,
    };

    const SUPPORT: &str = "さくら健康保険組合 適用グループ 03-0000-0000";

    fn profile() -> InsurerProfile {
        InsurerProfile::new(
            "さくら健康保険組合",
            "さくらけんぽWeb",
            "no-reply@sakura-kenpo.example.jp",
            SUPPORT,
            "https://portal.sakura-kenpo.example.jp",
        )
    }

    /// Every kind of mail, with fixed tokens and times, plus the 認証キー issued in the
    /// same (fictional) flow, which must appear in none of them.
    fn fixtures() -> (Vec<MailMessage>, AuthKey) {
        let p = profile();
        let mut rng = StdRng::seed_from_u64(20_261_124);
        let expires = datetime!(2026-11-24 06:30 UTC);
        let at = datetime!(2026-11-24 06:00 UTC);
        let login_url = format!("{}/login", p.base_url);
        let reg = RegistrationLinkToken::generate(&mut rng);
        let ver = VerificationLinkToken::generate(&mut rng);
        let auth_key = AuthKey::generate(&mut rng, 8);
        let reset = PasswordResetLinkToken::generate(&mut rng);
        let change = EmailChangeLinkToken::generate(&mut rng);
        let code = OtpCode::generate(&mut rng, 6);
        let messages = vec![
            MailMessage::RegistrationLink(MailLink {
                url: p.link("/register/open", reg.expose_secret()),
                token: reg,
                expires_at: datetime!(2026-11-24 09:00 UTC),
            }),
            MailMessage::AlreadyRegistered {
                login_url: login_url.clone(),
            },
            MailMessage::IdentityVerified(MailLink {
                url: p.link("/register/verify", ver.expose_secret()),
                token: ver,
                expires_at: expires,
            }),
            MailMessage::RegistrationCompleted {
                login_url: login_url.clone(),
            },
            MailMessage::LoginOtp {
                code,
                expires_at: datetime!(2026-11-24 06:10 UTC),
            },
            MailMessage::LoginOtpAborted { at },
            MailMessage::AccountLocked { at },
            MailMessage::LoginIdReminder {
                login_id: "sakura_taro01".to_owned(),
            },
            MailMessage::PasswordResetLink(MailLink {
                url: p.link("/password/reset", reset.expose_secret()),
                token: reset,
                expires_at: expires,
            }),
            MailMessage::PasswordChanged { at },
            MailMessage::EmailChangeLink(MailLink {
                url: p.link("/email/confirm", change.expose_secret()),
                token: change,
                expires_at: expires,
            }),
            MailMessage::EmailChanged {
                new_address_masked: "h***@example.jp".to_owned(),
                at,
            },
            MailMessage::SecondFactorAdded {
                factor: FactorKind::Totp,
                at,
            },
            MailMessage::SecondFactorAdded {
                factor: FactorKind::RecoveryCodes,
                at,
            },
            MailMessage::SecondFactorRemoved {
                factor: FactorKind::Totp,
                at,
            },
            MailMessage::RecoveryCodeUsed { at, remaining: 9 },
        ];
        (messages, auth_key)
    }

    /// What each kind must say. The match has no wildcard: a new `MailMessage` variant
    /// does not compile until its expectations are written here.
    struct Expect {
        subject_ja: &'static str,
        subject_en: &'static str,
        /// The instant of a validity line or an event, if the mail has one.
        instant: Option<OffsetDateTime>,
        /// The URL the mail must print, if any.
        url: Option<String>,
        /// The one secret the mail may carry.
        secret: Option<String>,
        closing: Closing,
    }

    fn expect(m: &MailMessage) -> Expect {
        let e = |subject_ja, subject_en, instant, url, secret, closing| Expect {
            subject_ja,
            subject_en,
            instant,
            url,
            secret,
            closing,
        };
        use Closing::{Contact, Discard};
        match m {
            MailMessage::RegistrationLink(l) => e(
                "利用登録手続きのご案内",
                "How to continue your registration",
                Some(l.expires_at),
                Some(l.url.clone()),
                Some(l.token.expose_secret().to_owned()),
                Discard,
            ),
            MailMessage::AlreadyRegistered { login_url } => e(
                "利用登録のお申し込みについて",
                "About your registration request",
                None,
                Some(login_url.clone()),
                None,
                Discard,
            ),
            MailMessage::IdentityVerified(l) => e(
                "本人確認完了のご案内",
                "Identity check completed",
                Some(l.expires_at),
                Some(l.url.clone()),
                Some(l.token.expose_secret().to_owned()),
                Contact,
            ),
            MailMessage::RegistrationCompleted { login_url } => e(
                "利用登録完了のお知らせ",
                "Registration completed",
                None,
                Some(login_url.clone()),
                None,
                Contact,
            ),
            MailMessage::LoginOtp { code, expires_at } => e(
                "暗証キーのご案内",
                "Your one-time login code (暗証キー)",
                Some(*expires_at),
                None,
                Some(code.expose_secret().to_owned()),
                Closing::Notes,
            ),
            MailMessage::LoginOtpAborted { at } => e(
                "暗証キーによるログインが完了しませんでした",
                "A login with your password was not completed",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::AccountLocked { at } => e(
                "アカウントロックのお知らせ",
                "Your account has been locked",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::LoginIdReminder { login_id } => e(
                "ログインIDのお知らせ",
                "Your login ID",
                None,
                None,
                Some(login_id.clone()),
                Contact,
            ),
            MailMessage::PasswordResetLink(l) => e(
                "パスワード再設定のご案内",
                "Resetting your password",
                Some(l.expires_at),
                Some(l.url.clone()),
                Some(l.token.expose_secret().to_owned()),
                Discard,
            ),
            MailMessage::PasswordChanged { at } => e(
                "パスワード変更のお知らせ",
                "Your password was changed",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::EmailChangeLink(l) => e(
                "メールアドレス変更の確認",
                "Confirm your new e-mail address",
                Some(l.expires_at),
                Some(l.url.clone()),
                Some(l.token.expose_secret().to_owned()),
                Discard,
            ),
            MailMessage::EmailChanged { at, .. } => e(
                "メールアドレス変更のお知らせ",
                "Your e-mail address was changed",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::SecondFactorAdded { at, .. } => e(
                "2段階認証の設定のお知らせ",
                "Two-step verification was set up",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::SecondFactorRemoved { at, .. } => e(
                "2段階認証の解除のお知らせ",
                "Two-step verification was changed",
                Some(*at),
                None,
                None,
                Contact,
            ),
            MailMessage::RecoveryCodeUsed { at, .. } => e(
                "リカバリーコード使用のお知らせ",
                "A recovery code was used",
                Some(*at),
                None,
                None,
                Contact,
            ),
        }
    }

    const LANGS: [Lang; 2] = [Lang::Ja, Lang::En];

    fn contact_line(lang: Lang, support: &str) -> String {
        match lang {
            Lang::En => format!("* If this was not you, please contact {support}.\n"),
            _ => format!("※お心当たりのない場合は、{support} までご連絡ください。\n"),
        }
    }

    fn discard_line(lang: Lang) -> &'static str {
        match lang {
            Lang::En => {
                "* If you did not expect this mail, please accept our apologies and delete it.\n"
            }
            _ => "※本メールに覚えがない場合は、大変お手数ですが本メールを破棄してください。\n",
        }
    }

    /// Something shaped like a 記号・番号・枝番 (`digits-digits-2 digits`) anywhere in `s`.
    fn has_card_number_shape(s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        (0..chars.len()).any(|i| {
            let digits = |mut j: usize| {
                let start = j;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                (j - start, j)
            };
            let (a, j) = digits(i);
            if a == 0 || chars.get(j) != Some(&'-') {
                return false;
            }
            let (b, k) = digits(j + 1);
            if b == 0 || chars.get(k) != Some(&'-') {
                return false;
            }
            digits(k + 1).0 == 2
        })
    }

    #[test]
    fn fixtures_cover_every_kind_of_mail() {
        let (messages, _) = fixtures();
        let mut kinds: Vec<_> = messages.iter().map(MailMessage::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 15);
    }

    /// DESIGN §4: every mail, in ja and en, opens with the insurer's name, has its
    /// subject, its validity or event time in Japan time, the discard or contact note,
    /// the no-reply note, and the insurer's name as signature.
    #[test]
    fn every_mail_renders_in_both_languages_with_its_frame() {
        let p = profile();
        let (messages, _) = fixtures();
        for m in &messages {
            let want = expect(m);
            for lang in LANGS {
                let mail = render(m, &p, lang);
                let ctx = format!("{} {lang:?}", m.kind());
                let (subject, opening, no_reply) = match lang {
                    Lang::En => (
                        want.subject_en,
                        "This is a message from さくら健康保険組合.\n\n",
                        "* This mail was sent from a send-only address; please do not reply to it.\n",
                    ),
                    _ => (
                        want.subject_ja,
                        "さくら健康保険組合です。\n\n",
                        "※本メールには返信できませんのでご了承ください。\n",
                    ),
                };
                assert_eq!(mail.subject, subject, "{ctx}");
                assert!(mail.body.starts_with(opening), "{ctx}");
                assert!(
                    mail.body
                        .ends_with(&format!("{no_reply}\nさくら健康保険組合\n")),
                    "{ctx}"
                );
                if let Some(at) = want.instant {
                    let when = match lang {
                        Lang::En => when_en(at),
                        _ => when_ja(at),
                    };
                    assert!(mail.body.contains(&when), "{ctx}: no time {when}");
                }
                let (contact, discard) = (
                    mail.body.contains(&contact_line(lang, SUPPORT)),
                    mail.body.contains(discard_line(lang)),
                );
                assert_eq!(
                    (contact, discard),
                    (
                        want.closing == Closing::Contact,
                        want.closing == Closing::Discard
                    ),
                    "{ctx}"
                );
                if let Some(secret) = &want.secret {
                    assert!(mail.body.contains(secret.as_str()), "{ctx}");
                }
                assert!(!mail.body.contains('\r'), "{ctx}");
            }
        }
    }

    /// The link mails state the validity as the seed does — 「※URLの有効期限は3時間です。」 —
    /// and until when, in Japan time; the 暗証キー mail the seed's notes, with one answer
    /// to 「I did not ask for this」 (reset the password), not two.
    #[test]
    fn validity_lines_follow_the_seed() {
        let p = profile();
        let (messages, _) = fixtures();
        let ja = |kind: &str| {
            let m = messages.iter().find(|m| m.kind() == kind).unwrap();
            render(m, &p, Lang::Ja).body
        };
        assert!(ja("registration_link").contains(
            "※URLの有効期限は3時間です。2026年11月24日 18:00(日本時間)を過ぎた場合は、メールアドレスの登録からやり直してください。\n"
        ));
        assert!(ja("identity_verified").contains(
            "※URLの有効期限は30分です。2026年11月24日 15:30(日本時間)を過ぎた場合は、新規利用登録からやり直してください。\n"
        ));
        let otp = ja("login_otp");
        let code = match messages.iter().find(|m| m.kind() == "login_otp").unwrap() {
            MailMessage::LoginOtp { code, .. } => code.expose_secret().to_owned(),
            _ => unreachable!(),
        };
        for line in [
            "さくらけんぽWebへログインするための暗証キーをお知らせします。\n".to_owned(),
            format!("\n暗証キー：{code}\n"),
            "※暗証キーは1回限り有効です。\n".to_owned(),
            "※10分以内にログインがされないと、暗証キーは無効になります。有効期限は2026年11月24日 15:10(日本時間)です。\n".to_owned(),
            "※暗証キー入力画面を閉じてしまうと、発行された暗証キーは無効になります。その際は初めから再度手続きを行ってください。\n".to_owned(),
        ] {
            assert!(otp.contains(&line), "missing {line}");
        }
        assert!(
            !otp.contains("本メールに覚えがない場合"),
            "one answer for an unexpected 暗証キー mail: reset the password"
        );
        // The durations come from the profile (the Portal's policy), not from the kind.
        let mut p = profile();
        p.mail_validity.registration_link = time::Duration::minutes(90);
        let m = messages
            .iter()
            .find(|m| m.kind() == "registration_link")
            .unwrap();
        assert!(
            render(m, &p, Lang::Ja)
                .body
                .contains("※URLの有効期限は1時間30分です。")
        );
        assert!(
            render(m, &p, Lang::En)
                .body
                .contains("valid for 1 hour 30 minutes, until")
        );
    }

    /// Japan time is UTC+9, across a date change, and the extremes of `time` do not panic.
    #[test]
    fn times_are_printed_in_japan_time() {
        assert_eq!(
            when_ja(datetime!(2026-11-24 06:30 UTC)),
            "2026年11月24日 15:30(日本時間)"
        );
        assert_eq!(
            when_ja(datetime!(2026-12-31 20:05 UTC)),
            "2027年1月1日 05:05(日本時間)"
        );
        assert_eq!(
            when_ja(datetime!(2026-11-24 15:30 +09:00)),
            "2026年11月24日 15:30(日本時間)"
        );
        assert_eq!(
            when_en(datetime!(2026-11-24 06:30 UTC)),
            "15:30 on 24 November 2026 (Japan time)"
        );
        let edge = datetime!(9999-12-31 23:59 -05:00);
        assert!(when_ja(edge).contains("(UTC-05:00)"));
        assert!(when_en(edge).contains("(UTC-05:00)"));
    }

    /// The registration-link body prints exactly the `MailLink` URL, once, on its own line.
    #[test]
    fn registration_link_body_contains_exactly_the_mail_link_url() {
        let p = profile();
        let (messages, _) = fixtures();
        let MailMessage::RegistrationLink(link) = &messages[0] else {
            unreachable!()
        };
        for lang in LANGS {
            let body = render(&messages[0], &p, lang).body;
            let url_lines: Vec<&str> = body.lines().filter(|l| l.contains("://")).collect();
            assert_eq!(url_lines, vec![link.url.as_str()]);
        }
    }

    /// SEC-39: a mail prints the URL its message carries and nothing else that looks like
    /// a link — not the profile's base URL, not anything of its own. Here the message's
    /// URLs live on another host than `profile.base_url`, so any link the template built
    /// itself would show.
    #[test]
    fn sec_39_links_come_only_from_the_message_url() {
        let p = profile();
        let (messages, _) = fixtures();
        for m in &messages {
            let mut moved = m.clone();
            let relocated = |u: &str| u.replace(&p.base_url, "https://links.kenpo.example.test");
            match &mut moved {
                MailMessage::RegistrationLink(l) => l.url = relocated(&l.url),
                MailMessage::IdentityVerified(l) => l.url = relocated(&l.url),
                MailMessage::PasswordResetLink(l) => l.url = relocated(&l.url),
                MailMessage::EmailChangeLink(l) => l.url = relocated(&l.url),
                MailMessage::AlreadyRegistered { login_url }
                | MailMessage::RegistrationCompleted { login_url } => {
                    *login_url = relocated(login_url)
                }
                _ => {}
            }
            let want = expect(&moved);
            for lang in LANGS {
                let body = render(&moved, &p, lang).body;
                assert!(!body.contains(&p.base_url), "{} {lang:?}", m.kind());
                assert!(!body.contains("sakura-kenpo.example.jp"), "{}", m.kind());
                match &want.url {
                    Some(url) => {
                        assert!(url.starts_with("https://links.kenpo.example.test/"));
                        assert_eq!(body.matches("://").count(), 1, "{}", m.kind());
                        assert_eq!(body.matches(url.as_str()).count(), 1, "{}", m.kind());
                    }
                    None => assert!(!body.contains("://"), "{}", m.kind()),
                }
            }
        }
    }

    /// SEC-43: every security notice — registration completed, identity verified (the
    /// proofing notice), login ID reminder, password changed, e-mail changed, account
    /// locked, 暗証キー login abandoned (SEC-31) — ends with whom to call, and carries no
    /// secret but the login ID of the reminder.
    #[test]
    fn sec_43_security_notices_carry_a_contact_line() {
        let p = profile();
        let (messages, _) = fixtures();
        let notices = [
            "registration_completed",
            "identity_verified",
            "login_id_reminder",
            "password_changed",
            "email_changed",
            "account_locked",
            "login_otp_aborted",
        ];
        let secrets: Vec<String> = messages.iter().filter_map(|m| expect(m).secret).collect();
        let mut seen = 0;
        for m in messages.iter().filter(|m| notices.contains(&m.kind())) {
            seen += 1;
            for lang in LANGS {
                let body = render(m, &p, lang).body;
                assert!(
                    body.contains(&contact_line(lang, SUPPORT)),
                    "{} {lang:?}",
                    m.kind()
                );
                let own = expect(m).secret;
                for s in secrets.iter().filter(|s| Some(*s) != own.as_ref()) {
                    assert!(!body.contains(s.as_str()), "{} leaks a secret", m.kind());
                }
            }
        }
        assert_eq!(seen, notices.len());
    }

    /// SEC-11 / SEC-43: no mail carries the on-screen 認証キー, a 記号・番号・枝番, or
    /// another mail's secret.
    #[test]
    fn sec_11_no_mail_carries_the_auth_key_a_card_number_or_another_secret() {
        let p = profile();
        let (messages, auth_key) = fixtures();
        let secrets: Vec<String> = messages.iter().filter_map(|m| expect(m).secret).collect();
        for m in &messages {
            let own = expect(m).secret;
            for lang in LANGS {
                let mail = render(m, &p, lang);
                for text in [&mail.subject, &mail.body] {
                    assert!(!text.contains(auth_key.expose_secret()), "{}", m.kind());
                    assert!(!has_card_number_shape(text), "{}", m.kind());
                    for s in secrets.iter().filter(|s| Some(*s) != own.as_ref()) {
                        assert!(!text.contains(s.as_str()), "{}", m.kind());
                    }
                }
            }
        }
        // The detector itself finds what it must.
        assert!(has_card_number_shape("記号番号：999-123456-00です"));
        assert!(!has_card_number_shape("03-0000-0000"));
    }

    /// Values printed into a mail cannot add lines or reorder text (header/body
    /// injection through a login ID or a host's profile).
    #[test]
    fn printed_values_stay_on_their_line() {
        let mut p = profile();
        p.support_contact = "窓口\r\nBcc: x@example.test".to_owned();
        let m = MailMessage::LoginIdReminder {
            login_id: "taro\n\nhttps://evil.example.test\u{202E}".to_owned(),
        };
        for lang in LANGS {
            let body = render(&m, &p, lang).body;
            assert!(!body.contains('\r'));
            assert!(!body.contains('\u{202E}'));
            assert!(
                body.lines()
                    .any(|l| l.ends_with("tarohttps://evil.example.test"))
            );
            assert!(!body.lines().any(|l| l.starts_with("Bcc:")));
        }
    }

    /// Hosts override one mail and delegate the rest to `DefaultTemplates`.
    #[test]
    fn hosts_override_one_mail_and_delegate_the_rest() {
        struct Ours;
        impl MailTemplates for Ours {
            fn render(&self, m: &MailMessage, p: &InsurerProfile, lang: Lang) -> RenderedMail {
                match m {
                    MailMessage::AccountLocked { .. } => RenderedMail {
                        subject: "custom".to_owned(),
                        body: String::new(),
                    },
                    _ => DefaultTemplates.render(m, p, lang),
                }
            }
        }
        let p = profile();
        let (messages, _) = fixtures();
        let templates: Box<dyn MailTemplates> = Box::new(Ours);
        for m in &messages {
            let got = templates.render(m, &p, Lang::Ja);
            if m.kind() == "account_locked" {
                assert_eq!(got.subject, "custom");
            } else {
                assert_eq!(got, render(m, &p, Lang::Ja));
            }
        }
    }

    fn snapshot(lang: Lang) -> String {
        let p = profile();
        let (messages, _) = fixtures();
        let mut out = format!(
            "# kenpo-auth default mail texts ({}), rendered by src/mail/render.rs.\n\
             # Regenerate with: UPDATE_SNAPSHOTS=1 cargo test mail_texts_match_snapshot\n\
             # Profile: {} / {} / {} / {} / support: {}\n\
             # Tokens are fixed (seeded RNG); times are fixed UTC instants shown in JST.\n",
            match lang {
                Lang::En => "en",
                _ => "ja",
            },
            p.insurer_name,
            p.service_name,
            p.sender_address,
            p.base_url,
            p.support_contact
        );
        for m in &messages {
            let mail = render(m, &p, lang);
            out.push_str(&format!(
                "\n======== {} ========\nSubject: {}\n--------\n{}",
                m.kind(),
                mail.subject,
                mail.body
            ));
        }
        out
    }

    /// Reviewers read every text in tests/snapshots/; this keeps those files true.
    #[test]
    fn mail_texts_match_snapshot() {
        let cases = [
            (
                Lang::Ja,
                "mails_ja.txt",
                include_str!("../../tests/snapshots/mails_ja.txt"),
            ),
            (
                Lang::En,
                "mails_en.txt",
                include_str!("../../tests/snapshots/mails_en.txt"),
            ),
        ];
        let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
        for (lang, file, stored) in cases {
            let now = snapshot(lang);
            if update {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/snapshots")
                    .join(file);
                std::fs::write(&path, &now).unwrap();
            } else {
                assert_eq!(
                    now, stored,
                    "{file} is stale: run UPDATE_SNAPSHOTS=1 cargo test mail_texts_match_snapshot and review the diff"
                );
            }
        }
    }
}
