//! The outbox, as the driver carries it out: a step's mails become outbox rows in its
//! commit; once committed, the request tries them at once and records how that went;
//! what failed is retried by a [`DeliveryWorker`] for as long as it is useful. The
//! rules — when to retry, when to give up, what to give back — are the core's
//! ([`crate::flow::delivery`]).

use time::OffsetDateTime;

use super::Portal;
use crate::error::Error;
use crate::flow::delivery::{self, Attempt, MailStatus, Settled};
use crate::flow::step::Mail;
use crate::mail::sealed;
use crate::mail::{DeliveryPass, MailMessage, OutgoingMail};
use crate::model::{
    AuditEvent, AuditKind, Delivery, MailId, OutboxMail, Refund, Undeliverable, Version, Versioned,
};
use crate::ports::MailError;

/// One outbox row a step writes, with the mail it carries (`None` for a stand-in).
pub(super) struct Queued {
    pub(super) row: OutboxMail,
    pub(super) mail: Option<OutgoingMail>,
}

impl Portal {
    /// The outbox rows of a step's `mails`: the first takes `receipt` (when the step
    /// answers with one, with the deadline the core gave it) and the allowance it was
    /// charged; with a receipt and no mail, a stand-in row takes them, so the request
    /// writes what a mailing one does.
    pub(super) fn queue(
        &self,
        mails: Vec<Mail>,
        refunds: Vec<Refund>,
        receipt: Option<(MailId, Option<OffsetDateTime>)>,
        now: OffsetDateTime,
    ) -> Vec<Queued> {
        let mut rng = Self::rng();
        let mut refunds = Some(refunds);
        let mut row =
            |id: MailId, mail: Option<OutgoingMail>, receipted: Option<OffsetDateTime>| {
                let sealed = sealed::seal(&self.inner.seals, &id, mail.as_ref(), &mut rng);
                let (kind, useful_until) = mail.as_ref().map_or(("stand_in", None), |m| {
                    (m.message.kind(), m.message.useful_until())
                });
                let useful_until = receipted.or(useful_until);
                let refunds = refunds.take().unwrap_or_default();
                let schedule = &self.inner.delivery;
                let row = delivery::enqueue(id, kind, sealed, useful_until, refunds, now, schedule);
                Queued { row, mail }
            };
        let mut receipts = receipt.into_iter();
        let mut queued: Vec<Queued> = Vec::with_capacity(mails.len() + 1);
        for Mail { to, message, id } in mails {
            let (id, receipted) = match id {
                Some(id) => (id, None),
                None => receipts
                    .next()
                    .unwrap_or_else(|| (MailId::generate(&mut Self::rng()), None)),
            };
            queued.push(row(id, Some(self.render(to, message)), receipted));
        }
        queued.extend(receipts.next().map(|(id, until)| row(id, None, until)));
        queued
    }

    /// Renders one mail in the insurer's language.
    fn render(&self, to: crate::domain::EmailAddress, message: MailMessage) -> OutgoingMail {
        let lang = self.inner.profile.lang;
        let rendered = self
            .inner
            .templates
            .render(&message, &self.inner.profile, lang);
        OutgoingMail {
            to,
            lang,
            message,
            rendered,
        }
    }

    /// Tries the rows a step just committed (leased to this request), then records how
    /// each try went. A failure here loses nothing: the row stays in the outbox and a
    /// worker retries it once its lease ends or its retry falls due.
    pub(super) async fn deliver_committed(&self, queued: Vec<Queued>) {
        if queued.is_empty() {
            return;
        }
        let mut tried = Vec::with_capacity(queued.len());
        for Queued { row, mail } in queued {
            let attempt = self.try_send(&row, mail.as_ref()).await;
            let settled = delivery::after_try(&row, attempt, self.now(), &self.inner.delivery);
            let committed = Versioned {
                version: Version::FIRST,
                value: row,
            };
            tried.push((committed, settled));
        }
        // The mails went (or not) already; a failure to record it is retried by the
        // worker after the lease, at worst sending one mail twice — never losing one.
        if let Err(e) = self.record(tried).await {
            tracing::warn!(target: "kenpo_auth::mail", error = %e, "delivery not recorded; the outbox worker retries it");
        }
    }

