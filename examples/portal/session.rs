//! Server-side web sessions, small and self-contained.
//!
//! - The browser holds a random 256-bit id (base64url, 43 characters) in a cookie; the
//!   server keeps only its SHA-256, so a dump of the session table cannot be replayed
//!   (SEC-32).
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`; behind HTTPS it is
//!   `__Host-kenpo_sid` with `Secure` (SEC-35). It holds no personal data.
//! - Idle timeout 30 min, absolute timeout 8 h, both enforced on the server (SEC-33).
//! - [`Session::rotate`] issues a new id and drops the old record — called when the
//!   暗証キー is accepted, so a fixated pre-auth id is worthless afterwards (SEC-32).
//! - Every session has a synchronizer CSRF token; [`session_layer`] checks it on every
//!   POST, in constant time, before any handler runs.
//!
//! tower-sessions' database stores clash with this crate's dependency graph
//! (DEPENDENCIES.md), and its memory store stores ids in clear; this is the hundred lines
//! that were needed instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kenpo_auth::ports::{AccountId, Clock, SecurityStamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::AppState;
use super::pages;

/// Cookie name over plain-http localhost (a `__Host-` cookie requires `Secure`).
pub(crate) const DEV_COOKIE: &str = "kenpo_sid";
/// Cookie name behind HTTPS (SEC-35).
pub(crate) const SECURE_COOKIE: &str = "__Host-kenpo_sid";
/// The form field every POST carries.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Largest form body read (the forms are a few hundred bytes).
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Sessions kept at most; beyond, expired ones are purged and then new visitors get 503.
const MAX_SESSIONS: usize = 100_000;

/// What a session remembers between requests.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionData {
    /// Link 1 as it arrived, swapped out of the URL (SEC-39); consumed by the POST.
    pub registration_link: Option<String>,
    /// The registration flow handle (after link 1, or after link 2 + 認証キー).
    pub flow_handle: Option<String>,
    /// Link 2 as it arrived, swapped out of the URL; consumed with the 認証キー.
    pub verification_link: Option<String>,
    /// The password-reset link as it arrived, swapped out of the URL.
    pub reset_link: Option<String>,
    /// The password-reset handle, once the link was opened (POST).
    pub reset_handle: Option<String>,
    /// The open 暗証キー screen.
    pub otp: Option<OtpScreen>,
    /// Set once the 暗証キー was accepted (in a rotated session).
    pub signed_in: Option<SignedIn>,
    /// A message for the next page (post-redirect-get), shown once.
    pub flash_error: Option<String>,
}

/// The 暗証キー screen's state.
#[derive(Clone, Debug)]
pub(crate) struct OtpScreen {
    /// The challenge handle (kept server-side; the page never sees it).
    pub challenge: String,
    /// The registered address, masked, for 「…へ送信しました」.
    pub masked_email: String,
    /// When the current code stops working.
    pub expires_at: OffsetDateTime,
    /// A per-page token the close beacon and heartbeats must carry, so a stale tab can
    /// never close a newer challenge.
    pub page_token: String,
}

/// A logged-in member.
#[derive(Clone, Debug)]
pub(crate) struct SignedIn {
    /// Who.
    pub account: AccountId,
    /// Compared with the account's current stamp on every protected request (SEC-34).
    pub stamp: SecurityStamp,
}

#[derive(Debug)]
struct Record {
    created_at: OffsetDateTime,
    last_seen: OffsetDateTime,
    csrf: String,
    data: SessionData,
}

/// The session table.
pub(crate) struct Sessions {
    map: Mutex<HashMap<[u8; 32], Record>>,
    clock: Arc<dyn Clock>,
    idle: Duration,
    absolute: Duration,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("count", &self.count())
            .field("idle", &self.idle)
            .field("absolute", &self.absolute)
            .finish_non_exhaustive()
    }
}

/// How a session lookup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The cookie named a live session.
    Live,
    /// No cookie, or one the server does not know.
    Unknown,
    /// The cookie named a session that timed out (idle or absolute); it is gone now.
    TimedOut,
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// An empty table with the given timeouts; `secure` picks the `__Host-` cookie.
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        idle: Duration,
        absolute: Duration,
        secure: bool,
    ) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            clock,
            idle,
            absolute,
            secure,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Record>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cookie's name.
    pub(crate) fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            DEV_COOKIE
        }
    }

    /// How many sessions are held.
    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    fn expired(&self, r: &Record, now: OffsetDateTime) -> bool {
        now >= r.last_seen + self.idle || now >= r.created_at + self.absolute
    }

    /// Drops every timed-out session.
    pub(crate) fn purge_expired(&self) {
        let now = self.clock.now();
        let mut map = self.lock();
        map.retain(|_, r| !(now >= r.last_seen + self.idle || now >= r.created_at + self.absolute));
    }

    /// Finds a live session by the id from the cookie and marks it used now.
    fn touch(&self, id: &str) -> Lookup {
        let now = self.clock.now();
        let key = key_of(id);
        let mut map = self.lock();
        match map.get_mut(&key) {
            None => Lookup::Unknown,
            Some(r) if self.expired(r, now) => {
                map.remove(&key);
                Lookup::TimedOut
            }
            Some(r) => {
                r.last_seen = now;
                Lookup::Live
            }
        }
    }

    /// A new session; returns its id (for the cookie), or `None` when the table is full.
    fn create(&self, data: SessionData) -> Option<String> {
        let now = self.clock.now();
        let id = random_id();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, r| {
                !(now >= r.last_seen + self.idle || now >= r.created_at + self.absolute)
            });
            if map.len() >= MAX_SESSIONS {
                return None;
            }
        }
        map.insert(
            key_of(&id),
            Record {
                created_at: now,
                last_seen: now,
                csrf: random_id(),
                data,
            },
        );
        Some(id)
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Record) -> T) -> Option<T> {
        self.lock().get_mut(&key_of(id)).map(f)
    }

    fn remove(&self, id: &str) {
        self.lock().remove(&key_of(id));
    }

    /// Whether the table holds a session for this id (tests: the old id is gone after
    /// rotation and logout).
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.lock().contains_key(&key_of(id))
    }

    /// Whether any stored key equals the id itself (tests: only digests are stored).
    #[cfg(test)]
    pub fn stores_plain_id(&self, id: &str) -> bool {
        let bytes = id.as_bytes();
        self.lock().keys().any(|k| k.as_slice() == bytes)
    }

    fn set_cookie(&self, id: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name()
        )
    }

    fn clear_cookie(&self) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age=0",
            self.cookie_name()
        )
    }
}

enum CookieOut {
    Keep,
    Set(String),
    Clear,
}

struct Current {
    id: Option<String>,
    cookie: CookieOut,
}

/// A handle on the request's session, put in the request's extensions by
/// [`session_layer`].
#[derive(Clone)]
pub(crate) struct Session {
    sessions: Arc<Sessions>,
    current: Arc<Mutex<Current>>,
    lookup: Lookup,
}

impl Session {
    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of what the session remembers.
    pub(crate) fn data(&self) -> SessionData {
        let id = self.current().id.clone();
        id.and_then(|id| self.sessions.with(&id, |r| r.data.clone()))
            .unwrap_or_default()
    }

    /// Changes what the session remembers.
    pub(crate) fn update(&self, f: impl FnOnce(&mut SessionData)) {
        let id = self.current().id.clone();
        if let Some(id) = id {
            self.sessions.with(&id, |r| f(&mut r.data));
        }
    }

    /// The synchronizer token for this session's forms.
    pub(crate) fn csrf(&self) -> String {
        let id = self.current().id.clone();
        id.and_then(|id| self.sessions.with(&id, |r| r.csrf.clone()))
            .unwrap_or_default()
    }

    /// SEC-32: drops this session and starts a new one, with a new id, a new CSRF token
    /// and only `data` — nothing of the pre-auth state survives.
    pub(crate) fn rotate(&self, data: SessionData) -> bool {
        let mut cur = self.current();
        if let Some(old) = cur.id.take() {
            self.sessions.remove(&old);
        }
        match self.sessions.create(data) {
            Some(id) => {
                cur.cookie = CookieOut::Set(id.clone());
                cur.id = Some(id);
                true
            }
            None => {
                cur.cookie = CookieOut::Clear;
                false
            }
        }
    }

    /// Logout: the session is gone on the server, and the cookie is cleared (SEC-34).
    pub(crate) fn destroy(&self) {
        let mut cur = self.current();
        if let Some(old) = cur.id.take() {
            self.sessions.remove(&old);
        }
        cur.cookie = CookieOut::Clear;
    }

    /// Whether the request came with a session that had just timed out.
    pub(crate) fn timed_out(&self) -> bool {
        self.lookup == Lookup::TimedOut
    }
}

/// The session id from the request's `Cookie` header, if well-formed.
fn cookie_id(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Constant-time comparison of a submitted token with the expected one.
pub(crate) fn tokens_match(submitted: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// Loads (or starts) the session, checks the CSRF token of every POST, runs the handler
/// and sets or clears the cookie.
pub(crate) async fn session_layer(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/static/") {
        return next.run(req).await;
    }
    let sessions = state.sessions.clone();
    let name = sessions.cookie_name();
    let (id, lookup, cookie) = match cookie_id(&req, name) {
        Some(id) => match sessions.touch(&id) {
            Lookup::Live => (Some(id), Lookup::Live, CookieOut::Keep),
            other => match sessions.create(SessionData::default()) {
                Some(new) => (Some(new.clone()), other, CookieOut::Set(new)),
                None => return pages::unavailable(),
            },
        },
        None => match sessions.create(SessionData::default()) {
            Some(new) => (Some(new.clone()), Lookup::Unknown, CookieOut::Set(new)),
            None => return pages::unavailable(),
        },
    };
    let session = Session {
        sessions: sessions.clone(),
        current: Arc::new(Mutex::new(Current { id, cookie })),
        lookup,
    };

    let req = if req.method() == Method::POST {
        match check_csrf(req, &session).await {
            Ok(req) => req,
            Err(resp) => return finish(&session, resp),
        }
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(session.clone());
    let resp = next.run(req).await;
    finish(&session, resp)
}

fn finish(session: &Session, mut resp: Response) -> Response {
    let value = match &session.current().cookie {
        CookieOut::Keep => None,
        CookieOut::Set(id) => Some(session.sessions.set_cookie(id)),
        CookieOut::Clear => Some(session.sessions.clear_cookie()),
    };
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// Reads the form body, compares its `csrf` field with the session's token, and gives
/// the request back with its body restored.
async fn check_csrf(req: Request, session: &Session) -> Result<Request, Response> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(pages::csrf_failed(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(pages::csrf_failed(StatusCode::PAYLOAD_TOO_LARGE));
    };
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let submitted = fields
        .iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !tokens_match(submitted, &session.csrf()) {
        return Err(pages::csrf_failed(StatusCode::FORBIDDEN));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
