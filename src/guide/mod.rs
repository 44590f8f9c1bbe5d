//! Guides: a page per journey, with the states it goes through and the
//! [`Portal`](crate::Portal) calls that move it, and the pages a host needs to plug in its
//! own parts and to test them.
//!
//! - [`registration`] — 新規利用登録: R1–R5, and R2' for 事前登録 members.
//! - [`login`] — ログイン with the mailed 暗証キー: L1–L4.
//! - [`recovery`] — ログインID・パスワードを忘れた方.
//! - [`implementing_ports`] — plugging in your database, mail system, roster, clock and
//!   audit log: [`Store`](crate::ports::Store), [`Mailer`](crate::ports::Mailer),
//!   [`MemberDirectory`](crate::ports::MemberDirectory), [`Clock`](crate::ports::Clock),
//!   [`AuditSink`](crate::ports::AuditSink).
//! - [`testing`] — testing a host with [`testkit`](crate::testkit): typed mails, a clock
//!   you move, stores and mailers that fail on cue.
//!
//! These modules hold no code. Every example on them is compiled and run as a test of the
//! crate, so what they show works with this version.

#[doc = include_str!("registration.md")]
pub mod registration {}

#[doc = include_str!("login.md")]
pub mod login {}

#[doc = include_str!("recovery.md")]
pub mod recovery {}

#[doc = include_str!("implementing_ports.md")]
pub mod implementing_ports {}

#[doc = include_str!("testing.md")]
pub mod testing {}
