//! The same `Portal` behind a second framework: a small JSON API on actix-web 4 for the
//! login with the e-mailed 暗証キー (L1–L4). It shows that nothing in kenpo-auth is tied
//! to axum — each framework maps the same outcomes and rejections to its own responses.
//!
//! ```text
//! cargo run --example actix_api
//! curl -s -X POST localhost:8081/login -H 'content-type: application/json' \
//!      -d '{"login_id":"sakura-demo","password":"hanami-Bento-7"}'
//! # → {"challenge":"…","expires_at":"…","masked_email":"d***@example.jp"}
//! curl -s -X POST localhost:8081/otp -H 'content-type: application/json' \
//!      -d '{"challenge":"…","code":"123456"}'
//! ```
//!
//! | route             | body                       | answer                                   |
//! |-------------------|----------------------------|------------------------------------------|
//! | `POST /login`     | `login_id`, `password`     | 200 challenge (the 暗証キー was mailed)   |
//! | `POST /otp`       | `challenge`, `code`        | 200 `authenticated` with the account ID  |
//! | `POST /otp/resend`| `challenge`                | 200 new challenge expiry (old code dead) |
//! | `POST /otp/close` | `challenge`                | 204 (the code screen was closed)         |
//!
//! With the `passkeys` feature, the パスキー ceremonies (WebAuthn JSON as the browser's
//! `navigator.credentials` gives and takes it; the ceremony state stays in the library's
//! store):
//!
//! | route                            | body                              | answer                                  |
//! |----------------------------------|-----------------------------------|-----------------------------------------|
//! | `POST /passkeys/register/start`  | `session`, `name`                 | 200 `handle`, `options` (for `create`)  |
//! | `POST /passkeys/register/finish` | `session`, `handle`, `credential` | 200 `credential_id`, `recovery_codes`   |
//! | `POST /passkey`                  | `challenge`, `credential`         | 200 `authenticated` (password + passkey)|
//!
//! `/login` answers `second_step` (`emailed_code`, or `second_factor` for a member with a
//! passkey, when `passkey_options` holds the options for `navigator.credentials.get`).
//! `session` is what `/otp` and `/passkey` answer: registering a passkey needs a login of
//! the last five minutes (SEC-36), which this example keeps server-side under that
//! random token.
//!
//! Refusals are `{"error": code, "message": Japanese text}` with 401 (login or code
//! wrong), 410 (the challenge is over: log in again), 429 (`Retry-After`), 400 (bad
//! input); host failures are 503 with a generic message.
//!
//! Everything is in memory: `MemoryStore`, a one-member roster, and a `RecordingMailer`;
//! a demo account is registered at start-up through the regular registration journey.
//! DEV-ONLY: the example prints each 暗証キー on stderr so you can try it — SEC-39 forbids
//! that in production. This API returns no session token: a real one would start its own
//! session (new ID, SEC-32) where this returns `authenticated`.

use std::error::Error;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use kenpo_auth::domain::{BirthDate, CardNumber, Password};
use kenpo_auth::flow::IdentityClaim;
use kenpo_auth::flow::SecondStep;
use kenpo_auth::mail::{MailMessage, OutgoingMail, RecordingMailer};
use kenpo_auth::portal::{Authenticated, NewCredentials, OtpChallenge};
use kenpo_auth::ports::{MailError, Mailer, MemberId, MemberRecord, Relation};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::MemoryDirectory;
use kenpo_auth::token::{OtpChallengeId, OtpCode};
use kenpo_auth::{InsurerProfile, Lang, Policy, Portal, Rejection};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

/// The demo account's login ID.
pub const DEMO_LOGIN_ID: &str = "sakura-demo";
/// The demo account's password (the seed portal's 8-character minimum applies).
pub const DEMO_PASSWORD: &str = "hanami-Bento-7";
/// The demo account's address (fictional).
pub const DEMO_EMAIL: &str = "demo.member@example.jp";

