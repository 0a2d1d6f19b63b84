//! Issue 4: GetSessionToken and AssumeRole — MFA-backed, short-lived, signed session credentials,
//! their use for signing calls, expiry, revocation, key rotation and the JWKS.

use crate::helpers::*;
use crate::mfa::{NowUnix, Person, create_device, enable_now, enrolled, now_step, person};
use std::sync::Arc;
use sts_broker::client::{Client, Credentials};
use sts_broker::domain::AuditEvent;
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use tonic::Code;
use zeroize::Zeroizing;

async fn session(
    c: &Client,
    duration: Option<i32>,
    serial: Option<&str>,
    code: Option<&str>,
) -> Result<sts::Credentials, tonic::Status> {
    let req = sts::GetSessionTokenRequest {
        duration_seconds: duration,
        serial_number: serial.map(str::to_owned),
        token_code: code.map(str::to_owned),
    };
    c.sts()
        .get_session_token(req)
        .await
        .map(|r| r.into_inner().credentials.unwrap())
}

/// Root's `RevokeSessions` for a user or a role.
async fn revoke_sessions(app: &TestApp, user: Option<&str>, role: Option<&str>) {
    let req = iam::RevokeSessionsRequest {
        user_name: user.map(str::to_owned),
        role_name: role.map(str::to_owned),
        issued_before: None,
    };
    app.client.iam().revoke_sessions(req).await.unwrap();
}

/// A broker with user alice, and a client signing with her key.
async fn alice_signing() -> (TestApp, Client) {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let as_alice = app.as_(&alice.creds);
    (app, as_alice)
}

/// Whether `audit` holds an event whose detail is `detail`.
fn audited(audit: &[AuditEvent], detail: &str) -> bool {
    audit.iter().any(|e| e.detail.as_deref() == Some(detail))
}

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn jwks(app: &TestApp) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
}

/// Verifies a token against the published JWKS with jsonwebtoken's JWK support, as a resource
/// server would.
fn verify_with_jwks(set: &serde_json::Value, token: &str, now: i64) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.unwrap();
    let jwk_json = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk_json.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.validate_exp = false;
    v.set_audience(&["sts-broker"]);
    let c = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .unwrap()
        .claims;
    assert!(c["exp"].as_i64().unwrap() > now);
    c
}

#[tokio::test]
async fn mfa_backed_session_credentials_work_once_per_code() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    let (b_serial, b_seed) = enrolled(&app, &bob, "b-phone").await;
    let as_alice = app.as_(&alice.creds);
    let code = totp_at_step(&seed, now_step(&app));

    let c = session(&as_alice, None, Some(&serial), Some(&code))
        .await
        .unwrap();
    assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
    assert_eq!(c.secret_access_key.len(), 40);
    let now = app.clock.now_unix();
    assert_eq!(
        c.expiration.as_ref().unwrap().seconds,
        now + 43_200,
        "IAM user default: 12 h"
    );
    assert!(!c.session_token.contains(&c.secret_access_key));

    // The token verifies against the published JWKS and carries the MFA facts.
    let set = jwks(&app).await;
    let cl = verify_with_jwks(&set, &c.session_token, now);
    assert_eq!(cl["sub"], alice.caller.arn.as_str());
    assert_eq!(cl["akid"], c.access_key_id.as_str());
    assert_eq!(cl["amr"], serde_json::json!(["mfa"]));
    assert_eq!(cl["auth_time"], now);
    assert!(cl["iss"].as_str().unwrap().starts_with("sts-broker:"));
    assert!(cl.get("secret_access_key").is_none());

    // The same code again is refused.
    let s = assert_denied(session(&as_alice, None, Some(&serial), Some(&code)).await);
    assert_message_has(&s, "MultiFactorAuthentication failed");
    // Another user's serial (with that user's valid code) is refused.
    let b_code = totp_at_step(&b_seed, now_step(&app));
    assert_denied(session(&as_alice, None, Some(&b_serial), Some(&b_code)).await);
    // Serial without code.
    let s = assert_denied(session(&as_alice, None, Some(&serial), None).await);
    assert_message_has(&s, "must provide both");

    // The credentials sign GetCallerIdentity and are refused for GetSessionToken.
    let as_session = app.as_(&session_credentials(&c));
    let id = caller_identity(&as_session).await.unwrap();
    assert_eq!(id.arn, alice.caller.arn);
    let s = assert_denied(session(&as_session, None, None, None).await);
    assert_eq!(
        s.message(),
        "Cannot call GetSessionToken with session credentials"
    );
}

