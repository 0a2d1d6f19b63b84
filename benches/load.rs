//! Load generator: `cargo bench --bench load` (a plain `main`, `harness = false`). CI runs it
//! for a few seconds in the test profile (`cargo test --bench load`) as a smoke test: the exit
//! status is 1 when any call failed or a scenario completed none.
//!
//! Starts the broker in-process on 127.0.0.1:0 with a temporary data directory (or targets
//! `LOAD_ENDPOINT`, loopback only, with the root credentials file `LOAD_ROOT_CREDENTIALS`),
//! prepares `LOAD_USERS` users each with an access key, an enabled virtual MFA device and an
//! MFA policy, then drives each scenario for `LOAD_SECONDS` with `LOAD_CONCURRENCY` callers:
//!
//! - `noop`: gRPC health `Check` on the same server (the baseline for "authenticated call vs no-op");
//! - `gst`: `GetSessionToken` with a valid MFA code. A device gives one fresh code per 30 s step,
//!   so devices are rotated and each is used at most once per step. Once every device has been
//!   used in the current step ("pool dry"), the in-process run moves the clock that the broker and
//!   the generator share one step forward (a [`SteppingClock`]: wall clock + an offset), which is
//!   what `LOAD_USERS` × more wall time would give; every call still verifies a fresh code and
//!   writes its replay guard durably. Against `LOAD_ENDPOINT` the clock cannot move, so callers
//!   wait for the next real step and the sustained rate is bounded by `LOAD_USERS / 30 s`; the
//!   burst rate (while fresh codes remain) is reported separately;
//! - `gci`: `GetCallerIdentity` signed (SigV4) with MFA-backed temporary credentials;
//! - `authz`: `Authorize` of an MFA session's `s3:GetObject` by a resource-server user, bearer
//!   mode (a broker given by `LOAD_ENDPOINT` must run with `--allow-bearer-authorize`).
//!
//! `LOAD_SCENARIO=gst|gci|authz|noop|all` (default `all`), `LOAD_CONNECTIONS` (HTTP/2
//! connections shared by the callers, default 4), `LOAD_SESSIONS` (temporary credentials used by
//! `gci`/`authz`, default 64).
//!
//! Server RSS and CPU: the broker runs in this process, so RSS (`/proc/self/status`) covers the
//! broker *and* the generator. CPU is split per thread from `/proc/self/task/*/stat`: threads of
//! the broker's runtime (`sts-broker*`) and its audit writer count as server, everything else
//! (the `load*` runtime, main thread) as generator. With `LOAD_ENDPOINT`, set `LOAD_SERVER_PID`
//! to the broker's pid to have its RSS and CPU read from `/proc/PID`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sts_broker::client::{Client, Credentials};
use sts_broker::clock::{Clock, SharedClock, SystemClock};
use sts_broker::mfa::{Seed, TotpParams, code_at};
use sts_broker::proto::authz::v1 as authz;
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use sts_broker::server::{self, Limits, ServeConfig};
use tonic_types::StatusExt;
use zeroize::Zeroizing;

const REGION: &str = "us-east-1";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

const USER_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"ReadWithMfa","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::vault/*",
  "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"},"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}}]}"#;
const RS_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:Authorize","Resource":"*"}]}"#;

#[derive(Debug, Clone)]
struct Opts {
    seconds: u64,
    concurrency: usize,
    users: usize,
    scenario: String,
    connections: usize,
    sessions: usize,
    endpoint: Option<String>,
    root_file: Option<PathBuf>,
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Opts {
    fn from_env() -> Self {
        Self {
            seconds: env_or("LOAD_SECONDS", 20u64).clamp(1, 3600),
            concurrency: env_or("LOAD_CONCURRENCY", 32usize).clamp(1, 1024),
            users: env_or("LOAD_USERS", 500usize).clamp(1, 100_000),
            scenario: std::env::var("LOAD_SCENARIO").unwrap_or_else(|_| "all".into()),
            connections: env_or("LOAD_CONNECTIONS", 4usize).clamp(1, 64),
            sessions: env_or("LOAD_SESSIONS", 64usize).clamp(1, 10_000),
            endpoint: std::env::var("LOAD_ENDPOINT").ok(),
            root_file: std::env::var("LOAD_ROOT_CREDENTIALS")
                .ok()
                .map(PathBuf::from),
        }
    }
}

fn read_credentials_file(path: &Path) -> Credentials {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            })
            .unwrap_or_else(|| panic!("{k} missing in {}", path.display()))
    };
    Credentials {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: Zeroizing::new(get("aws_secret_access_key")),
        session_token: None,
    }
}

