//! Temporary: replaced by the real templates.
use crate::lang::Lang;
use crate::mail::{MailMessage, RenderedMail};
use crate::policy::InsurerProfile;
/// Wording.
pub trait MailTemplates: Send + Sync {
    /// Render.
    fn render(&self, message: &MailMessage, profile: &InsurerProfile, lang: Lang) -> RenderedMail;
}
/// Default.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultTemplates;
impl MailTemplates for DefaultTemplates {
    fn render(&self, message: &MailMessage, _p: &InsurerProfile, _l: Lang) -> RenderedMail {
        RenderedMail {
            subject: message.kind().to_owned(),
            body: String::new(),
        }
    }
}