#[tokio::test]
async fn durations_follow_aws_rules() {
    let (app, as_alice) = alice_signing().await;
    let now = app.clock.now_unix();
    for bad in [0, 899, 129_601, -5] {
        assert_invalid_field(
            session(&as_alice, Some(bad), None, None).await,
            "durationSeconds",
        );
    }
    let c = session(&as_alice, Some(900), None, None).await.unwrap();
    assert_eq!(c.expiration.unwrap().seconds, now + 900);
    let c = session(&as_alice, Some(129_600), None, None).await.unwrap();
    assert_eq!(c.expiration.unwrap().seconds, now + 129_600);
    // Root: default one hour, longer requests clamped to one hour.
    let c = session(&app.client, None, None, None).await.unwrap();
    assert_eq!(c.expiration.unwrap().seconds, now + 3600);
    let c = session(&app.client, Some(7200), None, None).await.unwrap();
    assert_eq!(c.expiration.unwrap().seconds, now + 3600);
    let audit = app.audit().await;
    assert!(audited(&audit, "bad duration"));
}

#[tokio::test]
async fn sessions_without_mfa_cannot_call_iam_and_with_mfa_can() {
    let app = spawn_app().await;
    // Root without MFA.
    let plain = session(&app.client, None, None, None).await.unwrap();
    assert!(claims(&plain.session_token).get("amr").is_none());
    let as_plain = app.as_(&session_credentials(&plain));
    assert_invalid_token(create_user(&as_plain, "x1").await);
    caller_identity(&as_plain).await.unwrap();
    // Root with MFA: root enables its own device, then IAM calls work from the session.
    let d = create_device(&app.client, "root-phone").await;
    enable_now(&app, "", &d.serial_number, &d.base32_string_seed)
        .await
        .unwrap();
    app.clock.advance(30);
    let code = totp_at_step(&d.base32_string_seed, now_step(&app));
    let strong = session(&app.client, None, Some(&d.serial_number), Some(&code))
        .await
        .unwrap();
    create_user(&app.as_(&session_credentials(&strong)), "x2")
        .await
        .unwrap();
}

