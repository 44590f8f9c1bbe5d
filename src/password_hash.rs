//! Argon2id password hashing: storage format, verification, rehash signal, pepper rotation,
//! bounded concurrency and the dummy verify for unknown login IDs (SEC-19 … SEC-23).
//!
//! Passwords (and insurer-issued temporary passwords) are stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1[,keyid=..]$<salt>$<hash>`) so that every stored hash
//! carries its own cost parameters: old hashes keep verifying after the policy is raised,
//! and [`Verification::Match`] tells the caller when to store a fresh hash (SEC-20).
//!
//! # Runtime
//!
//! The `async` methods run Argon2 under a semaphore permit off the async scheduler, so a
//! **Tokio runtime is required** (current-thread or multi-thread). Called outside one they
//! return [`HashError::NoRuntime`] instead of panicking. Argon2 deliberately burns
//! ~10–20 ms of CPU and ~19 MiB of memory per call; running it on an async worker thread
//! would stall every other request on that thread. Where it runs is the hasher's
//! [`Offload`]:
//!
//! - [`Offload::BlockingPool`] (the default): Tokio's blocking pool (`spawn_blocking`).
//! - [`Offload::PinnedThreads`]: the hasher's own threads, one per core the process may
//!   run on (its affinity mask), each pinned to its core, taking computations in order.
//!   On a server that logins keep busy, the blocking pool's threads, woken wherever the
//!   scheduler puts them, can end up queued on one core while another idles: at four
//!   clients on two cores the example portal kept its cores 80–88 % busy and reached
//!   0.73–0.80 × the raw Argon2 rate on the blocking pool, and 96–98 % and 0.86–0.90
//!   with pinned threads (BENCHMARKS.md, #18). Choose it where the process has its cores to itself (a
//!   dedicated VM or a container with a cpuset); under a CPU quota shared with other
//!   work, pinning can only hurt. Where the platform cannot pin (no affinity support),
//!   the hasher uses the blocking pool.
//! - [`Offload::InPlace`]: the thread that awaits the hash, under
//!   [`tokio::task::block_in_place`] (Tokio hands that worker's other tasks to another
//!   thread meanwhile). It saves the two thread hand-offs of the others, which cost a
//!   virtual machine most: on the 2-vCPU guest of BENCHMARKS.md a login's `start_login`
//!   took 1.05 ms longer than its hash on the blocking pool, 0.56 ms on pinned threads and
//!   0.20 ms in place. The futures the calling task runs beside the step (`join!`,
//!   `select!`, a timeout in the same task) wait for the hash. On a current-thread
//!   runtime, where blocking in place is not allowed, it uses the blocking pool.
//!
//! # Implementation
//!
//! Stored strings are parsed, and new ones written, with RustCrypto's `argon2` /
//! `password-hash` (the PHC format every Argon2 library reads). The Argon2 computation
//! itself runs on `argon2-rust`, a port of the reference implementation that picks its
//! SIMD code (AVX-512, AVX2, SSE2, NEON or portable) at run time, so one binary is fast on
//! every server: about twice as fast as RustCrypto's on the machines measured in
//! BENCHMARKS.md, with the same output for the same inputs
//! (`tests/argon2_agreement.rs` checks both directions).
//!
//! # Memory
//!
//! Hashing and verifying share one pool of Argon2 working memory ("arenas"), so neither
//! allocates its 19 MiB (at the default cost) per call. The pool keeps **at most
//! `max_concurrent` arenas of the configured `m` KiB each** between calls — 2 × 19 MiB on
//! a two-core server at the default — and never more: the first arena is made at
//! construction (by the dummy hash), the others when that many computations first overlap.
//! Each arena is wiped when its computation returns, so no password-derived block stays
//! resident between calls. A stored hash with a larger `m` than the configured one (made
//! under an earlier, higher policy) is computed on an arena of its own, wiped and freed
//! before the call returns, so a stored string cannot make the pool grow. The `async`
//! methods hold a semaphore permit while they compute, so at most `max_concurrent`
//! computations — and arenas — exist at once (SEC-22); the `*_blocking` methods take no
//! permit, and their callers bound their own concurrency (a computation that finds the
//! pool empty makes an arena, and frees it afterwards if the pool is already full).
//!
//! # Login responses (SEC-23)
//!
//! A [`HashError`] during login is a server fault, but the member-facing response must still
//! be the same generic login failure as for a wrong password or an unknown ID; log
//! [`HashError::code`] for operators.

use std::collections::HashSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash as ph;
use argon2::{Algorithm, KeyId, Params, ParamsBuilder, Version};
use rand::rngs::{SysError, SysRng};
use rand_core::TryRng;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeroize::{Zeroize, Zeroizing};

use crate::domain::Password;

/// Salt length in bytes (SEC-19: ≥16 bytes, the PHC recommendation).
const SALT_LEN: usize = 16;
/// Hash output length in bytes (SEC-19).
const OUTPUT_LEN: usize = 32;

/// Argon2id cost parameters.
///
/// The parameters are recorded in every PHC string, so changing them only affects new
/// hashes; existing hashes verify with their own parameters and are reported as
/// `needs_rehash` when they fall below the configured ones (SEC-20).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HashParams {
    /// Memory cost in KiB (Argon2 `m`).
    pub m_cost_kib: u32,
    /// Number of passes (Argon2 `t`).
    pub t_cost: u32,
    /// Lanes (Argon2 `p`).
    pub p_cost: u32,
}

