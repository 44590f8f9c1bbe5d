//! The example portal as a module that both `main.rs` and the tests build: configuration,
//! the [`Portal`], and the axum router with its sessions, CSRF tokens, security headers
//! and rate limits.
//!
//! Everything web-specific lives here, in the example — the library sets no cookies and
//! knows nothing of HTTP (DESIGN.md §2). What the example adds on top of the library:
//!
//! - server-side sessions keyed by a random 256-bit id, stored as its SHA-256 in the
//!   library's database (or in memory), rotated at login, with idle (30 min) and absolute
//!   (8 h) timeouts (SEC-32, SEC-33, SEC-35), created only by a form post;
//! - a synchronizer CSRF token on every form and beacon, compared in constant time;
//! - mailed links swapped for session state and redirected away (SEC-39);
//! - a strict CSP with scripts and styles in static files, `nosniff`, `no-referrer`;
//! - a token bucket per client IP;
//! - the security-stamp check on every protected page (SEC-34).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use kenpo_auth::mail::OutboxMailer;
use kenpo_auth::password_hash::Offload;
use kenpo_auth::ports::{AuditSink, Clock, Mailer, MemberDirectory, Store, SystemClock};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::{InsurerProfile, Policy, Portal};
use time::Duration;

#[path = "dev_mailer.rs"]
pub(crate) mod dev_mailer;
#[path = "handlers.rs"]
mod handlers;
#[path = "notices.rs"]
pub(crate) mod notices;
#[path = "pages.rs"]
mod pages;
#[path = "roster.rs"]
pub(crate) mod roster;
#[path = "security.rs"]
pub(crate) mod security;
#[path = "serve.rs"]
pub(crate) mod serve;
#[path = "session.rs"]
pub(crate) mod session;
#[path = "session_store.rs"]
pub(crate) mod session_store;

use roster::Roster;
use security::{RateLimit, RateLimiter};
use session::Sessions;

/// The fictional insurer of the demo.
pub(crate) const INSURER_NAME: &str = "さくら健康保険組合";
/// The portal's name.
pub(crate) const SERVICE_NAME: &str = "さくらけんぽWeb";
/// The sender members must allow in their 迷惑メール settings.
pub(crate) const SENDER: &str = "no-reply@sakura-kenpo.example.jp";
/// Where members turn when a mail was not theirs.
pub(crate) const SUPPORT: &str = "さくら健康保険組合 適用グループ 03-0000-0000";
/// The demo roster shipped with the example.
pub(crate) const DEMO_ROSTER: &str = include_str!("roster.csv");

