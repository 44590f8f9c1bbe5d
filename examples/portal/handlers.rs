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
use kenpo_auth::flow::{IdentityClaim, LinkStatus};
use kenpo_auth::portal::{NewCredentials, RecoveryRequested};
use kenpo_auth::ports::AccountLookup;
use kenpo_auth::{Error, Lang, Rejection};
use serde::Deserialize;

use super::AppState;
use super::notices;
use super::pages::{
    self, AuthKeyPage, CredentialsPage, DonePage, HomePage, IdentityPage, Layout, Link1Page,
    LoginPage, MedicalRowView, MessagePage, OtpPage, RecoveryPage, RegisterPage, RegisterSentPage,
    ResetPage, VerifyPage, step, until,
};
use super::security::Requester;
use super::session::{OtpScreen, Session, SessionData, SignedIn, tokens_match};

/// A host failure, already logged: answered with the generic 503 page.
pub(crate) struct Unavailable;

impl IntoResponse for Unavailable {
    fn into_response(self) -> Response {
        pages::unavailable()
    }
}

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

/// Tokens and handles are 43 characters; anything much longer is not ours and is not
/// kept in a session.
const MAX_TOKEN_CHARS: usize = 128;

fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
            "暗証キー入力画面が閉じられたか、有効期限が切れたため、暗証キーは無効になりました。お手数ですが再度ログインしてください。"
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
    Extension(session): Extension<Session>,
    Query(q): Query<ReasonQuery>,
) -> Response {
    if session.data().signed_in.is_some() {
        return see_other("/home");
    }
    let notice = if session.timed_out() {
        reason_text(Some("timeout"))
    } else {
        reason_text(q.reason.as_deref())
    };
    let mut flash = None;
    session.update(|d| flash = d.flash_error.take());
    LoginPage {
        layout: Layout::new("ログイン", session.csrf())
            .notice(notice)
            .error(flash),
        login_id: String::new(),
    }
    .into_response()
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
                });
            });
            Ok(see_other("/login/otp"))
        }
        Err(r) => Ok(with_status(
            &r,
            LoginPage {
                layout: Layout::new("ログイン", session.csrf()).error(ja(&r)),
                login_id: f.login_id,
            },
        )),
    }
}

// ───────────────────────────── 暗証キー入力 ─────────────────────────────

fn otp_page(
    state: &AppState,
    session: &Session,
    otp: &OtpScreen,
    error: Option<String>,
    notice: Option<String>,
) -> OtpPage {
    OtpPage {
        layout: Layout::new("暗証キー入力", session.csrf())
            .error(error)
            .notice(notice),
        masked_email: otp.masked_email.clone(),
        page_token: otp.page_token.clone(),
        heartbeat_ms: state.heartbeat_every.whole_milliseconds() as i64,
        ttl_minutes: state.portal.policy().otp_ttl.whole_minutes(),
        expires: until(otp.expires_at),
    }
}

pub(crate) async fn otp_page_get(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    match session.data().otp {
        Some(otp) => otp_page(&state, &session, &otp, None, None).into_response(),
        None => see_other("/login?reason=otp_closed"),
    }
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
    let message = ja(r);
    session.update(|d| {
        d.otp = None;
        d.flash_error = message;
    });
    see_other("/login")
}