fn is_loopback(endpoint: &str) -> bool {
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(h) => h
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The wall clock plus an offset that only grows, in whole TOTP steps. Shared by the in-process
/// broker and every signing client, so SigV4 dates, TOTP steps and token times stay consistent.
#[derive(Default)]
struct SteppingClock {
    offset: AtomicI64,
}

impl SteppingClock {
    fn step_forward(&self) {
        self.offset.fetch_add(30, Ordering::SeqCst);
    }

    fn steps_moved(&self) -> i64 {
        self.offset.load(Ordering::SeqCst) / 30
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            + time::Duration::seconds(self.offset.load(Ordering::SeqCst))
    }
}

// ---------------------------------------------------------------- process statistics

/// `LOAD_SERVER_PID`: the broker's process when it runs outside the generator (`LOAD_ENDPOINT`).
fn server_pid() -> Option<u32> {
    static PID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *PID.get_or_init(|| std::env::var("LOAD_SERVER_PID").ok()?.parse().ok())
}

/// (VmRSS, VmHWM) in KiB of the broker: its own process if known, else this one.
fn rss_kib() -> Option<(u64, u64)> {
    let path = match server_pid() {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// (comm, utime + stime) of a `/proc/.../stat` file; 100 ticks = 1 CPU-second.
fn stat_ticks(path: &Path) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 (proc(5)).
    let field = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some((stat[open + 1..close].to_owned(), field(11) + field(12)))
}

/// (server ticks, generator ticks). In process, split per thread by name: the broker's runtime
/// (`sts-broker*`) and its writer threads count as server, the rest as generator.
fn cpu_ticks() -> (u64, u64) {
    let mut server = server_pid()
        .and_then(|pid| stat_ticks(Path::new(&format!("/proc/{pid}/stat"))))
        .map_or(0, |(_, t)| t);
    let mut generator = 0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return (server, 0);
    };
    for entry in dir.flatten() {
        let Some((comm, ticks)) = stat_ticks(&entry.path().join("stat")) else {
            continue;
        };
        let broker_thread = ["sts-broker", "audit-writer", "mfa-guard"]
            .iter()
            .any(|p| comm.starts_with(p));
        if broker_thread && server_pid().is_none() {
            server += ticks;
        } else {
            generator += ticks;
        }
    }
    (server, generator)
}

// ---------------------------------------------------------------- results

#[derive(Default)]
struct Stats {
    ok: AtomicU64,
    err: AtomicU64,
    latencies: Mutex<Vec<u32>>, // microseconds
    errors: Mutex<BTreeMap<String, u64>>,
    /// `gst` only: waits because every device had been used in the current step.
    pool_dry: AtomicU64,
    /// `gst` only: successes before the pool first ran dry, and when that happened.
    burst_ok: AtomicU64,
    burst_end_us: AtomicU64,
}

impl Stats {
    fn record(&self, started: Instant, result: Result<(), String>, local: &mut Vec<u32>) {
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        local.push(us);
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(code) => {
                self.err.fetch_add(1, Ordering::Relaxed);
                *self.errors.lock().unwrap().entry(code).or_default() += 1;
            }
        }
    }
}

fn status_code(s: &tonic::Status) -> String {
    match s.get_details_error_info() {
        Some(info) => format!("{:?}/{}", s.code(), info.reason),
        None => format!("{:?}", s.code()),
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(s)) => Err(status_code(&s)),
        Err(_) => Err("ClientTimeout".into()),
    }
}

struct Row {
    scenario: String,
    seconds: f64,
    ok: u64,
    err: u64,
    p: [u32; 4],
    errors: BTreeMap<String, u64>,
    server_cpu: Option<f64>,
    gen_cpu: f64,
    rss_mib: Option<f64>,
    note: String,
}

fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn fmt_us(us: u32) -> String {
    if us >= 10_000 {
        format!("{:.1} ms", f64::from(us) / 1000.0)
    } else {
        format!("{:.2} ms", f64::from(us) / 1000.0)
    }
}

// ---------------------------------------------------------------- setup

struct Device {
    creds: Credentials,
    serial: String,
    seed: Seed,
    /// The newest step consumed (by enable or a session).
    last_step: AtomicI64,
}

