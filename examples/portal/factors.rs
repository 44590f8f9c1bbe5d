//! 2段階認証 screens: the login's 認証アプリ / パスキー / リカバリーコード screen, and
//! 2段階認証の設定 (passkeys, the authenticator app with its QR code, recovery codes).
//!
//! The library decides everything; these handlers only map its answers to pages. The
//! changes need a login of the last minutes (SEC-36): the demo keeps each member's
//! latest `Authenticated` in memory ([`AppState::fresh_logins`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::Extension;
use axum::Json;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use kenpo_auth::Rejection;
use kenpo_auth::flow::SecondStep;
use kenpo_auth::model::FactorKind;
use kenpo_auth::portal::{Authenticated, OtpChallenge};
use kenpo_auth::ports::AccountId;
use serde::Deserialize;
use serde_json::json;

use super::super::AppState;
use super::super::pages::{Layout, until};
use super::super::session::{FactorScreen, Session, SessionData, SignedIn, digest, tokens_match};
use super::{Page, back_to_form, back_to_login, secret, see_other, shown, split};

/// The 2段階認証 screen a login leads to, or `None` for the 暗証キー screen.
pub(crate) fn screen_of(ch: &OtpChallenge) -> Option<FactorScreen> {
    match ch.second_step {
        SecondStep::AuthenticatorApp {
            totp,
            recovery_codes,
            ..
        } => Some(FactorScreen {
            totp,
            recovery: recovery_codes,
            passkey_options: passkey_options(ch),
        }),
        _ => None,
    }
}

#[cfg(feature = "passkeys")]
fn passkey_options(ch: &OtpChallenge) -> Option<String> {
    ch.passkey_options
        .as_ref()
        .and_then(|o| serde_json::to_string(o).ok())
}

#[cfg(not(feature = "passkeys"))]
fn passkey_options(_: &OtpChallenge) -> Option<String> {
    None
}

/// Keeps the member's latest login for the changes that need a fresh one.
pub(crate) fn remember(state: &AppState, auth: Authenticated) {
    if let Ok(mut map) = state.fresh_logins.lock() {
        map.insert(auth.account_id.as_str().to_owned(), auth);
    }
}

/// The member's latest login, taken out while a step uses it.
fn take_fresh(state: &AppState, account: &AccountId) -> Option<Authenticated> {
    state.fresh_logins.lock().ok()?.remove(account.as_str())
}

fn put_back(state: &AppState, auth: Authenticated) {
    remember(state, auth);
}

/// How a settings step answers when it cannot go on: with the settings page (the forms)
/// or with JSON (the passkey script).
#[derive(Clone, Copy)]
enum Answer {
    Page,
    Json,
}

impl Answer {
    fn refused(self, session: &Session, r: &Rejection) -> Response {
        match self {
            Answer::Page => back_to_settings(session, r),
            Answer::Json => Json(json!({ "error": r.code() })).into_response(),
        }
    }
}

/// Runs `step` with the signed-in member's fresh login (2段階認証 changes need one,
/// SEC-36) and keeps the login for the next step. `Err(page)`: what to answer instead —
/// the login page, or (as `answer` says) the refusal of the step or of a stale login.
async fn with_fresh_login<T>(
    state: &AppState,
    session: &Session,
    answer: Answer,
    step: impl AsyncFnOnce(&Authenticated) -> Result<T, kenpo_auth::Error>,
) -> Result<Result<T, Response>, super::Unavailable> {
    let who = match member(state, session).await? {
        Ok(who) => who,
        Err(_) if matches!(answer, Answer::Json) => {
            return Ok(Err(
                Json(json!({ "error": "login_required" })).into_response()
            ));
        }
        Err(redirect) => return Ok(Err(redirect)),
    };
    let Some(auth) = take_fresh(state, &who.account) else {
        return Ok(Err(
            answer.refused(session, &Rejection::ReauthenticationRequired)
        ));
    };
    let done = step(&auth).await;
    put_back(state, auth);
    Ok(split(done)?.map_err(|r| answer.refused(session, &r)))
}

#[derive(Template, WebTemplate)]
#[template(path = "factor.html", config = "examples/portal/askama.toml")]
pub(crate) struct FactorPage {
    layout: Layout,
    page_token: String,
    totp: bool,
    recovery: bool,
    passkey_options: Option<String>,
}

