//! Delivery of the outbox's mails: when a mail is tried, retried, given up, and what it
//! gives back when it never went. Pure: the driver and the delivery worker carry out
//! what these functions decide.
//!
//! A mail is tried first by the request that committed it (it is written leased to that
//! request, so no worker takes it meanwhile), then — after a transient failure — by
//! delivery workers with exponential backoff, for as long as what it carries is useful:
//! a 暗証キー for its 10 minutes, a link for its lifetime, a notice for
//! [`DeliverySchedule::notice_patience`]. A mail that is refused for good, or outlives its
//! use undelivered, is given up and gives back the mail allowance it was charged, so
//! the member's next request is not throttled for a mail that never arrived.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::flow::throttle::CounterHit;
use crate::model::{
    Counter, Delivery, Expect, MailId, OutboxMail, Refund, Undeliverable, Versioned,
};
use crate::seal::Sealed;

/// How the outbox schedules delivery. The defaults suit a portal; hosts change them with
/// [`PortalBuilder::delivery`](crate::portal::PortalBuilder::delivery).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliverySchedule {
    /// How long a claimant holds a mail before another may take it: longer than a send
    /// takes, short enough that a crashed server's mails go out soon after.
    pub lease: Duration,
    /// Wait after the first transient failure; doubled after each further one.
    pub first_retry: Duration,
    /// The longest wait between two tries.
    pub max_retry: Duration,
    /// How long a notice (a mail with nothing that expires) is tried.
    pub notice_patience: Duration,
    /// How long a mail's status stays readable after its last deadline.
    pub keep_status: Duration,
}

impl Default for DeliverySchedule {
    /// Lease 60 s; retries 1 s, 2 s, 4 s … at most 60 s apart; notices tried for an
    /// hour; status kept for a day.
    fn default() -> Self {
        DeliverySchedule {
            lease: Duration::seconds(60),
            first_retry: Duration::seconds(1),
            max_retry: Duration::seconds(60),
            notice_patience: Duration::hours(1),
            keep_status: Duration::days(1),
        }
    }
}

impl DeliverySchedule {
    /// The wait after the `failures`-th transient failure (1 for the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let wait = self
            .first_retry
            .checked_mul(1i32 << doublings)
            .unwrap_or(self.max_retry);
        wait.min(self.max_retry).max(Duration::ZERO)
    }
}

/// What one try to hand a mail to the mail system came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Attempt {
    /// The mail system took it.
    Delivered,
    /// It failed in a way that trying later may fix (server down, 4xx, a full queue).
    Transient,
    /// It was refused for good (5xx, an unknown mailbox).
    Permanent,
}

/// What a stand-in's try comes to — the row a request that mails nothing writes in its
/// mail's place: what the transport's last real try came to, so its receipt reads like a
/// mail's, outage or not (SEC-07, SEC-37, SEC-40).
pub fn stand_in(last_real_try_failed: bool) -> Attempt {
    if last_real_try_failed {
        Attempt::Transient
    } else {
        Attempt::Delivered
    }
}

/// The `kind` of an outbox row that carries no mail (a stand-in).
pub const STAND_IN: &str = "stand_in";

/// The order a worker tries the rows of one pass in: real mails first, so the stand-ins
/// of the pass come to what the transport did in it, and a stand-in and a mail claimed
/// together settle alike (SEC-37, SEC-40).
pub fn stand_ins_last(rows: &mut [Versioned<OutboxMail>]) {
    rows.sort_by_key(|row| row.value.kind == STAND_IN);
}

/// A step that answers with a mail receipt which must read the same whatever the step
/// found: its mail, or the stand-in in its place (SEC-07, SEC-37, SEC-40).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receipted {
    /// R1: link 1 to a new address, the notice to a registered one, or a stand-in.
    Registration,
    /// パスワードを忘れた方: the reset link, or a stand-in.
    PasswordReset,
    /// ログインIDを忘れた方: the reminder, or a stand-in.
    LoginIdReminder,
    /// A step whose receipt always names the mail it sends (R3's link 2).
    Mailed,
}

/// Until when the row a receipt names is useful — tried, then given up, then its status
/// kept for [`DeliverySchedule::keep_status`] — decided by the step, never by what it
/// found: the deadline of the mail it sends when everything matches. A notice to a
/// registered address, or a stand-in, thus lives exactly as long as the link it stands
/// beside, and neither the status an outage shows nor the moment the receipt is purged
/// says which path was taken. `None`: the mail's own deadline.
pub fn receipt_useful_until(step: Receipted, env: super::Env<'_>) -> Option<OffsetDateTime> {
    let policy = env.policy;
    match step {
        Receipted::Registration => Some(super::deadline(env.now, policy.registration_link_ttl)),
        Receipted::PasswordReset => Some(super::deadline(env.now, policy.password_reset_link_ttl)),
        // The reminder is a notice, and so is its stand-in: both get the notice
        // patience.
        Receipted::LoginIdReminder | Receipted::Mailed => None,
    }
}

