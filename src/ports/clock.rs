//! The `Clock` port.

use time::OffsetDateTime;

/// Where `now` comes from. The flow core never reads the clock itself; the portal asks
/// this port once per member action and passes the instant down.
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
