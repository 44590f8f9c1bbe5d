//! Mail: typed messages, their Japanese and English wording, and development mailers.

pub mod message;
#[cfg(feature = "queue")]
pub mod queue;
pub mod render;
#[cfg(feature = "smtp")]
pub mod smtp;

pub use message::*;
#[cfg(feature = "queue")]
pub use queue::{QueueConfig, QueueError, QueuedMailer};
pub use render::{DefaultTemplates, MailTemplates};
#[cfg(feature = "smtp")]
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpCredentials, SmtpError, SmtpMailer, SmtpSecurity};
