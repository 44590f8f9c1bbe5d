//! Interaction tests with `mockall` (DESIGN §7): what the [`Portal`] does to its ports,
//! not only what it answers.
//!
//! - **One mail per step.** Each member action sends exactly the mails it should — one
//!   at R1, R3, R5, L1 and L4; none at R2, R4, L2, L3 or a refused login — checked with a
//!   `MockMailer` re-armed before every step.
//! - **A rejection touches nothing.** Malformed or unknown input is refused without a
//!   `Store::commit`; where the input cannot even be read, without any store, roster or
//!   mail call at all (mocks with no expectations panic on any call).
//! - **Only digests reach the store** (SEC-03, SEC-04, SEC-45). Every `Commit` of a whole
//!   journey is captured and taken apart through its `serde` form — the form a real
//!   store persists — and searched for every secret the member held.
//!
//! Why `serde` and not `Debug` for the last one: `Debug` of the stored types redacts
//! secrets and truncates digests to 8 hex characters by design, so a `Debug` snapshot
//! would pass even if a plaintext secret sat in a field whose `Debug` hides it, and it
//! could not show that lookups hit the digests stored. `serde_json` gives the serde
//! form, and every leaf of it is searched.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use time::Duration;

use crate::domain::{EmailAddress, Password};
use crate::error::Rejection;
use crate::flow::{IdentityClaim, LinkStatus};
use crate::mail::{MailMessage, OutgoingMail, RecordingMailer};
use crate::portal::{NewCredentials, Portal};
use crate::ports::directory::MockMemberDirectory;
use crate::ports::mailer::MockMailer;
use crate::ports::{
    Account, AccountId, AccountLookup, Commit, CommitOutcome, Counter, FlowRecord, MailError,
    Mailer, MemberDirectory, Store, StoreError, Versioned,
};
use crate::store::MockStore;
use crate::store::{Loaded, MemoryStore};
use crate::testkit::fixtures::{self, parsed, password as pw, rejection_of as rejection};
use crate::testkit::{ManualClock, MemoryDirectory, RecordingAudit};
use crate::token::{
    FlowHandle, OtpChallengeId, RegistrationLinkToken, TokenDigest, VerificationLinkToken,
};

const EMAIL: &str = fixtures::TARO_EMAIL;
const CARD: &str = fixtures::TARO_CARD;
const BIRTH: &str = fixtures::TARO_BIRTH;
const LOGIN_ID: &str = "yamada-t2026";
/// 15 characters: the strict policy's minimum.
const PASSWORD: &str = fixtures::PASSWORD;
const WRONG_PASSWORD: &str = "さくらの花が咲く秋の午後に散歩";

// ── Fixture ──────────────────────────────────────────────────────────────────────────
//
// The sample insurer, policy, key and roster come from `testkit::fixtures`.

/// Taro and Hanako, without kana names (these tests claim no kana at R3).
fn roster() -> MemoryDirectory {
    fixtures::roster_of([fixtures::taro(), fixtures::hanako()].map(|mut m| {
        m.kana_name = None;
        m
    }))
}

fn portal(
    store: impl Store + 'static,
    mailer: impl Mailer + 'static,
    directory: impl MemberDirectory + 'static,
    clock: &ManualClock,
) -> Portal {
    fixtures::portal_builder()
        .store(store)
        .mailer(mailer)
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        .audit(Arc::new(RecordingAudit::new()))
        .build()
        .unwrap()
}

fn claim() -> IdentityClaim {
    fixtures::claim(CARD, BIRTH)
}

fn credentials() -> NewCredentials {
    fixtures::credentials(LOGIN_ID, PASSWORD)
}

/// A code that differs from `code` in its first digit.
fn wrong_code(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    chars[0] = if chars[0] == '9' { '0' } else { '9' };
    chars.into_iter().collect()
}

fn link1_of(m: &MailMessage) -> RegistrationLinkToken {
    match m {
        MailMessage::RegistrationLink(l) => l.token.clone(),
        other => panic!("expected link 1, got {}", other.kind()),
    }
}

fn link2_of(m: &MailMessage) -> VerificationLinkToken {
    match m {
        MailMessage::IdentityVerified(l) => l.token.clone(),
        other => panic!("expected link 2, got {}", other.kind()),
    }
}

fn otp_of(m: &MailMessage) -> String {
    match m {
        MailMessage::LoginOtp { code, .. } => code.expose_secret().to_owned(),
        other => panic!("expected a 暗証キー, got {}", other.kind()),
    }
}

// ── (a) One mail per step ────────────────────────────────────────────────────────────

/// The portal's mailer: forwards every send to a `MockMailer` that the test re-arms
/// before each step, and keeps what the mock accepted so the journey can go on.
#[derive(Clone, Default)]
struct ArmedMailer {
    mock: Arc<tokio::sync::Mutex<MockMailer>>,
    accepted: Arc<Mutex<Vec<OutgoingMail>>>,
}

