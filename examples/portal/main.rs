//! さくらけんぽWeb — an example member portal on kenpo-auth, with axum: the Japanese
//! screens of 新規利用登録 and ログイン (with the e-mailed 暗証キー), and a home page with
//! SAMPLE 資格情報のお知らせ / 医療費のお知らせ. The insurer and its members are fictional.
//!
//! ```text
//! cargo run --example portal --features sqlite
//! # then open http://127.0.0.1:8080 and register as 999-123456-00, born 1985-04-12
//! ```
//!
//! No set-up: flows and accounts live in the SQLite file `./kenpo-portal.db` (built
//! without `--features sqlite`, in memory), mails are written to `./outbox/*.eml`, the
//! roster is `examples/portal/roster.csv`.
//!
//! Settings (environment):
//! - `PORT` (default 8080), `BIND` (default 127.0.0.1)
//! - `BASE_URL` — the base of mailed links (default `http://127.0.0.1:$PORT`); must be
//!   `https://` unless it is loopback (SEC-39)
//! - `OUTBOX_DIR` (default `./outbox`)
//! - `KENPO_SECRET_KEY` — 64 hex digits; default: a fresh random key per start
//! - `KENPO_SECURE_COOKIES=1` (or `--secure-cookies`) — behind HTTPS: `__Host-` cookie
//!   with `Secure`, and HSTS
//! - `SMTP_URL` — send through a real server instead of the outbox (needs
//!   `--features smtp`): `smtp://127.0.0.1:2525` (plain, loopback only),
//!   `smtp://mail.example.jp:587?tls=starttls`, `smtps://user:password@mail.example.jp`
//! - `DATABASE_URL` — `postgres://…` (needs `--features postgres`) or a SQLite path /
//!   `sqlite://…` URL (needs `--features sqlite`); default `./kenpo-portal.db`
//! - `RATE_LIMIT_BURST`, `RATE_LIMIT_PER_SECOND` (default 120, 5) — requests per client
//!   IP; `RATE_LIMIT_POST_BURST`, `RATE_LIMIT_POST_PER_SECOND` (default 30, 0.5) — form
//!   posts per client IP (a token bucket: the burst, refilled per second)
//! - `METRICS_ADDR` — serve `/metrics` (Prometheus text) on this loopback address, e.g.
//!   `127.0.0.1:9090`; off by default; the library records only with `--features metrics`
//! - `HEADER_TIMEOUT_SECS` (default 10) — a connection that has not sent a request's
//!   complete headers within this time (idle, or trickling them: slowloris) is closed
//! - note: without `KENPO_SECRET_KEY` the digest key is new at every start, so links
//!   and challenges issued before a restart stop working (accounts stay)
//!
//! Flags:
//! - `--dev-log-secrets` / `--no-dev-log-secrets` — DEVELOPMENT ONLY: print each mailed
//!   link and 暗証キー on the console as well, and serve the development mailbox
//!   `/dev/mailbox` (every mail since the start, decoded, links clickable, and the demo's
//!   事前登録 letter) when listening on loopback. On by default when `BASE_URL` is
//!   loopback, off otherwise. SEC-39 forbids tokens in logs; never use it in production.
//! - `--reset-demo` — start from nothing: deletes the SQLite file (and the `.eml` files of
//!   the outbox) first, so the demo members can register again and a new 事前登録 letter
//!   is issued. Refused for a PostgreSQL `DATABASE_URL`.

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use kenpo_auth::Lang;
use kenpo_auth::ports::{MemberId, SystemClock};

