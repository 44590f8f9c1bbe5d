//! Where and how [`SmtpMailer`](super::SmtpMailer) connects, read from one URL.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::lang::Lang;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SmtpSecurity {
    /// TLS from the first byte (「SMTPS」, RFC 8314), usually port 465. The preferred
    /// choice: nothing crosses the network in the clear.
    ImplicitTls,
    /// Plain connection upgraded with `STARTTLS` before anything else is said (usually
    /// port 587). A server that does not offer `STARTTLS` is refused, never used in the
    /// clear.
    StartTls,
    /// No encryption at all. Allowed only to a loopback address (a relay on the same
    /// machine, or a test server), because the mails carry 暗証キー and links.
    Plain,
}

/// User name and password for `AUTH` (PLAIN or LOGIN).
#[derive(Clone)]
pub struct SmtpCredentials {
    user: String,
    password: SecretString,
}

impl SmtpCredentials {
    /// Credentials for the relay.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        SmtpCredentials {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The password.
    ///
    /// # Security
    /// Hand it to the transport only; never log it.
    pub fn password(&self) -> &str {
        self.password.expose_secret()
    }
}

crate::redact::debug_redacted!(SmtpCredentials { user, password });

/// Everything [`SmtpMailer`](super::SmtpMailer) needs to reach the server. Build it with
/// [`SmtpConfig::from_url`] or [`SmtpConfig::new`], then adjust with the methods.
///
/// The URL forms:
///
/// | URL | meaning |
/// | --- | --- |
/// | `smtp://127.0.0.1:2525` | plain SMTP, loopback only (default port 25) |
/// | `smtps://user:pass@mail.example.jp:465` | implicit TLS (default port 465) |
/// | `smtp://mail.example.jp:587?tls=starttls` | STARTTLS, required (default port 587) |
/// | `smtp://mail.example.jp` | to a non-loopback host `smtp://` means STARTTLS too |
/// | `smtp://localhost:25?tls=none` | plain, said explicitly (loopback only) |
///
/// User and password are percent-decoded (`%40` for `@`, `%3A` for `:`). Query options:
/// `tls=starttls|none` (`smtp://` only), `timeout=SECONDS` (1–600, default 30; bounds
/// connecting and each send), `pool=N` (1–64, default 4: connections open at once,
/// kept for reuse), `hello=NAME` (the `EHLO` name; default the sender's domain).
#[derive(Clone)]
#[non_exhaustive]
pub struct SmtpConfig {
    /// Server host name or IP address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// `AUTH` credentials, if the relay wants them.
    pub credentials: Option<SmtpCredentials>,
    /// Upper bound, each on its own, for waiting for a free connection, for connecting
    /// (TCP, TLS, greeting, `EHLO`, `AUTH`) and for one send. A slow server fails the
    /// send as transient instead of hanging it.
    pub timeout: Duration,
    /// How many connections may be open at once; idle ones are kept for reuse.
    pub max_connections: usize,
    /// How long an idle connection is reused. Keep it below the server's own idle
    /// timeout (RFC 5321 asks servers for at least 5 minutes; many use 60 s).
    pub idle_timeout: Duration,
    /// The name sent with `EHLO`; default: the sender's domain.
    pub hello_name: Option<String>,
    /// `Reply-To:` of every mail (e.g. the insurer's help desk address), if replies
    /// should not go to the `From:` address.
    pub reply_to: Option<String>,
    /// Extra trusted root certificates (PEM), for a relay with a private CA. The
    /// system's roots stay trusted.
    pub root_certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials)
            .field("timeout", &self.timeout)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("hello_name", &self.hello_name)
            .field("reply_to", &self.reply_to)
            .field("root_certificates", &self.root_certificates.len())
            .finish()
    }
}

/// A configuration [`SmtpMailer`](super::SmtpMailer) cannot use. None of the variants
/// repeats the URL: it may hold a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// The URL is malformed; the field names the part (`scheme`, `userinfo`, `host`,
    /// `port`, `path`, `query`).
    #[error("SMTP URL: malformed {0}")]
    Url(&'static str),
    /// A query option this crate does not know, or a value out of range.
    #[error("SMTP URL: unknown option or value out of range (options: tls, timeout, pool, hello)")]
    Option,
    /// Plain SMTP to a host that is not loopback.
    #[error("plain SMTP is allowed to loopback addresses only; use smtps:// or tls=starttls")]
    PlainToRemoteHost,
    /// The insurer profile's `sender_address` is not a valid address.
    #[error("the insurer profile's sender_address is not a valid mail address")]
    SenderAddress,
    /// `reply_to` is not a valid address.
    #[error("reply_to is not a valid mail address")]
    ReplyTo,
    /// The `EHLO` name is empty or not a host name.
    #[error("the EHLO name is not a valid host name")]
    HelloName,
    /// A root certificate could not be read.
    #[error("a root certificate could not be read as PEM")]
    Certificate,
    /// TLS could not be set up (e.g. the platform's verifier failed to load).
    #[error("TLS could not be configured")]
    Tls,
}