/// 2段階認証 (after the password): the 確認コード, 「パスキーでログイン」 and
/// 「リカバリーコードを使う」.
pub(crate) async fn factor_page(
    State(_state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let data = session.data();
    if data.signed_in.is_some() {
        return Ok(see_other("/home"));
    }
    let Some(otp) = data.otp else {
        return Ok(see_other("/login?reason=otp_missing"));
    };
    let Some(factor) = otp.factor else {
        return Ok(see_other("/login/otp"));
    };
    let flash = session.take_flash("/login/factor");
    let page = FactorPage {
        layout: Layout::new("2段階認証", session.csrf())
            .error(flash.as_ref().and_then(|f| f.error.clone()))
            .notice(flash.as_ref().and_then(|f| f.notice.clone())),
        page_token: otp.page_token,
        totp: factor.totp,
        recovery: factor.recovery,
        passkey_options: factor.passkey_options,
    };
    Ok(shown(&flash, page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct FactorForm {
    code: String,
    kind: String,
    page_token: String,
}

/// Signs the member in after a second factor: a new session (SEC-32), the login kept for
/// the next minutes' changes.
fn signed_in(state: &AppState, session: &Session, auth: Authenticated, proof: [u8; 32]) {
    let fresh = SessionData {
        signed_in: Some(SignedIn {
            account: auth.account_id.clone(),
            stamp: auth.security_stamp.clone(),
        }),
        ..SessionData::default()
    };
    remember(state, auth);
    session.rotate_with_handover(fresh, proof);
}

/// 確認コード or リカバリーコード.
pub(crate) async fn factor_submit(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<FactorForm>,
) -> Page {
    let data = session.data();
    if data.signed_in.is_some() {
        return Ok(see_other("/home"));
    }
    let Some(otp) = data.otp else {
        return Ok(see_other("/login?reason=otp_missing"));
    };
    if !tokens_match(&f.page_token, &otp.page_token) {
        return Ok(see_other("/login/factor"));
    }
    let verified = match secret(&otp.challenge) {
        Ok(challenge) if f.kind == "recovery" => match secret(f.code.trim()) {
            Ok(code) => state.portal.use_recovery_code(&challenge, &code).await,
            Err(e) => Err(e),
        },
        Ok(challenge) => match secret(f.code.trim()) {
            Ok(code) => state.portal.verify_totp(&challenge, &code).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match split(verified)? {
        Ok(auth) => {
            signed_in(
                &state,
                &session,
                auth,
                digest(&["factor", &f.page_token, f.code.trim()]),
            );
            Ok(see_other("/home"))
        }
        Err(
            r @ (Rejection::SecondFactorIncorrect
            | Rejection::InvalidInput(_)
            | Rejection::Busy
            | Rejection::TooManyRequests { .. }),
        ) => Ok(back_to_form(
            &session,
            "/login/factor",
            &r,
            Some("code"),
            Vec::new(),
        )),
        Err(r) => Ok(back_to_login(&session, &r)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PasskeyForm {
    credential: String,
    page_token: String,
}

/// 「パスキーでログイン」: the page's script posts `navigator.credentials.get`'s answer
/// and follows the JSON's `redirect`.
pub(crate) async fn factor_passkey(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<PasskeyForm>,
) -> Page {
    let Some(otp) = session.data().otp else {
        return Ok(Json(json!({ "redirect": "/login?reason=otp_missing" })).into_response());
    };
    if !tokens_match(&f.page_token, &otp.page_token) {
        return Ok(Json(json!({ "redirect": "/login/factor" })).into_response());
    }
    let verified = verify_passkey(&state, &otp.challenge, &f.credential).await;
    match split(verified)? {
        Ok(auth) => {
            signed_in(
                &state,
                &session,
                auth,
                digest(&["passkey", &f.page_token, &f.credential]),
            );
            Ok(Json(json!({ "redirect": "/home" })).into_response())
        }
        Err(Rejection::SecondFactorIncorrect | Rejection::InvalidInput(_)) => {
            Ok(Json(json!({ "error": "passkey" })).into_response())
        }
        Err(r) => {
            let _ = back_to_login(&session, &r);
            Ok(Json(json!({ "redirect": "/login" })).into_response())
        }
    }
}

#[cfg(feature = "passkeys")]
async fn verify_passkey(
    state: &AppState,
    challenge: &str,
    credential: &str,
) -> Result<Authenticated, kenpo_auth::Error> {
    let challenge = secret(challenge)?;
    let credential: webauthn_rs::prelude::PublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| Rejection::SecondFactorIncorrect)?;
    state.portal.verify_passkey(&challenge, &credential).await
}

#[cfg(not(feature = "passkeys"))]
async fn verify_passkey(
    _: &AppState,
    _: &str,
    _: &str,
) -> Result<Authenticated, kenpo_auth::Error> {
    Err(Rejection::FactorUnavailable.into())
}

// ── 2段階認証の設定 ─────────────────────────────────────────────────────────────────

/// The signed-in member whose stamp is current, or the redirect to the login.
async fn member(
    state: &AppState,
    session: &Session,
) -> Result<Result<SignedIn, Response>, super::Unavailable> {
    let Some(signed_in) = session.data().signed_in else {
        return Ok(Err(see_other("/login?reason=login_required")));
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
        return Ok(Err(see_other("/login?reason=signed_out")));
    }
    Ok(Ok(signed_in))
}

#[derive(Template, WebTemplate)]
#[template(path = "settings_2fa.html", config = "examples/portal/askama.toml")]
pub(crate) struct SettingsPage {
    layout: Layout,
    factors: Vec<String>,
    has_totp: bool,
    fresh: bool,
    reauth_minutes: i64,
}

/// 2段階認証の設定.
pub(crate) async fn settings(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Page {
    let who = match member(&state, &session).await? {
        Ok(who) => who,
        Err(redirect) => return Ok(redirect),
    };
    let list = split(state.portal.list_factors(&who.account).await)?.unwrap_or_default();
    let factors = list
        .iter()
        .map(|f| {
            let used = f
                .last_used_at
                .map_or("未使用".to_owned(), |t| format!("最終利用 {}", until(t)));
            match f.kind {
                FactorKind::Passkey => format!(
                    "パスキー「{}」(登録 {}、{used})",
                    f.name.clone().unwrap_or_default(),
                    until(f.added_at)
                ),
                FactorKind::Totp => format!("認証アプリ(設定 {}、{used})", until(f.added_at)),
                _ => format!(
                    "リカバリーコード(残り{}個、発行 {})",
                    f.remaining.unwrap_or(0),
                    until(f.added_at)
                ),
            }
        })
        .collect();
    let has_totp = list.iter().any(|f| f.kind == FactorKind::Totp);
    let window = state.portal.policy().reauth_window;
    let fresh = state
        .fresh_logins
        .lock()
        .ok()
        .and_then(|m| m.get(who.account.as_str()).map(|a| a.authenticated_at))
        .is_some_and(|at| state.clock.now() - at <= window);
    let flash = session.take_flash("/settings/2fa");
    let page = SettingsPage {
        layout: Layout::new("2段階認証の設定", session.csrf())
            .signed_in()
            .error(flash.as_ref().and_then(|f| f.error.clone()))
            .notice(flash.as_ref().and_then(|f| f.notice.clone())),
        factors,
        has_totp,
        fresh,
        reauth_minutes: window.whole_minutes(),
    };
    Ok(shown(&flash, page))
}

/// Back to 2段階認証の設定 with the rejection's message.
fn back_to_settings(session: &Session, r: &Rejection) -> Response {
    back_to_form(session, "/settings/2fa", r, None, Vec::new())
}

#[derive(Template, WebTemplate)]
#[template(path = "totp_setup.html", config = "examples/portal/askama.toml")]
pub(crate) struct TotpSetupPage {
    layout: Layout,
    qr_svg: String,
    secret: String,
    expires: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Empty {}

/// 認証アプリを設定: the QR code and the code form.
pub(crate) async fn totp_start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(_): Form<Empty>,
) -> Page {
    let started = with_fresh_login(&state, &session, Answer::Page, async |auth| {
        state.portal.start_totp_setup(auth).await
    });
    let setup = match started.await? {
        Ok(setup) => setup,
        Err(page) => return Ok(page),
    };
    session.update(|d| d.factor_setup = Some(setup.handle.expose_secret().to_owned()));
    let page = TotpSetupPage {
        layout: Layout::new("認証アプリの設定", session.csrf()).signed_in(),
        qr_svg: setup.qr_svg().unwrap_or_default(),
        secret: setup.secret_base32().to_owned(),
        expires: until(setup.expires_at),
    };
    Ok(page.into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "recovery_codes.html", config = "examples/portal/askama.toml")]
pub(crate) struct RecoveryCodesPage {
    layout: Layout,
    heading: &'static str,
    codes: Vec<String>,
}

fn recovery_page(session: &Session, heading: &'static str, codes: Vec<String>) -> Response {
    RecoveryCodesPage {
        layout: Layout::new("リカバリーコード", session.csrf()).signed_in(),
        heading,
        codes,
    }
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CodeForm {
    code: String,
}

/// 認証アプリの設定 → 【設定する】: the first 確認コード.
pub(crate) async fn totp_confirm(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<CodeForm>,
) -> Page {
    let Some(handle) = session.data().factor_setup else {
        return Ok(back_to_settings(&session, &Rejection::FactorSetupInvalid));
    };
    let confirmed = with_fresh_login(&state, &session, Answer::Page, async |auth| {
        let handle = secret(&handle)?;
        let code = secret(f.code.trim())?;
        state.portal.confirm_totp_setup(auth, &handle, &code).await
    });
    let enrolled = match confirmed.await? {
        Ok(enrolled) => enrolled,
        Err(page) => return Ok(page),
    };
    session.update(|d| d.factor_setup = None);
    let codes = enrolled
        .recovery_codes
        .iter()
        .map(|c| c.expose_secret().to_string())
        .collect();
    Ok(recovery_page(&session, "認証アプリを設定しました。", codes))
}

/// 認証アプリの設定を解除.
pub(crate) async fn totp_remove(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(_): Form<Empty>,
) -> Page {
    let removed = with_fresh_login(&state, &session, Answer::Page, async |auth| {
        state.portal.remove_factor(auth, FactorKind::Totp).await
    });
    Ok(match removed.await? {
        Ok(()) => see_other("/settings/2fa"),
        Err(page) => page,
    })
}

/// リカバリーコードを再発行.
pub(crate) async fn recovery_regenerate(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(_): Form<Empty>,
) -> Page {
    let codes = with_fresh_login(&state, &session, Answer::Page, async |auth| {
        state.portal.regenerate_recovery_codes(auth).await
    });
    Ok(match codes.await? {
        Ok(codes) => recovery_page(
            &session,
            "リカバリーコードを再発行しました。",
            codes
                .iter()
                .map(|c| c.expose_secret().to_string())
                .collect(),
        ),
        Err(page) => page,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PasskeyStartForm {
    name: String,
}

/// パスキーを登録, step 1 (the page's script): the options for
/// `navigator.credentials.create`, as JSON.
pub(crate) async fn passkey_start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<PasskeyStartForm>,
) -> Page {
    let started = with_fresh_login(&state, &session, Answer::Json, async |auth| {
        start_passkey(&state, auth, &f.name).await
    });
    Ok(match started.await? {
        Ok((handle, options)) => {
            session.update(|d| d.factor_setup = Some(handle));
            Json(json!({ "options": options })).into_response()
        }
        Err(answer) => answer,
    })
}

#[cfg(feature = "passkeys")]
async fn start_passkey(
    state: &AppState,
    auth: &Authenticated,
    name: &str,
) -> Result<(String, serde_json::Value), kenpo_auth::Error> {
    let name = name.parse()?;
    let r = state.portal.start_passkey_registration(auth, &name).await?;
    let options = serde_json::to_value(&r.options).unwrap_or_default();
    Ok((r.handle.expose_secret().to_owned(), options))
}

#[cfg(not(feature = "passkeys"))]
async fn start_passkey(
    _: &AppState,
    _: &Authenticated,
    _: &str,
) -> Result<(String, serde_json::Value), kenpo_auth::Error> {
    Err(Rejection::FactorUnavailable.into())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PasskeyFinishForm {
    credential: String,
}

/// パスキーを登録, step 2 (the page's script): `navigator.credentials.create`'s answer;
/// answers the リカバリーコード to show once, as JSON.
pub(crate) async fn passkey_finish(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<PasskeyFinishForm>,
) -> Page {
    let Some(handle) = session.data().factor_setup else {
        return Ok(Json(json!({ "error": "factor.setup_invalid" })).into_response());
    };
    let finished = with_fresh_login(&state, &session, Answer::Json, async |auth| {
        finish_passkey(&state, auth, &handle, &f.credential).await
    });
    Ok(match finished.await? {
        Ok(codes) => {
            session.update(|d| d.factor_setup = None);
            Json(json!({ "ok": true, "recovery_codes": codes })).into_response()
        }
        Err(answer) => answer,
    })
}

#[cfg(feature = "passkeys")]
async fn finish_passkey(
    state: &AppState,
    auth: &Authenticated,
    handle: &str,
    credential: &str,
) -> Result<Vec<String>, kenpo_auth::Error> {
    let handle = secret(handle)?;
    let credential: webauthn_rs::prelude::RegisterPublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| Rejection::SecondFactorIncorrect)?;
    let added = state
        .portal
        .finish_passkey_registration(auth, &handle, &credential)
        .await?;
    Ok(added
        .recovery_codes
        .iter()
        .map(|c| c.expose_secret().to_string())
        .collect())
}

#[cfg(not(feature = "passkeys"))]
async fn finish_passkey(
    _: &AppState,
    _: &Authenticated,
    _: &str,
    _: &str,
) -> Result<Vec<String>, kenpo_auth::Error> {
    Err(Rejection::FactorUnavailable.into())
}

// ── パスキーだけでログイン ──────────────────────────────────────────────────────────

/// 「パスキーでログイン」 on the login screen, step 1 (the page's script): options for
/// `navigator.credentials.get`, as JSON; the challenge stays in this session.
pub(crate) async fn passkey_login_start(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(_): Form<Empty>,
) -> Page {
    match split(start_passkey_login(&state).await)? {
        Ok((challenge, options)) => {
            session.update(|d| d.passkey_login = Some(challenge));
            Ok(Json(json!({ "options": options })).into_response())
        }
        Err(r) => Ok(Json(json!({ "error": r.code() })).into_response()),
    }
}

#[cfg(feature = "passkeys")]
async fn start_passkey_login(
    state: &AppState,
) -> Result<(String, serde_json::Value), kenpo_auth::Error> {
    let started = state.portal.start_passkey_login().await?;
    let options = serde_json::to_value(&started.options).unwrap_or_default();
    Ok((started.challenge.expose_secret().to_owned(), options))
}

#[cfg(not(feature = "passkeys"))]
async fn start_passkey_login(
    _: &AppState,
) -> Result<(String, serde_json::Value), kenpo_auth::Error> {
    Err(Rejection::FactorUnavailable.into())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct PasskeyOnlyForm {
    credential: String,
}

/// 「パスキーでログイン」, step 2: the assertion; signs the member in.
pub(crate) async fn passkey_login_finish(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<PasskeyOnlyForm>,
) -> Page {
    let Some(challenge) = session.data().passkey_login else {
        return Ok(Json(json!({ "error": "otp.invalid" })).into_response());
    };
    match split(finish_passkey_login(&state, &challenge, &f.credential).await)? {
        Ok(auth) => {
            signed_in(
                &state,
                &session,
                auth,
                digest(&["passkey-only", &challenge, &f.credential]),
            );
            Ok(Json(json!({ "redirect": "/home" })).into_response())
        }
        Err(r) => Ok(Json(json!({ "error": r.code() })).into_response()),
    }
}

#[cfg(feature = "passkeys")]
async fn finish_passkey_login(
    state: &AppState,
    challenge: &str,
    credential: &str,
) -> Result<Authenticated, kenpo_auth::Error> {
    let challenge = secret(challenge)?;
    let credential: webauthn_rs::prelude::PublicKeyCredential =
        serde_json::from_str(credential).map_err(|_| Rejection::SecondFactorIncorrect)?;
    state
        .portal
        .finish_passkey_login(&challenge, &credential)
        .await
}

#[cfg(not(feature = "passkeys"))]
async fn finish_passkey_login(
    _: &AppState,
    _: &str,
    _: &str,
) -> Result<Authenticated, kenpo_auth::Error> {
    Err(Rejection::FactorUnavailable.into())
}
