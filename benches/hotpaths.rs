//! Hot paths of an authenticated call and of an MFA issuance, one at a time:
//! TOTP verification across the window, SigV4 parse + verify (fresh key derivation vs a cached
//! signing key), session-token sign and verify (EdDSA JWS), and the store's `mfa_authenticate`
//! (the replay-guard consume: one IMMEDIATE transaction, WAL, `synchronous=FULL`) on a temp-dir
//! SQLite file next to the same call on an in-memory database.
//!
//! Run: `cargo bench --bench hotpaths`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::cell::Cell;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use sts_broker::credentials::{KeyRing, SessionClaims, SessionKind, Validation, new_signing_key};
use sts_broker::crypto::MasterKey;
use sts_broker::domain::{
    CodeVerdict, DeviceKind, MfaAttempt, MfaCheck, MfaDevice, MfaStore, OwnerRef, Store,
    StoreRules, User,
};
use sts_broker::ids::{IamPath, UserName};
use sts_broker::mfa::lockout::LockoutPolicy;
use sts_broker::mfa::{Seed, TotpParams, code_at, verify};
use sts_broker::sigv4::{
    GrpcSignParams, IncomingRequest, NoExtraHeaders, Payload, parse, sign_grpc,
};
use sts_broker::store::sqlite::SqliteStore;

fn totp(c: &mut Criterion) {
    let mut group = c.benchmark_group("totp_verify");
    let seed = Seed::generate().expect("seed");
    let params = TotpParams::AWS;
    let centre = 58_000_000u64;
    // The code of the newest step in the window: the scan computes every candidate anyway
    // (constant time), so the position does not matter; the window size does.
    for window in [0u32, 1, 2, 4] {
        let code = code_at(&seed, &params, centre + u64::from(window));
        group.bench_with_input(BenchmarkId::new("window", window), &window, |b, &w| {
            b.iter(|| {
                verify(
                    black_box(&seed),
                    &params,
                    black_box(&code),
                    centre,
                    w,
                    Some(centre - 10),
                )
            })
        });
    }
    group.finish();
}

fn sigv4(c: &mut Criterion) {
    let mut group = c.benchmark_group("sigv4");
    let time = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time");
    let body = b"\x0a\x10some protobuf bytes of a typical request";
    let payload_sha256: [u8; 32] = Sha256::digest(body).into();
    let secret = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let token = "eyJhbGciOiJFZERTQSJ9.".to_string() + &"x".repeat(600) + ".sig";
    let path = "/sts.v1.SecurityTokenService/GetCallerIdentity";
    let host = "127.0.0.1:7443";
    let params = GrpcSignParams {
        access_key_id: "ASIAEXAMPLEEXAMPLE12",
        secret_access_key: secret,
        session_token: Some(&token),
        region: "us-east-1",
        service: "sts",
        host,
        path,
        payload: Payload::Sha256(payload_sha256),
        time,
    };
    let signed = sign_grpc(&params).expect("sign");
    let incoming = IncomingRequest {
        authorization: Some(&signed.authorization),
        x_amz_date: Some(&signed.x_amz_date),
        x_amz_security_token: signed.x_amz_security_token.as_deref(),
        other_headers: &NoExtraHeaders,
        host,
        path,
        payload_sha256,
        now: time.unix_timestamp(),
        region: "us-east-1",
        service: "sts",
    };
    parse(&incoming)
        .expect("parse")
        .verify(secret)
        .expect("verifies");
    let cached = parse(&incoming).expect("parse").derive_signing_key(secret);

    group.bench_function("sign_grpc", |b| b.iter(|| sign_grpc(black_box(&params))));
    group.bench_function("parse_only", |b| {
        b.iter(|| parse(black_box(&incoming)).map(|p| p.request_time()))
    });
    group.bench_function("parse_verify_derive_key", |b| {
        b.iter(|| parse(black_box(&incoming)).and_then(|p| p.verify(secret)))
    });
    group.bench_function("parse_verify_cached_key", |b| {
        b.iter(|| parse(black_box(&incoming)).and_then(|p| p.verify_with_key(&cached)))
    });
    group.finish();
}

