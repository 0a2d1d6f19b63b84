//! The command line: `serve`, and client verbs named after the aws CLI's (`sts …`, `iam …`).
//! Output is JSON with AWS's PascalCase member names, as `aws` prints it.

mod cache;
mod configure;
mod credentials;
mod iam;
mod output;
mod session;
mod verbs;

pub use configure::ConfigureArgs;
pub use iam::{BootstrapMethod, ContextEntries, DeviceCodes, IamAction, Simulation};
pub use session::{EXIT_NEED_CODE, SessionArgs, SessionSource, WrapperOutput};

use crate::client::{Client, Credentials};
use crate::clock::SystemClock;
use crate::ids::AccountId;
use crate::proto::authz::v1 as authz;
use crate::proto::sts::v1 as sts;
use crate::server::{self, Limits, ServeConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use verbs::verbs;

/// Exit code for an error answered by the broker (as the aws CLI uses).
pub const EXIT_SERVICE_ERROR: i32 = 254;
/// Exit code for a usage or local error.
pub const EXIT_CLIENT_ERROR: i32 = 255;

/// An error that ends the process with a chosen exit code and message (printed as is).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "sts-broker",
    version,
    about = "A self-hosted temporary-credentials broker modelled on AWS STS and IAM MFA"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Offline, on the broker's host: deactivate the root user's MFA devices and write a fresh root
    /// access key to DIR/root-credentials. Access to the data dir is the proof of authority.
    RecoverRoot {
        #[arg(long, env = "STS_BROKER_DATA_DIR", default_value = "./sts-data")]
        data_dir: PathBuf,
    },
    /// Call the Security Token Service.
    Sts {
        #[command(flatten)]
        client: ClientArgs,
        /// How to print the answer.
        #[arg(long, value_enum, default_value = "json", global = true)]
        output: output::Format,
        #[command(subcommand)]
        action: StsAction,
    },
    /// Call the IAM service.
    Iam {
        #[command(flatten)]
        client: ClientArgs,
        /// How to print the answer.
        #[arg(long, value_enum, default_value = "json", global = true)]
        output: output::Format,
        #[command(subcommand)]
        action: IamAction,
    },
    /// Ask the broker's policy decision point about a session (as a resource server does).
    Authz {
        #[command(flatten)]
        client: ClientArgs,
        /// How to print the answer.
        #[arg(long, value_enum, default_value = "json", global = true)]
        output: output::Format,
        #[command(subcommand)]
        action: AuthzAction,
    },
    /// Get MFA-backed session credentials, prompting for the code once per session (cached).
    ///
    /// Exit codes: 0 ok, 3 an MFA code is needed but cannot be prompted for (--no-prompt, no
    /// terminal), 254 the broker refused, 255 a local error.
    GetSessionToken {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        session: SessionArgs,
        /// How to print the credentials.
        #[arg(long, value_enum, default_value = "json")]
        output: WrapperOutput,
    },
    /// Assume a role, with the same prompt, cache and outputs as get-session-token.
    AssumeRole {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        session: SessionArgs,
        /// The role to assume.
        #[arg(long)]
        role_arn: String,
        /// The role session's name (default: `sts-broker-<unix time>`).
        #[arg(long)]
        role_session_name: Option<String>,
        /// How to print the credentials.
        #[arg(long, value_enum, default_value = "json")]
        output: WrapperOutput,
    },
    /// Print the credential_process JSON, for `credential_process = sts-broker credential-process
    /// --serial-number S` in ~/.aws/config. Prompts only on /dev/tty, if there is one.
    CredentialProcess(SessionSource),
    /// Run COMMAND with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
    /// AWS_CREDENTIAL_EXPIRATION set to a session's (AWS_PROFILE removed).
    ///
    /// The broker process is replaced by COMMAND, so its exit status is the command's own (a
    /// shell shows death by signal N as 128+N). 127: COMMAND not found, 126: not runnable.
    Exec {
        #[command(flatten)]
        from: SessionSource,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<std::ffi::OsString>,
    },
    /// Print the current TOTP code of a base32 seed file (stdout) and the seconds it has left
    /// (stderr).
    Totp {
        #[arg(long, value_name = "FILE")]
        secret_file: PathBuf,
    },
    /// Manage the session cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Who the credentials are, where they came from, and how long cached sessions have left.
    Whoami {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Write a profile to the credentials file.
    Configure(ConfigureArgs),
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Remove every cached session.
    Clear,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the database, master key and root credentials live.
    #[arg(long, env = "STS_BROKER_DATA_DIR", default_value = "./sts-data")]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "STS_BROKER_LISTEN", default_value = "127.0.0.1:4180")]
    pub listen: SocketAddr,
    /// The region callers sign for.
    #[arg(long, env = "STS_BROKER_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The 12-digit account id, used at first start (later starts check it).
    #[arg(long)]
    pub account_id: Option<String>,
    /// PEM certificate chain; enables TLS together with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Let `Authorize` decide on a bare session token, without the client's signed request
    /// (proof of possession). Whoever holds a token can then get decisions about it.
    #[arg(long)]
    pub allow_bearer_authorize: bool,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The broker's URL.
    #[arg(
        long,
        env = "STS_BROKER_ENDPOINT",
        default_value = "http://127.0.0.1:4180",
        global = true
    )]
    pub endpoint: String,
    /// Profile in the credentials file.
    #[arg(long, env = "AWS_PROFILE", global = true)]
    pub profile: Option<String>,
    /// AWS shared-credentials file.
    #[arg(long, global = true)]
    pub credentials_file: Option<PathBuf>,
    /// The region to sign for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", global = true)]
    pub region: String,
}

