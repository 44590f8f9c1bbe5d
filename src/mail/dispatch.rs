//! The outbox as requests and the [`DeliveryWorker`](super::DeliveryWorker) carry it out:
//! a step's mails become outbox rows in its commit; once committed, the request tries
//! them at once and records how that went; what failed is retried by a worker for as
//! long as it is useful. The rules — when to retry, when to give up, what to give back,
//! how long a receipt lives — are the core's ([`crate::flow::delivery`]).
//!
//! It is the portal's one part that talks to the mailer, and the worker needs nothing
//! else of the portal: a [`Dispatch`] holds the store, the mailer, the seal keys and the
//! transport's memory, and is cheap to clone.

use std::sync::Arc;

use time::OffsetDateTime;

use super::sealed;
use super::transport::Transport;
use super::{DeliveryPass, MailMessage, MailTemplates, OutgoingMail};
use crate::domain::EmailAddress;
use crate::error::{Error, Rejection};
use crate::flow::delivery::{self, Attempt, DeliverySchedule, Settled};
use crate::flow::step::Mail;
use crate::model::{
    AuditEvent, AuditKind, Delivery, Expect, MailId, OutboxMail, Refund, Undeliverable, Version,
    Versioned,
};
use crate::policy::InsurerProfile;
use crate::ports::{
    self, AuditSink, Clock, Commit, CommitOutcome, CounterWrite, MailError, MailWrite, Mailer,
    Store,
};
use crate::seal::SealKeyring;

/// Compare-and-set rounds when recording deliveries races with a refunded counter.
const MAX_RECORD_ROUNDS: usize = 8;

/// What a portal sends mail with; see the [module docs](self).
#[derive(Clone)]
pub(crate) struct Dispatch(Arc<Parts>);

pub(crate) struct Parts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) templates: Arc<dyn MailTemplates>,
    pub(crate) profile: InsurerProfile,
    pub(crate) seals: Arc<SealKeyring>,
    pub(crate) schedule: DeliverySchedule,
    pub(crate) transport: Transport,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("schedule", &self.0.schedule)
            .finish_non_exhaustive()
    }
}

/// One outbox row a step writes, with the mail it carries (`None` for a stand-in).
pub(crate) struct Queued {
    pub(crate) row: OutboxMail,
    pub(crate) mail: Option<OutgoingMail>,
}

/// Records `event` in the host's audit sink and counts it ([`crate::observe`]).
pub(crate) fn audit(sink: &dyn AuditSink, event: AuditEvent) {
    crate::observe::audited(&event);
    sink.record(event);
}

impl Dispatch {
    pub(crate) fn new(parts: Parts) -> Self {
        Dispatch(Arc::new(parts))
    }

    fn now(&self) -> OffsetDateTime {
        self.0.clock.now()
    }

    fn audit(&self, event: AuditEvent) {
        audit(&*self.0.audit, event);
    }

