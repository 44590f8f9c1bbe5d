//! The mailed links three journeys wait on — link 1 and link 2 of 新規利用登録, the
//! password-reset link and the address-change link — and what is common to them: a GET
//! of a link's landing says what a POST would do without consuming anything (mail
//! scanners follow links) — [`LinkStatus`] — and a POST may consume it only when that
//! status is valid. Link 1 and the reset link then bind the flow to the browser that
//! posted (`open`); link 2 and the address-change link need more than the link (the
//! 認証キー, the session) and check their status themselves.

use time::OffsetDateTime;

use super::Env;
use crate::error::Rejection;
use crate::token::{FlowHandle, TokenDigest};

/// What a link's landing page (GET) may say, without consuming anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkStatus {
    /// The link works: show the page with the button that POSTs it.
    Valid {
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// The link was used already.
    Used,
    /// The link has expired.
    Expired,
    /// Not a link of ours.
    Invalid,
}

impl LinkStatus {
    /// The status of `link` on a flow: valid or expired when it is the link the current
    /// step waits for (`live` is that step's deadline), used when the flow spent it,
    /// otherwise not ours.
    pub(crate) fn on(
        waiting: Option<(&TokenDigest, OffsetDateTime)>,
        keys: &[TokenDigest],
        link: &TokenDigest,
        now: OffsetDateTime,
    ) -> Self {
        let live = waiting.and_then(|(l, at)| (l == link).then_some(at));
        Self::of(live, keys.contains(link), now)
    }

    pub(crate) fn of(live: Option<OffsetDateTime>, spent: bool, now: OffsetDateTime) -> Self {
        match live {
            Some(expires_at) if now >= expires_at => LinkStatus::Expired,
            Some(expires_at) => LinkStatus::Valid { expires_at },
            None if spent => LinkStatus::Used,
            None => LinkStatus::Invalid,
        }
    }

    /// The POST of the link: `Ok` when it may be consumed now, otherwise what the member
    /// is told.
    pub(crate) fn openable(self) -> Result<(), Rejection> {
        match self {
            LinkStatus::Valid { .. } => Ok(()),
            LinkStatus::Used => Err(Rejection::LinkUsed),
            LinkStatus::Expired => Err(Rejection::Expired),
            LinkStatus::Invalid => Err(Rejection::LinkInvalid),
        }
    }
}

/// The POST of a link whose landing says `status`: what the member is told when it may
/// not be consumed now, otherwise a fresh handle binding the flow to this browser and
/// the digest the flow keeps of it.
pub(crate) fn open<R: rand::CryptoRng + ?Sized>(
    status: LinkStatus,
    env: Env<'_>,
    rng: &mut R,
) -> Result<(FlowHandle, TokenDigest), Rejection> {
    status.openable()?;
    Ok(FlowHandle::issue(env.keys, rng))
}
