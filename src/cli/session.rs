//! The wrapper verbs for people and CI jobs: `get-session-token`, `assume-role`, `exec`,
//! `credential-process`, `totp`, `cache clear` and `whoami`.
//!
//! A session is taken from the cache when one for the same (endpoint, access key, MFA serial,
//! role) has more than five minutes left; otherwise the MFA code comes from `--token-code`,
//! `--token-code-from-env`, `--totp-secret-file` or a prompt on the terminal, in that order, and
//! the new session is cached. Secrets are printed only by the outputs asked for; codes never.

use super::{ClientArgs, EXIT_CLIENT_ERROR, EXIT_SERVICE_ERROR, Exit, cache, credentials, output};
use crate::client::Client;
use crate::mfa::{Seed, TotpParams, code_at, step_for};
use crate::proto::sts::v1 as sts;
use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Exit code when an MFA code is needed but none can be had without a prompt, and prompting is
/// not possible (`--no-prompt`, no terminal) — so CI jobs fail fast instead of hanging.
pub const EXIT_NEED_CODE: i32 = 3;

/// How the wrapper verbs get a session.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The MFA device's serial number or ARN (default: the profile's `mfa_serial`).
    #[arg(long)]
    pub serial_number: Option<String>,
    /// The code the MFA device shows now.
    #[arg(long, group = "code_source")]
    pub token_code: Option<String>,
    /// Read the code from environment variable VAR.
    #[arg(long, value_name = "VAR", group = "code_source")]
    pub token_code_from_env: Option<String>,
    /// Compute the code from the device's base32 seed in FILE (for CI: the seed is then a second
    /// copy of the factor, held as a CI secret — weaker than a person's device; see the README).
    #[arg(long, value_name = "FILE", group = "code_source")]
    pub totp_secret_file: Option<PathBuf>,
    /// How long the session lasts.
    #[arg(long)]
    pub duration_seconds: Option<i32>,
    /// Never prompt: fail with exit code 3 if a code is needed and not given.
    #[arg(long)]
    pub no_prompt: bool,
    /// Neither read nor write the session cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// Where `credential-process` and `exec` get their session: the broker and the profile, how the
/// MFA code is had, and the role to assume, if any.
#[derive(Debug, Args)]
pub struct SessionSource {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub session: SessionArgs,
    /// Assume this role (AssumeRole) instead of getting a session token.
    #[arg(long)]
    pub role_arn: Option<String>,
    /// The role session's name (default: `sts-broker-<unix time>`).
    #[arg(long, requires = "role_arn")]
    pub role_session_name: Option<String>,
}

impl SessionSource {
    /// [`obtain`] with these arguments.
    pub async fn obtain(&self, prompt: Prompt) -> anyhow::Result<Session> {
        let role = self.role_arn.as_deref().map(|arn| Role {
            arn,
            session_name: self.role_session_name.as_deref(),
        });
        obtain(&self.client, &self.session, role, prompt).await
    }
}

/// A role to assume instead of getting a session token.
#[derive(Debug, Clone, Copy)]
pub struct Role<'a> {
    pub arn: &'a str,
    /// The role session's name (default: `sts-broker-<unix time>`).
    pub session_name: Option<&'a str>,
}

/// `--output` of `get-session-token` and `assume-role`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum WrapperOutput {
    /// `{"Credentials": {...}}` as `aws sts get-session-token` prints it.
    #[default]
    Json,
    /// `export AWS_ACCESS_KEY_ID=...` lines for `eval`.
    Env,
    /// The `credential_process` JSON (Version 1).
    CredentialProcess,
}

/// Where a prompt may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Only when stdin is a terminal (a person at a shell).
    IfStdinIsTty,
    /// Whenever the process has a controlling terminal: SDKs run `credential_process` with stdin
    /// and stdout captured, but the person is still at /dev/tty.
    IfDevTty,
}

/// Temporary credentials.
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Unix seconds.
    pub expiration: i64,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `11h 59m`, `42m`, `0m`.
