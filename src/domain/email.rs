//! Member e-mail addresses: parsing, canonical form for uniqueness, carrier advisories.
//!
//! The e-mail address is the member's login and recovery channel, so it is parsed once,
//! here, with the rules of DOMAIN.md §4–§5 (DOM-15 … DOM-22) and SEC-08 / SEC-44:
//!
//! 1. **Trim** leading/trailing whitespace, including U+3000 (全角スペース) and the
//!    zero-width characters U+200B / U+200C / U+200D / U+2060 / U+FEFF that copy-paste
//!    from mails and PDFs brings along.
//! 2. **NFKC width folding**: Japanese IMEs type `ｔａｒｏ＠ｄｏｃｏｍｏ．ｎｅ．ｊｐ`; NFKC turns
//!    the full-width look-alikes into ASCII. After folding the local part must be ASCII.
//! 3. **Reject** display-name forms (`Name <a@b>`), comments `( … )`, quotes, whitespace,
//!    control and invisible characters, and anything but exactly one `@`.
//! 4. **Local part**: the WHATWG "valid e-mail address" grammar `1*( atext / "." )`
//!    (≤ 64 characters). Local parts with `..` or a leading/trailing `.` are the
//!    pre-2009 docomo/au addresses that still exist; by default they are accepted and
//!    flagged ([`EmailAddress::is_legacy_non_rfc`]); [`EmailMode::Rfc5322Strict`] rejects them.
//! 5. **Domain**: UTS-46 (IDNA) mapping to lower-case ASCII/punycode, then at least two
//!    LDH labels of ≤ 63 characters, no leading/trailing hyphen, TLD not all-numeric;
//!    the whole address is ≤ 254 characters.
//!
//! **Validation is not deliverability (DOM-22).** Nothing here does DNS, MX or SMTP
//! look-ups; an address that parses may still not receive mail. The only proof that a
//! member owns an address is the verification mail of the registration journey.
//!
//! **Privacy (SEC-44).** An address is personal data. `Debug` prints the masked form
//! (`t***@docomo.ne.jp`); `Display` prints the address as the member spelled it because
//! that is what mails are sent to — hosts must log [`EmailAddress::masked`], never
//! `Display`. Error messages never echo the input.

use std::hash::{Hash, Hasher};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::normalize;
use crate::lang::Lang;

/// Longest address we accept, in ASCII characters after IDNA (RFC 5321 path limit
/// 256 minus the angle brackets).
const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_LEN: usize = 64;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;
/// Raw input longer than this (bytes, after trimming) is rejected before any Unicode
/// processing. A legitimate 254-character address typed entirely in full-width
/// characters is 762 bytes, and every Unicode domain character needs at least one
/// ASCII character of punycode, so nothing valid is lost; it bounds the work an
/// attacker can make NFKC and UTS-46 do.
const MAX_RAW_INPUT_BYTES: usize = 1024;

/// Which grammar the local part must follow.
///
/// The default accepts what browsers' `<input type=email>` accept, because members of a
/// 健保組合 still use pre-2009 docomo/au addresses such as `docomo..ab1234yz@docomo.ne.jp`
/// (DOM-16); turning them away locks those members out of the portal. Hosts whose mail
/// system cannot send to such addresses opt into [`EmailMode::Rfc5322Strict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EmailMode {
    /// WHATWG HTML "valid e-mail address" local part: `1*( atext / "." )`. Local parts
    /// with `..` or a leading/trailing `.` are accepted and flagged as legacy.
    #[default]
    Whatwg,
    /// RFC 5322 `dot-atom` local part: legacy carrier addresses are rejected with
    /// [`EmailError::LegacyNotAllowed`].
    ///
    /// Everything else is shared by both modes: quoted local parts are refused in
    /// either (a quoted and a bare spelling would name one mailbox twice; the library
    /// produces the quoted spelling itself, see [`EmailAddress::quoted_form`]), and the
    /// domain must be dotted (DOM-18), which is stricter than WHATWG.
    Rfc5322Strict,
}

/// A Japanese mobile carrier whose mail service filters incoming mail by default.
///
/// Members with carrier addresses often never see our mails unless they allow the
/// insurer's sender domain in the carrier's 受信設定 (DOM-20); recognising the carrier
/// lets the host show the right advice at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Carrier {
    /// NTT docomo (`docomo.ne.jp`).
    Docomo,
    /// au / KDDI (`ezweb.ne.jp`, `au.com`, `biz.au.com`).
    Au,
    /// SoftBank (`softbank.ne.jp`, `i.softbank.jp`, legacy `*.vodafone.ne.jp`,
    /// `disney.ne.jp`).
    SoftBank,
    /// Y!mobile (`ymobile.ne.jp`).
    YMobile,
}

impl Carrier {
    /// The carrier that runs mail for an ASCII, lower-case domain (as returned by
    /// [`EmailAddress::domain`]), if it is one of the known carrier domains.
    ///
    /// Exact matches only (plus the historic `*.vodafone.ne.jp` subdomains), so that a
    /// look-alike such as `docomo.ne.jp.example.com` is never treated as docomo.
    pub fn for_domain(ascii_domain: &str) -> Option<Self> {
        match ascii_domain {
            "docomo.ne.jp" => Some(Self::Docomo),
            "ezweb.ne.jp" | "au.com" | "biz.au.com" => Some(Self::Au),
            "softbank.ne.jp" | "i.softbank.jp" | "disney.ne.jp" => Some(Self::SoftBank),
            "ymobile.ne.jp" => Some(Self::YMobile),
            d => match d.strip_suffix(".vodafone.ne.jp") {
                Some(sub) if !sub.is_empty() && !sub.contains('.') => Some(Self::SoftBank),
                _ => None,
            },
        }
    }

