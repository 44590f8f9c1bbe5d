//! One step value for every journey: what a member's action writes, mails, records and
//! answers.
//!
//! A decision function in this module tree takes what the driver loaded, `now`, the
//! policy and an RNG, and returns a [`Step`]. The driver ([`crate::Portal`]) carries it
//! out in a fixed order: commit every [`Write`] atomically with compare-and-set; on a
//! lost race, load and decide again; once committed, send the mails, record the audit
//! events, and only then give the member the answer. A step with no writes changes
//! nothing and is answered at once.

use crate::domain::EmailAddress;
use crate::error::Rejection;
use crate::flow::throttle::CounterHit;
use crate::flow::{FlowRecord, FlowState};
use crate::mail::MailMessage;
use crate::model::{Account, AuditEvent, Expect, FlowId, MailId, Refund, Versioned};

/// An account the store may create. Only the core makes one — R5 from a flow whose
/// identity was verified at R3–R4 ([`crate::flow::registration::complete`]), and the
/// insurer's 事前登録 from an eligible roster entry — so no code path creates an account
/// without that proof. Not `Clone`, not `Deserialize`, no public constructor:
///
/// ```compile_fail
/// # fn f(account: kenpo_auth::model::Account) {
/// let forged = kenpo_auth::flow::step::NewAccount(account);
/// # }
/// ```
///
/// ```compile_fail
/// # fn f(account: kenpo_auth::model::Account) {
/// let forged = kenpo_auth::flow::step::Write::CreateAccount(account);
/// # }
/// ```
#[derive(Debug)]
pub struct NewAccount(Account);

impl NewAccount {
    /// Only the core's transitions call this.
    pub(in crate::flow) fn new(account: Account) -> Self {
        NewAccount(account)
    }

    /// The account to create.
    pub fn account(&self) -> &Account {
        &self.0
    }

    /// The account, for the store.
    pub fn into_account(self) -> Account {
        self.0
    }
}

/// One write of a step.
#[derive(Debug)]
#[non_exhaustive]
pub enum Write {
    /// Create an account (fails on a taken login ID, address or member).
    CreateAccount(NewAccount),
    /// Insert (`Expect::Absent`) or replace a flow.
    Flow {
        /// What the store must find.
        expect: Expect,
        /// The flow.
        id: FlowId,
        /// Its new state.
        state: FlowState,
    },
    /// Replace an account read at `expect`'s version.
    Account {
        /// What the store must find.
        expect: Expect,
        /// The account's new content.
        account: Account,
    },
    /// Count one event on a throttle counter.
    Counter(CounterHit),
}

/// A mail to send once the step is committed.
#[derive(Debug)]
pub struct Mail {
    /// Where to.
    pub to: EmailAddress,
    /// What.
    pub message: MailMessage,
    /// Its outbox identifier when the core names it (to answer with it as a receipt);
    /// otherwise the driver draws one.
    pub id: Option<MailId>,
}

/// What one member action does. Build it with [`Step::answer`] or [`Step::reject`] and
/// the `write` / `mail` / `audit` builders.
#[derive(Debug)]
#[must_use = "a step does nothing until the driver carries it out"]
pub struct Step<T> {
    /// Written atomically, or not at all.
    pub writes: Vec<Write>,
    /// Sent after the commit.
    pub mails: Vec<Mail>,
    /// Recorded after the commit.
    pub audit: Vec<AuditEvent>,
    /// Recorded instead when the commit is refused because the address is already
    /// another account's.
    pub audit_if_email_taken: Vec<AuditEvent>,
    /// Whether a taken login ID means "draw another and decide again" (a login ID the
    /// core drew at random) rather than "tell the member".
    pub redraw_on_login_id_taken: bool,
    /// The mail allowance the step's first mail (the one its receipt names) was charged:
    /// given back if that mail is never delivered ([`crate::flow::delivery`]).
    pub refunds: Vec<Refund>,
    /// What the member is told after all of that.
    pub answer: Result<T, Rejection>,
}

impl<T> Step<T> {
    /// A step that answers `answer` and, until writes are added, changes nothing.
    pub fn new(answer: Result<T, Rejection>) -> Self {
        Step {
            writes: Vec::new(),
            mails: Vec::new(),
            audit: Vec::new(),
            audit_if_email_taken: Vec::new(),
            redraw_on_login_id_taken: false,
            refunds: Vec::new(),
            answer,
        }
    }

    /// A step that answers `value`.
    pub fn answer(value: T) -> Self {
        Step::new(Ok(value))
    }

    /// A step that answers `rejection` (and, unless writes are added, changes nothing).
    pub fn reject(rejection: Rejection) -> Self {
        Step::new(Err(rejection))
    }

    /// Adds a write.
    pub fn write(mut self, write: Write) -> Self {
        self.writes.push(write);
        self
    }

    /// Adds a flow write.
    pub fn flow(self, expect: Expect, id: FlowId, state: FlowState) -> Self {
        self.write(Write::Flow { expect, id, state })
    }

    /// Adds the write that moves a loaded flow to `state`, if it is still at the version
    /// it was loaded at.
    pub(crate) fn advance(self, record: &Versioned<FlowRecord>, state: FlowState) -> Self {
        self.flow(Expect::At(record.version), record.value.id.clone(), state)
    }