verbs! {
    enum StsAction;
    fn sts_call(client.sts);

    /// Who am I?
    GetCallerIdentity => get_caller_identity(sts::GetCallerIdentityRequest) {}
    => |r| json!({ "UserId": r.user_id, "Account": r.account, "Arn": r.arn });

    /// Temporary credentials for the caller, MFA-backed when a serial number and code are given.
    GetSessionToken => get_session_token(sts::GetSessionTokenRequest) {
        #[arg(long)] duration_seconds: Option<i32>,
        #[arg(long)] serial_number: Option<String>,
        #[arg(long)] token_code: Option<String>,
    } => |r| json!({ "Credentials": r.credentials.as_ref().map(output::credentials) });

    /// Temporary credentials for a role whose trust policy lets the caller in.
    AssumeRole => assume_role(sts::AssumeRoleRequest) {
        #[arg(long)] role_arn: String,
        #[arg(long)] role_session_name: String,
        #[arg(long)] duration_seconds: Option<i32>,
        #[arg(long)] serial_number: Option<String>,
        #[arg(long)] token_code: Option<String>,
        /// A session policy, inline JSON or `file://PATH`.
        #[arg(long)] policy: Option<verbs::Document>,
    }
    before { let with_policy = policy.is_some(); }
    => |r| {
        let mut v = json!({
            "Credentials": r.credentials.as_ref().map(output::credentials),
            "AssumedRoleUser": r.assumed_role_user.map(|u| json!({
                "AssumedRoleId": u.assumed_role_id,
                "Arn": u.arn,
            })),
        });
        // AWS reports the packed size of a session policy only when one was passed.
        if with_policy {
            v["PackedPolicySize"] = json!(r.packed_policy_size);
        }
        v
    };
}