impl ArmedMailer {
    /// Checks the previous step's expectation, then expects exactly `n` mails of `kind`
    /// to the member for the next step (and nothing else: any other send panics).
    async fn next_step_sends(&self, n: usize, kind: &'static str) {
        let mut mock = self.mock.lock().await;
        mock.checkpoint();
        let accepted = Arc::clone(&self.accepted);
        mock.expect_send()
            .withf(move |m| m.message.kind() == kind && m.to.canonical() == EMAIL)
            .times(n)
            .returning(move |m| {
                accepted.lock().unwrap().push(m.clone());
                Ok(())
            });
    }

    async fn next_step_sends_none(&self) {
        let mut mock = self.mock.lock().await;
        mock.checkpoint();
        mock.expect_send().times(0);
    }

    async fn finish(&self) {
        self.mock.lock().await.checkpoint();
    }

    fn last(&self) -> MailMessage {
        self.accepted
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .message
            .clone()
    }
}

#[async_trait]
impl Mailer for ArmedMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.mock.lock().await.send(mail).await
    }
}

/// DESIGN §7 "mail sent exactly once per step": R1, R3, R5, L1 and L4 each send one mail
/// of their own kind to the member; R2, R4, a refused password, a wrong 暗証キー, the
/// right 暗証キー and closing the code screen send none.
#[tokio::test]
async fn each_step_sends_exactly_its_own_mail() {
    let clock = fixtures::sample_clock();
    let mailer = ArmedMailer::default();
    let p = portal(MemoryStore::new(), mailer.clone(), roster(), &clock);

    mailer.next_step_sends(1, "registration_link").await;
    p.start_registration(EMAIL).await.unwrap();
    let link1 = link1_of(&mailer.last());

    mailer.next_step_sends_none().await;
    let handle = p.open_registration_link(&link1).await.unwrap();

    mailer.next_step_sends(1, "identity_verified").await;
    let shown = p.verify_identity(&handle, claim()).await.unwrap();
    let link2 = link2_of(&mailer.last());

    mailer.next_step_sends_none().await;
    let handle = p.confirm_auth_key(&link2, &shown.auth_key).await.unwrap();

    mailer.next_step_sends(1, "registration_completed").await;
    p.complete_registration(&handle, credentials())
        .await
        .unwrap();

    mailer.next_step_sends_none().await;
    assert_eq!(
        rejection(p.start_login(LOGIN_ID, &pw(WRONG_PASSWORD)).await),
        Rejection::LoginFailed
    );

    mailer.next_step_sends(1, "login_otp").await;
    let challenge = p.start_login(LOGIN_ID, &pw(PASSWORD)).await.unwrap();
    let code = otp_of(&mailer.last());

    mailer.next_step_sends_none().await;
    assert_eq!(
        rejection(
            p.verify_otp(&challenge.challenge, &parsed(&wrong_code(&code)))
                .await
        ),
        Rejection::OtpIncorrect
    );

    clock.advance(Duration::seconds(61));
    mailer.next_step_sends(1, "login_otp").await;
    p.resend_otp(&challenge.challenge).await.unwrap();
    let code = otp_of(&mailer.last());

    mailer.next_step_sends_none().await;
    p.verify_otp(&challenge.challenge, &parsed(&code))
        .await
        .unwrap();

    mailer.next_step_sends(1, "login_otp").await;
    let challenge = p.start_login(LOGIN_ID, &pw(PASSWORD)).await.unwrap();

    mailer.next_step_sends_none().await;
    p.close_otp_screen(&challenge.challenge).await.unwrap();

    mailer.finish().await;
}

// ── (b) A rejection touches nothing ──────────────────────────────────────────────────

/// A store that may not commit. With no other expectation, any read panics too.
fn store_without_commit() -> MockStore {
    let mut store = MockStore::new();
    store.expect_commit().times(0);
    store
}

/// A portal whose store may not commit and whose mailer and roster may not be called.
fn untouched(store: MockStore) -> Portal {
    portal(
        store,
        MockMailer::new(),
        MockMemberDirectory::new(),
        &fixtures::sample_clock(),
    )
}

/// R1 with an address that cannot be read: refused with an `email.*` code before any
/// store, roster or mail call.
#[tokio::test]
async fn malformed_email_at_r1_touches_no_port() {
    for typed in [
        "",
        "山田 <taro.yamada@example.jp>",
        "taro yamada@example.jp",
        "taro.yamada@",
        "taro.yamada@localhost",
        "@example.jp",
    ] {
        let p = untouched(store_without_commit());
        let r = rejection(p.start_registration(typed).await);
        assert!(
            r.code().starts_with("email."),
            "{typed:?} gave {}",
            r.code()
        );
    }
}