impl SmtpConfigError {
    /// Stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            SmtpConfigError::Url(_) => "smtp_config.url",
            SmtpConfigError::Option => "smtp_config.option",
            SmtpConfigError::PlainToRemoteHost => "smtp_config.plain_to_remote_host",
            SmtpConfigError::SenderAddress => "smtp_config.sender_address",
            SmtpConfigError::ReplyTo => "smtp_config.reply_to",
            SmtpConfigError::HelloName => "smtp_config.hello_name",
            SmtpConfigError::Certificate => "smtp_config.certificate",
            SmtpConfigError::Tls => "smtp_config.tls",
        }
    }

    /// The text for the administrator who configures the portal (members never see
    /// it).
    pub fn message(&self, lang: Lang) -> Cow<'static, str> {
        match lang {
            Lang::En => Cow::Owned(self.to_string()),
            _ => Cow::Borrowed(match self {
                SmtpConfigError::Url(_) => "メール送信サーバーのURLの形式が正しくありません。",
                SmtpConfigError::Option => {
                    "メール送信サーバーのURLに不明なオプションか範囲外の値があります(使えるのは tls, timeout, pool, hello です)。"
                }
                SmtpConfigError::PlainToRemoteHost => {
                    "暗号化なしのSMTPは同じマシン(ループバック)宛てにだけ使えます。smtps:// か tls=starttls を指定してください。"
                }
                SmtpConfigError::SenderAddress => {
                    "保険者プロファイルの送信元メールアドレスが正しくありません。"
                }
                SmtpConfigError::ReplyTo => "返信先(Reply-To)のメールアドレスが正しくありません。",
                SmtpConfigError::HelloName => "EHLO で名乗るホスト名が正しくありません。",
                SmtpConfigError::Certificate => "ルート証明書(PEM)を読み込めません。",
                SmtpConfigError::Tls => "TLS の設定に失敗しました。",
            }),
        }
    }
}

