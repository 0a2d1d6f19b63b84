//! Issue 2: the broker foundation — SigV4 authentication, identities, access keys, errors,
//! audit, restart, and the HTTP side of the listener.

use crate::helpers::*;
use std::sync::Arc;
use sts_broker::client::{Client, Credentials};
use sts_broker::clock::ManualClock;
use sts_broker::domain::Outcome;
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use tonic::Code;
use tonic::metadata::{MetadataMap, MetadataValue};
use zeroize::Zeroizing;

const GCI: &str = "/sts.v1.SecurityTokenService/GetCallerIdentity";
const CREATE_USER: &str = "/iam.v1.IamService/CreateUser";

pub async fn create_key(c: &Client, user: Option<&str>) -> Result<Credentials, tonic::Status> {
    let req = iam::CreateAccessKeyRequest {
        user_name: user.map(str::to_owned),
    };
    let k = c
        .iam()
        .create_access_key(req)
        .await?
        .into_inner()
        .access_key
        .unwrap();
    Ok(Credentials {
        access_key_id: k.access_key_id,
        secret_access_key: Zeroizing::new(k.secret_access_key),
        session_token: None,
    })
}

async fn list_keys(
    c: &Client,
    user: Option<&str>,
) -> Result<Vec<iam::AccessKeyMetadata>, tonic::Status> {
    let req = iam::ListAccessKeysRequest {
        user_name: user.map(str::to_owned),
        marker: None,
        max_items: None,
    };
    c.iam()
        .list_access_keys(req)
        .await
        .map(|r| r.into_inner().access_key_metadata)
}

async fn list_user_names(c: &Client) -> Vec<String> {
    c.iam()
        .list_users(iam::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .users
        .into_iter()
        .map(|u| u.user_name)
        .collect()
}

/// A `GetCallerIdentity` signed by hand as root, for tests that change it before sending.
fn signed_caller_identity(app: &TestApp) -> tonic::Request<sts::GetCallerIdentityRequest> {
    let req = sts::GetCallerIdentityRequest {};
    app.client.signed(GCI, req).unwrap()
}

#[tokio::test]
async fn root_gets_its_identity() {
    let app = spawn_app().await;
    let id = caller_identity(&app.client).await.unwrap();
    assert_eq!(id.account.len(), 12);
    assert!(id.account.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(id.arn, format!("arn:aws:iam::{}:root", id.account));
    assert_eq!(id.user_id, id.account, "root's UserId is the account id");
    assert!(app.root.access_key_id.starts_with("AKIA"));
    assert_eq!(app.root.access_key_id.len(), 20);
    assert_eq!(app.root.secret_access_key.len(), 40);
}

#[tokio::test]
async fn a_changed_signature_byte_is_refused() {
    let app = spawn_app().await;
    let mut req = signed_caller_identity(&app);
    let auth = req
        .metadata()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let last = auth.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &auth[..auth.len() - 1]);
    req.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(tampered.as_str()).unwrap(),
    );
    assert_bad_signature(app.client.sts().get_caller_identity(req).await);
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let signed = app
        .client
        .signed(
            CREATE_USER,
            iam::CreateUserRequest {
                user_name: "alice".into(),
                path: None,
            },
        )
        .unwrap();
    let (md, ext, _) = signed.into_parts();
    let swapped = tonic::Request::from_parts(
        md,
        ext,
        iam::CreateUserRequest {
            user_name: "mallory".into(),
            path: None,
        },
    );
    assert_bad_signature(app.client.iam().create_user(swapped).await);
    assert!(
        list_user_names(&app.client).await.is_empty(),
        "no user was created"
    );
}

#[tokio::test]
async fn requests_dated_outside_five_minutes_are_expired() {
    let app = spawn_app().await;
    for offset in [-600, 600, -301, 301] {
        let skewed = ManualClock::at(T0 + offset);
        let c = app.client.with_clock(Arc::new(skewed));
        let s = assert_error(
            caller_identity(&c).await,
            Code::Unauthenticated,
            "RequestExpired",
        );
        let m = s.message();
        assert!(
            m.contains("Signature expired") || m.contains("Signature not yet current"),
            "{m}"
        );
    }
    for offset in [-299, 299] {
        let c = app
            .client
            .with_clock(Arc::new(ManualClock::at(T0 + offset)));
        caller_identity(&c).await.unwrap();
    }
}

