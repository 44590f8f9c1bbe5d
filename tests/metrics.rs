//! Observability: after a registration and a login through `Portal`, the example
//! portal's `/metrics` endpoint (`examples/portal/metrics_endpoint.rs`), scraped over
//! HTTP on its loopback port, shows the audit-event and step counters and the step
//! latency histogram with their documented names and labels (`kenpo_auth::observe`).
#![cfg(feature = "metrics")]

#[allow(dead_code)]
#[path = "../examples/portal/metrics_endpoint.rs"]
mod metrics_endpoint;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use kenpo_auth::Rejection;
use kenpo_auth::domain::Password;
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::fixtures;
use kenpo_auth::token::AuthKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const EMAIL: &str = "taro.yamada@example.jp";
const LOGIN_ID: &str = "yamada-t2026";
const PASSWORD: &str = "さくらの花が咲く春の午後に散歩";

/// `GET path` over a plain TCP connection, as a scraper does: the status line and
/// headers, and the body.
async fn http_get(addr: SocketAddr, path: &str) -> Result<(String, String), Box<dyn Error>> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8(response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no end of headers")?;
    Ok((head.to_owned(), body.to_owned()))
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_counted_on_the_metrics_endpoint() -> Result<(), Box<dyn Error>> {
    let addr = metrics_endpoint::serve("127.0.0.1:0".parse()?).await?;

    let mailer = RecordingMailer::new();
    let portal = fixtures::portal_builder()
        .store(MemoryStore::new())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(fixtures::sample_roster())
        .build()?;
    // R1–R5.
    portal.start_registration(EMAIL).await?;
    let link1 = mailer.last_registration_link(EMAIL).ok_or("link 1")?;
    let handle = portal.open_registration_link(&link1.token).await?;
    let claim = portal.identity_claim("999-123456-00", "1985-04-12", None)?;
    let shown = portal.verify_identity(&handle, claim).await?;
    let link2 = mailer.last_verification_link(EMAIL).ok_or("link 2")?;
    let key: AuthKey = shown.auth_key.expose_secret().parse()?;
    let handle = portal.confirm_auth_key(&link2.token, &key).await?;
    let credentials = NewCredentials {
        login_id: LOGIN_ID.into(),
        password: Password::new(PASSWORD)?,
        password_confirmation: Password::new(PASSWORD)?,
        nickname: None,
    };
    portal.complete_registration(&handle, credentials).await?;
    // A wrong password, then L1–L2.
    let refused = portal
        .start_login(LOGIN_ID, &Password::new("まちがえたパスワードです")?)
        .await;
    assert_eq!(
        refused.err().and_then(|e| e.rejection().cloned()),
        Some(Rejection::LoginFailed)
    );
    let challenge = portal
        .start_login(LOGIN_ID, &Password::new(PASSWORD)?)
        .await?;
    let code = mailer.last_otp(EMAIL).ok_or("暗証キー")?;
    portal.verify_otp(&challenge.challenge, &code).await?;

    let (head, body) = http_get(addr, "/metrics").await?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );

    let expected = [
        // One counter per audit event, by kind and outcome.
        (
            r#"kenpo_auth_events_total{kind="registration_started",outcome="success"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_events_total{kind="registration_completed",outcome="success"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_events_total{kind="login_failed",outcome="failure"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_events_total{kind="login_password_accepted",outcome="success"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_events_total{kind="login_succeeded",outcome="success"}"#,
            1.0,
        ),
        // One per step answered, by step and outcome (ok or the rejection's code).
        (
            r#"kenpo_auth_steps_total{step="start_registration",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_steps_total{step="verify_identity",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_steps_total{step="complete_registration",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_steps_total{step="start_login",outcome="login.failed"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_steps_total{step="start_login",outcome="ok"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_steps_total{step="verify_otp",outcome="ok"}"#,
            1.0,
        ),
        // The latency histogram, per step, with the buckets the endpoint configures.
        (
            r#"kenpo_auth_step_duration_seconds_count{step="start_login"}"#,
            2.0,
        ),
        (
            r#"kenpo_auth_step_duration_seconds_count{step="verify_otp"}"#,
            1.0,
        ),
        (
            r#"kenpo_auth_step_duration_seconds_bucket{step="start_login",le="+Inf"}"#,
            2.0,
        ),
        (
            r#"kenpo_auth_step_duration_seconds_bucket{step="verify_otp",le="10"}"#,
            1.0,
        ),
    ];
    for (series, value) in expected {
        assert_eq!(sample(&body, series), Some(value), "{series} in:\n{body}");
    }
    for described in [
        "# TYPE kenpo_auth_events_total counter",
        "# TYPE kenpo_auth_steps_total counter",
        "# TYPE kenpo_auth_step_duration_seconds histogram",
        "# HELP kenpo_auth_events_total Audit events recorded by kenpo-auth",
    ] {
        assert!(body.contains(described), "{described} in:\n{body}");
    }
    // The step took some time, and no label names a member.
    let took = sample(
        &body,
        r#"kenpo_auth_step_duration_seconds_sum{step="start_login"}"#,
    );
    assert!(took.is_some_and(|s| s > 0.0), "{took:?}");
    for secret in [EMAIL, LOGIN_ID, "t***@example.jp", "999-123456"] {
        assert!(!body.contains(secret), "{secret} in:\n{body}");
    }
    // Anything else on the metrics port is not found.
    let (head, _) = http_get(addr, "/").await?;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    Ok(())
}

#[tokio::test]
async fn metrics_endpoint_refuses_an_address_members_could_reach() {
    let refused = metrics_endpoint::serve("0.0.0.0:0".parse().unwrap()).await;
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("not a loopback address"), "{message}");
}
