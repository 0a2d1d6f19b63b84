//! The command line: `serve`, and client verbs named after the aws CLI's (`sts …`, `iam …`).
//! Output is JSON with AWS's PascalCase member names, as `aws` prints it.

mod credentials;
mod iam;
mod output;

pub use iam::{BootstrapMethod, DeviceCodes, IamAction};

use crate::client::{Client, Credentials};
use crate::clock::SystemClock;
use crate::ids::AccountId;
use crate::proto::sts::v1 as sts;
use crate::server::{self, Limits, ServeConfig};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Exit code for an error answered by the broker (as the aws CLI uses).
pub const EXIT_SERVICE_ERROR: i32 = 254;
/// Exit code for a usage or local error.
pub const EXIT_CLIENT_ERROR: i32 = 255;

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
        #[command(subcommand)]
        action: StsAction,
    },
    /// Call the IAM service.
    Iam {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        action: IamAction,
    },
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

#[derive(Debug, Subcommand)]
pub enum StsAction {
    /// Who am I?
    GetCallerIdentity,
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Serve(args) => serve(args).await.map(|()| 0),
        Command::RecoverRoot { data_dir } => recover_root(data_dir).await.map(|()| 0),
        Command::Sts { client, action } => call(client, Verb::Sts(action)).await,
        Command::Iam { client, action } => call(client, Verb::Iam(action)).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_CLIENT_ERROR
        }
    }
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
    use crate::broker::{Broker, BrokerSettings, audit::AuditSink};
    let d = dir.clone();
    let opened = tokio::task::spawn_blocking(move || crate::datadir::open_existing(&d)).await??;
    let store: Arc<dyn crate::store::Store> = opened.store.clone();
    let sessions = {
        let (store, master) = (Arc::clone(&store), Arc::clone(&opened.master));
        let now = crate::clock::Clock::now(&SystemClock);
        tokio::task::spawn_blocking(move || {
            crate::broker::SessionKeys::load(store.as_ref(), &master, now)
        })
        .await?
        .map_err(anyhow::Error::msg)?
    };
    let (audit, audit_thread) = AuditSink::start(Arc::clone(&store));
    let account = opened.account.clone();
    let broker = Broker::new(
        store,
        opened.master,
        Arc::new(SystemClock),
        opened.account,
        BrokerSettings::new("us-east-1"),
        audit,
        sessions,
    );
    let r = broker.recover_root().await?;
    let now = crate::clock::Clock::now(&SystemClock);
    let path = crate::datadir::replace_root_credentials(
        &dir,
        &r.access_key_id,
        &r.secret_access_key,
        now,
    )?;
    broker.close_audit().await;
    let _ = tokio::task::spawn_blocking(move || audit_thread.join()).await;
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
}

/// The AWS operation name, e.g. `EnableMFADevice` for `IamAction::EnableMfaDevice`.
fn operation_name(verb: &Verb) -> String {
    let debug = match verb {
        Verb::Sts(a) => format!("{a:?}"),
        Verb::Iam(a) => format!("{a:?}"),
    };
    debug
        .split([' ', '{'])
        .next()
        .unwrap_or_default()
        .replace("Mfa", "MFA")
}

async fn call(args: ClientArgs, verb: Verb) -> anyhow::Result<i32> {
    let (creds, source): (Credentials, String) =
        credentials::resolve(args.profile.as_deref(), args.credentials_file.as_deref())?;
    tracing::debug!(source = %source, "credentials");
    let client = Client::connect(&args.endpoint, &args.region, creds).await?;
    let op = operation_name(&verb);
    let result = match verb {
        Verb::Sts(a) => sts_call(&client, a).await.map(Some),
        Verb::Iam(a) => iam::call(&client, a).await,
    };
    match result {
        // Operations with an empty output print nothing, as aws does.
        Ok(None) => Ok(0),
        Ok(Some(value)) => {
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(0)
        }
        Err(CallError::Status(s)) => {
            eprintln!("{}", output::describe_status(&op, &s));
            Ok(EXIT_SERVICE_ERROR)
        }
        Err(CallError::Local(e)) => Err(e),
    }
}

enum CallError {
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

async fn sts_call(c: &Client, action: StsAction) -> Result<serde_json::Value, CallError> {
    match action {
        StsAction::GetCallerIdentity => {
            let r = c
                .sts()
                .get_caller_identity(c.signed(
                    "/sts.v1.SecurityTokenService/GetCallerIdentity",
                    sts::GetCallerIdentityRequest {},
                )?)
                .await?
                .into_inner();
            Ok(json!({ "UserId": r.user_id, "Account": r.account, "Arn": r.arn }))
        }
    }
}
