//! Server-side web sessions, small and self-contained.
//!
//! - The browser holds a random 256-bit id (base64url, 43 characters) in a cookie; the
//!   server keeps only its SHA-256, so a dump of the session table cannot be replayed
//!   (SEC-32).
//! - The cookie is `HttpOnly`, `SameSite=Lax`, `Path=/`; behind HTTPS it is
//!   `__Host-kenpo_sid` with `Secure` (SEC-35). It holds no personal data.
//! - Idle timeout 30 min, absolute timeout 8 h, both enforced on the server (SEC-33).
//! - [`Session::rotate_with_handover`] issues a new id and drops the old record — called when the
//!   暗証キー is accepted, so a fixated pre-auth id is worthless afterwards (SEC-32).
//! - No request creates a session by itself: a page is served without one, and a session
//!   is created only when a handler stores something (a form post that moves a journey
//!   on). So cookieless requests — crawlers, `/favicon.ico`, a flood of GETs — cost the
//!   server no memory. Forms shown before there is a session carry a token that is also
//!   in a `kenpo_csrf` cookie (double submit, `SameSite=Lax`, `__Host-` behind HTTPS);
//!   once there is a session, its own synchronizer token. [`session_layer`] checks the
//!   token of every POST, in constant time, before any handler runs.
//! - Form posts are exact: `Content-Type` must be `application/x-www-form-urlencoded`
//!   (with parameters at most), and a field sent twice is refused with the portal's own
//!   page, before any handler runs.
//! - Posts of one session run one after the other, and each runs to its end in its own
//!   task even if the browser gave up on it (a double tap cancels the first request):
//!   the second post of a double submit sees what the first did, and a step the library
//!   completed is always recorded in the session.
//!
//! tower-sessions' database stores clash with this crate's dependency graph
//! (DEPENDENCIES.md), and its memory store stores ids in clear; this is the few hundred
//! lines that were needed instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kenpo_auth::ports::{AccountId, Clock, SecurityStamp};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use serde::{Deserialize, Serialize};

use super::AppState;
use super::pages;
use super::session_store::SessionBackend;