/// How the app is set up. [`AppConfig::new`] gives the defaults of `cargo run --example
/// portal`; tests change what they need.
pub(crate) struct AppConfig {
    /// The only base mailed links are built from (SEC-39), e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Where mails are written as `.eml` files.
    pub outbox_dir: PathBuf,
    /// DEVELOPMENT ONLY: also print mailed links and codes on the console. SEC-39 forbids
    /// this in production; the example turns it on only for a loopback base URL unless
    /// told otherwise.
    pub dev_log_secrets: bool,
    /// DEVELOPMENT ONLY: the `/dev/mailbox` page, listing every mail sent since the
    /// start, decoded, with its links clickable, and the demo's 事前登録 letter. `main`
    /// turns it on only with the dev flag and a loopback address to listen on; the page
    /// also answers only loopback clients.
    pub dev_mailbox: bool,
    /// Serve the session cookie as `__Host-kenpo_sid` with `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// The roster CSV text (see `roster.csv`).
    pub roster_csv: String,
    /// Where `now` comes from, for the portal and the sessions.
    pub clock: Arc<dyn Clock>,
    /// Where the portal's security events go (default: `tracing`).
    pub audit: Option<Arc<dyn AuditSink>>,
    /// The HMAC key of the token digests. A real host loads it from its secret store.
    pub secret_key: [u8; 32],
    /// The rules: the seed portal's. No code-screen heartbeat: a phone that switches to
    /// the mail app stops the page's timers, and the code must survive that; closing
    /// the screen is reported by its `pagehide` beacon.
    pub policy: Policy,
    /// Idle session timeout (SEC-33).
    pub session_idle: Duration,
    /// Absolute session timeout (SEC-33).
    pub session_absolute: Duration,
    /// Requests per client IP (all requests) and form posts per client IP.
    pub rate_limit: RateLimit,
    /// The store; `None` builds a fresh `MemoryStore`.
    pub store: Option<Arc<dyn Store>>,
    /// Where web sessions are kept; `None` keeps them in this process's memory. `main`
    /// puts them in the store's database (SQLite or PostgreSQL), so that several servers
    /// share them and a restart keeps them.
    pub session_backend: Option<Arc<dyn session_store::SessionBackend>>,
    /// A real mail server (`smtp://host:port?tls=starttls`, `smtps://user:pass@host`;
    /// feature `smtp`) instead of the outbox folder. Each step's mails are kept in the
    /// store's outbox, tried at once and retried by the delivery worker `main` runs.
    pub smtp_url: Option<String>,
    /// The delivery itself, instead of the outbox folder or `smtp_url`: for a load
    /// generator or a test that reads each 暗証キー from memory rather than from `.eml`
    /// files. `None` (the default) builds the outbox or SMTP mailer.
    pub mailer: Option<Arc<dyn Mailer>>,
    /// How many Argon2 computations may run at once (`max_concurrent_hashes`, SEC-22):
    /// one more than the cores. With exactly one per core, each core idles from the end of
    /// one login's hash until the next waiting login's task has been woken and started
    /// its own (a wake-up of an idle core is slow on a virtual machine); one computation
    /// beyond the cores is always ready to take the core instead. Memory stays bounded:
    /// at most this many arenas of `m` KiB (3 × 19 MiB on 2 cores). BENCHMARKS.md (#18):
    /// with 4 clients on 2 cores, on the blocking pool 0.73–0.76 × the Argon2 floor with
    /// 2, 0.75–0.80 with 3; on the pinned threads (`hash_offload`) 0.88 with 2, 0.90
    /// with 3 (the third waits in their queue, ready the moment a thread is free).
    pub argon2_permits: usize,
    /// Where Argon2 runs (`PortalBuilder::hash_offload`): the hasher's own threads, one
    /// pinned to each core. On a machine the portal has to itself, that keeps every core
    /// hashing; on the blocking pool the hash threads can pile up on one core while
    /// another idles (BENCHMARKS.md, #18: 4 clients on 2 cores, 0.86–0.90 × the Argon2
    /// floor pinned, 0.73–0.80 on the pool). Behind a CPU quota shared with other work,
    /// use `Offload::BlockingPool`. `Offload::InPlace` (no hand-off between threads)
    /// measured the same at one client over HTTP and less at four (0.81–0.84, the cores
    /// 87–93 % busy), so the portal stays on pinned threads.
    pub hash_offload: Offload,
}

impl AppConfig {
    /// The defaults: seed-portal policy (8-character passwords, members know them), no
    /// code-screen heartbeat, system clock, a fresh random key, the shipped roster,
    /// plain-http cookies.
    pub(crate) fn new(base_url: impl Into<String>, outbox_dir: impl Into<PathBuf>) -> Self {
        let mut secret_key = [0u8; 32];
        rand::fill(&mut secret_key);
        let mut policy = Policy::seed_portal();
        policy.otp_screen_heartbeat = None;
        // The demo offers パスキーだけでログイン (with the `passkeys` feature and a
        // domain base URL such as http://localhost).
        policy.factors.passkey_only_login = true;
        AppConfig {
            base_url: base_url.into(),
            outbox_dir: outbox_dir.into(),
            dev_log_secrets: false,
            dev_mailbox: false,
            secure_cookies: false,
            roster_csv: DEMO_ROSTER.to_owned(),
            clock: Arc::new(SystemClock),
            audit: None,
            secret_key,
            argon2_permits: std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
            hash_offload: Offload::PinnedThreads,
            policy,
            session_idle: Duration::minutes(30),
            session_absolute: Duration::hours(8),
            rate_limit: RateLimit::default(),
            store: None,
            session_backend: None,
            smtp_url: None,
            mailer: None,
        }
    }
}