fn code(seed: &Seed, step: i64) -> String {
    code_at(seed, &TotpParams::AWS, u64::try_from(step).unwrap_or(0)).expose_code()
}

async fn create_user_with_key(root: &Client, name: &str) -> Result<Credentials, String> {
    let r = root.clone();
    timed(r.iam().create_user(iam::CreateUserRequest {
        user_name: name.into(),
        path: None,
    }))
    .await?;
    let k = timed(r.iam().create_access_key(iam::CreateAccessKeyRequest {
        user_name: Some(name.into()),
    }))
    .await?
    .into_inner()
    .access_key
    .ok_or("no access key")?;
    Ok(Credentials {
        access_key_id: k.access_key_id,
        secret_access_key: Zeroizing::new(k.secret_access_key),
        session_token: None,
    })
}

async fn put_policy(root: &Client, user: &str, doc: &str) -> Result<(), String> {
    timed(root.iam().put_user_policy(iam::PutUserPolicyRequest {
        user_name: user.into(),
        policy_name: "load".into(),
        policy_document: doc.into(),
    }))
    .await
    .map(|_| ())
}

async fn prepare_user(root: &Client, clock: &SharedClock, i: usize) -> Result<Device, String> {
    let name = format!("load-user-{i}");
    let creds = create_user_with_key(root, &name).await?;
    put_policy(root, &name, USER_POLICY).await?;
    let d = timed(
        root.iam()
            .create_virtual_mfa_device(iam::CreateVirtualMfaDeviceRequest {
                virtual_mfa_device_name: format!("load-device-{i}"),
                path: None,
            }),
    )
    .await?
    .into_inner()
    .virtual_mfa_device
    .ok_or("no device")?;
    let seed = Seed::from_base32(&d.base32_string_seed).map_err(|e| e.to_string())?;
    // Two consecutive codes; retried once in case a step boundary fell between them.
    let mut last = Err(String::new());
    for _ in 0..2 {
        let s = clock.unix().div_euclid(30);
        last = timed(root.iam().enable_mfa_device(iam::EnableMfaDeviceRequest {
            user_name: name.clone(),
            serial_number: d.serial_number.clone(),
            authentication_code1: code(&seed, s - 1),
            authentication_code2: code(&seed, s),
        }))
        .await
        .map(|_| s);
        if last.is_ok() {
            break;
        }
    }
    let step = last?;
    Ok(Device {
        creds,
        serial: d.serial_number,
        seed,
        last_step: AtomicI64::new(step),
    })
}

// ---------------------------------------------------------------- scenarios

struct Env {
    opts: Opts,
    clients: Vec<Client>,
    health: Vec<tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>>,
    devices: Vec<Device>,
    pool: Mutex<VecDeque<usize>>,
    sessions: Mutex<Vec<sts::Credentials>>,
    rs: Credentials,
    clock: SharedClock,
    /// In-process runs: the shared clock, moved a step when every device has been used.
    stepper: Option<Arc<SteppingClock>>,
    /// Whether the broker's CPU and RSS can be read (in process, or `LOAD_SERVER_PID`).
    observed: bool,
}

enum Pick {
    Device(usize, i64),
    Dry,
}

impl Env {
    /// The next device with a fresh step (`last + 1 <= current + 1`, inside the ±1 window). When
    /// every device has been used and the clock is ours to move, moves it one step and retries.
    fn pick_device(&self) -> Pick {
        let mut pool = self.pool.lock().unwrap();
        for attempt in 0..2 {
            let now_step = self.clock.unix().div_euclid(30);
            for _ in 0..pool.len() {
                let Some(i) = pool.pop_front() else { break };
                pool.push_back(i);
                let d = &self.devices[i];
                let last = d.last_step.load(Ordering::Relaxed);
                let next = last.max(now_step - 1) + 1;
                if next <= now_step + 1 {
                    d.last_step.store(next, Ordering::Relaxed);
                    return Pick::Device(i, next);
                }
            }
            match &self.stepper {
                Some(c) if attempt == 0 => c.step_forward(),
                _ => break,
            }
        }
        Pick::Dry
    }

