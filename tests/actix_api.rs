//! The actix-web JSON API example, through actix-web's own test utilities: login, the
//! 暗証キー read from the `RecordingMailer`, resend, close, and the refusals' codes.

#[allow(dead_code)]
#[path = "../examples/actix_api.rs"]
mod actix_api;

use actix_web::http::StatusCode;
use actix_web::{App, test, web};
use kenpo_auth::mail::RecordingMailer;
use serde_json::json;

use actix_api::{AuthenticatedResponse, ChallengeResponse, DEMO_EMAIL, ErrorResponse};

/// The 暗証キー of the latest 暗証キー mail to the demo member, as the JSON client types it.
fn last_code(mailer: &RecordingMailer) -> String {
    let code = mailer.last_otp(DEMO_EMAIL).expect("a 暗証キー mail");
    code.expose_secret().to_owned()
}

#[actix_web::test]
async fn login_then_otp_from_the_recording_mailer() {
    let mailer = RecordingMailer::new();
    let portal = actix_api::demo_portal(mailer.clone(), false).await.unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(portal))
            .configure(actix_api::routes),
    )
    .await;

    // Wrong password: 401, the one generic message (SEC-23).
    let req = test::TestRequest::post()
        .uri("/login")
        .set_json(json!({ "login_id": actix_api::DEMO_LOGIN_ID, "password": "wrong-password" }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorResponse = test::read_body_json(resp).await;
    assert_eq!(body.error, "login.failed");
    assert_eq!(
        body.message,
        "ログインIDまたはパスワードが正しくありません。"
    );

    // L1: the challenge; the code goes to the mailer only.
    let req = test::TestRequest::post()
        .uri("/login")
        .set_json(json!({
            "login_id": actix_api::DEMO_LOGIN_ID,
            "password": actix_api::DEMO_PASSWORD,
        }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let challenge: ChallengeResponse = test::read_body_json(resp).await;
    assert_eq!(challenge.masked_email, "d***@example.jp");
    let code = last_code(&mailer);
    assert!(!challenge.challenge.contains(&code));

    // A wrong code: 401 otp.incorrect.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let req = test::TestRequest::post()
        .uri("/otp")
        .set_json(json!({ "challenge": challenge.challenge, "code": wrong }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorResponse = test::read_body_json(resp).await;
    assert_eq!(body.error, "otp.incorrect");

    // L4 during the cooldown: 429 with Retry-After, no new mail.
    let sent = mailer.count();
    let req = test::TestRequest::post()
        .uri("/otp/resend")
        .set_json(json!({ "challenge": challenge.challenge }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(mailer.count(), sent);

    // L2: the right code, once.
    let req = test::TestRequest::post()
        .uri("/otp")
        .set_json(json!({ "challenge": challenge.challenge, "code": code }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let auth: AuthenticatedResponse = test::read_body_json(resp).await;
    assert!(auth.authenticated);
    assert!(!auth.account_id.is_empty());
    let req = test::TestRequest::post()
        .uri("/otp")
        .set_json(json!({ "challenge": challenge.challenge, "code": code }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    // The same code again at once (a retried request): told the same login, not a
    // second one (#14); after `Policy::repeat_window` it is refused.
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a repeat gets the same login"
    );
    let again: AuthenticatedResponse = test::read_body_json(resp).await;
    assert_eq!(again.account_id, auth.account_id);
}

#[actix_web::test]
async fn closing_the_code_screen_kills_the_code_and_bad_json_is_a_400() {
    let mailer = RecordingMailer::new();
    let portal = actix_api::demo_portal(mailer.clone(), false).await.unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(portal))
            .configure(actix_api::routes),
    )
    .await;
    let req = test::TestRequest::post()
        .uri("/login")
        .set_json(json!({
            "login_id": actix_api::DEMO_LOGIN_ID,
            "password": actix_api::DEMO_PASSWORD,
        }))
        .to_request();
    let challenge: ChallengeResponse =
        test::read_body_json(test::call_service(&app, req).await).await;
    let code = last_code(&mailer);

    // L3: the screen is closed; the code is dead.
    let req = test::TestRequest::post()
        .uri("/otp/close")
        .set_json(json!({ "challenge": challenge.challenge }))
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::NO_CONTENT
    );
    let req = test::TestRequest::post()
        .uri("/otp")
        .set_json(json!({ "challenge": challenge.challenge, "code": code }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    let body: ErrorResponse = test::read_body_json(resp).await;
    assert_eq!(body.error, "otp.invalid");
    assert!(body.message.contains("この暗証キーは無効になりました"));

    let req = test::TestRequest::post()
        .uri("/login")
        .insert_header(("content-type", "application/json"))
        .set_payload("{not json")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: ErrorResponse = test::read_body_json(resp).await;
    assert_eq!(body.error, "request.malformed");
}

/// The パスキー JSON endpoints (feature `passkeys`): a real WebAuthn ceremony with a
/// software authenticator playing the browser — register after an 暗証キー login, then
/// log in with password + passkey; the same assertion twice is refused.
#[cfg(feature = "passkey-tests")]
#[actix_web::test]
async fn passkey_registration_and_login_through_the_json_api() {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::prelude::Url;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    let mailer = RecordingMailer::new();
    let portal = actix_api::demo_portal(mailer.clone(), false).await.unwrap();
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(portal))
            .configure(actix_api::routes),
    )
    .await;
    let origin = Url::parse("http://localhost:8081").unwrap();
    let mut device = SoftPasskey::new(true);
    let login = || {
        test::TestRequest::post()
            .uri("/login")
            .set_json(json!({
                "login_id": actix_api::DEMO_LOGIN_ID,
                "password": actix_api::DEMO_PASSWORD,
            }))
            .to_request()
    };

    // L1–L2 with the 暗証キー: a session for the next minutes' account changes.
    let challenge: ChallengeResponse =
        test::read_body_json(test::call_service(&app, login()).await).await;
    assert_eq!(challenge.second_step, "emailed_code");
    let req = test::TestRequest::post()
        .uri("/otp")
        .set_json(json!({ "challenge": challenge.challenge, "code": last_code(&mailer) }))
        .to_request();
    let auth: AuthenticatedResponse =
        test::read_body_json(test::call_service(&app, req).await).await;
    assert!(!auth.session.is_empty());

    // パスキーの登録.
    let req = test::TestRequest::post()
        .uri("/passkeys/register/start")
        .set_json(json!({ "session": auth.session, "name": "iPhone" }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let started: actix_api::passkeys::RegisterOptions = test::read_body_json(resp).await;
    let credential = device
        .do_registration(
            origin.clone(),
            serde_json::from_value(started.options).unwrap(),
        )
        .unwrap();
    let req = test::TestRequest::post()
        .uri("/passkeys/register/finish")
        .set_json(json!({
            "session": auth.session,
            "handle": started.handle,
            "credential": credential,
        }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let registered: actix_api::passkeys::Registered = test::read_body_json(resp).await;
    assert_eq!(registered.recovery_codes.len(), 10);

    // Password + passkey: no 暗証キー is mailed.
    let sent = mailer.count();
    let challenge: ChallengeResponse =
        test::read_body_json(test::call_service(&app, login()).await).await;
    assert_eq!(challenge.second_step, "second_factor");
    assert_eq!(mailer.count(), sent);
    let options = serde_json::from_value(challenge.passkey_options.unwrap()).unwrap();
    let assertion = device.do_authentication(origin, options).unwrap();
    let body = json!({ "challenge": challenge.challenge, "credential": assertion });
    let req = test::TestRequest::post()
        .uri("/passkey")
        .set_json(&body)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let auth: AuthenticatedResponse = test::read_body_json(resp).await;
    assert!(auth.authenticated);
    let req = test::TestRequest::post()
        .uri("/passkey")
        .set_json(&body)
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::GONE, "an assertion works once");
}
