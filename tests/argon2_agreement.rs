//! `argon2-rust` (which computes every hash and verification of `PasswordHasher`) agrees
//! with RustCrypto's `argon2` 0.6 (the crate the library used before, and the one that
//! reads and writes its PHC strings), in both directions:
//!
//! - raw tags: the same variant (Argon2d, Argon2i, Argon2id), version (0x10, 0x13), cost,
//!   salt, tag length, secret `K` (the pepper) and associated data give the same bytes;
//! - PHC strings: a string written by either crate verifies with the other, and a wrong
//!   password fails with both;
//! - through the library: a hash RustCrypto made (any variant, version, cost, salt
//!   length, tag length, with or without a pepper) verifies with `PasswordHasher` exactly
//!   when RustCrypto says it does, and a `PasswordHasher` hash (random cost and pepper)
//!   verifies with RustCrypto.
//!
//! Costs are small (m ≤ 96 KiB) so the whole file runs in seconds.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{AssociatedData, KeyId, ParamsBuilder};
use kenpo_auth::domain::Password;
use kenpo_auth::password_hash::{
    HashParams, PasswordHashString, PasswordHasher, Pepper, Verification,
};
use proptest::prelude::*;

const VARIANTS: [(argon2::Algorithm, argon2_rust::Algorithm); 3] = [
    (argon2::Algorithm::Argon2d, argon2_rust::Algorithm::Argon2d),
    (argon2::Algorithm::Argon2i, argon2_rust::Algorithm::Argon2i),
    (
        argon2::Algorithm::Argon2id,
        argon2_rust::Algorithm::Argon2id,
    ),
];

const VERSIONS: [(argon2::Version, argon2_rust::Version); 2] = [
    (argon2::Version::V0x10, argon2_rust::Version::V0x10),
    (argon2::Version::V0x13, argon2_rust::Version::V0x13),
];

/// One set of inputs for both crates.
#[derive(Debug, Clone)]
struct Case {
    variant: usize,
    version: usize,
    m: u32,
    t: u32,
    p: u32,
    out_len: usize,
    salt: Vec<u8>,
    secret: Option<[u8; 32]>,
    data: Vec<u8>,
    password: Vec<u8>,
}

prop_compose! {
    fn case()(
        variant in 0usize..3,
        version in 0usize..2,
        m in 8u32..96,
        t in 1u32..4,
        p in 1u32..4,
        out_len in 10usize..=64,
        salt in proptest::collection::vec(any::<u8>(), 8..=48),
        secret in proptest::option::of(any::<[u8; 32]>()),
        data in proptest::collection::vec(any::<u8>(), 0..=32),
        password in proptest::collection::vec(any::<u8>(), 0..80),
    ) -> Case {
        // RustCrypto (like the reference) needs m ≥ 8 KiB per lane.
        Case { variant, version, m: m.max(8 * p), t, p, out_len, salt, secret, data, password }
    }
}

impl Case {
    fn rustcrypto_params(&self, key_id: Option<u8>) -> argon2::Params {
        let mut b = ParamsBuilder::new();
        b.m_cost(self.m)
            .t_cost(self.t)
            .p_cost(self.p)
            .output_len(self.out_len);
        if !self.data.is_empty() {
            b.data(AssociatedData::new(&self.data).unwrap());
        }
        if let Some(id) = key_id {
            b.keyid(KeyId::new(&[id]).unwrap());
        }
        b.build().unwrap()
    }

