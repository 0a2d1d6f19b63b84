//! The `sts-broker iam …` command line, run as a process against a real broker.
//!
//! The binary signs with the wall clock, so these brokers' manual clocks start at the wall
//! clock's now (SigV4 allows five minutes of skew) and stay there: TOTP codes are computed from
//! the manual clock's step.

use crate::helpers::*;
use base64::Engine;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use sts_broker::clock::Clock;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }

    /// Exit 254 and the error line aws prints for `code` from `operation`.
    #[track_caller]
    fn aws_error(&self, code: &str, operation: &str) {
        assert_eq!(self.code, 254, "{}", self.stderr);
        let want = format!("An error occurred ({code}) when calling the {operation} operation");
        assert!(self.stderr.starts_with(&want), "{}", self.stderr);
    }

    /// Exit `code` with `needle` in what was printed on stderr.
    #[track_caller]
    fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stderr.contains(needle), "{}", self.stderr);
    }

    /// Exit 0 and nothing on stdout, as aws prints a call whose answer has no fields.
    #[track_caller]
    fn silent(self) {
        assert_eq!(self.ok().stdout, "");
    }

    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }
}

async fn cli_app() -> TestApp {
    spawn_app_at(time::OffsetDateTime::now_utc().unix_timestamp()).await
}

/// `sts-broker ARGS` against `app` with the credentials in `creds_file`, and nothing from the
/// environment.
fn command(app: &TestApp, creds_file: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sts-broker"));
    cmd.args(args)
        .arg("--endpoint")
        .arg(&app.endpoint)
        .arg("--credentials-file")
        .arg(creds_file)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env("STS_BROKER_LOG", "warn");
    cmd
}

/// Runs `sts-broker iam ARGS` as the root user against `app`.
async fn iam(app: &TestApp, args: &[&str]) -> Out {
    let args = [&["iam"][..], args].concat();
    finish(command(
        app,
        &app.data_dir().join("root-credentials"),
        &args,
    ))
    .await
}