/// Why the app could not be built.
#[derive(Debug)]
pub(crate) enum BuildError {
    /// The roster CSV could not be read.
    Roster(roster::RosterError),
    /// The outbox folder could not be created.
    Outbox(std::io::Error),
    /// The portal refused the configuration.
    Portal(kenpo_auth::portal::ConfigError),
    /// The SMTP server could not be configured (or the `smtp` feature is off).
    Smtp(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Roster(e) => write!(f, "roster: {e}"),
            BuildError::Outbox(e) => write!(f, "outbox folder: {e}"),
            BuildError::Portal(e) => write!(f, "portal configuration: {e}"),
            BuildError::Smtp(e) => write!(f, "SMTP_URL: {e}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The built app: the router to serve, and the parts a test (or `main`) looks into.
pub(crate) struct App {
    /// The routes, with every middleware applied.
    pub router: Router,
    /// The library's front door.
    pub portal: Portal,
    /// Where accounts and flows live (the host owns it; the home page reads accounts).
    /// `main` does not need it; the tests look into it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub store: Arc<dyn Store>,
    /// The web sessions.
    pub sessions: Arc<Sessions>,
    /// The roster.
    pub roster: Arc<Roster>,
    /// The development mailbox, when it is on.
    pub dev_mailbox: Option<Arc<dev_mailer::DevMailbox>>,
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) portal: Portal,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) roster: Arc<Roster>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) limiter: Arc<RateLimiter>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) dev_mailbox: Option<Arc<dev_mailer::DevMailbox>>,
    pub(crate) base_url: String,
    /// Each member's latest login, for the changes that need a fresh one (2段階認証の
    /// 設定, SEC-36): the library's `Authenticated` cannot be stored in a session (it is
    /// the proof of a login), so the demo keeps it in memory by account for its minutes.
    pub(crate) fresh_logins:
        Arc<std::sync::Mutex<std::collections::HashMap<String, kenpo_auth::portal::Authenticated>>>,
}

/// Builds the portal and the router.
pub(crate) fn build(config: AppConfig) -> Result<App, BuildError> {
    let roster = Arc::new(Roster::from_csv(&config.roster_csv).map_err(BuildError::Roster)?);
    let profile = InsurerProfile::new(
        INSURER_NAME,
        SERVICE_NAME,
        SENDER,
        SUPPORT,
        config.base_url.clone(),
    );
    let delivery: Arc<dyn Mailer> = match (config.mailer, config.smtp_url.as_deref()) {
        (Some(mailer), _) => mailer,
        (None, None) => Arc::new(
            OutboxMailer::new(&config.outbox_dir, profile.clone())
                .map_err(BuildError::Outbox)?
                .with_clock(config.clock.clone()),
        ),
        (None, Some(url)) => smtp_delivery(url, &profile)?,
    };
    let mailbox = config
        .dev_mailbox
        .then(|| Arc::new(dev_mailer::DevMailbox::default()));
    let mailer = dev_mailer::DevConsoleMailer::new(
        delivery,
        config.dev_log_secrets,
        mailbox.clone(),
        config.clock.clone(),
    );
    // Switch to SqliteStore / PostgresStore here once those adapters exist.
    let store: Arc<dyn Store> = config.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
    let mut builder = Portal::builder()
        .shared_store(store.clone())
        .mailer(mailer)
        .shared_directory(roster.clone() as Arc<dyn MemberDirectory>)
        .clock(config.clock.clone())
        .policy(config.policy)
        .insurer(profile)
        .secret_key(1, config.secret_key)
        .max_concurrent_hashes(config.argon2_permits)
        .hash_offload(config.hash_offload);
    if let Some(audit) = config.audit {
        builder = builder.audit(audit);
    }
    let portal = builder.build().map_err(BuildError::Portal)?;
    let session_backend = config
        .session_backend
        .unwrap_or_else(|| Arc::new(session_store::MemorySessions::default()));
    let sessions = Arc::new(Sessions::new(
        session_backend,
        config.clock.clone(),
        config.session_idle,
        config.session_absolute,
        config.secure_cookies,
    ));
    let state = AppState {
        fresh_logins: Arc::default(),
        portal: portal.clone(),
        store: store.clone(),
        roster: roster.clone(),
        sessions: sessions.clone(),
        limiter: Arc::new(RateLimiter::new(config.rate_limit)),
        clock: config.clock.clone(),
        dev_mailbox: mailbox.clone(),
        base_url: config.base_url.clone(),
    };
    let router = routes(state, config.secure_cookies);
    Ok(App {
        router,
        portal,
        store,
        sessions,
        roster,
        dev_mailbox: mailbox,
    })
}