fn tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_token");
    let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time");
    let master = MasterKey::from_bytes(&MasterKey::generate()[..]).expect("master key");
    let record = new_signing_key(&master, now).expect("signing key");
    let ring = KeyRing::from_records(&[record], &master, now).expect("ring");
    let t = now.unix_timestamp();
    let claims = SessionClaims {
        iss: "https://sts.example.invalid".into(),
        aud: "sts-broker".into(),
        sub: "arn:aws:iam::123456789012:user/alice".into(),
        iat: t,
        nbf: t,
        exp: t + 3600,
        jti: "0123456789abcdef0123456789abcdef".into(),
        akid: "ASIAEXAMPLEEXAMPLE12".into(),
        amr: Some(vec!["mfa".into()]),
        auth_time: Some(t),
        kind: SessionKind::Session,
        uid: "AIDAEXAMPLEEXAMPLE12".into(),
        role_id: None,
        src: None,
        chained: false,
        policy: None,
    };
    let validation = Validation {
        issuer: claims.iss.clone(),
        audience: claims.aud.clone(),
    };
    let token = ring.sign(&claims).expect("sign");
    assert_eq!(
        ring.verify(&token, &validation, t + 1).expect("verify"),
        claims
    );
    group.bench_function("sign", |b| b.iter(|| ring.sign(black_box(&claims))));
    // A token seen for the first time: the Ed25519 check and claim parsing. Each iteration gets
    // a token the ring has never verified (a new jti; signing is setup, not timed).
    let mut n = 0u64;
    group.bench_function("verify_first_use", |b| {
        b.iter_batched(
            || {
                n += 1;
                let fresh = SessionClaims {
                    jti: format!("{n:032x}"),
                    ..claims.clone()
                };
                ring.sign(&fresh).expect("sign")
            },
            |tok| ring.verify(black_box(&tok), &validation, t + 1),
            criterion::BatchSize::SmallInput,
        )
    });
    // The same token again (what every later call of a session does): the verified-token cache.
    group.bench_function("verify_seen_before", |b| {
        b.iter(|| ring.verify(black_box(&token), &validation, t + 1))
    });
    group.finish();
}

/// Adds an enabled virtual device owned by `owner`; returns its serial.
fn store_with_device(store: &SqliteStore, name: &str, owner: &OwnerRef) -> String {
    let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time");
    let serial = format!("arn:aws:iam::123456789012:mfa/{name}");
    store
        .insert_mfa_devices(&[MfaDevice {
            id: format!("{name}-device"),
            serial: serial.clone(),
            kind: DeviceKind::Virtual,
            seed_blob: vec![0u8; 64],
            params: TotpParams::AWS,
            owner: None,
            enabled_at: None,
            last_step: None,
            drift: 0,
            created: now,
        }])
        .expect("insert device");
    store
        .bind_mfa_device(&serial, owner, false, now, &mut |_| CodeVerdict::Accepted {
            step: 1,
            drift: Some(0),
        })
        .expect("bind");
    serial
}

/// A replay-guard check of `serial` whose code verifies at `step`: the store's part of an
/// accepted MFA code.
fn accepting_check(owner: OwnerRef, serial: &str, policy: LockoutPolicy, step: u64) -> MfaCheck {
    MfaCheck {
        owner,
        serial: serial.to_owned(),
        now: 1_780_000_000,
        policy,
        check: Box::new(move |_| CodeVerdict::Accepted { step, drift: None }),
        audit: None,
    }
}

fn store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_mfa_authenticate");
    let dir = tempfile::tempdir().expect("tempdir");
    let durable = SqliteStore::open(&dir.path().join("bench.sqlite")).expect("open");
    let memory = SqliteStore::open_in_memory().expect("open in memory");
    let policy = LockoutPolicy::default();
    for (name, s) in [("durable_wal_full", &durable), ("in_memory", &memory)] {
        let serial = store_with_device(s, "bench", &OwnerRef::Root);
        // Every iteration consumes a fresh, newer step: a real replay-guard write.
        let step = Cell::new(10u64);
        group.bench_function(name, |b| {
            b.iter(|| {
                let next = step.get() + 1;
                step.set(next);
                let mut check = accepting_check(OwnerRef::Root, &serial, policy, next);
                let r = s.mfa_authenticate(&mut check).expect("authenticate");
                assert!(matches!(r, MfaAttempt::Accepted { .. }));
            })
        });
    }
    // Group commit (what the broker's replay-guard writer does under load): 64 checks of 64
    // devices in one transaction and one fsync. Criterion reports the time per batch; divide by 64.
    // One user per device (a principal has at most 8 devices, as in AWS).
    let owners: Vec<OwnerRef> = (0..BATCH)
        .map(|i| {
            let user = User {
                id: format!("AIDABENCH{i:011}"),
                name: UserName::parse(&format!("batch-{i}")).expect("name"),
                path: IamPath::root(),
                created: OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("time"),
            };
            durable.create_user(&user).expect("user");
            OwnerRef::User(user.id)
        })
        .collect();
    let serials: Vec<(OwnerRef, String)> = owners
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let serial = store_with_device(&durable, &format!("batch-{i}"), &o);
            (o, serial)
        })
        .collect();
    let step = Cell::new(10u64);
    group.bench_function("durable_wal_full_batch_of_64", |b| {
        b.iter(|| {
            let next = step.get() + 1;
            step.set(next);
            let mut reqs: Vec<MfaCheck> = serials
                .iter()
                .map(|(owner, serial)| accepting_check(owner.clone(), serial, policy, next))
                .collect();
            let answers = durable.mfa_authenticate_batch(&mut reqs).expect("batch");
            assert!(
                answers
                    .iter()
                    .all(|a| matches!(a, Ok(MfaAttempt::Accepted { .. })))
            );
        })
    });
    group.finish();
}

const BATCH: usize = 64;

criterion_group! {
    name = benches;
    config = support::config();
    targets = totp, sigv4, tokens, store
}
criterion_main!(benches);
