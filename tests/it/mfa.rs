//! Issue 3: MFA devices — lifecycle, the verifier's window, replay guard, throttling and lockout,
//! restart persistence, and the foreign-device / reassignment / row-swap attacks an auditor
//! tries first: replay in sequence and in parallel, an older code after a newer one, the clock
//! stepping back. Time moves only by the manual clock.

use crate::helpers::*;
use std::sync::Arc;
use sts_broker::broker::actions::Rpc;
use sts_broker::broker::{Broker, Caller, Principal};
use sts_broker::client::{Client, Credentials};
use sts_broker::domain::{Outcome, User};
use sts_broker::ids::{AccessKeyId, IamPath, MfaSerial, TokenCode, UserName};
use sts_broker::proto::iam::v1 as iam;
use tonic::Code;
use zeroize::Zeroizing;

const IAM: &str = "/iam.v1.IamService/";

pub fn path(m: &str) -> String {
    format!("{IAM}{m}")
}

pub struct Person {
    pub name: String,
    pub caller: Caller,
    pub creds: Credentials,
}

/// Creates user `name` with a key; returns what tests need to act as it.
pub async fn person(app: &TestApp, name: &str) -> Person {
    let c = &app.client;
    let u = c
        .iam()
        .create_user(iam::CreateUserRequest {
            user_name: name.into(),
            path: None,
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let k = c
        .iam()
        .create_access_key(iam::CreateAccessKeyRequest {
            user_name: Some(name.into()),
        })
        .await
        .unwrap()
        .into_inner()
        .access_key
        .unwrap();
    let user = User {
        id: u.user_id.clone(),
        name: UserName::parse(name).unwrap(),
        path: IamPath::root(),
        created: time::OffsetDateTime::UNIX_EPOCH,
    };
    Person {
        name: name.into(),
        caller: Caller {
            principal: Principal::User(user),
            arn: u.arn.clone(),
            user_id: u.user_id.clone(),
            access_key_id: AccessKeyId::parse(&k.access_key_id).unwrap(),
            source: None,
            session: None,
        },
        creds: Credentials {
            access_key_id: k.access_key_id,
            secret_access_key: Zeroizing::new(k.secret_access_key),
            session_token: None,
        },
    }
}

/// `CreateVirtualMfaDevice` named `name` at path `/`.
pub async fn try_create_device(
    c: &Client,
    name: &str,
) -> Result<iam::VirtualMfaDevice, tonic::Status> {
    let req = iam::CreateVirtualMfaDeviceRequest {
        virtual_mfa_device_name: name.into(),
        path: None,
    };
    let r = c.iam().create_virtual_mfa_device(req).await?;
    Ok(r.into_inner().virtual_mfa_device.unwrap())
}

pub async fn create_device(c: &Client, name: &str) -> iam::VirtualMfaDevice {
    try_create_device(c, name).await.unwrap()
}

/// `EnableMfaDevice` and `ResyncMfaDevice` take the same four fields: one function each.
macro_rules! two_code_rpcs {
    ($($(#[$doc:meta])* $name:ident => $method:ident($req:ident);)*) => {$(
        $(#[$doc])*
        pub async fn $name(
            c: &Client,
            user: &str,
            serial: &str,
            code1: &str,
            code2: &str,
        ) -> Result<(), tonic::Status> {
            let req = iam::$req {
                user_name: user.into(),
                serial_number: serial.into(),
                authentication_code1: code1.into(),
                authentication_code2: code2.into(),
            };
            c.iam().$method(req).await.map(|_| ())
        }
    )*};
}

two_code_rpcs! {
    enable => enable_mfa_device(EnableMfaDeviceRequest);
    resync => resync_mfa_device(ResyncMfaDeviceRequest);
}

/// Enables `serial` for `user` as root, with the codes of the step before the clock's and the
/// clock's own.
pub async fn enable_now(
    app: &TestApp,
    user: &str,
    serial: &str,
    seed: &str,
) -> Result<(), tonic::Status> {
    let s = now_step(app);
    let (c1, c2) = (totp_at_step(seed, s - 1), totp_at_step(seed, s));
    enable(&app.client, user, serial, &c1, &c2).await
}

pub async fn deactivate(c: &Client, user: &str, serial: &str) -> Result<(), tonic::Status> {
    let req = iam::DeactivateMfaDeviceRequest {
        user_name: Some(user.into()),
        serial_number: serial.into(),
    };
    c.iam().deactivate_mfa_device(req).await.map(|_| ())
}

pub async fn list_devices(c: &Client, user: Option<&str>) -> Vec<iam::MfaDevice> {
    let req = iam::ListMfaDevicesRequest {
        user_name: user.map(str::to_owned),
        marker: None,
        max_items: None,
    };
    let r = c.iam().list_mfa_devices(req).await.unwrap();
    r.into_inner().mfa_devices
}

/// The step the clock is in now.
pub fn now_step(app: &TestApp) -> i64 {
    step_of(app.clock.now_unix())
}

pub trait NowUnix {
    fn now_unix(&self) -> i64;
}

impl NowUnix for sts_broker::clock::ManualClock {
    fn now_unix(&self) -> i64 {
        sts_broker::clock::Clock::unix(self)
    }
}

/// Creates a device, enables it for `who` with the codes of the previous and current step, and
/// advances the clock one step so the next code is fresh. Returns (serial, seed).
pub async fn enrolled(app: &TestApp, who: &Person, device: &str) -> (String, String) {
    let d = create_device(&app.client, device).await;
    enable_now(app, &who.name, &d.serial_number, &d.base32_string_seed)
        .await
        .unwrap();
    app.clock.advance(30);
    (d.serial_number, d.base32_string_seed)
}

/// A broker with user alice enrolled on device `a-phone`: the app, its broker, alice, and the
/// device's serial and seed.
async fn alice_with_a_phone() -> (TestApp, Arc<Broker>, Person, String, String) {
    let app = spawn_app().await;
    let b = app.broker().clone();
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    (app, b, alice, serial, seed)
}

/// A broker with users alice and bob: the app, its broker, alice and bob.
async fn alice_and_bob() -> (TestApp, Arc<Broker>, Person, Person) {
    let app = spawn_app().await;
    let b = app.broker().clone();
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    (app, b, alice, bob)
}

/// The verifier's answer for a serial and a well-formed code.
async fn verify_typed(
    b: &Broker,
    caller: &Caller,
    serial: &str,
    code: &str,
) -> Result<sts_broker::broker::MfaProof, sts_broker::error::BrokerError> {
    let serial = MfaSerial::parse(serial).unwrap();
    let code = TokenCode::parse("tokenCode", code).unwrap();
    b.verify_mfa(caller, &serial, &code, Rpc::GetSessionToken)
        .await
}

async fn verify(b: &Broker, who: &Person, serial: &str, code: &str) -> bool {
    match verify_typed(b, &who.caller, serial, code).await {
        Ok(proof) => {
            assert_eq!(proof.serial, serial);
            true
        }
        Err(e) => {
            // Every refusal looks the same to the caller.
            assert_eq!(e.code.as_str(), "AccessDenied");
            assert_eq!(
                e.message,
                "MultiFactorAuthentication failed with invalid MFA one time pass code."
            );
            false
        }
    }
}

async fn last_refusal(b: &Broker) -> String {
    b.flush_audit().await;
    b.recent_audit(50)
        .await
        .unwrap()
        .into_iter()
        .find(|e| {
            e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("mfa refused"))
        })
        .and_then(|e| e.detail)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_virtual_device_is_created_enabled_and_listed() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let d = create_device(&app.client, "alice-phone").await;
    let account = &alice.caller.arn[13..25];
    assert_eq!(
        d.serial_number,
        format!("arn:aws:iam::{account}:mfa/alice-phone")
    );
    assert_eq!(
        d.base32_string_seed.len(),
        32,
        "160-bit seed, base32 without padding"
    );
    assert!(d.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(
        d.otpauth_uri
            .contains(&format!("secret={}", d.base32_string_seed))
    );
    assert!(d.otpauth_uri.contains("issuer=sts-broker"));

    // The PNG is a real QR code of the URI.
    let img = rqrr_image::decode(&d.qr_code_png);
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(img.w, img.h, |x, y| img.px[y * img.w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, d.otpauth_uri);

    let s = now_step(&app);
    let (c1, c2) = (
        totp_at_step(&d.base32_string_seed, s - 1),
        totp_at_step(&d.base32_string_seed, s),
    );
    enable(&app.client, "alice", &d.serial_number, &c1, &c2)
        .await
        .unwrap();
    let listed = list_devices(&app.client, Some("alice")).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].serial_number, d.serial_number);
    assert_eq!(listed[0].user_name, "alice");
    assert!(listed[0].enable_date.is_some());
    // Alice may list her own devices once a policy lets her.
    put_user_policy(&app.client, "alice", "self", SELF_MANAGE_POLICY).await;
    assert_eq!(list_devices(&app.as_(&alice.creds), None).await.len(), 1);

    // The same two codes again: refused even after the device is freed, because those steps are used.
    deactivate(&app.client, "alice", &d.serial_number)
        .await
        .unwrap();
    let st = enable(&app.client, "alice", &d.serial_number, &c1, &c2).await;
    assert_error(st, Code::InvalidArgument, "InvalidAuthenticationCode");
    assert!(list_devices(&app.client, Some("alice")).await.is_empty());
}

/// Minimal PNG → grayscale for the QR decoder (the broker writes 8-bit or 1-bit grayscale).
mod rqrr_image {
    pub struct Gray {
        pub w: usize,
        pub h: usize,
        pub px: Vec<u8>,
    }

    pub fn decode(bytes: &[u8]) -> Gray {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let channels = info.color_type.samples();
        let px = (0..w * h).map(|i| buf[i * channels]).collect();
        Gray { w, h, px }
    }
}

#[tokio::test]
async fn the_window_is_one_step_either_side() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    // Move past the steps the enable codes consumed.
    app.clock.advance(60);
    let t = now_step(&app);
    // T-2 and T+2 are outside the window.
    assert!(!verify(&b, &alice, &serial, &totp_at_step(&seed, t - 2)).await);
    assert!(!verify(&b, &alice, &serial, &totp_at_step(&seed, t + 2)).await);
    // T-1, T, T+1 are each accepted, in increasing order (each newer than the last).
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, t - 1)).await);
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, t)).await);
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, t + 1)).await);
}