/// Prints each 暗証キー on stderr (DEV-ONLY) and records every mail.
struct DevEcho(RecordingMailer);

#[async_trait]
impl Mailer for DevEcho {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.0.send(mail).await?;
        if let MailMessage::LoginOtp { code, .. } = &mail.message {
            eprintln!(
                "[DEV-ONLY mail] 暗証キー for {}: {}",
                mail.to.masked(),
                code.expose_secret()
            );
        }
        Ok(())
    }
}

/// A portal over memory with one demo account, registered through R1–R5 with the links
/// and the 認証キー read from the typed mails. `echo` adds the DEV-ONLY console echo.
pub async fn demo_portal(
    mailer: RecordingMailer,
    echo: bool,
) -> Result<Portal, Box<dyn Error + Send + Sync>> {
    let roster = MemoryDirectory::new();
    roster.insert(MemberRecord::new(
        MemberId::new("SAKURA-0001"),
        CardNumber::parse("999-123456-00")?,
        BirthDate::parse("1985-04-12")?,
        None,
        Relation::Insured,
        true,
    ));
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    let shared: Arc<dyn Mailer> = if echo {
        Arc::new(DevEcho(mailer.clone()))
    } else {
        Arc::new(mailer.clone())
    };
    let portal = Portal::builder()
        .store(MemoryStore::new())
        .shared_mailer(shared)
        .directory(roster)
        .policy(Policy::seed_portal())
        .insurer(InsurerProfile::new(
            "さくら健康保険組合",
            "さくらけんぽWeb",
            "no-reply@sakura-kenpo.example.jp",
            "さくら健康保険組合 適用グループ 03-0000-0000",
            // A domain, not an IP address: a WebAuthn relying party needs one.
            "http://localhost:8081",
        ))
        .secret_key(1, key)
        .build()?;

    // The library has no call to create an active account directly (provisioning gives
    // a temporary password), so the demo account walks the registration journey.
    let last = |m: &RecordingMailer| m.sent().pop().map(|m| m.message);
    portal.start_registration(DEMO_EMAIL).await?;
    let Some(MailMessage::RegistrationLink(link1)) = last(&mailer) else {
        return Err("link 1 was not mailed".into());
    };
    let handle = portal.open_registration_link(&link1.token).await?;
    let claim = IdentityClaim {
        card_number: CardNumber::parse("999-123456-00")?,
        birth_date: BirthDate::parse("1985-04-12")?,
        kana_name: None,
    };
    let shown = portal.verify_identity(&handle, claim).await?;
    let Some(MailMessage::IdentityVerified(link2)) = last(&mailer) else {
        return Err("link 2 was not mailed".into());
    };
    let handle = portal
        .confirm_auth_key(&link2.token, &shown.auth_key)
        .await?;
    portal
        .complete_registration(
            &handle,
            NewCredentials {
                login_id: DEMO_LOGIN_ID.to_owned(),
                password: Password::new(DEMO_PASSWORD)?,
                password_confirmation: Password::new(DEMO_PASSWORD)?,
                nickname: None,
            },
        )
        .await?;
    Ok(portal)
}

/// `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    /// ログインID.
    pub login_id: String,
    /// パスワード.
    pub password: String,
}

/// `POST /otp`.
#[derive(Debug, Deserialize)]
pub struct OtpRequest {
    /// The challenge from `/login`.
    pub challenge: String,
    /// The 暗証キー from the mail.
    pub code: String,
}

/// `POST /otp/resend` and `POST /otp/close`.
#[derive(Debug, Deserialize)]
pub struct ChallengeRequest {
    /// The challenge from `/login`.
    pub challenge: String,
}

