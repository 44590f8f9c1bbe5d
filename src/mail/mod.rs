//! Mail: typed messages, their Japanese and English wording, and development mailers.

pub mod message;
pub mod render;

pub use message::*;
pub use render::{DefaultTemplates, MailTemplates};