pub(crate) async fn otp_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<OtpForm>,
) -> Page {
    let Some(otp) = session.data().otp else {
        return Ok(see_other("/login?reason=otp_closed"));
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
            // (flow handles, the challenge) is carried over.
            let fresh = SessionData {
                signed_in: Some(SignedIn {
                    account: auth.account_id,
                    stamp: auth.security_stamp,
                }),
                ..SessionData::default()
            };
            if !session.rotate(fresh) {
                return Err(Unavailable);
            }
            Ok(see_other("/home"))
        }
        Err(
            r @ (Rejection::OtpIncorrect
            | Rejection::OtpExpired
            | Rejection::OtpReplaced
            | Rejection::InvalidInput(_)
            | Rejection::Busy),
        ) => Ok(otp_page(&state, &session, &otp, ja(&r), None).into_response()),
        Err(r @ Rejection::TooManyRequests { .. }) => Ok(with_status(
            &r,
            otp_page(&state, &session, &otp, ja(&r), None),
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
        return Ok(see_other("/login?reason=otp_closed"));
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
            let mut updated = otp.clone();
            updated.expires_at = ch.expires_at;
            updated.masked_email = ch.masked_email;
            let shown = updated.clone();
            session.update(|d| d.otp = Some(updated));
            Ok(otp_page(
                &state,
                &session,
                &shown,
                None,
                Some("暗証キーを再送信しました。新しいメールに記載された暗証キーを入力してください(以前の暗証キーは無効になりました)。".to_owned()),
            )
            .into_response())
        }
        Err(r @ (Rejection::TooManyRequests { .. } | Rejection::Busy)) => Ok(with_status(
            &r,
            otp_page(&state, &session, &otp, ja(&r), None),
        )),
        Err(r) => Ok(back_to_login(&session, &r)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct BeaconForm {
    page_token: String,
}

/// L3: the page's `pagehide` beacon. The challenge stays in the session so that a code
/// typed later is refused by the library itself (「この暗証キーは無効になりました」).
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
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// L3 with the heartbeat policy: 204 while the screen is alive, 410 once its challenge
/// is over (the page then sends the member to the login screen).
pub(crate) async fn otp_heartbeat(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<BeaconForm>,
) -> Page {
    let Some(otp) = session.data().otp else {
        return Ok(StatusCode::GONE.into_response());
    };
    if !tokens_match(&f.page_token, &otp.page_token) {
        return Ok(StatusCode::GONE.into_response());
    }
    let alive = match secret(&otp.challenge) {
        Ok(challenge) => state.portal.heartbeat_otp_screen(&challenge).await,
        Err(e) => Err(e),
    };
    match split(alive)? {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(_) => Ok(StatusCode::GONE.into_response()),
    }
}

// ───────────────────────────── 新規利用登録 ─────────────────────────────

pub(crate) async fn register_page(Extension(session): Extension<Session>) -> Response {
    RegisterPage {
        layout: Layout::new("新規利用登録", session.csrf()).step(step::EMAIL),
        email: String::new(),
        sender: super::SENDER,
    }
    .into_response()
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
            Ok(RegisterSentPage {
                layout: Layout::new("新規利用登録", session.csrf()).step(step::EMAIL),
                carrier_advisory: started.carrier_advisory,
                legacy_warning,
                sender: super::SENDER,
                ttl_hours: state.portal.policy().registration_link_ttl.whole_hours(),
            }
            .into_response())
        }
        Err(r) => Ok(with_status(
            &r,
            RegisterPage {
                layout: Layout::new("新規利用登録", session.csrf())
                    .step(step::EMAIL)
                    .error(ja(&r)),
                email: f.email,
                sender: super::SENDER,
            },
        )),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// A registration screen that cannot go on: the message, and the way back.
fn dead_end(session: &Session, title: &'static str, r: &Rejection) -> Response {
    let (href, text) = match r {
        Rejection::AlreadyRegistered => ("/login", "ログイン画面へ"),
        _ => ("/register", "新規利用登録へ"),
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

/// R2, GET of link 1. With `?token=`: the token moves into the session and the browser
/// is sent (303) to the same page without it, so it leaves the address bar, the history
/// and any Referer (SEC-39). Without: inspects the link — consuming nothing, since mail
/// scanners follow links — and shows 【本人確認ページへ】 and the 事前登録 form.
pub(crate) async fn link1_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.update(|d| {
            d.registration_link = (token.len() <= MAX_TOKEN_CHARS).then_some(token);
            d.flow_handle = None;
        });
        return Ok(see_other("/registration/link"));
    }
    let data = session.data();
    let Some(token) = data.registration_link else {
        if data.flow_handle.is_some() {
            return Ok(see_other("/registration/identity"));
        }
        return Ok(dead_end(&session, "新規利用登録", &Rejection::LinkInvalid));
    };
    let status = match landing(&token) {
        Some(token) => split(state.portal.inspect_registration_link(&token).await)?,
        None => Ok(LinkStatus::Invalid),
    };
    Ok(match status {
        Ok(LinkStatus::Valid { expires_at }) => Link1Page {
            layout: Layout::new("新規利用登録", session.csrf()).step(step::IDENTITY),
            expires: Some(until(expires_at)),
            login_id: String::new(),
        }
        .into_response(),
        Ok(other) => {
            let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
            session.update(|d| d.registration_link = None);
            dead_end(&session, "新規利用登録", &r)
        }
        Err(r) => dead_end(&session, "新規利用登録", &r),
    })
}

/// Opens link 1 (R2 POST) unless this browser already did; returns the flow handle.
async fn open_link1(
    state: &AppState,
    session: &Session,
) -> Result<Result<String, Rejection>, Unavailable> {
    let data = session.data();
    if let Some(handle) = data.flow_handle {
        return Ok(Ok(handle));
    }
    let Some(token) = data.registration_link else {
        return Ok(Err(Rejection::LinkInvalid));
    };
    Ok(
        match split(match secret(&token) {
            Ok(token) => state.portal.open_registration_link(&token).await,
            Err(e) => Err(e),
        })? {
            Ok(handle) => {
                let handle = handle.expose_secret().to_owned();
                let kept = handle.clone();
                session.update(|d| {
                    d.registration_link = None;
                    d.flow_handle = Some(kept);
                });
                Ok(handle)
            }
            Err(r) => {
                session.update(|d| d.registration_link = None);
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
            session.update(|d| d.flow_handle = Some(h));
            Ok(see_other("/registration/credentials"))
        }
        Err(r @ (Rejection::LoginFailed | Rejection::TooManyRequests { .. } | Rejection::Busy)) => {
            Ok(with_status(
                &r,
                Link1Page {
                    layout: Layout::new("新規利用登録", session.csrf())
                        .step(step::IDENTITY)
                        .error(ja(&r)),
                    expires: None,
                    login_id: f.login_id,
                },
            ))
        }
        Err(r) => Ok(dead_end(&session, "新規利用登録", &r)),
    }
}

fn identity_form(session: &Session, error: Option<String>) -> IdentityPage {
    IdentityPage {
        layout: Layout::new("本人確認", session.csrf())
            .step(step::IDENTITY)
            .error(error),
    }
}

pub(crate) async fn identity_page(Extension(session): Extension<Session>) -> Response {
    if session.data().flow_handle.is_none() {
        return dead_end(&session, "本人確認", &Rejection::WrongStep);
    }
    identity_form(&session, None).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct IdentityForm {
    card_number: String,
    birth_date: String,
}

/// R3: 記号-番号-枝番 and 生年月日 → the 認証キー, shown once on this response (it is
/// never stored in the session).
pub(crate) async fn identity_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<IdentityForm>,
) -> Page {
    let Some(handle) = session.data().flow_handle else {
        return Ok(dead_end(&session, "本人確認", &Rejection::WrongStep));
    };
    // The library reads the numbers with the insurer's own format (DOM-8).
    let claim = match split(
        state
            .portal
            .identity_claim(&f.card_number, &f.birth_date, None),
    )? {
        Ok(claim) => claim,
        Err(r) => return Ok(identity_form(&session, ja(&r)).into_response()),
    };
    let verified = match secret(&handle) {
        Ok(handle) => state.portal.verify_identity(&handle, claim).await,
        Err(e) => Err(e),
    };
    match split(verified)? {
        Ok(shown) => {
            // The next handle comes with link 2 (possibly on another device).
            session.update(|d| d.flow_handle = None);
            Ok(AuthKeyPage {
                layout: Layout::new("認証キー表示", session.csrf()).step(step::IDENTITY),
                auth_key: shown.auth_key.expose_secret().to_owned(),
                expires: until(shown.expires_at),
            }
            .into_response())
        }
        Err(
            r @ (Rejection::IdentityNotConfirmed
            | Rejection::InvalidInput(_)
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => Ok(with_status(&r, identity_form(&session, ja(&r)))),
        Err(r) => {
            session.update(|d| d.flow_handle = None);
            Ok(dead_end(&session, "本人確認", &r))
        }
    }
}

/// R4, GET of link 2: the same swap-and-redirect as link 1, then the 認証キー form.
pub(crate) async fn link2_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.update(|d| {
            d.verification_link = (token.len() <= MAX_TOKEN_CHARS).then_some(token);
        });
        return Ok(see_other("/registration/verify"));
    }
    let Some(token) = session.data().verification_link else {
        return Ok(dead_end(&session, "認証キー入力", &Rejection::LinkInvalid));
    };
    Ok(
        match match landing(&token) {
            Some(token) => split(state.portal.inspect_verification_link(&token).await)?,
            None => Ok(LinkStatus::Invalid),
        } {
            Ok(LinkStatus::Valid { expires_at }) => VerifyPage {
                layout: Layout::new("認証キー入力", session.csrf()).step(step::AUTH_KEY),
                expires: Some(until(expires_at)),
            }
            .into_response(),
            Ok(other) => {
                let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
                session.update(|d| d.verification_link = None);
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
    let Some(token) = session.data().verification_link else {
        return Ok(dead_end(&session, "認証キー入力", &Rejection::LinkInvalid));
    };
    let confirmed = match (secret(&token), secret(f.auth_key.trim())) {
        (Ok(token), Ok(key)) => state.portal.confirm_auth_key(&token, &key).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match split(confirmed)? {
        Ok(handle) => {
            let h = handle.expose_secret().to_owned();
            session.update(|d| {
                d.verification_link = None;
                d.flow_handle = Some(h);
            });
            Ok(see_other("/registration/credentials"))
        }
        Err(r @ (Rejection::AuthKeyIncorrect | Rejection::Busy)) => Ok(VerifyPage {
            layout: Layout::new("認証キー入力", session.csrf())
                .step(step::AUTH_KEY)
                .error(ja(&r)),
            expires: None,
        }
        .into_response()),
        Err(r) => {
            session.update(|d| d.verification_link = None);
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

async fn credentials_form(
    state: &AppState,
    session: &Session,
    handle: &str,
    error: Option<String>,
    login_id: String,
    nickname: String,
) -> Page {
    let Some(email) = split(registration_email(state, handle).await)?
        .ok()
        .flatten()
    else {
        return Ok(dead_end(session, "利用者情報入力", &Rejection::WrongStep));
    };
    Ok(CredentialsPage {
        layout: Layout::new("利用者情報入力", session.csrf())
            .step(step::CREDENTIALS)
            .error(error),
        login_id,
        nickname,
        email,
        id_min: LoginId::MIN_CHARS,
        id_max: LoginId::MAX_CHARS,
        pw_min: state.portal.policy().password.min_chars,
    }
    .into_response())
}

pub(crate) async fn credentials_page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let Some(handle) = session.data().flow_handle else {
        return Ok(dead_end(&session, "利用者情報入力", &Rejection::WrongStep));
    };
    credentials_form(
        &state,
        &session,
        &handle,
        None,
        String::new(),
        String::new(),
    )
    .await
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
    let Some(handle) = session.data().flow_handle else {
        return Ok(dead_end(&session, "利用者情報入力", &Rejection::WrongStep));
    };
    let passwords = Password::new(f.password)
        .and_then(|p| Password::new(f.password_confirmation).map(|c| (p, c)));
    let (password, password_confirmation) = match passwords {
        Ok(p) => p,
        Err(e) => {
            let msg = Some(e.message(Lang::Ja).into_owned());
            return credentials_form(&state, &session, &handle, msg, f.login_id, f.nickname).await;
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
            session.update(|d| d.flow_handle = None);
            Ok(see_other("/registration/done"))
        }
        Err(
            r @ (Rejection::InvalidInput(_)
            | Rejection::LoginIdTaken
            | Rejection::LoginIdIdentifying
            | Rejection::PasswordConfirmationMismatch
            | Rejection::PasswordSameAsTemporary
            | Rejection::Busy),
        ) => credentials_form(&state, &session, &handle, ja(&r), f.login_id, f.nickname).await,
        Err(r) => {
            session.update(|d| d.flow_handle = None);
            Ok(dead_end(&session, "利用者情報入力", &r))
        }
    }
}

pub(crate) async fn registration_done(Extension(session): Extension<Session>) -> Response {
    DonePage {
        layout: Layout::new("登録完了", session.csrf()).step(step::DONE),
    }
    .into_response()
}

// ───────────────────────── ログインID・パスワードを忘れた方 ─────────────────────────

pub(crate) async fn recovery_page(Extension(session): Extension<Session>) -> Response {
    RecoveryPage {
        layout: Layout::new("ログインID・パスワードを忘れた方", session.csrf()),
    }
    .into_response()
}

fn recovery_form_error(session: &Session, message: String) -> Response {
    RecoveryPage {
        layout: Layout::new("ログインID・パスワードを忘れた方", session.csrf())
            .error(Some(message)),
    }
    .into_response()
}

/// The one answer of both recovery forms (SEC-37, SEC-40): the same page whatever
/// matched.
fn recovery_sent(session: &Session, answer: RecoveryRequested) -> Response {
    MessagePage::new(
        Layout::new("ログインID・パスワードを忘れた方", session.csrf()),
        format!(
            "{} しばらく経ってもメールが届かない場合は、入力内容をご確認のうえ、もう一度お試しください。",
            answer.message(Lang::Ja)
        ),
    )
    .link("/login", "ログイン画面へ")
    .into_response()
}

/// 記号・番号・枝番 and 生年月日 from a form; `Ok(Ok(None))` when both are empty, the
/// field error to show when they cannot be read.
fn identity_claim(
    state: &AppState,
    card: &str,
    birth: &str,
) -> Result<Result<Option<IdentityClaim>, String>, Unavailable> {
    if card.trim().is_empty() && birth.trim().is_empty() {
        return Ok(Ok(None));
    }
    Ok(split(state.portal.identity_claim(card, birth, None))?
        .map(Some)
        .map_err(|r| r.message(Lang::Ja).into_owned()))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ForgotIdForm {
    email: String,
    card_number: String,
    birth_date: String,
}

/// ログインIDを忘れた方: the ID goes to the registered address only, never on screen.
pub(crate) async fn forgot_login_id(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    requester: Requester,
    Form(f): Form<ForgotIdForm>,
) -> Page {
    let claim = match identity_claim(&state, &f.card_number, &f.birth_date)? {
        Ok(c) => c,
        Err(message) => return Ok(recovery_form_error(&session, message)),
    };
    match split(
        state
            .portal
            .from_requester(&requester.0)
            .request_login_id_reminder(&f.email, claim)
            .await,
    )? {
        Ok(answer) => Ok(recovery_sent(&session, answer)),
        Err(r) => Ok(with_status(
            &r,
            RecoveryPage {
                layout: Layout::new("ログインID・パスワードを忘れた方", session.csrf())
                    .error(ja(&r)),
            },
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
        Ok(answer) => Ok(recovery_sent(&session, answer)),
        Err(r) => Ok(with_status(
            &r,
            RecoveryPage {
                layout: Layout::new("ログインID・パスワードを忘れた方", session.csrf())
                    .error(ja(&r)),
            },
        )),
    }
}

fn reset_form(
    state: &AppState,
    session: &Session,
    expires: Option<String>,
    error: Option<String>,
) -> ResetPage {
    ResetPage {
        layout: Layout::new("パスワード再設定", session.csrf()).error(error),
        expires,
        ask_identity: state.portal.policy().recovery_requires_identity,
        pw_min: state.portal.policy().password.min_chars,
    }
}

/// GET of the reset link: the same swap-and-redirect as the registration links
/// (SEC-39), then the form (the link is not consumed by looking at it).
pub(crate) async fn reset_landing(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<TokenQuery>,
) -> Page {
    if let Some(token) = q.token {
        session.update(|d| {
            d.reset_link = (token.len() <= MAX_TOKEN_CHARS).then_some(token);
            d.reset_handle = None;
        });
        return Ok(see_other("/password-reset/link"));
    }
    let data = session.data();
    if data.reset_handle.is_some() {
        return Ok(reset_form(&state, &session, None, None).into_response());
    }
    let Some(token) = data.reset_link else {
        return Ok(dead_end(
            &session,
            "パスワード再設定",
            &Rejection::LinkInvalid,
        ));
    };
    Ok(
        match match landing(&token) {
            Some(token) => split(state.portal.inspect_password_reset_link(&token).await)?,
            None => Ok(LinkStatus::Invalid),
        } {
            Ok(LinkStatus::Valid { expires_at }) => {
                reset_form(&state, &session, Some(until(expires_at)), None).into_response()
            }
            Ok(other) => {
                let r = link_status_rejection(other).unwrap_or(Rejection::LinkInvalid);
                session.update(|d| d.reset_link = None);
                dead_end(&session, "パスワード再設定", &r)
            }
            Err(r) => dead_end(&session, "パスワード再設定", &r),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ResetForm {
    card_number: String,
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
    let handle = match (data.reset_handle, data.reset_link) {
        (Some(h), _) => h,
        (None, Some(token)) => match split(match secret(&token) {
            Ok(token) => state.portal.open_password_reset_link(&token).await,
            Err(e) => Err(e),
        })? {
            Ok(h) => {
                let h = h.expose_secret().to_owned();
                let kept = h.clone();
                session.update(|d| {
                    d.reset_link = None;
                    d.reset_handle = Some(kept);
                });
                h
            }
            Err(r) => {
                session.update(|d| d.reset_link = None);
                return Ok(dead_end(&session, "パスワード再設定", &r));
            }
        },
        (None, None) => {
            return Ok(dead_end(
                &session,
                "パスワード再設定",
                &Rejection::LinkInvalid,
            ));
        }
    };
    let claim = match identity_claim(&state, &f.card_number, &f.birth_date)? {
        Ok(c) => c,
        Err(message) => {
            return Ok(reset_form(&state, &session, None, Some(message)).into_response());
        }
    };
    let passwords = Password::new(f.password)
        .and_then(|p| Password::new(f.password_confirmation).map(|c| (p, c)));
    let (password, confirmation) = match passwords {
        Ok(p) => p,
        Err(e) => {
            let message = Some(e.message(Lang::Ja).into_owned());
            return Ok(reset_form(&state, &session, None, message).into_response());
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
            session.update(|d| d.reset_handle = None);
            Ok(MessagePage::new(
                Layout::new("パスワード再設定完了", session.csrf()),
                "パスワードを再設定しました。新しいパスワードでログインしてください(ログイン時には暗証キーをお送りします)。",
            )
            .link("/login", "ログイン画面へ")
            .into_response())
        }
        Err(
            r @ (Rejection::IdentityNotConfirmed
            | Rejection::InvalidInput(_)
            | Rejection::PasswordConfirmationMismatch
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => Ok(with_status(&r, reset_form(&state, &session, None, ja(&r)))),
        Err(r) => {
            session.update(|d| d.reset_handle = None);
            Ok(dead_end(&session, "パスワード再設定", &r))
        }
    }
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
