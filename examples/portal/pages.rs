//! The screens, as askama templates (HTML-escaped by default), and the fixed pages for
//! errors: 503 for host failures, 403 for a failed CSRF check, 429 for the rate limit.

use askama::Template;
use askama_web::WebTemplate;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::macros::offset;

use super::notices::{Field, MedicalRow};
use super::{INSURER_NAME, SERVICE_NAME, SUPPORT};

/// Where a registration screen sits in the 新規利用登録 steps (0: not a registration
/// screen).
pub(crate) mod step {
    pub(crate) const NONE: u8 = 0;
    pub(crate) const EMAIL: u8 = 1;
    pub(crate) const IDENTITY: u8 = 2;
    pub(crate) const AUTH_KEY: u8 = 3;
    pub(crate) const CREDENTIALS: u8 = 4;
    pub(crate) const DONE: u8 = 5;
}

const STEP_LABELS: [&str; 5] = ["メール入力", "本人確認", "認証キー", "利用者情報", "完了"];

/// One entry of the steps bar.
pub(crate) struct StepView {
    pub(crate) number: usize,
    pub(crate) label: &'static str,
    pub(crate) class: &'static str,
}

/// What every page's frame shows.
pub(crate) struct Layout {
    pub(crate) title: &'static str,
    pub(crate) insurer: &'static str,
    pub(crate) service: &'static str,
    pub(crate) support: &'static str,
    pub(crate) signed_in: bool,
    pub(crate) csrf: String,
    pub(crate) step: u8,
    pub(crate) error: Option<String>,
    pub(crate) notice: Option<String>,
    /// The form field the error is about (`aria-invalid`, `aria-describedby="error"`).
    pub(crate) invalid: Option<String>,
    /// Steps passed over rather than done (事前登録 skips 本人確認 and 認証キー).
    pub(crate) skipped: Vec<u8>,
}

impl Layout {
    pub(crate) fn new(title: &'static str, csrf: String) -> Self {
        Layout {
            title,
            insurer: INSURER_NAME,
            service: SERVICE_NAME,
            support: SUPPORT,
            signed_in: false,
            csrf,
            step: step::NONE,
            error: None,
            notice: None,
            invalid: None,
            skipped: Vec::new(),
        }
    }

    pub(crate) fn invalid(mut self, field: Option<String>) -> Self {
        self.invalid = field;
        self
    }

    pub(crate) fn skipped(mut self, steps: &[u8]) -> Self {
        self.skipped = steps.to_vec();
        self
    }

    /// The accessibility attributes of the input `field` whose hint has the id `hint`
    /// (empty: none): `aria-describedby` names the hint and, when the page's error is
    /// about this field, the error too, with `aria-invalid="true"`. Only fixed ids go
    /// in, so the text is safe to emit unescaped.
    pub(crate) fn aria(&self, field: &str, hint: &str) -> String {
        let invalid = self.error.is_some() && self.invalid.as_deref() == Some(field);
        let mut ids: Vec<&str> = Vec::new();
        if invalid {
            ids.push("error");
        }
        if !hint.is_empty() {
            ids.push(hint);
        }
        let mut out = String::new();
        if invalid {
            out.push_str(" aria-invalid=\"true\"");
        }
        if !ids.is_empty() {
            out.push_str(&format!(" aria-describedby=\"{}\"", ids.join(" ")));
        }
        out
    }

    pub(crate) fn step(mut self, s: u8) -> Self {
        self.step = s;
        self
    }

    pub(crate) fn error(mut self, e: Option<String>) -> Self {
        self.error = e;
        self
    }

    pub(crate) fn notice(mut self, n: Option<String>) -> Self {
        self.notice = n;
        self
    }

    pub(crate) fn signed_in(mut self) -> Self {
        self.signed_in = true;
        self
    }

    pub(crate) fn steps(&self) -> Vec<StepView> {
        STEP_LABELS
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let n = i + 1;
                let current = usize::from(self.step);
                let skipped = u8::try_from(n).is_ok_and(|n| self.skipped.contains(&n));
                StepView {
                    number: n,
                    label,
                    class: if skipped {
                        "skipped"
                    } else if n < current {
                        "done"
                    } else if n == current {
                        "current"
                    } else {
                        "todo"
                    },
                }
            })
            .collect()
    }
}