    /// Adds an account update.
    pub fn account(self, expect: Expect, account: Account) -> Self {
        self.write(Write::Account { expect, account })
    }

    /// Adds a counter hit.
    pub fn counter(self, hit: CounterHit) -> Self {
        self.write(Write::Counter(hit))
    }

    /// Adds a counter hit that charges a mail allowance for the step's first mail: the
    /// event is given back if that mail is never delivered.
    pub fn charge(mut self, hit: CounterHit) -> Self {
        self.refunds.push(hit.refund());
        self.write(Write::Counter(hit))
    }

    /// Adds a mail.
    pub fn mail(mut self, to: EmailAddress, message: MailMessage) -> Self {
        self.mails.push(Mail {
            to,
            message,
            id: None,
        });
        self
    }

    /// Adds a mail to `to` when there is an address: a notice to a member, who may
    /// have none on file.
    pub(crate) fn mail_if(self, to: Option<&EmailAddress>, message: MailMessage) -> Self {
        match to {
            Some(to) => self.mail(to.clone(), message),
            None => self,
        }
    }

    /// Adds a mail whose outbox identifier the step answers with (its receipt, for
    /// [`Portal::mail_status`](crate::Portal::mail_status)).
    pub fn receipted_mail(mut self, id: MailId, to: EmailAddress, message: MailMessage) -> Self {
        self.mails.push(Mail {
            to,
            message,
            id: Some(id),
        });
        self
    }

    /// Adds an audit event.
    pub fn audit(mut self, event: AuditEvent) -> Self {
        self.audit.push(event);
        self
    }

    /// Adds several writes.
    pub fn writes(mut self, writes: impl IntoIterator<Item = Write>) -> Self {
        self.writes.extend(writes);
        self
    }

    /// Adds several audit events.
    pub fn audits(mut self, events: impl IntoIterator<Item = AuditEvent>) -> Self {
        self.audit.extend(events);
        self
    }

    /// Whether the step writes nothing.
    pub fn is_read_only(&self) -> bool {
        self.writes.is_empty()
    }

    /// The same effects with the answer mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Step<U> {
        Step {
            writes: self.writes,
            mails: self.mails,
            audit: self.audit,
            audit_if_email_taken: self.audit_if_email_taken,
            redraw_on_login_id_taken: self.redraw_on_login_id_taken,
            refunds: self.refunds,
            answer: self.answer.map(f),
        }
    }

    /// What the step comes to when its commit was refused because `taken` already
    /// belongs to another account: a login ID the core drew at random is drawn again
    /// (decide again from a fresh read); otherwise the member is told — a taken login ID
    /// 「このログインIDは使用できません」, a taken address a family member's (with the
    /// step's audit events for that case), a member with an account already registered.
    pub fn on_taken(self, taken: Taken) -> OnTaken {
        let (rejection, audit) = match taken {
            Taken::LoginId if self.redraw_on_login_id_taken => return OnTaken::DecideAgain,
            Taken::LoginId => (Rejection::LoginIdTaken, Vec::new()),
            Taken::Email => (Rejection::FamilyEmailInUse, self.audit_if_email_taken),
            Taken::Member => (Rejection::AlreadyRegistered, Vec::new()),
        };
        OnTaken::Refuse { rejection, audit }
    }
}

/// Which of an account's unique values a commit found already another account's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Taken {
    /// The login ID.
    LoginId,
    /// The e-mail address (canonical form).
    Email,
    /// The roster member.
    Member,
}

/// What a step whose commit found a unique value taken comes to ([`Step::on_taken`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum OnTaken {
    /// Nothing was written: decide again from a fresh read.
    DecideAgain,
    /// Nothing was written: record `audit` and tell the member `rejection`.
    Refuse {
        /// What the member is told.
        rejection: Rejection,
        /// What is recorded.
        audit: Vec<AuditEvent>,
    },
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::model::AuditKind;

    fn refused<T>(step: Step<T>, taken: Taken) -> (Rejection, Vec<AuditEvent>) {
        match step.on_taken(taken) {
            OnTaken::Refuse { rejection, audit } => (rejection, audit),
            OnTaken::DecideAgain => panic!("{taken:?}: decided again"),
        }
    }

    // R5 and the insurer's provisioning meet the same unique values with different
    // answers: a login ID the core drew is drawn again; one the member chose is theirs
    // to change (SEC-42); a taken address is a family member's, recorded as such.
    #[test]
    fn a_taken_value_is_drawn_again_or_told() {
        let at = datetime!(2026-12-07 10:00 UTC);
        let mut drawn = Step::answer(());
        drawn.redraw_on_login_id_taken = true;
        assert!(matches!(
            drawn.on_taken(Taken::LoginId),
            OnTaken::DecideAgain
        ));
        let mut chosen = Step::answer(());
        chosen
            .audit_if_email_taken
            .push(AuditEvent::new(AuditKind::FamilyEmailRefused, at));
        let (rejection, audit) = refused(chosen, Taken::Email);
        assert_eq!(rejection, Rejection::FamilyEmailInUse);
        assert_eq!(audit.len(), 1);
        assert_eq!(
            refused(Step::answer(()), Taken::LoginId),
            (Rejection::LoginIdTaken, Vec::new())
        );
        assert_eq!(
            refused(Step::answer(()), Taken::Member),
            (Rejection::AlreadyRegistered, Vec::new())
        );
    }
}
