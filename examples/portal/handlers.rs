//! One handler per screen and form, in the order of DESIGN.md §1.
//!
//! Every `Portal` call ends in one of three ways: the next screen; a `Rejection`, shown
//! with its Japanese message (`rejection.message(Lang::Ja)`) on the same or a closing
//! screen; or a host failure (store, mail, roster), which is logged and answered with
//! the generic 503 page. A member never sees a 500 or a panic.

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kenpo_auth::domain::{EmailAddress, LoginId, Password};
use kenpo_auth::flow::{IdentityClaim, LinkStatus, SecondStep};
use kenpo_auth::portal::{NewCredentials, RecoveryRequested};
use kenpo_auth::ports::AccountLookup;
use kenpo_auth::{Error, Lang, Rejection};
use serde::Deserialize;

use super::AppState;
use super::notices;
use super::pages::{
    self, AuthKeyPage, CredentialsPage, DonePage, HomePage, IdentityPage, Layout, Link1Page,
    LoginPage, MedicalRowView, MessagePage, OtpPage, RecoveryPage, RegisterPage, RegisterSentPage,
    ResetPage, VerifyPage, step, until, with_minutes,
};
use super::security::Requester;
use super::session::{
    Flash, LinkKind, OtpScreen, Session, SessionData, ShownAuthKey, SignedIn, digest, otp_proof,
    tokens_match,
};

/// A host failure, already logged: answered with the generic 503 page.
pub(crate) struct Unavailable;

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        pages::unavailable()
    }
}

#[path = "factors.rs"]
pub(crate) mod factors;

type Page = Result<Response, Unavailable>;

/// Separates what the member caused from what the host's side did. Host errors are
/// logged with their source chain (they carry no secrets) and become [`Unavailable`].
fn split<T>(r: Result<T, Error>) -> Result<Result<T, Rejection>, Unavailable> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Error::Rejected(rej)) => Ok(Err(rej)),
        Err(e) => {
            let mut chain = String::new();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(error = %e, cause = %chain, "host failure; answered 503");
            Err(Unavailable)
        }
    }
}

/// What the browser sent back (form field, query or session cookie), parsed as the
/// secret a step takes. A malformed value is that step's own rejection — the `FromStr`
/// error — so it is answered exactly like the library's refusal.
fn secret<T: std::str::FromStr<Err = Rejection>>(s: &str) -> Result<T, Error> {
    Ok(s.parse()?)
}

/// A link landing's GET for link text from the browser: malformed text is
/// [`LinkStatus::Invalid`], the same page as a link nobody was sent.
fn landing<T: std::str::FromStr<Err = Rejection>>(s: &str) -> Option<T> {
    s.parse().ok()
}

fn ja(r: &Rejection) -> Option<String> {
    Some(r.message(Lang::Ja).into_owned())
}