/// A validity as members read it: the duration, then until when —
/// 「3時間(11月24日 12:00まで)」.
pub(crate) fn with_minutes(expires_at: OffsetDateTime, ttl: time::Duration) -> String {
    let minutes = ttl.whole_minutes();
    let duration = if minutes >= 60 && minutes % 60 == 0 {
        format!("{}時間", minutes / 60)
    } else {
        format!("{minutes}分")
    };
    format!("{duration}({}まで)", until(expires_at))
}

/// `HH:MM` in Japan time, for 「…まで」.
pub(crate) fn until(t: OffsetDateTime) -> String {
    let t = t.checked_to_offset(offset!(+9)).unwrap_or(t);
    format!(
        "{}月{}日 {:02}:{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html", config = "examples/portal/askama.toml")]
pub(crate) struct LoginPage {
    pub(crate) layout: Layout,
    pub(crate) login_id: String,
    /// 「パスキーでログイン」 without a login ID and password.
    pub(crate) passkey_login: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "register.html", config = "examples/portal/askama.toml")]
pub(crate) struct RegisterPage {
    pub(crate) layout: Layout,
    pub(crate) email: String,
    pub(crate) sender: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "register_sent.html", config = "examples/portal/askama.toml")]
pub(crate) struct RegisterSentPage {
    pub(crate) layout: Layout,
    /// The mail is still being tried (the outbox retries it).
    pub(crate) mail_delayed: Option<&'static str>,
    /// The mail was given up (refused, or expired undelivered).
    pub(crate) mail_failed: Option<&'static str>,
    pub(crate) carrier_advisory: Option<String>,
    pub(crate) legacy_warning: Option<String>,
    pub(crate) sender: &'static str,
    pub(crate) ttl_hours: i64,
    pub(crate) gap_seconds: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "link1.html", config = "examples/portal/askama.toml")]
pub(crate) struct Link1Page {
    pub(crate) layout: Layout,
    pub(crate) expires: Option<String>,
    pub(crate) login_id: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "identity.html", config = "examples/portal/askama.toml")]
pub(crate) struct IdentityPage {
    pub(crate) layout: Layout,
    pub(crate) card_symbol: String,
    pub(crate) card_number: String,
    pub(crate) card_branch: String,
    pub(crate) birth_date: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth_key.html", config = "examples/portal/askama.toml")]
pub(crate) struct AuthKeyPage {
    pub(crate) layout: Layout,
    pub(crate) auth_key: String,
    pub(crate) expires: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "verify.html", config = "examples/portal/askama.toml")]
pub(crate) struct VerifyPage {
    pub(crate) layout: Layout,
    pub(crate) expires: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "credentials.html", config = "examples/portal/askama.toml")]
pub(crate) struct CredentialsPage {
    pub(crate) layout: Layout,
    pub(crate) login_id: String,
    pub(crate) nickname: String,
    pub(crate) email: String,
    pub(crate) id_min: usize,
    pub(crate) id_max: usize,
    pub(crate) pw_min: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "recovery.html", config = "examples/portal/askama.toml")]
pub(crate) struct RecoveryPage {
    pub(crate) layout: Layout,
    pub(crate) email: String,
    pub(crate) card_symbol: String,
    pub(crate) card_number: String,
    pub(crate) card_branch: String,
    pub(crate) birth_date: String,
    pub(crate) login_id: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "reset.html", config = "examples/portal/askama.toml")]
pub(crate) struct ResetPage {
    pub(crate) layout: Layout,
    pub(crate) expires: Option<String>,
    pub(crate) ask_identity: bool,
    pub(crate) pw_min: usize,
    pub(crate) card_symbol: String,
    pub(crate) card_number: String,
    pub(crate) card_branch: String,
    pub(crate) birth_date: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "done.html", config = "examples/portal/askama.toml")]
pub(crate) struct DonePage {
    pub(crate) layout: Layout,
}