    /// The carrier's name as members know it (ドコモ, au, ソフトバンク, ワイモバイル).
    pub fn name(&self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Docomo, Lang::En) => "docomo",
            (Self::Docomo, _) => "ドコモ",
            (Self::Au, _) => "au",
            (Self::SoftBank, Lang::En) => "SoftBank",
            (Self::SoftBank, _) => "ソフトバンク",
            (Self::YMobile, Lang::En) => "Y!mobile",
            (Self::YMobile, _) => "ワイモバイル",
        }
    }

    /// The name of the carrier setting where a sender domain is allowed.
    fn allow_list_setting(&self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Self::Docomo | Self::Au, Lang::En) => "receiving list (受信リスト設定)",
            (Self::Docomo | Self::Au, _) => "受信リスト設定",
            (Self::SoftBank | Self::YMobile, Lang::En) => {
                "allowed senders list (受信許可リスト設定)"
            }
            (Self::SoftBank | Self::YMobile, _) => "受信許可リスト設定",
        }
    }

    /// 受信設定 advisory: tells the member to allow mail from the insurer's sender domain.
    ///
    /// Carrier spam filters (ドメイン指定受信) silently drop mail from unknown domains, so
    /// the registration mail never arrives and the member gives up (DOM-20). Show this
    /// next to the address field or on the "mail sent" screen. `sender_domain` is the
    /// host's own configured sender domain (e.g. `kenpo.example.jp`), never member input.
    pub fn advisory(&self, sender_domain: &str, lang: Lang) -> String {
        let name = self.name(lang);
        let setting = self.allow_list_setting(lang);
        let sender = sender_domain.trim();
        match lang {
            Lang::En => format!(
                "Your {name} mail service may block our mails as spam. In your {name} mail \
                 settings, add \"{sender}\" to the {setting} so that you receive them."
            ),
            _ => format!(
                "{name}のメールアドレスをお使いの場合、迷惑メール対策の設定によっては\
                 当方からのメールが届かないことがあります。{name}の{setting}\
                 （ドメイン指定受信）で「{sender}」からのメールを受信できるように設定してください。"
            ),
        }
    }
}

/// Why an e-mail address was rejected.
///
/// Every variant names what the member has to fix; none carries the input, because an
/// address is personal data and errors end up in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing left after trimming.
    #[error("e-mail address is empty")]
    Empty,
    /// Longer than 254 characters (after IDNA), or absurdly long raw input.
    #[error("e-mail address is longer than 254 characters")]
    TooLong,
    /// A control character or an invisible formatting character inside the address.
    #[error("e-mail address contains a control or invisible character")]
    ControlCharacter,
    /// `Name <addr>` or `<addr>`: display-name forms are not addresses (DOM-17).
    #[error("e-mail address contains a display name or angle brackets")]
    DisplayName,
    /// An RFC 5322 comment `( … )` (DOM-17).
    #[error("e-mail address contains a comment in parentheses")]
    Comment,
    /// A double quote: quoted local parts are not accepted; the library offers the
    /// quoted form itself for legacy addresses ([`EmailAddress::quoted_form`]).
    #[error("e-mail address contains a double quote")]
    Quoted,
    /// Whitespace inside the address (DOM-17).
    #[error("e-mail address contains whitespace")]
    Whitespace,
    /// No `@`.
    #[error("e-mail address has no @")]
    MissingAt,
    /// More than one `@` (also catches lists of addresses).
    #[error("e-mail address has more than one @")]
    MultipleAt,
    /// Nothing before the `@`.
    #[error("e-mail address has an empty local part")]
    LocalPartEmpty,
    /// A character outside the WHATWG local-part set, or only dots.
    #[error("e-mail local part contains a character that is not allowed")]
    LocalPartInvalid,
    /// Kana, kanji or other non-ASCII characters before the `@` (DOM-15).
    #[error("e-mail local part contains non-ASCII characters")]
    LocalPartNonAscii,
    /// More than 64 characters before the `@` (DOM-18).
    #[error("e-mail local part is longer than 64 characters")]
    LocalPartTooLong,
    /// Nothing after the `@`.
    #[error("e-mail address has an empty domain")]
    DomainEmpty,
    /// The domain is not a valid host name (IDNA failure, empty label, bad hyphen,
    /// non-LDH character, all-numeric TLD, trailing dot …).
    #[error("e-mail domain is invalid")]
    DomainInvalid,
    /// The domain has a single label (`user@localhost`) (DOM-18).
    #[error("e-mail domain has no dot")]
    DomainNotDotted,
    /// A domain label longer than 63 characters (DOM-18).
    #[error("e-mail domain has a label longer than 63 characters")]
    DomainLabelTooLong,
    /// A legacy carrier local part (`..`, leading or trailing `.`) in
    /// [`EmailMode::Rfc5322Strict`] (DOM-16).
    #[error("e-mail local part is not RFC 5322 (consecutive, leading or trailing dot)")]
    LegacyNotAllowed,
}

/// A parsed, normalised member e-mail address.
///
/// Holds two spellings of the same address:
/// - [`canonical`](Self::canonical) — local part lower-cased, domain lower-case
///   ASCII/punycode; the uniqueness key for "one address per family member" (DOM-19,
///   SEC-08). Equality and hashing use it, so `Taro@Example.JP == taro@example.jp`.
/// - [`for_sending`](Self::for_sending) — the local part as the member spelled it
///   (after trimming and width folding) plus the ASCII domain; mail goes here, because
///   a few mail systems treat the local part case-sensitively.
///
/// Persisted (serde) as the `for_sending` string and re-parsed (default mode) on load,
/// so a stored value can never bypass validation.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress {
    /// `local@domain` with the member's local-part spelling.
    for_sending: String,
    /// `local@domain`, local part ASCII-lower-cased.
    canonical: String,
    /// Byte index of the `@` (the same in both strings: lower-casing ASCII keeps lengths).
    at: usize,
    /// Local part has `..` or a leading/trailing `.`.
    legacy: bool,
}

