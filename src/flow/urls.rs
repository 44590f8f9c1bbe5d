//! Where mailed links and notices point. Configuration, not policy: the core writes
//! mails with these, the host serves the pages.

use crate::policy::InsurerProfile;

/// Paths (under the profile's base URL) of the pages mailed links land on. The host
/// serves them; the defaults match the example portal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkPaths {
    /// Login page (mentioned in notices).
    pub login: String,
    /// Landing page of link 1 (R2).
    pub registration: String,
    /// Landing page of link 2 (R4).
    pub verification: String,
    /// Landing page of the password-reset link.
    pub password_reset: String,
    /// Landing page of the e-mail-change confirmation link.
    pub email_change: String,
}

impl Default for LinkPaths {
    fn default() -> Self {
        LinkPaths {
            login: "/login".to_owned(),
            registration: "/registration/link".to_owned(),
            verification: "/registration/verify".to_owned(),
            password_reset: "/password-reset/link".to_owned(),
            email_change: "/email-change/confirm".to_owned(),
        }
    }
}

/// The absolute addresses mails carry: the insurer's base URL and the [`LinkPaths`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    base_url: String,
    paths: LinkPaths,
}

impl Urls {
    /// The addresses under `profile`'s base URL.
    pub fn new(profile: &InsurerProfile, paths: LinkPaths) -> Self {
        Urls {
            base_url: profile.base_url.clone(),
            paths,
        }
    }

    /// The paths.
    pub fn paths(&self) -> &LinkPaths {
        &self.paths
    }

    /// The login page.
    pub fn login(&self) -> String {
        format!("{}{}", self.base_url, self.paths.login)
    }

    /// `{base_url}{path}?token={token}`.
    pub fn link(&self, path: impl FnOnce(&LinkPaths) -> &str, token: &str) -> String {
        format!("{}{}?token={}", self.base_url, path(&self.paths), token)
    }
}