verbs! {
    enum AuthzAction;
    fn authz_call(client.authz);

    /// May the holder of a session token perform an action on a resource?
    ///
    /// Prints Decision (allowed, explicitDeny or implicitDeny), PrincipalArn, MfaPresent,
    /// MfaAgeSeconds (only when MFA is present) and the MatchedStatements.
    Authorize => authorize(authz::AuthorizeRequest) {
        /// The session token the client presented.
        #[arg(long)] session_token: String,
        /// The IAM action, e.g. `s3:GetObject`.
        #[arg(long)] action: String,
        /// The resource ARN the action is on.
        #[arg(long)] resource: String,
        /// Extra request-context keys, as `iam simulate-custom-policy --context-entries` takes
        /// them: `ContextKeyName=K,ContextKeyValues=V1,V2,ContextKeyType=stringList`.
        #[arg(long, num_args = 1.., value_parser = iam::parse_context_entries)]
        context_entries: Vec<iam::ContextEntries>,
    } fixed { signed_request: None, service: String::new() } => |r| {
        let mut v = json!({
            "Decision": output::decision(r.decision),
            "PrincipalArn": r.principal_arn,
            "MfaPresent": r.mfa_present,
            "MatchedStatements": output::statements(&r.matched_statements),
        });
        if let Some(age) = r.mfa_age_seconds {
            v["MfaAgeSeconds"] = json!(age);
        }
        v
    };
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| 0),
        Command::RecoverRoot { data_dir } => recover_root(data_dir).await.map(|()| 0),
        Command::Sts {
            client,
            output,
            action,
        } => call(client, output, Verb::Sts(action)).await,
        Command::Iam {
            client,
            output,
            action,
        } => call(client, output, Verb::Iam(action)).await,
        Command::Authz {
            client,
            output,
            action,
        } => call(client, output, Verb::Authz(action)).await,
        Command::GetSessionToken {
            client,
            session,
            output,
        } => print_session(&client, &session, None, output).await,
        Command::AssumeRole {
            client,
            session,
            role_arn,
            role_session_name,
            output,
        } => {
            let role = session::Role {
                arn: &role_arn,
                session_name: role_session_name.as_deref(),
            };
            print_session(&client, &session, Some(role), output).await
        }
        Command::CredentialProcess(from) => from.obtain(session::Prompt::IfDevTty).await.map(|s| {
            session::print(&s, WrapperOutput::CredentialProcess);
            0
        }),
        Command::Exec { from, command } => match from.obtain(session::Prompt::IfStdinIsTty).await {
            Ok(s) => session::exec(&s, &from.client.endpoint, &command),
            Err(e) => Err(e),
        },
        Command::Totp { secret_file } => session::totp(&secret_file),
        Command::Cache {
            action: CacheAction::Clear,
        } => session::cache_clear(),
        Command::Whoami { client } => session::whoami(&client).await,
        Command::Configure(args) => configure::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let (code, message) = session::exit_code(&e);
            eprintln!("{message}");
            code
        }
    }
}