    async fn get_session(
        &self,
        client: &Client,
        i: usize,
        step: i64,
    ) -> Result<sts::Credentials, String> {
        let d = &self.devices[i];
        let c = client.with_credentials(d.creds.clone());
        let req = sts::GetSessionTokenRequest {
            duration_seconds: None,
            serial_number: Some(d.serial.clone()),
            token_code: Some(code(&d.seed, step)),
        };
        timed(c.sts().get_session_token(req))
            .await?
            .into_inner()
            .credentials
            .ok_or_else(|| "NoCredentials".into())
    }
}

fn temp_creds(c: &sts::Credentials) -> Credentials {
    Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: Zeroizing::new(c.secret_access_key.clone()),
        session_token: Some(c.session_token.clone()),
    }
}

async fn caller(
    env: Arc<Env>,
    scenario: &'static str,
    task: usize,
    stats: Arc<Stats>,
    start: Instant,
    deadline: Instant,
) {
    let client = env.clients[task % env.clients.len()].clone();
    let mut health = env.health[task % env.health.len()].clone();
    let sessions = env.sessions.lock().unwrap().clone();
    let rs = client.with_credentials(env.rs.clone());
    let mut local = Vec::with_capacity(4096);
    let mut n = task;
    while Instant::now() < deadline {
        n = n.wrapping_add(env.opts.concurrency);
        let t = Instant::now();
        let result = match scenario {
            "noop" => timed(health.check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            }))
            .await
            .map(|_| ()),
            "gst" => match env.pick_device() {
                Pick::Device(i, step) => env.get_session(&client, i, step).await.map(|_| ()),
                Pick::Dry => {
                    if stats.pool_dry.fetch_add(1, Ordering::Relaxed) == 0 {
                        stats
                            .burst_ok
                            .store(stats.ok.load(Ordering::Relaxed), Ordering::Relaxed);
                        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                        stats.burst_end_us.store(us, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            "gci" => {
                let c = client.with_credentials(temp_creds(&sessions[n % sessions.len()]));
                timed(
                    c.sts()
                        .get_caller_identity(sts::GetCallerIdentityRequest {}),
                )
                .await
                .map(|_| ())
            }
            "authz" => {
                let s = &sessions[n % sessions.len()];
                let req = authz::AuthorizeRequest {
                    session_token: s.session_token.clone(),
                    action: "s3:GetObject".into(),
                    resource: "arn:aws:s3:::vault/object".into(),
                    context_entries: vec![],
                    ..Default::default()
                };
                timed(rs.authz().authorize(req)).await.and_then(|r| {
                    if r.into_inner().decision == iam::EvalDecision::Allowed as i32 {
                        Ok(())
                    } else {
                        Err("UnexpectedDecision".into())
                    }
                })
            }
            other => panic!("unknown scenario {other}"),
        };
        stats.record(t, result, &mut local);
    }
    stats.latencies.lock().unwrap().extend(local);
}

async fn run_scenario(env: Arc<Env>, scenario: &'static str) -> Row {
    let stats = Arc::new(Stats::default());
    let steps0 = env.stepper.as_ref().map_or(0, |c| c.steps_moved());
    let (cpu0_s, cpu0_g) = cpu_ticks();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(env.opts.seconds);
    let done = Arc::new(AtomicBool::new(false));
    let progress = {
        let stats = Arc::clone(&stats);
        let done = Arc::clone(&done);
        let observed = env.observed;
        tokio::spawn(async move {
            let mut last = (0u64, cpu_ticks().0, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let ok = stats.ok.load(Ordering::Relaxed);
                let (cpu_s, _) = cpu_ticks();
                let dt = last.2.elapsed().as_secs_f64();
                let server = if observed {
                    format!(
                        ", server CPU {:.0}%, RSS {:.1} MiB",
                        (cpu_s - last.1) as f64 / dt,
                        rss_kib().map_or(0.0, |r| r.0 as f64 / 1024.0)
                    )
                } else {
                    String::new()
                };
                eprintln!(
                    "  [{scenario} {:>4.0}s] ok {ok}, errors {}, {:.0}/s over the last 2 s{server}",
                    start.elapsed().as_secs_f64(),
                    stats.err.load(Ordering::Relaxed),
                    (ok - last.0) as f64 / dt
                );
                last = (ok, cpu_s, Instant::now());
            }
        })
    };
    let tasks: Vec<_> = (0..env.opts.concurrency)
        .map(|t| {
            tokio::spawn(caller(
                Arc::clone(&env),
                scenario,
                t,
                Arc::clone(&stats),
                start,
                deadline,
            ))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    progress.abort();
    let (cpu1_s, cpu1_g) = cpu_ticks();
    let mut lat = std::mem::take(&mut *stats.latencies.lock().unwrap());
    lat.sort_unstable();
    let ok = stats.ok.load(Ordering::Relaxed);
    let mut note = String::new();
    if scenario == "gst"
        && let Some(c) = &env.stepper
    {
        note = format!(
            "each of the {} devices used at most once per step; the shared clock moved {} steps ahead",
            env.devices.len(),
            c.steps_moved() - steps0
        );
    }
    if scenario == "gst" {
        let dry = stats.pool_dry.load(Ordering::Relaxed);
        if dry > 0 {
            let b_ok = stats.burst_ok.load(Ordering::Relaxed);
            let b_s = stats.burst_end_us.load(Ordering::Relaxed) as f64 / 1e6;
            note = format!(
                "device pool ran dry after {b_ok} sessions in {b_s:.2} s (burst {:.0}/s); sustained rate bounded by {} devices / 30 s",
                b_ok as f64 / b_s.max(1e-6),
                env.devices.len()
            );
        }
    }
    Row {
        scenario: scenario.into(),
        seconds,
        ok,
        err: stats.err.load(Ordering::Relaxed),
        p: [
            percentile(&lat, 0.50),
            percentile(&lat, 0.90),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0),
        ],
        errors: std::mem::take(&mut *stats.errors.lock().unwrap()),
        server_cpu: env
            .observed
            .then(|| (cpu1_s - cpu0_s) as f64 / 100.0 / seconds),
        gen_cpu: (cpu1_g - cpu0_g) as f64 / 100.0 / seconds,
        rss_mib: env
            .observed
            .then(|| rss_kib().map_or(0.0, |r| r.0 as f64 / 1024.0)),
        note,
    }
}

// ---------------------------------------------------------------- main

fn main() {
    let opts = Opts::from_env();
    let scenarios: Vec<&'static str> = match opts.scenario.as_str() {
        "all" => vec!["noop", "gst", "gci", "authz"],
        "gst" => vec!["gst"],
        "gci" => vec!["gci"],
        "authz" => vec!["authz"],
        "noop" => vec!["noop"],
        other => panic!("LOAD_SCENARIO must be gst, gci, authz, noop or all, not `{other}`"),
    };
    let stepper = opts
        .endpoint
        .is_none()
        .then(|| Arc::new(SteppingClock::default()));
    let clock: SharedClock = match &stepper {
        Some(c) => Arc::clone(c) as SharedClock,
        None => Arc::new(SystemClock),
    };

    // The broker's own runtime, so its threads can be told apart from the generator's.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sts-broker")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("client runtime");

    let tmp = tempfile::tempdir().expect("tempdir");
    let (endpoint, root, running) = match (&opts.endpoint, &opts.root_file) {
        (Some(ep), Some(file)) => {
            assert!(
                is_loopback(ep),
                "LOAD_ENDPOINT must be a loopback address, not {ep}"
            );
            (ep.clone(), read_credentials_file(file), None)
        }
        (Some(_), None) => {
            panic!("LOAD_ENDPOINT needs LOAD_ROOT_CREDENTIALS (a root credentials file)")
        }
        (None, _) => {
            let data = tmp.path().join("data");
            let config = ServeConfig {
                data_dir: data.clone(),
                listen: "127.0.0.1:0".parse().expect("addr"),
                region: REGION.into(),
                account_id: None,
                tls: None,
                limits: Limits::default(),
                // The `authz` scenario asks about bare session tokens.
                allow_bearer_authorize: true,
            };
            let running = server_rt
                .block_on(server::start(
                    config,
                    Arc::clone(&clock),
                    std::future::pending(),
                ))
                .expect("broker starts");
            let ep = format!("http://{}", running.local_addr);
            (
                ep,
                read_credentials_file(&data.join("root-credentials")),
                Some(running),
            )
        }
    };
    let in_process = running.is_some();
    eprintln!(
        "load: endpoint {endpoint} ({}), {} users, concurrency {}, {} connections, {} s per scenario, scenarios {:?}",
        if in_process {
            "in-process broker, temp data dir"
        } else {
            "external broker"
        },
        opts.users,
        opts.concurrency,
        opts.connections,
        opts.seconds,
        scenarios
    );

    let rows = client_rt.block_on(async {
        let mut clients = Vec::new();
        let mut health = Vec::new();
        for _ in 0..opts.connections {
            clients.push(
                Client::connect(&endpoint, REGION, root.clone())
                    .await
                    .expect("connect")
                    .with_clock(Arc::clone(&clock)),
            );
            let ch = tonic::transport::Endpoint::from_shared(endpoint.clone())
                .expect("endpoint")
                .connect()
                .await
                .expect("connect");
            health.push(tonic_health::pb::health_client::HealthClient::new(ch));
        }

        // Users, keys, policies and devices, prepared concurrently (bounded).
        let t = Instant::now();
        let sem = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.min(64)));
        let mut handles = Vec::new();
        for i in 0..opts.users {
            let root = clients[i % clients.len()].clone();
            let clock = Arc::clone(&clock);
            let sem = Arc::clone(&sem);
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                prepare_user(&root, &clock, i).await
            }));
        }
        let mut devices = Vec::new();
        for h in handles {
            match h.await.expect("task") {
                Ok(d) => devices.push(d),
                Err(e) => panic!("preparing a user failed: {e}"),
            }
        }
        let rs = create_user_with_key(&clients[0], "load-resource-server")
            .await
            .expect("resource server");
        put_policy(&clients[0], "load-resource-server", RS_POLICY)
            .await
            .expect("rs policy");
        eprintln!(
            "load: prepared {} users with enabled devices in {:.1} s",
            devices.len(),
            t.elapsed().as_secs_f64()
        );
        let n = devices.len();
        let env = Arc::new(Env {
            opts: opts.clone(),
            clients,
            health,
            devices,
            pool: Mutex::new((0..n).collect()),
            sessions: Mutex::new(Vec::new()),
            rs,
            clock: Arc::clone(&clock),
            stepper: stepper.clone(),
            observed: in_process || server_pid().is_some(),
        });

        let mut rows = Vec::new();
        for s in &scenarios {
            // MFA-backed temporary credentials for gci/authz (one fresh code each), made just
            // before they are used: a `gst` run may have moved the clock by hours, and the
            // authz policy wants MFA younger than an hour.
            if matches!(*s, "gci" | "authz") && env.sessions.lock().unwrap().is_empty() {
                let want = opts.sessions.min(n);
                let mut sessions = Vec::with_capacity(want);
                while sessions.len() < want {
                    match env.pick_device() {
                        Pick::Device(i, step) => {
                            let s = env
                                .get_session(&env.clients[0], i, step)
                                .await
                                .expect("MFA session for gci/authz");
                            sessions.push(s);
                        }
                        Pick::Dry => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                }
                *env.sessions.lock().unwrap() = sessions;
            }
            eprintln!("load: running {s} for {} s", opts.seconds);
            rows.push(run_scenario(Arc::clone(&env), s).await);
        }
        rows
    });

    if let Some(r) = running {
        let _ = server_rt.block_on(r.shutdown());
    }
    let peak = rss_kib().map(|r| r.1 as f64 / 1024.0);
    let whose = if server_pid().is_some() {
        "of the broker process"
    } else {
        "of the process (broker + generator)"
    };

    println!();
    println!(
        "| scenario | s | ok | errors | ok/s | p50 | p90 | p99 | max | server CPU (cores) | generator CPU (cores) | RSS after (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.2} | {} |",
            r.scenario,
            r.seconds,
            r.ok,
            r.err,
            r.ok as f64 / r.seconds,
            fmt_us(r.p[0]),
            fmt_us(r.p[1]),
            fmt_us(r.p[2]),
            fmt_us(r.p[3]),
            r.server_cpu.map_or("n/a".into(), |c| format!("{c:.2}")),
            r.gen_cpu,
            r.rss_mib.map_or("n/a".into(), |m| format!("{m:.1}")),
        );
    }
    println!();
    for r in &rows {
        if !r.errors.is_empty() {
            println!("errors in {}: {:?}", r.scenario, r.errors);
        }
        if !r.note.is_empty() {
            println!("{}: {}", r.scenario, r.note);
        }
    }
    if let Some(p) = peak {
        println!("peak RSS {whose}: {p:.1} MiB");
    }
    drop(tmp);
    // A run with errors (or a scenario that did nothing) is a failed run: CI's smoke run relies
    // on this exit status.
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.err > 0 || r.ok == 0)
        .map(|r| r.scenario.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("load: errors or no successful call in {failed:?}");
        std::process::exit(1);
    }
}
