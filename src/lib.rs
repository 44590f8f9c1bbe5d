//! # kenpo-auth
//!
//! Enrollment and login for the member portal of a Japanese health-insurance society
//! (健保組合の加入者ポータル): self-registration by e-mail with an identity check on the
//! insurance numbers, and login with a password plus an e-mailed one-time 暗証キー.
//!
//! ## The journeys
//!
//! ```text
//! 新規利用登録 (registration)
//!
//!  R1 start_registration(email) ─── mail「利用登録手続きのご案内」(link 1, 3 h)
//!  R2 inspect_registration_link(GET) / open_registration_link(POST) ──▶ FlowHandle
//!       │                                    └─ R2' sign_in_with_temporary_password ─┐
//!  R3 verify_identity(handle, 記号-番号-枝番 + 生年月日) ──▶ 認証キー on screen          │
//!       └─ mail「本人確認完了のご案内」(link 2, 30 min)                                  │
//!  R4 inspect_verification_link(GET) / confirm_auth_key(link 2, 認証キー) ──▶ FlowHandle │
//!  R5 complete_registration(handle, ログインID, パスワード, ニックネーム) ◀─────────────┘
//!       └─ account created (login ID, e-mail and member each unique)
//!
//! ログイン (login)
//!
//!  L1 start_login(ログインID, パスワード) ─── mail「暗証キーのご案内」(6 digits, 10 min)
//!       └─▶ OtpChallenge (the code screen's handle)
//!  L2 verify_otp(challenge, 暗証キー) ──▶ Authenticated { account_id, security_stamp }
//!  L3 close_otp_screen(challenge) / heartbeat_otp_screen(challenge) — a closed screen kills the key
//!  L4 resend_otp(challenge) ─── new key, old key dead, attempt budget carried over
//! ```
//!
//! Each journey has a page of its own in [`guide`], with the states it goes through:
//! [registration](guide::registration), [login](guide::login),
//! [recovery](guide::recovery).
//!
//! ## The whole journey in code
//!
//! R1–R5 and L1–L2 with the in-memory adapters (the README's quick start; both run as
//! tests). A web application maps each step to one request handler.
//!
//! ```
//! use std::sync::Arc;
//! use kenpo_auth::domain::Password;
//! use kenpo_auth::mail::RecordingMailer;
//! use kenpo_auth::portal::NewCredentials;
//! use kenpo_auth::store::MemoryStore;
//! use kenpo_auth::testkit::fixtures;
//! use kenpo_auth::token::AuthKey;
//! use kenpo_auth::{InsurerProfile, Portal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mailer = RecordingMailer::new(); // in production: `mail::SmtpMailer` behind a queue
//! let portal = Portal::builder()
//!     .store(MemoryStore::new()) // in production: `store::SqliteStore` or `PostgresStore`
//!     .shared_mailer(Arc::new(mailer.clone()))
//!     .directory(fixtures::sample_roster()) // in production: your roster
//!     .insurer(InsurerProfile::new(
//!         "さくら健康保険組合",
//!         "さくらけんぽWeb",
//!         "no-reply@sakura-kenpo.example.jp",
//!         "さくら健康保険組合 適用グループ 03-0000-0000",
//!         "https://portal.sakura-kenpo.example.jp",
//!     ))
//!     .secret_key(1, *b"load-32-bytes-from-a-secret-vault")
//!     .build()?;
//! let email = "taro.yamada@example.jp";
//!
//! // R1 メールアドレス入力 → link 1.
//! portal.start_registration(email).await?;
//! // R2 the member opens link 1 and presses 【本人確認ページへ】.
//! let link1 = mailer.last_registration_link(email).ok_or("link 1")?;
//! let handle = portal.open_registration_link(&link1.token).await?;
//! // R3 本人確認 → the 認証キー on screen, link 2 by mail.
//! let claim = portal.identity_claim("999-123456-00", "1985-04-12", None)?;
//! let shown = portal.verify_identity(&handle, claim).await?;
//! // R4 link 2 and the 認証キー as the member typed it.
//! let link2 = mailer.last_verification_link(email).ok_or("link 2")?;
//! let key: AuthKey = shown.auth_key.expose_secret().parse()?;
//! let handle = portal.confirm_auth_key(&link2.token, &key).await?;
//! // R5 利用者情報入力 → the account.
//! let password = "さくらの花が咲く春の午後に散歩";
//! let credentials = NewCredentials {
//!     login_id: "yamada-t2026".into(),
//!     password: Password::new(password)?,
//!     password_confirmation: Password::new(password)?,
//!     nickname: None,
//! };
//! let registered = portal.complete_registration(&handle, credentials).await?;
//!
//! // L1 ログイン → 暗証キー by mail; L2 暗証キー入力 → logged in.
//! let challenge = portal.start_login("yamada-t2026", &Password::new(password)?).await?;
//! let code = mailer.last_otp(email).ok_or("暗証キー")?;
//! let session = portal.verify_otp(&challenge.challenge, &code).await?;
//! assert_eq!(session.account_id, registered.account_id);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layers
//!
//! - [`Portal`] ([`portal`]) — the async driver, one method per member action: load →
//!   decide → commit atomically → mail → answer.
//! - [`flow`] — the pure core: persisted state enums and synchronous transitions that take
//!   `now`, the [`Policy`] and an RNG as arguments.
//! - [`domain`] and [`token`] — values that cannot be wrong: what members type, parsed; the
//!   secrets they hold, typed; the digests stores keep instead.
//! - [`ports`] — the traits a host implements ([`Store`](ports::Store),
//!   [`Mailer`](ports::Mailer), [`MemberDirectory`](ports::MemberDirectory),
//!   [`Clock`](ports::Clock), [`AuditSink`](ports::AuditSink)), with
//!   [`store::MemoryStore`], [`mail::OutboxMailer`] and the [`testkit`] adapters shipped.
//!   [Implementing a port](guide::implementing_ports) shows each; the ports are
//!   [`async_trait`](macro@async_trait) traits, re-exported here so a host needs no dependency of its own.
//! - [`observe`] — what operators watch: a `tracing` span per step and, with the
//!   `metrics` feature, counters and a latency histogram, under stable names.
//! - [`testkit`] — what a host's own tests need: a manual clock, a roster in memory,
//!   typed access to the mailed links and codes, stores and mailers that fail on cue
//!   ([testing a host](guide::testing)).
//!
//! Start with [`Portal::builder`] and the quick start above.
//!
//! ## Features
//!
//! None is on by default; the library then has the in-memory store, the outbox and
//! recording mailers, and every journey.
//!
//! | feature | adds |
//! |---|---|
//! | `sqlite` | `store::SqliteStore`: the embedded store for single-machine hosts (sqlx, bundled SQLite, migrations included) |
//! | `postgres` | `store::PostgresStore`: the store for hosts that run several web servers (sqlx) |
//! | `queue` | `mail::QueuedMailer`: delivery off the request path, with retries, over any `Mailer` |
//! | `smtp` | `mail::SmtpMailer`: SMTP over lettre with rustls (implies `queue`) |
//! | `metrics` | step and audit-event counters and a step-latency histogram through the `metrics` facade ([`observe`]) |
//! | `testkit` | `testkit::conformance` and `store_conformance_tests!`: the store conformance suite for a host's own store |
//!
//! `browser-tests` only switches on this crate's own browser test suite. On docs.rs every
//! feature is documented, each item marked with the feature it needs.
// `unsafe_code` is forbidden for every target in Cargo.toml's [lints]. The library's own
// rules: every public item documented, nothing public by accident, and no `unwrap`,
// `expect`, `panic!` or indexing on a path reachable from input (STYLE 8). Its unit tests
// may panic (clippy.toml); integration tests, benchmarks and examples are crates of their
// own and are not bound by these.
#![warn(missing_docs, unreachable_pub)]
// docs.rs builds with `--cfg docsrs` (Cargo.toml's [package.metadata.docs.rs]): each
// feature-gated item then says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod catalog;
pub mod domain;
pub mod error;
pub mod flow;
pub mod guide;
pub mod lang;
pub mod mail;
pub mod model;
pub mod observe;
pub mod password_hash;
pub mod policy;
pub mod portal;
pub mod ports;
mod redact;
pub mod seal;
pub mod store;
pub mod testkit;
pub mod token;

pub use error::{Error, Rejection};
pub use lang::Lang;
pub use policy::{InsurerProfile, Policy};
pub use portal::Portal;

/// The attribute every port trait is written with, re-exported so a host implements
/// [`Store`](ports::Store), [`Mailer`](ports::Mailer) or
/// [`MemberDirectory`](ports::MemberDirectory) with `#[kenpo_auth::async_trait]` and needs
/// no `async-trait` dependency of its own (see
/// [Implementing a port](guide::implementing_ports)).
///
/// Write `async fn` in the `impl` block under this attribute; rustdoc shows the methods
/// desugared to `Pin<Box<dyn Future + Send + 'async_trait>>`, which is what the
/// attribute writes for you.
pub use async_trait::async_trait;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