pub fn human(secs: i64) -> String {
    let m = secs.max(0) / 60;
    if m >= 60 {
        format!("{}h {}m", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

fn need_code(serial: &str, why: &str) -> anyhow::Error {
    Exit {
        code: EXIT_NEED_CODE,
        message: format!(
            "an MFA code for {serial} is needed and {why}: pass --token-code, \
             --token-code-from-env VAR or --totp-secret-file FILE (exit code {EXIT_NEED_CODE})"
        ),
    }
    .into()
}

fn valid_code(c: &str) -> bool {
    matches!(c.len(), 6 | 8) && c.bytes().all(|b| b.is_ascii_digit())
}

/// The current code of the base32 seed in `file`, and the seconds left in its step.
pub fn code_from_seed_file(file: &std::path::Path) -> anyhow::Result<(Zeroizing<String>, u64)> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file)
            .with_context(|| format!("cannot read TOTP secret file `{}`", file.display()))?,
    );
    let seed = Seed::from_base32(&text).map_err(|e| {
        anyhow::anyhow!(
            "TOTP secret file `{}` does not hold a base32 seed: {e}",
            file.display()
        )
    })?;
    let params = TotpParams::AWS;
    let t = u64::try_from(now()).unwrap_or(0);
    let code = code_at(&seed, &params, step_for(t, params.period));
    let period = params.period.as_secs();
    Ok((Zeroizing::new(code.expose_code()), period - t % period))
}

/// The MFA code, from the flags or a prompt.
fn token_code(s: &SessionArgs, serial: &str, prompt: Prompt) -> anyhow::Result<Zeroizing<String>> {
    if let Some(c) = &s.token_code {
        return Ok(Zeroizing::new(c.clone()));
    }
    if let Some(var) = &s.token_code_from_env {
        return match std::env::var(var) {
            Ok(c) if !c.trim().is_empty() => Ok(Zeroizing::new(c.trim().to_owned())),
            _ => Err(need_code(
                serial,
                &format!("environment variable {var} is unset or empty"),
            )),
        };
    }
    if let Some(f) = &s.totp_secret_file {
        return code_from_seed_file(f).map(|(c, _)| c);
    }
    if s.no_prompt {
        return Err(need_code(serial, "--no-prompt was given"));
    }
    if prompt == Prompt::IfStdinIsTty && !std::io::stdin().is_terminal() {
        return Err(need_code(serial, "stdin is not a terminal to prompt on"));
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| need_code(serial, "there is no terminal to prompt on"))?;
    let mut w = &tty;
    write!(w, "Enter MFA code for {serial}: ").context("cannot prompt on /dev/tty")?;
    w.flush().ok();
    let mut line = Zeroizing::new(String::new());
    BufReader::new(&tty)
        .read_line(&mut line)
        .context("cannot read the MFA code from /dev/tty")?;
    let code = Zeroizing::new(line.trim().to_owned());
    if code.is_empty() {
        return Err(need_code(serial, "none was entered"));
    }
    if !valid_code(&code) {
        anyhow::bail!("an MFA code is 6 digits (some hardware tokens: 8)");
    }
    Ok(code)
}

fn status_exit(op: &str, s: &tonic::Status) -> anyhow::Error {
    Exit {
        code: EXIT_SERVICE_ERROR,
        message: output::describe_status(op, s),
    }
    .into()
}

/// `status_exit`, plus a hint when a code computed from a seed file was refused: the usual cause
/// is that this step's code was already spent (by enabling the device, or by another job sharing
/// the seed), and every code is accepted once.
fn code_refused_exit(op: &str, st: &tonic::Status, args: &SessionArgs) -> anyhow::Error {
    let mut message = output::describe_status(op, st);
    if args.totp_secret_file.is_some() && st.message().contains("one time pass code") {
        let period = TotpParams::AWS.period.as_secs();
        let left = period - u64::try_from(now()).unwrap_or(0) % period;
        message.push_str(&format!(
            "\nsts-broker: each code is accepted once; if this step's code was already used \
             (enabling the device, another job with the same seed), try again in {left} s"
        ));
    }
    Exit {
        code: EXIT_SERVICE_ERROR,
        message,
    }
    .into()
}