#[tokio::test]
async fn a_code_is_accepted_once_and_older_codes_after_newer_are_refused() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    let t = now_step(&app);
    let code = totp_at_step(&seed, t);
    assert!(verify(&b, &alice, &serial, &code).await);
    assert!(
        !verify(&b, &alice, &serial, &code).await,
        "T-01: replay refused"
    );
    assert_eq!(last_refusal(&b).await, "mfa refused: otp_replay");
    assert!(
        !verify(&b, &alice, &serial, &totp_at_step(&seed, t - 1)).await,
        "T-02: older after newer"
    );
    // T-12: the server clock steps back 90 s; the used step is still used.
    app.clock.advance(-90);
    assert!(!verify(&b, &alice, &serial, &code).await);
    app.clock.advance(90 + 30);
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, t + 1)).await);
}

#[tokio::test]
async fn fifty_concurrent_uses_of_one_code_give_exactly_one_success() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    let alice = Arc::new(alice);
    let code = totp_at_step(&seed, now_step(&app));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (b, alice, serial, code) = (b.clone(), alice.clone(), serial.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            verify_typed(&b, &alice.caller, &serial, &code)
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "exactly one of 50 concurrent attempts succeeds");
}

#[tokio::test]
async fn drift_is_refused_until_resync_recentres_the_device() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    let t = now_step(&app);
    // The device's clock runs 5 steps (2.5 minutes) fast.
    assert!(!verify(&b, &alice, &serial, &totp_at_step(&seed, t + 5)).await);
    // Resync with two consecutive codes from the fast device.
    let st = resync(
        &app.client,
        "alice",
        &serial,
        &totp_at_step(&seed, t + 5),
        &totp_at_step(&seed, t + 7),
    )
    .await;
    assert_error(st, Code::InvalidArgument, "InvalidAuthenticationCode");
    resync(
        &app.client,
        "alice",
        &serial,
        &totp_at_step(&seed, t + 5),
        &totp_at_step(&seed, t + 6),
    )
    .await
    .unwrap();
    // Recorded drift +6: one step later the device shows t+7, which is now accepted.
    app.clock.advance(30);
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, t + 7)).await);
    // A resync beyond the bounded search window (±10 steps) is refused.
    let far = now_step(&app) + 30;
    let st = resync(
        &app.client,
        "alice",
        &serial,
        &totp_at_step(&seed, far),
        &totp_at_step(&seed, far + 1),
    )
    .await;
    assert_error(st, Code::InvalidArgument, "InvalidAuthenticationCode");
}

