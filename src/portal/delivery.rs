//! The outbox's two entry points for hosts: a receipt's status, and the worker. Sending
//! and recording is the portal's dispatch ([`crate::mail::dispatch`]); the rules are the
//! core's ([`crate::flow::delivery`]).

use super::Portal;
use crate::error::Error;
use crate::flow::delivery::MailStatus;
use crate::model::MailId;

impl Portal {
    /// Where the mail a step's receipt names is in its delivery: sent, still being
    /// tried (「メールの送信に時間がかかっています」), or given up (the member may ask
    /// again; its allowance was given back). `None` for a receipt the store does not
    /// know (never issued, or purged a day after its mail stopped mattering).
    ///
    /// A receipt for a request that mailed nothing — an address with no account, a
    /// spent budget — names a stand-in that answers like a mail (SEC-07, SEC-37,
    /// SEC-40).
    pub async fn mail_status(&self, receipt: &MailId) -> Result<Option<MailStatus>, Error> {
        let mail = self.inner.store.find_mail(receipt).await?;
        Ok(mail.map(|m| MailStatus::of(&m.value)))
    }

    /// A worker that delivers what the outbox holds: retries after transient failures,
    /// mails whose first try never happened (the server died before it), mails of other
    /// servers whose lease ended. Run one per server with
    /// [`DeliveryWorker::spawn`](crate::mail::DeliveryWorker::spawn), or call
    /// [`DeliveryWorker::run_once`](crate::mail::DeliveryWorker::run_once) from the
    /// host's own scheduler.
    pub fn delivery_worker(&self) -> crate::mail::DeliveryWorker {
        crate::mail::DeliveryWorker::new(self.inner.dispatch.clone())
    }
}