    /// One try of one row: hands the mail to the mailer, or — for a stand-in — comes to
    /// what the transport's last real try came to.
    async fn try_send(&self, row: &OutboxMail, mail: Option<&OutgoingMail>) -> Attempt {
        let transport = &self.inner.transport;
        let Some(mail) = mail else {
            return delivery::stand_in(transport.stand_in().await);
        };
        let attempt = match transport.send(&*self.inner.mailer, mail).await {
            Ok(()) => Attempt::Delivered,
            Err(MailError::Permanent(e)) => {
                tracing::warn!(target: "kenpo_auth::mail", error = %e, kind = %row.kind, to = %mail.to.masked(), "mail refused");
                Attempt::Permanent
            }
            Err(e) => {
                tracing::warn!(target: "kenpo_auth::mail", error = %e, kind = %row.kind, to = %mail.to.masked(), attempts = row.attempts + 1, "mail not sent; will retry");
                Attempt::Transient
            }
        };
        if attempt != Attempt::Delivered {
            self.audit(
                AuditEvent::new(AuditKind::MailFailed, self.now())
                    .email(mail.to.masked())
                    .detail(row.kind.clone()),
            );
        }
        attempt
    }

    /// The audit event of a mail given up.
    pub(super) fn audit_settled(&self, mail: &OutboxMail) {
        if let Delivery::Failed { at, reason } = mail.delivery {
            self.audit(
                AuditEvent::new(AuditKind::MailGivenUp, at)
                    .detail(format!("{}: {reason:?}", mail.kind)),
            );
        }
    }

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
        crate::mail::DeliveryWorker::new(self.clone())
    }

    /// One delivery pass of [`DeliveryWorker::run_once`](crate::mail::DeliveryWorker::run_once):
    /// claims up to `batch` due mails, tries each, records the outcomes.
    pub(crate) async fn deliver_due(&self, batch: usize) -> Result<DeliveryPass, Error> {
        let now = self.now();
        let schedule = self.inner.delivery;
        let claimed = self
            .inner
            .store
            .claim_mails(now, now.saturating_add(schedule.lease), batch)
            .await?;
        let mut pass = DeliveryPass {
            claimed: claimed.len(),
            ..DeliveryPass::default()
        };
        // Real mails first: the stand-ins of the pass then follow what the transport did
        // in it, so a stand-in and a mail claimed together settle alike.
        let mut opened: Vec<_> = claimed
            .into_iter()
            .map(|row| {
                let mail = sealed::open(&self.inner.seals, &row.value.id, &row.value.sealed);
                (row, mail)
            })
            .collect();
        opened.sort_by_key(|(_, mail)| matches!(mail, Ok(None)));
        let mut tried = Vec::with_capacity(opened.len());
        for (row, mail) in opened {
            let settled = self.try_claimed(&row.value, mail).await;
            match settled.mail.delivery {
                Delivery::Delivered { .. } => pass.delivered += 1,
                Delivery::Failed { .. } => pass.given_up += 1,
                Delivery::Pending => pass.retrying += 1,
            }
            tried.push((row, settled));
        }
        if !tried.is_empty() {
            self.record(tried).await?;
        }
        Ok(pass)
    }

    /// One claimed row: given up if what it carries expired or it no longer opens,
    /// otherwise tried.
    async fn try_claimed(
        &self,
        row: &OutboxMail,
        opened: Result<Option<OutgoingMail>, sealed::Unreadable>,
    ) -> Settled {
        if let Some(expired) = delivery::before_try(row, self.now()) {
            return expired;
        }
        match opened {
            Ok(mail) => {
                let attempt = self.try_send(row, mail.as_ref()).await;
                delivery::after_try(row, attempt, self.now(), &self.inner.delivery)
            }
            Err(e) => {
                tracing::error!(target: "kenpo_auth::mail", error = %e, kind = %row.kind, "outbox mail does not open; given up");
                delivery::give_up(row, Undeliverable::Unreadable, self.now())
            }
        }
    }
}
