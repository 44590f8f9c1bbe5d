//! Mail: typed messages, their Japanese and English wording, and development mailers.

pub mod message;
pub mod outbox;
pub mod recording;
pub mod render;

pub use message::*;
pub use outbox::OutboxMailer;
pub use recording::{RecordingMailer, SimulatedMailFailure};
pub use render::{DefaultTemplates, MailTemplates};