    fn rustcrypto(&self, key_id: Option<u8>) -> argon2::Argon2<'_> {
        let (alg, _) = VARIANTS[self.variant];
        let (ver, _) = VERSIONS[self.version];
        let params = self.rustcrypto_params(key_id);
        match &self.secret {
            Some(k) => argon2::Argon2::new_with_secret(k, alg, ver, params).unwrap(),
            None => argon2::Argon2::new(alg, ver, params),
        }
    }

    fn fast(&self) -> argon2_rust::Argon2 {
        let (_, alg) = VARIANTS[self.variant];
        let (_, ver) = VERSIONS[self.version];
        let params = argon2_rust::Params::builder()
            .memory(argon2_rust::params::Memory::kib(u64::from(self.m)))
            .passes(self.t)
            .lanes(self.p)
            .threads(1)
            .tag_len(argon2_rust::params::TagLen::bytes(self.out_len as u64))
            .build()
            .unwrap();
        argon2_rust::Argon2::new(alg, ver, params)
    }

    fn secret(&self) -> &[u8] {
        self.secret.as_ref().map_or(&[], |k| k.as_slice())
    }
}

fn pw(s: &str) -> Password {
    Password::new(s).unwrap()
}

fn is_match(v: Verification) -> bool {
    matches!(v, Verification::Match { .. })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    // Raw tags, both crates, every variant and version, with secret and associated data;
    // the second computation on a reused `Hasher` arena left dirty by the first.
    #[test]
    fn raw_tags_agree(c in case(), other in case()) {
        let mut theirs = vec![0u8; c.out_len];
        c.rustcrypto(None)
            .hash_password_into(&c.password, &c.salt, &mut theirs)
            .unwrap();
        let mut ours = vec![0u8; c.out_len];
        c.fast()
            .hash_into_with_ad(&c.password, &c.salt, c.secret(), &c.data, &mut ours)
            .unwrap();
        prop_assert_eq!(&ours, &theirs);

        let mut hasher = other.fast().hasher();
        let mut scratch = vec![0u8; other.out_len];
        hasher
            .hash_into_with_ad(&other.password, &other.salt, other.secret(), &other.data, &mut scratch)
            .unwrap();
        hasher.set_argon2(c.fast());
        let mut reused = vec![0u8; c.out_len];
        hasher
            .hash_into_with_ad(&c.password, &c.salt, c.secret(), &c.data, &mut reused)
            .unwrap();
        prop_assert_eq!(&reused, &theirs);
    }

    // PHC strings without a secret (argon2-rust's string API has none): written by
    // either crate, verified by the other; a wrong password fails with both.
    #[test]
    fn phc_strings_verify_both_ways(mut c in case(), wrong in proptest::collection::vec(any::<u8>(), 0..80)) {
        c.secret = None;
        c.data.clear();
        let (_, alg) = VARIANTS[c.variant];
        prop_assume!(wrong != c.password);

        let by_rustcrypto = c
            .rustcrypto(None)
            .hash_password_with_salt(&c.password, &c.salt)
            .unwrap()
            .to_string();
        prop_assert!(argon2_rust::Argon2::verify_encoded(&by_rustcrypto, &c.password, alg).is_ok());
        prop_assert_eq!(
            argon2_rust::Argon2::verify_encoded(&by_rustcrypto, &wrong, alg),
            Err(argon2_rust::Error::VerifyMismatch)
        );

        let by_fast = c.fast().hash_encoded(&c.password, &c.salt).unwrap();
        let parsed = PasswordHash::new(&by_fast).unwrap();
        let rustcrypto = argon2::Argon2::default();
        prop_assert!(rustcrypto.verify_password(&c.password, &parsed).is_ok());
        prop_assert!(rustcrypto.verify_password(&wrong, &parsed).is_err());
        // Same inputs, same string, whoever writes it.
        prop_assert_eq!(by_fast, by_rustcrypto);
    }

    // RustCrypto hashes (any variant, version, cost, salt, tag length, pepper) → the
    // library verifies exactly when RustCrypto does.
    #[test]
    fn library_verifies_rustcrypto_hashes(
        c in case(),
        password in "\\PC{1,24}",
        right in any::<bool>(),
    ) {
        let key_id = c.secret.map(|_| 5u8);
        let typed = password;
        let password = pw(&typed);
        let stored = c
            .rustcrypto(key_id)
            .hash_password_with_salt(password.expose_secret().as_bytes(), &c.salt)
            .unwrap()
            .to_string();
        let pepper = c.secret.map(|k| Pepper::new(5, k));
        let library = PasswordHasher::new(HashParams::danger_test_minimum(), pepper, vec![], 1).unwrap();
        let guess = if right { password } else { pw("間違ったパスワード") };
        let theirs = c
            .rustcrypto(key_id)
            .verify_password(guess.expose_secret().as_bytes(), &PasswordHash::new(&stored).unwrap())
            .is_ok();
        let ours = library
            .verify_blocking(&guess, &PasswordHashString::parse(&stored).unwrap())
            .unwrap();
        prop_assert_eq!(is_match(ours), theirs, "{}", stored);
        // A wrong guess fails (unless the random password happened to be that guess).
        prop_assert_eq!(theirs, right || pw(&typed).expose_secret() == guess.expose_secret());
    }

    // Library hashes (random cost, with or without a pepper) → RustCrypto verifies them,
    // with the pepper as its secret, and refuses a wrong password.
    #[test]
    fn rustcrypto_verifies_library_hashes(
        m in 8u32..96,
        t in 1u32..4,
        p in 1u32..4,
        secret in proptest::option::of(any::<[u8; 32]>()),
        password in "\\PC{1,24}",
    ) {
        let params = HashParams { m_cost_kib: m.max(8 * p), t_cost: t, p_cost: p };
        let pepper = secret.map(|k| Pepper::new(9, k));
        let library = PasswordHasher::new(params, pepper, vec![], 1).unwrap();
        let password = pw(&password);
        let stored = library.hash_blocking(&password).unwrap();
        let parsed = PasswordHash::new(stored.as_str()).unwrap();
        prop_assert_eq!(parsed.algorithm.as_str(), "argon2id");
        prop_assert_eq!(parsed.version, Some(0x13));
        prop_assert_eq!(parsed.salt.unwrap().len(), 16);
        prop_assert_eq!(parsed.hash.unwrap().len(), 32);
        let argon2_params = argon2::Params::try_from(&parsed).unwrap();
        let rustcrypto = match &secret {
            Some(k) => argon2::Argon2::new_with_secret(
                k,
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2_params,
            )
            .unwrap(),
            None => argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2_params,
            ),
        };
        prop_assert!(rustcrypto.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok());
        prop_assert!(rustcrypto.verify_password(b"not the password", &parsed).is_err());
        prop_assert_eq!(
            library.verify_blocking(&password, &stored).unwrap(),
            Verification::Match { needs_rehash: false }
        );
    }
}