/// The answer to `/login` and `/otp/resend`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// Keep it for `/otp`, `/otp/resend`, `/otp/close`.
    pub challenge: String,
    /// When the current 暗証キー stops working (RFC 3339).
    pub expires_at: String,
    /// Where the 暗証キー went (empty when nothing was mailed).
    pub masked_email: String,
    /// `emailed_code` (暗証キー入力) or `second_factor` (認証アプリ / パスキー).
    #[serde(default)]
    pub second_step: String,
    /// For a パスキー: the options of `navigator.credentials.get`.
    #[serde(default)]
    pub passkey_options: Option<serde_json::Value>,
}

/// The answer to a good `/otp`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuthenticatedResponse {
    /// Always true.
    pub authenticated: bool,
    /// Who logged in.
    pub account_id: String,
    /// A token for the next five minutes' account changes (passkey registration).
    #[serde(default)]
    pub session: String,
}

/// Logins of the last minutes, by a random token: what account changes need (SEC-36).
/// DEV-ONLY: a real host keeps this in its session store, next to its session.
type FreshLogins = std::sync::Mutex<std::collections::HashMap<String, Authenticated>>;

fn fresh_logins() -> &'static FreshLogins {
    static LOGINS: std::sync::OnceLock<FreshLogins> = std::sync::OnceLock::new();
    LOGINS.get_or_init(Default::default)
}

/// Keeps `auth` under a new random token and answers it.
fn authenticated(auth: Authenticated) -> HttpResponse {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let session: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let account_id = auth.account_id.as_str().to_owned();
    if let Ok(mut map) = fresh_logins().lock() {
        map.insert(session.clone(), auth);
    }
    HttpResponse::Ok().json(AuthenticatedResponse {
        authenticated: true,
        account_id,
        session,
    })
}

/// A refusal.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The rejection's stable code (`login.failed`, `otp.incorrect` …).
    pub error: String,
    /// What to show the member, in Japanese.
    pub message: String,
}

fn challenge_json(c: OtpChallenge) -> ChallengeResponse {
    ChallengeResponse {
        challenge: c.challenge.expose_secret().to_owned(),
        expires_at: c.expires_at.format(&Rfc3339).unwrap_or_default(),
        second_step: match c.second_step {
            SecondStep::EmailedCode => "emailed_code",
            _ => "second_factor",
        }
        .to_owned(),
        passkey_options: passkey_options(&c),
        masked_email: c.masked_email,
    }
}

#[cfg(feature = "passkeys")]
fn passkey_options(c: &OtpChallenge) -> Option<serde_json::Value> {
    c.passkey_options
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok())
}

#[cfg(not(feature = "passkeys"))]
fn passkey_options(_: &OtpChallenge) -> Option<serde_json::Value> {
    None
}

