//! A [`Mailer`] that writes each mail as an RFC 5322 `.eml` file into a folder, for
//! development and the example portal: open the file in any mail client, or read the
//! typed message in tests.
//!
//! Each file is a complete message: `From` (the profile's sender, display name
//! RFC 2047-encoded), `To`, `Subject` (RFC 2047 `B`-encoded UTF-8 when it is not plain
//! ASCII), `Date` (RFC 2822, Japan time `+0900`), `Message-ID` on the sender's domain,
//! `MIME-Version`, `Content-Type: text/plain; charset=UTF-8`,
//! `Content-Transfer-Encoding: base64` (lines of 76) and `Auto-Submitted: auto-generated`.
//! Lines end in CRLF, and the body is encoded in that canonical form (RFC 2045 §6.8).
//!
//! The files hold live links and codes: the outbox is for development machines, never
//! for production. The log line names the file and the kind of mail, never its content
//! (SEC-39: tokens never appear in logs).

use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngExt as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use time::macros::offset;

use crate::mail::OutgoingMail;
use crate::policy::InsurerProfile;
use crate::ports::{Clock, MailError, Mailer, SystemClock};

/// Writes every mail to `{dir}/{timestamp}-{kind}-{random}.eml`.
///
/// File names sort in the order the mails were written (the timestamp is UTC with
/// nanoseconds). A file appears whole or not at all: it is written under a hidden
/// temporary name and renamed.
///
/// Writing uses `std::fs` directly inside `send`: a mail is a few kilobytes on a local
/// disk, which takes microseconds, and this keeps the mailer free of any runtime
/// (`tokio::task::spawn_blocking` would panic outside a Tokio runtime). Do not point it
/// at a slow network share.
#[derive(Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    profile: InsurerProfile,
    clock: Arc<dyn Clock>,
}

impl OutboxMailer {
    /// An outbox in `dir` (created with its parents if missing) sending as `profile`'s
    /// sender.
    pub fn new(dir: impl Into<PathBuf>, profile: InsurerProfile) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(OutboxMailer {
            dir,
            profile,
            clock: Arc::new(SystemClock),
        })
    }

    /// Takes the `Date` header and file-name timestamps from `clock` instead of the
    /// system clock, so a demo on a manual clock writes the times it simulates.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The folder the mails are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, mail: &OutgoingMail) -> io::Result<PathBuf> {
        let now = self.clock.now();
        let unique = format!("{:016x}", rand::rng().random::<u64>());
        let stamp = file_stamp(now);
        let name = format!("{stamp}-{}-{unique}.eml", mail.message.kind());
        let id_stamp: String = stamp
            .chars()
            .take(15)
            .filter(char::is_ascii_digit)
            .collect();
        let text = eml(mail, &self.profile, now, &format!("{id_stamp}.{unique}"));
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        // The mail holds a link or a 暗証キー: readable by the portal's user only (SEC-04).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(path)
    }
}

impl fmt::Debug for OutboxMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMailer")
            .field("dir", &self.dir)
            .field("sender", &self.profile.sender_address)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let path = self
            .write(mail)
            .map_err(|e| MailError::Transient(Box::new(e)))?;
        tracing::info!(
            path = %path.display(),
            kind = mail.message.kind(),
            to = %mail.to.masked(),
            "mail written to outbox"
        );
        Ok(())
    }
}

/// Japan Standard Time, for the `Date` header members' clients show.
const JST: time::UtcOffset = offset!(+9);