/// Runs `cmd` to its end. A process still running after a minute is waiting for something it
/// should not (a prompt, a hung connection): the test fails saying so, and the child is killed.
async fn finish(mut cmd: tokio::process::Command) -> Out {
    let what = format!("{cmd:?}");
    let run = cmd.kill_on_drop(true).output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{what} did not exit by itself within a minute"))
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn is_base32(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// An RFC 3339 timestamp written with the UTC offset `zone`, as Unix seconds.
#[track_caller]
fn timestamp_in(v: &Value, zone: &str) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    assert!(s.ends_with(zone), "{s}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// A timestamp as aws prints it, e.g. `2026-11-27T23:28:33+00:00`.
#[track_caller]
fn aws_time(v: &Value) -> i64 {
    timestamp_in(v, "+00:00")
}

/// `create-virtual-mfa-device NAME`, its blob of `method` written to `outfile`, with `extra`
/// arguments.
async fn create_device(
    app: &TestApp,
    name: &str,
    outfile: &Path,
    method: &str,
    extra: &[&str],
) -> Out {
    let outfile = outfile.to_str().unwrap();
    let args = [
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            name,
        ][..],
        &["--outfile", outfile, "--bootstrap-method", method],
        extra,
    ];
    iam(app, &args.concat()).await
}

/// The codes of steps `step - 1` and `step`: the pair enable-mfa-device takes.
fn codes_ending_at(seed: &str, step: i64) -> (String, String) {
    (totp_at_step(seed, step - 1), totp_at_step(seed, step))
}

/// `enable-mfa-device` for USER's device SERIAL; `codes` are the two code arguments (aws takes
/// `--authentication-code1` and `--authentication-code-1` alike).
async fn enable_device(app: &TestApp, user: &str, serial: &str, codes: &[&str]) -> Out {
    let args = [
        "enable-mfa-device",
        "--user-name",
        user,
        "--serial-number",
        serial,
    ];
    iam(app, &[&args[..], codes].concat()).await
}

/// `list-virtual-mfa-devices --assignment-status STATUS`.
async fn virtual_devices(app: &TestApp, status: &str) -> Out {
    let args = ["list-virtual-mfa-devices", "--assignment-status", status];
    iam(app, &args).await
}

/// `import-hardware-mfa-devices --seed-file FILE`.
async fn import_seeds(app: &TestApp, file: &str) -> Out {
    iam(app, &["import-hardware-mfa-devices", "--seed-file", file]).await
}

/// `get-user-policy` for USER's inline policy NAME.
async fn user_policy(app: &TestApp, user: &str, name: &str) -> Out {
    let args = [
        "get-user-policy",
        "--user-name",
        user,
        "--policy-name",
        name,
    ];
    iam(app, &args).await
}

/// Creates a virtual device, its seed written to DIR/NAME.seed; returns (serial, seed).
async fn device_with_seed(app: &TestApp, dir: &Path, name: &str) -> (String, String) {
    let f = dir.join(format!("{name}.seed"));
    let v = create_device(app, name, &f, "Base32StringSeed", &[])
        .await
        .json();
    let serial = v["VirtualMFADevice"]["SerialNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    (serial, std::fs::read_to_string(f).unwrap())
}

#[tokio::test]
async fn create_virtual_mfa_device_writes_the_chosen_secret_to_a_private_outfile() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    let account = app.broker().account().to_string();

    let png = dir.path().join("qr.png");
    let out = create_device(&app, "phone", &png, "QRCodePNG", &[]).await;
    assert_eq!(
        out.json(),
        json!({ "VirtualMFADevice": {
            "SerialNumber": format!("arn:aws:iam::{account}:mfa/phone")
        }}),
        "the chosen blob is stripped from the output, the other is not printed"
    );
    assert_eq!(mode(&png), 0o600);
    assert!(std::fs::read(&png).unwrap().starts_with(PNG_SIGNATURE));

    let seed_file = dir.path().join("seed.txt");
    let out = create_device(
        &app,
        "tablet",
        &seed_file,
        "Base32StringSeed",
        &["--path", "/team/"],
    )
    .await;
    assert_eq!(
        out.json(),
        json!({ "VirtualMFADevice": {
            "SerialNumber": format!("arn:aws:iam::{account}:mfa/team/tablet")
        }})
    );
    assert_eq!(mode(&seed_file), 0o600);
    let seed = std::fs::read_to_string(&seed_file).unwrap();
    assert_eq!(seed.len(), 32, "a 160-bit seed in base32, nothing else");
    assert!(is_base32(&seed));
    assert!(!out.stderr.contains(&seed));

    // An existing file is never overwritten, and no device is created for the refused call.
    let out = create_device(&app, "laptop", &seed_file, "Base32StringSeed", &[]).await;
    assert_eq!(out.code, 255, "stderr: {}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("refusing to overwrite"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("seed.txt"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&seed_file).unwrap(), seed);
    let listed = iam(&app, &["list-virtual-mfa-devices"]).await.json();
    let serials: Vec<&str> = listed["VirtualMFADevices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["SerialNumber"].as_str().unwrap())
        .collect();
    assert_eq!(serials.len(), 2, "{listed}");
    assert!(serials.iter().all(|s| !s.ends_with("laptop")), "{listed}");
    assert_eq!(
        listed["VirtualMFADevices"][0].as_object().unwrap().len(),
        1,
        "unassigned devices have no User or EnableDate: {listed}"
    );

    // A failed call removes the file it claimed.
    let again = dir.path().join("again.png");
    let out = create_device(&app, "phone", &again, "QRCodePNG", &[]).await;
    out.aws_error("EntityAlreadyExists", "CreateVirtualMFADevice");
    assert!(!again.exists());
}

#[tokio::test]
async fn without_an_outfile_everything_is_printed_and_show_qr_draws_on_stderr() {
    let app = cli_app().await;
    let out = iam(
        &app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "phone",
            "--show-qr",
        ],
    )
    .await;
    let v = out.json();
    let d = v["VirtualMFADevice"].as_object().unwrap();
    assert_eq!(d.len(), 3, "{v}");
    assert!(d["SerialNumber"].as_str().unwrap().ends_with(":mfa/phone"));
    let seed = d["Base32StringSeed"].as_str().unwrap();
    assert_eq!(seed.len(), 32);
    assert!(is_base32(seed));
    let png = base64::engine::general_purpose::STANDARD
        .decode(d["QRCodePNG"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(PNG_SIGNATURE));
    assert!(
        out.stderr.contains('\u{2588}') && out.stderr.lines().count() > 10,
        "a QR code drawn with block characters: {}",
        out.stderr
    );
    assert!(!out.stderr.contains(seed), "the seed is only inside the QR");
    assert!(!out.stderr.contains("otpauth"));
    assert!(!out.stdout.contains("otpauth"));
}

#[tokio::test]
async fn a_device_enabled_with_computed_codes_is_listed_as_aws_prints_it() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    let user = iam(&app, &["create-user", "--user-name", "alice"])
        .await
        .json();
    assert_eq!(user["User"]["UserName"], "alice");
    assert_eq!(aws_time(&user["User"]["CreateDate"]), app.clock.unix());

    let (serial, seed) = device_with_seed(&app, dir.path(), "alice-phone").await;
    let (c1, c2) = codes_ending_at(&seed, step_of(app.clock.unix()));
    let out = enable_device(
        &app,
        "alice",
        &serial,
        &[
            "--authentication-code1",
            &c1,
            "--authentication-code-2",
            &c2,
        ],
    )
    .await
    .ok();
    assert_eq!(
        out.stdout, "",
        "an empty output prints nothing, as aws does"
    );

    let listed = iam(&app, &["list-mfa-devices", "--user-name", "alice"])
        .await
        .json();
    let devices = listed["MFADevices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{listed}");
    let d = devices[0].as_object().unwrap();
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["EnableDate", "SerialNumber", "UserName"]);
    assert_eq!(d["UserName"], "alice");
    assert_eq!(d["SerialNumber"], serial.as_str());
    assert_eq!(aws_time(&d["EnableDate"]), app.clock.unix());

    let assigned = virtual_devices(&app, "Assigned").await.json();
    let v = &assigned["VirtualMFADevices"][0];
    assert_eq!(v["SerialNumber"], serial.as_str());
    assert_eq!(v["User"]["UserName"], "alice");
    assert_eq!(aws_time(&v["EnableDate"]), app.clock.unix());
    let unassigned = virtual_devices(&app, "Unassigned").await.json();
    assert_eq!(unassigned, json!({ "VirtualMFADevices": [] }));

    let got = iam(
        &app,
        &[
            "get-mfa-device",
            "--serial-number",
            &serial,
            "--user-name",
            "alice",
        ],
    )
    .await
    .json();
    assert_eq!(got["UserName"], "alice");
    assert_eq!(got["SerialNumber"], serial.as_str());

    iam(&app, &["reset-mfa-lockout", "--user-name", "alice"])
        .await
        .silent();
    iam(
        &app,
        &[
            "deactivate-mfa-device",
            "--user-name",
            "alice",
            "--serial-number",
            &serial,
        ],
    )
    .await
    .silent();
    iam(
        &app,
        &["delete-virtual-mfa-device", "--serial-number", &serial],
    )
    .await
    .silent();
    assert_eq!(
        iam(&app, &["list-mfa-devices", "--user-name", "alice"])
            .await
            .json(),
        json!({ "MFADevices": [] })
    );
    iam(&app, &["delete-user", "--user-name", "alice"])
        .await
        .silent();
}

#[tokio::test]
async fn service_errors_print_as_aws_does_and_exit_254() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    iam(&app, &["create-user", "--user-name", "bob"]).await.ok();
    let (serial, seed) = device_with_seed(&app, dir.path(), "bob-phone").await;
    // Codes from an hour ago are outside any window.
    let (c1, c2) = codes_ending_at(&seed, step_of(app.clock.unix()) - 120);
    let out = enable_device(
        &app,
        "bob",
        &serial,
        &[
            "--authentication-code-1",
            &c1,
            "--authentication-code-2",
            &c2,
        ],
    )
    .await;
    assert_eq!(out.code, 254, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr.trim_end(),
        "An error occurred (InvalidAuthenticationCode) when calling the EnableMFADevice \
         operation: Authentication code for device is not valid."
    );
    assert!(!out.stderr.contains(&c1) && !out.stderr.contains(&c2));

    let out = iam(
        &app,
        &[
            "delete-virtual-mfa-device",
            "--serial-number",
            "GAHT00000000",
        ],
    )
    .await;
    out.aws_error("NoSuchEntity", "DeleteVirtualMFADevice");
}

#[tokio::test]
async fn get_account_summary_prints_the_summary_map() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    iam(&app, &["create-user", "--user-name", "carol"])
        .await
        .ok();
    device_with_seed(&app, dir.path(), "spare").await;
    let v = iam(&app, &["get-account-summary"]).await.json();
    let map = v["SummaryMap"].as_object().unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert!(map.values().all(Value::is_i64), "{v}");
    assert_eq!(map["Users"], 1);
    assert_eq!(map["MFADevices"], 1);
    assert_eq!(map["MFADevicesInUse"], 0);
    assert_eq!(map["AccountMFAEnabled"], 0);
}