#[tokio::test]
async fn throttling_locks_at_one_hundred_failures_until_an_admin_resets() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    let (s2, seed2) = enrolled(&app, &alice, "a-tablet").await;
    let wrong = |seed: &str, step: i64| {
        let right = totp_at_step(seed, step);
        if right == "000000" {
            "000001".to_owned()
        } else {
            "000000".to_owned()
        }
    };

    // The first five failures cost nothing; the sixth attempt right away is not even checked.
    for _ in 0..5 {
        assert!(!verify(&b, &alice, &serial, &wrong(&seed, now_step(&app))).await);
    }
    let good = totp_at_step(&seed, now_step(&app));
    assert!(
        !verify(&b, &alice, &serial, &good).await,
        "throttled even with the right code"
    );
    assert_eq!(last_refusal(&b).await, "mfa refused: mfa_throttled");
    app.clock.advance(1);
    assert!(
        verify(&b, &alice, &serial, &good).await,
        "after the delay the right code works"
    );

    // Failures are counted per user across devices (T-07), and persist across a restart.
    let mut n = 0;
    while n < 60 {
        let (s, sd) = if n % 2 == 0 {
            (&serial, &seed)
        } else {
            (&s2, &seed2)
        };
        assert!(!verify(&b, &alice, s, &wrong(sd, now_step(&app))).await);
        n += 1;
        app.clock.advance(301);
    }
    let app = app.restart().await;
    let b = app.broker().clone();
    while n < 100 {
        assert!(!verify(&b, &alice, &serial, &wrong(&seed, now_step(&app))).await);
        n += 1;
        app.clock.advance(301);
    }
    // Locked: the right code, on either device, is refused — and says nothing different.
    assert!(!verify(&b, &alice, &serial, &totp_at_step(&seed, now_step(&app))).await);
    assert!(!verify(&b, &alice, &s2, &totp_at_step(&seed2, now_step(&app))).await);
    assert_eq!(last_refusal(&b).await, "mfa refused: mfa_locked");
    app.clock.advance(86_400);
    assert!(
        !verify(&b, &alice, &serial, &totp_at_step(&seed, now_step(&app))).await,
        "time does not unlock"
    );

    // Only an administrator does.
    let as_alice = app.as_(&alice.creds);
    let reset = |c: &Client| {
        let req = iam::ResetMfaLockoutRequest {
            user_name: Some("alice".into()),
        };
        let mut svc = c.iam();
        async move { svc.reset_mfa_lockout(req).await }
    };
    assert_error(
        reset(&as_alice).await,
        Code::PermissionDenied,
        "AccessDenied",
    );
    reset(&app.client).await.unwrap();
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, now_step(&app))).await);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let (app, b, alice, serial, seed) = alice_with_a_phone().await;
    let wrong = "999999";
    for round in 0..2 {
        for _ in 0..99 {
            if totp_at_step(&seed, now_step(&app)) != wrong {
                assert!(!verify(&b, &alice, &serial, wrong).await);
            }
            app.clock.advance(301);
        }
        if round == 0 {
            assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, now_step(&app))).await);
            app.clock.advance(30);
        }
    }
    // 99 + success + 99 failures: not locked (T-10).
    assert!(verify(&b, &alice, &serial, &totp_at_step(&seed, now_step(&app))).await);
}

