//! Test harness: spawn a broker, sign calls, read errors.

use std::path::PathBuf;
use std::sync::Arc;
use sts_broker::client::{Client, Credentials};
use sts_broker::clock::{ManualClock, SharedClock};
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use sts_broker::server::{self, Limits, Running, ServeConfig};
use tonic_types::StatusExt;
use zeroize::Zeroizing;

/// 2026-03-01T00:00:00Z: a fixed instant, so nothing depends on the wall clock.
pub const T0: i64 = 1_772_323_200;

pub struct TestApp {
    pub running: Option<Running>,
    pub addr: std::net::SocketAddr,
    pub endpoint: String,
    pub clock: ManualClock,
    pub dir: tempfile::TempDir,
    pub root: Credentials,
    pub client: Client,
}

pub fn config(data_dir: PathBuf) -> ServeConfig {
    ServeConfig {
        data_dir,
        listen: "127.0.0.1:0".parse().unwrap(),
        region: "us-east-1".into(),
        account_id: None,
        tls: None,
        limits: Limits::default(),
        allow_bearer_authorize: false,
    }
}

pub fn read_credentials_file(path: &std::path::Path) -> Credentials {
    let text = std::fs::read_to_string(path).unwrap();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            })
            .unwrap()
    };
    Credentials {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: Zeroizing::new(get("aws_secret_access_key")),
        session_token: None,
    }
}

pub async fn start_on(dir: tempfile::TempDir, clock: ManualClock) -> TestApp {
    let cfg = config(dir.path().join("data"));
    start_with(dir, clock, cfg).await
}

/// A broker with a configuration of the test's own (its data dir inside `dir`).
pub async fn start_with(dir: tempfile::TempDir, clock: ManualClock, cfg: ServeConfig) -> TestApp {
    let data = cfg.data_dir.clone();
    let shared: SharedClock = Arc::new(clock.clone());
    let running = server::start(cfg, shared.clone(), std::future::pending())
        .await
        .unwrap();
    let addr = running.local_addr;
    let endpoint = format!("http://{addr}");
    let root = read_credentials_file(&data.join("root-credentials"));
    let client = Client::connect(&endpoint, "us-east-1", root.clone())
        .await
        .unwrap()
        .with_clock(shared);
    TestApp {
        running: Some(running),
        addr,
        endpoint,
        clock,
        dir,
        root,
        client,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_at(T0).await
}

/// A broker whose manual clock stands at `unix`: for clients that sign with another clock (the
/// CLI binary signs with the wall clock), start it near theirs.
pub async fn spawn_app_at(unix: i64) -> TestApp {
    start_on(tempfile::tempdir().unwrap(), ManualClock::at(unix)).await
}

/// A broker started with `--allow-bearer-authorize`, its clock at `unix`: `Authorize` decides on
/// a bare session token.
pub async fn spawn_bearer_app_at(unix: i64) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServeConfig {
        allow_bearer_authorize: true,
        ..config(dir.path().join("data"))
    };
    start_with(dir, ManualClock::at(unix), cfg).await
}

impl TestApp {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn broker(&self) -> &Arc<sts_broker::broker::Broker> {
        &self.running.as_ref().unwrap().broker
    }

    /// A bare gRPC client on a new connection, for calls the signing client cannot make
    /// (unsigned, tampered, or to paths that name no RPC).
    pub async fn raw_grpc(&self) -> tonic::client::Grpc<tonic::transport::Channel> {
        let channel = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        tonic::client::Grpc::new(channel)
    }

    /// A client signing with `creds` over the same connection and clock.
    pub fn as_(&self, creds: &Credentials) -> Client {
        self.client.with_credentials(creds.clone())
    }

    /// The audit trail once the writer has caught up: the newest 1000 events, newest first.
    pub async fn audit(&self) -> Vec<sts_broker::domain::AuditEvent> {
        self.broker().flush_audit().await;
        self.broker().recent_audit(1000).await.unwrap()
    }

    /// The newest audit event for IAM action `action`; fails the test when there is none.
    pub async fn audit_event(&self, action: &str) -> sts_broker::domain::AuditEvent {
        let events = self.audit().await;
        let event = events.into_iter().find(|e| e.action == action);
        event.unwrap_or_else(|| panic!("no {action} call in the audit trail"))
    }

    /// Stops the server gracefully and starts it again on the same data dir.
    pub async fn restart(mut self) -> TestApp {
        self.running.take().unwrap().shutdown().await.unwrap();
        start_on(self.dir, self.clock).await
    }
}

/// The AWS code carried in a status's ErrorInfo; asserts the domain.
pub fn reason(s: &tonic::Status) -> String {
    let info = s
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in status: {s:?}"));
    assert_eq!(info.domain, "sts-broker");
    info.reason
}