#[tokio::test]
async fn credential_reports_are_generated_and_fetched_base64() {
    let app = cli_app().await;
    let g = iam(&app, &["generate-credential-report"]).await.json();
    assert_eq!(g["State"], "COMPLETE");
    assert!(g["Description"].is_string());
    let r = iam(&app, &["get-credential-report"]).await.json();
    assert_eq!(r["ReportFormat"], "text/csv");
    assert_eq!(aws_time(&r["GeneratedTime"]), app.clock.unix());
    let csv = base64::engine::general_purpose::STANDARD
        .decode(r["Content"].as_str().unwrap())
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("user,arn,user_creation_time,"), "{csv}");
}

#[tokio::test]
async fn hardware_tokens_are_imported_from_a_file_url_or_a_path() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let f = dir.path().join("batch.csv");
    std::fs::write(&f, format!("# batch 1\nGAHT12345678,{seed},6,30,SHA1\n")).unwrap();
    let out = import_seeds(&app, &format!("file://{}", f.display())).await;
    assert_eq!(out.json(), json!({ "SerialNumbers": ["GAHT12345678"] }));
    assert!(!out.stdout.contains(seed) && !out.stderr.contains(seed));

    let g = dir.path().join("batch2.csv");
    std::fs::write(&g, format!("GAHT87654321,{seed},6,30,SHA1\n")).unwrap();
    let out = import_seeds(&app, g.to_str().unwrap()).await;
    assert_eq!(out.json(), json!({ "SerialNumbers": ["GAHT87654321"] }));

    // The imported token enables like any device.
    iam(&app, &["create-user", "--user-name", "dave"])
        .await
        .ok();
    let s = step_of(app.clock.unix());
    enable_device(
        &app,
        "dave",
        "GAHT12345678",
        &[
            "--authentication-code1",
            &totp_at_step(seed, s - 1),
            "--authentication-code2",
            &totp_at_step(seed, s),
        ],
    )
    .await
    .ok();

    let out = import_seeds(&app, "file:///nonexistent/seeds.csv").await;
    out.fails(255, "cannot read seed file `/nonexistent/seeds.csv`");
}

