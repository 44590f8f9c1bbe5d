//! Which of an account's open flows end when its credentials change (SEC-34).

use time::OffsetDateTime;

use super::account::{EmailChangeEndReason, EmailChangeState};
use super::login::LoginEndReason;
use super::recovery::{ResetEndReason, ResetState};
use super::step::Write;
use super::{FlowRecord, FlowState};
use crate::model::{Expect, FlowId, Versioned};

/// Which open flows of an account a change ends, and with what reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ends {
    /// Open 暗証キー challenges.
    pub login: Option<LoginEndReason>,
    /// Reset links.
    pub reset: Option<ResetEndReason>,
    /// Pending address changes.
    pub email: Option<EmailChangeEndReason>,
}

impl Ends {
    /// A credential change: every open challenge, reset and address change ends (SEC-34).
    pub const ALL: Ends = Ends {
        login: Some(LoginEndReason::AccountChanged),
        reset: Some(ResetEndReason::AccountChanged),
        email: Some(EmailChangeEndReason::AccountChanged),
    };

    /// Only open 暗証キー challenges, for `reason`.
    pub const fn login(reason: LoginEndReason) -> Ends {
        Ends {
            login: Some(reason),
            reset: None,
            email: None,
        }
    }

    /// Only reset links, for `reason`.
    pub const fn reset(reason: ResetEndReason) -> Ends {
        Ends {
            login: None,
            reset: Some(reason),
            email: None,
        }
    }

    /// Only pending address changes, for `reason`.
    pub const fn email(reason: EmailChangeEndReason) -> Ends {
        Ends {
            login: None,
            reset: None,
            email: Some(reason),
        }
    }

    /// The writes that end the open flows among `flows` named by `self`, except
    /// `except` (the flow the step writes itself).
    pub fn writes(
        self,
        flows: &[Versioned<FlowRecord>],
        now: OffsetDateTime,
        except: Option<&FlowId>,
    ) -> Vec<Write> {
        let mut writes = Vec::new();
        for f in flows {
            // Ended flows stay listed until purged: skip them before cloning anything.
            let open = match &f.value.state {
                FlowState::Login(s) => s.is_open(),
                FlowState::PasswordReset(s) => !matches!(s, ResetState::Ended(_)),
                FlowState::EmailChange(s) => !matches!(s, EmailChangeState::Ended(_)),
                _ => false,
            };
            if !open || except == Some(&f.value.id) {
                continue;
            }
            let next = match (&f.value.state, self.login, self.reset, self.email) {
                (FlowState::Login(s), Some(reason), _, _) => {
                    s.clone().end_for(reason, now).map(FlowState::Login)
                }
                (FlowState::PasswordReset(s), _, Some(reason), _) => {
                    s.clone().end_for(reason, now).map(FlowState::PasswordReset)
                }
                (FlowState::EmailChange(s), _, _, Some(reason)) => {
                    s.clone().end_for(reason, now).map(FlowState::EmailChange)
                }
                _ => None,
            };
            if let Some(state) = next {
                writes.push(Write::Flow {
                    expect: Expect::At(f.version),
                    id: f.value.id.clone(),
                    state,
                });
            }
        }
        writes
    }
}