/// A mail as the step that causes it commits it: pending, due now, and leased until
/// `now + lease` to the request that commits it, which tries it first.
#[allow(clippy::too_many_arguments)]
pub fn enqueue(
    id: MailId,
    kind: &str,
    sealed: Sealed,
    useful_until: Option<OffsetDateTime>,
    refunds: Vec<Refund>,
    now: OffsetDateTime,
    schedule: &DeliverySchedule,
) -> OutboxMail {
    let useful_until = useful_until.unwrap_or(now.saturating_add(schedule.notice_patience));
    OutboxMail {
        id,
        kind: kind.to_owned(),
        sealed,
        created_at: now,
        useful_until,
        delivery: Delivery::Pending,
        attempts: 0,
        due_at: now,
        leased_until: Some(now.saturating_add(schedule.lease)),
        refunds,
        purge_after: useful_until.saturating_add(schedule.keep_status),
    }
}

/// A mail after a try, or given up before one; `refund` says whether the allowance it
/// was charged is given back ([`refund`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The mail's new content (lease released).
    pub mail: OutboxMail,
    /// Whether to give back [`OutboxMail::refunds`].
    pub refund: bool,
}

/// Whether a claimed mail should still be tried at `now`: `None` to try it, or the mail
/// given up because what it carries has expired (a dead code is not sent).
pub fn before_try(mail: &OutboxMail, now: OffsetDateTime) -> Option<Settled> {
    (now >= mail.useful_until).then(|| give_up(mail, Undeliverable::Expired, now))
}

/// The mail after a try that came to `attempt` at `now`.
pub fn after_try(
    mail: &OutboxMail,
    attempt: Attempt,
    now: OffsetDateTime,
    schedule: &DeliverySchedule,
) -> Settled {
    let tried = OutboxMail {
        attempts: mail.attempts.saturating_add(1),
        ..mail.clone()
    };
    match attempt {
        Attempt::Delivered => Settled {
            mail: OutboxMail {
                delivery: Delivery::Delivered { at: now },
                leased_until: None,
                ..tried
            },
            refund: false,
        },
        Attempt::Permanent => give_up(&tried, Undeliverable::Refused, now),
        Attempt::Transient => {
            let next = now.saturating_add(schedule.backoff(tried.attempts));
            if next >= tried.useful_until {
                give_up(&tried, Undeliverable::Expired, now)
            } else {
                Settled {
                    mail: OutboxMail {
                        due_at: next,
                        leased_until: None,
                        ..tried
                    },
                    refund: false,
                }
            }
        }
    }
}

/// The mail given up at `now` for `reason`, its allowance given back.
pub fn give_up(mail: &OutboxMail, reason: Undeliverable, now: OffsetDateTime) -> Settled {
    Settled {
        mail: OutboxMail {
            delivery: Delivery::Failed { at: now, reason },
            leased_until: None,
            ..mail.clone()
        },
        refund: true,
    }
}

/// Gives back one allowance event a mail that never went was charged: the counter's
/// count goes down by one, and its last event goes back to the one before, so neither
/// the cap nor the least interval holds the undelivered mail against the member. `None`
/// when there is nothing to give back: the counter is gone, or has moved on to another
/// window (the charge no longer counts anyway).
pub fn refund(current: Option<&Versioned<Counter>>, refund: &Refund) -> Option<CounterHit> {
    let current = current?;
    let counter = &current.value;
    if counter.window_start != refund.window_start || counter.count == 0 {
        return None;
    }
    let last_at = if counter.last_at == refund.at {
        refund.last_before
    } else {
        counter.last_at
    };
    Some(CounterHit {
        expect: Expect::At(current.version),
        last_before: counter.last_at,
        counter: Counter {
            count: counter.count.saturating_sub(1),
            last_at,
            ..counter.clone()
        },
    })
}

/// Every refund of one recording, as one write per counter: refunds charged to the same
/// counter (a 暗証キー and its resend, both given up in one pass) are taken back from it
/// together, in order. `loaded` pairs each refund with its counter as read.
pub fn refunds(loaded: &[(&Refund, Option<&Versioned<Counter>>)]) -> Vec<CounterHit> {
    let mut hits: Vec<CounterHit> = Vec::new();
    for &(r, current) in loaded {
        match hits.iter_mut().find(|h| h.counter.key == r.key) {
            Some(hit) => {
                // Refund from what the earlier refund left, at the version it expects.
                let Expect::At(version) = hit.expect else {
                    continue;
                };
                let pending = Versioned {
                    version,
                    value: hit.counter.clone(),
                };
                if let Some(next) = refund(Some(&pending), r) {
                    hit.counter = next.counter;
                }
            }
            None => hits.extend(refund(current, r)),
        }
    }
    hits
}

