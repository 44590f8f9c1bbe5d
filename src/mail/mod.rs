//! Mail: typed messages, their Japanese and English wording, and the mailers: development
//! ones (outbox, recording), SMTP (feature `smtp`) and a background queue (feature `queue`).

pub mod delivery;
pub(crate) mod dispatch;
pub mod message;
pub mod outbox;
#[cfg(feature = "queue")]
#[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
pub mod queue;
pub mod recording;
pub mod render;
pub(crate) mod sealed;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub mod smtp;
pub(crate) mod transport;

pub use delivery::{DeliveryHandle, DeliveryPass, DeliveryWorker};
pub use message::*;
pub use outbox::OutboxMailer;
#[cfg(feature = "queue")]
#[cfg_attr(docsrs, doc(cfg(feature = "queue")))]
pub use queue::{QueueConfig, QueueError, QueuedMailer};
pub use recording::{RecordingMailer, SimulatedMailFailure};
pub use render::{DefaultTemplates, MailTemplates};
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpCredentials, SmtpError, SmtpMailer, SmtpSecurity};
