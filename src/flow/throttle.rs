//! Fixed-window throttles: how many events of one kind one subject may cause in a window,
//! and how close together. Pure: the counter is read by the driver and written back in
//! the step's commit, so two racing requests cannot both take the last allowance.

use time::{Duration, OffsetDateTime};

use crate::model::{Counter, CounterKey, Expect, Refund, Versioned};

/// The rule one counter enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Length of the window.
    pub span: Duration,
    /// Events allowed in one window.
    pub cap: u32,
    /// Least time between two events, if any.
    pub min_interval: Option<Duration>,
}

/// One event allowed: the counter write that records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterHit {
    /// What the write expects to find.
    pub expect: Expect,
    /// The counter after the event.
    pub counter: Counter,
    /// The counter's last event before this one.
    pub last_before: OffsetDateTime,
}

impl CounterHit {
    /// What giving this event back takes, should the mail it was charged for never go
    /// out ([`crate::flow::delivery::refund`]).
    pub fn refund(&self) -> Refund {
        Refund {
            key: self.counter.key.clone(),
            window_start: self.counter.window_start,
            at: self.counter.last_at,
            last_before: self.last_before,
        }
    }
}

/// Counts one event of `key` under `rule`. `Err(retry_after)` when the event is not
/// allowed (cap reached, or closer than `min_interval` to the last one); otherwise the
/// write that records it.
pub fn hit(
    key: &CounterKey,
    current: Option<&Versioned<Counter>>,
    now: OffsetDateTime,
    rule: Window,
) -> Result<CounterHit, Duration> {
    let expect = Expect::of(current);
    let counter = match current {
        Some(v) if now < v.value.window_start.saturating_add(rule.span) => v.value.clone(),
        Some(v) => Counter {
            key: key.render(),
            window_start: now,
            count: 0,
            last_at: v.value.last_at,
            expires_at: now.saturating_add(rule.span),
        },
        None => Counter {
            key: key.render(),
            window_start: now,
            count: 0,
            last_at: now.saturating_sub(rule.span),
            expires_at: now.saturating_add(rule.span),
        },
    };
    // The least interval holds across a window boundary too: it is measured from the
    // last event this counter recorded, whichever window that was in.
    if let (Some(gap), Some(previous)) = (rule.min_interval, current) {
        let ready = previous.value.last_at.saturating_add(gap);
        if now < ready {
            return Err(ready - now);
        }
    }
    if counter.count >= rule.cap {
        return Err(counter.window_start.saturating_add(rule.span) - now);
    }
    Ok(CounterHit {
        expect,
        last_before: counter.last_at,
        counter: Counter {
            count: counter.count.saturating_add(1),
            last_at: now,
            ..counter
        },
    })
}

/// [`hit`] for a counter that may also have been kept under earlier names — after a
/// digest-key rotation the same subject's counter has a new key. `counters` holds the
/// counter under `key` first, then those under the earlier names: their events in the
/// current window still count and their last event still spaces the next, but only the
/// counter under `key` is written.
pub fn hit_across(
    key: &CounterKey,
    counters: &[Option<Versioned<Counter>>],
    now: OffsetDateTime,
    rule: Window,
) -> Result<CounterHit, Duration> {
    let current = counters.first().and_then(Option::as_ref);
    let mut merged: Option<Versioned<Counter>> = current.cloned();
    for earlier in counters.iter().skip(1).flatten() {
        let live = now < earlier.value.window_start.saturating_add(rule.span);
        merged = Some(match merged {
            None => earlier.clone(),
            Some(mut m) => {
                if live {
                    m.value.count = m.value.count.saturating_add(earlier.value.count);
                    m.value.window_start = m.value.window_start.min(earlier.value.window_start);
                }
                m.value.last_at = m.value.last_at.max(earlier.value.last_at);
                m
            }
        });
    }
    let mut written = hit(key, merged.as_ref(), now, rule)?;
    written.expect = Expect::of(current);
    written.counter.key = key.render();
    Ok(written)
}

/// The budgets above any one address (SEC-13): the flows one requester (an IP or network
/// prefix, as the host names it) and the whole portal may start per hour. Each step that
/// starts a flow and mails spends one from each, in the same commit as the flow.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartBudgets<'a> {
    /// The requester's counter, when the host named a requester.
    pub requester: Option<(&'a CounterKey, Option<&'a Versioned<Counter>>)>,
    /// The portal's counter.
    pub portal: Option<&'a Versioned<Counter>>,
}