/// R2 with a link token that is not one of ours by shape: GET says Invalid, POST says
/// LinkInvalid, and neither looks anything up.
#[tokio::test]
async fn malformed_link_token_at_r2_touches_no_port() {
    for typed in [
        "",
        "not-a-token",
        &"A".repeat(42),
        &"A".repeat(44),
        &format!("{}!", "A".repeat(42)),
        &"\u{FF21}".repeat(43),
    ] {
        // The host's parse refuses it, so no `Portal` call (and no port) is reached;
        // the host shows the invalid-link page for GET and POST alike.
        assert_eq!(
            typed.parse::<RegistrationLinkToken>().err(),
            Some(Rejection::LinkInvalid),
            "{typed:?}"
        );
    }
}

/// SEC-09: a forged (well-formed, unknown) flow handle at R3 is refused before the roster
/// is asked anything, so handles cannot be used to probe card numbers without spending
/// a flow's identity tries.
#[tokio::test]
async fn sec_09_forged_handle_at_r3_never_reaches_the_roster() {
    let mut store = store_without_commit();
    store.expect_load().returning(|_| Ok(Loaded::default()));
    let p = untouched(store);
    let forged = FlowHandle::generate(&mut rand::rng());
    assert_eq!(
        rejection(p.verify_identity(&forged, claim()).await),
        Rejection::WrongStep
    );
}

/// Well-formed but unknown secrets: the store is asked once (one `load`), by the
/// secret's keyed digest (never its text), answers "no such flow", and nothing is
/// written.
#[tokio::test]
async fn unknown_link_or_challenge_is_looked_up_by_digest_and_writes_nothing() {
    let mut rng = rand::rng();
    let link1 = RegistrationLinkToken::generate(&mut rng);
    let link2 = VerificationLinkToken::generate(&mut rng);
    let challenge = OtpChallengeId::generate(&mut rng);
    let cases: Vec<(TokenDigest, Rejection)> = vec![
        (
            link1.digest(&fixtures::test_keyring()),
            Rejection::LinkInvalid,
        ),
        (
            link2.digest(&fixtures::test_keyring()),
            Rejection::LinkInvalid,
        ),
        (
            challenge.digest(&fixtures::test_keyring()),
            Rejection::OtpInvalid,
        ),
    ];
    for (i, (digest, expected)) in cases.into_iter().enumerate() {
        let mut store = store_without_commit();
        store
            .expect_load()
            .withf(move |l| l.flow.first() == Some(&digest))
            .times(1)
            .returning(|_| Ok(Loaded::default()));
        let p = untouched(store);
        let got = match i {
            0 => rejection(p.open_registration_link(&link1).await),
            1 => rejection(p.confirm_auth_key(&link2, &parsed("ABCDEFGH")).await),
            _ => rejection(p.verify_otp(&challenge, &parsed("123456")).await),
        };
        assert_eq!(got, expected);
    }
}

/// Login with a password over the 1 024-byte cap: the same generic answer as any
/// failed login, given before the account is even looked up (SEC-22 refuses it before
/// hashing; here: before any port is called).
#[tokio::test]
async fn over_long_password_at_login_touches_no_port() {
    for typed in ["a".repeat(1025), "あ".repeat(400), "x".repeat(1_000_000)] {
        // `Password::new` refuses it before any `Portal` call (and any port); the host
        // answers that exactly like a failed login (SEC-22).
        let p = untouched(store_without_commit());
        let r = match Password::new(typed) {
            Ok(password) => rejection(p.start_login(LOGIN_ID, &password).await),
            Err(_) => Rejection::LoginFailed,
        };
        assert_eq!(r, Rejection::LoginFailed);
    }
}

/// A store frozen at one flow: answers a `load` of `digest` with `record`, and may not
/// commit.
fn frozen(digest: TokenDigest, record: Versioned<FlowRecord>) -> MockStore {
    let mut store = store_without_commit();
    store
        .expect_load()
        .withf(move |l| l.flow.first() == Some(&digest))
        .returning(move |_| {
            Ok(Loaded {
                flow: Some((record.clone(), digest)),
                ..Loaded::default()
            })
        });
    store
}

/// R2: the GET of link 1 (mail scanners follow links) only inspects — before and after
/// the POST — and a second POST of a used link is refused, all without a commit.
#[tokio::test]
async fn link_1_get_and_reuse_write_nothing() {
    let clock = fixtures::sample_clock();
    let memory = MemoryStore::new();
    let mailer = RecordingMailer::new();
    let real = portal(memory.clone(), mailer.clone(), roster(), &clock);
    real.start_registration(EMAIL).await.unwrap();
    let link1 = link1_of(
        &mailer
            .last_to(&EmailAddress::parse(EMAIL).unwrap())
            .unwrap()
            .message,
    );
    let digest = link1.digest(&fixtures::test_keyring());

    // A portal whose store holds only `record` and refuses to commit.
    let reading = |record| {
        portal(
            frozen(digest, record),
            MockMailer::new(),
            MockMemberDirectory::new(),
            &clock,
        )
    };
    let fresh = memory.find_flow(&digest).await.unwrap().unwrap();
    let p = reading(fresh);
    assert!(matches!(
        p.inspect_registration_link(&link1).await.unwrap(),
        LinkStatus::Valid { .. }
    ));

    real.open_registration_link(&link1).await.unwrap();
    let used = memory.find_flow(&digest).await.unwrap().unwrap();
    let p = reading(used);
    assert_eq!(
        p.inspect_registration_link(&link1).await.unwrap(),
        LinkStatus::Used
    );
    assert_eq!(
        rejection(p.open_registration_link(&link1).await),
        Rejection::LinkUsed
    );
}