mod app;
mod metrics_endpoint;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_key(hex: &str) -> Result<[u8; 32], String> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("KENPO_SECRET_KEY must be 64 hex digits (32 bytes)".to_owned());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        let pair = hex.get(i * 2..i * 2 + 2).unwrap_or("00");
        *byte = u8::from_str_radix(pair, 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

fn is_loopback(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| url.starts_with(p))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    for a in &args {
        if !matches!(
            a.as_str(),
            "--dev-log-secrets" | "--no-dev-log-secrets" | "--secure-cookies" | "--reset-demo"
        ) {
            return Err(format!(
                "unknown argument {a:?}; known: --dev-log-secrets, --no-dev-log-secrets, --secure-cookies, --reset-demo"
            )
            .into());
        }
    }
    // Before anything calls the portal: metrics recorded before the recorder is
    // installed are lost.
    if let Some(addr) = env("METRICS_ADDR") {
        let bound = metrics_endpoint::serve(addr.parse()?).await?;
        println!("  metrics: http://{bound}/metrics (Prometheus text, loopback only)");
    }
    let port: u16 = match env("PORT") {
        Some(p) => p.parse().map_err(|_| format!("PORT {p:?} is not a port"))?,
        None => 8080,
    };
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1".to_owned());
    let base_url = env("BASE_URL").unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    let outbox = env("OUTBOX_DIR").unwrap_or_else(|| "./outbox".to_owned());
    let dev_log_secrets = if args.iter().any(|a| a == "--no-dev-log-secrets") {
        false
    } else {
        args.iter().any(|a| a == "--dev-log-secrets") || is_loopback(&base_url)
    };
    let secure_cookies = args.iter().any(|a| a == "--secure-cookies")
        || env("KENPO_SECURE_COOKIES").is_some_and(|v| v == "1" || v == "true");

    if args.iter().any(|a| a == "--reset-demo") {
        reset_demo(&outbox)?;
    }
    let loopback_bind = bind
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
        || bind == "localhost";
    let mut config = app::AppConfig::new(base_url.clone(), outbox.clone());
    config.dev_log_secrets = dev_log_secrets;
    config.dev_mailbox = dev_log_secrets && loopback_bind;
    config.secure_cookies = secure_cookies;
    config.clock = Arc::new(SystemClock);
    if let Some(k) = env("KENPO_SECRET_KEY") {
        config.secret_key = parse_key(&k)?;
    }
    config.smtp_url = env("SMTP_URL");
    config.rate_limit = app::security::RateLimit::from_env(env)?;
    let header_timeout = match env("HEADER_TIMEOUT_SECS") {
        Some(s) => std::time::Duration::from_secs(
            s.parse()
                .map_err(|_| format!("HEADER_TIMEOUT_SECS {s:?} is not a number of seconds"))?,
        ),
        None => app::serve::HEADER_READ_TIMEOUT,
    };
    let mails_to = if config.smtp_url.is_some() {
        "the SMTP server of SMTP_URL (through the store's outbox, retried while useful)".to_owned()
    } else {
        format!("{outbox}/*.eml")
    };
    let (store, sessions, store_label) = open_store().await?;
    config.store = Some(store);
    config.session_backend = sessions;
    let app = app::build(config)?;

    println!(
        "さくらけんぽWeb — kenpo-auth example portal (fictional insurer: {})",
        app::INSURER_NAME
    );
    println!("  store:  {store_label}");
    println!("  mails:  {mails_to}");
    println!(
        "  roster: examples/portal/roster.csv ({} members)",
        app.roster.member_count()
    );
    println!(
        "  demo member: 999-123456-00, born 1985-04-12 (family: 999-123456-01, born 1987-09-30)"
    );
    println!();
    println!("── assurance report ──────────────────────────────────────────────");
    print!("{}", app.portal.assurance_report(Lang::Ja));
    println!("──────────────────────────────────────────────────────────────────");
    if dev_log_secrets {
        println!();
        println!("################################################################");
        println!("## DEV-ONLY: every mailed link and 暗証キー is ALSO printed on");
        println!("## this console (--dev-log-secrets). Never in production: SEC-39");
        println!("## forbids tokens in logs. Turn it off with --no-dev-log-secrets.");
        println!("################################################################");
        // 事前登録: the insurer issues a login ID and 仮パスワード by post; here the
        // "letter" is printed, since it holds a credential.
        match app
            .portal
            .provision_account(&MemberId::new("SAKURA-0004"))
            .await
        {
            Ok(letter) => {
                let text = format!(
                    "事前登録のお知らせ(鈴木 一郎 様, 999-654321-00)\nログインID: {}\n仮パスワード: {}\n\
                     新規利用登録でメールアドレスを登録し、届いたURLの画面で「事前登録がお済みの方」に入力してください。",
                    letter.login_id.as_str(),
                    letter.temporary_password.expose_secret()
                );
                println!("DEV-ONLY {}", text.replace('\n', " / "));
                if let Some(mailbox) = &app.dev_mailbox {
                    mailbox.post_letter(text);
                }
            }
            Err(e) => println!(
                "The demo's 事前登録 letter (鈴木 一郎) was issued at an earlier start ({e}); \
                 run with --reset-demo for a fresh demo and a new letter."
            ),
        }
    }
    println!();

    let addr: SocketAddr = format!("{bind}:{port}").parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("Open {base_url}/ in your browser (listening on {addr}). Ctrl-C stops.");
    if app.dev_mailbox.is_some() {
        println!("DEV-ONLY mailbox: {base_url}/dev/mailbox (every mail, decoded, links clickable)");
    }
    app::spawn_housekeeping(&app);
    // The outbox's delivery worker: retries what a request could not send at once, and
    // sends what an earlier run left behind.
    let delivery = app.portal.delivery_worker().spawn();
    app::serve::serve(listener, app.router, header_timeout, stop_signal()).await;
    // Requests are done; the pass in flight finishes, the rest waits in the outbox.
    delivery.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a service manager or container runtime sends).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `--reset-demo`: removes the demo's SQLite file (with its `-wal`/`-shm` companions) and