/// Cookie name over plain-http localhost (a `__Host-` cookie requires `Secure`).
pub(crate) const DEV_COOKIE: &str = "kenpo_sid";
/// Cookie name behind HTTPS (SEC-35).
pub(crate) const SECURE_COOKIE: &str = "__Host-kenpo_sid";
/// The double-submit token of forms shown before there is a session.
pub(crate) const DEV_CSRF_COOKIE: &str = "kenpo_csrf";
/// The same behind HTTPS.
pub(crate) const SECURE_CSRF_COOKIE: &str = "__Host-kenpo_csrf";
/// The mailed link that was opened, swapped out of the URL (SEC-39) into a cookie of its
/// own rather than into the session: a link landing is a GET, and a GET — even a forged
/// cross-site one — never changes the session. The form post that follows uses it.
pub(crate) const DEV_LINK_COOKIE: &str = "kenpo_link";
/// The same behind HTTPS.
pub(crate) const SECURE_LINK_COOKIE: &str = "__Host-kenpo_link";
/// How long an opened link is remembered by the browser (the link's own validity
/// decides; this only bounds the cookie).
const LINK_COOKIE_SECONDS: u32 = 3 * 60 * 60;
/// Tokens are 43 characters; anything much longer is not ours and is not kept.
const MAX_TOKEN_CHARS: usize = 128;
/// The form field every POST carries.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Largest form body read (the forms are a few hundred bytes).
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How long the browser of an accepted 暗証キー may repeat that very post (a double tap,
/// a reload of the answer) and still be let in — see [`Sessions::rotate_with_handover`].
const HANDOVER_FOR: Duration = Duration::minutes(2);

/// What a session remembers between requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SessionData {
    /// R1 was answered in this browser: 「…メールを送信しました」 (its page, and a
    /// repeated 【送信する】 with the same address moments later lands there again).
    pub registration_sent: Option<RegistrationSent>,
    /// The SHA-256 of link 1 as this browser opened it (its POST): a repeated post of the
    /// same link goes on with `flow_handle` instead of finding the link used.
    pub opened_link1: Option<[u8; 32]>,
    /// The registration flow handle (after link 1, or after link 2 + 認証キー).
    pub flow_handle: Option<String>,
    /// The flow went on with the insurer's letter (事前登録), skipping 本人確認 and
    /// 認証キー: the step bar shows them as skipped, not done.
    pub preissued: bool,
    /// The 認証キー of R3, kept for its page until link 2 is confirmed in this browser, a
    /// new registration starts, or it expires: a reload, a double tap or the back button
    /// shows it again instead of losing it.
    pub auth_key: Option<ShownAuthKey>,
    /// The SHA-256 of link 2 as this browser confirmed it.
    pub confirmed_link2: Option<[u8; 32]>,
    /// R5 is done in this browser: a repeated 【登録】 lands on the completion page.
    pub registered: bool,
    /// The SHA-256 of the reset link as this browser opened it.
    pub opened_reset: Option<[u8; 32]>,
    /// The password-reset handle, once the link was opened (POST).
    pub reset_handle: Option<String>,
    /// The password was reset in this browser: a repeated post lands on the result page.
    pub reset_done: bool,
    /// The open 暗証キー screen.
    pub otp: Option<OtpScreen>,
    /// Set once the 暗証キー was accepted (in a rotated session).
    pub signed_in: Option<SignedIn>,
    /// The handle of an open 認証アプリ / パスキー setup (2段階認証の設定).
    #[serde(default)]
    pub factor_setup: Option<String>,
    /// The challenge of 「パスキーでログイン」 on the login screen.
    #[serde(default)]
    pub passkey_login: Option<String>,
    /// What the next page shows once (post-redirect-get).
    pub flash: Option<Flash>,
}

/// What the page after R1 shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RegistrationSent {
    /// The SHA-256 of the address typed.
    pub email_digest: [u8; 32],
    /// When.
    pub at: OffsetDateTime,
    /// The carrier advisory (docomo, au, SoftBank addresses).
    pub carrier_advisory: Option<String>,
    /// The legacy-address warning.
    pub legacy_warning: Option<String>,
    /// The receipt of the mail R1 sent (`Portal::mail_status`), to say truthfully
    /// whether it went out.
    #[serde(default)]
    pub receipt: Option<String>,
}

/// A message and the typed fields for the page a post redirects to (post-redirect-get):
/// the page shows the message and fills its fields again. Secrets (passwords, codes) are
/// never kept here.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// Which page it is for (its path), so another page never shows it.
    pub page: String,
    /// The error to show.
    pub error: Option<String>,
    /// The notice to show.
    pub notice: Option<String>,
    /// Which form field the error is about (for `aria-invalid`).
    pub field: Option<String>,
    /// What the member typed, by field name.
    pub fields: Vec<(String, String)>,
    /// `Retry-After` seconds, when the message is a cooldown.
    pub retry_after: Option<i64>,
}

impl Flash {
    /// The typed value of `name`, or empty.
    pub fn value(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

/// The 認証キー shown after R3.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ShownAuthKey {
    /// The key itself.
    pub key: String,
    /// When link 2 and the key stop working.
    pub expires_at: OffsetDateTime,
}

/// The 暗証キー screen's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OtpScreen {
    /// The challenge handle (kept server-side; the page never sees it).
    pub challenge: String,
    /// The registered address, masked, for 「…へ送信しました」.
    pub masked_email: String,
    /// When the current code stops working.
    pub expires_at: OffsetDateTime,
    /// A per-page token the close beacon must carry, so a stale tab can never close a
    /// newer challenge.
    pub page_token: String,
    /// When L1 started it, and the SHA-256 of the login ID typed: a second 【ログイン】
    /// with the same ID moments later (a double tap) goes to this screen instead of
    /// mailing a second code that would kill the first.
    pub started_at: OffsetDateTime,
    /// See `started_at`.
    pub login_id_digest: [u8; 32],
    /// This browser's close beacon arrived: the screen says so instead of a dead form.
    pub closed: bool,
    /// The receipt of the latest 暗証キー mail (`Portal::mail_status`).
    #[serde(default)]
    pub receipt: Option<String>,
    /// The member has 2段階認証 set up: the 認証アプリ / パスキー screen instead of the
    /// 暗証キー one (nothing was mailed).
    #[serde(default)]
    pub factor: Option<FactorScreen>,
}