// The pinned vector both crates document for Argon2id (RFC 9106 §5.3 inputs: password
// 32 × 0x01, salt 16 × 0x02, secret 8 × 0x03, associated data 12 × 0x04, m = 32, t = 3,
// p = 4, version 0x13, 32-byte tag).
#[test]
fn rfc_9106_argon2id_vector() {
    let expected = [
        0x0d, 0x64, 0x0d, 0xf5, 0x8d, 0x78, 0x76, 0x6c, 0x08, 0xc0, 0x37, 0xa3, 0x4a, 0x8b, 0x53,
        0xc9, 0xd0, 0x1e, 0xf0, 0x45, 0x2d, 0x75, 0xb6, 0x5e, 0xb5, 0x25, 0x20, 0xe9, 0x6b, 0x01,
        0xe6, 0x59,
    ];
    let params = argon2_rust::Params::builder()
        .memory(argon2_rust::params::Memory::kib(32))
        .passes(3)
        .lanes(4)
        .threads(1)
        .build()
        .unwrap();
    let mut tag = [0u8; 32];
    argon2_rust::Argon2::new(
        argon2_rust::Algorithm::Argon2id,
        argon2_rust::Version::V0x13,
        params,
    )
    .hash_into_with_ad(&[1; 32], &[2; 16], &[3; 8], &[4; 12], &mut tag)
    .unwrap();
    assert_eq!(tag, expected);
}