#[derive(Template, WebTemplate)]
#[template(path = "otp.html", config = "examples/portal/askama.toml")]
pub(crate) struct OtpPage {
    pub(crate) layout: Layout,
    /// The 暗証キー mail is still being tried, or was given up.
    pub(crate) mail_notice: Option<&'static str>,
    pub(crate) masked_email: String,
    pub(crate) page_token: String,
    pub(crate) ttl_minutes: i64,
    pub(crate) expires: String,
}

/// One line of a mail on the development mailbox: a link of this portal is clickable.
pub(crate) struct MailLineView {
    pub(crate) text: String,
    pub(crate) link: Option<String>,
}

/// A mail on the development mailbox.
pub(crate) struct MailView {
    pub(crate) at: String,
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) lines: Vec<MailLineView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html", config = "examples/portal/askama.toml")]
pub(crate) struct MailboxPage {
    pub(crate) layout: Layout,
    pub(crate) letters: Vec<String>,
    pub(crate) mails: Vec<MailView>,
}

/// A row of the medical-expense table, amounts formatted.
pub(crate) struct MedicalRowView {
    pub(crate) month: &'static str,
    pub(crate) provider: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) days: u32,
    pub(crate) total: String,
    pub(crate) own_share: String,
}

impl From<&MedicalRow> for MedicalRowView {
    fn from(r: &MedicalRow) -> Self {
        MedicalRowView {
            month: r.month,
            provider: r.provider,
            kind: r.kind,
            days: r.days,
            total: super::notices::format_yen(r.total),
            own_share: super::notices::format_yen(r.own_share),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "home.html", config = "examples/portal/askama.toml")]
pub(crate) struct HomePage {
    pub(crate) layout: Layout,
    pub(crate) greeting: String,
    pub(crate) qualification: Vec<Field>,
    pub(crate) rows: Vec<MedicalRowView>,
    pub(crate) total: String,
    pub(crate) own_total: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "message.html", config = "examples/portal/askama.toml")]
pub(crate) struct MessagePage {
    pub(crate) layout: Layout,
    pub(crate) message: Option<String>,
    pub(crate) link_href: Option<&'static str>,
    pub(crate) link_text: &'static str,
}

impl MessagePage {
    pub(crate) fn new(layout: Layout, message: impl Into<String>) -> Self {
        MessagePage {
            layout,
            message: Some(message.into()),
            link_href: None,
            link_text: "",
        }
    }

    pub(crate) fn link(mut self, href: &'static str, text: &'static str) -> Self {
        self.link_href = Some(href);
        self.link_text = text;
        self
    }
}

/// Host failure (store, mail, roster, hashing): the generic page, 503. The member did
/// nothing wrong and may retry; the details went to the log.
pub(crate) fn unavailable() -> Response {
    let page = MessagePage::new(
        Layout::new("ただいまサービスを利用できません", String::new()),
        "申し訳ございません。ただいまサービスを利用できません。しばらく時間をおいてから、もう一度お試しください。",
    )
    .link("/login", "ログイン画面へ");
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, page).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    resp
}

/// A form whose CSRF token did not match (an old tab after a timeout, or a forged
/// request).
pub(crate) fn csrf_failed(status: StatusCode) -> Response {
    let page = MessagePage::new(
        Layout::new("画面の有効期限が切れました", String::new()),
        "画面の有効期限が切れたか、正しくない操作が行われました。お手数ですが、最初から操作をやり直してください。",
    )
    .link("/login", "ログイン画面へ");
    (status, page).into_response()
}

/// A post that is not a well-formed form (wrong content type, a field sent twice, too
/// large, not decodable): the portal's own page, never a framework's plain text.
pub(crate) fn bad_form(status: StatusCode) -> Response {
    let page = MessagePage::new(
        Layout::new("正しく送信できませんでした", String::new()),
        "入力内容を正しく受け付けられませんでした。お手数ですが、画面を開き直してから、もう一度お試しください。",
    )
    .link("/login", "ログイン画面へ");
    (status, page).into_response()
}

/// The rate limit's answer, 429 with `Retry-After`.
pub(crate) fn too_many_requests(wait_secs: u64) -> Response {
    let page = MessagePage::new(
        Layout::new("しばらくお待ちください", String::new()),
        format!("短時間に操作が繰り返されました。{wait_secs}秒ほど待ってから再度お試しください。"),
    );
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    if let Ok(v) = HeaderValue::from_str(&wait_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