/// A session for the caller: from the cache if a good one is there, else from the broker.
pub async fn obtain(
    client: &ClientArgs,
    s: &SessionArgs,
    role: Option<Role<'_>>,
    prompt: Prompt,
) -> anyhow::Result<Session> {
    let resolved = credentials::resolve_full(
        client.profile.as_deref(),
        client.credentials_file.as_deref(),
    )?;
    let serial = s.serial_number.clone().or(resolved.mfa_serial.clone());
    let key = cache::Key {
        endpoint: client.endpoint.clone(),
        access_key_id: resolved.credentials.access_key_id.clone(),
        serial_number: serial.clone(),
        role_arn: role.map(|r| r.arn.to_owned()),
    };
    if !s.no_cache
        && let Some(e) = cache::load(&key, now())
    {
        eprintln!(
            "sts-broker: using cached session (expires in {})",
            human(e.expiration - now())
        );
        return Ok(Session {
            access_key_id: e.access_key_id.clone(),
            secret_access_key: Zeroizing::new(e.secret_access_key.clone()),
            session_token: Zeroizing::new(e.session_token.clone()),
            expiration: e.expiration,
        });
    }
    let code = match &serial {
        Some(serial) => Some(token_code(s, serial, prompt)?),
        None => None,
    };
    let c = Client::connect(
        &client.endpoint,
        &client.region,
        resolved.credentials.clone(),
    )
    .await?;
    let token_code = code.as_ref().map(|c| c.to_string());
    let (op, answer) = match role {
        None => {
            let req = sts::GetSessionTokenRequest {
                duration_seconds: s.duration_seconds,
                serial_number: serial.clone(),
                token_code,
            };
            let answer = c.sts().get_session_token(req).await;
            (
                "GetSessionToken",
                answer.map(|r| r.into_inner().credentials),
            )
        }
        Some(role) => {
            let req = sts::AssumeRoleRequest {
                role_arn: role.arn.to_owned(),
                role_session_name: role
                    .session_name
                    .map_or_else(|| format!("sts-broker-{}", now()), str::to_owned),
                duration_seconds: s.duration_seconds,
                serial_number: serial.clone(),
                token_code,
                policy: None,
            };
            let answer = c.sts().assume_role(req).await;
            ("AssumeRole", answer.map(|r| r.into_inner().credentials))
        }
    };
    let creds = answer
        .map_err(|e| code_refused_exit(op, &e, s))?
        .context("the broker's answer has no credentials")?;
    let session = Session {
        access_key_id: creds.access_key_id.clone(),
        secret_access_key: Zeroizing::new(creds.secret_access_key.clone()),
        session_token: Zeroizing::new(creds.session_token.clone()),
        expiration: creds.expiration.map(|t| t.seconds).unwrap_or_default(),
    };
    eprintln!(
        "sts-broker: new session (expires in {})",
        human(session.expiration - now())
    );
    if !s.no_cache {
        let entry = cache::Entry {
            endpoint: client.endpoint.clone(),
            source_access_key_id: key.access_key_id.clone(),
            serial_number: key.serial_number.clone(),
            role_arn: key.role_arn.clone(),
            access_key_id: session.access_key_id.clone(),
            secret_access_key: session.secret_access_key.to_string(),
            session_token: session.session_token.to_string(),
            expiration: session.expiration,
        };
        if let Err(e) = cache::store(&key, &entry) {
            eprintln!("sts-broker: warning: session not cached: {e:#}");
        }
    }
    Ok(session)
}

/// Single-quotes `v` for a POSIX shell.
fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// The `credential_process` JSON: exactly Version, AccessKeyId, SecretAccessKey, SessionToken and
/// Expiration (RFC 3339, UTC, `Z`).
/// Members in the order AWS documents them.
pub fn credential_process_json(s: &Session) -> String {
    let q = |v: &str| serde_json::Value::from(v).to_string();
    format!(
        r#"{{"Version":1,"AccessKeyId":{},"SecretAccessKey":{},"SessionToken":{},"Expiration":{}}}"#,
        q(&s.access_key_id),
        q(&s.secret_access_key),
        q(&s.session_token),
        q(&output::time_z(s.expiration)),
    )
}