// ── (c) Only digests reach the store ─────────────────────────────────────────────────

/// A [`MemoryStore`] that keeps every commit and every `find_flow` key it is given.
#[derive(Clone, Default)]
struct RecordingStore {
    inner: MemoryStore,
    commits: Arc<Mutex<Vec<Commit>>>,
    lookups: Arc<Mutex<Vec<TokenDigest>>>,
}

#[async_trait]
impl Store for RecordingStore {
    async fn find_flow(
        &self,
        key: &TokenDigest,
    ) -> Result<Option<Versioned<FlowRecord>>, StoreError> {
        self.lookups.lock().unwrap().push(*key);
        self.inner.find_flow(key).await
    }

    async fn flows_of_account(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Versioned<FlowRecord>>, StoreError> {
        self.inner.flows_of_account(account).await
    }

    async fn find_account(
        &self,
        by: AccountLookup,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        self.inner.find_account(by).await
    }

    async fn load_counter(&self, key: &str) -> Result<Option<Versioned<Counter>>, StoreError> {
        self.inner.load_counter(key).await
    }

    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        self.commits.lock().unwrap().push(commit.clone());
        self.inner.commit(commit).await
    }

    async fn purge_expired(
        &self,
        now: time::OffsetDateTime,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.inner.purge_expired(now, limit).await
    }

    async fn find_mail(
        &self,
        id: &crate::model::MailId,
    ) -> Result<Option<Versioned<crate::model::OutboxMail>>, StoreError> {
        self.inner.find_mail(id).await
    }