impl EmailAddress {
    /// Parses in the default [`EmailMode::Whatwg`]: legacy docomo/au addresses are
    /// accepted and flagged (check [`is_legacy_non_rfc`](Self::is_legacy_non_rfc)).
    ///
    /// Never panics. No network access (DOM-22).
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        Self::parse_with(input, EmailMode::default())
    }

    /// Parses with an explicit grammar; see [`EmailMode`] and the module docs for every
    /// step. Never panics. No network access (DOM-22).
    pub fn parse_with(input: &str, mode: EmailMode) -> Result<Self, EmailError> {
        let trimmed = normalize::trim(input);
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_RAW_INPUT_BYTES {
            return Err(EmailError::TooLong);
        }
        let folded: String = trimmed.nfkc().collect();
        check_forbidden_chars(&folded)?;

        let (local, domain) = match (folded.split_once('@'), folded.matches('@').count()) {
            (Some(parts), 1) => parts,
            (None, _) => return Err(EmailError::MissingAt),
            (Some(_), _) => return Err(EmailError::MultipleAt),
        };

        let legacy = check_local_part(local)?;
        if legacy && mode == EmailMode::Rfc5322Strict {
            return Err(EmailError::LegacyNotAllowed);
        }
        let domain = ascii_domain(domain)?;
        if local.len() + 1 + domain.len() > MAX_ADDRESS_LEN {
            return Err(EmailError::TooLong);
        }

        let for_sending = format!("{local}@{domain}");
        let canonical = format!("{}@{domain}", local.to_ascii_lowercase());
        Ok(Self {
            for_sending,
            canonical,
            at: local.len(),
            legacy,
        })
    }

    /// The uniqueness key (DOM-19, SEC-08): local part lower-cased (ASCII), domain
    /// lower-case ASCII with IDN labels in punycode. Compare and index on this; do not
    /// send mail to it.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The address to send mail to: the member's own local-part spelling (after
    /// trimming and width folding) and the ASCII domain.
    ///
    /// # Privacy
    /// This is personal data: do not log it; log [`masked`](Self::masked).
    pub fn for_sending(&self) -> &str {
        &self.for_sending
    }

    /// The local part as the member spelled it (after folding). Needed e.g. to reject
    /// passwords that contain it (SEC-17). Personal data: do not log it.
    pub fn local_part(&self) -> &str {
        self.for_sending.get(..self.at).unwrap_or_default()
    }

    /// The domain in lower-case ASCII (IDN labels as punycode `xn--…`).
    pub fn domain(&self) -> &str {
        self.for_sending
            .get(self.at.saturating_add(1)..)
            .unwrap_or_default()
    }

    /// `true` for pre-2009 docomo/au style local parts (`..`, leading or trailing `.`)
    /// accepted in [`EmailMode::Whatwg`] (DOM-16). Hosts should show
    /// [`legacy_warning`](Self::legacy_warning): some mail systems refuse such addresses.
    pub fn is_legacy_non_rfc(&self) -> bool {
        self.legacy
    }

    /// For legacy addresses only: the RFC-valid quoted spelling `"a..b"@docomo.ne.jp`
    /// (DOM-21), which some MTAs deliver when they refuse the bare form. `None` for
    /// ordinary addresses, which need no quoting.
    pub fn quoted_form(&self) -> Option<String> {
        // The local part holds only atext and dots, so it needs no escaping in quotes.
        self.legacy
            .then(|| format!("\"{}\"@{}", self.local_part(), self.domain()))
    }

    /// For legacy addresses only: the warning to show the member (DOM-21) — the address
    /// breaks the e-mail standard and some services (e.g. Gmail since 2015) refuse it.
    pub fn legacy_warning(&self, lang: Lang) -> Option<&'static str> {
        if !self.legacy {
            return None;
        }
        Some(match lang {
            Lang::En => {
                "This address has two dots in a row, or a dot at the start or right before the \
                 \"@\". Such addresses break the e-mail standard (RFC 5322) and some mail services \
                 (for example Gmail) refuse them, so our mails may not reach you. If they do not \
                 arrive, please consider changing your address with your carrier."
            }
            _ => {
                "このメールアドレスは「.」（ドット）が連続している、または先頭や「@」の直前に「.」が\
                 あるため、メールの規格（RFC）に沿っていません。Gmailなど一部のメールサービスとの間で\
                 メールが届かないことがあります。当方からのメールが届かない場合は、\
                 携帯電話会社でのメールアドレス変更をご検討ください。"
            }
        })
    }

    /// The mobile carrier behind the domain, if any (DOM-20); use
    /// [`Carrier::advisory`] to tell the member how to allow our mails.
    pub fn carrier(&self) -> Option<Carrier> {
        Carrier::for_domain(self.domain())
    }

    /// The form for logs and screens (SEC-44): first character of the (lower-cased)
    /// local part, `***`, `@` and the domain, e.g. `t***@docomo.ne.jp`. A one-character
    /// local part is hidden completely (`***@example.jp`).
    ///
    /// The masked part reveals at most one character, so it never contains the whole
    /// local part — except for local parts consisting of one character followed only
    /// by `*`s (e.g. `a**`), which the mask cannot distinguish from itself.
    pub fn masked(&self) -> String {
        let local = self.canonical.get(..self.at).unwrap_or_default();
        let mut chars = local.chars();
        let shown = match (chars.next(), chars.next()) {
            (Some(first), Some(_)) => Some(first),
            _ => None,
        };
        let mut out = String::with_capacity(self.domain().len() + 5);
        if let Some(first) = shown {
            out.push(first);
        }
        out.push_str("***@");
        out.push_str(self.domain());
        out
    }
}