// ---- The wrapper verbs (issue 6): sessions for people and CI jobs. ----

/// A person set up through the library client: user, key, enabled virtual device; their
/// credentials written with `sts-broker configure` (profile `alice`, with `mfa_serial`), and a
/// private cache directory.
struct Wrapper {
    app: TestApp,
    dir: tempfile::TempDir,
    creds_file: std::path::PathBuf,
    serial: String,
    seed: String,
    akid: String,
    secret: String,
    arn: String,
}

impl Wrapper {
    async fn new() -> Self {
        // The broker starts a step behind the wall clock; enrolling enables with the codes of its
        // steps s-1 and s and moves it one step on, to the wall clock's now, so the code of the
        // wall clock's step (what --totp-secret-file computes) is fresh.
        Self::on(spawn_app_at(time::OffsetDateTime::now_utc().unix_timestamp() - 30).await).await
    }

    /// As [`Wrapper::new`], the broker running with `--allow-bearer-authorize`.
    async fn bearer() -> Self {
        Self::on(spawn_bearer_app_at(time::OffsetDateTime::now_utc().unix_timestamp() - 30).await)
            .await
    }

    async fn on(app: TestApp) -> Self {
        let alice = crate::mfa::person(&app, "alice").await;
        let (serial, seed) = crate::mfa::enrolled(&app, &alice, "a-phone").await;
        let dir = tempfile::tempdir().unwrap();
        let creds_file = dir.path().join("conf/credentials");
        let w = Self {
            akid: alice.creds.access_key_id.clone(),
            secret: alice.creds.secret_access_key.to_string(),
            arn: alice.caller.arn.clone(),
            app,
            dir,
            creds_file,
            serial,
            seed,
        };
        let out = w
            .run(&[
                "configure",
                "--profile",
                "alice",
                "--aws-access-key-id",
                &w.akid,
                "--aws-secret-access-key",
                &w.secret,
                "--mfa-serial",
                &w.serial,
            ])
            .await
            .ok();
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert_eq!(mode(&w.creds_file), 0o600);
        w
    }

    fn code(&self) -> String {
        totp_at_step(&self.seed, step_of(self.app.clock.unix()))
    }

    fn cache_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("cache/sts-broker")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_sts-broker"));
        if let Some((verb, rest)) = args.split_first() {
            c.arg(verb);
            if *verb != "totp" && *verb != "cache" {
                c.arg("--credentials-file").arg(&self.creds_file);
            }
            c.args(rest);
        }
        c.env("STS_BROKER_ENDPOINT", &self.app.endpoint)
            .env("AWS_PROFILE", "alice")
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_REGION")
            .env("STS_BROKER_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    /// Runs `sts-broker ARGS` as alice (via AWS_PROFILE) with stdin closed.
    async fn run(&self, args: &[&str]) -> Out {
        finish(self.command(args)).await
    }
}

fn rfc3339_z(v: &Value) -> i64 {
    timestamp_in(v, "Z")
}

/// Checks the exact credential_process shape; returns the parsed object.
#[track_caller]
fn credential_process(out: &Out, now: i64) -> Value {
    let v = out.json();
    // The set of members; their order is checked on the raw text below (a parsed Value's key
    // order depends on serde_json's `preserve_order` feature, which another crate may turn on).
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec![
        "AccessKeyId",
        "Expiration",
        "SecretAccessKey",
        "SessionToken",
        "Version",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "{v}");
    assert_eq!(
        out.stdout.trim_end(),
        format!(
            r#"{{"Version":1,"AccessKeyId":{},"SecretAccessKey":{},"SessionToken":{},"Expiration":{}}}"#,
            v["AccessKeyId"], v["SecretAccessKey"], v["SessionToken"], v["Expiration"]
        ),
        "members in AWS's documented order"
    );
    assert_eq!(v["Version"], 1);
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(
        rfc3339_z(&v["Expiration"]),
        now + 43_200,
        "IAM user default: 12 h"
    );
    v
}

#[tokio::test]
async fn a_session_is_prompted_for_once_then_served_from_the_private_cache() {
    let w = Wrapper::new().await;
    let now = w.app.clock.unix();
    // The serial comes from the profile `configure` wrote.
    let code = w.code();
    let out = w
        .run(&[
            "get-session-token",
            "--token-code",
            &code,
            "--output",
            "credential-process",
        ])
        .await;
    let first = credential_process(&out, now);
    // The CLI counts from the wall clock, a little past the broker's (manual) now.
    assert!(
        out.stderr.contains("new session (expires in 12h 0m)")
            || out.stderr.contains("new session (expires in 11h 59m)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&code));

    let cache = w.cache_dir();
    assert_eq!(mode(&cache), 0o700);
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);
    let cached = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        !cached.contains(&w.secret),
        "the long-term secret is never cached"
    );

    // The second call needs no code (none is given and prompting is off): served from the cache.
    let out = w
        .run(&[
            "get-session-token",
            "--serial-number",
            &w.serial,
            "--no-prompt",
            "--output",
            "env",
        ])
        .await
        .ok();
    assert!(
        out.stderr
            .contains("using cached session (expires in 11h 59m)")
            || out
                .stderr
                .contains("using cached session (expires in 12h 0m)"),
        "{}",
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
            ("AWS_CREDENTIAL_EXPIRATION", "Expiration"),
        ]
        .map(|(var, field)| format!("export {var}='{}'", first[field].as_str().unwrap()))
    );