/// What the 2段階認証 screen of a login offers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct FactorScreen {
    /// 確認コード from the 認証アプリ.
    pub totp: bool,
    /// 「リカバリーコードを使う」.
    pub recovery: bool,
    /// The options of `navigator.credentials.get` (JSON), for 「パスキーでログイン」.
    pub passkey_options: Option<String>,
}

/// A logged-in member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SignedIn {
    /// Who.
    pub account: AccountId,
    /// Compared with the account's current stamp on every protected request (SEC-34).
    pub stamp: SecurityStamp,
}

/// A session as stored: its times, its synchronizer token and what it remembers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Record {
    created_at: OffsetDateTime,
    last_seen: OffsetDateTime,
    csrf: String,
    data: SessionData,
}

/// A rotated session's forwarding address, for the browser that repeats the post which
/// authenticated it (see [`Session::rotate_with_handover`]). The new id is stored
/// sealed with the old one (XOR with a hash of it): the table alone yields no live id.
#[derive(Clone, Debug)]
pub(crate) struct Handover {
    pub(crate) sealed: [u8; 32],
    pub(crate) proof: [u8; 32],
    pub(crate) until: OffsetDateTime,
}

fn seal(new_id: &str, old_id: &str) -> Option<[u8; 32]> {
    let raw: [u8; 32] = URL_SAFE_NO_PAD.decode(new_id).ok()?.try_into().ok()?;
    let pad = digest(&["handover", old_id]);
    Some(std::array::from_fn(|i| raw[i] ^ pad[i]))
}

fn unseal(sealed: &[u8; 32], old_id: &str) -> String {
    let pad = digest(&["handover", old_id]);
    let raw: [u8; 32] = std::array::from_fn(|i| sealed[i] ^ pad[i]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The sessions: where they are kept, their timeouts and cookies.
pub(crate) struct Sessions {
    backend: Arc<dyn SessionBackend>,
    locks: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    clock: Arc<dyn Clock>,
    idle: Duration,
    absolute: Duration,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
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

/// The SHA-256 of some parts, each length-prefixed (for proofs and digests).
pub(crate) fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

fn well_formed(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Sessions {
    /// Sessions kept in `backend`, with the given timeouts; `secure` picks the `__Host-`
    /// cookies.
    pub(crate) fn new(
        backend: Arc<dyn SessionBackend>,
        clock: Arc<dyn Clock>,
        idle: Duration,
        absolute: Duration,
        secure: bool,
    ) -> Self {
        Sessions {
            backend,
            locks: Mutex::new(HashMap::new()),
            clock,
            idle,
            absolute,
            secure,
        }
    }

    /// The cookie's name.
    pub(crate) fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            DEV_COOKIE
        }
    }

    /// The name of the double-submit token cookie.
    pub(crate) fn csrf_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_CSRF_COOKIE
        } else {
            DEV_CSRF_COOKIE
        }
    }

    /// The name of the link cookie.
    pub(crate) fn link_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_LINK_COOKIE
        } else {
            DEV_LINK_COOKIE
        }
    }

    /// How many sessions are held (0 when the store cannot say).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn count(&self) -> usize {
        self.backend.count().await.unwrap_or(0)
    }

    fn expires_at(&self, r: &Record) -> OffsetDateTime {
        (r.last_seen + self.idle).min(r.created_at + self.absolute)
    }

    /// Drops every timed-out session and forwarding address.
    pub(crate) async fn purge_expired(&self) {
        if let Err(e) = self.backend.purge(self.clock.now()).await {
            tracing::warn!(error = %e, "purging expired sessions failed");
        }
    }

    /// The lock that makes one session's posts run one after the other (in this
    /// process; posts of one browser reach one server at a time).
    fn post_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop the locks nobody holds or waits for (only the table refers to them).
        if locks.len() > 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key_of(id)).or_default().clone()
    }

    /// Whether a live session is held for this id (tests: the old id is gone after
    /// rotation and logout).
    #[cfg(test)]
    pub async fn contains(&self, id: &str) -> bool {
        matches!(self.backend.load(&key_of(id)).await, Ok(Some(_)))
    }

    /// Whether any stored key equals the id itself (tests: only digests are stored).
    #[cfg(test)]
    pub async fn stores_plain_id(&self, id: &str) -> bool {
        let bytes = id.as_bytes();
        self.backend
            .keys()
            .await
            .unwrap_or_default()
            .iter()
            .any(|k| k.as_slice() == bytes)
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<u32>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        let age = max_age
            .map(|s| format!("; Max-Age={s}"))
            .unwrap_or_default();
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}")
    }
}

