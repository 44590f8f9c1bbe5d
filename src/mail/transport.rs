//! What a portal remembers about its mail transport between requests: whether the last
//! real try failed, and how long tries take.
//!
//! A stand-in's "delivery" follows both — it comes to what the last real try came to,
//! after as long as a real try takes — so a receipt that names no mail reads as one that
//! does, outage or not, and a request that mails nothing takes as long as one that hands
//! a mail to a slow server (SEC-07, SEC-37, SEC-40).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use crate::mail::OutgoingMail;
use crate::ports::{MailError, Mailer};

/// Below this a stand-in does not wait: a timer costs more than it would hide.
const STAND_IN_MIN_WAIT: StdDuration = StdDuration::from_micros(200);

/// A portal's mailer as its tries went lately (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Transport {
    failing: AtomicBool,
    /// A moving average (weight 1/8) of the real tries' durations, in microseconds.
    took_micros: AtomicU64,
}

impl Transport {
    /// Hands `mail` to `mailer`, counting the try's duration into the average and
    /// remembering whether it failed transiently (a refusal for good says nothing about
    /// the transport).
    pub(crate) async fn send(
        &self,
        mailer: &dyn Mailer,
        mail: &OutgoingMail,
    ) -> Result<(), MailError> {
        let began = tokio::time::Instant::now();
        let sent = mailer.send(mail).await;
        self.took(began.elapsed());
        let failing = matches!(&sent, Err(e) if !matches!(e, MailError::Permanent(_)));
        self.failing.store(failing, Ordering::Relaxed);
        sent
    }

    /// A stand-in's try: waits as long as a real one takes lately, and answers whether
    /// the last real try failed.
    pub(crate) async fn stand_in(&self) -> bool {
        let wait = StdDuration::from_micros(self.took_micros.load(Ordering::Relaxed));
        if wait >= STAND_IN_MIN_WAIT {
            tokio::time::sleep(wait).await;
        }
        self.failing.load(Ordering::Relaxed)
    }

    /// Counts one real try's duration into the average.
    fn took(&self, elapsed: StdDuration) {
        let sample = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .took_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    sample
                } else {
                    avg - avg / 8 + sample / 8
                })
            });
    }
}