/// 200 for a re-shown form, 429 with `Retry-After` for a cooldown.
fn with_status(r: &Rejection, page: impl IntoResponse) -> Response {
    match r.retry_after() {
        Some(wait) => {
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.whole_seconds().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        None => page.into_response(),
    }
}

fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Post-redirect-get for a refused form: the message and what the member typed (never
/// secrets) go to the session, and the browser is sent (303) to the form's own page,
/// which shows them once. A reload then posts nothing.
fn back_to_form(
    session: &Session,
    page: &'static str,
    r: &Rejection,
    field: Option<&'static str>,
    fields: Vec<(&'static str, String)>,
) -> Response {
    back_with_message(
        session,
        page,
        ja(r),
        r.retry_after().map(|d| d.whole_seconds().max(1)),
        field,
        fields,
    )
}

fn back_with_message(
    session: &Session,
    page: &'static str,
    error: Option<String>,
    retry_after: Option<i64>,
    field: Option<&'static str>,
    fields: Vec<(&'static str, String)>,
) -> Response {
    session.flash(Flash {
        page: page.to_owned(),
        error,
        notice: None,
        field: field.map(str::to_owned),
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        retry_after,
    });
    see_other(page)
}

/// A page that shows a flash: 429 with `Retry-After` when its message is a cooldown (so
/// a script or a proxy can tell), 200 otherwise.
fn shown(flash: &Option<Flash>, page: impl IntoResponse) -> Response {
    match flash.as_ref().and_then(|f| f.retry_after) {
        Some(wait) => {
            let mut resp = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        None => page.into_response(),
    }
}

fn flash_error(flash: &Option<Flash>) -> Option<String> {
    flash.as_ref().and_then(|f| f.error.clone())
}

fn flash_field(flash: &Option<Flash>) -> Option<String> {
    flash.as_ref().and_then(|f| f.field.clone())
}

fn flash_value(flash: &Option<Flash>, name: &str) -> String {
    flash.as_ref().map(|f| f.value(name)).unwrap_or_default()
}

fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How long a repeated 【ログイン】 / 【送信する】 with the same ID or address counts as the
/// same tap (a double tap, a reload of the answer) rather than a new request.
const SAME_TAP: time::Duration = time::Duration::seconds(30);

/// 記号・番号・枝番 from a form: three fields (`card_symbol`, `card_number`,
/// `card_branch`, for a phone's number pad, which has no hyphen), or one field
/// (`card_number`) as typed, hyphens and all. The library reads the result (DOM-8).
fn card_text(symbol: &str, number: &str, branch: &str) -> String {
    let (symbol, number, branch) = (symbol.trim(), number.trim(), branch.trim());
    if symbol.is_empty() && branch.is_empty() {
        number.to_owned()
    } else {
        format!("{symbol}-{number}-{branch}")
    }
}

/// The card fields to show again after a refused form.
fn card_fields(
    symbol: &str,
    number: &str,
    branch: &str,
    birth: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("card_symbol", symbol.to_owned()),
        ("card_number", number.to_owned()),
        ("card_branch", branch.to_owned()),
        ("birth_date", birth.to_owned()),
    ]
}

// ───────────────────────────── ログイン ─────────────────────────────

pub(crate) async fn root(Extension(session): Extension<Session>) -> Response {
    if session.data().signed_in.is_some() {
        see_other("/home")
    } else {
        see_other("/login")
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ReasonQuery {
    reason: Option<String>,
}

/// Fixed texts for the login page's `?reason=` (never reflected as given).
fn reason_text(reason: Option<&str>) -> Option<String> {
    let text = match reason? {
        "logged_out" => "ログアウトしました。",
        "timeout" => {
            "一定時間操作がなかったため、ログアウトしました。お手数ですが再度ログインしてください。"
        }
        "otp_closed" => {
            "暗証キー入力画面が閉じられたため、暗証キーは無効になりました。お手数ですが再度ログインしてください。"
        }
        "otp_ended" => {
            "別の画面で新たにログインが行われたか、有効期限が切れたため、この暗証キーは無効になりました。お手数ですが再度ログインしてください。"
        }
        "otp_missing" => {
            "暗証キー入力画面の有効期限が切れました。お手数ですが再度ログインしてください。"
        }
        "signed_out" => {
            "ご登録情報が変更されたため、ログアウトしました。お手数ですが再度ログインしてください。"
        }
        "login_required" => "ログインしてください。",
        _ => return None,
    };
    Some(text.to_owned())
}

pub(crate) async fn login_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<ReasonQuery>,
) -> Response {
    if session.data().signed_in.is_some() {
        return see_other("/home");
    }
    let flash = session.take_flash("/login");
    let notice = if session.timed_out() {
        reason_text(Some("timeout"))
    } else {
        reason_text(q.reason.as_deref())
    };
    shown(
        &flash,
        LoginPage {
            layout: Layout::new("ログイン", session.csrf())
                .notice(notice)
                .error(flash_error(&flash))
                .invalid(flash_field(&flash)),
            login_id: flash_value(&flash, "login_id"),
            passkey_login: state.portal.offers_passkey_only_login(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct LoginForm {
    login_id: String,
    password: String,
}

pub(crate) async fn login_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<LoginForm>,
) -> Page {
    let now = state.clock.now();
    let id_digest = digest(&["login", f.login_id.trim()]);
    let data = session.data();
    if data.signed_in.is_some() {
        return Ok(see_other("/home"));
    }
    // A second 【ログイン】 moments later with the same ID (a double tap, a reload of the
    // post): the code mailed for the first is the one to type; a new login would kill it.
    if let Some(otp) = &data.otp
        && !otp.closed
        && now < otp.started_at + SAME_TAP
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            otp.login_id_digest.as_slice(),
            id_digest.as_slice(),
        ))
    {
        return Ok(see_other("/login/otp"));
    }
    // SEC-22: a password `Password::new` refuses is answered like any failed login.
    let started = match Password::new(f.password) {
        Ok(password) => state.portal.start_login(&f.login_id, &password).await,
        Err(_) => Err(Rejection::LoginFailed.into()),
    };
    match split(started)? {
        Ok(ch) => {
            session.update(|d| {
                d.otp = Some(OtpScreen {
                    challenge: ch.challenge.expose_secret().to_owned(),
                    masked_email: ch.masked_email.clone(),
                    expires_at: ch.expires_at,
                    page_token: random_token(),
                    started_at: now,
                    login_id_digest: id_digest,
                    closed: false,
                    receipt: ch.receipt.map(|r| r.to_hex()),
                    factor: factors::screen_of(&ch),
                });
            });
            if !matches!(ch.second_step, SecondStep::EmailedCode) {
                return Ok(see_other("/login/factor"));
            }
            Ok(see_other("/login/otp"))
        }
        Err(r) => Ok(back_to_form(
            &session,
            "/login",
            &r,
            Some("password"),
            vec![("login_id", f.login_id)],
        )),
    }
}

// ───────────────────────────── 暗証キー入力 ─────────────────────────────

fn otp_page(
    state: &AppState,
    session: &Session,
    otp: &OtpScreen,
    flash: &Option<Flash>,
    mail_notice: Option<&'static str>,
) -> OtpPage {
    let ttl = state.portal.policy().otp_ttl.whole_minutes();
    let expired = state.clock.now() >= otp.expires_at;
    let notice = flash.as_ref().and_then(|f| f.notice.clone()).or_else(|| {
        expired.then(|| {
            format!("暗証キーの有効期限({ttl}分)が過ぎました。【暗証キー再請求】を押して、新しい暗証キーを受け取ってください。")
        })
    });
    OtpPage {
        layout: Layout::new("暗証キー入力", session.csrf())
            .error(flash_error(flash))
            .notice(notice)
            .invalid(flash_field(flash)),
        mail_notice,
        masked_email: otp.masked_email.clone(),
        page_token: otp.page_token.clone(),
        ttl_minutes: ttl,
        expires: until(otp.expires_at),
    }
}

/// The 暗証キー page. Shown only while its challenge lives: a page that was closed in this
/// browser, or whose challenge a newer login or its lifetime ended, sends the member to
/// the login screen with the reason — never a dead form that looks alive.
pub(crate) async fn otp_page_get(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let data = session.data();
    if data.signed_in.is_some() {
        return Ok(see_other("/home"));
    }
    let Some(otp) = data.otp else {
        return Ok(see_other("/login?reason=otp_missing"));
    };
    if otp.factor.is_some() {
        return Ok(see_other("/login/factor"));
    }
    if otp.closed {
        session.update(|d| d.otp = None);
        return Ok(see_other("/login?reason=otp_closed"));
    }
    // Asks the library whether the challenge is still open (superseded, spent, over).
    let alive = match secret(&otp.challenge) {
        Ok(challenge) => state.portal.heartbeat_otp_screen(&challenge).await,
        Err(e) => Err(e),
    };
    if split(alive)?.is_err() {
        session.update(|d| d.otp = None);
        return Ok(see_other("/login?reason=otp_ended"));
    }
    let flash = session.take_flash("/login/otp");
    let mail = mail_notice(&state, otp.receipt.as_deref()).await;
    let page = otp_page(&state, &session, &otp, &flash, mail.map(|n| n.text));
    Ok(shown(&flash, page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct OtpForm {
    code: String,
    page_token: String,
}

/// Back to the login page after the 暗証キー step ended for good (invalid, exhausted):
/// the member starts again at L1. Redirects (303), carrying the rejection's message in
/// the session, so the address bar shows /login and a reload posts nothing.
fn back_to_login(session: &Session, r: &Rejection) -> Response {
    session.update(|d| d.otp = None);
    back_with_message(session, "/login", ja(r), None, None, Vec::new())
}

pub(crate) async fn otp_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<OtpForm>,
) -> Page {
    let data = session.data();
    if data.signed_in.is_some() {
        return Ok(see_other("/home"));
    }
    let Some(otp) = data.otp else {
        return Ok(see_other("/login?reason=otp_missing"));
    };
    if !tokens_match(&f.page_token, &otp.page_token) {
        // A tab of an older challenge: show the current screen.
        return Ok(see_other("/login/otp"));
    }
    let verified = match (secret(&otp.challenge), secret(f.code.trim())) {
        (Ok(challenge), Ok(code)) => state.portal.verify_otp(&challenge, &code).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match split(verified)? {
        Ok(auth) => {
            // SEC-32: a new session id at authentication; nothing of the pre-auth state
            // (flow handles, the challenge) is carried over. The browser that repeats
            // this very post (it never saw this answer) is let in too.
            let fresh = SessionData {
                signed_in: Some(SignedIn {
                    account: auth.account_id.clone(),
                    stamp: auth.security_stamp.clone(),
                }),
                ..SessionData::default()
            };
            factors::remember(&state, auth);
            session.rotate_with_handover(fresh, otp_proof(&f.page_token, &f.code));
            Ok(see_other("/home"))
        }
        Err(
            r @ (Rejection::OtpIncorrect
            | Rejection::OtpExpired
            | Rejection::OtpReplaced
            | Rejection::InvalidInput(_)
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => Ok(back_to_form(
            &session,
            "/login/otp",
            &r,
            Some("code"),
            Vec::new(),
        )),
        Err(r) => Ok(back_to_login(&session, &r)),
    }
}

pub(crate) async fn otp_resend(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<OtpForm>,
) -> Page {
    let Some(otp) = session.data().otp else {
        return Ok(see_other("/login?reason=otp_missing"));
    };
    if !tokens_match(&f.page_token, &otp.page_token) {
        return Ok(see_other("/login/otp"));
    }
    let resent = match secret(&otp.challenge) {
        Ok(challenge) => state.portal.resend_otp(&challenge).await,
        Err(e) => Err(e),
    };
    match split(resent)? {
        Ok(ch) => {
            session.update(|d| {
                if let Some(o) = d.otp.as_mut() {
                    o.receipt = ch.receipt.map(|r| r.to_hex());
                    o.expires_at = ch.expires_at;
                    o.masked_email = ch.masked_email;
                }
                d.flash = Some(Flash {
                    page: "/login/otp".to_owned(),
                    notice: Some("暗証キーを再送信しました。新しいメールに記載された暗証キーを入力してください(以前の暗証キーは無効になりました)。".to_owned()),
                    ..Flash::default()
                });
            });
            Ok(see_other("/login/otp"))
        }
        Err(r @ Rejection::TooManyRequests { retry_after }) => {
            // A cooldown is said, with the wait, instead of silently sending nothing.
            let message = format!(
                "暗証キーは送信済みです。再請求は{}秒ほど待ってから行ってください。",
                retry_after.whole_seconds().max(1)
            );
            Ok(back_with_message(
                &session,
                "/login/otp",
                Some(message),
                r.retry_after().map(|d| d.whole_seconds().max(1)),
                None,
                Vec::new(),
            ))
        }
        Err(r @ Rejection::Busy) => Ok(back_to_form(&session, "/login/otp", &r, None, Vec::new())),
        Err(r) => Ok(back_to_login(&session, &r)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct BeaconForm {
    page_token: String,
}

/// L3: the page's `pagehide` beacon, sent when the page is really closed (not when it
/// is only hidden or kept in the back-forward cache). The challenge stays in the
/// session, marked closed, so that the page says why when the member comes back.
pub(crate) async fn otp_close(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<BeaconForm>,
) -> Page {
    if let Some(otp) = session.data().otp
        && tokens_match(&f.page_token, &otp.page_token)
    {
        // A challenge that does not parse names no screen: nothing to close.
        if let Ok(challenge) = secret(&otp.challenge) {
            split(state.portal.close_otp_screen(&challenge).await)?.ok();
        }
        session.update(|d| {
            if let Some(o) = d.otp.as_mut() {
                o.closed = true;
            }
        });
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ───────────────────────────── 新規利用登録 ─────────────────────────────

pub(crate) async fn register_page(Extension(session): Extension<Session>) -> Response {
    let flash = session.take_flash("/register");
    shown(
        &flash,
        RegisterPage {
            layout: Layout::new("新規利用登録", session.csrf())
                .step(step::EMAIL)
                .error(flash_error(&flash))
                .invalid(flash_field(&flash)),
            email: flash_value(&flash, "email"),
            sender: super::SENDER,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct EmailForm {
    email: String,
}

pub(crate) async fn register_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    requester: Requester,
    Form(f): Form<EmailForm>,
) -> Page {
    let now = state.clock.now();
    let email_digest = digest(&["email", f.email.trim()]);
    if let Some(sent) = session.data().registration_sent
        && now < sent.at + SAME_TAP
        && sent.email_digest == email_digest
    {
        return Ok(see_other("/register/sent"));
    }
    let portal = state.portal.from_requester(&requester.0);
    match split(portal.start_registration(&f.email).await)? {
        Ok(started) => {
            // The library says *that* the address is a legacy form; the text comes from
            // the parsed address.
            let legacy_warning = if started.legacy_address_warning {
                EmailAddress::parse(&f.email)
                    .ok()
                    .and_then(|e| e.legacy_warning(Lang::Ja))
                    .map(str::to_owned)
            } else {
                None
            };
            session.update(|d| {
                d.registration_sent = Some(super::session::RegistrationSent {
                    email_digest,
                    at: now,
                    carrier_advisory: started.carrier_advisory,
                    legacy_warning,
                    receipt: Some(started.receipt.to_hex()),
                });
            });
            Ok(see_other("/register/sent"))
        }
        Err(r) => Ok(back_to_form(
            &session,
            "/register",
            &r,
            Some("email"),
            vec![("email", f.email)],
        )),
    }
}

/// What to tell the member about a mail that has not simply gone out: still being tried
/// (「送信に時間がかかっています」), or given up. `None` once sent — or when the status
/// cannot be read, in which case the page says what it always said.
#[derive(Clone, Copy)]
pub(crate) struct MailNotice {
    pub(crate) delayed: bool,
    pub(crate) text: &'static str,
}

pub(crate) async fn mail_notice(state: &AppState, receipt: Option<&str>) -> Option<MailNotice> {
    use kenpo_auth::flow::delivery::MailStatus;
    let receipt = receipt?.parse().ok()?;
    match state.portal.mail_status(&receipt).await.ok()?? {
        MailStatus::Sent { .. } => None,
        s @ MailStatus::Sending { .. } => Some(MailNotice {
            delayed: true,
            text: s.message(Lang::Ja),
        }),
        s => Some(MailNotice {
            delayed: false,
            text: s.message(Lang::Ja),
        }),
    }
}

/// 「…メールを送信しました」, after R1 (a GET: a reload sends nothing again).
pub(crate) async fn register_sent(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let Some(sent) = session.data().registration_sent else {
        return see_other("/register");
    };
    let mail = mail_notice(&state, sent.receipt.as_deref()).await;
    RegisterSentPage {
        layout: Layout::new("新規利用登録", session.csrf()).step(step::EMAIL),
        mail_delayed: mail.filter(|n| n.delayed).map(|n| n.text),
        mail_failed: mail.filter(|n| !n.delayed).map(|n| n.text),
        carrier_advisory: sent.carrier_advisory,
        legacy_warning: sent.legacy_warning,
        sender: super::SENDER,
        ttl_hours: state.portal.policy().registration_link_ttl.whole_hours(),
        gap_seconds: state
            .portal
            .policy()
            .mail_min_interval
            .whole_seconds()
            .max(1),
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// A screen that cannot go on: the message, and the way back that fits it.
fn dead_end(session: &Session, title: &'static str, r: &Rejection) -> Response {
    dead_end_to(session, title, r, "/register", "新規利用登録へ")
}

/// A password-reset dead end: back to the recovery page, not to 新規利用登録.
fn reset_dead_end(session: &Session, r: &Rejection) -> Response {
    dead_end_to(
        session,
        "パスワード再設定",
        r,
        "/recovery",
        "ログインID・パスワードを忘れた方へ",
    )
}

fn dead_end_to(
    session: &Session,
    title: &'static str,
    r: &Rejection,
    href: &'static str,
    text: &'static str,
) -> Response {
    let (href, text) = match r {
        Rejection::AlreadyRegistered => ("/login", "ログイン画面へ"),
        _ => (href, text),
    };
    with_status(
        r,
        MessagePage::new(
            Layout::new(title, session.csrf()),
            r.message(Lang::Ja).into_owned(),
        )
        .link(href, text),
    )
}

fn link_status_rejection(status: LinkStatus) -> Option<Rejection> {
    match status {
        LinkStatus::Valid { .. } => None,
        LinkStatus::Used => Some(Rejection::LinkUsed),
        LinkStatus::Expired => Some(Rejection::Expired),
        _ => Some(Rejection::LinkInvalid),
    }
}

/// R2, GET of link 1. With `?token=`: the token moves into the link cookie — not the
/// session: a GET never changes it — and the browser is sent (303) to the same page
/// without it, so it leaves the address bar, the history and any Referer (SEC-39).
/// Without: inspects the link — consuming nothing, since mail scanners follow links —
/// and shows 【本人確認ページへ】 and the 事前登録 form.
pub(crate) async fn link1_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.set_link(LinkKind::Registration, &token);
        return Ok(see_other("/registration/link"));
    }
    let flash = session.take_flash("/registration/link");
    let data = session.data();
    let token = session.link(LinkKind::Registration);
    let opened_here = match &token {
        Some(t) => data.opened_link1 == Some(digest(&["link1", t])),
        None => true,
    };
    if opened_here && data.flow_handle.is_some() {
        // This browser opened it already: both ways on are still open.
        return Ok(shown(&flash, link1_page(&session, None, &flash)));
    }
    let Some(token) = token else {
        return Ok(dead_end(&session, "新規利用登録", &Rejection::LinkInvalid));
    };
    let status = match landing(&token) {
        Some(token) => split(state.portal.inspect_registration_link(&token).await)?,
        None => Ok(LinkStatus::Invalid),
    };
    Ok(match status {
        Ok(LinkStatus::Valid { expires_at }) => shown(
            &flash,
            link1_page(
                &session,
                Some(with_minutes(
                    expires_at,
                    state.portal.policy().registration_link_ttl,
                )),
                &flash,
            ),
        ),
        Ok(other) => {
            let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
            session.clear_link();
            dead_end(&session, "新規利用登録", &r)
        }
        Err(r) => dead_end(&session, "新規利用登録", &r),
    })
}

fn link1_page(session: &Session, expires: Option<String>, flash: &Option<Flash>) -> Link1Page {
    Link1Page {
        layout: Layout::new("新規利用登録", session.csrf())
            .step(step::IDENTITY)
            .error(flash_error(flash))
            .invalid(flash_field(flash)),
        expires,
        login_id: flash_value(flash, "login_id"),
    }
}

/// Opens link 1 (R2 POST) unless this browser already did; returns the flow handle.
async fn open_link1(
    state: &AppState,
    session: &Session,
) -> Result<Result<String, Rejection>, Unavailable> {
    let data = session.data();
    let token = session.link(LinkKind::Registration);
    let opened_here = match &token {
        Some(t) => data.opened_link1 == Some(digest(&["link1", t])),
        None => true,
    };
    if opened_here && let Some(handle) = data.flow_handle {
        return Ok(Ok(handle));
    }
    let Some(token) = token else {
        return Ok(Err(Rejection::LinkInvalid));
    };
    Ok(
        match split(match secret(&token) {
            Ok(t) => state.portal.open_registration_link(&t).await,
            Err(e) => Err(e),
        })? {
            Ok(handle) => {
                let handle = handle.expose_secret().to_owned();
                let kept = handle.clone();
                // A new registration: nothing of an earlier one in this browser is kept.
                session.update(|d| {
                    d.opened_link1 = Some(digest(&["link1", &token]));
                    d.flow_handle = Some(kept);
                    d.preissued = false;
                    d.auth_key = None;
                    d.confirmed_link2 = None;
                    d.registered = false;
                });
                session.clear_link();
                Ok(handle)
            }
            Err(r) => {
                session.clear_link();
                Err(r)
            }
        },
    )
}

/// R2 POST: 【本人確認ページへ】.
pub(crate) async fn link1_open(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    Ok(match open_link1(&state, &session).await? {
        Ok(_) => see_other("/registration/identity"),
        Err(r) => dead_end(&session, "新規利用登録", &r),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct TemporaryForm {
    login_id: String,
    password: String,
}

/// R2': the insurer-issued login ID and 仮パスワード instead of R3–R4.
pub(crate) async fn temporary_sign_in(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<TemporaryForm>,
) -> Page {
    if session.data().preissued && session.data().flow_handle.is_some() {
        // Signed in with the letter already (a double tap): go on.
        return Ok(see_other("/registration/credentials"));
    }
    let handle = match open_link1(&state, &session).await? {
        Ok(h) => h,
        Err(r) => return Ok(dead_end(&session, "新規利用登録", &r)),
    };
    // SEC-22: a password `Password::new` refuses is answered like a wrong one.
    let signed_in = match (secret(&handle), Password::new(f.password)) {
        (Ok(handle), Ok(password)) => {
            state
                .portal
                .sign_in_with_temporary_password(&handle, &f.login_id, &password)
                .await
        }
        (Err(e), _) => Err(e),
        (_, Err(_)) => Err(Rejection::LoginFailed.into()),
    };
    match split(signed_in)? {
        Ok(new_handle) => {
            let h = new_handle.expose_secret().to_owned();
            session.update(|d| {
                d.flow_handle = Some(h);
                d.preissued = true;
            });
            Ok(see_other("/registration/credentials"))
        }
        Err(r @ (Rejection::LoginFailed | Rejection::TooManyRequests { .. } | Rejection::Busy)) => {
            Ok(back_to_form(
                &session,
                "/registration/link",
                &r,
                Some("temp_password"),
                vec![("login_id", f.login_id)],
            ))
        }
        Err(r) => Ok(dead_end(&session, "新規利用登録", &r)),
    }
}

pub(crate) async fn identity_page(Extension(session): Extension<Session>) -> Response {
    let data = session.data();
    if data.flow_handle.is_none() {
        if data.auth_key.is_some() {
            return see_other("/registration/auth-key");
        }
        return dead_end(&session, "本人確認", &Rejection::WrongStep);
    }
    let flash = session.take_flash("/registration/identity");
    shown(
        &flash,
        IdentityPage {
            layout: Layout::new("本人確認", session.csrf())
                .step(step::IDENTITY)
                .error(flash_error(&flash))
                .invalid(flash_field(&flash)),
            card_symbol: flash_value(&flash, "card_symbol"),
            card_number: flash_value(&flash, "card_number"),
            card_branch: flash_value(&flash, "card_branch"),
            birth_date: flash_value(&flash, "birth_date"),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct IdentityForm {
    card_symbol: String,
    card_number: String,
    card_branch: String,
    birth_date: String,
}

/// R3: 記号・番号・枝番 and 生年月日 → the 認証キー, kept in the session for its own page
/// (a GET after a 303: a reload or a double tap shows it again).
pub(crate) async fn identity_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<IdentityForm>,
) -> Page {
    let data = session.data();
    let Some(handle) = data.flow_handle else {
        if data.auth_key.is_some() {
            // Done already (a double tap, a reload of the post): the key's page.
            return Ok(see_other("/registration/auth-key"));
        }
        return Ok(dead_end(&session, "本人確認", &Rejection::WrongStep));
    };
    let typed = card_fields(
        &f.card_symbol,
        &f.card_number,
        &f.card_branch,
        &f.birth_date,
    );
    // The library reads the numbers with the insurer's own format (DOM-8).
    let card = card_text(&f.card_symbol, &f.card_number, &f.card_branch);
    let claim = match split(state.portal.identity_claim(&card, &f.birth_date, None))? {
        Ok(claim) => claim,
        Err(r) => {
            return Ok(back_to_form(
                &session,
                "/registration/identity",
                &r,
                Some("card"),
                typed,
            ));
        }
    };
    let verified = match secret(&handle) {
        Ok(handle) => state.portal.verify_identity(&handle, claim).await,
        Err(e) => Err(e),
    };
    match split(verified)? {
        Ok(shown) => {
            // The next handle comes with link 2 (possibly on another device).
            session.update(|d| {
                d.flow_handle = None;
                d.auth_key = Some(ShownAuthKey {
                    key: shown.auth_key.expose_secret().to_owned(),
                    expires_at: shown.expires_at,
                });
            });
            Ok(see_other("/registration/auth-key"))
        }
        Err(
            r @ (Rejection::IdentityNotConfirmed
            | Rejection::InvalidInput(_)
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => Ok(back_to_form(
            &session,
            "/registration/identity",
            &r,
            Some("card"),
            typed,
        )),
        Err(r) => {
            session.update(|d| d.flow_handle = None);
            Ok(dead_end(&session, "本人確認", &r))
        }
    }
}

/// The 認証キー after R3, for as long as it is good and link 2 was not confirmed in this
/// browser.
pub(crate) async fn auth_key_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let data = session.data();
    let Some(shown) = data.auth_key else {
        if data.flow_handle.is_some() {
            return see_other("/registration/credentials");
        }
        return dead_end(&session, "認証キー表示", &Rejection::WrongStep);
    };
    if state.clock.now() >= shown.expires_at {
        session.update(|d| d.auth_key = None);
        return dead_end(&session, "認証キー表示", &Rejection::Expired);
    }
    AuthKeyPage {
        layout: Layout::new("認証キー表示", session.csrf()).step(step::AUTH_KEY),
        auth_key: shown.key,
        expires: with_minutes(
            shown.expires_at,
            state.portal.policy().verification_link_ttl,
        ),
    }
    .into_response()
}

/// R4, GET of link 2: the same swap-and-redirect as link 1, then the 認証キー form.
pub(crate) async fn link2_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.set_link(LinkKind::Verification, &token);
        return Ok(see_other("/registration/verify"));
    }
    let flash = session.take_flash("/registration/verify");
    let Some(token) = session.link(LinkKind::Verification) else {
        if session.data().confirmed_link2.is_some() && session.data().flow_handle.is_some() {
            return Ok(see_other("/registration/credentials"));
        }
        return Ok(dead_end(&session, "認証キー入力", &Rejection::LinkInvalid));
    };
    Ok(
        match match landing(&token) {
            Some(token) => split(state.portal.inspect_verification_link(&token).await)?,
            None => Ok(LinkStatus::Invalid),
        } {
            Ok(LinkStatus::Valid { expires_at }) => shown(
                &flash,
                VerifyPage {
                    layout: Layout::new("認証キー入力", session.csrf())
                        .step(step::AUTH_KEY)
                        .error(flash_error(&flash))
                        .invalid(flash_field(&flash)),
                    expires: Some(with_minutes(
                        expires_at,
                        state.portal.policy().verification_link_ttl,
                    )),
                },
            ),
            Ok(other) => {
                let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
                session.clear_link();
                dead_end(&session, "認証キー入力", &r)
            }
            Err(r) => dead_end(&session, "認証キー入力", &r),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct AuthKeyForm {
    auth_key: String,
}

/// R4 POST: link 2 with the 認証キー.
pub(crate) async fn link2_confirm(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<AuthKeyForm>,
) -> Page {
    let data = session.data();
    let token = session.link(LinkKind::Verification);
    let confirmed_here = match &token {
        Some(t) => data.confirmed_link2 == Some(digest(&["link2", t])),
        None => data.confirmed_link2.is_some(),
    };
    if confirmed_here && (data.flow_handle.is_some() || data.registered) {
        // Done already (a double tap): where the member is.
        return Ok(see_other(if data.registered {
            "/registration/done"
        } else {
            "/registration/credentials"
        }));
    }
    let Some(token) = token else {
        return Ok(dead_end(&session, "認証キー入力", &Rejection::LinkInvalid));
    };
    let confirmed = match (secret(&token), secret(f.auth_key.trim())) {
        (Ok(t), Ok(key)) => state.portal.confirm_auth_key(&t, &key).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match split(confirmed)? {
        Ok(handle) => {
            let h = handle.expose_secret().to_owned();
            session.update(|d| {
                d.confirmed_link2 = Some(digest(&["link2", &token]));
                d.flow_handle = Some(h);
                d.auth_key = None;
                d.preissued = false;
                d.registered = false;
            });
            session.clear_link();
            Ok(see_other("/registration/credentials"))
        }
        Err(r @ (Rejection::AuthKeyIncorrect | Rejection::Busy)) => Ok(back_to_form(
            &session,
            "/registration/verify",
            &r,
            Some("auth_key"),
            Vec::new(),
        )),
        Err(r) => {
            session.clear_link();
            Ok(dead_end(&session, "認証キー入力", &r))
        }
    }
}

/// The address the account will get, for 利用者情報入力's read-only メールアドレス.
async fn registration_email(state: &AppState, handle: &str) -> Result<Option<String>, Error> {
    let email = match secret(handle) {
        Ok(handle) => state.portal.registration_email(&handle).await,
        Err(e) => Err(e),
    };
    match email {
        Ok(email) => Ok(Some(email.for_sending().to_owned())),
        Err(Error::Rejected(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn credentials_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let data = session.data();
    let Some(handle) = data.flow_handle else {
        if data.registered {
            return Ok(see_other("/registration/done"));
        }
        return Ok(dead_end(&session, "利用者情報入力", &Rejection::WrongStep));
    };
    let Some(email) = split(registration_email(&state, &handle).await)?
        .ok()
        .flatten()
    else {
        return Ok(dead_end(&session, "利用者情報入力", &Rejection::WrongStep));
    };
    let flash = session.take_flash("/registration/credentials");
    let layout = Layout::new("利用者情報入力", session.csrf())
        .step(step::CREDENTIALS)
        .error(flash_error(&flash))
        .invalid(flash_field(&flash));
    let layout = if data.preissued {
        layout.skipped(&[step::IDENTITY, step::AUTH_KEY])
    } else {
        layout
    };
    Ok(shown(
        &flash,
        CredentialsPage {
            layout,
            login_id: flash_value(&flash, "login_id"),
            nickname: flash_value(&flash, "nickname"),
            email,
            id_min: LoginId::MIN_CHARS,
            id_max: LoginId::MAX_CHARS,
            pw_min: state.portal.policy().password.min_chars,
        },
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CredentialsForm {
    login_id: String,
    password: String,
    password_confirmation: String,
    nickname: String,
}

/// R5: 新ログインID, 新パスワード (+確認), ニックネーム → the account.
pub(crate) async fn credentials_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<CredentialsForm>,
) -> Page {
    let data = session.data();
    let Some(handle) = data.flow_handle else {
        if data.registered {
            // Registered already (a double tap, a reload of the post).
            return Ok(see_other("/registration/done"));
        }
        return Ok(dead_end(&session, "利用者情報入力", &Rejection::WrongStep));
    };
    let typed = vec![
        ("login_id", f.login_id.clone()),
        ("nickname", f.nickname.clone()),
    ];
    let passwords = Password::new(f.password)
        .and_then(|p| Password::new(f.password_confirmation).map(|c| (p, c)));
    let (password, password_confirmation) = match passwords {
        Ok(p) => p,
        Err(e) => {
            let message = Some(e.message(Lang::Ja).into_owned());
            return Ok(back_with_message(
                &session,
                "/registration/credentials",
                message,
                None,
                Some("password"),
                typed,
            ));
        }
    };
    let credentials = NewCredentials {
        login_id: f.login_id.clone(),
        password,
        password_confirmation,
        nickname: Some(f.nickname.clone()),
    };
    let completed = match secret(&handle) {
        Ok(handle) => {
            state
                .portal
                .complete_registration(&handle, credentials)
                .await
        }
        Err(e) => Err(e),
    };
    match split(completed)? {
        Ok(_) => {
            session.update(|d| {
                d.flow_handle = None;
                d.registered = true;
            });
            Ok(see_other("/registration/done"))
        }
        Err(
            r @ (Rejection::InvalidInput(_)
            | Rejection::LoginIdTaken
            | Rejection::LoginIdIdentifying
            | Rejection::PasswordConfirmationMismatch
            | Rejection::PasswordSameAsTemporary
            | Rejection::Busy),
        ) => {
            let field = match r {
                Rejection::LoginIdTaken | Rejection::LoginIdIdentifying => "login_id",
                _ => "password",
            };
            Ok(back_to_form(
                &session,
                "/registration/credentials",
                &r,
                Some(field),
                typed,
            ))
        }
        Err(r) => {
            session.update(|d| d.flow_handle = None);
            Ok(dead_end(&session, "利用者情報入力", &r))
        }
    }
}

pub(crate) async fn registration_done(Extension(session): Extension<Session>) -> Response {
    let layout = Layout::new("登録完了", session.csrf()).step(step::DONE);
    let layout = if session.data().preissued {
        layout.skipped(&[step::IDENTITY, step::AUTH_KEY])
    } else {
        layout
    };
    DonePage { layout }.into_response()
}

// ───────────────────────── ログインID・パスワードを忘れた方 ─────────────────────────

pub(crate) async fn recovery_page(Extension(session): Extension<Session>) -> Response {
    let flash = session.take_flash("/recovery");
    shown(
        &flash,
        RecoveryPage {
            layout: Layout::new("ログインID・パスワードを忘れた方", session.csrf())
                .error(flash_error(&flash))
                .invalid(flash_field(&flash)),
            email: flash_value(&flash, "email"),
            card_symbol: flash_value(&flash, "card_symbol"),
            card_number: flash_value(&flash, "card_number"),
            card_branch: flash_value(&flash, "card_branch"),
            birth_date: flash_value(&flash, "birth_date"),
            login_id: flash_value(&flash, "login_id"),
        },
    )
}

/// The one answer of both recovery forms (SEC-37, SEC-40): the same page whatever
/// matched, on a GET after a 303.
fn recovery_sent(state: &AppState, session: &Session, answer: RecoveryRequested) -> Response {
    // The cooldown is said on every answer, matched or not: it tells nothing about the
    // address, and a second request within it sends nothing (the library answers alike).
    let gap = state
        .portal
        .policy()
        .mail_min_interval
        .whole_seconds()
        .max(1);
    session.flash(Flash {
        page: "/recovery/sent".to_owned(),
        notice: Some(format!(
            "{} しばらく経ってもメールが届かない場合は、入力内容をご確認のうえ、もう一度お試しください。\n\
             ※同じメールアドレスへのご案内は{gap}秒に1回までです。続けてお申し込みいただいても、{gap}秒以内の2通目はお送りしません。",
            answer.message(Lang::Ja)
        )),
        ..Flash::default()
    });
    see_other("/recovery/sent")
}

pub(crate) async fn recovery_sent_page(Extension(session): Extension<Session>) -> Response {
    let Some(message) = session.take_flash("/recovery/sent").and_then(|f| f.notice) else {
        return see_other("/recovery");
    };
    MessagePage::new(
        Layout::new("ログインID・パスワードを忘れた方", session.csrf()),
        message,
    )
    .link("/login", "ログイン画面へ")
    .into_response()
}

/// 記号・番号・枝番 and 生年月日 from a form; `Ok(Ok(None))` when both are empty, the
/// rejection to show when they cannot be read.
fn identity_claim(
    state: &AppState,
    card: &str,
    birth: &str,
) -> Result<Result<Option<IdentityClaim>, Rejection>, Unavailable> {
    if card.trim().is_empty() && birth.trim().is_empty() {
        return Ok(Ok(None));
    }
    Ok(split(state.portal.identity_claim(card, birth, None))?.map(Some))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ForgotIdForm {
    email: String,
    card_symbol: String,
    card_number: String,
    card_branch: String,
    birth_date: String,
}

/// ログインIDを忘れた方: the ID goes to the registered address only, never on screen.
pub(crate) async fn forgot_login_id(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    requester: Requester,
    Form(f): Form<ForgotIdForm>,
) -> Page {
    let mut typed = card_fields(
        &f.card_symbol,
        &f.card_number,
        &f.card_branch,
        &f.birth_date,
    );
    typed.push(("email", f.email.clone()));
    let card = card_text(&f.card_symbol, &f.card_number, &f.card_branch);
    let claim = match identity_claim(&state, &card, &f.birth_date)? {
        Ok(c) => c,
        Err(r) => return Ok(back_to_form(&session, "/recovery", &r, Some("card"), typed)),
    };
    match split(
        state
            .portal
            .from_requester(&requester.0)
            .request_login_id_reminder(&f.email, claim)
            .await,
    )? {
        Ok(answer) => Ok(recovery_sent(&state, &session, answer)),
        Err(r) => Ok(back_to_form(
            &session,
            "/recovery",
            &r,
            Some("email"),
            typed,
        )),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ForgotPasswordForm {
    login_id: String,
}

/// パスワードを忘れた方: a reset link to the registered address, same answer always.
pub(crate) async fn forgot_password(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    requester: Requester,
    Form(f): Form<ForgotPasswordForm>,
) -> Page {
    let portal = state.portal.from_requester(&requester.0);
    match split(portal.request_password_reset(&f.login_id).await)? {
        Ok(answer) => Ok(recovery_sent(&state, &session, answer)),
        Err(r) => Ok(back_to_form(
            &session,
            "/recovery",
            &r,
            Some("rpw_login_id"),
            vec![("login_id", f.login_id)],
        )),
    }
}

fn reset_form(
    state: &AppState,
    session: &Session,
    expires: Option<String>,
    flash: &Option<Flash>,
) -> Response {
    shown(
        flash,
        ResetPage {
            layout: Layout::new("パスワード再設定", session.csrf())
                .error(flash_error(flash))
                .invalid(flash_field(flash)),
            expires,
            ask_identity: state.portal.policy().recovery_requires_identity,
            pw_min: state.portal.policy().password.min_chars,
            card_symbol: flash_value(flash, "card_symbol"),
            card_number: flash_value(flash, "card_number"),
            card_branch: flash_value(flash, "card_branch"),
            birth_date: flash_value(flash, "birth_date"),
        },
    )
}

/// GET of the reset link: the same swap-and-redirect as the registration links
/// (SEC-39), then the form (the link is not consumed by looking at it).
pub(crate) async fn reset_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.set_link(LinkKind::Reset, &token);
        return Ok(see_other("/password-reset/link"));
    }
    let flash = session.take_flash("/password-reset/link");
    let data = session.data();
    let token = session.link(LinkKind::Reset);
    let opened_here = match &token {
        Some(t) => data.opened_reset == Some(digest(&["reset", t])),
        None => true,
    };
    if opened_here && data.reset_handle.is_some() {
        return Ok(reset_form(&state, &session, None, &flash));
    }
    let Some(token) = token else {
        if data.reset_done {
            return Ok(see_other("/password-reset/done"));
        }
        return Ok(reset_dead_end(&session, &Rejection::LinkInvalid));
    };
    Ok(
        match match landing(&token) {
            Some(token) => split(state.portal.inspect_password_reset_link(&token).await)?,
            None => Ok(LinkStatus::Invalid),
        } {
            Ok(LinkStatus::Valid { expires_at }) => reset_form(
                &state,
                &session,
                Some(with_minutes(
                    expires_at,
                    state.portal.policy().password_reset_link_ttl,
                )),
                &flash,
            ),
            Ok(other) => {
                let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
                session.clear_link();
                reset_dead_end(&session, &r)
            }
            Err(r) => reset_dead_end(&session, &r),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ResetForm {
    card_symbol: String,
    card_number: String,
    card_branch: String,
    birth_date: String,
    password: String,
    password_confirmation: String,
}

/// POST of the reset form: opens the link on first use (consuming it, binding the
/// reset to this browser), then checks the roster attributes and sets the password.
/// The member is not logged in afterwards (SEC-38).
pub(crate) async fn reset_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<ResetForm>,
) -> Page {
    let data = session.data();
    let token = session.link(LinkKind::Reset);
    let opened_here = match &token {
        Some(t) => data.opened_reset == Some(digest(&["reset", t])),
        None => true,
    };
    let handle = match (opened_here.then_some(data.reset_handle).flatten(), token) {
        (Some(h), _) => h,
        (None, Some(token)) if !opened_here => match split(match secret(&token) {
            Ok(t) => state.portal.open_password_reset_link(&t).await,
            Err(e) => Err(e),
        })? {
            Ok(h) => {
                let h = h.expose_secret().to_owned();
                let kept = h.clone();
                session.update(|d| {
                    d.opened_reset = Some(digest(&["reset", &token]));
                    d.reset_handle = Some(kept);
                    d.reset_done = false;
                });
                session.clear_link();
                h
            }
            Err(r) => {
                session.clear_link();
                return Ok(reset_dead_end(&session, &r));
            }
        },
        _ => {
            if data.reset_done {
                // Done already (a double tap, a reload of the post).
                return Ok(see_other("/password-reset/done"));
            }
            return Ok(reset_dead_end(&session, &Rejection::LinkInvalid));
        }
    };
    let typed = card_fields(
        &f.card_symbol,
        &f.card_number,
        &f.card_branch,
        &f.birth_date,
    );
    let card = card_text(&f.card_symbol, &f.card_number, &f.card_branch);
    let claim = match identity_claim(&state, &card, &f.birth_date)? {
        Ok(c) => c,
        Err(r) => {
            return Ok(back_to_form(
                &session,
                "/password-reset/link",
                &r,
                Some("card"),
                typed,
            ));
        }
    };
    let passwords = Password::new(f.password)
        .and_then(|p| Password::new(f.password_confirmation).map(|c| (p, c)));
    let (password, confirmation) = match passwords {
        Ok(p) => p,
        Err(e) => {
            let message = Some(e.message(Lang::Ja).into_owned());
            return Ok(back_with_message(
                &session,
                "/password-reset/link",
                message,
                None,
                Some("password"),
                typed,
            ));
        }
    };
    let reset = match secret(&handle) {
        Ok(handle) => {
            state
                .portal
                .complete_password_reset(&handle, claim, password, confirmation)
                .await
        }
        Err(e) => Err(e),
    };
    match split(reset)? {
        Ok(()) => {
            session.update(|d| {
                d.reset_handle = None;
                d.reset_done = true;
            });
            Ok(see_other("/password-reset/done"))
        }
        Err(
            r @ (Rejection::IdentityNotConfirmed
            | Rejection::InvalidInput(_)
            | Rejection::PasswordConfirmationMismatch
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => {
            let field = match r {
                Rejection::IdentityNotConfirmed => "card",
                _ => "password",
            };
            Ok(back_to_form(
                &session,
                "/password-reset/link",
                &r,
                Some(field),
                typed,
            ))
        }
        Err(r) => {
            session.update(|d| d.reset_handle = None);
            Ok(reset_dead_end(&session, &r))
        }
    }
}

/// パスワード再設定完了, on a GET.
pub(crate) async fn reset_done(Extension(session): Extension<Session>) -> Response {
    if !session.data().reset_done {
        return see_other("/recovery");
    }
    MessagePage::new(
        Layout::new("パスワード再設定完了", session.csrf()),
        "パスワードを再設定しました。新しいパスワードでログインしてください(ログイン時には暗証キーをお送りします)。",
    )
    .link("/login", "ログイン画面へ")
    .into_response()
}

// ───────────────────────────── ログイン後 ─────────────────────────────

/// The member's home, with the SAMPLE notices. Checks the security stamp on every
/// request (SEC-34): a password, address or login-ID change elsewhere ends this session.
pub(crate) async fn home(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let Some(signed_in) = session.data().signed_in else {
        return Ok(if session.timed_out() {
            see_other("/login?reason=timeout")
        } else {
            see_other("/login?reason=login_required")
        });
    };
    let current = split(
        state
            .portal
            .check_security_stamp(&signed_in.account, &signed_in.stamp)
            .await,
    )?
    .unwrap_or(false);
    if !current {
        session.destroy();
        return Ok(see_other("/login?reason=signed_out"));
    }
    let account = split(
        state
            .store
            .find_account(AccountLookup::Id(signed_in.account.clone()))
            .await
            .map_err(Error::from),
    )?
    .ok()
    .flatten();
    let Some(account) = account else {
        session.destroy();
        return Ok(see_other("/login?reason=signed_out"));
    };
    let member = split(
        kenpo_auth::ports::MemberDirectory::get(&*state.roster, &account.value.member)
            .await
            .map_err(Error::from),
    )?
    .ok()
    .flatten();
    let display = state.roster.display(&account.value.member);
    let name = account
        .value
        .nickname
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .or_else(|| display.map(|d| d.name.clone()))
        .unwrap_or_else(|| "加入者".to_owned());
    let qualification = member
        .as_ref()
        .map(|m| notices::qualification(super::INSURER_NAME, m, display))
        .unwrap_or_default();
    let rows = notices::medical_expenses();
    let (total, own_total) = notices::totals(&rows);
    Ok(HomePage {
        layout: Layout::new("マイページ", session.csrf()).signed_in(),
        greeting: format!("{name}さん、ようこそ。"),
        qualification,
        rows: rows.iter().map(MedicalRowView::from).collect(),
        total,
        own_total,
    }
    .into_response())
}

/// ログアウト: the session is destroyed on the server and the cookie cleared (SEC-34).
pub(crate) async fn logout(Extension(session): Extension<Session>) -> Response {
    session.destroy();
    see_other("/login?reason=logged_out")
}

// ───────────────────────────── development ─────────────────────────────

/// DEVELOPMENT ONLY: `/dev/mailbox`, every mail since the start, decoded, the portal's
/// own links clickable, and the demo's 事前登録 letter. The route exists only with the
/// dev flag on a loopback address; this also refuses a client that is not loopback.
pub(crate) async fn dev_mailbox(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    req: axum::extract::Request,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let (Some(mailbox), Some(peer)) = (&state.dev_mailbox, peer) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !peer.ip().is_loopback() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = format!("{}/", state.base_url);
    let mails = mailbox
        .mails()
        .into_iter()
        .map(|m| pages::MailView {
            at: m.at,
            to: m.to,
            subject: m.subject,
            lines: m
                .body
                .lines()
                .map(|l| pages::MailLineView {
                    text: l.to_owned(),
                    link: l.trim().starts_with(&base).then(|| l.trim().to_owned()),
                })
                .collect(),
        })
        .collect();
    pages::MailboxPage {
        layout: Layout::new("開発用メールボックス", session.csrf()),
        letters: mailbox.letters(),
        mails,
    }
    .into_response()
}

// ───────────────────────────── static files ─────────────────────────────

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", include_str!("static/portal.css"))
}

pub(crate) async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("static/portal.js"),
    )
}

pub(crate) async fn favicon() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// 404. Takes the request itself: unknown `/static/` paths come without a session.
pub(crate) async fn not_found(req: axum::extract::Request) -> Response {
    let csrf = req
        .extensions()
        .get::<Session>()
        .map(Session::csrf)
        .unwrap_or_default();
    (
        StatusCode::NOT_FOUND,
        MessagePage::new(
            Layout::new("ページが見つかりません", csrf),
            "お探しのページは見つかりませんでした。",
        )
        .link("/login", "ログイン画面へ"),
    )
        .into_response()
}
