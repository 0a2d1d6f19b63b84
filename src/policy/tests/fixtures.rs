//! Runs every JSON fixture under `tests/fixtures/policy/` and fails listing every mismatch.
//!
//! Fixture format (one file = one policy set and its cases):
//! ```text
//! { "description": "...", "source": "the AWS page it follows",
//!   "mode": "identity" | "trust" | "resource",            (default identity)
//!   "policies": [ { "id": "...", "type": "user|group|role|user-managed|aws-managed|session|resource",
//!                   "kind": "managed|user-inline|group-inline|role-inline|session|trust|resource",
//!                   "document": {...} or "raw JSON text" } ],
//!   "context": { "key": value, ... },                     (defaults for every case)
//!   "principal": "arn...", "principal_account": "123456789012",
//!   "cases": [ { "name": "...", "action": "...", "resource": "...",
//!                "use": ["policy ids"],                      (default: all)
//!                "credentials": "LT" | "GST-noMFA" | "MFA",  (what each kind of credential puts in the request context)
//!                "mfa_age": 60,
//!                "context": { "key": "string" | true | 12 | ["a","b"] },
//!                "typed_context": [ ContextEntry ... ],
//!                "expect": "Allowed" | "ExplicitDeny" | "ImplicitDeny",
//!                "matched_sids": [...], "undecidable": n } ] }
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::policy::{
    Context, ContextEntry, ContextValue, Decision, EvalDecision, PolicyDocument, PolicyKind,
    PolicySource, PrincipalInfo, Request, SourceType, evaluate, evaluate_resource_policy,
    evaluate_trust, keys,
};

const MIN_FILES: usize = 35;
const MIN_CASES: usize = 400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    description: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    policies: Vec<PolicyDef>,
    #[serde(default)]
    context: serde_json::Map<String, Value>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    principal_account: Option<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDef {
    id: String,
    #[serde(rename = "type", default)]
    source_type: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    document: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default, rename = "use")]
    use_policies: Option<Vec<String>>,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    principal_account: Option<String>,
    #[serde(default)]
    credentials: Option<String>,
    #[serde(default)]
    mfa_age: Option<i64>,
    #[serde(default)]
    context: serde_json::Map<String, Value>,
    #[serde(default)]
    typed_context: Vec<ContextEntry>,
    expect: String,
    #[serde(default)]
    matched_sids: Option<Vec<String>>,
    #[serde(default)]
    undecidable: Option<usize>,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy")
}

fn source_type(name: Option<&str>) -> SourceType {
    match name.unwrap_or("user-managed") {
        "user" => SourceType::User,
        "group" => SourceType::Group,
        "role" => SourceType::Role,
        "user-managed" => SourceType::UserManaged,
        "aws-managed" => SourceType::AwsManaged,
        "session" => SourceType::Session,
        "resource" => SourceType::Resource,
        "trust" => SourceType::Trust,
        other => panic!("unknown policy type `{other}`"),
    }
}

fn policy_kind(name: Option<&str>, st: SourceType, mode: &str) -> PolicyKind {
    match name {
        Some("managed") => PolicyKind::Managed,
        Some("user-inline") => PolicyKind::UserInline,
        Some("group-inline") => PolicyKind::GroupInline,
        Some("role-inline") => PolicyKind::RoleInline,
        Some("session") => PolicyKind::Session,
        Some("trust") => PolicyKind::Trust,
        Some("resource") => PolicyKind::Resource,
        Some(other) => panic!("unknown policy kind `{other}`"),
        None => match (mode, st) {
            ("trust", _) => PolicyKind::Trust,
            ("resource", _) => PolicyKind::Resource,
            (_, SourceType::Session) => PolicyKind::Session,
            (_, SourceType::Role) => PolicyKind::RoleInline,
            _ => PolicyKind::Managed,
        },
    }
}

/// JSON convenience values: string → String, bool → Bool, number → Numeric, array of strings →
/// string list.
fn put_value(ctx: &mut Context, key: &str, v: &Value) {
    let one = |v: &Value| -> ContextValue {
        match v {
            Value::String(s) => ContextValue::String(s.clone()),
            Value::Bool(b) => ContextValue::Bool(*b),
            Value::Number(n) => ContextValue::Numeric(
                crate::policy::Number::parse(&n.to_string()).expect("fixture number"),
            ),
            other => panic!("unsupported context value {other}"),
        }
    };
    match v {
        Value::Array(items) => ctx.insert_list(key, items.iter().map(one).collect()),
        Value::Null => {
            ctx.remove(key);
        }
        other => ctx.insert(key, one(other)),
    }
}

