//! What an outbox row carries, sealed: the [`OutgoingMail`] (recipient, typed message,
//! rendering), or nothing at all for a stand-in.
//!
//! A stand-in is the row an enumeration-safe step writes where it sends nothing (a
//! forgotten-ID request for an address with no account, a spent budget): it is
//! written, claimed and recorded like a mail, so its receipt answers like one, and it is
//! never handed to the mailer. Only the seal says which it is.

use rand::CryptoRng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::domain::EmailAddress;
use crate::lang::Lang;
use crate::mail::{MailLink, MailMessage, OutgoingMail, RenderedMail};
use crate::model::MailId;
use crate::seal::{SealError, SealKeyring, SealPurpose, Sealed};
use crate::token::{
    EmailChangeLinkToken, OtpCode, PasswordResetLinkToken, RegistrationLinkToken,
    VerificationLinkToken,
};

/// Seals `mail` (or, for `None`, a stand-in) for the outbox row `id`.
pub(crate) fn seal<R: CryptoRng + ?Sized>(
    keys: &SealKeyring,
    id: &MailId,
    mail: Option<&OutgoingMail>,
    rng: &mut R,
) -> Sealed {
    let payload = Payload {
        mail: mail.map(|m| Mail {
            to: m.to.clone(),
            lang: m.lang,
            message: Message::from(&m.message),
            subject: m.rendered.subject.clone(),
            body: m.rendered.body.clone(),
        }),
    };
    // A payload of strings and numbers always serialises; were it ever to fail, the
    // empty plaintext would open as a malformed payload (Unreadable), never as a mail.
    let plain = Zeroizing::new(serde_json::to_vec(&payload).unwrap_or_default());
    keys.seal(SealPurpose::OutboxMail, id.to_hex().as_bytes(), &plain, rng)
}

/// Opens what [`seal`] sealed: `Ok(None)` for a stand-in.
pub(crate) fn open(
    keys: &SealKeyring,
    id: &MailId,
    sealed: &Sealed,
) -> Result<Option<OutgoingMail>, Unreadable> {
    let plain = keys
        .open(SealPurpose::OutboxMail, id.to_hex().as_bytes(), sealed)
        .map_err(Unreadable::Seal)?;
    let payload: Payload = serde_json::from_slice(&plain).map_err(|_| Unreadable::Payload)?;
    let Some(mail) = payload.mail else {
        return Ok(None);
    };
    Ok(Some(OutgoingMail {
        to: mail.to,
        lang: mail.lang,
        message: MailMessage::try_from(mail.message).map_err(|()| Unreadable::Payload)?,
        rendered: RenderedMail {
            subject: mail.subject,
            body: mail.body,
        },
    }))
}

/// Why an outbox row did not open.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unreadable {
    #[error("outbox mail does not open")]
    Seal(#[source] SealError),
    #[error("outbox mail opened but is not a mail of this version")]
    Payload,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// `None`: a stand-in.
    mail: Option<Mail>,
}

#[derive(Serialize, Deserialize)]
struct Mail {
    to: EmailAddress,
    lang: Lang,
    message: Message,
    subject: String,
    body: String,
}

/// A link with its token as text (only ever inside the seal).
#[derive(Serialize, Deserialize)]
struct Link {
    url: String,
    token: String,
    expires_at: OffsetDateTime,
}

impl Link {
    fn of<T>(link: &MailLink<T>, token: &str) -> Link {
        Link {
            url: link.url.clone(),
            token: token.to_owned(),
            expires_at: link.expires_at,
        }
    }

    fn into_link<T>(self, parse: impl Fn(&str) -> Option<T>) -> Result<MailLink<T>, ()> {
        Ok(MailLink {
            token: parse(&self.token).ok_or(())?,
            url: self.url,
            expires_at: self.expires_at,
        })
    }
}

/// When a notice's event happened (the payload of several [`Message`] variants).
#[derive(Serialize, Deserialize)]
struct At {
    at: OffsetDateTime,
}

/// Which second factor a notice is about, and when.
#[derive(Serialize, Deserialize)]
struct FactorAt {
    factor: crate::model::FactorKind,
    at: OffsetDateTime,
}

/// The login page a notice points to.
#[derive(Serialize, Deserialize)]
struct LoginUrl {
    login_url: String,
}

impl LoginUrl {
    fn of(login_url: &str) -> LoginUrl {
        LoginUrl {
            login_url: login_url.to_owned(),
        }
    }
}