/// Equality on the canonical form (DOM-19): spelling variants are the same address.
impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for EmailAddress {}

/// Hashes the canonical form, consistent with `PartialEq`.
impl Hash for EmailAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

// Prints only the masked form: addresses are personal data and `Debug` output ends up
// in logs and panic messages (SEC-44).
crate::redact::debug_masked!(EmailAddress, |a| a.masked());

crate::domain::text_conversions! { EmailAddress, EmailError;
    /// Prints [`EmailAddress::for_sending`] — what the member typed, for mail headers and
    /// the member's own screens. Hosts must not log it; log [`EmailAddress::masked`].
    Display |value| &value.for_sending;
    /// Same as [`EmailAddress::parse`] (default mode).
    FromStr;
    /// Loading from storage re-parses (default mode), so stored data is validated too.
    TryFrom<String>;
    /// Persists the [`EmailAddress::for_sending`] spelling; the canonical form is derived.
    Into<String> |value| value.for_sending;
}

/// Rejects characters that make the input something other than a bare address
/// (DOM-17), most specific reason first.
fn check_forbidden_chars(s: &str) -> Result<(), EmailError> {
    if s.contains(['<', '>']) {
        return Err(EmailError::DisplayName);
    }
    if s.contains(['(', ')']) {
        return Err(EmailError::Comment);
    }
    if s.contains('"') {
        return Err(EmailError::Quoted);
    }
    if s.chars().any(char::is_whitespace) {
        return Err(EmailError::Whitespace);
    }
    if s.chars()
        .any(|c| c.is_control() || normalize::is_invisible(c))
    {
        return Err(EmailError::ControlCharacter);
    }
    Ok(())
}

/// `atext` of RFC 5322 §3.2.3, which is also the WHATWG local-part set minus `.`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// Checks the (folded) local part; returns whether it is a legacy non-RFC local part.
fn check_local_part(local: &str) -> Result<bool, EmailError> {
    if local.is_empty() {
        return Err(EmailError::LocalPartEmpty);
    }
    if !local.is_ascii() {
        return Err(EmailError::LocalPartNonAscii);
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(EmailError::LocalPartTooLong);
    }
    let bytes = local.as_bytes();
    if !bytes.iter().all(|&b| b == b'.' || is_atext(b)) || !bytes.iter().any(|&b| is_atext(b)) {
        return Err(EmailError::LocalPartInvalid);
    }
    Ok(local.starts_with('.') || local.ends_with('.') || local.contains(".."))
}

