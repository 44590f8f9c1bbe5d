//! Shared by the example portal's tests (`portal_http.rs`, `portal_browser.rs`): the
//! outbox reader (`.eml` files with base64 bodies), an in-process HTTP client with one
//! cookie jar, and a way to register a member through the library directly.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kenpo_auth::Portal;
use kenpo_auth::testkit::fixtures;
use tower::ServiceExt as _;

/// One mail read back from the outbox.
#[derive(Clone, Debug)]
pub struct Mail {
    /// The kind from the file name (`registration_link`, `login_otp` …).
    pub kind: String,
    /// The `To:` header.
    pub to: String,
    /// The decoded text body.
    pub body: String,
    /// The file.
    pub path: PathBuf,
}

impl Mail {
    /// The first URL in the body that carries a token.
    pub fn link(&self) -> String {
        self.body
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("http") && l.contains("token="))
            .unwrap_or_else(|| panic!("no link in {} mail:\n{}", self.kind, self.body))
            .to_owned()
    }

    /// The token of [`Mail::link`].
    pub fn token(&self) -> String {
        let link = self.link();
        link.split_once("token=")
            .map(|(_, t)| t.to_owned())
            .unwrap_or_default()
    }

    /// The path and query of [`Mail::link`] (for the in-process client).
    pub fn link_path(&self) -> String {
        let link = self.link();
        let after_scheme = link.split_once("://").map(|(_, r)| r).unwrap_or(&link);
        after_scheme
            .find('/')
            .map(|i| after_scheme[i..].to_owned())
            .unwrap_or_default()
    }

    /// The 暗証キー in a `login_otp` mail (the line 「暗証キー：123456」).
    pub fn otp(&self) -> String {
        self.body
            .lines()
            .find_map(|l| {
                let rest = l.trim().strip_prefix("暗証キー")?;
                let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
                (digits.len() >= 6).then_some(digits)
            })
            .unwrap_or_else(|| panic!("no 暗証キー in mail:\n{}", self.body))
    }
}

/// Reads the `.eml` files the `OutboxMailer` writes. Remembers which files it has
/// handed out, so [`Outbox::next`] returns each mail once — file names sort by time,
/// but on a stopped `ManualClock` two mails share a timestamp.
#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Outbox {
            dir: dir.into(),
            seen: Default::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every mail so far, in file-name order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths.into_iter().map(|p| parse_eml(&p)).collect()
    }

    /// The mails of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.kind == kind)
            .collect()
    }

    /// Waits (up to 10 s) for a mail of `kind` not handed out before, and returns it.
    pub fn next(&self, kind: &str) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = {
                let seen = self.seen.lock().unwrap();
                self.of_kind(kind)
                    .into_iter()
                    .find(|m| !seen.contains(&m.path))
            };
            if let Some(m) = fresh {
                self.seen.lock().unwrap().insert(m.path.clone());
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no new {kind} mail in {} (have {:?})",
                self.dir.display(),
                self.mails()
                    .iter()
                    .map(|m| m.kind.clone())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Parses one `.eml`: headers, then a base64 body with CRLF line ends.
pub fn parse_eml(path: &Path) -> Mail {
    let text = std::fs::read_to_string(path).expect("read .eml");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and body");
    let to = head
        .lines()
        .find_map(|l| l.strip_prefix("To: "))
        .unwrap_or_default()
        .to_owned();
    assert!(
        head.contains("Content-Transfer-Encoding: base64"),
        "the outbox writes base64 bodies"
    );
    let b64: String = body.split_whitespace().collect();
    let bytes = STANDARD.decode(b64).expect("base64 body");
    let body = String::from_utf8(bytes)
        .expect("UTF-8 body")
        .replace("\r\n", "\n");
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // `{stamp}-{kind}-{random}.eml`
    let kind = name
        .split_once('-')
        .and_then(|(_, rest)| rest.rsplit_once('-'))
        .map(|(kind, _)| kind.to_owned())
        .unwrap_or_default();
    Mail {
        kind,
        to,
        body,
        path: path.to_owned(),
    }
}

/// Registers a member through the library (R1–R5), reading links from the outbox.
/// Returns nothing: the account exists afterwards.
pub async fn register_via_library(
    portal: &Portal,
    outbox: &Outbox,
    email: &str,
    card: &str,
    birth: &str,
    login_id: &str,
    password: &str,
) {
    portal.start_registration(email).await.expect("R1");
    let link1 = outbox.next("registration_link");
    let handle = portal
        .open_registration_link(&link1.token().parse().unwrap())
        .await
        .expect("R2");
    let shown = portal
        .verify_identity(&handle, fixtures::claim(card, birth))
        .await
        .expect("R3");
    let link2 = outbox.next("identity_verified");
    let handle = portal
        .confirm_auth_key(&link2.token().parse().unwrap(), &shown.auth_key)
        .await
        .expect("R4");
    let mut credentials = fixtures::credentials(login_id, password);
    credentials.nickname = None;
    portal
        .complete_registration(&handle, credentials)
        .await
        .expect("R5");
}

/// What an in-process request answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        hidden(&self.body, "csrf").expect("a csrf field on the page")
    }

    /// The hidden `page_token` of the 暗証キー page.
    pub fn page_token(&self) -> String {
        hidden(&self.body, "page_token").expect("a page_token field on the page")
    }
}

