//! The three mailed-link journeys (registration links 1 and 2, password reset, e-mail
//! change) share one landing: a GET that says what the link would do and consumes
//! nothing — mail scanners follow links — before the member's POST opens it.

use super::Portal;
use super::driver::Load;
use crate::error::Error;
use crate::flow::LinkStatus;
use crate::token::MailedLink;

impl Portal {
    /// The GET of a link landing: what `token` would do now. Digests are separated by
    /// purpose, so a link of one kind never finds another kind's flow.
    pub(super) async fn inspect_link<T: MailedLink>(&self, token: &T) -> Result<LinkStatus, Error> {
        let load = Load {
            flow: token.digest_candidates(&self.inner.keys),
            ..Load::default()
        };
        let loaded = self.load(&load).await?;
        let now = self.now();
        Ok(match loaded.found() {
            Some((found, digest)) => found.value.state.link_status(digest, now),
            None => LinkStatus::Invalid,
        })
    }
}