    // aws's JSON shape.
    let v = w.run(&["get-session-token", "--no-prompt"]).await.json();
    assert_eq!(v["Credentials"]["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(aws_time(&v["Credentials"]["Expiration"]), now + 43_200);

    // whoami: identity, source, and the cached session's time left.
    let out = w.run(&["whoami"]).await.ok();
    assert!(
        out.stdout.contains(&format!("Arn:     {}", w.arn)),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("profile `alice` in"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("MFA device {}", w.serial)),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("(in 11h 59m)") || out.stdout.contains("(in 12h 0m)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(&w.secret));

    // Without the cache, or after clearing it, a code is needed again: fail fast with exit 3.
    for args in [
        &["get-session-token", "--no-prompt", "--no-cache"][..],
        &["get-session-token"][..],
    ] {
        if args.len() == 1 {
            let out = w.run(&["cache", "clear"]).await.ok();
            assert!(
                out.stderr.contains("removed 1 cached session"),
                "{}",
                out.stderr
            );
            assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
        }
        // Exits by itself (`run` fails the test if it waits), with exit 3.
        let out = w.run(args).await;
        assert_eq!(out.code, 3, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr
                .contains(&format!("an MFA code for {} is needed", w.serial))
                && out.stderr.contains("--token-code"),
            "{}",
            out.stderr
        );
    }

    // A refused code is the broker's answer, as aws prints it (exit 254); the code is not echoed.
    let out = w
        .run(&["get-session-token", "--token-code", &code, "--no-cache"])
        .await;
    out.aws_error("AccessDenied", "GetSessionToken");
    assert!(!out.stderr.contains(&code));
}

#[tokio::test]
async fn exec_passes_the_session_and_the_exit_code_and_credential_process_reads_a_seed() {
    let w = Wrapper::new().await;
    // CI style: the code computed from the seed file.
    let seed_file = w.dir.path().join("seed");
    std::fs::write(&seed_file, &w.seed).unwrap();
    let out = w
        .run(&[
            "credential-process",
            "--totp-secret-file",
            seed_file.to_str().unwrap(),
        ])
        .await;
    let v = credential_process(&out, w.app.clock.unix());
    assert!(out.stderr.contains("new session"), "{}", out.stderr);

    let out = w
        .run(&[
            "exec",
            "--no-prompt",
            "--",
            "sh",
            "-c",
            "echo $AWS_ACCESS_KEY_ID; echo $AWS_SESSION_TOKEN; echo $AWS_CREDENTIAL_EXPIRATION; \
             echo ${AWS_PROFILE:-no-profile}; exit 7",
        ])
        .await;
    out.fails(7, "using cached session");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            v["AccessKeyId"].as_str().unwrap(),
            v["SessionToken"].as_str().unwrap(),
            v["Expiration"].as_str().unwrap(),
            "no-profile"
        ]
    );

    // The variables work: a nested call signs with the session (x-amz-security-token).
    let out = w
        .run(&[
            "exec",
            "--no-prompt",
            "--",
            env!("CARGO_BIN_EXE_sts-broker"),
            "sts",
            "get-caller-identity",
            "--output",
            "text",
        ])
        .await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let fields: Vec<&str> = out.stdout.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 3, "{}", out.stdout);
    assert_eq!(fields[1], w.arn);

    let out = w
        .run(&["exec", "--no-prompt", "--", "/nonexistent/cmd"])
        .await;
    out.fails(127, "cannot run `/nonexistent/cmd`");

    // totp prints the code the device shows now.
    let before = step_of(time::OffsetDateTime::now_utc().unix_timestamp());
    let out = w
        .run(&["totp", "--secret-file", seed_file.to_str().unwrap()])
        .await
        .ok();
    let after = step_of(time::OffsetDateTime::now_utc().unix_timestamp());
    let code = out.stdout.trim_end();
    assert!(
        code == totp_at_step(&w.seed, before) || code == totp_at_step(&w.seed, after),
        "{code}"
    );
    assert!(out.stderr.contains("more seconds"), "{}", out.stderr);
}

#[tokio::test]
async fn a_prompt_answered_on_a_pseudo_terminal_works() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) on this machine");
        return;
    }
    use tokio::io::AsyncWriteExt;
    let w = Wrapper::new().await;
    let out_file = w.dir.path().join("out.json");
    let inner = format!(
        "{} get-session-token --output credential-process --credentials-file {} > {}",
        env!("CARGO_BIN_EXE_sts-broker"),
        w.creds_file.display(),
        out_file.display()
    );
    let mut cmd = w.command(&["placeholder"]);
    let std_cmd = cmd.as_std_mut();
    let mut script = tokio::process::Command::new("script");
    script
        .args(["-qec", &inner, "/dev/null"])
        .envs(std_cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = script.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", w.code()).as_bytes())
        .await
        .unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the prompt was answered")
        .unwrap();
    drop(stdin);
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "terminal: {terminal}");
    assert!(
        terminal.contains(&format!("Enter MFA code for {}: ", w.serial)),
        "{terminal}"
    );
    assert!(terminal.contains("new session"), "{terminal}");
    let printed = Out {
        code: 0,
        stdout: std::fs::read_to_string(&out_file).unwrap(),
        stderr: String::new(),
    };
    credential_process(&printed, w.app.clock.unix());
}