#[tokio::test]
async fn the_replay_guard_survives_a_restart() {
    let (app, _, alice, serial, seed) = alice_with_a_phone().await;
    let code = totp_at_step(&seed, now_step(&app));
    assert!(verify(app.broker(), &alice, &serial, &code).await);
    let app = app.restart().await;
    assert!(
        !verify(app.broker(), &alice, &serial, &code).await,
        "T-03: replay after restart refused"
    );
}

#[tokio::test]
async fn another_users_device_never_works_and_is_left_untouched() {
    let (app, b, alice, bob) = alice_and_bob().await;
    let (a_serial, _) = enrolled(&app, &alice, "a-phone").await;
    let (b_serial, b_seed) = enrolled(&app, &bob, "b-phone").await;
    let _ = a_serial;
    let code = totp_at_step(&b_seed, now_step(&app));
    // T-15: alice presents bob's serial and bob's valid code.
    assert!(!verify(&b, &alice, &b_serial, &code).await);
    assert_eq!(last_refusal(&b).await, "mfa refused: foreign_device");
    // Bob's device was not consumed: the same code still works for him, once.
    assert!(verify(&b, &bob, &b_serial, &code).await);
    // An unknown serial gets the same answer.
    let unknown = format!("{}-nope", b_serial);
    assert!(!verify(&b, &alice, &unknown, &code).await);
    assert_eq!(last_refusal(&b).await, "mfa refused: unknown_device");
}