/// [`MailMessage`] with its secrets as text, for the sealed payload only.
///
/// Variants that carry the same fields share a payload struct ([`Link`], [`At`],
/// [`LoginUrl`]). Internally tagged, a newtype variant of a struct serialises exactly as
/// a struct variant with the same fields would (`{"kind": "account_locked", "at": …}`),
/// so rows sealed by earlier versions still open (`rows_sealed_before_still_open`).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    RegistrationLink(Link),
    AlreadyRegistered(LoginUrl),
    IdentityVerified(Link),
    RegistrationCompleted(LoginUrl),
    LoginOtp {
        code: String,
        expires_at: OffsetDateTime,
    },
    LoginOtpAborted(At),
    AccountLocked(At),
    LoginIdReminder {
        login_id: String,
    },
    PasswordResetLink(Link),
    PasswordChanged(At),
    EmailChangeLink(Link),
    EmailChanged {
        new_address_masked: String,
        at: OffsetDateTime,
    },
    SecondFactorAdded(FactorAt),
    SecondFactorRemoved(FactorAt),
    RecoveryCodeUsed {
        at: OffsetDateTime,
        remaining: u32,
    },
}

impl From<&MailMessage> for Message {
    fn from(m: &MailMessage) -> Message {
        match m {
            MailMessage::RegistrationLink(l) => {
                Message::RegistrationLink(Link::of(l, l.token.expose_secret()))
            }
            MailMessage::AlreadyRegistered { login_url } => {
                Message::AlreadyRegistered(LoginUrl::of(login_url))
            }
            MailMessage::IdentityVerified(l) => {
                Message::IdentityVerified(Link::of(l, l.token.expose_secret()))
            }
            MailMessage::RegistrationCompleted { login_url } => {
                Message::RegistrationCompleted(LoginUrl::of(login_url))
            }
            MailMessage::LoginOtp { code, expires_at } => Message::LoginOtp {
                code: code.expose_secret().to_owned(),
                expires_at: *expires_at,
            },
            MailMessage::LoginOtpAborted { at } => Message::LoginOtpAborted(At { at: *at }),
            MailMessage::AccountLocked { at } => Message::AccountLocked(At { at: *at }),
            MailMessage::LoginIdReminder { login_id } => Message::LoginIdReminder {
                login_id: login_id.clone(),
            },
            MailMessage::PasswordResetLink(l) => {
                Message::PasswordResetLink(Link::of(l, l.token.expose_secret()))
            }
            MailMessage::PasswordChanged { at } => Message::PasswordChanged(At { at: *at }),
            MailMessage::EmailChangeLink(l) => {
                Message::EmailChangeLink(Link::of(l, l.token.expose_secret()))
            }
            MailMessage::EmailChanged {
                new_address_masked,
                at,
            } => Message::EmailChanged {
                new_address_masked: new_address_masked.clone(),
                at: *at,
            },
            MailMessage::SecondFactorAdded { factor, at } => Message::SecondFactorAdded(FactorAt {
                factor: *factor,
                at: *at,
            }),
            MailMessage::SecondFactorRemoved { factor, at } => {
                Message::SecondFactorRemoved(FactorAt {
                    factor: *factor,
                    at: *at,
                })
            }
            MailMessage::RecoveryCodeUsed { at, remaining } => Message::RecoveryCodeUsed {
                at: *at,
                remaining: *remaining,
            },
        }
    }
}

impl TryFrom<Message> for MailMessage {
    type Error = ();

