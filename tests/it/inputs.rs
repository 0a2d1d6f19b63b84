//! Issue 11: every request field is parsed at the edge into a typed input. A bad field is a
//! `ValidationError` naming it, decided before authorization or any store access, and the store
//! is left exactly as it was.

use crate::helpers::*;
use crate::mfa::{enrolled, path, person};
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use tonic::Code;

/// Every row of every table but the audit trail (which records the refusals), as text.
fn store_snapshot(app: &TestApp) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(
        app.data_dir().join(sts_broker::datadir::DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let tables: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'audit' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(tables.iter().any(|t| t == "users"), "{tables:?}");
    let mut rows = Vec::new();
    for t in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut table_rows: Vec<String> = stmt
            .query_map([], |r| {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect();
                Ok(format!("{t}: {}", cells.join(" | ")))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        table_rows.sort();
        rows.extend(table_rows);
    }
    rows
}

/// Asserts a refusal is a `ValidationError` that names `field`.
#[track_caller]
fn names_field<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str) -> String {
    let s = assert_error(r, Code::InvalidArgument, "ValidationError");
    assert!(
        s.message().contains(&format!("'{field}'")),
        "`{field}` not named in: {}",
        s.message()
    );
    s.message().to_owned()
}

/// Signs a request with `client`'s credentials and sends it to `service.method`.
macro_rules! call {
    ($client:expr, $service:ident . $method:ident($path:expr, $req:expr)) => {{
        let c = $client;
        c.$service().$method(c.signed(&$path, $req).unwrap()).await
    }};
}

const TRUST_ANYONE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn bad_fields_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let (serial, _seed) = enrolled(&app, &alice, "a-phone").await;
    let c = &app.client;
    let before = store_snapshot(&app);

    let user = |user_name: &str, path: Option<&str>| iam::CreateUserRequest {
        user_name: user_name.into(),
        path: path.map(str::to_owned),
    };
    names_field(
        call!(
            c,
            iam.create_user(path("CreateUser"), user("bad name", None))
        ),
        "userName",
    );
    names_field(
        call!(
            c,
            iam.create_user(path("CreateUser"), user("bob", Some("eng")))
        ),
        "path",
    );
    let m = names_field(
        call!(
            c,
            iam.delete_user(
                path("DeleteUser"),
                iam::DeleteUserRequest {
                    user_name: String::new()
                }
            )
        ),
        "userName",
    );
    assert!(m.contains("Member must not be null"), "{m}");
    names_field(
        call!(
            c,
            iam.deactivate_mfa_device(
                path("DeactivateMfaDevice"),
                iam::DeactivateMfaDeviceRequest {
                    user_name: Some("alice".into()),
                    serial_number: format!("{serial} "),
                }
            )
        ),
        "serialNumber",
    );
    names_field(
        call!(
            c,
            iam.attach_role_policy(
                path("AttachRolePolicy"),
                iam::AttachRolePolicyRequest {
                    role_name: "ops".into(),
                    policy_arn: "arn:aws:iam::123456789012:user/not-a-policy".into(),
                }
            )
        ),
        "policyArn",
    );
    names_field(
        call!(
            c,
            iam.put_group_policy(
                path("PutGroupPolicy"),
                iam::PutGroupPolicyRequest {
                    group_name: "eng".into(),
                    policy_name: "inline".into(),
                    policy_document: String::new(),
                }
            )
        ),
        "policyDocument",
    );
    names_field(
        call!(
            c,
            iam.create_role(
                path("CreateRole"),
                iam::CreateRoleRequest {
                    role_name: "ops".into(),
                    assume_role_policy_document: TRUST_ANYONE.into(),
                    max_session_duration: Some(100),
                    path: None,
                    description: None,
                }
            )
        ),
        "maxSessionDuration",
    );

    // As alice, who holds no policy at all: a bad field is refused for what it is, before
    // authorization (which would read her policies from the store) is asked.
    let a = &app.as_(&alice.creds);
    names_field(
        call!(
            a,
            iam.create_access_key(
                path("CreateAccessKey"),
                iam::CreateAccessKeyRequest {
                    user_name: Some("b".repeat(65)),
                }
            )
        ),
        "userName",
    );
    let m = names_field(
        call!(
            a,
            iam.enable_mfa_device(
                path("EnableMfaDevice"),
                iam::EnableMfaDeviceRequest {
                    user_name: "alice".into(),
                    serial_number: serial.clone(),
                    authentication_code1: "123456".into(),
                    authentication_code2: "65432x".into(),
                }
            )
        ),
        "authenticationCode2",
    );
    assert!(!m.contains("65432x"), "codes are never echoed: {m}");
    const GST: &str = "/sts.v1.SecurityTokenService/GetSessionToken";
    let session = |serial: &str, code: &str| sts::GetSessionTokenRequest {
        duration_seconds: None,
        serial_number: Some(serial.into()),
        token_code: Some(code.into()),
    };
    names_field(
        call!(a, sts.get_session_token(GST, session(&serial, "12 456"))),
        "tokenCode",
    );
    names_field(
        call!(a, sts.get_session_token(GST, session("tiny", "123456"))),
        "serialNumber",
    );
    let m = names_field(
        call!(
            a,
            sts.get_session_token(
                GST,
                sts::GetSessionTokenRequest {
                    duration_seconds: Some(100),
                    ..Default::default()
                }
            )
        ),
        "durationSeconds",
    );
    assert!(m.contains("greater than or equal to 900"), "{m}");
    names_field(
        call!(
            a,
            sts.assume_role(
                "/sts.v1.SecurityTokenService/AssumeRole",
                sts::AssumeRoleRequest {
                    role_arn: format!("arn:aws:iam::{}:user/alice", app.broker().account()),
                    role_session_name: "ci".into(),
                    ..Default::default()
                }
            )
        ),
        "roleArn",
    );

    assert_eq!(
        store_snapshot(&app),
        before,
        "a refused input changed the store"
    );
}

#[tokio::test]
async fn refusals_at_the_edge_are_audited_like_any_other() {
    let app = spawn_app().await;
    let r = call!(
        &app.client,
        iam.revoke_sessions(
            path("RevokeSessions"),
            iam::RevokeSessionsRequest {
                user_name: Some("bob".into()),
                role_name: Some("ops".into()),
                issued_before: None,
            }
        )
    );
    let s = assert_error(r, Code::InvalidArgument, "ValidationError");
    assert_eq!(
        s.message(),
        "1 validation error detected: exactly one of 'userName' and 'roleName' must be given"
    );
    // The refused call is in the audit trail under its IAM action.
    let e = app.audit_event("iam:RevokeSessions").await;
    assert_eq!(e.error_code.as_deref(), Some("ValidationError"));
}