/// The value of `<input type="hidden" name="{name}" value="…">`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The text of the element with `id="{id}"` (up to the next tag).
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_owned())
}

/// A browser stand-in over the router (no network): a cookie jar (the session cookie in
/// `cookie`, the others — the double-submit token, the opened link — in `others`), no
/// redirects followed unless asked ([`Client::follow`]).
#[derive(Clone)]
pub struct Client {
    router: Router,
    pub cookie: Option<String>,
    pub cookie_name: String,
    pub others: std::collections::BTreeMap<String, String>,
    /// Servers the requests take turns on (a load balancer without sticky sessions);
    /// empty: `router` alone.
    pub rotation: Vec<Router>,
    sent: usize,
}

impl Client {
    pub fn new(router: Router, cookie_name: &str) -> Self {
        Client {
            router,
            cookie: None,
            cookie_name: cookie_name.to_owned(),
            others: Default::default(),
            rotation: Vec::new(),
            sent: 0,
        }
    }

    async fn send(&mut self, req: Request<Body>) -> Answer {
        let router = if self.rotation.is_empty() {
            self.router.clone()
        } else {
            self.rotation[self.sent % self.rotation.len()].clone()
        };
        self.sent += 1;
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        for v in headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap_or_default();
            let first = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                if name == self.cookie_name {
                    self.cookie = (!value.is_empty()).then(|| value.to_owned());
                } else if value.is_empty() {
                    self.others.remove(name);
                } else {
                    self.others.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(path);
        let mut pairs: Vec<String> = self
            .others
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if let Some(c) = &self.cookie {
            pairs.push(format!("{}={c}", self.cookie_name));
        }
        if !pairs.is_empty() {
            b = b.header(header::COOKIE, pairs.join("; "));
        }
        b
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let req = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(req).await
    }

    /// Follows `answer`'s 303s (GETs, as a browser does) to the page it ends on.
    pub async fn follow(&mut self, mut answer: Answer) -> Answer {
        for _ in 0..5 {
            if answer.status != StatusCode::SEE_OTHER {
                break;
            }
            let to = answer.location().to_owned();
            answer = self.get(&to).await;
        }
        answer
    }

    /// A post, then the page its 303 leads to (post-redirect-get).
    pub async fn post_follow(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let answer = self.post(path, fields).await;
        self.follow(answer).await
    }

    /// A post with a body and content type as given (malformed forms).
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: &str) -> Answer {
        let req = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }
}