/// the outbox's `.eml` files. Only the default file or a `DATABASE_URL` SQLite path.
fn reset_demo(outbox: &str) -> Result<(), Box<dyn Error>> {
    let url = env("DATABASE_URL");
    if url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    {
        return Err(
            "--reset-demo only resets a SQLite demo; drop the PostgreSQL tables yourself".into(),
        );
    }
    let path = url.unwrap_or_else(|| "./kenpo-portal.db".to_owned());
    let path = path
        .strip_prefix("sqlite://")
        .or_else(|| path.strip_prefix("sqlite:"))
        .unwrap_or(&path)
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        match std::fs::remove_file(&file) {
            Ok(()) => println!("--reset-demo: removed {file}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("--reset-demo: cannot remove {file}: {e}").into()),
        }
    }
    if let Ok(entries) = std::fs::read_dir(outbox) {
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|x| x == "eml")
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
        println!("--reset-demo: removed {removed} mails from {outbox}");
    }
    Ok(())
}

/// Where sessions are kept: in the store's database, or (`None`) in memory.
type SessionPlace = Option<Arc<dyn app::session_store::SessionBackend>>;

/// The store: `DATABASE_URL` (`postgres://…` with the `postgres` feature, `sqlite://…` or a
/// path with the `sqlite` feature); otherwise the embedded SQLite file
/// `./kenpo-portal.db` when built with `--features sqlite`, and memory without it. The web
/// sessions go into the same database.
async fn open_store()
-> Result<(Arc<dyn kenpo_auth::ports::Store>, SessionPlace, String), Box<dyn Error>> {
    let url = env("DATABASE_URL");
    if let Some(url) = url.as_deref()
        && (url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        #[cfg(feature = "postgres")]
        {
            let store = kenpo_auth::store::PostgresStore::connect(url).await?;
            store.migrate().await?;
            let sessions =
                app::session_store::PostgresSessions::new(store.danger_pool().clone()).await?;
            return Ok((
                Arc::new(store),
                Some(Arc::new(sessions)),
                "PostgreSQL (DATABASE_URL), sessions in table portal_sessions".to_owned(),
            ));
        }
        #[cfg(not(feature = "postgres"))]
        return Err("DATABASE_URL is a PostgreSQL URL: run with --features postgres".into());
    }
    #[cfg(feature = "sqlite")]
    {
        let path = url.unwrap_or_else(|| "./kenpo-portal.db".to_owned());
        let store = kenpo_auth::store::SqliteStore::open(&path).await?;
        let sessions = app::session_store::SqliteSessions::new(store.danger_pool().clone()).await?;
        Ok((
            Arc::new(store),
            Some(Arc::new(sessions)),
            format!("SQLite file {path}, sessions in table portal_sessions"),
        ))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        if url.is_some() {
            return Err("DATABASE_URL needs --features sqlite or --features postgres".into());
        }
        Ok((
            Arc::new(kenpo_auth::store::MemoryStore::new()),
            None,
            "MemoryStore (built without --features sqlite: accounts are gone when the server stops)"
                .to_owned(),
        ))
    }
}