/// Maps a portal error to the API's answer: rejections with their code, status and
/// Japanese message; host failures to 503 (logged, never shown).
fn refusal(e: kenpo_auth::Error) -> HttpResponse {
    let Some(r) = e.rejection() else {
        eprintln!("host failure: {e}");
        return HttpResponse::ServiceUnavailable().json(ErrorResponse {
            error: "unavailable".to_owned(),
            message: "ただいまサービスを利用できません。しばらくしてから再度お試しください。"
                .to_owned(),
        });
    };
    let status = match r {
        Rejection::LoginFailed | Rejection::OtpIncorrect | Rejection::SecondFactorIncorrect => {
            StatusCode::UNAUTHORIZED
        }
        Rejection::ReauthenticationRequired => StatusCode::FORBIDDEN,
        Rejection::OtpInvalid | Rejection::OtpAttemptsExhausted | Rejection::Expired => {
            StatusCode::GONE
        }
        Rejection::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Rejection::Busy => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut resp = HttpResponse::build(status).json(ErrorResponse {
        error: r.code().to_owned(),
        message: r.message(Lang::Ja).into_owned(),
    });
    if let Some(wait) = r.retry_after()
        && let Ok(v) = HeaderValue::from_str(&wait.whole_seconds().max(1).to_string())
    {
        resp.headers_mut().insert(RETRY_AFTER, v);
    }
    resp
}

async fn login(portal: web::Data<Portal>, body: web::Json<LoginRequest>) -> HttpResponse {
    // SEC-22: a password `Password::new` refuses is answered like any failed login.
    let started = match Password::new(body.password.as_str()) {
        Ok(password) => portal.start_login(&body.login_id, &password).await,
        Err(_) => Err(Rejection::LoginFailed.into()),
    };
    match started {
        Ok(c) => HttpResponse::Ok().json(challenge_json(c)),
        Err(e) => refusal(e),
    }
}

async fn otp(portal: web::Data<Portal>, body: web::Json<OtpRequest>) -> HttpResponse {
    // A malformed challenge or code is the step's own rejection (the `FromStr` error).
    let verified = match (
        body.challenge.parse::<OtpChallengeId>(),
        body.code.trim().parse::<OtpCode>(),
    ) {
        (Ok(challenge), Ok(code)) => portal.verify_otp(&challenge, &code).await,
        (Err(r), _) | (_, Err(r)) => Err(r.into()),
    };
    match verified {
        Ok(auth) => authenticated(auth),
        Err(e) => refusal(e),
    }
}

async fn otp_resend(portal: web::Data<Portal>, body: web::Json<ChallengeRequest>) -> HttpResponse {
    let resent = match body.challenge.parse::<OtpChallengeId>() {
        Ok(challenge) => portal.resend_otp(&challenge).await,
        Err(r) => Err(r.into()),
    };
    match resent {
        Ok(c) => HttpResponse::Ok().json(challenge_json(c)),
        Err(e) => refusal(e),
    }
}

async fn otp_close(portal: web::Data<Portal>, body: web::Json<ChallengeRequest>) -> HttpResponse {
    // A challenge that does not parse names no screen: nothing to close, as for an
    // unknown one.
    let closed = match body.challenge.parse::<OtpChallengeId>() {
        Ok(challenge) => portal.close_otp_screen(&challenge).await,
        Err(_) => Ok(()),
    };
    match closed {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => refusal(e),
    }
}

/// The routes; mount with `App::new().app_data(web::Data::new(portal)).configure(routes)`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(4096)
            .error_handler(|err, _| {
                let resp = HttpResponse::BadRequest().json(ErrorResponse {
                    error: "request.malformed".to_owned(),
                    message: "リクエストの形式が正しくありません。".to_owned(),
                });
                actix_web::error::InternalError::from_response(err, resp).into()
            }),
    )
    .route("/login", web::post().to(login))
    .route("/otp", web::post().to(otp))
    .route("/otp/resend", web::post().to(otp_resend))
    .route("/otp/close", web::post().to(otp_close));
    #[cfg(feature = "passkeys")]
    cfg.route(
        "/passkeys/register/start",
        web::post().to(passkeys::register_start),
    )
    .route(
        "/passkeys/register/finish",
        web::post().to(passkeys::register_finish),
    )
    .route("/passkey", web::post().to(passkeys::login));
}

/// The パスキー endpoints (feature `passkeys`).
#[cfg(feature = "passkeys")]
pub mod passkeys {
    use actix_web::{HttpResponse, web};
    use kenpo_auth::flow::passkey::PasskeyName;
    use kenpo_auth::portal::Authenticated;
    use kenpo_auth::token::{FlowHandle, OtpChallengeId};
    use kenpo_auth::{Portal, Rejection};
    use serde::{Deserialize, Serialize};
    use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

    use super::{authenticated, fresh_logins, refusal};

    /// `POST /passkeys/register/start`.
    #[derive(Debug, Deserialize)]
    pub struct RegisterStart {
        /// From `/otp` or `/passkey`, less than five minutes ago.
        pub session: String,
        /// The name the member gives the passkey (「iPhone」).
        pub name: String,
    }

