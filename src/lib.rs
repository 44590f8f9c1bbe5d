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
//! ## Layers
//!
//! - [`Portal`] ([`portal`]) — the async driver, one method per member action: load →
//!   decide → commit atomically → mail → answer.
//! - [`flow`] — the pure core: persisted state enums and synchronous transitions that take
//!   `now`, the [`Policy`] and an RNG as arguments.
//! - [`domain`] and [`token`] — values that cannot be wrong: what members type, parsed; the
//!   secrets they hold, typed; the digests stores keep instead.
//! - [`ports`] — the traits a host implements (`Store`, `Mailer`, `MemberDirectory`, `Clock`,
//!   `AuditSink`), with [`store::MemoryStore`], [`mail::OutboxMailer`] and the
//!   [`testkit`] adapters shipped.
//!
//! Start with [`Portal::builder`] and the README's quick start.
// `unsafe_code` is forbidden for every target in Cargo.toml's [lints]. The library's own
// rules: every public item documented, nothing public by accident, and no `unwrap`,
// `expect`, `panic!` or indexing on a path reachable from input (STYLE 8). Its unit tests
// may panic (clippy.toml); integration tests, benchmarks and examples are crates of their
// own and are not bound by these.
#![warn(missing_docs, unreachable_pub)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod domain;
pub mod error;
pub mod flow;
pub mod lang;
pub mod mail;
pub mod model;
pub mod password_hash;
pub mod policy;
pub mod portal;
pub mod ports;
mod redact;
pub mod store;
pub mod testkit;
pub mod token;

pub use error::{Error, Rejection};
pub use lang::Lang;
pub use policy::{InsurerProfile, Policy};
pub use portal::Portal;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
