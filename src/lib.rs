//! kenpo-auth
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod domain;
pub mod error;
pub mod flow;
pub mod lang;
pub mod mail;
pub mod password_hash;
pub mod policy;
pub mod portal;
pub mod ports;
pub mod store;
pub mod testkit;
pub mod token;

pub use error::{Error, Rejection};
pub use lang::Lang;
pub use policy::{InsurerProfile, Policy};
pub use portal::Portal;