enum CookieOut {
    Keep,
    Set(String),
    Clear,
}

/// Which mailed link the link cookie holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// Link 1 (利用登録手続きのご案内).
    Registration,
    /// Link 2 (本人確認完了のご案内).
    Verification,
    /// The password-reset link.
    Reset,
}

impl LinkKind {
    fn prefix(self) -> &'static str {
        match self {
            LinkKind::Registration => "r1.",
            LinkKind::Verification => "r2.",
            LinkKind::Reset => "pw.",
        }
    }
}

/// The request's view of its session: loaded at the start, changed by the handler in
/// memory, written back once the handler is done.
struct Current {
    /// The link cookie as it came; `link_out` what this response sets (`Some(None)`:
    /// cleared).
    link_in: Option<String>,
    link_out: Option<Option<String>>,
    id: Option<String>,
    record: Option<Record>,
    dirty: bool,
    cookie: CookieOut,
    /// The double-submit token: from the request's cookie, or made for this response.
    pre_csrf: Option<String>,
    set_pre_csrf: bool,
    /// Sessions to delete (rotated away, logged out, timed out).
    deletes: Vec<[u8; 32]>,
    handover: Option<([u8; 32], Handover)>,
}

/// A handle on the request's session, put in the request's extensions by
/// [`session_layer`]. There may be no session yet: reading gives the defaults, and the
/// first [`Session::update`] creates one.
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
        self.current()
            .record
            .as_ref()
            .map(|r| r.data.clone())
            .unwrap_or_default()
    }

    /// Changes what the session remembers; creates the session if there is none yet
    /// (written when the handler is done).
    pub(crate) fn update(&self, f: impl FnOnce(&mut SessionData)) {
        let mut cur = self.current();
        if cur.record.is_none() {
            let now = self.sessions.clock.now();
            let id = random_id();
            cur.record = Some(Record {
                created_at: now,
                last_seen: now,
                csrf: cur.pre_csrf.clone().unwrap_or_else(random_id),
                data: SessionData::default(),
            });
            cur.cookie = CookieOut::Set(id.clone());
            cur.id = Some(id);
        }
        if let Some(r) = cur.record.as_mut() {
            f(&mut r.data);
        }
        cur.dirty = true;
    }

    /// Takes the flash for `page`, if any (a flash for another page is dropped).
    pub(crate) fn take_flash(&self, page: &str) -> Option<Flash> {
        let has = self
            .current()
            .record
            .as_ref()
            .is_some_and(|r| r.data.flash.is_some());
        if !has {
            return None;
        }
        let mut flash = None;
        self.update(|d| flash = d.flash.take());
        flash.filter(|f| f.page == page)
    }

    /// Leaves a flash for the next page.
    pub(crate) fn flash(&self, flash: Flash) {
        self.update(|d| d.flash = Some(flash));
    }

    /// The token for this page's forms: the session's own, or before there is a session
    /// the double-submit token (set as a cookie with this response).
    pub(crate) fn csrf(&self) -> String {
        let mut cur = self.current();
        if let Some(r) = &cur.record {
            return r.csrf.clone();
        }
        if let Some(t) = cur.pre_csrf.clone() {
            return t;
        }
        let t = random_id();
        cur.pre_csrf = Some(t.clone());
        cur.set_pre_csrf = true;
        t
    }

    /// SEC-32: drops this session and starts a new one, with a new id, a new CSRF token
    /// and only `data` — nothing of the pre-auth state survives. Called at L2, leaving
    /// a forwarding address for two minutes: the browser that repeats this very post —
    /// same old session, same page token, same 暗証キー (`proof`) — because it never
    /// saw the answer (a double tap cancels the first request), is given the new session
    /// instead of an expired screen. Knowing the old id is not enough (a fixated id,
    /// SEC-32): the 暗証キー was only in the mail.
    pub(crate) fn rotate_with_handover(&self, data: SessionData, proof: [u8; 32]) {
        let now = self.sessions.clock.now();
        let mut cur = self.current();
        let old = cur.id.take();
        let new_id = random_id();
        if let Some(old) = &old {
            cur.deletes.push(key_of(old));
            if let Some(sealed) = seal(&new_id, old) {
                cur.handover = Some((
                    key_of(old),
                    Handover {
                        sealed,
                        proof,
                        until: now + HANDOVER_FOR,
                    },
                ));
            }
        }
        cur.record = Some(Record {
            created_at: now,
            last_seen: now,
            csrf: random_id(),
            data,
        });
        cur.dirty = true;
        cur.cookie = CookieOut::Set(new_id.clone());
        cur.id = Some(new_id);
    }

    /// Logout: the session is gone on the server, and the cookie is cleared (SEC-34).
    pub(crate) fn destroy(&self) {
        let mut cur = self.current();
        if let Some(old) = cur.id.take() {
            cur.deletes.push(key_of(&old));
        }
        cur.record = None;
        cur.dirty = false;
        cur.cookie = CookieOut::Clear;
    }

    /// The opened link of `kind` this browser holds, if any.
    pub(crate) fn link(&self, kind: LinkKind) -> Option<String> {
        let cur = self.current();
        let value = match &cur.link_out {
            Some(v) => v.clone(),
            None => cur.link_in.clone(),
        }?;
        value.strip_prefix(kind.prefix()).map(str::to_owned)
    }

    /// Remembers an opened link (the token from the URL) in the link cookie. Text that
    /// cannot be one of our tokens is not kept: `false`.
    pub(crate) fn set_link(&self, kind: LinkKind, token: &str) -> bool {
        let ok = !token.is_empty()
            && token.len() <= MAX_TOKEN_CHARS
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        self.current().link_out = Some(ok.then(|| format!("{}{token}", kind.prefix())));
        ok
    }

    /// Forgets the opened link (it was used, or is dead).
    pub(crate) fn clear_link(&self) {
        self.current().link_out = Some(None);
    }

    /// Whether the request came with a session that had just timed out.
    pub(crate) fn timed_out(&self) -> bool {
        self.lookup == Lookup::TimedOut
    }

    /// The token a post must carry: the session's, or without one the double-submit
    /// cookie's. Empty (nothing matches) when there is neither.
    fn csrf_expected(&self) -> String {
        let cur = self.current();
        if let Some(r) = &cur.record {
            return r.csrf.clone();
        }
        cur.pre_csrf.clone().unwrap_or_default()
    }
}