    fn try_from(m: Message) -> Result<MailMessage, ()> {
        Ok(match m {
            Message::RegistrationLink(l) => MailMessage::RegistrationLink(
                l.into_link(|t| RegistrationLinkToken::parse(t).ok())?,
            ),
            Message::AlreadyRegistered(LoginUrl { login_url }) => {
                MailMessage::AlreadyRegistered { login_url }
            }
            Message::IdentityVerified(l) => MailMessage::IdentityVerified(
                l.into_link(|t| VerificationLinkToken::parse(t).ok())?,
            ),
            Message::RegistrationCompleted(LoginUrl { login_url }) => {
                MailMessage::RegistrationCompleted { login_url }
            }
            Message::LoginOtp { code, expires_at } => MailMessage::LoginOtp {
                code: OtpCode::parse(&code).map_err(|_| ())?,
                expires_at,
            },
            Message::LoginOtpAborted(At { at }) => MailMessage::LoginOtpAborted { at },
            Message::AccountLocked(At { at }) => MailMessage::AccountLocked { at },
            Message::LoginIdReminder { login_id } => MailMessage::LoginIdReminder { login_id },
            Message::PasswordResetLink(l) => MailMessage::PasswordResetLink(
                l.into_link(|t| PasswordResetLinkToken::parse(t).ok())?,
            ),
            Message::PasswordChanged(At { at }) => MailMessage::PasswordChanged { at },
            Message::EmailChangeLink(l) => {
                MailMessage::EmailChangeLink(l.into_link(|t| EmailChangeLinkToken::parse(t).ok())?)
            }
            Message::EmailChanged {
                new_address_masked,
                at,
            } => MailMessage::EmailChanged {
                new_address_masked,
                at,
            },
            Message::SecondFactorAdded(FactorAt { factor, at }) => {
                MailMessage::SecondFactorAdded { factor, at }
            }
            Message::SecondFactorRemoved(FactorAt { factor, at }) => {
                MailMessage::SecondFactorRemoved { factor, at }
            }
            Message::RecoveryCodeUsed { at, remaining } => {
                MailMessage::RecoveryCodeUsed { at, remaining }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::SealKey;

    fn keys() -> SealKeyring {
        SealKeyring::new(SealKey::new(1, vec![3; 32]).expect("32 bytes"))
    }

    fn otp_mail() -> OutgoingMail {
        let code = OtpCode::parse("123456").expect("code");
        OutgoingMail {
            to: EmailAddress::parse("Taro.Yamada@example.jp").expect("address"),
            lang: Lang::Ja,
            message: MailMessage::LoginOtp {
                code,
                expires_at: OffsetDateTime::UNIX_EPOCH,
            },
            rendered: RenderedMail {
                subject: "暗証キーのご案内".into(),
                body: "暗証キー: 123456".into(),
            },
        }
    }

    #[test]
    fn a_mail_comes_back_as_it_went_in() {
        let id = MailId::generate(&mut rand::rng());
        let mail = otp_mail();
        let sealed = seal(&keys(), &id, Some(&mail), &mut rand::rng());
        let back = open(&keys(), &id, &sealed).expect("opens");
        assert_eq!(back, Some(mail));
        assert_eq!(
            back.map(|m| m.to.for_sending().to_owned()),
            Some("Taro.Yamada@example.jp".to_owned())
        );
    }

    // SEC-03: the 暗証キー and the address are not in the row.
    #[test]
    fn sec_03_the_row_holds_neither_code_nor_address() {
        let id = MailId::generate(&mut rand::rng());
        let sealed = seal(&keys(), &id, Some(&otp_mail()), &mut rand::rng());
        let text = String::from(sealed.clone());
        let bytes = sealed.as_bytes();
        for needle in ["123456", "Taro", "example.jp"] {
            assert!(!text.contains(needle));
            assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()));
        }
    }

    // Rows already in an outbox were sealed when these variants were struct variants: the
    // shared payload structs keep that wire form, both ways.
    #[test]
    fn rows_sealed_before_still_open() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let url = "https://portal.example.jp/login";
        for (message, fields) in [
            (
                MailMessage::AlreadyRegistered {
                    login_url: url.into(),
                },
                serde_json::json!({"kind": "already_registered", "login_url": url}),
            ),
            (
                MailMessage::RegistrationCompleted {
                    login_url: url.into(),
                },
                serde_json::json!({"kind": "registration_completed", "login_url": url}),
            ),
            (
                MailMessage::LoginOtpAborted { at },
                serde_json::json!({"kind": "login_otp_aborted", "at": at}),
            ),
            (
                MailMessage::AccountLocked { at },
                serde_json::json!({"kind": "account_locked", "at": at}),
            ),
            (
                MailMessage::PasswordChanged { at },
                serde_json::json!({"kind": "password_changed", "at": at}),
            ),
        ] {
            let written = serde_json::to_value(Message::from(&message)).expect("serialises");
            assert_eq!(written, fields, "{}", message.kind());
            let read: Message = serde_json::from_value(fields).expect("deserialises");
            assert_eq!(MailMessage::try_from(read), Ok(message));
        }
    }

    #[test]
    fn a_stand_in_opens_as_none_and_a_moved_row_not_at_all() {
        let id = MailId::generate(&mut rand::rng());
        let sealed = seal(&keys(), &id, None, &mut rand::rng());
        assert_eq!(open(&keys(), &id, &sealed).ok(), Some(None));
        let other = MailId::generate(&mut rand::rng());
        assert!(open(&keys(), &other, &sealed).is_err());
    }
}