#[tokio::test]
async fn expired_forged_mismatched_and_revoked_credentials_are_refused() {
    let (app, as_alice) = alice_signing().await;
    let a = session(&as_alice, Some(900), None, None).await.unwrap();
    let b = session(&as_alice, Some(3600), None, None).await.unwrap();
    caller_identity(&app.as_(&session_credentials(&a)))
        .await
        .unwrap();

    // Mismatched: b's token with a's key id and secret.
    let mixed = Credentials {
        session_token: Some(b.session_token.clone()),
        ..session_credentials(&a)
    };
    assert_invalid_token(caller_identity(&app.as_(&mixed)).await);
    // Forged: payload edited, signature kept.
    let mut parts: Vec<String> = a.session_token.split('.').map(str::to_owned).collect();
    let mut cl = claims(&a.session_token);
    cl["sub"] = serde_json::json!(app.root.access_key_id.clone());
    use base64::Engine;
    parts[1] =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cl).unwrap());
    let forged = Credentials {
        session_token: Some(parts.join(".")),
        ..session_credentials(&a)
    };
    assert_invalid_token(caller_identity(&app.as_(&forged)).await);
    // A temporary key id without its token.
    let bare = Credentials {
        session_token: None,
        ..session_credentials(&a)
    };
    assert_invalid_token(caller_identity(&app.as_(&bare)).await);
    // Wrong secret with a good token.
    let wrong = Credentials {
        secret_access_key: Zeroizing::new("x".repeat(40)),
        ..session_credentials(&a)
    };
    assert_error(
        caller_identity(&app.as_(&wrong)).await,
        Code::Unauthenticated,
        "SignatureDoesNotMatch",
    );

    // Not yet valid: the clock steps back past the leeway.
    app.clock.advance(-120);
    assert_invalid_token(caller_identity(&app.as_(&session_credentials(&a))).await);
    app.clock.advance(120);

    // Expired at exp, exactly.
    app.clock.advance(899);
    caller_identity(&app.as_(&session_credentials(&a)))
        .await
        .unwrap();
    app.clock.advance(1);
    let s = assert_error(
        caller_identity(&app.as_(&session_credentials(&a))).await,
        Code::Unauthenticated,
        "ExpiredToken",
    );
    assert!(s.message().contains("expired"));
    caller_identity(&app.as_(&session_credentials(&b)))
        .await
        .unwrap();

    // Revoked: every session of alice issued so far stops at once; later ones work.
    revoke_sessions(&app, Some("alice"), None).await;
    assert_invalid_token(caller_identity(&app.as_(&session_credentials(&b))).await);
    app.clock.advance(1);
    let c = session(&as_alice, None, None, None).await.unwrap();
    caller_identity(&app.as_(&session_credentials(&c)))
        .await
        .unwrap();
    // Revocation survives a restart.
    let app = app.restart().await;
    assert_invalid_token(caller_identity(&app.as_(&session_credentials(&b))).await);
    caller_identity(&app.as_(&session_credentials(&c)))
        .await
        .unwrap();
    let audit = app.audit().await;
    assert!(audited(&audit, "revoked session"));
    assert!(audited(&audit, "expired session token"));
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_they_expire() {
    let (app, as_alice) = alice_signing().await;
    let old = session(&as_alice, Some(3600), None, None).await.unwrap();
    let before = jwks(&app).await;
    assert_eq!(before["keys"].as_array().unwrap().len(), 1);
    let old_kid = jsonwebtoken::decode_header(&old.session_token)
        .unwrap()
        .kid
        .unwrap();

    let r = app
        .client
        .iam()
        .rotate_signing_key(iam::RotateSigningKeyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.previous_kid, old_kid);
    assert_ne!(r.kid, old_kid);
    let after = jwks(&app).await;
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        2,
        "old key still published"
    );

    let new = session(&as_alice, Some(3600), None, None).await.unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new.session_token)
            .unwrap()
            .kid
            .unwrap(),
        r.kid
    );
    caller_identity(&app.as_(&session_credentials(&old)))
        .await
        .unwrap();
    caller_identity(&app.as_(&session_credentials(&new)))
        .await
        .unwrap();
    verify_with_jwks(&after, &old.session_token, app.clock.now_unix());

    // Past the longest possible session, a restart drops the retired key from the JWKS.
    app.clock.advance(129_601);
    let app = app.restart().await;
    let later = jwks(&app).await;
    assert_eq!(later["keys"].as_array().unwrap().len(), 1);
    assert_eq!(later["keys"][0]["kid"], r.kid.as_str());
}

const TRUST_MFA: &str = r#"{
  "Version": "2012-10-17",
  "Statement": {
    "Effect": "Allow",
    "Principal": {"AWS": "ACCOUNT"},
    "Action": "sts:AssumeRole",
    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
  }
}"#;

async fn create_role(
    app: &TestApp,
    name: &str,
    trust: &str,
    max: Option<i32>,
) -> Result<iam::Role, tonic::Status> {
    let req = iam::CreateRoleRequest {
        role_name: name.into(),
        assume_role_policy_document: trust.into(),
        max_session_duration: max,
        path: None,
        description: None,
    };
    app.client
        .iam()
        .create_role(req)
        .await
        .map(|r| r.into_inner().role.unwrap())
}

async fn assume(
    c: &Client,
    role_arn: &str,
    duration: Option<i32>,
    mfa: Option<(&str, &str)>,
) -> Result<sts::AssumeRoleResponse, tonic::Status> {
    let req = sts::AssumeRoleRequest {
        role_arn: role_arn.into(),
        role_session_name: "work".into(),
        duration_seconds: duration,
        serial_number: mfa.map(|m| m.0.to_owned()),
        token_code: mfa.map(|m| m.1.to_owned()),
        policy: None,
    };
    c.sts().assume_role(req).await.map(|r| r.into_inner())
}

fn account_of(p: &Person) -> String {
    p.caller.arn[13..25].to_owned()
}

