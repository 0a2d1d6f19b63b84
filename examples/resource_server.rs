//! A resource server protected by the broker: `GET /reports/{name}` answers only clients whose
//! session may `s3:GetObject` on `arn:aws:s3:::reports/{name}`.
//!
//! Clients sign their requests with their session credentials for service `s3` (AWS SigV4,
//! e.g. botocore's `S3SigV4Auth`, README.md "Protecting your own service"); this server forwards
//! each request to the broker's `Authorize` (`sts_broker::resource`), which checks the signature
//! with the session's own secret before it decides.
//!
//! ```text
//! AWS_ACCESS_KEY_ID=AKIA... AWS_SECRET_ACCESS_KEY=... \
//! STS_BROKER_ENDPOINT=http://127.0.0.1:4180 RESOURCE_LISTEN=127.0.0.1:8080 \
//!     cargo run --example resource_server
//! ```
//!
//! The access key is the resource server's own, of a user allowed `sts:Authorize`.

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::get;
use sts_broker::client::{Client, Credentials};
use sts_broker::resource::Authorizer;
use zeroize::Zeroizing;

/// The largest body this server reads before asking the broker.
const MAX_BODY: usize = 1 << 20;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `GET /reports/{name}`: the report, when the broker allows it.
async fn report(State(authorizer): State<Authorizer>, request: Request) -> (StatusCode, String) {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n".into());
    };
    let name = parts.uri.path().trim_start_matches("/reports/");
    let resource = format!("arn:aws:s3:::reports/{name}");
    match authorizer
        .authorize(&parts, &body, "s3:GetObject", &resource, vec![])
        .await
    {
        Ok(answer) => (
            StatusCode::OK,
            format!("report {name} for {}\n", answer.principal_arn),
        ),
        Err(refusal) => {
            eprintln!("refused {resource}: {refusal}");
            (refusal.http_status(), format!("{refusal}\n"))
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let credentials = Credentials {
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID")?,
        secret_access_key: Zeroizing::new(
            std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY")?,
        ),
        session_token: None,
    };
    let endpoint = env_or("STS_BROKER_ENDPOINT", "http://127.0.0.1:4180");
    let region = env_or("STS_BROKER_REGION", "us-east-1");
    let client = Client::connect(&endpoint, &region, credentials).await?;
    let app = axum::Router::new()
        .route("/reports/{name}", get(report))
        .with_state(Authorizer::new(client, "s3"));
    let listen = env_or("RESOURCE_LISTEN", "127.0.0.1:8080");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("resource server on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