#[tokio::test]
async fn sts_actions_print_json_text_and_table() {
    let w = Wrapper::new().await;
    let code = w.code();
    let v = w
        .run(&[
            "sts",
            "get-session-token",
            "--serial-number",
            &w.serial,
            "--token-code",
            &code,
        ])
        .await
        .json();
    let c = v["Credentials"].as_object().unwrap();
    let mut keys: Vec<&str> = c.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken"
        ]
    );
    assert_eq!(
        aws_time(&v["Credentials"]["Expiration"]),
        w.app.clock.unix() + 43_200
    );
    assert!(
        w.run(&["whoami"]).await.ok().stdout.contains("no session"),
        "sts verbs do not cache"
    );

    let out = w
        .run(&["sts", "get-caller-identity", "--output", "text"])
        .await
        .ok();
    let account = w.app.broker().account().to_string();
    let id = w.run(&["sts", "get-caller-identity"]).await.json();
    assert_eq!(
        out.stdout,
        format!("{account}\t{}\t{}\n", w.arn, id["UserId"].as_str().unwrap())
    );
    let out = w
        .run(&["sts", "get-caller-identity", "--output", "table"])
        .await
        .ok();
    assert!(out.stdout.contains("GetCallerIdentity"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("| Arn     | {}", w.arn)),
        "{}",
        out.stdout
    );

    let out = w
        .run(&[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::000000000000:role/nope",
            "--role-session-name",
            "x",
        ])
        .await;
    out.fails(254, "when calling the AssumeRole operation");
}

const READ_OBJECTS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
  ]
}"#;