    /// The outbox rows of a step's `mails`: the first takes `receipt` (when the step
    /// answers with one, with the deadline the core gave it) and the allowance it was
    /// charged; with a receipt and no mail, a stand-in row takes them, so the request
    /// writes what a mailing one does.
    pub(crate) fn queue(
        &self,
        mails: Vec<Mail>,
        refunds: Vec<Refund>,
        receipt: Option<(MailId, Option<OffsetDateTime>)>,
        now: OffsetDateTime,
    ) -> Vec<Queued> {
        let mut rng = rand::rng();
        let mut refunds = Some(refunds);
        let mut row =
            |id: MailId, mail: Option<OutgoingMail>, receipted: Option<OffsetDateTime>| {
                let sealed = sealed::seal(&self.0.seals, &id, mail.as_ref(), &mut rng);
                let (kind, useful_until) = mail.as_ref().map_or((delivery::STAND_IN, None), |m| {
                    (m.message.kind(), m.message.useful_until())
                });
                let useful_until = receipted.or(useful_until);
                let refunds = refunds.take().unwrap_or_default();
                let schedule = &self.0.schedule;
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
                    .unwrap_or_else(|| (MailId::generate(&mut rand::rng()), None)),
            };
            queued.push(row(id, Some(self.render(to, message)), receipted));
        }
        queued.extend(receipts.next().map(|(id, until)| row(id, None, until)));
        queued
    }

    /// Renders one mail in the insurer's language.
    fn render(&self, to: EmailAddress, message: MailMessage) -> OutgoingMail {
        let profile = &self.0.profile;
        let lang = profile.lang;
        let rendered = self.0.templates.render(&message, profile, lang);
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
    pub(crate) async fn deliver_committed(&self, queued: Vec<Queued>) {
        if queued.is_empty() {
            return;
        }
        let mut tried = Vec::with_capacity(queued.len());
        for Queued { row, mail } in queued {
            let attempt = self.try_send(&row, mail.as_ref()).await;
            let settled = delivery::after_try(&row, attempt, self.now(), &self.0.schedule);
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
        let transport = &self.0.transport;
        let Some(mail) = mail else {
            return delivery::stand_in(transport.stand_in().await);
        };
        let attempt = match transport.send(&*self.0.mailer, mail).await {
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
    fn audit_settled(&self, mail: &OutboxMail) {
        if let Delivery::Failed { at, reason } = mail.delivery {
            self.audit(
                AuditEvent::new(AuditKind::MailGivenUp, at)
                    .detail(format!("{}: {reason:?}", mail.kind)),
            );
        }
    }

    /// One delivery pass of [`DeliveryWorker::run_once`](super::DeliveryWorker::run_once):
    /// claims up to `batch` due mails, tries each, records the outcomes.
    pub(crate) async fn deliver_due(&self, batch: usize) -> Result<DeliveryPass, Error> {
        let now = self.now();
        let schedule = self.0.schedule;
        let claimed = self
            .0
            .store
            .claim_mails(now, now.saturating_add(schedule.lease), batch)
            .await?;
        let mut pass = DeliveryPass {
            claimed: claimed.len(),
            ..DeliveryPass::default()
        };
        let mut claimed = claimed;
        delivery::stand_ins_last(&mut claimed);
        let mut tried = Vec::with_capacity(claimed.len());
        for row in claimed {
            let settled = self.try_claimed(&row.value).await;
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

    /// One claimed row: given up if what it carries expired — unopened: a dead code is
    /// never decrypted again — or if it no longer opens; otherwise tried.
    async fn try_claimed(&self, row: &OutboxMail) -> Settled {
        if let Some(expired) = delivery::before_try(row, self.now()) {
            return expired;
        }
        match sealed::open(&self.0.seals, &row.id, &row.sealed) {
            Ok(mail) => {
                let attempt = self.try_send(row, mail.as_ref()).await;
                delivery::after_try(row, attempt, self.now(), &self.0.schedule)
            }
            Err(e) => {
                tracing::error!(target: "kenpo_auth::mail", error = %e, kind = %row.kind, "outbox mail does not open; given up");
                delivery::give_up(row, Undeliverable::Unreadable, self.now())
            }
        }
    }

    /// Records tries (and give-ups) in one commit with compare-and-set: each row at the
    /// version its claim left, and for a mail given up, its refunded allowance. A row
    /// another claimant moved meanwhile (its lease ended) is theirs now and left out.
    async fn record(&self, mut tried: Vec<(Versioned<OutboxMail>, Settled)>) -> Result<(), Error> {
        let store = &self.0.store;
        for _ in 0..MAX_RECORD_ROUNDS {
            let refunds: Vec<&Refund> = tried
                .iter()
                .filter(|(_, s)| s.refund)
                .flat_map(|(_, s)| s.mail.refunds.iter())
                .collect();
            let mut commit = Commit::default();
            if !refunds.is_empty() {
                let load = refunds
                    .iter()
                    .fold(ports::Load::new(), |load, r| load.counter(r.key.clone()));
                let loaded = store.load(&load).await?;
                let read: Vec<_> = refunds
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (*r, loaded.counters.get(i).and_then(Option::as_ref)))
                    .collect();
                commit.counters = delivery::refunds(&read)
                    .into_iter()
                    .map(|hit| CounterWrite {
                        expect: hit.expect,
                        counter: hit.counter,
                    })
                    .collect();
            }
            for (claimed, settled) in &tried {
                commit.mails.push(MailWrite {
                    expect: Expect::At(claimed.version),
                    mail: settled.mail.clone(),
                });
            }
            match store.commit(commit).await? {
                CommitOutcome::Committed => {
                    for (_, settled) in &tried {
                        self.audit_settled(&settled.mail);
                    }
                    return Ok(());
                }
                _ => {
                    // Keep the rows still at the version we hold; a counter that moved
                    // is simply re-read next round.
                    let mut still = Vec::with_capacity(tried.len());
                    for (claimed, settled) in tried {
                        let now = store.find_mail(&claimed.value.id).await?;
                        if now.is_some_and(|n| n.version == claimed.version) {
                            still.push((claimed, settled));
                        }
                    }
                    tried = still;
                    if tried.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
        Err(Error::Rejected(Rejection::Busy))
    }
}