/// Maps the domain to lower-case ASCII with UTS-46 and checks it is a dotted LDH host
/// name (DOM-15, DOM-18).
fn ascii_domain(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() {
        return Err(EmailError::DomainEmpty);
    }
    // STD3 deny list: only LDH may come out. CheckFirstLast rejects U-labels such as
    // `-ü` whose punycode (`xn---tda`) would hide the leading hyphen. Lengths are
    // checked below so that each failure gets its own error.
    let ascii = Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Ignore,
        )
        .map_err(|_| EmailError::DomainInvalid)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    for label in &labels {
        let b = label.as_bytes();
        if b.is_empty()
            || !b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
            || b.iter().any(u8::is_ascii_uppercase)
        {
            return Err(EmailError::DomainInvalid);
        }
        if b.len() > MAX_LABEL_LEN {
            return Err(EmailError::DomainLabelTooLong);
        }
    }
    match labels.last() {
        _ if labels.len() < 2 => Err(EmailError::DomainNotDotted),
        Some(tld) if tld.bytes().all(|c| c.is_ascii_digit()) => Err(EmailError::DomainInvalid),
        _ => Ok(ascii.into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::from_stored;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// Expected outcome of one parse.
    #[derive(Debug)]
    enum Want {
        /// Accepted: canonical, legacy flag.
        Ok(&'static str, bool),
        Err(EmailError),
    }

    fn check(input: &str, mode: EmailMode, want: &Want) {
        let got = EmailAddress::parse_with(input, mode);
        match (want, &got) {
            (Want::Ok(canonical, legacy), Ok(a)) => {
                assert_eq!(a.canonical(), *canonical, "input {input:?}");
                assert_eq!(a.is_legacy_non_rfc(), *legacy, "input {input:?}");
            }
            (Want::Err(e), Err(g)) => assert_eq!(g, e, "input {input:?}"),
            _ => panic!("input {input:?} mode {mode:?}: want {want:?}, got {got:?}"),
        }
    }

    // DOM-16, DOM-17, DOM-18, DOM-15: every row of DOMAIN.md §4.1, with our outcome in
    // both modes.
    #[test]
    fn dom_16_domain_md_4_1_table() {
        use EmailError as E;
        use Want::{Err, Ok};
        let local65 = "a".repeat(65);
        let row65 = format!("{local65}@example.jp");
        let rows: Vec<(&str, Want, Want)> = vec![
            // input, Whatwg, Rfc5322Strict
            (
                "docomo..ab1234yz@docomo.ne.jp",
                Ok("docomo..ab1234yz@docomo.ne.jp", true),
                Err(E::LegacyNotAllowed),
            ),
            (
                "docomo-ab1234yz.@docomo.ne.jp",
                Ok("docomo-ab1234yz.@docomo.ne.jp", true),
                Err(E::LegacyNotAllowed),
            ),
            (
                ".abc@ezweb.ne.jp",
                Ok(".abc@ezweb.ne.jp", true),
                Err(E::LegacyNotAllowed),
            ),
            ("\"abc..def\"@ezweb.ne.jp", Err(E::Quoted), Err(E::Quoted)),
            (
                "-abc@ezweb.ne.jp",
                Ok("-abc@ezweb.ne.jp", false),
                Ok("-abc@ezweb.ne.jp", false),
            ),
            (
                "user@localhost",
                Err(E::DomainNotDotted),
                Err(E::DomainNotDotted),
            ),
            (
                "Taro <taro@example.com>",
                Err(E::DisplayName),
                Err(E::DisplayName),
            ),
            (
                "taro@docomo.ne.jp ",
                Ok("taro@docomo.ne.jp", false),
                Ok("taro@docomo.ne.jp", false),
            ),
            (
                "ｔａｒｏ＠ｄｏｃｏｍｏ．ｎｅ．ｊｐ",
                Ok("taro@docomo.ne.jp", false),
                Ok("taro@docomo.ne.jp", false),
            ),
            (
                "taro@ｄｏｃｏｍｏ.ne.jp",
                Ok("taro@docomo.ne.jp", false),
                Ok("taro@docomo.ne.jp", false),
            ),
            (&row65, Err(E::LocalPartTooLong), Err(E::LocalPartTooLong)),
        ];
        for (input, whatwg, strict) in &rows {
            check(input, EmailMode::Whatwg, whatwg);
            check(input, EmailMode::Rfc5322Strict, strict);
        }
    }

    // DOM-15: full-width input is folded; for_sending is the folded spelling.
    #[test]
    fn dom_15_full_width_address_is_folded() {
        let a = EmailAddress::parse("ｔａｒｏ＠ｄｏｃｏｍｏ．ｎｅ．ｊｐ").unwrap();
        assert_eq!(a.canonical(), "taro@docomo.ne.jp");
        assert_eq!(a.for_sending(), "taro@docomo.ne.jp");
        assert_eq!(a.domain(), "docomo.ne.jp");
        assert_eq!(a.local_part(), "taro");
        assert_eq!(a.carrier(), Some(Carrier::Docomo));
        // Other look-alikes: small commercial at, ideographic full stop, full-width symbols.
        for (input, canonical) in [
            (
                "ＴＡＲＯ＿１＋ｋｅｎｐｏ﹫example.jp",
                "taro_1+kenpo@example.jp",
            ),
            ("taro@example。jp", "taro@example.jp"),
            ("taro@example｡jp", "taro@example.jp"),
            ("TARO@EXAMPLE.JP", "taro@example.jp"),
        ] {
            assert_eq!(
                EmailAddress::parse(input).unwrap().canonical(),
                canonical,
                "{input}"
            );
        }
    }

    // DOM-15 / DOM-4: trimming incl. U+3000, U+200B, U+FEFF, but not inside.
    #[test]
    fn dom_15_trims_ideographic_space_and_zero_width() {
        for input in [
            "\u{3000}taro@example.jp\u{3000}",
            "\u{FEFF}taro@example.jp",
            "taro@example.jp\u{200B}",
            " \t\n taro@example.jp \r\n",
            "\u{200B}\u{3000}\u{FEFF}taro@example.jp\u{00A0}",
        ] {
            let a = EmailAddress::parse(input).unwrap();
            assert_eq!(a.for_sending(), "taro@example.jp", "{input:?}");
        }
        for (input, err) in [
            ("", EmailError::Empty),
            ("\u{3000}\u{200B} \u{FEFF}", EmailError::Empty),
            ("taro\u{3000}@example.jp", EmailError::Whitespace),
            ("taro@exa\u{200B}mple.jp", EmailError::ControlCharacter),
            ("taro@exa\u{00AD}mple.jp", EmailError::ControlCharacter),
            ("ta\u{202E}ro@example.jp", EmailError::ControlCharacter),
        ] {
            assert_eq!(EmailAddress::parse(input), Err(err), "{input:?}");
        }
    }

    // DOM-15: non-ASCII local parts are rejected after folding.
    #[test]
    fn dom_15_rejects_non_ascii_local_part() {
        for input in [
            "たろう@example.jp",
            "太郎@example.jp",
            "ｶﾀｶﾅ@example.jp",
            "tarö@example.jp",
            "taro—x@example.jp",
        ] {
            let got = EmailAddress::parse(input);
            assert!(
                matches!(got, Err(EmailError::LocalPartNonAscii)),
                "{input}: {got:?}"
            );
        }
    }

    // DOM-17: display names, comments, whitespace, quotes, control chars.
    #[test]
    fn dom_17_rejects_non_bare_address_forms() {
        use EmailError as E;
        for (input, err) in [
            ("Taro <taro@example.com>", E::DisplayName),
            ("<taro@example.com>", E::DisplayName),
            ("山田太郎＜taro@example.com＞", E::DisplayName),
            ("taro(kenpo)@example.jp", E::Comment),
            ("taro@example.jp (Taro)", E::Comment),
            ("\"taro\"@example.jp", E::Quoted),
            ("ta ro@example.jp", E::Whitespace),
            ("taro@example.jp hanako@example.jp", E::Whitespace),
            ("taro\t@example.jp", E::Whitespace),
            ("taro\r\nBcc:x@example.jp", E::Whitespace),
            ("taro\u{0000}@example.jp", E::ControlCharacter),
            ("taro\u{007F}@example.jp", E::ControlCharacter),
            ("taro@example.jp,hanako@example.jp", E::MultipleAt),
        ] {
            for mode in [EmailMode::Whatwg, EmailMode::Rfc5322Strict] {
                assert_eq!(EmailAddress::parse_with(input, mode), Err(err), "{input:?}");
            }
        }
    }

    // DOM-16/DOM-18: @ count, local-part grammar, domain shape.
    #[test]
    fn dom_18_structure_and_domain_rules() {
        use EmailError as E;
        let label63 = "a".repeat(63);
        let label64 = "a".repeat(64);
        let ok63 = format!("taro@{label63}.jp");
        let bad64 = format!("taro@{label64}.jp");
        let rows: Vec<(&str, Result<&str, E>)> = vec![
            ("taro", Err(E::MissingAt)),
            ("taro＠＠example.jp", Err(E::MultipleAt)),
            ("a@b@example.jp", Err(E::MultipleAt)),
            ("@example.jp", Err(E::LocalPartEmpty)),
            ("taro@", Err(E::DomainEmpty)),
            ("...@example.jp", Err(E::LocalPartInvalid)),
            ("ta,ro@example.jp", Err(E::LocalPartInvalid)),
            ("ta\\ro@example.jp", Err(E::LocalPartInvalid)),
            ("ta;ro@example.jp", Err(E::LocalPartInvalid)),
            ("ta[ro]@example.jp", Err(E::LocalPartInvalid)),
            ("taro@example", Err(E::DomainNotDotted)),
            ("taro@.example.jp", Err(E::DomainInvalid)),
            ("taro@example..jp", Err(E::DomainInvalid)),
            ("taro@example.jp.", Err(E::DomainInvalid)),
            ("taro@-example.jp", Err(E::DomainInvalid)),
            ("taro@example-.jp", Err(E::DomainInvalid)),
            ("taro@exa_mple.jp", Err(E::DomainInvalid)),
            ("taro@example.123", Err(E::DomainInvalid)),
            ("taro@192.168.0.1", Err(E::DomainInvalid)),
            ("taro@[192.168.0.1]", Err(E::DomainInvalid)),
            ("taro@xn--a.example", Err(E::DomainInvalid)),
            ("taro@-ü.example", Err(E::DomainInvalid)),
            ("taro@ü-.example", Err(E::DomainInvalid)),
            ("taro@xn---tda.example", Err(E::DomainInvalid)),
            (&bad64, Err(E::DomainLabelTooLong)),
            (&ok63, Ok("taro@")),
            ("taro@ab--cd.example.jp", Ok("taro@ab--cd.example.jp")),
            ("taro@example.co.jp", Ok("taro@example.co.jp")),
            ("taro@3com.example", Ok("taro@3com.example")),
            (
                "a!#$%&'*+/=?^_`{|}~-z@example.jp",
                Ok("a!#$%&'*+/=?^_`{|}~-z@example.jp"),
            ),
        ];
        for (input, want) in rows {
            let got = EmailAddress::parse(input);
            match (want, &got) {
                (Ok(prefix), Ok(a)) => assert!(a.canonical().starts_with(prefix), "{input}"),
                (Err(e), Err(g)) => assert_eq!(*g, e, "{input}"),
                _ => panic!("{input}: want {want:?}, got {got:?}"),
            }
        }
    }

    // DOM-18: local part ≤ 64, whole address ≤ 254 (boundaries).
    #[test]
    fn dom_18_length_limits() {
        let local64 = "a".repeat(64);
        // Two 63-character labels, a third of `last` characters, and `.jp`.
        let domain = |last: usize| {
            format!(
                "{}.{}.{}.jp",
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(last)
            )
        };
        let domain189 = domain(58);
        assert_eq!(domain189.len(), 189);
        let max = format!("{local64}@{domain189}");
        assert_eq!(max.len(), 254);
        assert!(EmailAddress::parse(&max).is_ok());
        let over = format!("{local64}@{}", domain(59));
        assert_eq!(over.len(), 255);
        assert_eq!(EmailAddress::parse(&over), Err(EmailError::TooLong));
        assert_eq!(
            EmailAddress::parse(&format!("{}a@example.jp", local64)),
            Err(EmailError::LocalPartTooLong)
        );
        // Full-width input is measured after folding: 64 full-width letters are fine.
        let wide64 = "ａ".repeat(64);
        assert!(EmailAddress::parse(&format!("{wide64}＠example.jp")).is_ok());
        // Huge input is refused before normalisation.
        let huge = "ａ".repeat(100_000);
        assert_eq!(EmailAddress::parse(&huge), Err(EmailError::TooLong));
    }

    // DOM-16: legacy flag in Whatwg mode, error in strict mode; ordinary dots are fine.
    #[test]
    fn dom_16_legacy_local_parts_flagged_not_rejected() {
        for (input, legacy) in [
            ("taro.kenpo@example.jp", false),
            ("t.a.r.o@example.jp", false),
            ("taro..kenpo@ezweb.ne.jp", true),
            ("taro.@au.com", true),
            (".taro@docomo.ne.jp", true),
            ("..taro..@docomo.ne.jp", true),
        ] {
            let a = EmailAddress::parse(input).unwrap();
            assert_eq!(a.is_legacy_non_rfc(), legacy, "{input}");
            assert_eq!(a.legacy_warning(Lang::Ja).is_some(), legacy, "{input}");
            let strict = EmailAddress::parse_with(input, EmailMode::Rfc5322Strict);
            if legacy {
                assert_eq!(strict, Err(EmailError::LegacyNotAllowed), "{input}");
            } else {
                assert_eq!(strict.unwrap(), a, "{input}");
            }
        }
        assert_eq!(EmailMode::default(), EmailMode::Whatwg);
    }

    // DOM-21: quoted form for legacy addresses only, and it is the member's spelling.
    #[test]
    fn dom_21_quoted_form_for_legacy_addresses() {
        let a = EmailAddress::parse("Docomo..AB1234yz@docomo.ne.jp").unwrap();
        assert_eq!(
            a.quoted_form().as_deref(),
            Some("\"Docomo..AB1234yz\"@docomo.ne.jp")
        );
        let w = a.legacy_warning(Lang::Ja).unwrap();
        assert!(w.contains("Gmail"));
        assert!(a.legacy_warning(Lang::En).unwrap().contains("Gmail"));
        let b = EmailAddress::parse("taro@docomo.ne.jp").unwrap();
        assert_eq!(b.quoted_form(), None);
        assert_eq!(b.legacy_warning(Lang::Ja), None);
    }

    // DOM-19, SEC-08: case and IDN variants collide on canonical; for_sending keeps
    // the member's spelling.
    #[test]
    fn sec_08_case_and_idn_variants_collide() {
        for (a, b, a_sending) in [
            ("Taro@Example.JP", "taro@example.jp", "Taro@example.jp"),
            ("TARO@example.jp", "taro@EXAMPLE.jp", "TARO@example.jp"),
            (
                "user@bücher.example",
                "user@xn--bcher-kva.example",
                "user@xn--bcher-kva.example",
            ),
            (
                "User@BÜCHER.example",
                "user@XN--BCHER-KVA.EXAMPLE",
                "User@xn--bcher-kva.example",
            ),
            (
                "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ",
                "taro@example.jp",
                "taro@example.jp",
            ),
        ] {
            let pa = EmailAddress::parse(a).unwrap();
            let pb = EmailAddress::parse(b).unwrap();
            assert_eq!(pa, pb, "{a} vs {b}");
            assert_eq!(pa.canonical(), pb.canonical());
            assert_eq!(pa.for_sending(), a_sending);
            let set: HashSet<EmailAddress> = [pa, pb].into_iter().collect();
            assert_eq!(set.len(), 1, "{a} vs {b}");
        }
        // Different local parts stay different.
        assert_ne!(
            EmailAddress::parse("taro@example.jp").unwrap(),
            EmailAddress::parse("hanako@example.jp").unwrap()
        );
        // Japanese IDN domain maps to punycode.
        let j = EmailAddress::parse("taro@例え.jp").unwrap();
        assert!(j.domain().starts_with("xn--"), "{}", j.domain());
        assert!(j.domain().is_ascii());
    }

    // DOM-20: carrier recognition and advisory.
    #[test]
    fn dom_20_recognises_carrier_domains() {
        for (domain, carrier) in [
            ("docomo.ne.jp", Some(Carrier::Docomo)),
            ("ezweb.ne.jp", Some(Carrier::Au)),
            ("au.com", Some(Carrier::Au)),
            ("biz.au.com", Some(Carrier::Au)),
            ("softbank.ne.jp", Some(Carrier::SoftBank)),
            ("i.softbank.jp", Some(Carrier::SoftBank)),
            ("t.vodafone.ne.jp", Some(Carrier::SoftBank)),
            ("disney.ne.jp", Some(Carrier::SoftBank)),
            ("ymobile.ne.jp", Some(Carrier::YMobile)),
            ("DOCOMO.NE.JP", Some(Carrier::Docomo)),
            ("vodafone.ne.jp", None),
            ("docomo.ne.jp.example.com", None),
            ("mail.docomo.ne.jp.example.jp", None),
            ("example.jp", None),
            ("xau.com", None),
        ] {
            let a = EmailAddress::parse(&format!("kenpo-taro@{domain}")).unwrap();
            assert_eq!(a.carrier(), carrier, "{domain}");
        }
        let adv = Carrier::Docomo.advisory("kenpo.example.jp", Lang::Ja);
        assert!(adv.contains("kenpo.example.jp") && adv.contains("受信リスト設定"));
        assert!(adv.contains("ドコモ"));
        let adv = Carrier::SoftBank.advisory(" kenpo.example.jp ", Lang::En);
        assert!(adv.contains("\"kenpo.example.jp\"") && adv.contains("SoftBank"));
        for c in [
            Carrier::Docomo,
            Carrier::Au,
            Carrier::SoftBank,
            Carrier::YMobile,
        ] {
            assert!(!c.name(Lang::Ja).is_empty() && !c.name(Lang::En).is_empty());
        }
    }

    // SEC-44: masked never shows the whole local part; Debug is masked.
    #[test]
    fn sec_44_masked_and_debug_hide_local_part() {
        for (input, masked) in [
            ("taro@docomo.ne.jp", "t***@docomo.ne.jp"),
            ("Taro.Yamada@example.jp", "t***@example.jp"),
            ("ab@example.jp", "a***@example.jp"),
            ("x@example.jp", "***@example.jp"),
            (".abc@ezweb.ne.jp", ".***@ezweb.ne.jp"),
        ] {
            let a = EmailAddress::parse(input).unwrap();
            assert_eq!(a.masked(), masked);
            let (masked_local, _) = a
                .masked()
                .split_once('@')
                .map(|(l, d)| (l.to_owned(), d.to_owned()))
                .unwrap();
            assert!(!masked_local.contains(a.local_part()), "{input}");
            assert!(!masked_local.contains(&a.local_part().to_ascii_lowercase()));
            let dbg = format!("{a:?}");
            assert_eq!(dbg, format!("EmailAddress({masked})"));
            assert!(!dbg.contains(a.for_sending()));
        }
    }

    // DOM-25-style / CONVENTIONS: stable codes, ja/en messages, never echo input.
    #[test]
    fn dom_25_errors_have_codes_and_messages_without_input() {
        let secret = "himitsu-taro";
        let inputs = [
            String::new(),
            secret.to_owned(),
            format!("{secret}@@example.jp"),
            format!("{secret} <x@example.jp>"),
            format!("{secret}(c)@example.jp"),
            format!("\"{secret}\"@example.jp"),
            format!("{secret} x@example.jp"),
            format!("{secret}\u{0}@example.jp"),
            format!("@{secret}.jp"),
            format!("{secret}@"),
            format!("{secret},@example.jp"),
            format!("{secret}太郎@example.jp"),
            format!("{}{secret}@example.jp", "a".repeat(64)),
            format!("{secret}@{secret}"),
            format!("{secret}@{secret}.123"),
            format!("{secret}@{}.jp", "a".repeat(64)),
            format!("{secret}..@example.jp"),
            format!("{secret}@{}", "a.".repeat(140) + "jp"),
        ];
        let mut codes = HashSet::new();
        for input in &inputs {
            let err = EmailAddress::parse_with(input, EmailMode::Rfc5322Strict).unwrap_err();
            assert!(err.code().starts_with("email."));
            codes.insert(err.code());
            for lang in [Lang::Ja, Lang::En] {
                let m = err.message(lang);
                assert!(!m.is_empty());
                assert!(!m.contains(secret), "{}", err.code());
            }
            assert!(!err.to_string().contains(secret));
            assert!(err.message(Lang::Ja).starts_with("メールアドレス"));
        }
        assert_eq!(
            codes.len(),
            inputs.len(),
            "each input hits a distinct error: {codes:?}"
        );
        assert_eq!(
            EmailError::DomainEmpty.message(Lang::Ja),
            "メールアドレスの形式が正しくありません。「@」の後にドメインを入力してください。"
        );
    }

    // DOM-22 / persistence: serde goes through the parser; for_sending is stored.
    #[test]
    fn dom_22_serde_round_trips_through_parser() {
        let a = EmailAddress::parse("Taro..X@docomo.ne.jp").unwrap();
        let stored: String = a.clone().into();
        assert_eq!(stored, "Taro..X@docomo.ne.jp");
        let back: EmailAddress = from_stored(&stored).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.for_sending(), a.for_sending());
        assert!(back.is_legacy_non_rfc());
        assert!(from_stored::<EmailAddress>("not an address").is_err());
        assert_eq!(a.to_string(), "Taro..X@docomo.ne.jp");
        assert_eq!(
            "taro@example.jp".parse::<EmailAddress>().unwrap().domain(),
            "example.jp"
        );
    }

    /// Local-part characters: mostly valid ones (ASCII atext, dots, full-width
    /// look-alikes), sometimes characters that must be rejected or trimmed.
    const LOCAL_GOOD: &[char] = &[
        'a', 'B', 'z', '0', '9', '.', '.', '-', '_', '+', '!', '~', '*', '\'', 'ｔ', 'Ａ', '０',
        '．', '＋',
    ];
    const DOMAIN_GOOD: &[char] = &[
        'a', 'b', 'X', '0', '-', 'ü', 'ß', '例', 'ｊ', 'Ｐ', 'x', 'n', 'é',
    ];
    const ANY_BAD: &[char] = &[
        '@', '＠', '\u{3000}', ' ', '"', '<', '(', '\u{200B}', '\u{FEFF}', '\u{0301}', 'ー', '。',
        '.', 'ü', '_',
    ];

    fn chars_from(good: &'static [char]) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                12 => prop::sample::select(good),
                1 => prop::sample::select(ANY_BAD),
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    /// Strings that are addresses often enough for the round-trip properties to see
    /// many accepted values (and legacy ones), plus near misses.
    fn emailish() -> impl Strategy<Value = String> {
        (
            chars_from(LOCAL_GOOD),
            prop::collection::vec(chars_from(DOMAIN_GOOD), 1..4),
            prop::sample::select(vec!["jp", "example", "ＪＰ", "co.jp", "123", "", "ne.jp"]),
            prop::sample::select(vec!["", " ", "\u{3000}", "\u{FEFF}"]),
        )
            .prop_map(|(l, labels, tld, pad)| format!("{pad}{l}@{}.{tld}{pad}", labels.join(".")))
    }

    fn assert_round_trips(a: &EmailAddress) {
        let c = EmailAddress::parse(a.canonical()).unwrap();
        assert_eq!(&c, a);
        assert_eq!(c.canonical(), a.canonical());
        assert_eq!(c.for_sending(), a.canonical());
        assert_eq!(c.is_legacy_non_rfc(), a.is_legacy_non_rfc());
        let s = EmailAddress::parse(a.for_sending()).unwrap();
        assert_eq!(&s, a);
        assert_eq!(s.for_sending(), a.for_sending());
        assert_eq!(s.is_legacy_non_rfc(), a.is_legacy_non_rfc());
        assert_eq!(s.carrier(), a.carrier());
        assert!(a.canonical().is_ascii() && a.for_sending().is_ascii());
        assert!(a.for_sending().len() <= MAX_ADDRESS_LEN);
        assert!(
            !a.masked()
                .split('@')
                .next()
                .unwrap_or("")
                .contains(a.local_part())
                || a.local_part().chars().skip(1).all(|c| c == '*')
        );
        let strict = EmailAddress::parse_with(a.canonical(), EmailMode::Rfc5322Strict);
        assert_eq!(strict.is_ok(), !a.is_legacy_non_rfc());
    }

    proptest! {
        // CONVENTIONS: the parser never panics on any string.
        #[test]
        fn prop_parse_never_panics(s in any::<String>()) {
            let _ = EmailAddress::parse(&s);
            let _ = EmailAddress::parse_with(&s, EmailMode::Rfc5322Strict);
        }

        // DOM-19 / SEC-08: canonical and for_sending re-parse to an equal value.
        #[test]
        fn prop_canonical_and_for_sending_round_trip(s in emailish()) {
            if let Ok(a) = EmailAddress::parse(&s) {
                assert_round_trips(&a);
            }
        }

        // Same property over arbitrary strings wrapped around an '@'.
        #[test]
        fn prop_round_trip_arbitrary(l in "\\PC{0,10}", d in "\\PC{0,12}") {
            if let Ok(a) = EmailAddress::parse(&format!("{l}@{d}.jp")) {
                assert_round_trips(&a);
            }
        }
    }
}