#[tokio::test]
async fn a_managed_policy_from_a_file_is_attached_and_simulated_as_aws_prints_it() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    let account = app.broker().account().to_string();
    iam(&app, &["create-user", "--user-name", "alice"])
        .await
        .ok();
    let f = dir.path().join("read.json");
    std::fs::write(&f, READ_OBJECTS).unwrap();
    let url = format!("file://{}", f.display());

    let v = iam(
        &app,
        &[
            "create-policy",
            "--policy-name",
            "read-objects",
            "--policy-document",
            &url,
            "--description",
            "reads",
        ],
    )
    .await
    .json();
    let p = &v["Policy"];
    let arn = format!("arn:aws:iam::{account}:policy/read-objects");
    assert_eq!(p["Arn"], json!(arn), "{v}");
    assert_eq!(p["PolicyName"], "read-objects");
    assert_eq!(p["Path"], "/");
    assert_eq!(p["DefaultVersionId"], "v1");
    assert_eq!(p["AttachmentCount"], 0);
    assert_eq!(p["IsAttachable"], true);
    assert!(p["PolicyId"].as_str().unwrap().starts_with("ANPA"), "{v}");
    aws_time(&p["CreateDate"]);
    aws_time(&p["UpdateDate"]);

    let out = iam(
        &app,
        &[
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &arn,
        ],
    )
    .await
    .ok();
    assert_eq!(out.stdout, "", "AttachUserPolicy has no output");
    assert_eq!(
        iam(
            &app,
            &["list-attached-user-policies", "--user-name", "alice"]
        )
        .await
        .json(),
        json!({ "AttachedPolicies": [{ "PolicyName": "read-objects", "PolicyArn": arn }] })
    );
    let v = iam(&app, &["get-policy", "--policy-arn", &arn])
        .await
        .json();
    assert_eq!(v["Policy"]["AttachmentCount"], 1, "{v}");
    let v = iam(
        &app,
        &["list-policies", "--scope", "Local", "--only-attached"],
    )
    .await
    .json();
    assert_eq!(v["Policies"].as_array().unwrap().len(), 1, "{v}");

    let v = iam(
        &app,
        &[
            "simulate-principal-policy",
            "--policy-source-arn",
            &format!("arn:aws:iam::{account}:user/alice"),
            "--action-names",
            "s3:GetObject",
            "s3:PutObject",
            "--resource-arns",
            "arn:aws:s3:::bucket/key",
            "--context-entries",
            "ContextKeyName=aws:SourceIp,ContextKeyValues=10.0.0.1,ContextKeyType=ip",
        ],
    )
    .await
    .json();
    let results = v["EvaluationResults"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    let allowed = &results[0];
    assert_eq!(allowed["EvalActionName"], "s3:GetObject");
    assert_eq!(allowed["EvalResourceName"], "arn:aws:s3:::bucket/key");
    assert_eq!(allowed["EvalDecision"], "allowed");
    let m = &allowed["MatchedStatements"][0];
    assert_eq!(m["SourcePolicyId"], json!(arn), "{v}");
    assert_eq!(m["SourcePolicyType"], "user-managed", "{v}");
    // The statement is line 4 of the file, from its `{` to its `}`.
    assert_eq!(m["StartPosition"], json!({ "Line": 4, "Column": 5 }), "{v}");
    assert_eq!(m["EndPosition"]["Line"], 4, "{v}");
    let denied = &results[1];
    assert_eq!(denied["EvalActionName"], "s3:PutObject");
    assert_eq!(denied["EvalDecision"], "implicitDeny");
    assert_eq!(denied["MatchedStatements"], json!([]));

    // A refused document is the broker's answer, printed as aws prints it.
    let out = iam(
        &app,
        &[
            "create-policy",
            "--policy-name",
            "broken",
            "--policy-document",
            r#"{"Version": "2012-10-17", "Statement": ["#,
        ],
    )
    .await;
    assert_eq!(out.code, 254, "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with(
            "An error occurred (MalformedPolicyDocument) when calling the CreatePolicy operation: "
        ),
        "{}",
        out.stderr
    );
    // A missing file is a local error (255), not sent.
    let out = iam(
        &app,
        &[
            "create-policy",
            "--policy-name",
            "nofile",
            "--policy-document",
            "file:///nonexistent/policy.json",
        ],
    )
    .await;
    out.fails(255, "/nonexistent/policy.json");
}

#[tokio::test]
async fn inline_policies_round_trip_and_roles_are_created_and_read() {
    let app = cli_app().await;
    let account = app.broker().account().to_string();
    iam(&app, &["create-user", "--user-name", "bob"]).await.ok();
    iam(
        &app,
        &[
            "put-user-policy",
            "--user-name",
            "bob",
            "--policy-name",
            "read",
            "--policy-document",
            READ_OBJECTS,
        ],
    )
    .await
    .silent();
    let v = user_policy(&app, "bob", "read").await.json();
    assert_eq!(
        v,
        json!({
            "UserName": "bob",
            "PolicyName": "read",
            "PolicyDocument": serde_json::from_str::<Value>(READ_OBJECTS).unwrap(),
        })
    );
    let v = iam(
        &app,
        &[
            "simulate-custom-policy",
            "--policy-input-list",
            READ_OBJECTS,
            "--action-names",
            "s3:GetObject",
        ],
    )
    .await
    .json();
    assert_eq!(v["EvaluationResults"][0]["EvalDecision"], "allowed", "{v}");
    iam(
        &app,
        &[
            "delete-user-policy",
            "--user-name",
            "bob",
            "--policy-name",
            "read",
        ],
    )
    .await
    .ok();
    let out = user_policy(&app, "bob", "read").await;
    out.fails(254, "(NoSuchEntity)");

    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:user/bob"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let created = iam(
        &app,
        &[
            "create-role",
            "--role-name",
            "reader",
            "--assume-role-policy-document",
            &trust,
            "--max-session-duration",
            "7200",
        ],
    )
    .await
    .json();
    let r = &created["Role"];
    assert_eq!(r["RoleName"], "reader", "{created}");
    assert_eq!(r["Path"], "/");
    assert_eq!(
        r["Arn"],
        json!(format!("arn:aws:iam::{account}:role/reader"))
    );
    assert!(
        r["RoleId"].as_str().unwrap().starts_with("AROA"),
        "{created}"
    );
    assert_eq!(r["MaxSessionDuration"], 7200);
    assert_eq!(
        r["AssumeRolePolicyDocument"],
        serde_json::from_str::<Value>(&trust).unwrap(),
        "printed as the parsed document"
    );
    aws_time(&r["CreateDate"]);
    let got = iam(&app, &["get-role", "--role-name", "reader"])
        .await
        .json();
    assert_eq!(got, created);
    iam(&app, &["delete-role", "--role-name", "reader"])
        .await
        .ok();
    let out = iam(&app, &["get-role", "--role-name", "reader"]).await;
    assert_eq!(out.code, 254, "stderr: {}", out.stderr);
}