/// A cookie's value from the request's `Cookie` header, if well-formed.
fn cookie_value(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| well_formed(v))
}

/// A cookie's raw value (the link cookie: a prefix and a token).
fn raw_cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() <= MAX_TOKEN_CHARS + 3)
}

/// Constant-time comparison of a submitted token with the expected one.
pub(crate) fn tokens_match(submitted: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// Loads the session (if the cookie names one), checks the form and its CSRF token on
/// every POST, runs the handler, writes the session back and sets or clears cookies. A
/// POST runs in a task of its own, after the session's earlier posts: see the module
/// documentation.
pub(crate) async fn session_layer(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/static/") {
        return next.run(req).await;
    }
    if req.method() != Method::POST {
        return handle(state, req, next).await;
    }
    let sessions = state.sessions.clone();
    let lock = cookie_value(&req, sessions.cookie_name()).map(|id| sessions.post_lock(&id));
    let task = tokio::spawn(async move {
        let _turn = match &lock {
            Some(l) => Some(l.lock().await),
            None => None,
        };
        handle(state, req, next).await
    });
    match task.await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "a form post's task failed; answered 503");
            pages::unavailable()
        }
    }
}

async fn handle(state: AppState, req: Request, next: Next) -> Response {
    let sessions = state.sessions.clone();
    let now = sessions.clock.now();
    let cookie_id = cookie_value(&req, sessions.cookie_name());
    let mut deletes = Vec::new();
    let (id, record, lookup) = match &cookie_id {
        Some(id) => match sessions.backend.load(&key_of(id)).await {
            Ok(Some(r)) if now < sessions.expires_at(&r) => {
                (Some(id.clone()), Some(r), Lookup::Live)
            }
            Ok(Some(_)) => {
                deletes.push(key_of(id));
                (None, None, Lookup::TimedOut)
            }
            Ok(None) => (None, None, Lookup::Unknown),
            Err(e) => {
                tracing::error!(error = %e, "loading a session failed; answered 503");
                return pages::unavailable();
            }
        },
        None => (None, None, Lookup::Unknown),
    };
    let live = record.is_some();
    let session = Session {
        sessions: sessions.clone(),
        current: Arc::new(Mutex::new(Current {
            cookie: match (&cookie_id, live) {
                // A cookie the server no longer knows is cleared.
                (Some(_), false) => CookieOut::Clear,
                _ => CookieOut::Keep,
            },
            id,
            record: record.map(|mut r| {
                r.last_seen = now;
                r
            }),
            // Every request of a live session moves its idle deadline (SEC-33).
            dirty: live,
            pre_csrf: cookie_value(&req, sessions.csrf_cookie_name()),
            set_pre_csrf: false,
            link_in: raw_cookie(&req, sessions.link_cookie_name()),
            link_out: None,
            deletes,
            handover: None,
        })),
        lookup,
    };

    let req = if req.method() == Method::POST {
        let (req, fields) = match read_form(req).await {
            Ok(r) => r,
            Err(resp) => return finish(&session, resp).await,
        };
        if !live
            && let Some(old) = &cookie_id
            && let Some(resp) = handover(&sessions, req.uri().path(), old, &fields).await
        {
            return resp;
        }
        let submitted = fields
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !tokens_match(submitted, &session.csrf_expected()) {
            return finish(&session, pages::csrf_failed(StatusCode::FORBIDDEN)).await;
        }
        req
    } else {
        req
    };
    let mut req = req;
    req.extensions_mut().insert(session.clone());
    let resp = next.run(req).await;
    finish(&session, resp).await
}