/// What a host may tell the member about one mail
/// ([`Portal::mail_status`](crate::Portal::mail_status)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailStatus {
    /// Not delivered yet; still being tried (`attempts` tries so far).
    Sending {
        /// Tries so far (0: the first is under way).
        attempts: u32,
    },
    /// The mail system took it at `at`.
    Sent {
        /// When.
        at: OffsetDateTime,
    },
    /// Given up: it will not arrive. The member can ask again (the allowance it was
    /// charged has been given back).
    NotSent {
        /// When it was given up.
        at: OffsetDateTime,
        /// Why.
        reason: Undeliverable,
    },
}

impl MailStatus {
    /// The status of `mail`.
    pub fn of(mail: &OutboxMail) -> MailStatus {
        match mail.delivery {
            Delivery::Delivered { at } => MailStatus::Sent { at },
            Delivery::Failed { at, reason } => MailStatus::NotSent { at, reason },
            Delivery::Pending => MailStatus::Sending {
                attempts: mail.attempts,
            },
        }
    }

    /// The words to show the member, in the seed's register: sent; taking longer
    /// (「しばらくお待ちください」); or not sent, with what to do next.
    pub fn message(&self, lang: crate::lang::Lang) -> &'static str {
        use crate::lang::Lang;
        match (self, lang) {
            (MailStatus::Sent { .. }, Lang::En) => "The mail has been sent.",
            (MailStatus::Sent { .. }, _) => "メールを送信しました。",
            (MailStatus::Sending { .. }, Lang::En) => {
                "Sending the mail is taking longer than usual. It will arrive shortly; please wait a few minutes before asking again."
            }
            (MailStatus::Sending { .. }, _) => {
                "メールの送信に時間がかかっています。まもなく届きますので、数分お待ちください。"
            }
            (MailStatus::NotSent { .. }, Lang::En) => {
                "The mail could not be sent. Please check the address and try again."
            }
            (MailStatus::NotSent { .. }, _) => {
                "メールを送信できませんでした。メールアドレスをご確認のうえ、もう一度お手続きください。"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Version;

    fn t0() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)
    }

    fn mail(useful: Duration) -> OutboxMail {
        enqueue(
            MailId::generate(&mut rand::rng()),
            "login_otp",
            Sealed::from_bytes(vec![1, 2, 3]),
            Some(t0() + useful),
            Vec::new(),
            t0(),
            &DeliverySchedule::default(),
        )
    }

    #[test]
    fn a_new_mail_is_due_now_and_held_by_its_request() {
        let m = mail(Duration::minutes(10));
        assert_eq!(m.delivery, Delivery::Pending);
        assert_eq!(m.due_at, t0());
        assert!(!m.claimable(t0()), "the committing request tries it first");
        assert!(m.claimable(t0() + Duration::seconds(60)), "its lease ends");
        assert_eq!(
            m.purge_after,
            t0() + Duration::minutes(10) + Duration::days(1)
        );
    }

    #[test]
    fn notices_are_tried_for_the_patience() {
        let m = enqueue(
            MailId::generate(&mut rand::rng()),
            "password_changed",
            Sealed::from_bytes(vec![1]),
            None,
            Vec::new(),
            t0(),
            &DeliverySchedule::default(),
        );
        assert_eq!(m.useful_until, t0() + Duration::hours(1));
    }

    // #14: a 40 s outage no longer loses a 暗証キー mail: retries go on (1, 2, 4 … 60 s
    // apart) until the code expires, and only then is the mail given up.
    #[test]
    fn transient_failures_retry_until_the_mail_is_no_longer_useful() {
        let s = DeliverySchedule::default();
        let mut m = mail(Duration::minutes(10));
        let mut now = t0();
        let mut waits = Vec::new();
        loop {
            let settled = after_try(&m, Attempt::Transient, now, &s);
            if let Delivery::Failed { reason, .. } = settled.mail.delivery {
                assert_eq!(reason, Undeliverable::Expired);
                assert!(settled.refund);
                break;
            }
            assert!(!settled.refund);
            waits.push((settled.mail.due_at - now).whole_seconds());
            now = settled.mail.due_at;
            m = settled.mail;
        }
        assert_eq!(&waits[..7], &[1, 2, 4, 8, 16, 32, 60]);
        assert!(
            now > t0() + Duration::minutes(9),
            "tried until the end: {now}"
        );
        assert!(now < t0() + Duration::minutes(10));
    }