impl HashParams {
    /// The OWASP / ASVS Appendix C setting for Argon2id (m = 19 456 KiB, t = 2, p = 1), which
    /// is also argon2 0.6's default. Production deployments should not go below it (SEC-19).
    pub const DEFAULT: Self = Self {
        m_cost_kib: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    /// The largest parameters this module will compute. It caps both configuration and
    /// parameters read back from stored PHC strings, so a corrupted or tampered row cannot make
    /// one verify allocate gigabytes or run for hours (SEC-22). 1 GiB is ~50× the default.
    /// `Policy::validate` uses it as the hard maximum of the `hashing` knobs.
    pub const CEILING: Self = Self {
        m_cost_kib: 1 << 20,
        t_cost: 64,
        p_cost: 64,
    };

    /// The cheapest parameters Argon2 accepts (m = 8 KiB, t = 1, p = 1).
    ///
    /// Only for tests and benchmarks of code *around* hashing, where the default cost would
    /// make suites slow. The name is deliberately alarming so that it is never shipped: these
    /// parameters give no meaningful resistance to offline guessing.
    #[must_use]
    pub const fn danger_test_minimum() -> Self {
        Self {
            m_cost_kib: Params::MIN_M_COST,
            t_cost: Params::MIN_T_COST,
            p_cost: Params::MIN_P_COST,
        }
    }

    /// Whether every parameter is at least the corresponding one of `floor`.
    ///
    /// This is the rehash test (SEC-20): a stored hash whose parameters do not meet the
    /// current ones is replaced after the next successful login.
    #[must_use]
    pub const fn meets(&self, floor: &HashParams) -> bool {
        self.m_cost_kib >= floor.m_cost_kib
            && self.t_cost >= floor.t_cost
            && self.p_cost >= floor.p_cost
    }

    /// argon2's parameter object for new hashes: 32-byte output, and the pepper ID as the
    /// PHC `keyid` parameter (which argon2 writes to and reads from the string but does not
    /// feed into the hash).
    fn to_argon2(self, key_id: Option<u8>) -> Result<Params, argon2::Error> {
        let mut builder = ParamsBuilder::new();
        builder
            .m_cost(self.m_cost_kib)
            .t_cost(self.t_cost)
            .p_cost(self.p_cost)
            .output_len(OUTPUT_LEN);
        if let Some(id) = key_id {
            builder.keyid(KeyId::new(&[id])?);
        }
        builder.build()
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A pepper: a 32-byte secret key passed to Argon2 as its secret input `K`, plus a one-byte
/// key ID (SEC-21).
///
/// With a pepper, a stolen database alone is not enough to test password guesses offline.
/// Load the key from a secret store (KMS, vault, environment injected by the platform) —
/// never from the same database as the hashes. The ID is written into every PHC string
/// (`keyid` parameter) so that keys can be rotated: keep the old key in
/// `previous_peppers` until every member has logged in again (or been reset).
pub struct Pepper {
    id: u8,
    key: SecretBox<[u8; 32]>,
}

impl Pepper {
    /// Wraps a key and its ID. The key is moved into zeroize-on-drop storage; the caller
    /// should zeroize its own copy.
    #[must_use]
    pub fn new(id: u8, key: [u8; 32]) -> Self {
        let mut key = key;
        let secret = SecretBox::init_with_mut(|slot: &mut [u8; 32]| *slot = key);
        key.zeroize();
        Self { id, key: secret }
    }

    /// The key ID recorded in hashes made with this pepper; not secret, safe to log.
    #[must_use]
    pub const fn id(&self) -> u8 {
        self.id
    }
}

crate::redact::debug_redacted!(Pepper { id, key });

/// A stored password hash: an Argon2 PHC string, with the pepper ID (if any) as its `keyid`
/// parameter.
///
/// Construct it with [`PasswordHasher::hash`] or, when loading from storage, with
/// [`PasswordHashString::parse`] (serde deserialisation goes through the same parser), so a
/// value of this type is always a well-formed Argon2 PHC string within this module's cost
/// ceiling. `Debug` shows the algorithm and parameters but not the salt or hash, which would
/// let anyone with the logs attack the password offline.
///
/// Equality compares the stored strings (to tell whether an account record changed); it
/// is not how passwords are checked — that is [`PasswordHasher::verify`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordHashString(String);

impl PasswordHashString {
    /// Parses a PHC string loaded from storage.
    ///
    /// # Errors
    /// [`HashError::MalformedStoredHash`] if it is not an Argon2 PHC string with version,
    /// parameters, salt and hash, or its parameters exceed the cost ceiling.
    pub fn parse(s: &str) -> Result<Self, HashError> {
        Parsed::new(s)?;
        Ok(Self(s.to_owned()))
    }

    /// The PHC string, to store as-is.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A valid value always ends in `$<salt>$<hash>`; show only what precedes them.
        let prefix = self.0.rsplitn(3, '$').nth(2).unwrap_or("");
        write!(f, "PasswordHashString(\"{prefix}$…\")")
    }
}

crate::domain::text_conversions! { PasswordHashString, HashError;
    FromStr;
    // Checks and keeps the loaded string itself rather than copying it.
    TryFrom<String> |s| {
        Parsed::new(&s)?;
        Ok(Self(s))
    };
    Into<String> |h| h.0;
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verification {
    /// The password is correct.
    Match {
        /// The stored hash is below the current policy (weaker parameters, not Argon2id v19,
        /// or a different pepper): hash the password again and store the new hash now, while
        /// the plaintext is at hand (SEC-20, SEC-21).
        needs_rehash: bool,
    },
    /// The password is wrong.
    Mismatch,
}

/// Why hashing or verification could not produce an answer.
///
/// Every variant is a server-side problem (configuration, corrupted storage, OS failure),
/// never "wrong password" — that is [`Verification::Mismatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The stored string is not a supported Argon2 PHC string, or its parameters exceed the
    /// cost ceiling (m ≤ 1 GiB, t ≤ 64, p ≤ 64).
    #[error("stored password hash is malformed or unsupported")]
    MalformedStoredHash(#[source] ph::Error),
    /// The stored hash was made with a pepper whose ID is neither the current nor a previous
    /// one; the key is needed to verify it.
    #[error("stored password hash uses pepper id {id}, which is not configured")]
    UnknownPepperId {
        /// The `keyid` found in the stored hash.
        id: u8,
    },
    /// The same pepper ID was configured twice, so hashes could not say which key they use.
    #[error("pepper id {id} is configured more than once")]
    DuplicatePepperId {
        /// The repeated ID.
        id: u8,
    },
    /// Argon2 rejected the configured parameters (e.g. m below 8 KiB × p, t = 0).
    #[error("Argon2 parameters are invalid")]
    InvalidParams(#[source] argon2::Error),
    /// The configured parameters exceed the cost ceiling (m ≤ 1 GiB, t ≤ 64, p ≤ 64).
    #[error("Argon2 parameters exceed the ceiling (m <= 1 GiB, t <= 64, p <= 64)")]
    ParamsAboveCeiling,
    /// `max_concurrent` is zero or larger than Tokio's semaphore allows.
    #[error("max_concurrent must be at least 1 and at most the semaphore limit")]
    InvalidConcurrency,
    /// Argon2 failed while hashing or verifying.
    #[error("Argon2 computation failed")]
    Argon2(#[source] ph::Error),
    /// The OS random number generator failed to produce a salt.
    #[error("the OS random number generator failed")]
    Rng(#[source] SysError),
    /// An `async` method was called outside a Tokio runtime.
    #[error("no Tokio runtime: the async password-hash methods need one")]
    NoRuntime,
    /// The blocking task running Argon2 panicked or was cancelled (runtime shutdown).
    #[error("the password hashing task did not complete")]
    TaskFailed,
}

/// What this module needs from a parsed stored hash.
struct Parsed {
    phc: ph::phc::PasswordHash,
    algorithm: Algorithm,
    version: Version,
    /// Argon2id with version 0x13 (19) — the only combination new hashes use.
    is_current_variant: bool,
    params: HashParams,
    key_id: Option<u8>,
    salt_len: usize,
    output_len: usize,
}

impl Parsed {
    fn new(s: &str) -> Result<Self, HashError> {
        use HashError::MalformedStoredHash as Malformed;

        let phc = ph::phc::PasswordHash::new(s).map_err(|e| Malformed(e.into()))?;
        let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(Malformed)?;
        let version = match phc.version {
            Some(v) => Some(Version::try_from(v).map_err(|e| Malformed(e.into()))?),
            None => None,
        };
        let salt_len = phc
            .salt
            .as_ref()
            .map(|salt| salt.len())
            .ok_or(Malformed(ph::Error::SaltInvalid))?;
        let output_len = phc
            .hash
            .as_ref()
            .map(|out| out.len())
            .ok_or(Malformed(ph::Error::OutputSize))?;
        let argon_params = Params::try_from(&phc).map_err(Malformed)?;
        let params = HashParams {
            m_cost_kib: argon_params.m_cost(),
            t_cost: argon_params.t_cost(),
            p_cost: argon_params.p_cost(),
        };
        let ceiling = HashParams::CEILING;
        for (name, value, max) in [
            ("m", params.m_cost_kib, ceiling.m_cost_kib),
            ("t", params.t_cost, ceiling.t_cost),
            ("p", params.p_cost, ceiling.p_cost),
        ] {
            if value > max {
                return Err(Malformed(ph::Error::ParamInvalid { name }));
            }
        }
        let key_id = match argon_params.keyid() {
            [] => None,
            [id] => Some(*id),
            _ => return Err(Malformed(ph::Error::ParamInvalid { name: "keyid" })),
        };
        Ok(Self {
            phc,
            algorithm,
            // Read as argon2's own verify reads it: no `v=` means its default (0x13).
            version: version.unwrap_or_default(),
            is_current_variant: algorithm == Algorithm::Argon2id && version == Some(Version::V0x13),
            params,
            key_id,
            salt_len,
            output_len,
        })
    }
}

/// Hashes and verifies passwords with Argon2id under a fixed policy.
///
/// Build one at start-up and share it (it is `Clone`, backed by an `Arc`, and
/// `Send + Sync`). Construction computes one hash — the dummy hash used by
/// [`verify_dummy`](Self::verify_dummy) — so it takes as long as one login.
///
/// The `async` methods need a Tokio runtime (see the [module docs](self)).
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
    /// The pinned threads of [`Offload::PinnedThreads`]; `None` otherwise.
    pinned: Option<Arc<PinnedThreads>>,
    /// [`Offload::InPlace`].
    in_place: bool,
    /// Set once Tokio refused to block in place (see [`Offload::InPlace`]): from then on
    /// this hasher (and its clones) uses the blocking pool.
    in_place_refused: Arc<AtomicBool>,
}

/// Where the `async` methods of [`PasswordHasher`] run Argon2 (see the
/// [module docs](self#runtime)). Each holds one of the `max_concurrent` permits for the
/// whole computation (SEC-22).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offload {
    /// Tokio's blocking pool (`spawn_blocking`).
    #[default]
    BlockingPool,
    /// The hasher's own threads, one per core of the process's affinity mask, each
    /// pinned to its core. They end when the last clone of the hasher is dropped.
    PinnedThreads,
    /// The calling thread, under [`tokio::task::block_in_place`]: no hand-off to another
    /// thread and back, so the member waits for Argon2 and nothing else. Tokio moves the
    /// worker's other tasks to another thread for the computation, but the futures of
    /// the calling task itself (those it `join!`s or `select!`s with the step) wait for
    /// it. Where `block_in_place` is not allowed, the hasher uses the blocking pool: on a
    /// current-thread runtime always, and inside a `LocalSet` (`spawn_local`,
    /// `run_until`) of a multi-thread runtime from the first refusal on (Tokio's refusal
    /// is a panic it prints, caught before anything ran, and logged once as a warning).
    /// Under `panic = "abort"` that refusal would abort: there, do not use it from a
    /// `LocalSet`.
    InPlace,
}

/// A computation for the pinned threads.
type Job = Box<dyn FnOnce() + Send>;

/// The threads of [`Offload::PinnedThreads`]: one per core, each pinned to it, taking
/// jobs from one queue in order. Dropping this closes the queue; each thread finishes the
/// job in hand and ends.
struct PinnedThreads {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The queue the threads share (each holds it while it lives): tests watch them end.
    #[cfg(test)]
    queue: std::sync::Weak<Mutex<std::sync::mpsc::Receiver<Job>>>,
}

impl PinnedThreads {
    /// One thread per core the process may run on, pinned, but no more than `permits`
    /// (more could never all be busy; under a CPU quota the affinity mask may list every
    /// core of the host); `None` where the platform cannot say which cores those are.
    fn start(permits: usize) -> Result<Option<Self>, HashError> {
        let Some(cores) = core_affinity::get_core_ids().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for (i, core) in cores.into_iter().take(permits).enumerate() {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("kenpo-argon2-{i}"))
                .spawn(move || {
                    // Pinning is a placement hint: where the OS refuses it, the thread
                    // still computes, wherever it is put.
                    let _ = core_affinity::set_for_current(core);
                    loop {
                        // The lock is held only while waiting for the next job, never
                        // while computing one (a `while let` would keep its guard alive
                        // through the body and run the threads one at a time).
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { return };
                        // A job that panics loses its answer (the caller gets
                        // `TaskFailed`) and its permit, not the thread: the pool keeps
                        // one thread per core, as the blocking pool would.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .map_err(|_| HashError::TaskFailed)?;
        }
        Ok(Some(PinnedThreads {
            jobs,
            #[cfg(test)]
            queue: Arc::downgrade(&queue),
        }))
    }
}

struct Inner {
    params: HashParams,
    /// `params` as argon2 wants them, with the current pepper's `keyid`.
    argon2_params: Params,
    current: Option<Pepper>,
    previous: Vec<Pepper>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// `argon2_params` as `argon2-rust` computes them (Argon2id v19, 32-byte tag).
    engine: argon2_rust::Argon2,
    /// A hash of a random, discarded password, made with the current params and pepper.
    dummy: PasswordHashString,
    /// Argon2 working memory kept between computations (see [`Arenas`]).
    memory: Arenas,
    #[cfg(test)]
    probe: probe::Probe,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("PasswordHasher")
            .field("params", &inner.params)
            .field("pepper_id", &inner.current.as_ref().map(Pepper::id))
            .field(
                "previous_pepper_ids",
                &inner.previous.iter().map(Pepper::id).collect::<Vec<_>>(),
            )
            .field("max_concurrent", &inner.max_concurrent)
            .field("pinned_threads", &self.pinned.is_some())
            .finish()
    }
}

impl PasswordHasher {
    /// Builds a hasher for the current policy.
    ///
    /// - `params`: cost for new hashes, and the floor below which a stored hash is reported
    ///   as `needs_rehash` (SEC-19, SEC-20). Use [`HashParams::DEFAULT`] in production.
    /// - `pepper`: the current pepper, if any (SEC-21); new hashes record its ID.
    /// - `previous_peppers`: retired peppers that old hashes may still name; they verify,
    ///   and report `needs_rehash` so they move to the current pepper on the next login.
    /// - `max_concurrent`: how many Argon2 computations the `async` methods run at once, so
    ///   peak memory stays ≤ `max_concurrent × m` under a login flood (SEC-22). Up to
    ///   that much working memory — `max_concurrent` arenas of `m` KiB, one of them made
    ///   here by the dummy hash — is kept between hashes and verifications and reused, so
    ///   neither pays for fresh pages (see [Memory](self#memory)). Use
    ///   [`PasswordHasher::default_max_concurrent`] (the number of CPU cores) unless you
    ///   know better.
    ///
    /// # Errors
    /// [`HashError::InvalidParams`] if argon2 rejects `params`,
    /// [`HashError::ParamsAboveCeiling`] above m = 1 GiB, t = 64 or p = 64,
    /// [`HashError::DuplicatePepperId`] if two peppers share an ID,
    /// [`HashError::InvalidConcurrency`] if `max_concurrent` is 0 or absurdly large, and
    /// [`HashError::Rng`] / [`HashError::Argon2`] if the dummy hash cannot be made.
    pub fn new(
        params: HashParams,
        pepper: Option<Pepper>,
        previous_peppers: Vec<Pepper>,
        max_concurrent: usize,
    ) -> Result<Self, HashError> {
        if max_concurrent == 0 || max_concurrent > Semaphore::MAX_PERMITS {
            return Err(HashError::InvalidConcurrency);
        }
        let argon2_params = params
            .to_argon2(pepper.as_ref().map(Pepper::id))
            .map_err(HashError::InvalidParams)?;
        if !HashParams::CEILING.meets(&params) {
            return Err(HashError::ParamsAboveCeiling);
        }
        let mut seen = HashSet::new();
        for p in pepper.iter().chain(previous_peppers.iter()) {
            if !seen.insert(p.id) {
                return Err(HashError::DuplicatePepperId { id: p.id });
            }
        }

        let engine = engine(
            Algorithm::Argon2id,
            Version::V0x13,
            &argon2_params,
            OUTPUT_LEN,
        )?;
        let memory = Arenas {
            pool: Mutex::new(Vec::new()),
            keep: max_concurrent,
            blocks: engine.params().memory_blocks() as usize,
        };

        // SEC-23: the dummy must cost exactly what a real verify costs, so it uses the
        // current parameters and pepper. Its password is random and immediately dropped.
        // Its arena stays in the pool for the first login.
        let mut dummy_password = Zeroizing::new([0u8; 32]);
        SysRng
            .try_fill_bytes(dummy_password.as_mut())
            .map_err(HashError::Rng)?;
        let dummy = memory.hash(
            &engine,
            &argon2_params,
            pepper.as_ref(),
            dummy_password.as_ref(),
        )?;

        Ok(Self {
            inner: Arc::new(Inner {
                params,
                argon2_params,
                current: pepper,
                previous: previous_peppers,
                permits: Arc::new(Semaphore::new(max_concurrent)),
                max_concurrent,
                engine,
                dummy,
                memory,
                #[cfg(test)]
                probe: probe::Probe::default(),
            }),
            pinned: None,
            in_place: false,
            in_place_refused: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The same hasher (same pool of memory, permits and peppers) with its `async`
    /// methods running Argon2 where `offload` says (default [`Offload::BlockingPool`]).
    /// [`Offload::PinnedThreads`] starts the threads now; on a platform that cannot pin,
    /// the hasher stays on the blocking pool.
    ///
    /// # Errors
    /// [`HashError::TaskFailed`] if a thread cannot be started.
    pub fn with_offload(mut self, offload: Offload) -> Result<Self, HashError> {
        self.pinned = match offload {
            Offload::PinnedThreads => {
                PinnedThreads::start(self.inner.max_concurrent)?.map(Arc::new)
            }
            Offload::BlockingPool | Offload::InPlace => None,
        };
        self.in_place = offload == Offload::InPlace;
        Ok(self)
    }

    /// Where the `async` methods run Argon2 now.
    #[must_use]
    pub fn offload(&self) -> Offload {
        if self.pinned.is_some() {
            Offload::PinnedThreads
        } else if self.in_place {
            Offload::InPlace
        } else {
            Offload::BlockingPool
        }
    }

    /// The default for `max_concurrent`: the number of CPUs the process may use (1 if that
    /// cannot be determined). More simultaneous hashes than cores only adds memory, not
    /// throughput.
    #[must_use]
    pub fn default_max_concurrent() -> usize {
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
    }

    /// Hashes a password for storage: Argon2id v19 with the current parameters and pepper,
    /// a fresh 16-byte salt from the OS CSPRNG and a 32-byte output (SEC-01, SEC-19).
    ///
    /// # Errors
    /// [`HashError::Rng`], [`HashError::Argon2`], or [`HashError::NoRuntime`] /
    /// [`HashError::TaskFailed`] for the blocking task.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHashString, HashError> {
        let secret = Zeroizing::new(password.expose_secret().to_owned());
        self.run_blocking(move |inner| inner.hash_now(secret.as_bytes()))
            .await
    }

    /// Checks a password against a stored hash with argon2's own constant-time comparison,
    /// using the parameters, variant and pepper ID recorded in the stored string.
    ///
    /// # Errors
    /// [`HashError::UnknownPepperId`] if the hash names a pepper that is not configured,
    /// [`HashError::Argon2`], or [`HashError::NoRuntime`] / [`HashError::TaskFailed`].
    pub async fn verify(
        &self,
        password: &Password,
        stored: &PasswordHashString,
    ) -> Result<Verification, HashError> {
        let secret = Zeroizing::new(password.expose_secret().to_owned());
        let stored = stored.clone();
        self.run_blocking(move |inner| inner.verify_now(secret.as_bytes(), stored.as_str()))
            .await
    }

    /// For a login ID that does not exist: does the same work as [`verify`](Self::verify)
    /// against a hash made at construction with the current parameters and pepper, and
    /// always returns [`Verification::Mismatch`], so response time does not reveal whether
    /// the ID exists (SEC-23).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub async fn verify_dummy(&self, password: &Password) -> Result<Verification, HashError> {
        let secret = Zeroizing::new(password.expose_secret().to_owned());
        self.run_blocking(move |inner| {
            let outcome = inner.verify_now(secret.as_bytes(), inner.dummy.as_str())?;
            let _ = std::hint::black_box(outcome);
            Ok(Verification::Mismatch)
        })
        .await
    }

    /// Synchronous [`hash`](Self::hash), for benchmarks and callers without a runtime.
    ///
    /// It runs on the calling thread and does **not** take a permit: the caller bounds its
    /// own concurrency. Never call it from an async task.
    ///
    /// # Errors
    /// [`HashError::Rng`] or [`HashError::Argon2`].
    pub fn hash_blocking(&self, password: &Password) -> Result<PasswordHashString, HashError> {
        self.inner.hash_now(password.expose_secret().as_bytes())
    }

    /// Synchronous [`verify`](Self::verify); same caveats as
    /// [`hash_blocking`](Self::hash_blocking).
    ///
    /// # Errors
    /// [`HashError::UnknownPepperId`] or [`HashError::Argon2`].
    pub fn verify_blocking(
        &self,
        password: &Password,
        stored: &PasswordHashString,
    ) -> Result<Verification, HashError> {
        self.inner
            .verify_now(password.expose_secret().as_bytes(), stored.as_str())
    }

    /// Runs `f` where [`Offload`] says, holding a permit. The permit moves into the task
    /// (or job), so it is released only when Argon2 has finished, even if the caller's
    /// future is dropped first.
    async fn run_blocking<T, F>(&self, f: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, HashError> + Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| HashError::NoRuntime)?;
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| HashError::TaskFailed)?;
        let inner = Arc::clone(&self.inner);
        if let Some(pinned) = &self.pinned {
            let (answer, answered) = tokio::sync::oneshot::channel();
            let job: Job = Box::new(move || {
                let _permit = permit;
                // A caller gone while this waited in the queue (a dropped request) is not
                // worth an Argon2 computation; its permit frees at once.
                if !answer.is_closed() {
                    let _ = answer.send(f(&inner));
                }
            });
            pinned.jobs.send(job).map_err(|_| HashError::TaskFailed)?;
            return answered.await.map_err(|_| HashError::TaskFailed)?;
        }
        let multi_thread = handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
        let (permit, f) = if self.in_place && multi_thread && !self.in_place_refused.load(Relaxed) {
            match in_place(permit, f, &inner) {
                Ok(computed) => return computed,
                Err(job) => {
                    // Tokio does not block in place here (a `LocalSet`): the computation
                    // never started; the blocking pool takes it, and every later one.
                    self.in_place_refused.store(true, Relaxed);
                    tracing::warn!(target: "kenpo_auth::password_hash", "Offload::InPlace is not possible on this thread (a LocalSet?); Argon2 runs on the blocking pool");
                    job
                }
            }
        } else {
            (permit, f)
        };
        handle
            .spawn_blocking(move || {
                let _permit = permit;
                f(&inner)
            })
            .await
            .map_err(|_| HashError::TaskFailed)?
    }
}

/// Runs `f` on this thread under [`tokio::task::block_in_place`], holding `permit`.
/// A computation that panics answers `TaskFailed`, as on the other offloads. Where Tokio
/// refuses to block in place (it panics before running anything: a `LocalSet` on a
/// multi-thread runtime), the untouched job comes back.
fn in_place<T, F>(
    permit: OwnedSemaphorePermit,
    f: F,
    inner: &Inner,
) -> Result<Result<T, HashError>, (OwnedSemaphorePermit, F)>
where
    F: FnOnce(&Inner) -> Result<T, HashError>,
{
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let mut job = Some((permit, f));
    let ran = catch_unwind(AssertUnwindSafe(|| {
        tokio::task::block_in_place(|| {
            job.take().map(|(permit, f)| {
                let _permit = permit;
                catch_unwind(AssertUnwindSafe(|| f(inner)))
            })
        })
    }));
    match (ran, job) {
        (Ok(Some(computed)), _) => Ok(computed.unwrap_or(Err(HashError::TaskFailed))),
        (_, Some(job)) => Err(job),
        _ => Ok(Err(HashError::TaskFailed)),
    }
}

impl Inner {
    fn hash_now(&self, password: &[u8]) -> Result<PasswordHashString, HashError> {
        self.argon2_section(|| {
            self.memory.hash(
                &self.engine,
                &self.argon2_params,
                self.current.as_ref(),
                password,
            )
        })
    }

    fn verify_now(&self, password: &[u8], stored: &str) -> Result<Verification, HashError> {
        let parsed = Parsed::new(stored)?;
        let pepper = match parsed.key_id {
            None => None,
            Some(id) => Some(
                self.current
                    .iter()
                    .chain(self.previous.iter())
                    .find(|p| p.id == id)
                    .ok_or(HashError::UnknownPepperId { id })?,
            ),
        };
        // Variant, version and parameters (output length and associated data included)
        // come from the stored hash; the pepper supplies the secret. This is argon2's
        // `verify_password`, computed by argon2-rust on pooled memory (see `Arenas`).
        let params = Params::try_from(&parsed.phc).map_err(HashError::MalformedStoredHash)?;
        let (Some(salt), Some(expected)) = (&parsed.phc.salt, &parsed.phc.hash) else {
            return Err(HashError::MalformedStoredHash(ph::Error::OutputSize));
        };
        let engine = engine(parsed.algorithm, parsed.version, &params, expected.len())?;
        let mut computed = Zeroizing::new([0u8; ph::phc::Output::MAX_LENGTH]);
        let out = computed
            .get_mut(..expected.len())
            .ok_or(HashError::MalformedStoredHash(ph::Error::OutputSize))?;
        self.argon2_section(|| {
            self.memory.compute(
                &engine,
                password,
                salt.as_ref(),
                secret(pepper),
                params.data(),
                out,
            )
        })?;
        // Constant time, as argon2's own comparison of `Output`s.
        if bool::from(out.ct_eq(expected.as_bytes())) {
            Ok(Verification::Match {
                needs_rehash: self.needs_rehash(&parsed),
            })
        } else {
            Ok(Verification::Mismatch)
        }
    }

    fn needs_rehash(&self, stored: &Parsed) -> bool {
        !stored.is_current_variant
            || !stored.params.meets(&self.params)
            || stored.key_id != self.current.as_ref().map(Pepper::id)
            || stored.salt_len < SALT_LEN
            || stored.output_len != OUTPUT_LEN
    }

    /// Wraps each Argon2 computation; in tests it records how many run at once.
    #[cfg(not(test))]
    fn argon2_section<T>(&self, f: impl FnOnce() -> T) -> T {
        f()
    }

    #[cfg(test)]
    fn argon2_section<T>(&self, f: impl FnOnce() -> T) -> T {
        self.probe.enter();
        let out = f();
        self.probe.leave();
        out
    }
}

/// Argon2 working memory kept between computations: `argon2-rust` hashers, each holding
/// one arena.
///
/// argon2's own `hash_password` and `verify_password` allocate their 19 MiB (at the
/// default cost) on every call, and glibc keeps what each blocking-pool thread freed: on
/// the example portal each login page-faulted ~1 200 times while zeroing fresh memory,
/// and 2 500 registrations left the process at ~645 MB resident (see BENCHMARKS.md). Here
/// at most `keep` (= `max_concurrent`) arenas are kept — the permits bound how many
/// computations run at once — none larger than the current parameters need; a stored hash
/// with a larger `m` is computed on an arena of its own, freed afterwards. argon2-rust
/// wipes an arena when the computation that used it returns, and reuse cannot change a
/// result: Argon2 writes every block before it reads it.
struct Arenas {
    pool: Mutex<Vec<argon2_rust::Hasher>>,
    /// The most arenas kept (`max_concurrent`).
    keep: usize,
    /// The block count of the current parameters: the largest arena kept.
    blocks: usize,
}

impl Arenas {
    /// Computes the Argon2 tag of `password` into `out` (whose length is the engine's tag
    /// length) on a pooled arena.
    fn compute(
        &self,
        engine: &argon2_rust::Argon2,
        password: &[u8],
        salt: &[u8],
        secret: &[u8],
        data: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        if engine.params().memory_blocks() as usize > self.blocks {
            // Costlier than the configured parameters: an arena of its own, wiped and
            // freed on return, so a stored string cannot make the pool grow.
            return engine
                .hash_into_with_ad(password, salt, secret, data, out)
                .map_err(compute_error);
        }
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut hasher = match pooled {
            Some(mut hasher) => {
                // Keeps the arena (it only ever grows, and `blocks` bounds what it meets).
                hasher.set_argon2(*engine);
                hasher
            }
            None => engine.hasher(),
        };
        let result = hasher.hash_into_with_ad(password, salt, secret, data, out);
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < self.keep {
            pool.push(hasher);
        }
        // Otherwise `hasher` is dropped (its arena wiped and freed) after the lock.
        drop(pool);
        result.map_err(compute_error)
    }

    /// A new PHC string for `password`: Argon2id v19 with `params` (and the pepper's
    /// `keyid`), a fresh salt from the OS CSPRNG and a 32-byte tag.
    fn hash(
        &self,
        engine: &argon2_rust::Argon2,
        params: &Params,
        pepper: Option<&Pepper>,
        password: &[u8],
    ) -> Result<PasswordHashString, HashError> {
        let mut salt = [0u8; SALT_LEN];
        SysRng.try_fill_bytes(&mut salt).map_err(HashError::Rng)?;
        self.hash_with_salt(engine, params, pepper, password, &salt)
    }

    /// [`hash`](Self::hash) with a given salt; exactly the string RustCrypto's
    /// `hash_password_with_salt` writes for the same inputs.
    fn hash_with_salt(
        &self,
        engine: &argon2_rust::Argon2,
        params: &Params,
        pepper: Option<&Pepper>,
        password: &[u8],
        salt: &[u8],
    ) -> Result<PasswordHashString, HashError> {
        let mut tag = Zeroizing::new([0u8; OUTPUT_LEN]);
        self.compute(
            engine,
            password,
            salt,
            secret(pepper),
            params.data(),
            tag.as_mut(),
        )?;
        let phc = ph::phc::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ph::phc::ParamsString::try_from(params).map_err(HashError::Argon2)?,
            salt: Some(ph::phc::Salt::new(salt).map_err(|e| HashError::Argon2(e.into()))?),
            hash: Some(
                ph::phc::Output::new(tag.as_ref()).map_err(|e| HashError::Argon2(e.into()))?,
            ),
        };
        Ok(PasswordHashString(phc.to_string()))
    }
}

/// The pepper's key as Argon2's secret input `K` (empty without a pepper).
fn secret(pepper: Option<&Pepper>) -> &[u8] {
    pepper.map_or(&[], |p| p.key.expose_secret().as_slice())
}

/// `argon2-rust`'s configuration for what RustCrypto's `params` describe: the same
/// variant, version, m, t, p and tag length. Lanes are computed one after another on the
/// calling thread (one permit, one core: SEC-22), as RustCrypto's `argon2` does.
fn engine(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    output_len: usize,
) -> Result<argon2_rust::Argon2, HashError> {
    let algorithm = match algorithm {
        Algorithm::Argon2d => argon2_rust::Algorithm::Argon2d,
        Algorithm::Argon2i => argon2_rust::Algorithm::Argon2i,
        Algorithm::Argon2id => argon2_rust::Algorithm::Argon2id,
    };
    let version = match version {
        Version::V0x10 => argon2_rust::Version::V0x10,
        Version::V0x13 => argon2_rust::Version::V0x13,
    };
    let built = argon2_rust::Params::builder()
        .memory(argon2_rust::params::Memory::kib(u64::from(params.m_cost())))
        .passes(params.t_cost())
        .lanes(params.p_cost())
        .threads(1)
        .tag_len(argon2_rust::params::TagLen::bytes(output_len as u64))
        .build()
        .map_err(compute_error)?;
    Ok(argon2_rust::Argon2::new(algorithm, version, built))
}

/// An `argon2-rust` error as the `password-hash` error [`HashError::Argon2`] carries.
/// Inputs are validated by RustCrypto's parser and parameters first, so in practice only
/// an allocation failure reaches here.
fn compute_error(e: argon2_rust::Error) -> HashError {
    use argon2_rust::Error as E;
    HashError::Argon2(match e {
        E::MemoryAllocationError => ph::Error::OutOfMemory,
        E::SaltTooShort | E::SaltTooLong => ph::Error::SaltInvalid,
        E::OutputTooShort | E::OutputTooLong | E::OutPtrMismatch => ph::Error::OutputSize,
        E::PwdTooLong => ph::Error::PasswordInvalid,
        E::TimeTooSmall
        | E::TimeTooLarge
        | E::MemoryTooLittle
        | E::MemoryTooMuch
        | E::LanesTooFew
        | E::LanesTooMany
        | E::ThreadsTooFew
        | E::ThreadsTooMany
        | E::SecretTooLong
        | E::AdTooLong => ph::Error::ParamsInvalid,
        _ => ph::Error::Internal,
    })
}

#[cfg(test)]
mod probe {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    /// SEC-22 instrumentation: current and peak number of Argon2 computations in flight,
    /// and an optional delay that widens each computation so overlaps are observable;
    /// and the name of the thread the last one ran on (where [`Offload`](super::Offload)
    /// put it).
    #[derive(Default)]
    pub(super) struct Probe {
        in_flight: AtomicUsize,
        pub(super) max_in_flight: AtomicUsize,
        pub(super) delay_ms: AtomicU64,
        pub(super) thread: Mutex<Option<String>>,
    }

    impl Probe {
        pub(super) fn enter(&self) {
            *self
                .thread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                std::thread::current().name().map(str::to_owned);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let delay = self.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
        }

        pub(super) fn leave(&self) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::Argon2;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use std::sync::atomic::Ordering;

    const MIN: HashParams = HashParams::danger_test_minimum();

    fn pw(s: &str) -> Password {
        Password::new(s).expect("test password")
    }

    fn hasher(params: HashParams, pepper: Option<Pepper>, previous: Vec<Pepper>) -> PasswordHasher {
        PasswordHasher::new(params, pepper, previous, 4).unwrap()
    }

    fn phc(h: &PasswordHashString) -> ph::phc::PasswordHash {
        ph::phc::PasswordHash::new(h.as_str()).unwrap()
    }

    // SEC-19: Argon2id, v=19, the configured m/t/p, 16-byte salt, 32-byte output — checked
    // with argon2's own PHC parser, for the default (production) and the test minimum.
    #[tokio::test]
    async fn sec_19_phc_string_records_argon2id_v19_params_and_16_byte_salt() {
        for params in [HashParams::DEFAULT, MIN] {
            let h = hasher(params, None, vec![]);
            let stored = h.hash(&pw("ほけんしょう-correct-horse")).await.unwrap();
            let parsed = phc(&stored);
            assert_eq!(parsed.algorithm.as_str(), "argon2id");
            assert_eq!(parsed.version, Some(19));
            assert_eq!(parsed.params.get_decimal("m"), Some(params.m_cost_kib));
            assert_eq!(parsed.params.get_decimal("t"), Some(params.t_cost));
            assert_eq!(parsed.params.get_decimal("p"), Some(params.p_cost));
            assert_eq!(parsed.salt.unwrap().len(), 16);
            assert_eq!(parsed.hash.unwrap().len(), 32);
            assert!(parsed.params.get("keyid").is_none());
        }
        // The default meets the Appendix C floor.
        let d = phc(&hasher(HashParams::DEFAULT, None, vec![])
            .hash(&pw("x"))
            .await
            .unwrap());
        assert!(d.params.get_decimal("m").unwrap() >= 19_456);
        assert!(d.params.get_decimal("t").unwrap() >= 2);
        assert!(d.params.get_decimal("p").unwrap() >= 1);
    }

    // SEC-19: the shipped default is OWASP's Argon2id setting and argon2's own default.
    #[test]
    fn sec_19_default_params_are_owasp() {
        assert_eq!(
            HashParams::DEFAULT,
            HashParams {
                m_cost_kib: 19_456,
                t_cost: 2,
                p_cost: 1
            }
        );
        assert_eq!(HashParams::default(), HashParams::DEFAULT);
        let a = Params::DEFAULT;
        assert_eq!(
            (a.m_cost(), a.t_cost(), a.p_cost()),
            (19_456, 2, 1),
            "argon2 default drifted"
        );
        assert!(!MIN.meets(&HashParams::DEFAULT));
    }

    // SEC-01 / SEC-19: salts are fresh per hash, so equal passwords give different hashes.
    #[tokio::test]
    async fn sec_19_salt_is_fresh_per_hash() {
        let h = hasher(MIN, None, vec![]);
        let a = h.hash(&pw("same password")).await.unwrap();
        let b = h.hash(&pw("same password")).await.unwrap();
        assert_ne!(phc(&a).salt.unwrap(), phc(&b).salt.unwrap());
        assert_ne!(a.as_str(), b.as_str());
    }

    // SEC-20: a hash made with m=12288, t=3, p=1 still verifies under the default policy,
    // reports needs_rehash, and the rehash carries the current parameters.
    #[tokio::test]
    async fn sec_20_old_parameters_verify_and_report_needs_rehash() {
        let old = HashParams {
            m_cost_kib: 12_288,
            t_cost: 3,
            p_cost: 1,
        };
        let password = pw("旧パラメータで保存されたパスワード");
        let stored = hasher(old, None, vec![]).hash(&password).await.unwrap();
        assert_eq!(phc(&stored).params.get_decimal("m"), Some(12_288));

        let current = hasher(HashParams::DEFAULT, None, vec![]);
        assert_eq!(
            current.verify(&password, &stored).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            current.verify(&pw("wrong"), &stored).await.unwrap(),
            Verification::Mismatch
        );

        let rehashed = current.hash(&password).await.unwrap();
        let p = phc(&rehashed);
        assert_eq!(p.params.get_decimal("m"), Some(19_456));
        assert_eq!(p.params.get_decimal("t"), Some(2));
        assert_eq!(
            current.verify(&password, &rehashed).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    // SEC-20: needs_rehash is set exactly when the stored hash is below the current policy.
    #[test]
    fn sec_20_needs_rehash_table() {
        let base = HashParams {
            m_cost_kib: 64,
            t_cost: 2,
            p_cost: 1,
        };
        let current = hasher(base, None, vec![]);
        let password = pw("table password");
        let cases = [
            (base, false),
            (
                HashParams {
                    m_cost_kib: 128,
                    ..base
                },
                false,
            ),
            (HashParams { t_cost: 3, ..base }, false),
            (
                HashParams {
                    m_cost_kib: 32,
                    ..base
                },
                true,
            ),
            (HashParams { t_cost: 1, ..base }, true),
            // more memory does not make up for fewer passes: per-parameter floor
            (
                HashParams {
                    m_cost_kib: 256,
                    t_cost: 1,
                    ..base
                },
                true,
            ),
        ];
        for (stored_params, expected) in cases {
            let stored = hasher(stored_params, None, vec![])
                .hash_blocking(&password)
                .unwrap();
            assert_eq!(
                current.verify_blocking(&password, &stored).unwrap(),
                Verification::Match {
                    needs_rehash: expected
                },
                "{stored_params:?}"
            );
        }
    }

    // SEC-20: parameters are read from the PHC string, including legacy variants
    // (argon2i, v=16) made by other software; those verify and must be rehashed.
    #[test]
    fn sec_20_legacy_variants_verify_from_their_own_params() {
        let password = b"legacy password";
        let current = hasher(MIN, None, vec![]);
        for (alg, ver) in [
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
            (Algorithm::Argon2d, Version::V0x13),
        ] {
            let params = Params::new(32, 2, 2, None).unwrap();
            let s = Argon2::new(alg, ver, params)
                .hash_password_with_salt(password, b"0123456789abcdef")
                .unwrap()
                .to_string();
            let stored = PasswordHashString::parse(&s).unwrap();
            assert_eq!(
                current
                    .verify_blocking(&pw("legacy password"), &stored)
                    .unwrap(),
                Verification::Match { needs_rehash: true },
                "{s}"
            );
            assert_eq!(
                current
                    .verify_blocking(&pw("legacy passwore"), &stored)
                    .unwrap(),
                Verification::Mismatch
            );
        }
    }

    // SEC-21: with the database but the wrong pepper, nothing verifies.
    #[tokio::test]
    async fn sec_21_wrong_pepper_never_verifies() {
        let right = hasher(MIN, Some(Pepper::new(1, [0xA5; 32])), vec![]);
        let wrong_key_same_id = hasher(MIN, Some(Pepper::new(1, [0x5A; 32])), vec![]);
        let wrong_as_previous = hasher(
            MIN,
            Some(Pepper::new(2, [0x11; 32])),
            vec![Pepper::new(1, [0x5A; 32])],
        );
        let no_pepper = hasher(MIN, None, vec![]);
        for p in [
            "a",
            "correct horse battery staple",
            "けんぽ太郎のパスワード",
        ] {
            let password = pw(p);
            let stored = right.hash(&password).await.unwrap();
            assert_eq!(
                right.verify(&password, &stored).await.unwrap(),
                Verification::Match {
                    needs_rehash: false
                }
            );
            for other in [&wrong_key_same_id, &wrong_as_previous] {
                assert_eq!(
                    other.verify(&password, &stored).await.unwrap(),
                    Verification::Mismatch,
                    "{other:?}"
                );
            }
            assert_eq!(
                no_pepper.verify(&password, &stored).await,
                Err(HashError::UnknownPepperId { id: 1 })
            );
            // An unpeppered hash of the same password is a different value.
            let plain = no_pepper.hash(&password).await.unwrap();
            assert_eq!(
                wrong_key_same_id.verify(&password, &plain).await.unwrap(),
                Verification::Match { needs_rehash: true }
            );
        }
    }

    // SEC-21: a hash made under an old pepper ID verifies and asks to be rehashed under the
    // new one; the rehash records the new ID.
    #[tokio::test]
    async fn sec_21_old_pepper_verifies_and_needs_rehash() {
        let password = pw("rotate me please");
        let old = hasher(MIN, Some(Pepper::new(7, [7; 32])), vec![]);
        let stored = old.hash(&password).await.unwrap();
        assert_eq!(
            phc(&stored)
                .params
                .get("keyid")
                .unwrap()
                .b64_decode(&mut [0u8; 8])
                .unwrap(),
            [7]
        );

        let rotated = hasher(
            MIN,
            Some(Pepper::new(8, [8; 32])),
            vec![Pepper::new(7, [7; 32])],
        );
        assert_eq!(
            rotated.verify(&password, &stored).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
        let rehashed = rotated.hash(&password).await.unwrap();
        assert_eq!(
            phc(&rehashed)
                .params
                .get("keyid")
                .unwrap()
                .b64_decode(&mut [0u8; 8])
                .unwrap(),
            [8]
        );
        assert_eq!(
            rotated.verify(&password, &rehashed).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            old.verify(&password, &rehashed).await,
            Err(HashError::UnknownPepperId { id: 8 })
        );
        // Turning the pepper off: peppered hashes still verify via previous, then rehash.
        let off = hasher(MIN, None, vec![Pepper::new(8, [8; 32])]);
        assert_eq!(
            off.verify(&password, &rehashed).await.unwrap(),
            Verification::Match { needs_rehash: true }
        );
    }

    // SEC-21 / SEC-04: the pepper key never appears in Debug output.
    #[test]
    fn sec_21_pepper_debug_is_redacted() {
        let pepper = Pepper::new(3, [0x42; 32]);
        let text = format!("{pepper:?}");
        assert!(text.contains("[redacted]") && text.contains('3'), "{text}");
        assert!(!text.contains("66") && !text.contains("42"), "{text}");
        let h = hasher(MIN, Some(pepper), vec![]);
        let text = format!("{h:?}");
        assert!(!text.contains("66") && !text.contains("42"), "{text}");
    }

    // SEC-23: the dummy verify is always a mismatch, and its hash uses the current params
    // and pepper so it costs what a real verify costs.
    #[tokio::test]
    async fn sec_23_dummy_verify_is_a_mismatch() {
        let h = hasher(MIN, Some(Pepper::new(4, [4; 32])), vec![]);
        for p in ["a", "guess", "けんぽ"] {
            assert_eq!(
                h.verify_dummy(&pw(p)).await.unwrap(),
                Verification::Mismatch
            );
        }
        let dummy = phc(&h.inner.dummy);
        assert_eq!(dummy.algorithm.as_str(), "argon2id");
        assert_eq!(dummy.params.get_decimal("m"), Some(MIN.m_cost_kib));
        assert_eq!(dummy.params.get_decimal("t"), Some(MIN.t_cost));
        assert!(dummy.params.get("keyid").is_some());

        let d = hasher(HashParams::DEFAULT, None, vec![]);
        let dummy = phc(&d.inner.dummy);
        assert_eq!(dummy.params.get_decimal("m"), Some(19_456));
        assert_eq!(dummy.params.get_decimal("t"), Some(2));
    }

    // SEC-23: the dummy goes through the same Argon2 path as a real verify (counted once).
    #[tokio::test]
    async fn sec_23_dummy_runs_argon2() {
        let h = hasher(MIN, None, vec![]);
        assert_eq!(h.inner.probe.max_in_flight.load(Ordering::SeqCst), 0);
        let _ = h.verify_dummy(&pw("nobody")).await.unwrap();
        assert_eq!(h.inner.probe.max_in_flight.load(Ordering::SeqCst), 1);
    }

    /// `h` accepts `password` against `stored` (no rehash), refuses a wrong one and the
    /// dummy: what every offload must answer.
    async fn answers_right(h: &PasswordHasher, password: &Password, stored: &PasswordHashString) {
        assert_eq!(
            h.verify(password, stored).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify(&pw("wrong"), stored).await.unwrap(),
            Verification::Mismatch
        );
        assert_eq!(
            h.verify_dummy(password).await.unwrap(),
            Verification::Mismatch
        );
    }

    /// An `InPlace` hasher, `text` as a password and its hash made by it (in place or
    /// not, as the runtime allows), and the name of the calling thread.
    async fn in_place_hashed(
        text: &str,
    ) -> (PasswordHasher, Password, PasswordHashString, Option<String>) {
        let h = hasher(MIN, None, vec![])
            .with_offload(Offload::InPlace)
            .unwrap();
        assert_eq!(h.offload(), Offload::InPlace);
        let password = pw(text);
        let stored = h.hash(&password).await.unwrap();
        (
            h,
            password,
            stored,
            std::thread::current().name().map(str::to_owned),
        )
    }

    /// The name of the thread the hasher's last computation ran on.
    fn computed_on(h: &PasswordHasher) -> String {
        h.inner
            .probe
            .thread
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_default()
    }

    // #18: with `Offload::PinnedThreads` the async methods compute on the hasher's own
    // threads (one per core), with the same answers, and the blocking pool is not used.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pinned_threads_compute_on_the_hashers_own_threads() {
        let h = hasher(MIN, None, vec![])
            .with_offload(Offload::PinnedThreads)
            .unwrap();
        assert_eq!(h.offload(), Offload::PinnedThreads, "this platform pins");
        let password = pw("専用スレッドのパスワード");
        let stored = h.hash(&password).await.unwrap();
        assert!(
            computed_on(&h).starts_with("kenpo-argon2-"),
            "{}",
            computed_on(&h)
        );
        answers_right(&h, &password, &stored).await;
        assert!(computed_on(&h).starts_with("kenpo-argon2-"));
        let pool = hasher(MIN, None, vec![]);
        assert_eq!(pool.offload(), Offload::BlockingPool);
        assert!(matches!(
            pool.verify(&password, &stored).await.unwrap(),
            Verification::Match { .. }
        ));
        assert!(!computed_on(&pool).starts_with("kenpo-argon2-"));
    }

    // #18: the pinned threads compute side by side, one per core — not one at a time
    // behind their shared queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pinned_threads_compute_side_by_side() {
        let cores = core_affinity::get_core_ids().unwrap().len();
        assert_eq!(
            peak_in_flight_on(Offload::PinnedThreads, 8, 8).await,
            cores.min(8),
            "one computation per core at once"
        );
    }

    // A computation that panics answers `TaskFailed` and costs the pool no thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_computation_keeps_the_pinned_threads() {
        let h = hasher(MIN, None, vec![])
            .with_offload(Offload::PinnedThreads)
            .unwrap();
        let queue = h.pinned.as_ref().unwrap().queue.clone();
        let cores = queue.strong_count();
        let r: Result<(), HashError> = h
            .run_blocking(|_| -> Result<(), HashError> { panic!("a computation panics") })
            .await;
        assert_eq!(r, Err(HashError::TaskFailed));
        assert_eq!(queue.strong_count(), cores, "no thread lost");
        assert_eq!(
            h.verify_dummy(&pw("x")).await.unwrap(),
            Verification::Mismatch
        );
    }

    // SEC-22 on the pinned threads: the permits still bound the computations in flight,
    // whatever the number of threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sec_22_pinned_threads_keep_the_bound() {
        assert_eq!(peak_in_flight_on(Offload::PinnedThreads, 1, 4).await, 1);
    }

    // #18: `Offload::InPlace` computes on the thread that awaits it — no hand-off to
    // another thread and back — with the same answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_computes_on_the_calling_thread() {
        let (h, password, stored, caller) = in_place_hashed("その場で計算するパスワード").await;
        assert_eq!(Some(computed_on(&h)), caller);
        answers_right(&h, &password, &stored).await;
        // On a worker of the runtime too (Tokio hands the worker's other tasks on).
        let on_worker = h.clone();
        let (verdict, worker) = tokio::spawn(async move {
            let verdict = on_worker.verify(&password, &stored).await.unwrap();
            (verdict, std::thread::current().name().map(str::to_owned))
        })
        .await
        .unwrap();
        assert!(matches!(verdict, Verification::Match { .. }));
        assert_eq!(Some(computed_on(&h)), worker);
    }

    // Where `block_in_place` is not allowed (a current-thread runtime) `InPlace` computes
    // on the blocking pool instead of panicking.
    #[tokio::test(flavor = "current_thread")]
    async fn in_place_on_a_current_thread_runtime_uses_the_blocking_pool() {
        let (h, password, stored, caller) = in_place_hashed("現在のスレッドのみ").await;
        assert!(matches!(
            h.verify(&password, &stored).await.unwrap(),
            Verification::Match { .. }
        ));
        assert_ne!(Some(computed_on(&h)), caller);
    }

    // Inside a `LocalSet` Tokio refuses to block in place: `InPlace` then computes on the
    // blocking pool (the request gets its answer, not Tokio's panic), from then on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_inside_a_local_set_uses_the_blocking_pool() {
        let (h, password, stored, caller) = in_place_hashed("ローカルセットの中").await;
        assert_eq!(
            Some(computed_on(&h)),
            caller,
            "in place outside the LocalSet"
        );
        let local = tokio::task::LocalSet::new();
        let in_local = h.clone();
        let (first, second) = local
            .run_until(async move {
                let first = in_local.verify(&password, &stored).await.unwrap();
                let second = in_local.verify(&pw("wrong"), &stored).await.unwrap();
                (first, second)
            })
            .await;
        assert!(matches!(first, Verification::Match { .. }));
        assert_eq!(second, Verification::Mismatch);
        assert_ne!(Some(computed_on(&h)), caller, "on the blocking pool");
        assert!(h.in_place_refused.load(Ordering::SeqCst));
    }

    // In place, a panicking computation answers `TaskFailed`, as on the other offloads,
    // and gives back its permit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_a_panicking_computation_answers_task_failed() {
        let h = PasswordHasher::new(MIN, None, vec![], 1)
            .unwrap()
            .with_offload(Offload::InPlace)
            .unwrap();
        let r: Result<(), HashError> = h
            .run_blocking(|_| -> Result<(), HashError> { panic!("a computation panics") })
            .await;
        assert_eq!(r, Err(HashError::TaskFailed));
        assert_eq!(
            h.verify_dummy(&pw("x")).await.unwrap(),
            Verification::Mismatch,
            "its one permit is free again"
        );
    }