/// Runs `sts-broker ARGS` with profile `profile` of `creds_file`, against `app`.
async fn run_with_profile(app: &TestApp, creds_file: &Path, profile: &str, args: &[&str]) -> Out {
    let mut cmd = command(app, creds_file, args);
    cmd.arg("--profile")
        .arg(profile)
        .stdin(std::process::Stdio::null());
    finish(cmd).await
}

#[tokio::test]
async fn authz_authorize_answers_a_resource_server_from_the_tokens_mfa_facts() {
    // The CLI sends a bare session token: the broker must allow bearer Authorize.
    let w = Wrapper::bearer().await;
    let app = &w.app;
    // alice may read reports only with MFA.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadReportsWithMfa",
        "Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/*",
        "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}"#;
    iam(
        app,
        &[
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "read-reports",
            "--policy-document",
            policy,
        ],
    )
    .await
    .ok();

    // The resource server is a user of its own whose only permission is sts:Authorize.
    iam(app, &["create-user", "--user-name", "reports-api"])
        .await
        .ok();
    iam(
        app,
        &[
            "put-user-policy",
            "--user-name",
            "reports-api",
            "--policy-name",
            "authorize",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:Authorize","Resource":"*"}}"#,
        ],
    )
    .await
    .ok();
    let key = iam(app, &["create-access-key", "--user-name", "reports-api"])
        .await
        .json();
    let rs_file = w.dir.path().join("reports-api-credentials");
    std::fs::write(
        &rs_file,
        format!(
            "[reports-api]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
            key["AccessKey"]["SecretAccessKey"].as_str().unwrap()
        ),
    )
    .unwrap();

    // alice's two sessions: one with MFA (the wrapper), one without (the plain sts action).
    let issued_at = app.clock.unix();
    let code = w.code();
    let with_mfa = w
        .run(&["credential-process", "--token-code", &code, "--no-cache"])
        .await
        .json();
    let without = w.run(&["sts", "get-session-token"]).await.json();
    let authorize = |token: String, output: &'static str| {
        let rs_file = rs_file.clone();
        async move {
            run_with_profile(
                app,
                &rs_file,
                "reports-api",
                &[
                    "authz",
                    "authorize",
                    "--session-token",
                    &token,
                    "--action",
                    "s3:GetObject",
                    "--resource",
                    "arn:aws:s3:::reports/2026/q3.csv",
                    "--output",
                    output,
                ],
            )
            .await
        }
    };

    // The CLI signs with the wall clock, so the broker's clock may move only inside SigV4's
    // five-minute window: 200 s is enough to show the age is counted from when the code was checked.
    app.clock.advance(200);
    let v = authorize(with_mfa["SessionToken"].as_str().unwrap().into(), "json")
        .await
        .json();
    assert_eq!(v["Decision"], "allowed", "{v}");
    assert_eq!(v["PrincipalArn"], json!(w.arn), "{v}");
    assert_eq!(v["MfaPresent"], true, "{v}");
    assert_eq!(
        v["MfaAgeSeconds"],
        json!(app.clock.unix() - issued_at),
        "{v}"
    );
    let matched = v["MatchedStatements"].as_array().unwrap();
    assert_eq!(matched.len(), 1, "{v}");
    assert_eq!(matched[0]["SourcePolicyId"], "read-reports", "{v}");

    // Without MFA the same request is implicitly denied: no statement matched, no age reported.
    let token = without["Credentials"]["SessionToken"].as_str().unwrap();
    let v = authorize(token.into(), "json").await.json();
    assert_eq!(v["Decision"], "implicitDeny", "{v}");
    assert_eq!(v["PrincipalArn"], json!(w.arn), "{v}");
    assert_eq!(v["MfaPresent"], false, "{v}");
    assert!(v.get("MfaAgeSeconds").is_none(), "{v}");
    assert_eq!(v["MatchedStatements"], json!([]), "{v}");

    // Text output: the decision first, for shell scripts.
    let out = authorize(token.into(), "text").await.ok();
    assert!(out.stdout.starts_with("implicitDeny\t"), "{}", out.stdout);

    // A forged token is the broker's refusal, as aws prints errors (exit 254), token not echoed.
    let forged = format!("{}x", with_mfa["SessionToken"].as_str().unwrap());
    let out = authorize(forged.clone(), "json").await;
    out.aws_error("InvalidSubjectToken", "Authorize");
    assert!(!out.stderr.contains(&forged));

    // alice herself may not ask: Authorize is for principals granted sts:Authorize.
    let alice_file = w.creds_file.clone();
    let out = run_with_profile(
        app,
        &alice_file,
        "alice",
        &[
            "authz",
            "authorize",
            "--session-token",
            token,
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::reports/2026/q3.csv",
        ],
    )
    .await;
    out.aws_error("AccessDenied", "Authorize");
}