/// Default `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `max_connections`.
const DEFAULT_MAX_CONNECTIONS: usize = 4;
/// Default `idle_timeout`.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl SmtpConfig {
    /// A configuration for `host:port` with the given protection and the defaults
    /// (30 s timeout, 4 connections, 30 s idle reuse, no credentials).
    pub fn new(host: impl Into<String>, port: u16, security: SmtpSecurity) -> Self {
        SmtpConfig {
            host: host.into(),
            port,
            security,
            credentials: None,
            timeout: DEFAULT_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            hello_name: None,
            reply_to: None,
            root_certificates: Vec::new(),
        }
    }

    /// Reads a configuration from a URL (see the table on [`SmtpConfig`]). Refuses
    /// plain SMTP to a host that is not loopback.
    pub fn from_url(url: &str) -> Result<Self, SmtpConfigError> {
        parse_url(url)
    }

    /// Sets the `AUTH` credentials.
    #[must_use]
    pub fn credentials(mut self, credentials: SmtpCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Sets the connect and send timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many connections may be open at once (at least 1).
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets how long an idle connection is reused.
    #[must_use]
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets the `EHLO` name.
    #[must_use]
    pub fn hello_name(mut self, name: impl Into<String>) -> Self {
        self.hello_name = Some(name.into());
        self
    }

    /// Sets `Reply-To:` (e.g. the help desk), shown with the insurer's name.
    #[must_use]
    pub fn reply_to(mut self, address: impl Into<String>) -> Self {
        self.reply_to = Some(address.into());
        self
    }

    /// Trusts one more root certificate (PEM), e.g. a private CA of the relay.
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Whether `host` is a loopback name or address (`localhost`, `127.0.0.0/8`,
    /// `::1`): the only hosts plain SMTP may go to.
    pub fn host_is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }

    /// Checks the rules that do not need the profile: plain only to loopback, a
    /// usable timeout and pool size.
    pub(super) fn check(&self) -> Result<(), SmtpConfigError> {
        if self.security == SmtpSecurity::Plain && !self.host_is_loopback() {
            return Err(SmtpConfigError::PlainToRemoteHost);
        }
        if self.host.is_empty() {
            return Err(SmtpConfigError::Url("host"));
        }
        if self.timeout.is_zero() || self.max_connections == 0 {
            return Err(SmtpConfigError::Option);
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Decodes `%XX` escapes; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_url(url: &str) -> Result<SmtpConfig, SmtpConfigError> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or(SmtpConfigError::Url("scheme"))?;
    let implicit = if scheme.eq_ignore_ascii_case("smtps") {
        true
    } else if scheme.eq_ignore_ascii_case("smtp") {
        false
    } else {
        return Err(SmtpConfigError::Url("scheme"));
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    if rest.contains('#') || query.is_some_and(|q| q.contains('#')) {
        return Err(SmtpConfigError::Url("path"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !(path.is_empty() || path == "/") {
        return Err(SmtpConfigError::Url("path"));
    }
    // The last '@' ends the user information, so an unescaped '@' in a password works.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (authority.get(..i), authority.get(i + 1..).unwrap_or("")),
        None => (None, authority),
    };
    let credentials = match userinfo {
        None => None,
        Some(ui) => {
            let (user, password) = ui.split_once(':').unwrap_or((ui, ""));
            let user = percent_decode(user).ok_or(SmtpConfigError::Url("userinfo"))?;
            let password = percent_decode(password).ok_or(SmtpConfigError::Url("userinfo"))?;
            if user.is_empty() {
                return Err(SmtpConfigError::Url("userinfo"));
            }
            Some(SmtpCredentials::new(user, password))
        }
    };
    let (host, port) = split_host_port(hostport)?;

    let mut tls: Option<&str> = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut pool = DEFAULT_MAX_CONNECTIONS;
    let mut hello = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or(SmtpConfigError::Url("query"))?;
        match k {
            "tls" => tls = Some(v),
            "timeout" => {
                let secs: u64 = v.parse().map_err(|_| SmtpConfigError::Option)?;
                if !(1..=600).contains(&secs) {
                    return Err(SmtpConfigError::Option);
                }
                timeout = Duration::from_secs(secs);
            }
            "pool" => {
                pool = v.parse().map_err(|_| SmtpConfigError::Option)?;
                if !(1..=64).contains(&pool) {
                    return Err(SmtpConfigError::Option);
                }
            }
            "hello" => {
                hello = Some(percent_decode(v).ok_or(SmtpConfigError::Url("query"))?);
            }
            _ => return Err(SmtpConfigError::Option),
        }
    }

    let security = match (implicit, tls) {
        (true, None | Some("implicit")) => SmtpSecurity::ImplicitTls,
        (true, Some(_)) => return Err(SmtpConfigError::Option),
        (false, Some("starttls")) => SmtpSecurity::StartTls,
        (false, Some("none")) => SmtpSecurity::Plain,
        (false, Some(_)) => return Err(SmtpConfigError::Option),
        (false, None) if is_loopback(&host) => SmtpSecurity::Plain,
        (false, None) => SmtpSecurity::StartTls,
    };
    let port = port.unwrap_or(match security {
        SmtpSecurity::ImplicitTls => 465,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Plain => 25,
    });
    let config = SmtpConfig {
        credentials,
        timeout,
        max_connections: pool,
        hello_name: hello,
        ..SmtpConfig::new(host, port, security)
    };
    config.check()?;
    Ok(config)
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), SmtpConfigError> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(SmtpConfigError::Url("host"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(SmtpConfigError::Url("host"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(SmtpConfigError::Url("port"))?),
        };
        (h, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let host_ok = !host.is_empty()
        && (s.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'));
    if !host_ok {
        return Err(SmtpConfigError::Url("host"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(SmtpConfigError::Url("port")),
        },
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The URL forms documented on `SmtpConfig` mean what the table says.
    #[test]
    fn smtp_url_forms_mean_what_the_docs_say() {
        type Case<'a> = (
            &'a str,
            &'a str,
            u16,
            SmtpSecurity,
            Option<(&'a str, &'a str)>,
        );
        let cases: &[Case<'_>] = &[
            (
                "smtp://127.0.0.1:2525",
                "127.0.0.1",
                2525,
                SmtpSecurity::Plain,
                None,
            ),
            (
                "smtp://localhost",
                "localhost",
                25,
                SmtpSecurity::Plain,
                None,
            ),
            ("smtp://[::1]:2525/", "::1", 2525, SmtpSecurity::Plain, None),
            (
                "smtps://user:pass@mail.example.jp:465",
                "mail.example.jp",
                465,
                SmtpSecurity::ImplicitTls,
                Some(("user", "pass")),
            ),
            (
                "smtps://mail.example.jp",
                "mail.example.jp",
                465,
                SmtpSecurity::ImplicitTls,
                None,
            ),
            (
                "smtp://mail.example.jp:587?tls=starttls",
                "mail.example.jp",
                587,
                SmtpSecurity::StartTls,
                None,
            ),
            (
                "smtp://mail.example.jp",
                "mail.example.jp",
                587,
                SmtpSecurity::StartTls,
                None,
            ),
            (
                "smtp://127.0.0.1?tls=starttls",
                "127.0.0.1",
                587,
                SmtpSecurity::StartTls,
                None,
            ),
            (
                "SMTP://u%40x.jp:p%3Aa@ss@localhost:2525?tls=none",
                "localhost",
                2525,
                SmtpSecurity::Plain,
                Some(("u@x.jp", "p:a@ss")),
            ),
        ];
        for (url, host, port, security, creds) in cases {
            let c = SmtpConfig::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(&c.host, host, "{url}");
            assert_eq!(c.port, *port, "{url}");
            assert_eq!(c.security, *security, "{url}");
            assert_eq!(
                c.credentials.as_ref().map(|c| (c.user(), c.password())),
                *creds,
                "{url}"
            );
        }
    }

    // Query options set the timeout, pool size and EHLO name, within their ranges.
    #[test]
    fn smtp_url_options_are_read_and_bounded() {
        let c =
            SmtpConfig::from_url("smtp://127.0.0.1:2525?timeout=5&pool=2&hello=portal.example.jp")
                .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.max_connections, 2);
        assert_eq!(c.hello_name.as_deref(), Some("portal.example.jp"));
        for bad in [
            "smtp://127.0.0.1?timeout=0",
            "smtp://127.0.0.1?timeout=601",
            "smtp://127.0.0.1?pool=0",
            "smtp://127.0.0.1?pool=65",
            "smtp://127.0.0.1?tls=maybe",
            "smtps://127.0.0.1?tls=starttls",
            "smtp://127.0.0.1?colour=blue",
        ] {
            assert_eq!(
                SmtpConfig::from_url(bad).unwrap_err(),
                SmtpConfigError::Option,
                "{bad}"
            );
        }
    }

    // Mails carry 暗証キー and links: they never cross a network in the clear.
    #[test]
    fn smtp_plain_is_refused_to_remote_hosts() {
        for url in [
            "smtp://mail.example.jp?tls=none",
            "smtp://192.0.2.10:25?tls=none",
            "smtp://localhost.example.jp?tls=none",
        ] {
            assert_eq!(
                SmtpConfig::from_url(url).unwrap_err(),
                SmtpConfigError::PlainToRemoteHost,
                "{url}"
            );
        }
        let c = SmtpConfig::new("mail.example.jp", 25, SmtpSecurity::Plain);
        assert_eq!(c.check().unwrap_err(), SmtpConfigError::PlainToRemoteHost);
    }

    // Malformed URLs are refused with the part named, never with the URL (it may hold a
    // password).
    #[test]
    fn smtp_url_errors_name_the_part_not_the_secret() {
        let cases = [
            ("http://127.0.0.1", "scheme"),
            ("127.0.0.1:25", "scheme"),
            ("smtp://", "host"),
            ("smtp://user:secret@", "host"),
            ("smtp://127.0.0.1:0", "port"),
            ("smtp://127.0.0.1:99999", "port"),
            ("smtp://127.0.0.1:+25", "port"),
            ("smtp://127.0.0.1/mail", "path"),
            ("smtp://%zz:secret@127.0.0.1", "userinfo"),
            ("smtp://:secret@127.0.0.1", "userinfo"),
            ("smtp://[::1", "host"),
            ("smtp://ho st", "host"),
            ("smtp://127.0.0.1?tls", "query"),
        ];
        for (url, part) in cases {
            let e = SmtpConfig::from_url(url).unwrap_err();
            assert_eq!(e, SmtpConfigError::Url(part), "{url}");
            assert!(!e.to_string().contains("secret"));
            assert!(!e.message(Lang::Ja).contains("secret"));
        }
    }

    // Debug output never shows the password.
    #[test]
    fn smtp_credentials_are_redacted_in_debug() {
        let c = SmtpConfig::from_url("smtps://u:hunter2@mail.example.jp").unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("[redacted]") && !shown.contains("hunter2"));
    }

    proptest! {
        // The URL parser never panics on any string.
        #[test]
        fn smtp_url_parser_never_panics(s in "\\PC*") {
            let _ = SmtpConfig::from_url(&s);
        }

        #[test]
        fn smtp_url_parser_never_panics_near_valid(s in "smtps?://[a-z%:@\\[\\]0-9./?=&]{0,40}") {
            let _ = SmtpConfig::from_url(&s);
        }
    }
}
