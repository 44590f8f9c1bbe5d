//! Response headers every page carries, and a token bucket per client IP.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::pages;

/// The content security policy: scripts and styles only from the app's own static files
/// (no inline code anywhere), no framing, forms only to the app.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Adds the security headers. `Referrer-Policy: no-referrer` is set on every response, so
/// the link landings (SEC-39) and every page after them leak no URL to another site;
/// HTML pages are `no-store`, since they carry personal data and one-time keys.
pub(crate) async fn headers(https: bool, req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !is_static {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if https {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    resp
}

/// Bucket sizes: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    /// Most requests in a burst.
    pub burst: f64,
    /// Requests regained per second.
    pub per_second: f64,
}

/// The limits per client IP.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateLimit {
    /// Every request (pages, static files, heartbeats).
    pub all: Bucket,
    /// Form posts (login, 暗証キー, registration steps) — where guessing would happen.
    /// The library has its own per-account and per-address limits; this one protects
    /// the server's CPU (Argon2) from a single client.
    pub posts: Bucket,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            all: Bucket {
                burst: 120.0,
                per_second: 5.0,
            },
            posts: Bucket {
                burst: 30.0,
                per_second: 0.5,
            },
        }
    }
}

impl RateLimit {
    /// The defaults, changed by whichever of these settings are given (`lookup` reads
    /// the environment in `main`):
    ///
    /// - `RATE_LIMIT_BURST`, `RATE_LIMIT_PER_SECOND` — every request (default 120, 5)
    /// - `RATE_LIMIT_POST_BURST`, `RATE_LIMIT_POST_PER_SECOND` — form posts (30, 0.5)
    ///
    /// A value that is not a positive number is refused with its name.
    pub(crate) fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut limits = RateLimit::default();
        let read = |name: &str, into: &mut f64| -> Result<(), String> {
            if let Some(v) = lookup(name).filter(|v| !v.trim().is_empty()) {
                match v.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() && n > 0.0 => *into = n,
                    _ => return Err(format!("{name} {v:?} is not a positive number")),
                }
            }
            Ok(())
        };
        read("RATE_LIMIT_BURST", &mut limits.all.burst)?;
        read("RATE_LIMIT_PER_SECOND", &mut limits.all.per_second)?;
        read("RATE_LIMIT_POST_BURST", &mut limits.posts.burst)?;
        read("RATE_LIMIT_POST_PER_SECOND", &mut limits.posts.per_second)?;
        Ok(limits)
    }
}

#[derive(Clone, Copy, Debug)]
struct Level {
    tokens: f64,
    at: Instant,
}

/// Token buckets per client IP, in memory.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limits: RateLimit,
    all: Mutex<HashMap<IpAddr, Level>>,
    posts: Mutex<HashMap<IpAddr, Level>>,
}

/// Most clients tracked before idle entries are dropped.
const MAX_TRACKED: usize = 50_000;

impl RateLimiter {
    /// A limiter with these limits.
    pub(crate) fn new(limits: RateLimit) -> Self {
        RateLimiter {
            limits,
            all: Mutex::new(HashMap::new()),
            posts: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; `Err(seconds to wait)` when the bucket is empty.
    fn take(
        map: &Mutex<HashMap<IpAddr, Level>>,
        bucket: Bucket,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), u64> {
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_TRACKED {
            // Drop clients whose bucket has refilled completely: they lose nothing.
            map.retain(|_, l| {
                l.tokens + now.duration_since(l.at).as_secs_f64() * bucket.per_second < bucket.burst
            });
        }
        let level = map.entry(ip).or_insert(Level {
            tokens: bucket.burst,
            at: now,
        });
        let refilled = (level.tokens
            + now.duration_since(level.at).as_secs_f64() * bucket.per_second)
            .min(bucket.burst);
        level.at = now;
        if refilled >= 1.0 {
            level.tokens = refilled - 1.0;
            Ok(())
        } else {
            level.tokens = refilled;
            let wait = (1.0 - refilled) / bucket.per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().clamp(1.0, 3600.0) as u64)
        }
    }

    /// Counts one request from `ip`.
    pub(crate) fn check(&self, ip: IpAddr, post: bool) -> Result<(), u64> {
        let now = Instant::now();
        Self::take(&self.all, self.limits.all, ip, now)?;
        if post {
            Self::take(&self.posts, self.limits.posts, ip, now)?;
        }
        Ok(())
    }
}

/// Refuses a client that exceeds its bucket with 429 and `Retry-After`. The client is
/// the TCP peer: behind a reverse proxy, configure the proxy to limit instead (a
/// forwarded-for header is not trusted here).
pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let post = req.method() == Method::POST;
    match state.limiter.check(ip, post) {
        Ok(()) => next.run(req).await,
        Err(wait) => pages::too_many_requests(wait),
    }
}

/// Who is asking, for the library's per-requester budget of flow starts (SEC-13): the TCP
/// peer's address, an IPv6 peer by its /64 (one subscriber's network). Behind a reverse
/// proxy, name the client the proxy vouches for instead; a forwarded-for header is not
/// trusted here.
pub(crate) struct Requester(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Requester {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(Requester(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        }))
    }
}
