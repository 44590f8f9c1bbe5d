//! Starts `tests/support/smtp_sink.py` (a real SMTP server, aiosmtpd) on a free
//! loopback port and reads what it received. Shared by `tests/smtp.rs` and
//! `benches/smtp.rs` (`#[path]`).
//!
//! Python and aiosmtpd are required, never optional: without them this panics with the
//! install command, so a missing install fails the run instead of skipping the tests.
//! `KENPO_TEST_PYTHON` names another interpreter (default `python3`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
pub const TLS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/tls");

const INSTALL_HINT: &str = "the smtp tests need Python 3 with aiosmtpd: \
    `python3 -m pip install aiosmtpd` (or `apt-get install python3-aiosmtpd`); \
    set KENPO_TEST_PYTHON to use another interpreter";

/// How the sink listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkTls {
    Plain,
    Implicit,
    StartTls,
}

#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub tls: SinkTls,
    pub auth: Option<(String, String)>,
    /// Accept and count nothing to disk (benchmarks).
    pub discard: bool,
    /// Close connections idle this long.
    pub idle_timeout: Option<Duration>,
    /// Listen on this port (a server coming back where the mailer expects it) instead
    /// of a free one.
    pub port: Option<u16>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            tls: SinkTls::Plain,
            auth: None,
            discard: false,
            idle_timeout: None,
            port: None,
        }
    }
}

/// A running sink; killed (and its directory removed) on drop.
pub struct Sink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

/// One mail as a mail client shows it (decoded by Python's `email` package), and the
/// bytes as received.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub raw: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedMail {
    /// The decoded value of the first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw (encoded) value of header `name`, unfolded.
    pub fn raw_header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "kenpo-smtp-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

impl Sink {
    pub fn start(opts: SinkOptions) -> Sink {
        let python = std::env::var("KENPO_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let dir = temp_dir("sink");
        let stderr_path = dir.join("sink.stderr");
        // A port found free can be taken before the sink binds it; try a few.
        for _ in 0..5 {
            let port = opts.port.unwrap_or_else(free_port);
            let mut cmd = Command::new(&python);
            cmd.arg(SCRIPT)
                .arg("--port")
                .arg(port.to_string())
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::from(
                    std::fs::File::create(&stderr_path).expect("create stderr file"),
                ));
            if opts.discard {
                cmd.arg("--discard");
            }
            match opts.tls {
                SinkTls::Plain => {}
                SinkTls::Implicit => {
                    cmd.arg("--implicit-tls");
                }
                SinkTls::StartTls => {
                    cmd.arg("--starttls");
                }
            }
            if opts.tls != SinkTls::Plain {
                cmd.arg("--tls-cert")
                    .arg(Path::new(TLS_DIR).join("server.pem"))
                    .arg("--tls-key")
                    .arg(Path::new(TLS_DIR).join("server.key"));
            }
            if let Some(t) = opts.idle_timeout {
                cmd.arg("--idle-timeout").arg(t.as_secs_f64().to_string());
            }
            if let Some((u, p)) = &opts.auth {
                cmd.arg("--auth").arg(format!("{u}:{p}"));
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => panic!("cannot run `{python}` ({e}); {INSTALL_HINT}"),
            };
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.starts_with("READY") => {
                    wait_for_port(port);
                    return Sink { child, port, dir };
                }
                _ => {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    if err.contains("aiosmtpd") && err.contains("missing")
                        || err.contains("No module named")
                    {
                        panic!("the SMTP sink could not start: {err}\n{INSTALL_HINT}");
                    }
                    if err.contains("Address already in use") {
                        continue;
                    }
                    panic!("the SMTP sink did not start (exit {status:?}): {err}\n{INSTALL_HINT}");
                }
            }
        }
        panic!("the SMTP sink found no free port");
    }

    pub fn plain() -> Sink {
        Sink::start(SinkOptions::default())
    }

    /// Every mail received so far, in order.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with(".decoded.txt"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .map(|decoded| {
                let text = std::fs::read_to_string(&decoded).expect("read decoded mail");
                let raw_path = decoded.to_string_lossy().replace(".decoded.txt", ".eml");
                let raw = std::fs::read_to_string(raw_path).expect("read raw mail");
                let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
                let headers = head
                    .lines()
                    .filter_map(|l| l.split_once(": ").or_else(|| l.split_once(':')))
                    .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
                    .collect();
                ReceivedMail {
                    raw,
                    headers,
                    body: body.replace("\r\n", "\n"),
                }
            })
            .collect()
    }

    /// Waits until at least `n` mails arrived.
    pub fn wait_for(&self, n: usize) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails, the sink has {}",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The sink's log: `250 rcpt`, `451 rcpt`, `550 rcpt` per RCPT TO and `EHLO name`
    /// per greeting.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("attempts.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the sink never opened port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