#[tokio::test]
async fn missing_and_garbled_headers_are_refused() {
    let app = spawn_app().await;
    // Past the signing layer: straight onto the connection.
    let mut unsigned =
        sts_broker::proto::sts::v1::security_token_service_client::SecurityTokenServiceClient::new(
            app.client.channel(),
        );
    assert_error(
        unsigned
            .get_caller_identity(sts::GetCallerIdentityRequest {})
            .await,
        Code::Unauthenticated,
        "MissingAuthenticationToken",
    );
    // A garbled authorization header; a signature without its date header.
    let edits: [fn(&mut MetadataMap); 2] = [
        |md| {
            md.insert(
                "authorization",
                MetadataValue::from_static("AWS4-HMAC-SHA256 garbage"),
            );
        },
        |md| {
            md.remove("x-amz-date");
        },
    ];
    for edit in edits {
        let mut req = signed_caller_identity(&app);
        edit(req.metadata_mut());
        assert_error(
            app.client.sts().get_caller_identity(req).await,
            Code::Unauthenticated,
            "IncompleteSignature",
        );
    }
}

#[tokio::test]
async fn unknown_keys_and_foreign_scopes_are_refused() {
    let app = spawn_app().await;
    let unknown = Credentials {
        access_key_id: "AKIAAAAAAAAAAAAAAAAA".into(),
        secret_access_key: Zeroizing::new("x".repeat(40)),
        session_token: None,
    };
    assert_invalid_token(caller_identity(&app.as_(&unknown)).await);
    // Right key, wrong secret.
    let wrong_secret = Credentials {
        secret_access_key: Zeroizing::new("y".repeat(40)),
        ..app.root.clone()
    };
    assert_bad_signature(caller_identity(&app.as_(&wrong_secret)).await);
    // Signed for another region.
    let eu = Client::connect(&app.endpoint, "eu-west-1", app.root.clone())
        .await
        .unwrap()
        .with_clock(Arc::new(app.clock.clone()));
    let s = assert_bad_signature(caller_identity(&eu).await);
    assert_message_has(&s, "eu-west-1");
    // Signed for the iam service but sent to sts.
    let req = app
        .client
        .signed(
            "/iam.v1.IamService/GetUser",
            sts::GetCallerIdentityRequest {},
        )
        .unwrap();
    let (md, ext, m) = req.into_parts();
    let req = tonic::Request::from_parts(md, ext, m);
    assert_bad_signature(app.client.sts().get_caller_identity(req).await);
}