impl StartBudgets<'_> {
    /// Spends one flow start from each budget: the counter writes, or which budget is
    /// spent (`"requester"`, `"portal"`) when one is.
    pub fn spend(
        &self,
        now: OffsetDateTime,
        policy: &crate::policy::Policy,
    ) -> Result<Vec<CounterHit>, &'static str> {
        let hour = |cap| Window {
            span: Duration::hours(1),
            cap,
            min_interval: None,
        };
        let mut hits = Vec::with_capacity(2);
        if let Some((key, current)) = self.requester {
            let rule = hour(policy.flow_starts_per_requester_per_hour);
            hits.push(hit(key, current, now, rule).map_err(|_| "requester")?);
        }
        let rule = hour(policy.flow_starts_per_hour);
        hits.push(hit(&CounterKey::FlowStarts, self.portal, now, rule).map_err(|_| "portal")?);
        Ok(hits)
    }
}

/// Runs `decide` for a request that starts a flow once the start budgets allow it, and
/// adds the spent starts to its writes; when a budget is spent, nothing is started or
/// mailed and the answer is `answer`, the one a sent mail gets (SEC-13).
pub(crate) fn within_start_budgets<T>(
    starts: StartBudgets<'_>,
    env: crate::flow::Env<'_>,
    answer: T,
    decide: impl FnOnce() -> crate::flow::step::Step<T>,
) -> crate::flow::step::Step<T> {
    use crate::flow::step::{Step, Write};
    use crate::model::{AuditEvent, AuditKind};
    match starts.spend(env.now, env.policy) {
        Err(which) => Step::answer(answer)
            .audit(AuditEvent::new(AuditKind::MailThrottled, env.now).detail(which)),
        Ok(hits) => decide().writes(hits.into_iter().map(Write::Counter)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, Version};

    fn rule(cap: u32) -> Window {
        Window {
            span: Duration::hours(1),
            cap,
            min_interval: None,
        }
    }

    #[test]
    fn the_cap_holds_within_the_window_and_resets_after_it() {
        let key = CounterKey::OtpMails(AccountId::from_stored("a"));
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut current: Option<Versioned<Counter>> = None;
        for n in 1..=3u64 {
            let w = hit(&key, current.as_ref(), t0, rule(3)).expect("allowed");
            assert_eq!(w.counter.count, n as u32);
            assert_eq!(w.counter.key, "otp-mail:a");
            current = Some(Versioned {
                version: Version(n),
                value: w.counter,
            });
        }
        assert_eq!(
            hit(&key, current.as_ref(), t0, rule(3)),
            Err(Duration::hours(1))
        );
        let later =
            hit(&key, current.as_ref(), t0 + Duration::hours(1), rule(3)).expect("new window");
        assert_eq!(later.counter.count, 1);
        assert_eq!(later.expect, Expect::At(Version(3)));
    }

    #[test]
    fn min_interval_spaces_events() {
        let key = CounterKey::MailsToAddress("ab".into());
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let r = Window {
            min_interval: Some(Duration::seconds(60)),
            ..rule(10)
        };
        let first = hit(&key, None, t0, r).expect("first");
        let v = Versioned {
            version: Version::FIRST,
            value: first.counter,
        };
        assert_eq!(
            hit(&key, Some(&v), t0 + Duration::seconds(59), r),
            Err(Duration::seconds(1))
        );
        assert!(hit(&key, Some(&v), t0 + Duration::seconds(60), r).is_ok());
    }

    proptest::proptest! {
        /// Whatever the timing of the requests, a counter never allows more than `cap`
        /// events in one window nor two events closer than `min_interval`, and it
        /// refuses only when one of those would be broken (SEC-09, SEC-13, SEC-30).
        #[test]
        fn a_window_never_allows_more_than_its_rule(
            gaps in proptest::collection::vec(0i64..400, 1..80),
            cap in 1u32..8,
            span in 60i64..3_600,
            interval in proptest::option::of(1i64..120),
        ) {
            let rule = Window {
                span: Duration::seconds(span),
                cap,
                min_interval: interval.map(Duration::seconds),
            };
            let key = CounterKey::OtpMails(AccountId::from_stored("a"));
            let mut now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
            let mut current: Option<Versioned<Counter>> = None;
            let mut version = 0u64;
            let mut allowed: Vec<OffsetDateTime> = Vec::new();
            for gap in gaps {
                now += Duration::seconds(gap);
                match hit(&key, current.as_ref(), now, rule) {
                    Ok(w) => {
                        proptest::prop_assert_eq!(w.expect, Expect::of(current.as_ref()));
                        version += 1;
                        current = Some(Versioned { version: Version(version), value: w.counter });
                        if let (Some(last), Some(gap)) = (allowed.last(), rule.min_interval) {
                            proptest::prop_assert!(now - *last >= gap);
                        }
                        allowed.push(now);
                    }
                    Err(retry_after) => {
                        proptest::prop_assert!(retry_after > Duration::ZERO);
                    }
                }
                // The events the counter allowed since its current window began.
                let start = current.as_ref().map(|c| c.value.window_start).unwrap_or(now);
                let in_window = allowed.iter().filter(|t| **t >= start).count();
                proptest::prop_assert!(in_window <= cap as usize);
            }
        }
    }
}