#[tokio::test]
async fn a_reassigned_device_keeps_its_used_steps_and_leaves_its_old_owner() {
    let (app, b, alice, bob) = alice_and_bob().await;
    let (serial, seed) = enrolled(&app, &alice, "shared-token").await;
    let t = now_step(&app);
    let used_by_alice = totp_at_step(&seed, t);
    assert!(verify(&b, &alice, &serial, &used_by_alice).await);
    // T-18: deactivated, its valid codes stop working at once.
    deactivate(&app.client, "alice", &serial).await.unwrap();
    assert!(!verify(&b, &alice, &serial, &totp_at_step(&seed, t + 1)).await);
    // T-16: given to bob; enabling needs fresh codes, and alice's used step is never accepted for bob.
    let st = enable(
        &app.client,
        "bob",
        &serial,
        &totp_at_step(&seed, t - 1),
        &used_by_alice,
    )
    .await;
    assert_error(st, Code::InvalidArgument, "InvalidAuthenticationCode");
    app.clock.advance(60);
    let t2 = now_step(&app);
    enable_now(&app, "bob", &serial, &seed).await.unwrap();
    assert!(!verify(&b, &bob, &serial, &used_by_alice).await);
    assert!(
        !verify(&b, &alice, &serial, &totp_at_step(&seed, t2 + 1)).await,
        "alice no longer owns it"
    );
    assert!(verify(&b, &bob, &serial, &totp_at_step(&seed, t2 + 1)).await);
}