#[tokio::test]
async fn assume_role_honours_a_trust_policy_that_requires_mfa() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    let account = account_of(&alice);
    let trust = TRUST_MFA.replace("ACCOUNT", &account);
    let role = create_role(&app, "admin", &trust, None).await.unwrap();
    assert_eq!(role.arn, format!("arn:aws:iam::{account}:role/admin"));
    assert!(role.role_id.starts_with("AROA"));
    let as_alice = app.as_(&alice.creds);

    // Without MFA: denied by the trust policy.
    assert_denied(assume(&as_alice, &role.arn, None, None).await);
    // With a code given to AssumeRole: allowed, and the session keeps the MFA facts.
    let code = totp_at_step(&seed, now_step(&app));
    let r = assume(&as_alice, &role.arn, None, Some((&serial, &code)))
        .await
        .unwrap();
    let u = r.assumed_role_user.unwrap();
    assert_eq!(
        u.arn,
        format!("arn:aws:sts::{account}:assumed-role/admin/work")
    );
    assert_eq!(u.assumed_role_id, format!("{}:work", role.role_id));
    let c = r.credentials.unwrap();
    assert_eq!(
        c.expiration.as_ref().unwrap().seconds,
        app.clock.now_unix() + 3600
    );
    let cl = claims(&c.session_token);
    assert_eq!(cl["amr"], serde_json::json!(["mfa"]));
    assert_eq!(cl["sub"], u.arn.as_str());
    let as_role = app.as_(&session_credentials(&c));
    let id = caller_identity(&as_role).await.unwrap();
    assert_eq!(id.arn, u.arn);
    assert_eq!(id.user_id, u.assumed_role_id);
    // The same code cannot be used twice.
    assert_denied(assume(&as_alice, &role.arn, None, Some((&serial, &code))).await);

    // GetSessionToken with MFA, then AssumeRole with the session: the MFA carries over.
    app.clock.advance(30);
    let code = totp_at_step(&seed, now_step(&app));
    let s = session(&as_alice, None, Some(&serial), Some(&code))
        .await
        .unwrap();
    assume(&app.as_(&session_credentials(&s)), &role.arn, None, None)
        .await
        .unwrap();
    // A session without MFA does not satisfy the trust policy.
    let weak = session(&as_alice, None, None, None).await.unwrap();
    assert_denied(assume(&app.as_(&session_credentials(&weak)), &role.arn, None, None).await);

    // Durations: above the role's maximum, and role chaining limited to one hour.
    app.clock.advance(30);
    let code = totp_at_step(&seed, now_step(&app));
    assert_invalid_field(
        assume(&as_alice, &role.arn, Some(7200), Some((&serial, &code))).await,
        "MaxSessionDuration",
    );
}

#[tokio::test]
async fn trust_policies_name_who_may_assume_and_chaining_is_limited() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let bob = person(&app, "bob").await;
    let account = account_of(&alice);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
        alice.caller.arn
    );
    let first = create_role(&app, "first", &trust, Some(43_200))
        .await
        .unwrap();
    let chain_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
        first.arn
    );
    let second = create_role(&app, "second", &chain_trust, Some(43_200))
        .await
        .unwrap();

    assert_denied(assume(&app.as_(&bob.creds), &first.arn, None, None).await);
    let r = assume(&app.as_(&alice.creds), &first.arn, Some(43_200), None)
        .await
        .unwrap();
    let c = r.credentials.unwrap();
    assert_eq!(c.expiration.unwrap().seconds, app.clock.now_unix() + 43_200);
    let as_first = app.as_(&session_credentials(&c));
    // Role chaining: at most one hour.
    assert_invalid_field(
        assume(&as_first, &second.arn, Some(7200), None).await,
        "role chaining",
    );
    let chained = assume(&as_first, &second.arn, None, None).await.unwrap();
    assert_eq!(
        claims(&chained.credentials.unwrap().session_token)["chained"],
        true
    );
    // Root may not assume roles; unknown roles answer like refused ones.
    assert_denied(assume(&app.client, &first.arn, None, None).await);
    let ghost = format!("arn:aws:iam::{account}:role/ghost");
    assert_denied(assume(&app.as_(&alice.creds), &ghost, None, None).await);
    // A malformed trust policy is refused at write time, naming the problem.
    let s = assert_error(create_role(&app, "bad", r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Principal":"*","Action":"sts:AssumeRole"}]}"#, None).await, Code::InvalidArgument, "MalformedPolicyDocument");
    assert_message_has(&s, "Effect");

    // Revoking a role's sessions.
    let again = assume(&app.as_(&alice.creds), &first.arn, None, None)
        .await
        .unwrap()
        .credentials
        .unwrap();
    caller_identity(&app.as_(&session_credentials(&again)))
        .await
        .unwrap();
    revoke_sessions(&app, None, Some("first")).await;
    assert_invalid_token(caller_identity(&app.as_(&session_credentials(&again))).await);
    let _ = Arc::new(());
}