    // SEC-22 in place: the permits still bound the computations in flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sec_22_in_place_keeps_the_bound() {
        assert_eq!(peak_in_flight_on(Offload::InPlace, 1, 4).await, 1);
        assert_eq!(peak_in_flight_on(Offload::InPlace, 2, 4).await, 2);
    }

    // The pinned threads end with the last clone of their hasher: a host that rebuilds
    // its portal does not collect threads.
    #[test]
    fn pinned_threads_end_with_the_hasher() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let h = hasher(MIN, None, vec![])
            .with_offload(Offload::PinnedThreads)
            .unwrap();
        let queue = h.pinned.as_ref().unwrap().queue.clone();
        let cores = core_affinity::get_core_ids().unwrap().len().min(4);
        assert_eq!(
            queue.strong_count(),
            cores,
            "one thread per core, at most the permits"
        );
        let copy = h.clone();
        assert_eq!(
            rt.block_on(copy.verify_dummy(&pw("x"))).unwrap(),
            Verification::Mismatch
        );
        drop(h);
        assert_eq!(queue.strong_count(), cores, "a clone keeps them");
        drop(copy);
        // Each thread sees the queue closed and ends.
        for _ in 0..500 {
            if queue.strong_count() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(queue.strong_count(), 0, "the threads ended");
    }

    async fn peak_in_flight(permits: usize, tasks: usize) -> usize {
        peak_in_flight_on(Offload::BlockingPool, permits, tasks).await
    }

    /// The most computations in flight at once when `tasks` hashes (each widened to
    /// 25 ms) are started together on a hasher with `permits`, running where `offload`
    /// says.
    async fn peak_in_flight_on(offload: Offload, permits: usize, tasks: usize) -> usize {
        let h = PasswordHasher::new(MIN, None, vec![], permits)
            .unwrap()
            .with_offload(offload)
            .unwrap();
        h.inner.probe.delay_ms.store(25, Ordering::SeqCst);
        let mut joins = Vec::new();
        for i in 0..tasks {
            let h = h.clone();
            joins.push(tokio::spawn(async move {
                h.hash(&pw(&format!("password {i}"))).await.unwrap()
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        h.inner.probe.max_in_flight.load(Ordering::SeqCst)
    }

    // SEC-22: concurrent Argon2 computations never exceed max_concurrent; the control
    // with more permits shows the probe does observe overlap.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sec_22_concurrent_hashes_bounded() {
        assert_eq!(peak_in_flight(2, 10).await, 2);
        assert_eq!(peak_in_flight(1, 4).await, 1);
        assert!(peak_in_flight(8, 8).await > 2);
    }

    /// The pool's state: how many arenas, and the largest (in 1 KiB blocks).
    fn pooled(h: &PasswordHasher) -> (usize, usize) {
        let pool = h.inner.memory.pool.lock().unwrap();
        (
            pool.len(),
            pool.iter()
                .map(argon2_rust::Hasher::reserved_blocks)
                .max()
                .unwrap_or(0),
        )
    }

    // SEC-22: reused Argon2 memory stays within the bound — at most `max_concurrent`
    // arenas, none larger than the configured parameters need; a stored hash with a
    // larger `m` verifies on an arena of its own that is not kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sec_22_reused_memory_is_bounded() {
        let configured = HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let h = PasswordHasher::new(configured, None, vec![], 2).unwrap();
        assert_eq!(pooled(&h), (1, 64), "the dummy hash's arena, kept");
        let password = pw("メモリを使い回すパスワード");
        let larger = hasher(
            HashParams {
                m_cost_kib: 256,
                ..configured
            },
            None,
            vec![],
        )
        .hash(&password)
        .await
        .unwrap();
        assert!(matches!(
            h.verify(&password, &larger).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        ));
        assert_eq!(
            pooled(&h),
            (1, 64),
            "an arena above the configured m is not kept"
        );

        let own = h.hash(&password).await.unwrap();
        let mut joins = Vec::new();
        for i in 0..12 {
            let (h, own) = (h.clone(), own.clone());
            let guess = if i % 2 == 0 {
                "メモリを使い回すパスワード"
            } else {
                "wrong"
            };
            joins.push(tokio::spawn(async move {
                h.verify(&pw(guess), &own).await.unwrap()
            }));
        }
        for (i, j) in joins.into_iter().enumerate() {
            let expected = if i % 2 == 0 {
                Verification::Match {
                    needs_rehash: false,
                }
            } else {
                Verification::Mismatch
            };
            assert_eq!(j.await.unwrap(), expected);
        }
        let (buffers, largest) = pooled(&h);
        assert!((1..=2).contains(&buffers), "{buffers} buffers kept");
        assert_eq!(
            largest, h.inner.memory.blocks,
            "one configured-size arena each"
        );
        assert_eq!(largest, 64, "64 KiB = 64 blocks of 1 KiB");
    }

    // SEC-22: hashing takes its memory from the same pool as verification, under the same
    // permits: a burst of hashes leaves at most `max_concurrent` configured-size arenas.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sec_22_hashing_reuses_the_pool() {
        let h = PasswordHasher::new(
            HashParams {
                m_cost_kib: 128,
                t_cost: 1,
                p_cost: 1,
            },
            None,
            vec![],
            2,
        )
        .unwrap();
        let mut joins = Vec::new();
        for i in 0..10 {
            let h = h.clone();
            joins.push(tokio::spawn(async move {
                let password = pw(&format!("password {i}"));
                let stored = h.hash(&password).await.unwrap();
                (password, stored)
            }));
        }
        for j in joins {
            let (password, stored) = j.await.unwrap();
            assert_eq!(
                h.verify_blocking(&password, &stored).unwrap(),
                Verification::Match {
                    needs_rehash: false
                }
            );
        }
        let (arenas, largest) = pooled(&h);
        assert!((1..=2).contains(&arenas), "{arenas} arenas kept");
        assert_eq!(largest, 128);
    }

    // The PHC string is the one RustCrypto's `argon2` writes for the same password, salt,
    // parameters and pepper — computed by argon2-rust, encoded by password-hash.
    #[test]
    fn hash_is_rustcrypto_s_string_for_the_same_salt() {
        let salt = b"0123456789abcdef";
        for pepper in [None, Some(Pepper::new(3, [0x33; 32]))] {
            let key_id = pepper.as_ref().map(Pepper::id);
            let h = hasher(
                HashParams {
                    m_cost_kib: 96,
                    t_cost: 2,
                    p_cost: 2,
                },
                pepper,
                vec![],
            );
            let inner = &h.inner;
            let ours = inner
                .memory
                .hash_with_salt(
                    &inner.engine,
                    &inner.argon2_params,
                    inner.current.as_ref(),
                    "同じ塩".as_bytes(),
                    salt,
                )
                .unwrap();
            let params = inner.params.to_argon2(key_id).unwrap();
            let theirs = argon2_with(inner.current.as_ref(), params)
                .hash_password_with_salt("同じ塩".as_bytes(), salt)
                .unwrap()
                .to_string();
            assert_eq!(ours.as_str(), theirs);
        }
    }

    /// RustCrypto's `argon2` for the current parameters and pepper (the reference).
    fn argon2_with(pepper: Option<&Pepper>, params: Params) -> Argon2<'_> {
        match pepper {
            Some(p) => Argon2::new_with_secret(
                p.key.expose_secret(),
                Algorithm::Argon2id,
                Version::V0x13,
                params,
            )
            .unwrap(),
            None => Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        }
    }

    #[tokio::test]
    async fn wrong_password_is_mismatch() {
        let h = hasher(MIN, None, vec![]);
        let stored = h.hash(&pw("Correct Horse 正しい")).await.unwrap();
        for wrong in [
            "Correct Horse",
            "correct horse 正しい",
            "Correct Horse 正しい ",
            "Correct Horse 正しいx",
        ] {
            assert_eq!(
                h.verify(&pw(wrong), &stored).await.unwrap(),
                Verification::Mismatch,
                "{wrong:?}"
            );
        }
        assert_eq!(
            h.verify(&pw("Correct Horse 正しい"), &stored)
                .await
                .unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    // A malformed stored string is an error from the parser (and serde), never a panic.
    #[test]
    fn malformed_stored_hash_is_an_error_not_a_panic() {
        let salt = "MDEyMzQ1Njc4OWFiY2RlZg"; // 16 bytes
        let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; // 32 bytes
        let ok = format!("$argon2id$v=19$m=8,t=1,p=1${salt}${out}");
        PasswordHashString::parse(&ok).unwrap();
        let bad = [
            String::new(),
            "$".into(),
            "plaintext-password".into(),
            "argon2id$v=19$m=8,t=1,p=1".into(),
            format!("$bcrypt$v=19$m=8,t=1,p=1${salt}${out}"),
            format!("$scrypt$ln=15,r=8,p=1${salt}${out}"),
            format!("$argon2id$v=99$m=8,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}"),
            "$argon2id$v=19$m=8,t=1,p=1".into(),
            format!("$argon2id$v=19$m=8,t=1,p=1$c2FsdA${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}$AAAA"),
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}$!!!"),
            format!("$argon2id$v=19$m=8,t=1,p=1${salt}${out}$extra"),
            format!("$argon2id$v=19$m=4,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=0,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=0${salt}${out}"),
            format!("$argon2id$v=19$m=4294967295,t=1,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=4000000000,p=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1,foo=1${salt}${out}"),
            format!("$argon2id$v=19$m=8,t=1,p=1,keyid=AQID${salt}${out}"),
            format!("$argon2id$v=19$m=x,t=1,p=1${salt}${out}"),
        ];
        for s in &bad {
            let err = PasswordHashString::parse(s).err();
            assert!(
                matches!(err, Some(HashError::MalformedStoredHash(_))),
                "{s:?} -> {err:?}"
            );
            let de: Result<PasswordHashString, serde::de::value::Error> =
                PasswordHashString::deserialize(s.clone().into_deserializer());
            assert!(de.is_err(), "{s:?}");
        }
    }

    #[tokio::test]
    async fn stored_hash_round_trips_through_string_and_serde() {
        let h = hasher(MIN, Some(Pepper::new(9, [9; 32])), vec![]);
        let password = pw("round trip");
        let stored = h.hash(&password).await.unwrap();
        let s: String = stored.clone().into();
        let back = PasswordHashString::parse(&s).unwrap();
        assert_eq!(back.as_str(), stored.as_str());
        let de: PasswordHashString = PasswordHashString::deserialize::<
            serde::de::value::StringDeserializer<serde::de::value::Error>,
        >(s.clone().into_deserializer())
        .unwrap();
        assert_eq!(de.as_str(), s);
        assert_eq!(
            h.verify(&password, &de).await.unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    // Debug shows the parameters but neither the salt nor the hash.
    #[tokio::test]
    async fn debug_shows_only_parameters() {
        let stored = hasher(MIN, Some(Pepper::new(1, [1; 32])), vec![])
            .hash(&pw("debug me"))
            .await
            .unwrap();
        let p = phc(&stored);
        let text = format!("{stored:?}");
        assert!(
            text.contains("$argon2id$v=19$m=8,t=1,p=1,keyid=AQ$"),
            "{text}"
        );
        assert!(!text.contains(&p.salt.unwrap().to_string()), "{text}");
        assert!(!text.contains(&p.hash.unwrap().to_string()), "{text}");
    }

    #[test]
    fn blocking_and_async_are_interchangeable() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let h = hasher(MIN, None, vec![]);
        let password = pw("both ways");
        let a = h.hash_blocking(&password).unwrap();
        let b = rt.block_on(h.hash(&password)).unwrap();
        assert_eq!(
            rt.block_on(h.verify(&password, &a)).unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            h.verify_blocking(&password, &b).unwrap(),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    // Outside a Tokio runtime the async API reports NoRuntime instead of panicking.
    #[test]
    fn async_outside_runtime_is_an_error() {
        let h = hasher(MIN, None, vec![]);
        let password = pw("no runtime");
        let mut fut = std::pin::pin!(h.hash(&password));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => assert_eq!(r.err(), Some(HashError::NoRuntime)),
            std::task::Poll::Pending => panic!("expected an immediate error"),
        }
    }

    #[test]
    fn new_rejects_bad_configuration() {
        type Case = (HashParams, Option<Pepper>, Vec<Pepper>, usize, HashError);
        let cases: Vec<Case> = vec![
            (MIN, None, vec![], 0, HashError::InvalidConcurrency),
            (
                MIN,
                None,
                vec![],
                Semaphore::MAX_PERMITS + 1,
                HashError::InvalidConcurrency,
            ),
            (
                HashParams {
                    m_cost_kib: 7,
                    ..MIN
                },
                None,
                vec![],
                1,
                HashError::InvalidParams(argon2::Error::MemoryTooLittle),
            ),
            (
                HashParams { t_cost: 0, ..MIN },
                None,
                vec![],
                1,
                HashError::InvalidParams(argon2::Error::TimeTooSmall),
            ),
            (
                HashParams {
                    m_cost_kib: (1 << 20) + 1,
                    ..MIN
                },
                None,
                vec![],
                1,
                HashError::ParamsAboveCeiling,
            ),
            (
                HashParams { t_cost: 65, ..MIN },
                None,
                vec![],
                1,
                HashError::ParamsAboveCeiling,
            ),
            (
                MIN,
                Some(Pepper::new(1, [1; 32])),
                vec![Pepper::new(1, [2; 32])],
                1,
                HashError::DuplicatePepperId { id: 1 },
            ),
            (
                MIN,
                None,
                vec![Pepper::new(5, [1; 32]), Pepper::new(5, [2; 32])],
                1,
                HashError::DuplicatePepperId { id: 5 },
            ),
        ];
        for (params, pepper, previous, n, expected) in cases {
            assert_eq!(
                PasswordHasher::new(params, pepper, previous, n).err(),
                Some(expected)
            );
        }
        assert!(PasswordHasher::default_max_concurrent() >= 1);
    }

    #[test]
    fn meets_is_per_parameter() {
        let floor = HashParams::DEFAULT;
        assert!(floor.meets(&floor));
        assert!(
            HashParams {
                m_cost_kib: 47_104,
                t_cost: 2,
                p_cost: 1
            }
            .meets(&floor)
        );
        for below in [
            HashParams {
                m_cost_kib: 19_455,
                ..floor
            },
            HashParams { t_cost: 1, ..floor },
            HashParams {
                m_cost_kib: 47_104,
                t_cost: 1,
                p_cost: 1,
            },
        ] {
            assert!(!below.meets(&floor), "{below:?}");
        }
    }

    #[test]
    fn hasher_is_clone_send_sync() {
        fn check<T: Clone + Send + Sync + 'static>() {}
        check::<PasswordHasher>();
        check::<PasswordHashString>();
        check::<HashError>();
    }

    #[test]
    fn sec_23_error_codes_are_distinct_and_messages_generic() {
        use crate::lang::Lang;

        let all = [
            HashError::MalformedStoredHash(ph::Error::SaltInvalid),
            HashError::UnknownPepperId { id: 1 },
            HashError::DuplicatePepperId { id: 1 },
            HashError::InvalidParams(argon2::Error::TimeTooSmall),
            HashError::ParamsAboveCeiling,
            HashError::InvalidConcurrency,
            HashError::Argon2(ph::Error::Internal),
            HashError::Rng(SysError::UNSUPPORTED),
            HashError::NoRuntime,
            HashError::TaskFailed,
        ];
        let codes: HashSet<_> = all.iter().map(HashError::code).collect();
        assert_eq!(codes.len(), all.len());
        // SEC-23: one text for every fault, so a member learns nothing about the account.
        for e in &all {
            assert!(e.code().starts_with("password_hash."));
            for lang in [Lang::Ja, Lang::En] {
                assert_eq!(e.message(lang), HashError::TaskFailed.message(lang));
            }
        }
        assert!(
            HashError::TaskFailed
                .message(Lang::Ja)
                .contains("しばらくしてから")
        );
    }

    proptest! {
        // The parser never panics on arbitrary strings, nor on strings shaped like PHC.
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = PasswordHashString::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_phc_like(
            alg in "(argon2id|argon2i|argon2d|x)",
            v in "[0-9]{0,12}",
            params in "[a-z=,0-9]{0,40}",
            salt in "[A-Za-z0-9+/]{0,70}",
            out in "[A-Za-z0-9+/=]{0,100}",
        ) {
            let s = format!("${alg}$v={v}${params}${salt}${out}");
            let _ = PasswordHashString::parse(&s);
        }

        // Verifying on reused memory gives argon2's own answer, for any variant,
        // version, cost, salt and output length, with or without a pepper, right or
        // wrong password — even when the buffer was left dirty by a computation with
        // other parameters (each case runs three verifications on one hasher).
        #[test]
        fn verify_on_reused_memory_agrees_with_argon2(
            cases in proptest::collection::vec(
                (
                    0usize..3,
                    any::<bool>(),
                    8u32..96,
                    1u32..3,
                    1u32..3,
                    16usize..48,
                    proptest::collection::vec(any::<u8>(), 8..24),
                    any::<bool>(),
                    "\\PC{1,16}",
                    any::<bool>(),
                ),
                3,
            ),
        ) {
            let key = [9u8; 32];
            let h = PasswordHasher::new(
                HashParams { m_cost_kib: 64, t_cost: 1, p_cost: 1 },
                Some(Pepper::new(7, key)),
                vec![],
                1,
            )
            .unwrap();
            for (alg, v13, m, t, p, out_len, salt, peppered, password, right) in cases {
                let algorithm = [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d][alg];
                let version = if v13 { Version::V0x13 } else { Version::V0x10 };
                let mut b = ParamsBuilder::new();
                b.m_cost(m.max(8 * p)).t_cost(t).p_cost(p).output_len(out_len);
                if peppered {
                    b.keyid(KeyId::new(&[7]).unwrap());
                }
                let params = b.build().unwrap();
                let argon2 = if peppered {
                    Argon2::new_with_secret(&key, algorithm, version, params).unwrap()
                } else {
                    Argon2::new(algorithm, version, params)
                };
                let password = pw(&password);
                let stored = argon2
                    .hash_password_with_salt(password.expose_secret().as_bytes(), &salt)
                    .unwrap()
                    .to_string();
                let guess = if right { password } else { pw("ちがうパスワード-x") };
                let theirs = argon2
                    .verify_password(
                        guess.expose_secret().as_bytes(),
                        &ph::phc::PasswordHash::new(&stored).unwrap(),
                    )
                    .is_ok();
                let ours = h
                    .verify_blocking(&guess, &PasswordHashString::parse(&stored).unwrap())
                    .unwrap();
                prop_assert_eq!(matches!(ours, Verification::Match { .. }), theirs, "{}", stored);
            }
        }

        // Canonical form round-trips: parse(as_str) gives the same string, and it verifies.
        #[test]
        fn hash_round_trips(p in "\\PC{1,40}") {
            let h = hasher(MIN, None, vec![]);
            let stored = h.hash_blocking(&pw(&p)).unwrap();
            let back = PasswordHashString::parse(stored.as_str()).unwrap();
            prop_assert_eq!(back.as_str(), stored.as_str());
            prop_assert_eq!(
                h.verify_blocking(&pw(&p), &back).unwrap(),
                Verification::Match { needs_rehash: false }
            );
        }
    }
}
