//! Delivery of the store's outbox: the worker that retries what a request could not
//! send at once, and sends what a crashed server left behind.
//!
//! Every step writes its mails into the store in the same commit as its state (the
//! transactional outbox), tries them at once, and records the outcome. What failed
//! transiently — the SMTP server down, a full queue — waits in the outbox until a
//! [`DeliveryWorker`] retries it, with backoff, for as long as what it carries is useful
//! ([`crate::flow::delivery`]). Several workers, on one server or many, claim mails with
//! a lease, so none is sent twice while its lease runs; a worker that dies lets its mails
//! go when the lease ends, so a crash may send a mail twice, never zero times.
//!
//! Run one worker per server:
//!
//! ```no_run
//! # async fn host(portal: kenpo_auth::Portal) {
//! let worker = portal.delivery_worker().spawn();
//! // … serve requests …
//! worker.shutdown().await; // on SIGTERM: finishes the pass in flight
//! # }
//! ```

use std::time::Duration as StdDuration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::dispatch::Dispatch;
use crate::error::Error;

/// Delivers the outbox's due mails ([`Portal::delivery_worker`](crate::Portal::delivery_worker)).
///
/// Each pass claims up to [`batch`](Self::batch) due mails with a lease (so several
/// workers, on one server or many, never hold one mail at once), opens each, hands it to
/// the portal's mailer, and records the outcome: delivered; retried later with backoff;
/// or given up — refused for good, or no longer useful — with its allowance given back.
/// A mail whose key expired is not sent.
#[derive(Clone, Debug)]
#[must_use = "a worker does nothing until it runs"]
pub struct DeliveryWorker {
    dispatch: Dispatch,
    batch: usize,
    poll: StdDuration,
}

impl DeliveryWorker {
    /// A worker for a portal's outbox: 50 mails a pass, polling every 500 ms when idle.
    pub(crate) fn new(dispatch: Dispatch) -> Self {
        DeliveryWorker {
            dispatch,
            batch: 50,
            poll: StdDuration::from_millis(500),
        }
    }
}

impl DeliveryWorker {
    /// Mails claimed per pass (default 50).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// The wait between passes when the last one found nothing to do (default 500 ms).
    pub fn poll_interval(mut self, every: StdDuration) -> Self {
        self.poll = every;
        self
    }

    /// One pass: claims what is due now, tries it, records the outcomes.
    pub async fn run_once(&self) -> Result<DeliveryPass, Error> {
        let span = tracing::info_span!("kenpo.deliver", batch = self.batch);
        self.dispatch.deliver_due(self.batch).instrument(span).await
    }

    /// Runs passes until [`DeliveryHandle::shutdown`]: back to back while there is work,
    /// [`poll_interval`](Self::poll_interval) apart when there is none, and after a
    /// store failure (logged). Needs a Tokio runtime.
    pub fn spawn(self) -> DeliveryHandle {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                if *stopped.borrow() {
                    break;
                }
                // A pass in flight is never cut short: shutdown waits for it, so every
                // mail it claimed is sent and recorded (or left to its lease).
                let idle = match self.run_once().await {
                    Ok(pass) => pass.claimed == 0,
                    Err(e) => {
                        tracing::warn!(target: "kenpo_auth::mail", error = %e, "outbox pass failed; retrying");
                        true
                    }
                };
                if idle {
                    // Wakes at the poll interval, or at once on shutdown.
                    let _ = tokio::time::timeout(self.poll, stopped.changed()).await;
                }
            }
        });
        DeliveryHandle {
            stop,
            task: Some(task),
        }
    }
}

/// What one [`DeliveryWorker::run_once`] pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryPass {
    /// Mails claimed.
    pub claimed: usize,
    /// Handed to the mail system.
    pub delivered: usize,
    /// Failed transiently and scheduled again.
    pub retrying: usize,
    /// Given up.
    pub given_up: usize,
}

/// A running [`DeliveryWorker`]. Dropping it stops the worker after its current pass;
/// [`shutdown`](Self::shutdown) also waits for that pass.
#[derive(Debug)]
pub struct DeliveryHandle {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DeliveryHandle {
    /// Stops the worker and waits for the pass in flight: what it claimed is sent and
    /// recorded; what it did not claim stays in the outbox for the next start.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DeliveryHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