/// The repeated L2 post of a browser whose session was rotated under it: see
/// [`Session::rotate_with_handover`].
async fn handover(
    sessions: &Sessions,
    path: &str,
    old_id: &str,
    fields: &[(String, String)],
) -> Option<Response> {
    if path != "/login/otp" {
        return None;
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let proof = otp_proof(field("page_token"), field("code"));
    let h = sessions
        .backend
        .take_handover(&key_of(old_id))
        .await
        .ok()
        .flatten()?;
    if sessions.clock.now() >= h.until || !bool::from(h.proof.ct_eq(&proof)) {
        return None;
    }
    let new_id = unseal(&h.sealed, old_id);
    // The new session must still be alive.
    let alive = matches!(sessions.backend.load(&key_of(&new_id)).await, Ok(Some(r)) if sessions.clock.now() < sessions.expires_at(&r));
    if !alive {
        return None;
    }
    let mut resp = Redirect::to("/home").into_response();
    if let Ok(v) = HeaderValue::from_str(&sessions.cookie(sessions.cookie_name(), &new_id, None)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Some(resp)
}

/// What the L2 post proves: its page token and the 暗証キー it carried.
pub(crate) fn otp_proof(page_token: &str, code: &str) -> [u8; 32] {
    digest(&["otp", page_token, code.trim()])
}

/// Writes the session back (deletes, forwarding address, the record) and adds the
/// cookies. A store that fails here answers the 503 page: the member may retry.
async fn finish(session: &Session, mut resp: Response) -> Response {
    let s = &session.sessions;
    let (deletes, handover, save, values) = {
        let mut cur = session.current();
        let deletes = std::mem::take(&mut cur.deletes);
        let handover = cur.handover.take();
        let save = match (&cur.id, &cur.record, cur.dirty) {
            (Some(id), Some(r), true) => Some((key_of(id), r.clone())),
            _ => None,
        };
        let mut values = Vec::new();
        match &cur.cookie {
            CookieOut::Keep => {}
            CookieOut::Set(id) => values.push(s.cookie(s.cookie_name(), id, None)),
            CookieOut::Clear => values.push(s.cookie(s.cookie_name(), "", Some(0))),
        }
        match &cur.link_out {
            Some(Some(v)) => {
                values.push(s.cookie(s.link_cookie_name(), v, Some(LINK_COOKIE_SECONDS)));
            }
            Some(None) if cur.link_in.is_some() => {
                values.push(s.cookie(s.link_cookie_name(), "", Some(0)));
            }
            _ => {}
        }
        if cur.set_pre_csrf
            && let Some(t) = &cur.pre_csrf
        {
            values.push(s.cookie(s.csrf_cookie_name(), t, None));
        }
        (deletes, handover, save, values)
    };
    let mut stored = Ok(());
    for key in &deletes {
        stored = stored.and(s.backend.delete(key).await);
    }
    if let Some((old, h)) = &handover {
        stored = stored.and(s.backend.put_handover(old, h).await);
    }
    if let Some((key, record)) = &save {
        stored = stored.and(s.backend.save(key, record, s.expires_at(record)).await);
    }
    if let Err(e) = stored {
        tracing::error!(error = %e, "writing a session failed; answered 503");
        return pages::unavailable();
    }
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Whether `value` is exactly `application/x-www-form-urlencoded`, with parameters at
/// most (`; charset=UTF-8`).
pub(crate) fn is_form_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

/// Reads the form body: the exact content type, at most 16 KiB, well-formed, each field
/// at most once. Gives the request back with its body restored, and the fields.
async fn read_form(req: Request) -> Result<(Request, Vec<(String, String)>), Response> {
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_form_content_type);
    if !form {
        return Err(pages::bad_form(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let (mut parts, body) = req.into_parts();
    // The handlers' form extractor wants the type spelled exactly so.
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(pages::bad_form(StatusCode::PAYLOAD_TOO_LARGE));
    };
    let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes) else {
        return Err(pages::bad_form(StatusCode::BAD_REQUEST));
    };
    let mut names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(pages::bad_form(StatusCode::BAD_REQUEST));
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), fields))
}
