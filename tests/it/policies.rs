//! Issue 5: policies decide every call and every `Authorize`; the AWS sample MFA policies work
//! through the gRPC API as documented.

use crate::helpers::*;
use crate::mfa::{NowUnix, enrolled, now_step, person};
use serde_json::Value;
use sts_broker::client::Client;
use sts_broker::proto::authz::v1 as authz;
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use tonic::Code;

async fn session(c: &Client, duration: Option<i32>, mfa: Option<(&str, &str)>) -> sts::Credentials {
    let req = sts::GetSessionTokenRequest {
        duration_seconds: duration,
        serial_number: mfa.map(|m| m.0.to_owned()),
        token_code: mfa.map(|m| m.1.to_owned()),
    };
    c.sts()
        .get_session_token(req)
        .await
        .unwrap()
        .into_inner()
        .credentials
        .unwrap()
}

async fn create_key(c: &Client, user: Option<&str>) -> Result<(), tonic::Status> {
    let req = iam::CreateAccessKeyRequest {
        user_name: user.map(str::to_owned),
    };
    c.iam().create_access_key(req).await.map(|_| ())
}

/// AWS's "manage own MFA, deny everything else without MFA" sample (IAM User Guide example
/// policy, verbatim statements) together with AWS's statement that lets users manage their own access
/// keys, as the full "manage own credentials" sample has it.
fn self_manage_with_mfa_policy() -> String {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/policy/s5-3-self-manage-mfa-my-security-credentials.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut doc = fixture["policies"][0]["document"].clone();
    doc["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Sid": "AllowManageOwnAccessKeys",
        "Effect": "Allow",
        "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"],
        "Resource": "arn:aws:iam::*:user/${aws:username}"
    }));
    doc.to_string()
}

#[tokio::test]
async fn the_aws_sample_lets_users_manage_keys_only_after_mfa() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    put_user_policy(
        &app.client,
        "alice",
        "self-manage",
        &self_manage_with_mfa_policy(),
    )
    .await;
    let as_alice = app.as_(&alice.creds);

    // Long-term keys: aws:MultiFactorAuthPresent is absent, BoolIfExists matches, the Deny wins.
    let s = assert_denied(create_key(&as_alice, None).await);
    assert_message_has(&s, "explicit deny");
    // A session without MFA cannot call IAM at all.
    let weak = session(&as_alice, None, None).await;
    assert_invalid_token(create_key(&app.as_(&session_credentials(&weak)), None).await);
    // An MFA session can.
    let code = totp_at_step(&seed, now_step(&app));
    let strong = session(&as_alice, None, Some((&serial, &code))).await;
    create_key(&app.as_(&session_credentials(&strong)), None)
        .await
        .unwrap();
    // Even with MFA, another user's keys are not hers (implicit deny).
    person(&app, "bob").await;
    let s = assert_denied(create_key(&app.as_(&session_credentials(&strong)), Some("bob")).await);
    assert_message_has(&s, "no identity-based policy allows");
}

async fn put_policy(app: &TestApp, user: &str, doc: &str) {
    put_user_policy(&app.client, user, "p", doc).await;
}

/// The object the MFA policy's statements protect.
const VAULT_A: &str = "arn:aws:s3:::vault/a";

/// `Authorize` as `c` for `token`, with no context entries of the caller's own.
async fn decide(
    c: &Client,
    token: &str,
    action: &str,
    resource: &str,
) -> Result<authz::AuthorizeResponse, tonic::Status> {
    authorize(c, token, action, resource, vec![]).await
}

async fn authorize(
    c: &Client,
    token: &str,
    action: &str,
    resource: &str,
    extra: Vec<iam::ContextEntry>,
) -> Result<authz::AuthorizeResponse, tonic::Status> {
    let req = authz::AuthorizeRequest {
        session_token: token.into(),
        action: action.into(),
        resource: resource.into(),
        context_entries: extra,
        ..Default::default()
    };
    c.authz().authorize(req).await.map(|r| r.into_inner())
}