    #[test]
    fn a_permanent_refusal_gives_up_at_once_and_refunds() {
        let settled = after_try(
            &mail(Duration::minutes(10)),
            Attempt::Permanent,
            t0(),
            &DeliverySchedule::default(),
        );
        assert_eq!(
            settled.mail.delivery,
            Delivery::Failed {
                at: t0(),
                reason: Undeliverable::Refused
            }
        );
        assert!(settled.refund);
        assert_eq!(settled.mail.attempts, 1);
    }

    #[test]
    fn an_expired_mail_is_not_sent() {
        let m = mail(Duration::minutes(10));
        assert_eq!(before_try(&m, t0() + Duration::minutes(9)), None);
        let given_up = before_try(&m, t0() + Duration::minutes(10)).expect("expired");
        assert!(matches!(
            given_up.mail.delivery,
            Delivery::Failed {
                reason: Undeliverable::Expired,
                ..
            }
        ));
    }

    /// A counter of `count` events in a window opened ten minutes before `t0`, the last
    /// at `last_at`.
    fn charged(
        key: &str,
        version: Version,
        count: u32,
        last_at: OffsetDateTime,
    ) -> Versioned<Counter> {
        Versioned {
            version,
            value: Counter {
                key: key.into(),
                window_start: t0() - Duration::minutes(10),
                count,
                last_at,
                expires_at: t0() + Duration::minutes(50),
            },
        }
    }

    // SEC-13/SEC-30: two mails charged to one counter and given up in one pass (a
    // 暗証キー and its resend during an outage) are refunded in one write, not two
    // writes to the same record (which a SQL store refuses as a conflict, every time).
    #[test]
    fn sec_13_two_refunds_of_one_counter_are_one_write() {
        let first = t0() - Duration::seconds(70);
        let second = t0();
        let counter = charged("otp:a", Version(7), 3, second);
        let refund_of = |at, last_before| Refund {
            key: "otp:a".into(),
            window_start: counter.value.window_start,
            at,
            last_before,
        };
        let (r2, r1) = (
            refund_of(second, first),
            refund_of(first, t0() - Duration::minutes(5)),
        );
        let hits = refunds(&[(&r2, Some(&counter)), (&r1, Some(&counter))]);
        assert_eq!(hits.len(), 1, "one write per counter");
        assert_eq!(hits[0].expect, Expect::At(Version(7)));
        assert_eq!(hits[0].counter.count, 1);
        assert_eq!(hits[0].counter.last_at, t0() - Duration::minutes(5));
    }

    #[test]
    fn a_refund_takes_back_the_charge_and_its_spacing() {
        let before = t0() - Duration::minutes(5);
        let charged_at = t0();
        let counter = charged("mail:x", Version(3), 2, charged_at);
        let r = Refund {
            key: "mail:x".into(),
            window_start: counter.value.window_start,
            at: charged_at,
            last_before: before,
        };
        let hit = refund(Some(&counter), &r).expect("refunded");
        assert_eq!(hit.expect, Expect::At(Version(3)));
        assert_eq!(hit.counter.count, 1);
        assert_eq!(hit.counter.last_at, before);
        // A later event keeps its own spacing.
        let mut later = counter.clone();
        later.value.last_at = charged_at + Duration::seconds(90);
        let hit = refund(Some(&later), &r).expect("refunded");
        assert_eq!(hit.counter.last_at, charged_at + Duration::seconds(90));
        // Another window: nothing to give back.
        let mut moved = counter.clone();
        moved.value.window_start = t0() + Duration::hours(1);
        assert_eq!(refund(Some(&moved), &r), None);
        assert_eq!(refund(None, &r), None);
    }

    // SEC-40: in a worker's pass the real mails go first and the stand-ins after them,
    // each group in the order it was claimed.
    #[test]
    fn sec_40_a_pass_tries_the_stand_ins_last() {
        let row = |kind: &str| Versioned {
            version: Version::FIRST,
            value: OutboxMail {
                kind: kind.to_owned(),
                ..mail(Duration::minutes(10))
            },
        };
        let mut rows = vec![
            row(STAND_IN),
            row("login_otp"),
            row(STAND_IN),
            row("registration_link"),
        ];
        let ids: Vec<MailId> = rows.iter().map(|r| r.value.id).collect();
        stand_ins_last(&mut rows);
        let order: Vec<MailId> = rows.iter().map(|r| r.value.id).collect();
        assert_eq!(order, [ids[1], ids[3], ids[0], ids[2]]);
    }

    // SEC-40: a stand-in settles as a real mail would have.
    #[test]
    fn sec_40_a_stand_in_comes_to_what_the_transport_came_to() {
        assert_eq!(stand_in(false), Attempt::Delivered);
        assert_eq!(stand_in(true), Attempt::Transient);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = DeliverySchedule::default();
        let waits: Vec<i64> = (1..=9).map(|n| s.backoff(n).whole_seconds()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(s.backoff(u32::MAX), Duration::seconds(60));
    }
}
