//! The `Clock` port.

use time::OffsetDateTime;

/// Where `now` comes from. The flow core never reads the clock itself; the portal asks
/// this port once per member action and passes the instant down.
///
/// # Implementing this port
///
/// Production hosts use [`SystemClock`] (the default) and tests
/// [`ManualClock`](crate::testkit::ManualClock). Write your own only when `now` must come
/// from elsewhere — a staging portal that runs ahead to show what members see when links
/// expire, say. Answer UTC; every deadline is `now >= expires_at`, so a clock that jumps
/// forward expires links and codes early, and one that goes back keeps them alive longer.
/// `now` is synchronous and called once per step: do not block in it.
///
/// ```
/// use kenpo_auth::ports::Clock;
/// use time::{Duration, OffsetDateTime};
///
/// /// The system clock, moved forward by a fixed offset (a staging environment).
/// struct Ahead(Duration);
///
/// impl Clock for Ahead {
///     fn now(&self) -> OffsetDateTime {
///         OffsetDateTime::now_utc() + self.0
///     }
/// }
///
/// let clock = Ahead(Duration::hours(3));
/// assert!(clock.now() > OffsetDateTime::now_utc() + Duration::minutes(179));
/// ```
pub trait Clock: Send + Sync {
    /// The current instant (UTC).
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}