fn build_context(file: &Fixture, case: &Case) -> Context {
    let mut ctx = Context::new();
    match case.credentials.as_deref() {
        None | Some("LT") => {}
        Some("GST-noMFA") => {
            ctx.insert(keys::MULTI_FACTOR_AUTH_PRESENT, ContextValue::Bool(false));
            put_value(
                &mut ctx,
                keys::TOKEN_ISSUE_TIME,
                &Value::String("2026-01-01T00:00:00Z".into()),
            );
        }
        Some("MFA") => {
            ctx.insert(keys::MULTI_FACTOR_AUTH_PRESENT, ContextValue::Bool(true));
            let age = case.mfa_age.unwrap_or(60);
            ctx.insert(
                keys::MULTI_FACTOR_AUTH_AGE,
                ContextValue::Numeric(crate::policy::Number::from_i64(age)),
            );
            put_value(
                &mut ctx,
                keys::TOKEN_ISSUE_TIME,
                &Value::String("2026-01-01T00:00:00Z".into()),
            );
        }
        Some(other) => panic!("unknown credentials `{other}`"),
    }
    for (k, v) in &file.context {
        put_value(&mut ctx, k, v);
    }
    for (k, v) in &case.context {
        put_value(&mut ctx, k, v);
    }
    let typed = Context::from_entries(&case.typed_context).expect("typed_context must be valid");
    for e in &case.typed_context {
        let values = typed
            .get(&e.context_key_name)
            .expect("just inserted")
            .to_vec();
        ctx.insert_list(&e.context_key_name, values);
    }
    ctx
}

fn expected(s: &str) -> EvalDecision {
    match s {
        "Allowed" => EvalDecision::Allowed,
        "ExplicitDeny" => EvalDecision::ExplicitDeny,
        "ImplicitDeny" => EvalDecision::ImplicitDeny,
        other => panic!("unknown expected decision `{other}`"),
    }
}

fn run_case(file: &Fixture, sources: &[PolicySource], case: &Case) -> Decision {
    let mode = file.mode.as_deref().unwrap_or("identity");
    let selected: Vec<PolicySource> = sources
        .iter()
        .filter(|s| case.use_policies.as_ref().is_none_or(|u| u.contains(&s.id)))
        .cloned()
        .collect();
    let ctx = build_context(file, case);
    let principal = PrincipalInfo {
        arn: case
            .principal
            .clone()
            .or_else(|| file.principal.clone())
            .unwrap_or_else(|| "arn:aws:iam::111122223333:user/alice".to_owned()),
        account: case
            .principal_account
            .clone()
            .or_else(|| file.principal_account.clone())
            .unwrap_or_else(|| "111122223333".to_owned()),
    };
    let request = Request {
        action: case
            .action
            .clone()
            .unwrap_or_else(|| "sts:AssumeRole".to_owned()),
        resource: case.resource.clone().unwrap_or_else(|| "*".to_owned()),
        principal_arn: principal.arn.clone(),
        context: ctx,
    };
    match mode {
        "identity" => evaluate(&selected, &request),
        "trust" => {
            assert_eq!(selected.len(), 1, "trust mode takes exactly one policy");
            evaluate_trust(
                &selected[0].document,
                &principal,
                &request.action,
                &request.context,
            )
        }
        "resource" => {
            assert_eq!(selected.len(), 1, "resource mode takes exactly one policy");
            evaluate_resource_policy(&selected[0], &principal, &request)
        }
        other => panic!("unknown mode `{other}`"),
    }
}

#[test]
fn policy_fixtures() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    let mut cases = 0usize;
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let text = std::fs::read_to_string(path).expect("readable fixture");
        let file: Fixture =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: bad fixture file: {e}"));
        assert!(!file.description.is_empty(), "{name}: needs a description");
        let _ = &file.source;
        let mode = file.mode.as_deref().unwrap_or("identity");
        let sources: Vec<PolicySource> = file
            .policies
            .iter()
            .map(|p| {
                let st = source_type(p.source_type.as_deref());
                let kind = policy_kind(p.kind.as_deref(), st, mode);
                let text = match &p.document {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).expect("serialisable"),
                };
                let doc = PolicyDocument::parse(&text, kind)
                    .unwrap_or_else(|e| panic!("{name}: policy `{}` does not parse: {e}", p.id));
                PolicySource {
                    id: p.id.clone(),
                    kind: st,
                    document: Arc::new(doc),
                }
            })
            .collect();
        assert!(!file.cases.is_empty(), "{name}: no cases");
        for case in &file.cases {
            cases += 1;
            if let Some(used) = &case.use_policies {
                for u in used {
                    assert!(
                        sources.iter().any(|s| &s.id == u),
                        "{name} / {}: unknown policy id `{u}`",
                        case.name
                    );
                }
            }
            let decision = run_case(&file, &sources, case);
            let want = expected(&case.expect);
            if decision.effect != want {
                failures.push(format!(
                    "{name} / {}: expected {want:?}, got {:?} (matched {:?})",
                    case.name,
                    decision.effect,
                    decision.matched_sids()
                ));
                continue;
            }
            if let Some(sids) = &case.matched_sids {
                let got: Vec<String> = decision
                    .matched_sids()
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                if &got != sids {
                    failures.push(format!(
                        "{name} / {}: expected matched Sids {sids:?}, got {got:?}",
                        case.name
                    ));
                }
            }
            if let Some(n) = case.undecidable
                && decision.undecidable.len() != n
            {
                failures.push(format!(
                    "{name} / {}: expected {n} undecidable statements, got {}",
                    case.name,
                    decision.undecidable.len()
                ));
            }
        }
    }
    crate::test_support::assert_no_failures(&failures, "fixture");
    assert!(
        paths.len() >= MIN_FILES,
        "only {} fixture files",
        paths.len()
    );
    assert!(cases >= MIN_CASES, "only {cases} fixture cases");
}