/// SmtpMailer over one reused connection. The store's outbox keeps each mail until the
/// server took it: a failed try is retried by the delivery worker, so no in-memory queue
/// (which a crash would empty) sits in between.
#[cfg(feature = "smtp")]
fn smtp_delivery(url: &str, profile: &InsurerProfile) -> Result<Arc<dyn Mailer>, BuildError> {
    use kenpo_auth::mail::SmtpMailer;
    let smtp = SmtpMailer::from_url(url, profile).map_err(|e| BuildError::Smtp(e.to_string()))?;
    Ok(Arc::new(smtp))
}

#[cfg(not(feature = "smtp"))]
fn smtp_delivery(_url: &str, _profile: &InsurerProfile) -> Result<Arc<dyn Mailer>, BuildError> {
    Err(BuildError::Smtp(
        "this build has no SMTP support: run with `--features smtp`".to_owned(),
    ))
}

fn routes(state: AppState, https: bool) -> Router {
    use handlers as h;
    let router = Router::new();
    let router = if state.dev_mailbox.is_some() {
        router.route("/dev/mailbox", get(h::dev_mailbox))
    } else {
        router
    };
    router
        .route("/", get(h::root))
        .route("/login", get(h::login_page).post(h::login_submit))
        .route("/login/otp", get(h::otp_page_get).post(h::otp_submit))
        .route("/login/otp/resend", post(h::otp_resend))
        .route("/login/otp/close", post(h::otp_close))
        .route("/register", get(h::register_page).post(h::register_submit))
        .route("/register/sent", get(h::register_sent))
        .route(
            "/registration/link",
            get(h::link1_landing).post(h::link1_open),
        )
        .route("/registration/temporary", post(h::temporary_sign_in))
        .route(
            "/registration/identity",
            get(h::identity_page).post(h::identity_submit),
        )
        .route("/registration/auth-key", get(h::auth_key_page))
        .route(
            "/registration/verify",
            get(h::link2_landing).post(h::link2_confirm),
        )
        .route(
            "/registration/credentials",
            get(h::credentials_page).post(h::credentials_submit),
        )
        .route("/registration/done", get(h::registration_done))
        .route("/recovery", get(h::recovery_page))
        .route("/recovery/login-id", post(h::forgot_login_id))
        .route("/recovery/password", post(h::forgot_password))
        .route("/recovery/sent", get(h::recovery_sent_page))
        .route(
            "/password-reset/link",
            get(h::reset_landing).post(h::reset_submit),
        )
        .route("/password-reset/done", get(h::reset_done))
        .route("/home", get(h::home))
        .route(
            "/login/factor",
            get(h::factors::factor_page).post(h::factors::factor_submit),
        )
        .route("/login/factor/passkey", post(h::factors::factor_passkey))
        .route(
            "/login/passkey/start",
            post(h::factors::passkey_login_start),
        )
        .route(
            "/login/passkey/finish",
            post(h::factors::passkey_login_finish),
        )
        .route("/settings/2fa", get(h::factors::settings))
        .route("/settings/totp", post(h::factors::totp_start))
        .route("/settings/totp/confirm", post(h::factors::totp_confirm))
        .route("/settings/totp/remove", post(h::factors::totp_remove))
        .route("/settings/recovery", post(h::factors::recovery_regenerate))
        .route("/settings/passkey/start", post(h::factors::passkey_start))
        .route("/settings/passkey/finish", post(h::factors::passkey_finish))
        .route("/logout", post(h::logout))
        .route("/static/portal.css", get(h::stylesheet))
        .route("/static/portal.js", get(h::script))
        .route("/favicon.ico", get(h::favicon))
        .fallback(h::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::session_layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::rate_limit,
        ))
        .layer(axum::middleware::from_fn(move |req, next| {
            security::headers(https, req, next)
        }))
        .with_state(state)
}

/// Removes dead flows, counters and sessions every five minutes (the library leaves the
/// schedule to the host). Runs until the runtime stops.
pub(crate) fn spawn_housekeeping(app: &App) {
    let portal = app.portal.clone();
    let sessions = app.sessions.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            sessions.purge_expired().await;
            if let Err(e) = portal.purge_expired(10_000).await {
                tracing::warn!(error = %e, "purge of expired flows failed");
            }
        }
    });
}