    async fn claim_mails(
        &self,
        now: time::OffsetDateTime,
        leased_until: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Versioned<crate::model::OutboxMail>>, StoreError> {
        self.inner.claim_mails(now, leased_until, limit).await
    }
}

/// What a whole journey handed to the store, and the secrets the member held.
struct Recorded {
    /// Every leaf value of every committed flow, account and counter, in `serde` form.
    leaves: Vec<String>,
    /// `Debug` of every commit.
    debug: Vec<String>,
    /// Every `find_flow` key.
    lookups: Vec<TokenDigest>,
    /// Every flow lookup key the commits stored.
    stored_keys: Vec<TokenDigest>,
    /// Bearer tokens and handles (URL-safe base64), with the digest a lookup should use.
    tokens: Vec<(&'static str, String, TokenDigest)>,
    /// Other secrets: 認証キー (shown and mistyped), passwords (right and wrong).
    secrets: Vec<(&'static str, String)>,
    /// 暗証キー codes (mailed and mistyped).
    codes: Vec<String>,
    /// Password hashes stored.
    password_hashes: Vec<String>,
}

impl Recorded {
    /// Every leaf but the hex digests and IDs, where a run of decimal digits (a 暗証キー,
    /// a 番号) can occur by chance.
    fn readable_leaves(&self) -> Vec<&String> {
        self.leaves
            .iter()
            .filter(|l| !(l.len() >= 32 && l.bytes().all(|b| b.is_ascii_hexdigit())))
            .collect()
    }
}

/// R1–R5 with a mistyped 認証キー, then a login with a wrong password, a wrong 暗証キー,
/// a resend and the right 暗証キー, over a recording store.
async fn recorded_journey() -> Recorded {
    let clock = fixtures::sample_clock();
    let store = RecordingStore::default();
    let mailer = RecordingMailer::new();
    let p = portal(store.clone(), mailer.clone(), roster(), &clock);
    let to = EmailAddress::parse(EMAIL).unwrap();
    let last = || mailer.last_to(&to).unwrap().message;
    let k = fixtures::test_keyring();
    let mut tokens = Vec::new();
    let mut secrets = Vec::new();
    let mut codes = Vec::new();

    p.start_registration(EMAIL).await.unwrap();
    let link1 = link1_of(&last());
    tokens.push(("link 1", link1.expose_secret().to_owned(), link1.digest(&k)));
    let handle1 = p.open_registration_link(&link1).await.unwrap();
    tokens.push((
        "R2 handle",
        handle1.expose_secret().to_owned(),
        handle1.digest(&k),
    ));
    let shown = p.verify_identity(&handle1, claim()).await.unwrap();
    let key = shown.auth_key.expose_secret().to_owned();
    let link2 = link2_of(&last());
    tokens.push(("link 2", link2.expose_secret().to_owned(), link2.digest(&k)));
    let mistyped_key: String = key.chars().rev().collect();
    if mistyped_key != key {
        assert_eq!(
            rejection(p.confirm_auth_key(&link2, &parsed(&mistyped_key)).await),
            Rejection::AuthKeyIncorrect
        );
        secrets.push(("mistyped 認証キー", mistyped_key));
    }
    secrets.push(("認証キー", key.clone()));
    let handle2: FlowHandle = p.confirm_auth_key(&link2, &parsed(&key)).await.unwrap();
    tokens.push((
        "R4 handle",
        handle2.expose_secret().to_owned(),
        handle2.digest(&k),
    ));
    p.complete_registration(&handle2, credentials())
        .await
        .unwrap();
    secrets.push(("password", PASSWORD.to_owned()));

    rejection(p.start_login(LOGIN_ID, &pw(WRONG_PASSWORD)).await);
    secrets.push(("wrong password", WRONG_PASSWORD.to_owned()));
    let challenge = p.start_login(LOGIN_ID, &pw(PASSWORD)).await.unwrap();
    let c = &challenge.challenge;
    tokens.push(("challenge", c.expose_secret().to_owned(), c.digest(&k)));
    let first = otp_of(&last());
    let mistyped = wrong_code(&first);
    rejection(p.verify_otp(c, &parsed(&mistyped)).await);
    clock.advance(Duration::seconds(61));
    p.resend_otp(c).await.unwrap();
    let second = otp_of(&last());
    p.verify_otp(c, &parsed(&second)).await.unwrap();
    codes.extend([first, mistyped, second]);

    let commits = store.commits.lock().unwrap().clone();
    let mut leaves = Vec::new();
    let mut stored_keys = Vec::new();
    let mut password_hashes = Vec::new();
    for commit in &commits {
        for w in &commit.flows {
            leaves.extend(leaves_of(&w.record));
            stored_keys.extend(w.record.state.lookup_keys());
        }
        for w in &commit.accounts {
            let account = &w.account;
            leaves.extend(leaves_of(account));
            password_hashes.push(account.password_hash.as_str().to_owned());
        }
        for w in &commit.counters {
            leaves.extend(leaves_of(&w.counter));
        }
        // The outbox rows: every mail of the journey (links, 暗証キー), sealed.
        for w in &commit.mails {
            leaves.extend(leaves_of(&w.mail));
        }
    }
    let lookups = store.lookups.lock().unwrap().clone();
    Recorded {
        leaves,
        debug: commits.iter().map(|c| format!("{c:?}")).collect(),
        lookups,
        stored_keys,
        tokens,
        secrets,
        codes,
        password_hashes,
    }
}

/// SEC-03 (link tokens and handles stored and looked up only as keyed digests) and
/// SEC-04 (認証キー and 暗証キー stored only as keyed digests, never in `Debug`): after
/// a whole journey, no committed record holds a secret the member held — as text, as
/// its decoded bytes or as their base64/hex — and every `find_flow` used the secret's
/// keyed digest, which the store had been given.
#[tokio::test]
async fn sec_03_sec_04_only_digests_reach_the_store() {
    let r = recorded_journey().await;
    assert!(r.leaves.len() > 50, "the serializer saw the commits");
    let text = r.leaves.join("\n");
    let debug = r.debug.join("\n");

    // The store was given digests, and found flows by them.
    let stored_hex: Vec<String> = r.stored_keys.iter().map(TokenDigest::to_hex).collect();
    for hex in &stored_hex {
        assert!(
            r.leaves.contains(hex),
            "lookup key {hex} is in the stored form"
        );
    }
    assert!(!r.lookups.is_empty());
    for lookup in &r.lookups {
        assert!(
            r.stored_keys.contains(lookup),
            "every lookup is a digest the store was given"
        );
    }

    for (name, token, digest) in &r.tokens {
        let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
        let raw_hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        for form in [token.clone(), raw_hex.clone(), STANDARD.encode(&raw)] {
            assert!(!text.contains(&form), "{name} reached the store");
            assert!(!debug.contains(&form), "{name} is in a commit's Debug");
        }
        // Looked up by its keyed digest, which is neither the token nor its bytes.
        assert!(
            r.lookups.contains(digest),
            "{name} was looked up by its digest"
        );
        assert_ne!(digest.to_hex(), raw_hex);
        assert_ne!(digest.as_bytes().as_slice(), raw.as_slice());
        assert_ne!(&digest.to_hex(), token);
    }
    for (name, secret) in &r.secrets {
        assert!(!text.contains(secret.as_str()), "{name} reached the store");
        assert!(
            !debug.contains(secret.as_str()),
            "{name} is in a commit's Debug"
        );
    }
    // 6-digit codes: searched in every leaf but the hex digests and IDs, where six
    // decimal digits in a row can occur by chance.
    let readable = r.readable_leaves();
    for code in &r.codes {
        assert!(
            readable.iter().all(|l| !l.contains(code.as_str())),
            "a 暗証キー reached the store"
        );
    }
    // No secret type at all inside a commit (their Debug says "[redacted]").
    assert!(
        !debug.contains("redacted"),
        "a secret type is inside a commit"
    );
    // The password is stored as an Argon2id PHC string only.
    assert!(!r.password_hashes.is_empty());
    for h in &r.password_hashes {
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains(PASSWORD) && !h.contains(WRONG_PASSWORD));
    }
}

/// SEC-45: the 記号・番号・枝番 and the birth date typed at R3 are matched against the
/// roster and never written to the store (the flow keeps only the roster's member ID).
#[tokio::test]
async fn sec_45_card_number_and_birth_date_never_reach_the_store() {
    let r = recorded_journey().await;
    let readable = r.readable_leaves();
    let debug = r.debug.join("\n");
    for sensitive in [
        CARD,
        "99912345600",
        "123456",
        BIRTH,
        "19850412",
        "1985/04/12",
    ] {
        assert!(
            readable.iter().all(|l| !l.contains(sensitive)),
            "{sensitive} reached the store"
        );
    }
    // Hyphenated forms cannot occur by chance in the hex IDs `Debug` prints in full.
    for sensitive in [CARD, BIRTH, "1985/04/12"] {
        assert!(
            !debug.contains(sensitive),
            "{sensitive} is in a commit's Debug"
        );
    }
    assert!(
        r.leaves.iter().any(|l| l == "M001"),
        "the member ID is what is kept"
    );
}

/// SEC-45: the address and the roster's member ID stay readable in a stored flow only
/// while the flow still has to mail the address or create the account from them; once a
/// flow has ended, its stored state holds digests and timestamps only.
#[tokio::test]
async fn sec_45_only_flows_that_still_need_them_keep_the_address_and_member() {
    use crate::flow::{FlowState, RegistrationState};
    let (p, store, _, _) = registered_recording().await;
    p.request_password_reset(LOGIN_ID).await.unwrap();
    p.start_login(LOGIN_ID, &pw(PASSWORD)).await.unwrap();
    let commits = store.commits.lock().unwrap().clone();
    let mut live_with_address = 0;
    for w in commits.iter().flat_map(|c| &c.flows) {
        let leaves = leaves_of(&w.record);
        let holds = leaves.iter().any(|l| l == EMAIL || l == "M001");
        let needs = matches!(
            &w.record.state,
            FlowState::Registration(
                RegistrationState::AwaitingLinkOpen(_)
                    | RegistrationState::AwaitingIdentity(_)
                    | RegistrationState::AwaitingAuthKey(_)
                    | RegistrationState::AwaitingCredentials(_)
            ) | FlowState::EmailChange(_)
        );
        assert!(
            !holds || needs,
            "{:?} keeps the address or member",
            w.record
        );
        live_with_address += usize::from(holds);
    }
    assert!(
        live_with_address > 0,
        "the pending registration keeps what R3 and R5 need"
    );
    // What the store holds at the end: the last state written of each flow.
    let mut last = std::collections::HashMap::new();
    for w in commits.iter().flat_map(|c| &c.flows) {
        last.insert(w.record.id.clone(), &w.record);
    }
    for record in last.values() {
        let leaves = leaves_of(*record);
        assert!(
            leaves.iter().all(|l| l != EMAIL && l != "M001"),
            "a flow the journey left keeps the address or member: {:?}",
            record.state
        );
    }
}

/// A portal over a recording store on which Taro has registered (R1–R5).
async fn registered_recording() -> (Portal, RecordingStore, RecordingMailer, ManualClock) {
    let clock = fixtures::sample_clock();
    let store = RecordingStore::default();
    let mailer = RecordingMailer::new();
    let p = portal(store.clone(), mailer.clone(), roster(), &clock);
    register(&p, &mailer).await;
    (p, store, mailer, clock)
}

/// R1–R5 for Taro on `p`.
async fn register(p: &Portal, mailer: &RecordingMailer) {
    let to = EmailAddress::parse(EMAIL).unwrap();
    let last = || mailer.last_to(&to).unwrap().message;
    p.start_registration(EMAIL).await.unwrap();
    let handle = p.open_registration_link(&link1_of(&last())).await.unwrap();
    let shown = p.verify_identity(&handle, claim()).await.unwrap();
    let handle = p
        .confirm_auth_key(&link2_of(&last()), &shown.auth_key)
        .await
        .unwrap();
    p.complete_registration(&handle, credentials())
        .await
        .unwrap();
}

/// The rows one call committed: (flows, accounts, counters) per commit.
async fn rows_of<F: std::future::Future>(store: &RecordingStore, call: F) -> Vec<[usize; 4]> {
    let before = store.commits.lock().unwrap().len();
    call.await;
    store.commits.lock().unwrap()[before..]
        .iter()
        .map(|c| {
            [
                c.flows.len(),
                c.accounts.len(),
                c.counters.len(),
                c.mails.len(),
            ]
        })
        .collect()
}

/// SEC-23 equal work: every refused login commits exactly one row — the account's
/// failure count for a wrong password, the typed ID's refusal counter for an unknown ID
/// or an account refused before its password counts — so the store's work does not
/// tell them apart.
#[tokio::test]
async fn sec_23_every_refused_login_commits_one_row() {
    let (p, store, _, clock) = registered_recording().await;
    let wrong = pw(WRONG_PASSWORD);
    let unknown = rows_of(&store, p.start_login("nobody-here", &wrong)).await;
    let wrong_password = rows_of(&store, p.start_login(LOGIN_ID, &wrong)).await;
    assert_eq!(unknown, vec![[0, 0, 1, 0]]);
    assert_eq!(wrong_password, vec![[0, 1, 0, 0]]);
    // Spend the free failures: the next attempt is refused by the delay, before the
    // password counts.
    for _ in 1..p.policy().password_free_failures {
        p.start_login(LOGIN_ID, &wrong).await.unwrap_err();
    }
    let delayed = rows_of(&store, p.start_login(LOGIN_ID, &pw(PASSWORD))).await;
    assert_eq!(delayed, vec![[0, 0, 1, 0]]);
    // A right password refused after the gate (the hourly 暗証キー-mail cap) writes the
    // same one row: its work does not say the password was right.
    clock.advance(Duration::hours(2));
    for _ in 0..p.policy().otp_mails_per_account_per_hour {
        // Past the repeat window: each L1 mails a code (a repeat would mail none).
        clock.advance(p.policy().repeat_window);
        p.start_login(LOGIN_ID, &pw(PASSWORD)).await.unwrap();
    }
    clock.advance(p.policy().repeat_window);
    let capped = rows_of(&store, p.start_login(LOGIN_ID, &pw(PASSWORD))).await;
    assert_eq!(capped, vec![[0, 0, 1, 0]]);
}

/// SEC-09 equal work at R3: a wrong birth date for a card on the roster and any claim
/// for a card that is not commit the same rows (the flow's attempt and one budget: the
/// member's, or the typed card's), so the store's work is no card-number oracle.
#[tokio::test]
async fn sec_09_a_card_off_the_roster_commits_what_a_card_on_it_does() {
    let (p, store, mailer, clock) = registered_recording().await;
    let to = EmailAddress::parse("new.member@example.jp").unwrap();
    let mut rows = Vec::new();
    for card in [CARD, "999-000000-00"] {
        clock.advance(Duration::minutes(2));
        p.start_registration("new.member@example.jp").await.unwrap();
        let handle = p
            .open_registration_link(&link1_of(&mailer.last_to(&to).unwrap().message))
            .await
            .unwrap();
        rows.push(
            rows_of(
                &store,
                p.verify_identity(&handle, fixtures::claim(card, "1990-01-01")),
            )
            .await,
        );
    }
    assert_eq!(rows[0], vec![[1, 0, 1, 0]]);
    assert_eq!(rows[1], rows[0]);
}

/// SEC-37 / SEC-40 equal work: a reset request for an unknown login ID commits the same
/// rows as one for a known ID, and a login-ID reminder the same rows whether the address
/// and claim matched or not.
#[tokio::test]
async fn sec_37_sec_40_requests_commit_the_same_rows_known_or_not() {
    let (p, store, mailer, clock) = registered_recording().await;
    let known = rows_of(&store, p.request_password_reset(LOGIN_ID)).await;
    let unknown = rows_of(&store, p.request_password_reset("nobody-here")).await;
    assert_eq!(known, unknown);
    assert_eq!(
        known,
        vec![[1, 0, 2, 1], [0, 0, 0, 1]],
        "the flow, the typed ID's mails, the portal's starts and the mail (or its stand-in); then its delivery recorded"
    );
    clock.advance(Duration::minutes(2));
    let matched = rows_of(&store, p.request_login_id_reminder(EMAIL, Some(claim()))).await;
    let wrong_claim = rows_of(
        &store,
        p.request_login_id_reminder(
            "hanako.yamada@example.jp",
            Some(fixtures::claim(CARD, "1990-01-01")),
        ),
    )
    .await;
    let no_account = rows_of(
        &store,
        p.request_login_id_reminder("nobody@example.jp", Some(claim())),
    )
    .await;
    assert_eq!(
        matched,
        vec![[0, 0, 2, 1], [0, 0, 0, 1]],
        "the address's mails, the portal's starts and the mail (or its stand-in); then its delivery recorded"
    );
    assert_eq!(wrong_claim, matched);
    assert_eq!(no_account, matched);
    // Only the match mailed anything.
    assert_eq!(
        mailer
            .last_to(&EmailAddress::parse(EMAIL).unwrap())
            .unwrap()
            .message
            .kind(),
        "login_id_reminder"
    );
}

/// SEC-07 / SEC-37 / SEC-40: the steps that may or may not find an account answer no
/// sooner than `Policy::answer_floor` after they began (measured on Tokio's paused
/// clock, so the assertion is about the wait the portal asks for, not the machine).
#[tokio::test(start_paused = true)]
async fn sec_37_enumerable_steps_answer_at_the_floor() {
    let clock = fixtures::sample_clock();
    let mut policy = fixtures::danger_test_minimum_policy();
    policy.answer_floor = Duration::milliseconds(30);
    let p = fixtures::portal_builder()
        .policy(policy)
        .store(MemoryStore::new())
        .mailer(RecordingMailer::new())
        .directory(roster())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let floor = std::time::Duration::from_millis(30);
    let began = tokio::time::Instant::now();
    p.request_password_reset("nobody-here").await.unwrap();
    assert!(began.elapsed() >= floor);
    let began = tokio::time::Instant::now();
    p.request_login_id_reminder("nobody@example.jp", Some(claim()))
        .await
        .unwrap();
    assert!(began.elapsed() >= floor);
    let began = tokio::time::Instant::now();
    p.start_registration("new@example.jp").await.unwrap();
    assert!(began.elapsed() >= floor);
    // A step without an account to hide is not held back.
    let began = tokio::time::Instant::now();
    p.start_login("nobody-here", &pw(WRONG_PASSWORD))
        .await
        .unwrap_err();
    assert!(began.elapsed() < floor);
}

/// A mailer whose server takes `delay` to accept a mail.
struct SlowMailer {
    inner: RecordingMailer,
    delay: std::time::Duration,
}

#[async_trait]
impl crate::ports::Mailer for SlowMailer {
    async fn send(&self, mail: &crate::mail::OutgoingMail) -> Result<(), crate::ports::MailError> {
        tokio::time::sleep(self.delay).await;
        self.inner.send(mail).await
    }
}

/// SEC-37 / SEC-40 with a slow mail server (80 ms, above the 30 ms floor): a forgotten-ID
/// or reset request that mails nothing takes as long as one whose mail waits on the
/// server — the stand-in takes what a real try takes lately (Tokio's paused clock, so the
/// assertion is about the waits the portal asks for, not the machine).
#[tokio::test(start_paused = true)]
async fn sec_37_sec_40_a_stand_in_takes_as_long_as_a_slow_mail_server() {
    let clock = fixtures::sample_clock();
    let mut policy = fixtures::danger_test_minimum_policy();
    policy.answer_floor = Duration::milliseconds(30);
    let mailer = RecordingMailer::new();
    let delay = std::time::Duration::from_millis(80);
    let p = fixtures::portal_builder()
        .policy(policy)
        .store(MemoryStore::new())
        .mailer(SlowMailer {
            inner: mailer.clone(),
            delay,
        })
        .directory(roster())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    // A mail to the slow server (link 1) teaches the portal how long one takes.
    p.start_registration(EMAIL).await.unwrap();
    assert_eq!(mailer.count(), 1);
    let began = tokio::time::Instant::now();
    p.request_login_id_reminder("nobody@example.jp", Some(claim()))
        .await
        .unwrap();
    let stand_in = began.elapsed();
    assert!(stand_in >= delay, "the stand-in waited {stand_in:?}");
    clock.advance(Duration::minutes(2));
    let began = tokio::time::Instant::now();
    p.request_password_reset("nobody-here").await.unwrap();
    assert!(began.elapsed() >= delay);
}

// ── A serializer that keeps every leaf value ─────────────────────────────────────────

/// Every leaf of a value's `serde` form — strings, numbers and booleans, and the field
/// and variant names (object keys of the JSON form).
fn leaves_of(value: &impl Serialize) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::Bool(b) => out.push(b.to_string()),
            serde_json::Value::Number(n) => out.push(n.to_string()),
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(fields) => {
                for (name, value) in fields {
                    out.push(name.clone());
                    walk(value, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(value).unwrap(), &mut out);
    out
}

#[test]
fn leaves_sees_nested_values() {
    // The collector itself must not miss what it is meant to search.
    #[derive(Serialize)]
    enum E {
        V {
            secret: Option<String>,
            list: Vec<(u8, String)>,
        },
    }
    let l = leaves_of(&E::V {
        secret: Some("needle".to_owned()),
        list: vec![(7, "deep".to_owned())],
    });
    for want in ["V", "secret", "needle", "7", "deep"] {
        assert!(l.iter().any(|x| x == want), "{want} in {l:?}");
    }
}
