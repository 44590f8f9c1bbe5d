//! Observability without any feature: every `Portal` step runs in one `kenpo.step` span
//! with the stable fields documented in `kenpo_auth::observe` (`step`, `outcome`), and
//! what the step logs — its audit events — nests under it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use kenpo_auth::domain::Password;
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::fixtures;
use tracing_subscriber::fmt::format::FmtSpan;

/// What the subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_step_runs_in_a_kenpo_step_span_with_its_outcome() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    runtime.block_on(async {
        let portal = fixtures::portal_builder()
            .store(MemoryStore::new())
            .mailer(RecordingMailer::new())
            .directory(fixtures::sample_roster())
            .build()
            .unwrap();
        portal
            .start_registration("taro.yamada@example.jp")
            .await
            .unwrap();
        let refused = portal
            .start_login(
                "nobody-here",
                &Password::new("まちがえたパスワードです").unwrap(),
            )
            .await;
        assert!(refused.is_err());
    });

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // The span closes with the fields the dashboards rely on.
    for closed in [
        r#"kenpo.step{step="start_registration" outcome="ok"}"#,
        r#"kenpo.step{step="start_login" outcome="login.failed"}"#,
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(closed) && l.contains("close")),
            "{closed} not closed in:\n{log}"
        );
    }
    // The audit event of the step is written inside its span.
    assert!(
        log.lines()
            .any(|l| l.contains(r#"kenpo.step{step="start_login"}"#)
                && l.contains("kenpo_auth::audit")),
        "no audit event inside the start_login span:\n{log}"
    );
    // No member identifier reaches the span.
    assert!(!log.contains("nobody-here"), "{log}");
}