#[tokio::test]
async fn a_seed_copied_into_another_devices_row_does_not_decrypt() {
    let (app, b, alice, bob) = alice_and_bob().await;
    let (a_serial, _) = enrolled(&app, &alice, "a-phone").await;
    let (b_serial, b_seed) = enrolled(&app, &bob, "b-phone").await;
    // T-17: an attacker with write access to the database copies bob's seed into alice's row.
    {
        let db = rusqlite::Connection::open(app.data_dir().join("broker.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let n = db
            .execute(
                "UPDATE mfa_devices SET seed_blob = (SELECT seed_blob FROM mfa_devices WHERE serial = ?1)
                 WHERE serial = ?2",
                [&b_serial, &a_serial],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    let code = totp_at_step(&b_seed, now_step(&app));
    assert!(
        !verify(&b, &alice, &a_serial, &code).await,
        "bob's seed does not work in alice's row"
    );
    assert_eq!(last_refusal(&b).await, "mfa refused: seed_undecryptable");
}

#[tokio::test]
async fn device_limits_deletion_and_listing_follow_aws() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let mut serials = Vec::new();
    for i in 0..8 {
        serials.push(enrolled(&app, &alice, &format!("dev{i}")).await.0);
    }
    let ninth = create_device(&app.client, "dev8").await;
    let st = enable_now(
        &app,
        "alice",
        &ninth.serial_number,
        &ninth.base32_string_seed,
    )
    .await;
    assert_error(st, Code::ResourceExhausted, "LimitExceeded");
    // A device belongs to at most one user.
    let bob = person(&app, "bob").await;
    let _ = bob;
    let st = enable(&app.client, "bob", &serials[0], "123456", "654321").await;
    assert_error(st, Code::AlreadyExists, "EntityAlreadyExists");
    // Same name again.
    let st = try_create_device(&app.client, "dev0").await;
    assert_error(st, Code::AlreadyExists, "EntityAlreadyExists");

    let delete = |serial: &str| {
        let req = iam::DeleteVirtualMfaDeviceRequest {
            serial_number: serial.into(),
        };
        let mut svc = app.client.iam();
        async move { svc.delete_virtual_mfa_device(req).await }
    };
    let st = delete(&serials[0]).await;
    assert_error(st, Code::FailedPrecondition, "DeleteConflict");

    let list_virtual = |status: &str| {
        let req = iam::ListVirtualMfaDevicesRequest {
            assignment_status: Some(status.to_owned()),
            marker: None,
            max_items: None,
        };
        let mut svc = app.client.iam();
        async move {
            let r = svc.list_virtual_mfa_devices(req).await;
            r.map(|r| r.into_inner().virtual_mfa_devices)
        }
    };
    let assigned = list_virtual("Assigned").await.unwrap();
    assert_eq!(assigned.len(), 8);
    assert!(
        assigned
            .iter()
            .all(|d| d.user.as_ref().unwrap().user_name == "alice"
                && d.base32_string_seed.is_empty()
                && d.qr_code_png.is_empty())
    );
    assert_eq!(list_virtual("Unassigned").await.unwrap().len(), 1);
    assert_eq!(list_virtual("Any").await.unwrap().len(), 9);
    assert_error(
        list_virtual("Some").await,
        Code::InvalidArgument,
        "ValidationError",
    );

    deactivate(&app.client, "alice", &serials[0]).await.unwrap();
    delete(&serials[0]).await.unwrap();
    let st = delete(&serials[0]).await;
    assert_error(st, Code::NotFound, "NoSuchEntity");

    // A user with devices cannot be deleted.
    let req = iam::DeleteUserRequest {
        user_name: "alice".into(),
    };
    let st = app.client.iam().delete_user(req).await;
    assert_error(st, Code::FailedPrecondition, "DeleteConflict");
}

#[tokio::test]
async fn malformed_codes_are_validation_errors_and_change_nothing() {
    let app = spawn_app().await;
    person(&app, "alice").await;
    let d = create_device(&app.client, "a-phone").await;
    for bad in [
        "12345",
        "1234567",
        " 123456",
        "+12345",
        "１２３４５６",
        "٠١٢٣٤٥",
        "12345a",
        "",
    ] {
        let st = enable(&app.client, "alice", &d.serial_number, bad, "123456").await;
        let s = assert_error(st, Code::InvalidArgument, "ValidationError");
        assert_message_has(&s, "authenticationCode1");
        if !bad.is_empty() {
            assert!(
                !s.message().contains(bad.trim()),
                "the code is never echoed"
            );
        }
        // The verifier takes only a parsed code; the parser refuses the same shapes.
        let e = TokenCode::parse("tokenCode", bad).unwrap_err();
        assert_eq!(e.field, "tokenCode");
    }
    assert!(list_devices(&app.client, Some("alice")).await.is_empty());
    // Leading zeros are kept (a code such as 081804 is six characters, not a number).
    assert_eq!(totp_at_step("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 1).len(), 6);
}

#[tokio::test]
async fn hardware_tokens_are_imported_all_or_nothing() {
    let app = spawn_app().await;
    let b = app.broker().clone();
    let alice = person(&app, "alice").await;
    let import = |file: &str| {
        let req = iam::ImportHardwareMfaDevicesRequest {
            seed_file: file.into(),
        };
        let mut svc = app.client.iam();
        async move { svc.import_hardware_mfa_devices(req).await }
    };
    let bad = "GAHT12345678,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,6,30,SHA1\nshort,JBSWY3DPEHPK3PXP,6,30,SHA1\nGAHT87654321,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,7,30,SHA1\n";
    let st = import(bad).await;
    let s = assert_error(st, Code::InvalidArgument, "InvalidInput");
    assert!(
        s.message().contains("line 2") && s.message().contains("line 3"),
        "{}",
        s.message()
    );
    assert!(!s.message().contains("JBSWY3DP"), "seeds are never echoed");
    let st = enable(&app.client, "alice", "GAHT12345678", "123456", "654321").await;
    assert_error(st, Code::NotFound, "NoSuchEntity");

    let seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let good = format!("# vendor batch 7\nGAHT12345678,{seed},6,30,SHA1\n");
    let r = import(&good).await.unwrap().into_inner();
    assert_eq!(r.serial_numbers, ["GAHT12345678"]);
    let st = import(&good).await;
    assert_error(st, Code::AlreadyExists, "EntityAlreadyExists");

    enable_now(&app, "alice", "GAHT12345678", seed)
        .await
        .unwrap();
    app.clock.advance(30);
    assert!(
        verify(
            &b,
            &alice,
            "GAHT12345678",
            &totp_at_step(seed, now_step(&app))
        )
        .await
    );
}

#[tokio::test]
async fn seeds_never_appear_again_in_responses_audit_or_database() {
    let (app, _, alice, serial, seed) = alice_with_a_phone().await;
    let code = totp_at_step(&seed, now_step(&app));
    assert!(verify(app.broker(), &alice, &serial, &code).await);
    let req = iam::GetMfaDeviceRequest {
        serial_number: serial.clone(),
        user_name: Some("alice".into()),
    };
    let d = app.client.iam().get_mfa_device(req).await.unwrap();
    assert_eq!(d.into_inner().user_name, "alice");
    let audit = format!("{:?}", app.audit().await);
    assert!(!audit.contains(&seed) && !audit.contains(&code));
    let raw = data_encoding::BASE32_NOPAD.decode(seed.as_bytes()).unwrap();
    let mut on_disk = Vec::new();
    for f in ["broker.db", "broker.db-wal"] {
        if let Ok(b) = std::fs::read(app.data_dir().join(f)) {
            on_disk.extend(b);
        }
    }
    assert!(
        !on_disk.windows(raw.len()).any(|w| w == raw.as_slice()),
        "raw seed on disk"
    );
    assert!(
        !on_disk.windows(seed.len()).any(|w| w == seed.as_bytes()),
        "base32 seed on disk"
    );
    let events = app.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == "iam:EnableMFADevice" && e.outcome == Outcome::Success)
    );
}

#[tokio::test]
async fn status_reports_show_mfa() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    person(&app, "bob").await;
    enrolled(&app, &alice, "a-phone").await;
    create_device(&app.client, "spare").await;
    let c = &app.client;
    let m = c
        .iam()
        .get_account_summary(iam::GetAccountSummaryRequest {})
        .await
        .unwrap()
        .into_inner()
        .summary_map;
    assert_eq!(m["Users"], 2);
    assert_eq!(m["MFADevices"], 2);
    assert_eq!(m["MFADevicesInUse"], 1);
    assert_eq!(m["AccountMFAEnabled"], 0);

    let report = || {
        let mut svc = c.iam();
        async move {
            let req = iam::GetCredentialReportRequest {};
            svc.get_credential_report(req).await
        }
    };
    assert_error(report().await, Code::FailedPrecondition, "ReportNotPresent");
    let g = c
        .iam()
        .generate_credential_report(iam::GenerateCredentialReportRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(g.state, "COMPLETE");
    let r = report().await.unwrap().into_inner();
    assert_eq!(r.report_format, "text/csv");
    let csv = String::from_utf8(r.content).unwrap();
    let mut lines = csv.lines();
    let header: Vec<_> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.len(), 22);
    assert_eq!(header[7], "mfa_active");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], "<root_account>");
    let alice_row = rows.iter().find(|r| r[0] == "alice").unwrap();
    let bob_row = rows.iter().find(|r| r[0] == "bob").unwrap();
    assert_eq!(alice_row[7], "true");
    assert_eq!(bob_row[7], "false");
    assert_eq!(alice_row[8], "true", "access_key_1_active");
}

#[tokio::test]
async fn root_enables_its_own_device_and_recover_root_removes_it_offline() {
    let mut app = spawn_app().await;
    let d = create_device(&app.client, "root-phone").await;
    enable_now(&app, "", &d.serial_number, &d.base32_string_seed)
        .await
        .unwrap();
    assert_eq!(list_devices(&app.client, None).await.len(), 1);
    let old_root = app.root.clone();
    app.running.take().unwrap().shutdown().await.unwrap();

    let data = app.data_dir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sts-broker"))
        .args(["recover-root", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&d.serial_number), "{stdout}");
    let new_root = read_credentials_file(&data.join("root-credentials"));
    assert_ne!(new_root.access_key_id, old_root.access_key_id);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(new_root.secret_access_key.as_str()));

    let app = start_on(app.dir, app.clock).await;
    let c = app.as_(&new_root);
    assert!(
        list_devices(&c, None).await.is_empty(),
        "root's devices are deactivated"
    );
    app.audit_event("sts-broker:RecoverRoot").await;
}