#[tokio::test]
async fn root_manages_users_with_aws_name_rules() {
    let app = spawn_app().await;
    let u = create_user(&app.client, "Alice").await.unwrap();
    assert!(u.arn.ends_with(":user/Alice"), "{}", u.arn);
    assert!(u.user_id.starts_with("AIDA") && u.user_id.len() == 21);
    assert_error(
        create_user(&app.client, "alice").await,
        Code::AlreadyExists,
        "EntityAlreadyExists",
    );
    assert_invalid_field(create_user(&app.client, "al ice").await, "userName");
    assert_invalid_field(create_user(&app.client, "").await, "userName");
    let long = "x".repeat(65);
    assert_error(
        create_user(&app.client, &long).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    let pathy = create_user_at(&app.client, "pathy", Some("no-slashes")).await;
    assert_invalid_field(pathy, "'path'");
    assert_eq!(
        list_user_names(&app.client).await,
        ["Alice"],
        "bad input changed nothing"
    );

    let ops = create_user_at(&app.client, "ops1", Some("/eng/ops/"))
        .await
        .unwrap();
    assert!(ops.arn.ends_with(":user/eng/ops/ops1"), "{}", ops.arn);

    let get_user = |name: &str| {
        let req = iam::GetUserRequest {
            user_name: Some(name.into()),
        };
        let mut svc = app.client.iam();
        async move { svc.get_user(req).await }
    };
    let got = get_user("ALICE").await.unwrap().into_inner().user.unwrap();
    assert_eq!(got.user_name, "Alice");
    assert_error(get_user("nobody").await, Code::NotFound, "NoSuchEntity");
}

#[tokio::test]
async fn a_user_may_ask_who_it_is_but_not_create_users() {
    let app = spawn_app().await;
    let alice = create_user(&app.client, "alice").await.unwrap();
    let keys = create_key(&app.client, Some("alice")).await.unwrap();
    assert!(keys.access_key_id.starts_with("AKIA"));
    assert_eq!(keys.secret_access_key.len(), 40);
    let as_alice = app.as_(&keys);
    let id = caller_identity(&as_alice).await.unwrap();
    assert_eq!(id.arn, alice.arn);
    assert_eq!(id.user_id, alice.user_id);
    let s = assert_denied(create_user(&as_alice, "bob").await);
    assert_message_has(&s, "iam:CreateUser");
    assert_eq!(list_user_names(&app.client).await, ["alice"]);
}

#[tokio::test]
async fn users_manage_only_their_own_keys_and_at_most_two() {
    let app = spawn_app().await;
    create_user(&app.client, "alice").await.unwrap();
    create_user(&app.client, "bob").await.unwrap();
    let alice1 = create_key(&app.client, Some("alice")).await.unwrap();
    let as_alice = app.as_(&alice1);
    // No policy, no permission (IAM's default deny)...
    assert_denied(list_keys(&as_alice, None).await);
    // ...until she may manage her own keys.
    put_user_policy(&app.client, "alice", "self", SELF_MANAGE_POLICY).await;

    // Her own second key, without naming herself.
    let alice2 = create_key(&as_alice, None).await.unwrap();
    let listed = list_keys(&as_alice, None).await.unwrap();
    let mut ids: Vec<_> = listed.iter().map(|k| k.access_key_id.clone()).collect();
    ids.sort();
    let mut want = vec![alice1.access_key_id.clone(), alice2.access_key_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(
        listed
            .iter()
            .all(|k| k.status == "Active" && k.user_name == "alice")
    );

    assert_error(
        create_key(&as_alice, None).await,
        Code::ResourceExhausted,
        "LimitExceeded",
    );
    assert_eq!(
        list_keys(&as_alice, None).await.unwrap().len(),
        2,
        "no third key stored"
    );

    // Bob's keys are not hers to see or make.
    assert_denied(list_keys(&as_alice, Some("bob")).await);
    assert_denied(create_key(&as_alice, Some("bob")).await);
    assert!(
        list_keys(&app.client, Some("bob"))
            .await
            .unwrap()
            .is_empty()
    );

    // Deactivate her first key, signing with the second: the first stops working at once.
    let req = iam::UpdateAccessKeyRequest {
        user_name: None,
        access_key_id: alice1.access_key_id.clone(),
        status: "Inactive".into(),
    };
    app.as_(&alice2).iam().update_access_key(req).await.unwrap();
    assert_invalid_token(caller_identity(&as_alice).await);
    caller_identity(&app.as_(&alice2)).await.unwrap();

    let req = iam::UpdateAccessKeyRequest {
        user_name: Some("alice".into()),
        access_key_id: alice1.access_key_id.clone(),
        status: "Sleeping".into(),
    };
    assert_invalid_field(app.client.iam().update_access_key(req).await, "status");
}

#[tokio::test]
async fn a_user_with_keys_cannot_be_deleted_until_they_are_gone() {
    let app = spawn_app().await;
    create_user(&app.client, "carol").await.unwrap();
    let k = create_key(&app.client, Some("carol")).await.unwrap();
    let delete = || {
        let req = iam::DeleteUserRequest {
            user_name: "carol".into(),
        };
        let mut svc = app.client.iam();
        async move { svc.delete_user(req).await }
    };
    assert_error(delete().await, Code::FailedPrecondition, "DeleteConflict");
    let req = iam::DeleteAccessKeyRequest {
        user_name: Some("carol".into()),
        access_key_id: k.access_key_id.clone(),
    };
    app.client.iam().delete_access_key(req).await.unwrap();
    assert_invalid_token(caller_identity(&app.as_(&k)).await);
    delete().await.unwrap();
    assert_error(delete().await, Code::NotFound, "NoSuchEntity");
}

#[tokio::test]
async fn the_audit_trail_records_calls_and_refusals_without_secrets() {
    let app = spawn_app().await;
    create_user(&app.client, "dave").await.unwrap();
    let k = create_key(&app.client, Some("dave")).await.unwrap();
    let as_dave = app.as_(&k);
    caller_identity(&as_dave).await.unwrap();
    create_user(&as_dave, "eve").await.unwrap_err();
    let bad = Credentials {
        secret_access_key: Zeroizing::new("z".repeat(40)),
        ..k.clone()
    };
    caller_identity(&app.as_(&bad)).await.unwrap_err();

    app.broker().flush_audit().await;
    let events = app.broker().recent_audit(100).await.unwrap();
    let find = |action: &str, outcome: Outcome, code: Option<&str>| {
        events
            .iter()
            .any(|e| e.action == action && e.outcome == outcome && e.error_code.as_deref() == code)
    };
    assert!(find("iam:CreateUser", Outcome::Success, None));
    assert!(find("iam:CreateAccessKey", Outcome::Success, None));
    assert!(find("sts:GetCallerIdentity", Outcome::Success, None));
    assert!(find(
        "iam:CreateUser",
        Outcome::Failure,
        Some("AccessDenied")
    ));
    assert!(find(
        "sts:GetCallerIdentity",
        Outcome::Failure,
        Some("SignatureDoesNotMatch")
    ));
    let refused = events
        .iter()
        .find(|e| e.error_code.as_deref() == Some("SignatureDoesNotMatch"))
        .unwrap();
    assert_eq!(
        refused.access_key_id.as_deref(),
        Some(k.access_key_id.as_str())
    );
    assert!(
        refused
            .principal
            .as_deref()
            .unwrap()
            .ends_with(":user/dave")
    );
    // Failed authentications are grouped by source IP (`src/broker/failed_auth.rs`), port dropped.
    assert_eq!(refused.source.as_deref(), Some("127.0.0.1"));
    assert_eq!(refused.count, 1);
    let all = format!("{events:?}");
    for secret in [
        k.secret_access_key.as_str(),
        app.root.secret_access_key.as_str(),
        bad.secret_access_key.as_str(),
    ] {
        assert!(!all.contains(secret), "a secret reached the audit trail");
    }
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest() {
    let app = spawn_app().await;
    create_user(&app.client, "frank").await.unwrap();
    let k = create_key(&app.client, Some("frank")).await.unwrap();
    let dir = app.data_dir();
    let mut on_disk = Vec::new();
    for f in ["broker.db", "broker.db-wal"] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            on_disk.extend(b);
        }
    }
    assert!(!on_disk.is_empty());
    for secret in [
        k.secret_access_key.as_str(),
        app.root.secret_access_key.as_str(),
    ] {
        assert!(
            !on_disk
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "a secret is stored in plaintext"
        );
    }
    // The key id itself is not secret and is there.
    assert!(on_disk.windows(20).any(|w| w == k.access_key_id.as_bytes()));
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let app = spawn_app().await;
    let account = caller_identity(&app.client).await.unwrap().account;
    create_user(&app.client, "gina").await.unwrap();
    let gina = create_key(&app.client, Some("gina")).await.unwrap();
    let creds_file = app.data_dir().join("root-credentials");
    let before = std::fs::read(&creds_file).unwrap();
    let root = app.root.clone();

    let app = app.restart().await;
    assert_eq!(app.root.access_key_id, root.access_key_id);
    assert_eq!(
        std::fs::read(&creds_file).unwrap(),
        before,
        "root-credentials untouched"
    );
    let id = caller_identity(&app.client).await.unwrap();
    assert_eq!(id.account, account, "account id kept");
    let g = caller_identity(&app.as_(&gina)).await.unwrap();
    assert!(g.arn.ends_with(":user/gina"));
}

#[tokio::test]
async fn the_listener_serves_health_metrics_and_grpc_health() {
    let app = spawn_app().await;
    let h = http_get(app.addr, "/healthz").await;
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    assert!(h.ends_with("ok\n"), "{h}");
    caller_identity(&app.client).await.unwrap();
    let m = http_get(app.addr, "/metrics").await;
    assert!(
        m.contains("sts_broker_calls_total{action=\"sts:GetCallerIdentity\",code=\"OK\"} 1"),
        "{m}"
    );
    let j = http_get(app.addr, "/.well-known/jwks.json").await;
    assert!(j.contains("\"keys\""), "{j}");

    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    for service in ["", "sts.v1.SecurityTokenService", "iam.v1.IamService"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
}

#[tokio::test]
async fn calls_to_paths_that_name_no_rpc_share_one_metrics_label() {
    let app = spawn_app().await;
    let mut grpc = app.raw_grpc().await;
    for i in 0..3 {
        grpc.ready().await.unwrap();
        let path =
            http::uri::PathAndQuery::try_from(format!("/iam.v1.IamService/Made{i}Up")).unwrap();
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let e = grpc
            .unary(tonic::Request::new(()), path, codec)
            .await
            .unwrap_err();
        assert_error(
            Err::<(), _>(e),
            Code::Unauthenticated,
            "MissingAuthenticationToken",
        );
    }
    let m = http_get(app.addr, "/metrics").await;
    assert!(
        m.contains("{action=\"unknown\",code=\"MissingAuthenticationToken\"} 3"),
        "{m}"
    );
    assert!(!m.contains("Made"), "a caller's path is not a label: {m}");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_until_the_first_stops() {
    let app = spawn_app().await;
    let second = sts_broker::server::start(
        config(app.data_dir()),
        Arc::new(app.clock.clone()),
        std::future::pending(),
    )
    .await
    .expect_err("the data dir is in use");
    let msg = second.to_string();
    assert!(
        msg.contains("in use by another sts-broker process"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    caller_identity(&app.client).await.unwrap();
    // A graceful stop releases the directory for the next start.
    let app = app.restart().await;
    caller_identity(&app.client).await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_stops_the_listener() {
    let mut app = spawn_app().await;
    caller_identity(&app.client).await.unwrap();
    let addr = app.addr;
    app.running.take().unwrap().shutdown().await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}