/// Asserts a call failed with `code` and AWS `aws_code`.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    code: tonic::Code,
    aws_code: &str,
) -> tonic::Status {
    let s = r.expect_err("call should have failed");
    assert_eq!(s.code(), code, "grpc code; status: {s:?}");
    assert_eq!(reason(&s), aws_code, "AWS code; message: {}", s.message());
    s
}

/// Asserts a call was refused because its signature is not the one its credentials make:
/// `SignatureDoesNotMatch`.
#[track_caller]
pub fn assert_bad_signature<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    assert_error(r, tonic::Code::Unauthenticated, "SignatureDoesNotMatch")
}

/// Asserts a refusal's message contains `part`.
#[track_caller]
pub fn assert_message_has(s: &tonic::Status, part: &str) {
    assert!(s.message().contains(part), "{}", s.message());
}

/// Asserts a call was refused as a `ValidationError` whose message names `field`.
#[track_caller]
pub fn assert_invalid_field<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    field: &str,
) -> tonic::Status {
    let s = assert_error(r, tonic::Code::InvalidArgument, "ValidationError");
    assert_message_has(&s, field);
    s
}

/// Asserts a call was refused as AWS refuses an unauthorised one: `AccessDenied`.
#[track_caller]
pub fn assert_denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    assert_error(r, tonic::Code::PermissionDenied, "AccessDenied")
}

/// Asserts a call was refused because its credentials are not (or no longer) valid:
/// `InvalidClientTokenId`.
#[track_caller]
pub fn assert_invalid_token<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Status {
    assert_error(r, tonic::Code::Unauthenticated, "InvalidClientTokenId")
}

/// An independent TOTP (RFC 6238 over HMAC-SHA1, 6 digits, 30 s) for computing codes in tests,
/// written apart from the broker's own so a shared bug cannot hide.
pub fn totp_at_step(seed_b32: &str, step: i64) -> String {
    use hmac::{Hmac, Mac};
    let key = data_encoding::BASE32_NOPAD
        .decode(seed_b32.trim_end_matches('=').as_bytes())
        .unwrap();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&(step as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[o] & 0x7f) << 24)
        | (u32::from(h[o + 1]) << 16)
        | (u32::from(h[o + 2]) << 8)
        | u32::from(h[o + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// The step a Unix time falls in.
pub fn step_of(t: i64) -> i64 {
    t.div_euclid(30)
}

/// Lets a user manage its own access keys and list its own MFA devices, the AWS way
/// (`${aws:username}` in the resource).
pub const SELF_MANAGE_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "OwnKeysAndDevices",
    "Effect": "Allow",
    "Action": ["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:DeleteAccessKey", "iam:ListMFADevices"],
    "Resource": "arn:aws:iam::*:user/${aws:username}"
  }]
}"#;

/// Session credentials as a client signs with them.
pub fn session_credentials(c: &sts::Credentials) -> Credentials {
    Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: Zeroizing::new(c.secret_access_key.clone()),
        session_token: Some(c.session_token.clone()),
    }
}

/// `GetCallerIdentity` as `c`.
pub async fn caller_identity(c: &Client) -> Result<sts::GetCallerIdentityResponse, tonic::Status> {
    let r = c
        .sts()
        .get_caller_identity(sts::GetCallerIdentityRequest {})
        .await;
    r.map(|r| r.into_inner())
}

/// `CreateUser` named `name` at path `/`, as `c`.
pub async fn create_user(c: &Client, name: &str) -> Result<iam::User, tonic::Status> {
    create_user_at(c, name, None).await
}

/// `CreateUser` named `name` at `path` (`/` when `None`), as `c`.
pub async fn create_user_at(
    c: &Client,
    name: &str,
    path: Option<&str>,
) -> Result<iam::User, tonic::Status> {
    let req = iam::CreateUserRequest {
        user_name: name.into(),
        path: path.map(str::to_owned),
    };
    let r = c.iam().create_user(req).await?;
    Ok(r.into_inner().user.unwrap())
}

/// Root puts an inline policy on a user.
pub async fn put_user_policy(c: &Client, user: &str, name: &str, doc: &str) {
    let req = iam::PutUserPolicyRequest {
        user_name: user.into(),
        policy_name: name.into(),
        policy_document: doc.into(),
    };
    c.iam().put_user_policy(req).await.unwrap();
}

/// A plain HTTP/1.1 GET on the listener; the whole response, status line first.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The command that runs `sts-broker serve` on `data` on a free loopback port.
pub fn serve_command(data: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sts-broker"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"]);
    cmd
}

/// Starts `cmd` (a `serve`, perhaps behind a shell) and returns it with the endpoint it printed;
/// its log is read on and dropped so that it never blocks on a full pipe.
pub async fn serve_process(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let endpoint = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("serving on http://") {
                let url = &line[at + "serving on ".len()..];
                return url.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the broker ended without saying where it listens");
    })
    .await
    .expect("the broker starts");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, endpoint)
}

/// This process's resident set (broker and test share it), for the flood tests' reports.
pub fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "VmRSS: unknown".into())
}