/// `20261124T063000.123456789Z`: UTC, sortable, valid in file names on every system.
fn file_stamp(now: OffsetDateTime) -> String {
    let t = now
        .checked_to_offset(time::UtcOffset::UTC)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// The whole message text, CRLF line endings. `unique` is the local part of the
/// Message-ID.
fn eml(mail: &OutgoingMail, profile: &InsurerProfile, now: OffsetDateTime, unique: &str) -> String {
    let sender = address(&profile.sender_address);
    let from = match encoded_words(&header_text(&profile.insurer_name)) {
        name if name.is_empty() => format!("<{sender}>"),
        name => {
            // Fold before the address when it would not fit on the name's last line.
            let last = name.rsplit("\r\n").next().map_or(0, str::len);
            let room = if name.contains("\r\n") {
                78
            } else {
                78 - "From: ".len()
            };
            let gap = if last + 3 + sender.len() > room {
                "\r\n "
            } else {
                " "
            };
            format!("{name}{gap}<{sender}>")
        }
    };
    let date = now
        .checked_to_offset(JST)
        .and_then(|t| t.format(&Rfc2822).ok())
        .unwrap_or_else(|| "Thu, 01 Jan 1970 09:00:00 +0900".to_owned());
    let domain = match profile.sender_domain() {
        d if !d.is_empty()
            && d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            d
        }
        _ => "localhost.invalid",
    };
    let headers = [
        ("From", from),
        ("To", address(mail.to.for_sending())),
        ("Subject", subject(&mail.rendered.subject)),
        ("Date", date),
        ("Message-ID", format!("<{unique}@{domain}>")),
        ("MIME-Version", "1.0".to_owned()),
        ("Content-Type", "text/plain; charset=UTF-8".to_owned()),
        ("Content-Transfer-Encoding", "base64".to_owned()),
        ("Auto-Submitted", "auto-generated".to_owned()),
    ];
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let canonical = mail
        .rendered
        .body
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let encoded = STANDARD.encode(canonical.as_bytes());
    // Base64 output is ASCII, so splitting its bytes never splits a character.
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
    out
}