/// Prints `s` in `format` on stdout.
pub fn print(s: &Session, format: WrapperOutput) {
    let text = Zeroizing::new(match format {
        WrapperOutput::Json => {
            let v = json!({ "Credentials": {
                "AccessKeyId": s.access_key_id,
                "SecretAccessKey": s.secret_access_key.as_str(),
                "SessionToken": s.session_token.as_str(),
                "Expiration": output::time(Some(&prost_types::Timestamp {
                    seconds: s.expiration,
                    nanos: 0,
                })),
            }});
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        WrapperOutput::Env => [
            ("AWS_ACCESS_KEY_ID", s.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", s.secret_access_key.as_str()),
            ("AWS_SESSION_TOKEN", s.session_token.as_str()),
            ("AWS_CREDENTIAL_EXPIRATION", &output::time_z(s.expiration)),
        ]
        .iter()
        .map(|(k, v)| format!("export {k}={}", shell_quote(v)))
        .collect::<Vec<_>>()
        .join("\n"),
        WrapperOutput::CredentialProcess => credential_process_json(s),
    });
    println!("{}", text.as_str());
}

/// `exec`: replaces this process with `command`, its environment carrying the session (as
/// aws-vault does on Unix), so the command's exit status and signals are its own. Returns only if
/// the command cannot be started: 127 if it is not found, else 126 (as shells do).
pub fn exec(s: &Session, endpoint: &str, command: &[OsString]) -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("no command given: sts-broker exec [OPTIONS] -- COMMAND [ARGS...]");
    };
    let err = std::process::Command::new(program)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env_remove("AWS_SECURITY_TOKEN")
        .env("AWS_ACCESS_KEY_ID", &s.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", s.secret_access_key.as_str())
        .env("AWS_SESSION_TOKEN", s.session_token.as_str())
        .env("AWS_CREDENTIAL_EXPIRATION", output::time_z(s.expiration))
        .env("STS_BROKER_ENDPOINT", endpoint)
        .exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    Err(Exit {
        code,
        message: format!("cannot run `{}`: {err}", program.to_string_lossy()),
    }
    .into())
}

/// `totp --secret-file F`: the current code on stdout, the seconds it has left on stderr.
pub fn totp(file: &std::path::Path) -> anyhow::Result<i32> {
    let (code, left) = code_from_seed_file(file)?;
    println!("{}", code.as_str());
    eprintln!("valid for {left} more seconds");
    Ok(0)
}

/// `whoami`: the caller's identity, the credential source, and cached sessions' time left.
pub async fn whoami(client: &ClientArgs) -> anyhow::Result<i32> {
    let r = credentials::resolve_full(
        client.profile.as_deref(),
        client.credentials_file.as_deref(),
    )?;
    let akid = r.credentials.access_key_id.clone();
    let temporary = r.credentials.session_token.is_some();
    let c = Client::connect(&client.endpoint, &client.region, r.credentials).await?;
    let id = c
        .sts()
        .get_caller_identity(sts::GetCallerIdentityRequest {})
        .await
        .map_err(|e| status_exit("GetCallerIdentity", &e))?
        .into_inner();
    println!("Arn:     {}", id.arn);
    println!("UserId:  {}", id.user_id);
    println!("Account: {}", id.account);
    println!("Source:  {} (access key {akid})", r.source);
    if temporary {
        let left = std::env::var("AWS_CREDENTIAL_EXPIRATION")
            .ok()
            .and_then(|e| {
                time::OffsetDateTime::parse(&e, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| format!(", expires in {}", human(t.unix_timestamp() - now())))
            .unwrap_or_default();
        println!("Session: these are temporary credentials{left}");
    }
    let t = now();
    let mut cached: Vec<_> = cache::all()
        .into_iter()
        .filter(|e| {
            e.source_access_key_id == akid
                && e.endpoint.trim_end_matches('/') == client.endpoint.trim_end_matches('/')
                && e.expiration > t
        })
        .collect();
    cached.sort_by_key(|e| e.expiration);
    for e in &cached {
        let what = match (&e.role_arn, &e.serial_number) {
            (Some(r), _) => format!("role {r}"),
            (None, Some(s)) => format!("MFA device {s}"),
            (None, None) => "no MFA".to_owned(),
        };
        let note = if e.expiration - cache::REFRESH_MARGIN_SECS <= t {
            " — too close to expiry to be reused"
        } else {
            ""
        };
        println!(
            "Cached:  session {} ({what}) expires {} (in {}){note}",
            e.access_key_id,
            output::time_z(e.expiration),
            human(e.expiration - t)
        );
    }
    if cached.is_empty() && !temporary {
        println!("Cached:  no session (run `sts-broker get-session-token`)");
    }
    Ok(0)
}

/// `cache clear`.
pub fn cache_clear() -> anyhow::Result<i32> {
    let n = cache::clear()?;
    eprintln!("removed {n} cached session(s)");
    Ok(0)
}

/// Turns an exit-carrying error into its code (used by `run`).
pub fn exit_code(e: &anyhow::Error) -> (i32, String) {
    match e.downcast_ref::<Exit>() {
        Some(x) => (x.code, x.message.clone()),
        None => (EXIT_CLIENT_ERROR, format!("error: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_and_minutes() {
        assert_eq!(human(43_140), "11h 59m");
        assert_eq!(human(2_530), "42m");
        assert_eq!(human(-5), "0m");
    }

    #[test]
    fn env_values_are_shell_quoted() {
        assert_eq!(shell_quote("a/b+c"), "'a/b+c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn credential_process_json_has_exactly_the_five_members() {
        let s = Session {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("secret".into()),
            session_token: Zeroizing::new("token".into()),
            expiration: 1_795_822_113,
        };
        assert_eq!(
            credential_process_json(&s),
            r#"{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"secret","SessionToken":"token","Expiration":"2026-11-27T23:28:33Z"}"#
        );
    }
}
