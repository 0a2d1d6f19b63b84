//! Issue 12 defect 6: `Authorize` with proof of possession. A resource server forwards the
//! client's SigV4-signed HTTP request; the broker checks it with the session's own secret and
//! the five-minute rule before it decides, and refuses a bare token unless told otherwise.

use crate::helpers::*;
use crate::mfa::{Person, person};
use http_body_util::BodyExt;
use sts_broker::client::{Client, Credentials};
use sts_broker::clock::Clock;
use sts_broker::proto::authz::v1 as authz;
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use sts_broker::sigv4::{self, HttpSignParams};
use tonic::Code;
use tonic_types::StatusExt;
use zeroize::Zeroizing;

const READ_REPORTS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadReports","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::reports/*"}]}"#;
const MAY_AUTHORIZE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:Authorize","Resource":"*"}]}"#;
const HOST: &str = "files.example:8080";
const Q3: &str = "arn:aws:s3:::reports/q3.csv";

/// A broker with alice (may read `reports/*`) and a resource server allowed `sts:Authorize`.
struct Setup {
    app: TestApp,
    alice: Person,
    rs: Client,
}

async fn setup_on(app: TestApp) -> Setup {
    let alice = person(&app, "alice").await;
    put_user_policy(&app.client, "alice", "read", READ_REPORTS).await;
    let rs = person(&app, "resource-server").await;
    put_user_policy(&app.client, "resource-server", "authz", MAY_AUTHORIZE).await;
    let rs = app.as_(&rs.creds);
    Setup { app, alice, rs }
}

async fn setup() -> Setup {
    setup_on(spawn_app().await).await
}

async fn session_of(app: &TestApp, p: &Person) -> Credentials {
    let c = app
        .as_(&p.creds)
        .sts()
        .get_session_token(sts::GetSessionTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap();
    session_credentials(&c)
}

/// What a client sends to the resource server: `GET /reports/q3.csv` for service `s3`, signed
/// the way botocore's `S3SigV4Auth` signs (payload hash sent as `x-amz-content-sha256`).
struct ClientRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn signed_get(app: &TestApp, creds: &Credentials, secret: &str, path: &str) -> ClientRequest {
    let body = Vec::new();
    let hash = sigv4::sha256_hex(&body);
    let headers = [("x-amz-content-sha256", hash.as_str())];
    let signed = sigv4::sign_http(&HttpSignParams {
        access_key_id: &creds.access_key_id,
        secret_access_key: secret.as_bytes(),
        session_token: creds.session_token.as_deref(),
        region: "us-east-1",
        service: "s3",
        method: "GET",
        host: HOST,
        path,
        query: "versionId=3",
        headers: &headers,
        payload_sha256: &hash,
        time: time::OffsetDateTime::from_unix_timestamp(app.clock.unix()).unwrap(),
    })
    .unwrap();
    let mut headers = vec![
        ("Host".to_owned(), HOST.to_owned()),
        ("X-Amz-Date".to_owned(), signed.x_amz_date),
        ("X-Amz-Content-SHA256".to_owned(), hash),
        ("Authorization".to_owned(), signed.authorization),
        ("User-Agent".to_owned(), "not signed".to_owned()),
    ];
    if let Some(t) = signed.x_amz_security_token {
        headers.push(("X-Amz-Security-Token".to_owned(), t));
    }
    ClientRequest {
        method: "GET".into(),
        path: path.into(),
        query: "versionId=3".into(),
        headers,
        body,
    }
}

/// `GET /reports/q3.csv` signed with the credentials' own secret.
fn q3(app: &TestApp, creds: &Credentials) -> ClientRequest {
    signed_get(app, creds, &creds.secret_access_key, "/reports/q3.csv")
}

/// `GET /reports/q3.csv` in the name of `creds`, signed with `secret`.
fn q3_signed_with(app: &TestApp, creds: &Credentials, secret: &str) -> ClientRequest {
    signed_get(app, creds, secret, "/reports/q3.csv")
}

impl ClientRequest {
    fn set_header(&mut self, name: &str, value: &str) {
        let h = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap();
        h.1 = value.to_owned();
    }

    fn forwarded(&self) -> authz::SignedRequest {
        authz::SignedRequest {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| authz::Header {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
            payload_sha256: sigv4::sha256_hex(&self.body),
        }
    }
}

async fn authorize_signed(
    rs: &Client,
    req: &ClientRequest,
    resource: &str,
) -> Result<authz::AuthorizeResponse, tonic::Status> {
    let r = authz::AuthorizeRequest {
        action: "s3:GetObject".into(),
        resource: resource.into(),
        signed_request: Some(req.forwarded()),
        service: "s3".into(),
        ..Default::default()
    };
    rs.authz().authorize(r).await.map(|r| r.into_inner())
}

async fn authorize_bearer(
    rs: &Client,
    token: &str,
) -> Result<authz::AuthorizeResponse, tonic::Status> {
    let r = authz::AuthorizeRequest {
        session_token: token.into(),
        action: "s3:GetObject".into(),
        resource: Q3.into(),
        ..Default::default()
    };
    rs.authz().authorize(r).await.map(|r| r.into_inner())
}

/// Whether the status says the failure is about the client's request (ErrorInfo metadata).
fn about_subject(s: &tonic::Status) -> bool {
    s.get_details_error_info()
        .is_some_and(|i| i.metadata.get("subject").map(String::as_str) == Some("true"))
}

/// Asserts a refusal about the subject with `code` and AWS `reason`.
#[track_caller]
fn assert_subject_error<T: std::fmt::Debug>(
    r: Result<T, tonic::Status>,
    code: Code,
    reason: &str,
) -> tonic::Status {
    let s = assert_error(r, code, reason);
    assert!(about_subject(&s), "not marked as the subject's: {s:?}");
    s
}

/// Asserts that `Authorize` of `s3:GetObject` on the report is refused for the subject.
async fn assert_q3_refused(
    s: &Setup,
    req: &ClientRequest,
    code: Code,
    reason: &str,
) -> tonic::Status {
    assert_subject_error(authorize_signed(&s.rs, req, Q3).await, code, reason)
}

const ALLOWED: i32 = iam::EvalDecision::Allowed as i32;
const IMPLICIT_DENY: i32 = iam::EvalDecision::ImplicitDeny as i32;

#[tokio::test]
async fn a_request_signed_with_the_session_secret_is_decided_by_the_policy() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let req = q3(&s.app, &session);
    let r = authorize_signed(&s.rs, &req, Q3).await.unwrap();
    assert_eq!(r.decision, ALLOWED);
    assert_eq!(r.principal_arn, s.alice.caller.arn);
    assert_eq!(r.matched_statements[0].sid, "ReadReports");
    let r = authorize_signed(&s.rs, &req, "arn:aws:s3:::payroll/q3.csv")
        .await
        .unwrap();
    assert_eq!(r.decision, IMPLICIT_DENY);
    // A path with characters S3 encodes: signed and checked as sent, not encoded twice.
    let req = signed_get(
        &s.app,
        &session,
        &session.secret_access_key,
        "/reports/q%203%20%28draft%29.csv",
    );
    let r = authorize_signed(&s.rs, &req, Q3).await.unwrap();
    assert_eq!(r.decision, ALLOWED);
}

#[tokio::test]
async fn a_wrong_secret_is_signature_does_not_match() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let req = q3_signed_with(&s.app, &session, "not-the-secret");
    let st = assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
    assert_message_has(&st, "signedRequest");
    // The long-term secret of the same user is not the session's either.
    let req = q3_signed_with(&s.app, &session, &s.alice.creds.secret_access_key);
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
}

#[tokio::test]
async fn another_sessions_token_with_this_ones_signature_is_refused() {
    let s = setup().await;
    let mine = session_of(&s.app, &s.alice).await;
    let bob = person(&s.app, "bob").await;
    let theirs = session_of(&s.app, &bob).await;
    // My key and secret, their token: the token was not issued with this key.
    let swapped = Credentials {
        session_token: theirs.session_token.clone(),
        ..mine.clone()
    };
    let req = q3_signed_with(&s.app, &swapped, &mine.secret_access_key);
    assert_q3_refused(&s, &req, Code::InvalidArgument, "InvalidSubjectToken").await;
    // Their key id and token, signed with my secret: the secret is not theirs.
    let req = q3_signed_with(&s.app, &theirs, &mine.secret_access_key);
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
}

#[tokio::test]
async fn a_request_older_than_five_minutes_is_request_expired() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let req = q3(&s.app, &session);
    s.app.clock.advance(300);
    let r = authorize_signed(&s.rs, &req, Q3).await.unwrap();
    assert_eq!(
        r.decision, ALLOWED,
        "five minutes is still inside the window"
    );
    s.app.clock.advance(1);
    assert_q3_refused(&s, &req, Code::Unauthenticated, "RequestExpired").await;
}

#[tokio::test]
async fn a_bare_token_is_access_denied_unless_the_broker_allows_bearer_authorize() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let token = session.session_token.clone().unwrap();
    let st = assert_denied(authorize_bearer(&s.rs, &token).await);
    assert_message_has(&st, "signedRequest");
    assert!(!about_subject(&st));

    let s = setup_on(spawn_bearer_app_at(T0).await).await;
    let session = session_of(&s.app, &s.alice).await;
    let token = session.session_token.clone().unwrap();
    let r = authorize_bearer(&s.rs, &token).await.unwrap();
    assert_eq!(r.decision, ALLOWED);
    // Proof of possession still works there.
    let req = q3(&s.app, &session);
    assert_eq!(
        authorize_signed(&s.rs, &req, Q3).await.unwrap().decision,
        ALLOWED
    );
}

#[tokio::test]
async fn a_signed_part_changed_after_signing_is_signature_does_not_match() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let fresh = || q3(&s.app, &session);

    let mut req = fresh();
    req.set_header("host", "elsewhere.example");
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
    let mut req = fresh();
    req.path = "/reports/q4.csv".into();
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
    let mut req = fresh();
    req.query = "versionId=4".into();
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
    // A body other than the one signed.
    let mut req = fresh();
    req.body = b"changed".to_vec();
    assert_q3_refused(&s, &req, Code::Unauthenticated, "SignatureDoesNotMatch").await;
    // A header that was not signed may change.
    let mut req = fresh();
    req.set_header("user-agent", "something else");
    let r = authorize_signed(&s.rs, &req, Q3).await.unwrap();
    assert_eq!(r.decision, ALLOWED);
}

#[tokio::test]
async fn a_bad_subject_token_is_told_apart_from_the_callers_own_failure() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;

    // Garbage in place of the token (signed as sent).
    let garbage = Credentials {
        session_token: Some("garbage".into()),
        ..session.clone()
    };
    let req = q3_signed_with(&s.app, &garbage, &session.secret_access_key);
    assert_q3_refused(&s, &req, Code::InvalidArgument, "InvalidSubjectToken").await;

    // Long-term keys have no token: there is no session to decide for.
    let req = q3(&s.app, &s.alice.creds);
    assert_q3_refused(&s, &req, Code::InvalidArgument, "InvalidSubjectToken").await;

    // The caller's own bad signature stays UNAUTHENTICATED, without the subject mark.
    let good = q3(&s.app, &session);
    let mut rs_creds = person(&s.app, "other-rs").await.creds;
    rs_creds.secret_access_key = Zeroizing::new("wrong".into());
    let st = assert_bad_signature(authorize_signed(&s.app.as_(&rs_creds), &good, Q3).await);
    assert!(!about_subject(&st));

    // Revoked: sessions issued before now are no longer valid.
    s.app
        .client
        .iam()
        .revoke_sessions(iam::RevokeSessionsRequest {
            user_name: Some("alice".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_q3_refused(&s, &good, Code::InvalidArgument, "InvalidSubjectToken").await;

    // Expired: the token's hour is over, the request itself is fresh.
    s.app.clock.advance(1);
    let late = session_of(&s.app, &s.alice).await;
    s.app.clock.advance(43_200);
    let req = q3(&s.app, &late);
    assert_q3_refused(&s, &req, Code::InvalidArgument, "ExpiredSubjectToken").await;
}

#[tokio::test]
async fn a_signed_request_needs_its_service_and_a_token_that_agrees() {
    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let req = q3(&s.app, &session);
    let ask = |service: &str, token: &str| authz::AuthorizeRequest {
        session_token: token.into(),
        action: "s3:GetObject".into(),
        resource: Q3.into(),
        signed_request: Some(req.forwarded()),
        service: service.into(),
        ..Default::default()
    };
    let call = |r| {
        let rs = s.rs.clone();
        async move { rs.authz().authorize(r).await.map(|r| r.into_inner()) }
    };
    assert_invalid_field(call(ask("", "")).await, "'service'");
    assert_invalid_field(call(ask("sts", "")).await, "'service'");
    assert_invalid_field(call(ask("s3", "another-token")).await, "'sessionToken'");
    // A service other than the one the client signed for.
    assert_subject_error(
        call(ask("reports", "")).await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );
    let token = session.session_token.clone().unwrap();
    let r = call(ask("s3", &token)).await.unwrap();
    assert_eq!(r.decision, ALLOWED);
}

/// The resource-server kit end to end: an axum router protected by `resource::Authorizer`,
/// called in process with the client's signed request.
#[tokio::test]
async fn the_resource_kit_protects_an_axum_route() {
    use axum::body::Body;
    use sts_broker::resource::Authorizer;
    use tower::ServiceExt;

    let s = setup().await;
    let session = session_of(&s.app, &s.alice).await;
    let authorizer = Authorizer::new(s.rs.clone(), "s3");
    let route = move |request: axum::extract::Request| {
        let authorizer = authorizer.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let name = parts.uri.path().trim_start_matches("/reports/").to_owned();
            let resource = format!("arn:aws:s3:::reports/{name}");
            match authorizer
                .authorize(&parts, &body, "s3:GetObject", &resource, vec![])
                .await
            {
                Ok(a) => (http::StatusCode::OK, a.principal_arn),
                Err(r) => (r.http_status(), r.to_string()),
            }
        }
    };
    let app = axum::Router::new().route("/reports/{name}", axum::routing::get(route));
    let send = |req: ClientRequest| {
        let app = app.clone();
        async move {
            let mut b = http::Request::builder()
                .method(req.method.as_str())
                .uri(format!("{}?{}", req.path, req.query));
            for (n, v) in &req.headers {
                b = b.header(n, v);
            }
            let resp = app
                .oneshot(b.body(Body::from(req.body)).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            let text = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&text).into_owned())
        }
    };
    let (status, text) = send(q3(&s.app, &session)).await;
    assert_eq!(status, http::StatusCode::OK, "{text}");
    assert_eq!(text, s.alice.caller.arn);
    let (status, text) = send(q3_signed_with(&s.app, &session, "wrong")).await;
    assert_eq!(status, http::StatusCode::FORBIDDEN);
    assert!(text.starts_with("SignatureDoesNotMatch"), "{text}");
    // The resource server's own credentials failing is its problem, not the client's.
    let broken = Authorizer::new(
        s.app.as_(&Credentials {
            secret_access_key: Zeroizing::new("wrong".into()),
            ..s.alice.creds.clone()
        }),
        "s3",
    );
    let req = q3(&s.app, &session);
    let mut b = http::Request::builder().uri(format!("{}?{}", req.path, req.query));
    for (n, v) in &req.headers {
        b = b.header(n, v);
    }
    let (parts, ()) = b.body(()).unwrap().into_parts();
    let refusal = broken
        .authorize(&parts, &req.body, "s3:GetObject", Q3, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        refusal.http_status(),
        http::StatusCode::BAD_GATEWAY,
        "{refusal}"
    );
}