/// A header value with every control character (CR, LF, TAB …) removed: nothing from a
/// profile or a template can start a header of its own.
fn header_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// An address for `From`/`To`: no controls, no spaces, no brackets or commas that could
/// add a recipient.
fn address(s: &str) -> String {
    s.chars()
        .filter(|&c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>' | ','))
        .collect()
}

/// The Subject header: plain when it is short printable ASCII, RFC 2047 otherwise.
fn subject(s: &str) -> String {
    let s = header_text(s);
    let plain = s.len() <= 66 && s.bytes().all(|b| (0x20..0x7f).contains(&b)) && !s.contains("=?");
    if plain { s } else { encoded_words(&s) }
}

/// Most UTF-8 bytes per encoded word: 39 bytes are 52 base64 characters, so a word is
/// 64 characters and `Subject: ` plus one word stays under 78 (RFC 2047 §2 allows 75
/// per word; RFC 5322 §2.1.1 asks for lines ≤ 78).
const WORD_BYTES: usize = 39;

/// RFC 2047 `B` encoding of `s` in UTF-8, split only between characters (§5: a word must
/// hold whole characters), words folded onto continuation lines.
fn encoded_words(s: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if !chunk.is_empty() && chunk.len() + c.len_utf8() > WORD_BYTES {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use time::macros::datetime;

    use super::*;
    use crate::domain::EmailAddress;
    use crate::lang::Lang;
    use crate::mail::{MailMessage, RenderedMail, render};
    use crate::token::OtpCode;

    struct Fixed(OffsetDateTime);
    impl Clock for Fixed {
        fn now(&self) -> OffsetDateTime {
            self.0
        }
    }

    fn profile() -> InsurerProfile {
        InsurerProfile::new(
            "さくら健康保険組合",
            "さくらけんぽWeb",
            "no-reply@sakura-kenpo.example.jp",
            "さくら健康保険組合 適用グループ 03-0000-0000",
            "https://portal.sakura-kenpo.example.jp",
        )
    }

    fn otp_mail() -> OutgoingMail {
        let message = MailMessage::LoginOtp {
            code: OtpCode::generate(&mut StdRng::seed_from_u64(7), 6),
            expires_at: datetime!(2026-11-24 06:40 UTC),
        };
        OutgoingMail {
            to: EmailAddress::parse("sakura.taro@example.jp").unwrap(),
            lang: Lang::Ja,
            rendered: render::render(&message, &profile(), Lang::Ja),
            message,
        }
    }

    /// A fresh folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new() -> Self {
            let n: u64 = rand::rng().random();
            TempDir(std::env::temp_dir().join(format!("kenpo-auth-outbox-{n:016x}")))
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Splits a message into unfolded headers and its body (RFC 5322 §2.2.3).
    fn parse(text: &str) -> (HashMap<String, String>, String) {
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut headers: HashMap<String, String> = HashMap::new();
        let mut last = String::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                headers.get_mut(&last).unwrap().push_str(line);
            } else {
                let (name, value) = line.split_once(": ").unwrap();
                assert!(
                    headers.insert(name.to_owned(), value.to_owned()).is_none(),
                    "duplicate header {name}"
                );
                last = name.to_owned();
            }
        }
        (headers, body.to_owned())
    }

    /// Decodes a run of RFC 2047 `B` words in UTF-8 (whitespace between words is dropped,
    /// RFC 2047 §6.2).
    fn decode_words(value: &str) -> String {
        let mut bytes = Vec::new();
        for word in value.split_whitespace() {
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap_or_else(|| panic!("not an encoded word: {word}"));
            let decoded = STANDARD.decode(inner).unwrap();
            // Each word holds whole characters.
            assert!(std::str::from_utf8(&decoded).is_ok());
            bytes.extend(decoded);
        }
        String::from_utf8(bytes).unwrap()
    }

    /// The outbox writes one parseable file: its Subject decodes back to the Japanese
    /// subject, its base64 body to the rendered body, and its headers are the promised ones.
    #[tokio::test]
    async fn outbox_writes_a_parseable_eml_that_decodes_back() {
        let tmp = TempDir::new();
        let outbox = OutboxMailer::new(tmp.0.join("outbox"), profile())
            .unwrap()
            .with_clock(Arc::new(Fixed(datetime!(2026-11-24 06:30:00.5 UTC))));
        let mail = otp_mail();
        outbox.send(&mail).await.unwrap();

        let entries: Vec<PathBuf> = fs::read_dir(outbox.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "exactly one file, no temporary left");
        let name = entries[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("20261124T063000.500000000Z-login_otp-") && name.ends_with(".eml"),
            "{name}"
        );

        let text = fs::read_to_string(&entries[0]).unwrap();
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
        for l in text.split("\r\n") {
            assert!(l.len() <= 78, "{l}");
        }
        let (headers, body) = parse(&text);

        assert_eq!(decode_words(&headers["Subject"]), "暗証キーのご案内");
        let from = &headers["From"];
        let (name, addr) = from.rsplit_once(' ').unwrap();
        assert_eq!(decode_words(name), "さくら健康保険組合");
        assert_eq!(addr, "<no-reply@sakura-kenpo.example.jp>");
        assert_eq!(headers["To"], "sakura.taro@example.jp");
        assert_eq!(headers["Date"], "Tue, 24 Nov 2026 15:30:00 +0900");
        let id = &headers["Message-ID"];
        assert!(id.starts_with('<') && id.ends_with("@sakura-kenpo.example.jp>"));
        assert_eq!(headers["MIME-Version"], "1.0");
        assert_eq!(headers["Content-Type"], "text/plain; charset=UTF-8");
        assert_eq!(headers["Content-Transfer-Encoding"], "base64");
        assert_eq!(headers["Auto-Submitted"], "auto-generated");
        assert_eq!(headers.len(), 9);

        assert!(body.split("\r\n").all(|l| l.len() <= 76));
        let decoded = STANDARD.decode(body.replace("\r\n", "")).unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        assert_eq!(decoded, mail.rendered.body.replace('\n', "\r\n"));
    }

    #[tokio::test]
    async fn each_mail_gets_its_own_file_and_message_id() {
        let tmp = TempDir::new();
        let outbox = OutboxMailer::new(&tmp.0, profile())
            .unwrap()
            .with_clock(Arc::new(Fixed(datetime!(2026-11-24 06:30 UTC))));
        for _ in 0..3 {
            outbox.send(&otp_mail()).await.unwrap();
        }
        let ids: std::collections::HashSet<String> = fs::read_dir(outbox.dir())
            .unwrap()
            .map(|e| parse(&fs::read_to_string(e.unwrap().path()).unwrap()).0["Message-ID"].clone())
            .collect();
        assert_eq!(ids.len(), 3);
    }

    /// SEC-04: a mail holds its 暗証キー or link, so its file is readable by the portal's
    /// own user only.
    #[cfg(unix)]
    #[tokio::test]
    async fn sec_04_eml_files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new();
        let outbox = OutboxMailer::new(&tmp.0, profile()).unwrap();
        outbox.send(&otp_mail()).await.unwrap();
        for entry in fs::read_dir(outbox.dir()).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
    }

    /// SEC-04: `Debug` of a mail — what a host logs when a send fails — shows neither
    /// the 暗証キー nor a link's token.
    #[test]
    fn sec_04_debug_of_a_mail_holds_no_secret() {
        let otp = otp_mail();
        let MailMessage::LoginOtp { code, .. } = &otp.message else {
            panic!("an OTP mail");
        };
        let text = format!("{otp:?}");
        assert!(!text.contains(code.expose_secret()), "{text}");
        assert!(otp.rendered.body.contains(code.expose_secret()));

        let token = crate::token::RegistrationLinkToken::generate(&mut rand::rng());
        let link = crate::mail::MailLink {
            url: profile().link("/registration/link", token.expose_secret()),
            token: token.clone(),
            expires_at: datetime!(2026-11-24 09:30 UTC),
        };
        let message = MailMessage::RegistrationLink(link);
        let mail = OutgoingMail {
            to: EmailAddress::parse("sakura.taro@example.jp").unwrap(),
            lang: Lang::Ja,
            rendered: render::render(&message, &profile(), Lang::Ja),
            message,
        };
        let text = format!("{mail:?}");
        assert!(!text.contains(token.expose_secret()), "{text}");
        assert!(text.contains("/registration/link?[redacted]"), "{text}");
    }

    /// RFC 2047 §2, §5: long Japanese subjects become several words of at most 75
    /// characters, each holding whole characters, and decode back unchanged.
    #[test]
    fn long_subjects_split_into_words_on_character_boundaries() {
        let subject_text = "暗証キーによるログインが完了しませんでした";
        let header = subject(subject_text);
        assert!(header.contains("\r\n "), "folded");
        for word in header.split("\r\n ") {
            assert!(word.len() <= 75);
            assert!(format!("Subject: {word}").len() <= 78);
        }
        assert_eq!(decode_words(&header), subject_text);
        assert_eq!(subject("Your login ID"), "Your login ID");
        assert_eq!(decode_words(&subject("a =?x?= b")), "a =?x?= b");
        assert_eq!(encoded_words(""), "");
    }

    /// Header injection: a CR/LF in a profile name or a template's subject cannot start a
    /// header of its own.
    #[test]
    fn values_cannot_inject_headers() {
        let mut p = profile();
        p.insurer_name = "さくら\r\nBcc: evil@example.test".to_owned();
        p.sender_address = "no-reply@sakura-kenpo.example.jp>, evil@example.test".to_owned();
        let mut mail = otp_mail();
        mail.rendered = RenderedMail {
            subject: "Hello\r\nBcc: evil@example.test".to_owned(),
            body: "x\n".to_owned(),
        };
        let text = eml(&mail, &p, datetime!(2026-11-24 06:30 UTC), "u");
        let (headers, _) = parse(&text);
        assert!(!headers.contains_key("Bcc"));
        assert_eq!(headers["Subject"], "HelloBcc: evil@example.test");
        assert!(!headers["From"].contains(", "));
        assert_eq!(headers["From"].matches('<').count(), 1);
    }

    #[test]
    fn new_creates_the_folder() {
        let tmp = TempDir::new();
        let dir = tmp.0.join("a/b");
        let outbox = OutboxMailer::new(&dir, profile()).unwrap();
        assert!(dir.is_dir());
        assert!(format!("{outbox:?}").contains("OutboxMailer"));
    }
}