/// `get-session-token` and `assume-role`: a session (prompting on a terminal), printed.
async fn print_session(
    client: &ClientArgs,
    session: &SessionArgs,
    role: Option<session::Role<'_>>,
    output: WrapperOutput,
) -> anyhow::Result<i32> {
    let s = session::obtain(client, session, role, session::Prompt::IfStdinIsTty).await?;
    session::print(&s, output);
    Ok(0)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let account_id = args
        .account_id
        .as_deref()
        .map(AccountId::parse)
        .transpose()
        .context("--account-id")?;
    let tls = args.tls_cert.zip(args.tls_key);
    let config = ServeConfig {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        region: args.region,
        account_id,
        tls: tls.clone(),
        limits: Limits::default(),
        allow_bearer_authorize: args.allow_bearer_authorize,
    };
    let running =
        server::start(config, Arc::new(SystemClock), server::termination_signal()).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        listen = %running.local_addr,
        data_dir = %args.data_dir.display(),
        account = %running.broker.account(),
        "sts-broker serving on {scheme}://{}",
        running.local_addr
    );
    if let Some(first) = &running.first_start {
        tracing::info!(
            root_access_key_id = %first.root_access_key_id,
            file = %first.root_credentials_path.display(),
            "first start: root credentials written"
        );
    }
    running
        .wait()
        .await
        .context("server stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

async fn recover_root(dir: PathBuf) -> anyhow::Result<()> {
    use crate::broker::{Broker, BrokerSettings};
    let d = dir.clone();
    let opened = tokio::task::spawn_blocking(move || crate::datadir::open_existing(&d)).await??;
    let store: Arc<dyn crate::domain::Store> = opened.store.clone();
    let sessions = {
        let (store, master) = (Arc::clone(&store), Arc::clone(&opened.master));
        let now = crate::clock::Clock::now(&SystemClock);
        tokio::task::spawn_blocking(move || {
            crate::broker::SessionKeys::load(store.as_ref(), &master, now)
        })
        .await?
        .map_err(anyhow::Error::msg)?
    };
    let account = opened.account.clone();
    let handle = Broker::start(
        store,
        opened.master,
        Arc::new(SystemClock),
        opened.account,
        BrokerSettings::new("us-east-1"),
        sessions,
    );
    let recovered = handle.broker().recover_root().await;
    handle.shutdown().await;
    let r = recovered?;
    let now = crate::clock::Clock::now(&SystemClock);
    let path = crate::datadir::replace_root_credentials(
        &dir,
        &r.access_key_id,
        &r.secret_access_key,
        now,
    )?;
    println!("root recovered for account {}", account);
    for serial in &r.deactivated_devices {
        println!("deactivated MFA device {serial}");
    }
    if let Some(k) = &r.deleted_key {
        println!("deleted the oldest root access key {k} to make room");
    }
    println!(
        "new root access key {} written to {}",
        r.access_key_id,
        path.display()
    );
    println!("restart a running broker so it sees the change");
    Ok(())
}

enum Verb {
    Sts(StsAction),
    Iam(IamAction),
    Authz(AuthzAction),
}

/// The AWS operation name, e.g. `EnableMFADevice` for `IamAction::EnableMfaDevice`.
fn operation_name(verb: &Verb) -> String {
    let debug = match verb {
        Verb::Sts(a) => format!("{a:?}"),
        Verb::Iam(a) => format!("{a:?}"),
        Verb::Authz(a) => format!("{a:?}"),
    };
    debug
        .split([' ', '{'])
        .next()
        .unwrap_or_default()
        .replace("Mfa", "MFA")
}

async fn call(args: ClientArgs, format: output::Format, verb: Verb) -> anyhow::Result<i32> {
    let (creds, source): (Credentials, String) =
        credentials::resolve(args.profile.as_deref(), args.credentials_file.as_deref())?;
    tracing::debug!(source = %source, "credentials");
    let client = Client::connect(&args.endpoint, &args.region, creds).await?;
    let op = operation_name(&verb);
    let result = match verb {
        Verb::Sts(a) => sts_call(&client, a).await,
        Verb::Iam(a) => iam::call(&client, a).await,
        Verb::Authz(a) => authz_call(&client, a).await,
    };
    match result {
        // Operations with an empty output print nothing, as aws does.
        Ok(None) => Ok(0),
        Ok(Some(value)) => {
            print!("{}", output::render(&op, &value, format));
            Ok(0)
        }
        Err(CallError::Status(s)) => {
            eprintln!("{}", output::describe_status(&op, &s));
            Ok(EXIT_SERVICE_ERROR)
        }
        Err(CallError::Local(e)) => Err(e),
    }
}

pub(crate) enum CallError {
    Status(tonic::Status),
    Local(anyhow::Error),
}

impl From<tonic::Status> for CallError {
    fn from(s: tonic::Status) -> Self {
        Self::Status(s)
    }
}

impl From<crate::client::ClientError> for CallError {
    fn from(e: crate::client::ClientError) -> Self {
        Self::Local(e.into())
    }
}

/// A policy document given inline or as `file://PATH`, as aws takes them.
pub(super) fn read_document(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy document `{path}`")),
        None => Ok(arg.to_owned()),
    }
}
