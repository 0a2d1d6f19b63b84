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

/// Runs `sts-broker iam ARGS` as the root user against `app`.
async fn iam(app: &TestApp, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_sts-broker"))
        .arg("iam")
        .args(args)
        .arg("--endpoint")
        .arg(&app.endpoint)
        .arg("--credentials-file")
        .arg(app.data_dir().join("root-credentials"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env("STS_BROKER_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
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

/// A timestamp as aws prints it, e.g. `2026-11-27T23:28:33+00:00`.
#[track_caller]
fn aws_time(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    assert!(s.ends_with("+00:00"), "{s}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// Creates a virtual device, its seed written to DIR/NAME.seed; returns (serial, seed).
async fn device_with_seed(app: &TestApp, dir: &Path, name: &str) -> (String, String) {
    let f = dir.join(format!("{name}.seed"));
    let v = iam(
        app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            name,
            "--outfile",
            f.to_str().unwrap(),
            "--bootstrap-method",
            "Base32StringSeed",
        ],
    )
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
    let out = iam(
        &app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "phone",
            "--outfile",
            png.to_str().unwrap(),
            "--bootstrap-method",
            "QRCodePNG",
        ],
    )
    .await;
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
    let out = iam(
        &app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "tablet",
            "--path",
            "/team/",
            "--outfile",
            seed_file.to_str().unwrap(),
            "--bootstrap-method",
            "Base32StringSeed",
        ],
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
    let out = iam(
        &app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "laptop",
            "--outfile",
            seed_file.to_str().unwrap(),
            "--bootstrap-method",
            "Base32StringSeed",
        ],
    )
    .await;
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
    let out = iam(
        &app,
        &[
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "phone",
            "--outfile",
            again.to_str().unwrap(),
            "--bootstrap-method",
            "QRCodePNG",
        ],
    )
    .await;
    assert_eq!(out.code, 254, "stderr: {}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "An error occurred (EntityAlreadyExists) when calling the CreateVirtualMFADevice operation: "
        ),
        "{}",
        out.stderr
    );
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
    let s = step_of(app.clock.unix());
    let (c1, c2) = (totp_at_step(&seed, s - 1), totp_at_step(&seed, s));
    let out = iam(
        &app,
        &[
            "enable-mfa-device",
            "--user-name",
            "alice",
            "--serial-number",
            &serial,
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

    let assigned = iam(
        &app,
        &[
            "list-virtual-mfa-devices",
            "--assignment-status",
            "Assigned",
        ],
    )
    .await
    .json();
    let v = &assigned["VirtualMFADevices"][0];
    assert_eq!(v["SerialNumber"], serial.as_str());
    assert_eq!(v["User"]["UserName"], "alice");
    assert_eq!(aws_time(&v["EnableDate"]), app.clock.unix());
    let unassigned = iam(
        &app,
        &[
            "list-virtual-mfa-devices",
            "--assignment-status",
            "Unassigned",
        ],
    )
    .await
    .json();
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

    let out = iam(&app, &["reset-mfa-lockout", "--user-name", "alice"])
        .await
        .ok();
    assert_eq!(out.stdout, "");
    let out = iam(
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
    .ok();
    assert_eq!(out.stdout, "");
    let out = iam(
        &app,
        &["delete-virtual-mfa-device", "--serial-number", &serial],
    )
    .await
    .ok();
    assert_eq!(out.stdout, "");
    assert_eq!(
        iam(&app, &["list-mfa-devices", "--user-name", "alice"])
            .await
            .json(),
        json!({ "MFADevices": [] })
    );
    let out = iam(&app, &["delete-user", "--user-name", "alice"])
        .await
        .ok();
    assert_eq!(out.stdout, "");
}

#[tokio::test]
async fn service_errors_print_as_aws_does_and_exit_254() {
    let app = cli_app().await;
    let dir = tempfile::tempdir().unwrap();
    iam(&app, &["create-user", "--user-name", "bob"]).await.ok();
    let (serial, seed) = device_with_seed(&app, dir.path(), "bob-phone").await;
    // Codes from an hour ago are outside any window.
    let s = step_of(app.clock.unix()) - 120;
    let (c1, c2) = (totp_at_step(&seed, s - 1), totp_at_step(&seed, s));
    let out = iam(
        &app,
        &[
            "enable-mfa-device",
            "--user-name",
            "bob",
            "--serial-number",
            &serial,
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
    assert_eq!(out.code, 254, "stderr: {}", out.stderr);
    assert!(
        out.stderr.starts_with(
            "An error occurred (NoSuchEntity) when calling the DeleteVirtualMFADevice operation: "
        ),
        "{}",
        out.stderr
    );
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
    let out = iam(
        &app,
        &[
            "import-hardware-mfa-devices",
            "--seed-file",
            &format!("file://{}", f.display()),
        ],
    )
    .await;
    assert_eq!(out.json(), json!({ "SerialNumbers": ["GAHT12345678"] }));
    assert!(!out.stdout.contains(seed) && !out.stderr.contains(seed));

    let g = dir.path().join("batch2.csv");
    std::fs::write(&g, format!("GAHT87654321,{seed},6,30,SHA1\n")).unwrap();
    let out = iam(
        &app,
        &[
            "import-hardware-mfa-devices",
            "--seed-file",
            g.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(out.json(), json!({ "SerialNumbers": ["GAHT87654321"] }));

    // The imported token enables like any device.
    iam(&app, &["create-user", "--user-name", "dave"])
        .await
        .ok();
    let s = step_of(app.clock.unix());
    iam(
        &app,
        &[
            "enable-mfa-device",
            "--user-name",
            "dave",
            "--serial-number",
            "GAHT12345678",
            "--authentication-code1",
            &totp_at_step(seed, s - 1),
            "--authentication-code2",
            &totp_at_step(seed, s),
        ],
    )
    .await
    .ok();

    let out = iam(
        &app,
        &[
            "import-hardware-mfa-devices",
            "--seed-file",
            "file:///nonexistent/seeds.csv",
        ],
    )
    .await;
    assert_eq!(out.code, 255, "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read seed file `/nonexistent/seeds.csv`"),
        "{}",
        out.stderr
    );
}