    /// The answer to `/passkeys/register/start`.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct RegisterOptions {
        /// Send back with the credential.
        pub handle: String,
        /// The options of `navigator.credentials.create`.
        pub options: serde_json::Value,
    }

    /// `POST /passkeys/register/finish`.
    #[derive(Debug, Deserialize)]
    pub struct RegisterFinish {
        /// As for the start.
        pub session: String,
        /// From `/passkeys/register/start`.
        pub handle: String,
        /// What `navigator.credentials.create` gave.
        pub credential: RegisterPublicKeyCredential,
    }

    /// The answer to `/passkeys/register/finish`.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct Registered {
        /// The new passkey's credential ID.
        pub credential_id: String,
        /// リカバリーコード to show once (empty unless this was the first factor).
        pub recovery_codes: Vec<String>,
    }

    /// `POST /passkey`.
    #[derive(Debug, Deserialize)]
    pub struct PasskeyLogin {
        /// From `/login`.
        pub challenge: String,
        /// What `navigator.credentials.get` gave.
        pub credential: PublicKeyCredential,
    }

    /// The fresh login under `session`, taken out of the map while a step uses it.
    fn take(session: &str) -> Option<Authenticated> {
        fresh_logins().lock().ok()?.remove(session)
    }

    fn put_back(session: String, auth: Authenticated) {
        if let Ok(mut map) = fresh_logins().lock() {
            map.insert(session, auth);
        }
    }

    /// パスキーの登録, step 1.
    pub async fn register_start(
        portal: web::Data<Portal>,
        body: web::Json<RegisterStart>,
    ) -> HttpResponse {
        let Some(auth) = take(&body.session) else {
            return refusal(Rejection::ReauthenticationRequired.into());
        };
        let started = match body.name.parse::<PasskeyName>() {
            Ok(name) => portal.start_passkey_registration(&auth, &name).await,
            Err(r) => Err(r.into()),
        };
        put_back(body.session.clone(), auth);
        match started {
            Ok(r) => HttpResponse::Ok().json(RegisterOptions {
                handle: r.handle.expose_secret().to_owned(),
                options: serde_json::to_value(&r.options).unwrap_or_default(),
            }),
            Err(e) => refusal(e),
        }
    }

    /// パスキーの登録, step 2.
    pub async fn register_finish(
        portal: web::Data<Portal>,
        body: web::Json<RegisterFinish>,
    ) -> HttpResponse {
        let Some(auth) = take(&body.session) else {
            return refusal(Rejection::ReauthenticationRequired.into());
        };
        let finished = match body.handle.parse::<FlowHandle>() {
            Ok(handle) => {
                portal
                    .finish_passkey_registration(&auth, &handle, &body.credential)
                    .await
            }
            Err(r) => Err(r.into()),
        };
        put_back(body.session.clone(), auth);
        match finished {
            Ok(added) => HttpResponse::Ok().json(Registered {
                credential_id: added.credential_id,
                recovery_codes: added
                    .recovery_codes
                    .iter()
                    .map(|c| c.expose_secret().to_string())
                    .collect(),
            }),
            Err(e) => refusal(e),
        }
    }

    /// L2 with a パスキー.
    pub async fn login(portal: web::Data<Portal>, body: web::Json<PasskeyLogin>) -> HttpResponse {
        let verified = match body.challenge.parse::<OtpChallengeId>() {
            Ok(challenge) => portal.verify_passkey(&challenge, &body.credential).await,
            Err(r) => Err(r.into()),
        };
        match verified {
            Ok(auth) => authenticated(auth),
            Err(e) => refusal(e),
        }
    }
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let portal = demo_portal(RecordingMailer::new(), true).await?;
    println!("kenpo-auth JSON API on actix-web: http://localhost:{port}");
    println!("demo account: login_id {DEMO_LOGIN_ID:?}, password {DEMO_PASSWORD:?}");
    println!("DEV-ONLY: each 暗証キー is printed on stderr (never in production, SEC-39).");
    let data = web::Data::new(portal);
    actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .configure(routes)
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await?;
    Ok(())
}