const MFA_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadWithMfa", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*",
     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
    {"Sid": "WriteWithRecentMfa", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::vault/*",
     "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}}
  ]
}"#;

#[tokio::test]
async fn authorize_uses_the_tokens_mfa_facts_and_the_clock() {
    // Bearer mode keeps this test about the decision; tests/it/possession.rs proves possession.
    let app = spawn_bearer_app_at(T0).await;
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    put_policy(&app, "alice", MFA_POLICY).await;
    let rs = person(&app, "resource-server").await;
    put_policy(&app, "resource-server", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:Authorize","Resource":"*"}]}"#).await;
    let as_rs = app.as_(&rs.creds);
    let as_alice = app.as_(&alice.creds);
    let denied = iam::EvalDecision::ImplicitDeny as i32;
    let allowed = iam::EvalDecision::Allowed as i32;

    // A caller without sts:Authorize may not ask.
    let weak = session(&as_alice, Some(43_200), None).await;
    assert_denied(decide(&as_alice, &weak.session_token, "s3:GetObject", VAULT_A).await);
    // No MFA in the session: denied, and the answer says so.
    let r = decide(&as_rs, &weak.session_token, "s3:GetObject", VAULT_A)
        .await
        .unwrap();
    assert_eq!(r.decision, denied);
    assert!(!r.mfa_present);
    assert_eq!(r.principal_arn, alice.caller.arn);
    // The resource server cannot forge the MFA facts.
    let forged = vec![iam::ContextEntry {
        context_key_name: "aws:MultiFactorAuthPresent".into(),
        context_key_values: vec!["true".into()],
        context_key_type: "boolean".into(),
    }];
    let r = authorize(&as_rs, &weak.session_token, "s3:GetObject", VAULT_A, forged)
        .await
        .unwrap();
    assert_eq!(r.decision, denied);

    // With MFA: read allowed; write allowed at 10 minutes and denied at 2 hours.
    let code = totp_at_step(&seed, now_step(&app));
    let strong = session(&as_alice, Some(43_200), Some((&serial, &code))).await;
    let r = decide(&as_rs, &strong.session_token, "s3:GetObject", VAULT_A)
        .await
        .unwrap();
    assert_eq!(r.decision, allowed);
    assert!(r.mfa_present);
    assert_eq!(r.matched_statements.len(), 1);
    assert_eq!(r.matched_statements[0].sid, "ReadWithMfa");
    assert_eq!(r.matched_statements[0].source_policy_id, "p");
    assert_eq!(r.matched_statements[0].source_policy_type, "user");
    app.clock.advance(600);
    let r = decide(&as_rs, &strong.session_token, "s3:PutObject", VAULT_A)
        .await
        .unwrap();
    assert_eq!(r.decision, allowed);
    assert_eq!(r.mfa_age_seconds, Some(600));
    app.clock.advance(7200 - 600);
    let r = decide(&as_rs, &strong.session_token, "s3:PutObject", VAULT_A)
        .await
        .unwrap();
    assert_eq!(r.decision, denied);
    assert_eq!(r.mfa_age_seconds, Some(7200));
    // Another resource than the policy names.
    let r = decide(
        &as_rs,
        &strong.session_token,
        "s3:GetObject",
        "arn:aws:s3:::other/a",
    )
    .await
    .unwrap();
    assert_eq!(r.decision, denied);
    // A token that is not valid is an error about the subject, not a decision, and not the
    // caller's own authentication failing.
    assert_error(
        decide(&as_rs, "garbage", "s3:GetObject", VAULT_A).await,
        Code::InvalidArgument,
        "InvalidSubjectToken",
    );
    app.clock.advance(43_200);
    assert_error(
        decide(&as_rs, &strong.session_token, "s3:GetObject", VAULT_A).await,
        Code::InvalidArgument,
        "ExpiredSubjectToken",
    );
    let _ = app.clock.now_unix();
}

#[tokio::test]
async fn explicit_deny_wins_and_changes_apply_at_once() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let as_alice = app.as_(&alice.creds);
    let list_users = |c: &Client| {
        let c = c.clone();
        async move {
            let req = iam::ListUsersRequest::default();
            c.iam().list_users(req).await.map(|_| ())
        }
    };
    assert_denied(list_users(&as_alice).await);

    // A managed policy through a group allows it.
    let c = &app.client;
    let p = c
        .iam()
        .create_policy(
            iam::CreatePolicyRequest {
                    policy_name: "ReadIam".into(),
                    policy_document: r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["iam:List*","iam:Get*"],"Resource":"*"}]}"#.into(),
                    path: None,
                    description: None,
                },
        )
        .await
        .unwrap()
        .into_inner()
        .policy
        .unwrap();
    assert!(p.arn.ends_with(":policy/ReadIam"));
    c.iam()
        .create_group(iam::CreateGroupRequest {
            group_name: "readers".into(),
            path: None,
        })
        .await
        .unwrap();
    c.iam()
        .attach_group_policy(iam::AttachGroupPolicyRequest {
            group_name: "readers".into(),
            policy_arn: p.arn.clone(),
        })
        .await
        .unwrap();
    // Alice joins `readers` (and later leaves it).
    let membership = |add: bool| {
        let mut svc = c.iam();
        let (group_name, user_name) = ("readers".to_owned(), "alice".to_owned());
        async move {
            if add {
                let req = iam::AddUserToGroupRequest {
                    group_name,
                    user_name,
                };
                svc.add_user_to_group(req).await.map(|_| ())
            } else {
                let req = iam::RemoveUserFromGroupRequest {
                    group_name,
                    user_name,
                };
                svc.remove_user_from_group(req).await.map(|_| ())
            }
        }
    };
    membership(true).await.unwrap();
    list_users(&as_alice).await.unwrap();

    // An explicit deny in her own inline policy beats the group's allow.
    put_user_policy(c, "alice", "no-list", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:ListUsers","Resource":"*"}]}"#).await;
    let s = assert_denied(list_users(&as_alice).await);
    assert_message_has(&s, "explicit deny");
    let req = iam::DeleteUserPolicyRequest {
        user_name: "alice".into(),
        policy_name: "no-list".into(),
    };
    c.iam().delete_user_policy(req).await.unwrap();
    list_users(&as_alice).await.unwrap();

    // Attached policies and memberships block deletions, as in AWS.
    let st = c
        .iam()
        .delete_policy(iam::DeletePolicyRequest {
            policy_arn: p.arn.clone(),
        })
        .await;
    assert_error(st, Code::FailedPrecondition, "DeleteConflict");
    membership(false).await.unwrap();
    assert_denied(list_users(&as_alice).await);

    // A malformed document is refused at write time, naming what is wrong, and stores nothing.
    let st = c
        .iam()
        .put_user_policy(
            iam::PutUserPolicyRequest {
                    user_name: "alice".into(),
                    policy_name: "bad".into(),
                    policy_document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListUsers","Resource":"*","Condition":{"StringEqualz":{"aws:username":"x"}}}]}"#.into(),
                },
        )
        .await;
    let s = assert_error(st, Code::InvalidArgument, "MalformedPolicyDocument");
    assert_message_has(&s, "StringEqualz");
    let req = iam::GetUserPolicyRequest {
        user_name: "alice".into(),
        policy_name: "bad".into(),
    };
    let st = c.iam().get_user_policy(req).await;
    assert_error(st, Code::NotFound, "NoSuchEntity");
}

#[tokio::test]
async fn simulate_principal_policy_reports_the_deciding_statements() {
    let app = spawn_app().await;
    person(&app, "alice").await;
    put_policy(&app, "alice", MFA_POLICY).await;
    let account = &app.client;
    let id = caller_identity(account).await.unwrap().account;
    let arn = format!("arn:aws:iam::{id}:user/alice");
    let req = iam::SimulatePrincipalPolicyRequest {
        policy_source_arn: arn,
        action_names: vec!["s3:GetObject".into(), "s3:DeleteObject".into()],
        resource_arns: vec!["arn:aws:s3:::vault/x".into()],
        context_entries: vec![iam::ContextEntry {
            context_key_name: "aws:MultiFactorAuthPresent".into(),
            context_key_values: vec!["true".into()],
            context_key_type: "boolean".into(),
        }],
        ..Default::default()
    };
    let r = account.iam().simulate_principal_policy(req).await;
    let r = r.unwrap().into_inner();
    assert_eq!(r.evaluation_results.len(), 2);
    let get = &r.evaluation_results[0];
    assert_eq!(get.eval_action_name, "s3:GetObject");
    assert_eq!(get.eval_decision, iam::EvalDecision::Allowed as i32);
    assert_eq!(get.matched_statements[0].sid, "ReadWithMfa");
    assert!(get.matched_statements[0].start_position.is_some());
    assert_eq!(
        r.evaluation_results[1].eval_decision,
        iam::EvalDecision::ImplicitDeny as i32
    );
}

// ---------------------------------------------------------------- the sample fixtures over gRPC

fn entry(key: &str, v: &Value) -> Option<iam::ContextEntry> {
    let (values, ty): (Vec<String>, &str) = match v {
        Value::Null => return None,
        Value::Bool(b) => (vec![b.to_string()], "boolean"),
        Value::Number(n) => (vec![n.to_string()], "numeric"),
        Value::String(s) => (vec![s.clone()], "string"),
        Value::Array(items) => {
            let ty = match items.first() {
                Some(Value::Bool(_)) => "booleanList",
                Some(Value::Number(_)) => "numericList",
                _ => "stringList",
            };
            (
                items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect(),
                ty,
            )
        }
        Value::Object(_) => panic!("object context value"),
    };
    Some(iam::ContextEntry {
        context_key_name: key.into(),
        context_key_values: values,
        context_key_type: ty.into(),
    })
}

/// Every identity-policy case of the section 5 sample fixtures, through `SimulateCustomPolicy`:
/// the decision the broker's API gives must be the documented one.
#[tokio::test]
async fn every_sample_policy_fixture_holds_through_the_api() {
    let app = spawn_app().await;
    let c = &app.client;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policy");
    let mut checked = 0;
    let mut files = 0;
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let fname = p.file_name().unwrap().to_string_lossy().to_string();
        if !fname.starts_with("s5-") {
            continue;
        }
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        if f.get("mode").and_then(Value::as_str).unwrap_or("identity") != "identity" {
            continue;
        }
        let identity_only = f["policies"].as_array().unwrap().iter().all(|pd| {
            matches!(
                pd.get("type").and_then(Value::as_str),
                None | Some("user" | "group" | "role" | "user-managed" | "aws-managed")
            )
        });
        if !identity_only {
            continue;
        }
        files += 1;
        for case in f["cases"].as_array().unwrap() {
            let selected: Vec<String> = f["policies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|pd| {
                    case.get("use")
                        .is_none_or(|u| u.as_array().unwrap().contains(&pd["id"]))
                })
                .map(|pd| {
                    pd["document"]
                        .as_str()
                        .map_or_else(|| pd["document"].to_string(), str::to_owned)
                })
                .collect();
            let mut entries = Vec::new();
            match case
                .get("credentials")
                .and_then(Value::as_str)
                .unwrap_or("LT")
            {
                "LT" => {}
                "GST-noMFA" => {
                    entries.extend(entry("aws:MultiFactorAuthPresent", &Value::Bool(false)))
                }
                "MFA" => {
                    entries.extend(entry("aws:MultiFactorAuthPresent", &Value::Bool(true)));
                    let age = case.get("mfa_age").and_then(Value::as_i64).unwrap_or(60);
                    entries.extend(entry("aws:MultiFactorAuthAge", &Value::from(age)));
                }
                other => panic!("credentials {other}"),
            }
            let mut ctx = serde_json::Map::new();
            for source in [f.get("context"), case.get("context")]
                .into_iter()
                .flatten()
            {
                for (k, v) in source.as_object().unwrap() {
                    ctx.insert(k.clone(), v.clone());
                }
            }
            for (k, v) in &ctx {
                entries.retain(|e: &iam::ContextEntry| !e.context_key_name.eq_ignore_ascii_case(k));
                entries.extend(entry(k, v));
            }
            if let Some(typed) = case.get("typed_context") {
                for t in typed.as_array().unwrap() {
                    entries.push(
                        serde_json::from_value::<TypedEntry>(t.clone())
                            .unwrap()
                            .into(),
                    );
                }
            }
            let req = iam::SimulateCustomPolicyRequest {
                policy_input_list: selected,
                action_names: vec![case["action"].as_str().unwrap().to_owned()],
                resource_arns: vec![
                    case.get("resource")
                        .and_then(Value::as_str)
                        .unwrap_or("*")
                        .to_owned(),
                ],
                context_entries: entries,
                caller_arn: None,
            };
            let r = c.iam().simulate_custom_policy(req).await.unwrap();
            let r = r.into_inner();
            let want = match case["expect"].as_str().unwrap() {
                "Allowed" => iam::EvalDecision::Allowed,
                "ExplicitDeny" => iam::EvalDecision::ExplicitDeny,
                _ => iam::EvalDecision::ImplicitDeny,
            } as i32;
            assert_eq!(
                r.evaluation_results[0].eval_decision, want,
                "{fname}: {}",
                case["name"]
            );
            checked += 1;
        }
    }
    assert!(files >= 15, "only {files} sample fixture files ran");
    assert!(checked >= 150, "only {checked} sample cases ran");
}

#[derive(serde::Deserialize)]
struct TypedEntry {
    context_key_name: String,
    context_key_values: Vec<String>,
    context_key_type: String,
}

impl From<TypedEntry> for iam::ContextEntry {
    fn from(t: TypedEntry) -> Self {
        Self {
            context_key_name: t.context_key_name,
            context_key_values: t.context_key_values,
            context_key_type: t.context_key_type,
        }
    }
}

// ---------------------------------------------------------------- bounded evaluation cost

/// The resource pattern of the quadratic-matching attack, `arn:aws:s3:::*` then 6,000 `a` and
/// a `b`, with a short pattern beside it; the document fits the 6,144 a managed policy may have.
fn attack_policy() -> String {
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [
            format!("arn:aws:s3:::*{}b", "a".repeat(6000)),
            "arn:aws:s3:::*a?b"
        ]}]
    })
    .to_string();
    assert!(doc.len() <= 6144, "{}", doc.len());
    doc
}

async fn simulate_custom(
    c: &Client,
    actions: &[&str],
    resources: Vec<String>,
) -> Result<iam::SimulatePolicyResponse, tonic::Status> {
    let req = iam::SimulateCustomPolicyRequest {
        policy_input_list: vec![attack_policy()],
        action_names: actions.iter().map(|a| (*a).to_owned()).collect(),
        resource_arns: resources,
        ..Default::default()
    };
    c.iam()
        .simulate_custom_policy(req)
        .await
        .map(|r| r.into_inner())
}

/// Issue 12, defect 3: two simulations with the original attack inputs (ARNs of 200,000
/// characters) are refused before evaluation; two at the bounds (400 pairs of 2,048-character
/// ARNs each, as many as the 1 MiB answer can list) are answered correctly; and while all four run, GetCallerIdentity and `/healthz`
/// answer. Outcomes only: the whole test is bounded by a generous timeout, nothing is timed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_simulations_are_bounded_and_other_callers_keep_answering() {
    let app = spawn_app().await;
    let c = &app.client;
    let over = vec![format!("arn:aws:s3:::{}", "a".repeat(200_000 - 13)); 2];
    let mut at_bound = vec![format!("arn:aws:s3:::{}", "a".repeat(2048 - 13)); 199];
    let matching = format!("arn:aws:s3:::{}axb", "a".repeat(2048 - 16));
    at_bound.push(matching.clone());
    let actions = ["s3:GetObject", "S3:getobject"];
    let run = async {
        tokio::join!(
            simulate_custom(c, &actions, over.clone()),
            simulate_custom(c, &actions, over.clone()),
            simulate_custom(c, &actions, at_bound.clone()),
            simulate_custom(c, &actions, at_bound.clone()),
            caller_identity(c),
            crate::helpers::http_get(app.addr, "/healthz"),
        )
    };
    let (o1, o2, b1, b2, id, health) =
        tokio::time::timeout(std::time::Duration::from_secs(120), run)
            .await
            .expect("the calls finished");
    for o in [o1, o2] {
        let s = assert_error(o, Code::InvalidArgument, "ValidationError");
        assert_message_has(&s, "'resourceArns.member'");
        assert_message_has(&s, "less than or equal to 2048");
    }
    for b in [b1, b2] {
        let results = b.unwrap().evaluation_results;
        assert_eq!(results.len(), 400);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.eval_action_name, actions[i / 200]);
            assert_eq!(r.eval_resource_name, at_bound[i % 200]);
            let want = if r.eval_resource_name == matching {
                iam::EvalDecision::Allowed
            } else {
                iam::EvalDecision::ImplicitDeny
            };
            assert_eq!(r.eval_decision, want as i32, "result {i}");
        }
    }
    assert!(id.unwrap().arn.ends_with(":root"));
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

/// Authorize checks the same bounds first, before it verifies the subject's token.
#[tokio::test]
async fn authorize_refuses_inputs_over_the_bounds_before_anything_else() {
    let app = spawn_app().await;
    let long_resource = format!("arn:aws:s3:::{}", "a".repeat(2048));
    let s = assert_error(
        decide(&app.client, "not-a-token", "s3:GetObject", &long_resource).await,
        Code::InvalidArgument,
        "ValidationError",
    );
    assert_message_has(&s, "'resource'");
    let many = vec![
        iam::ContextEntry {
            context_key_name: "aws:SourceVpc".into(),
            context_key_values: vec!["vpc-1".into()],
            context_key_type: "string".into(),
        };
        101
    ];
    let s = assert_invalid_field(
        authorize(&app.client, "not-a-token", "s3:GetObject", "*", many).await,
        "'contextEntries'",
    );
    assert_message_has(&s, "less than or equal to 100");
}
