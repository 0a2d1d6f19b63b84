//! Sanity tests of the public API that the fixtures cannot express: positions, the action index,
//! constants, `validate_action_name`, and a larger-scale index check.

use std::sync::Arc;

use crate::policy::{
    Context, EvalDecision, PolicyDocument, PolicyKind, PolicySource, Position, Request, SourceType,
    Version, evaluate, keys, validate_action_name,
};

fn source(id: &str, text: &str) -> PolicySource {
    PolicySource {
        id: id.to_owned(),
        kind: SourceType::UserManaged,
        document: Arc::new(PolicyDocument::parse(text, PolicyKind::Managed).expect("valid policy")),
    }
}

fn request(action: &str, resource: &str) -> Request {
    Request {
        action: action.to_owned(),
        resource: resource.to_owned(),
        principal_arn: "arn:aws:iam::111122223333:user/alice".to_owned(),
        context: Context::new(),
    }
}

#[test]
fn matched_statements_carry_positions() {
    let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Sid\": \"A\", \"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"},\n    {\n      \"Sid\": \"B\",\n      \"Effect\": \"Deny\",\n      \"Action\": \"s3:DeleteObject\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
    let src = source("arn:aws:iam::111122223333:policy/p", text);
    let d = evaluate(
        std::slice::from_ref(&src),
        &request("s3:DeleteObject", "arn:aws:s3:::b/k"),
    );
    assert_eq!(d.effect, EvalDecision::ExplicitDeny);
    let m = &d.matched[0];
    assert_eq!(m.sid.as_deref(), Some("B"));
    assert_eq!(m.statement_index, 1);
    assert_eq!(m.source_policy_id, "arn:aws:iam::111122223333:policy/p");
    assert_eq!(m.source_type, SourceType::UserManaged);
    assert_eq!(m.start, Some(Position { line: 5, column: 5 }));
    assert_eq!(
        m.end,
        Some(Position {
            line: 10,
            column: 5
        })
    );
    let d = evaluate(&[src], &request("s3:GetObject", "arn:aws:s3:::b/k"));
    assert_eq!(d.matched[0].start, Some(Position { line: 4, column: 5 }));
    assert_eq!(
        d.matched[0].end,
        Some(Position {
            line: 4,
            column: 70
        })
    );
}

#[test]
fn document_accessors() {
    let doc = PolicyDocument::parse(
        r#"{"Id":"x","Statement":{"Sid":"S","Effect":"Deny","NotAction":"iam:*","Resource":"*"}}"#,
        PolicyKind::UserInline,
    )
    .unwrap();
    assert_eq!(doc.version(), Version::V2008_10_17);
    assert!(!doc.version().substitutes_variables());
    assert_eq!(doc.id(), Some("x"));
    assert_eq!(doc.kind(), PolicyKind::UserInline);
    assert_eq!(doc.statements().len(), 1);
    assert_eq!(doc.statements()[0].sid(), Some("S"));
}

#[test]
fn action_index_skips_unrelated_statements() {
    // 2,000 statements for other services and actions, one wildcard and one NotAction statement.
    let mut stmts: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"Effect":"Allow","Action":"svc{i}:Get{i}","Resource":"*"}}"#))
        .collect();
    stmts.extend(
        (0..1000)
            .map(|i| format!(r#"{{"Effect":"Allow","Action":"ec2:Describe{i}","Resource":"*"}}"#)),
    );
    stmts.push(r#"{"Effect":"Allow","Action":"ec2:Stop*","Resource":"*"}"#.to_owned());
    stmts.push(r#"{"Effect":"Deny","NotAction":"s3:*","Resource":"arn:aws:s3:::x"}"#.to_owned());
    stmts.push(r#"{"Effect":"Allow","Action":["ec2:StopInstances","EC2:stopinstances","ec2:Stop*"],"Resource":"*"}"#.to_owned());
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    );
    // Far beyond IAM's size limits: use the test-only parser without the limit.
    let doc = crate::policy::parse_policy_unchecked(&text).unwrap();
    let mut visited = Vec::new();
    doc.index
        .for_each_candidate("ec2:stopinstances", "ec2", |i| visited.push(i));
    visited.sort_unstable();
    // Only: the NotAction statement (global), `ec2:Stop*`, and the mixed statement (once).
    assert_eq!(visited, vec![2000, 2001, 2002]);
    let mut visited = Vec::new();
    doc.index
        .for_each_candidate("ec2:describe7", "ec2", |i| visited.push(i));
    visited.sort_unstable();
    assert_eq!(visited, vec![1007, 2000, 2001, 2002]);
    let mut visited = Vec::new();
    doc.index
        .for_each_candidate("lambda:invoke", "lambda", |i| visited.push(i));
    assert_eq!(visited, vec![2001]);
}

#[test]
fn validate_action_names() {
    assert!(validate_action_name("sts:GetSessionToken").is_ok());
    assert!(validate_action_name("execute-api:Invoke").is_ok());
    for bad in [
        "GetSessionToken",
        "sts:",
        ":Get",
        "sts:Get*",
        "st s:Get",
        "sts:Get:More",
    ] {
        let err = validate_action_name(bad).unwrap_err().to_string();
        assert!(err.contains(&format!("`{bad}`")), "{err}");
    }
}

#[test]
fn key_constants_are_canonical_and_lookups_case_insensitive() {
    assert_eq!(
        keys::MULTI_FACTOR_AUTH_PRESENT,
        "aws:MultiFactorAuthPresent"
    );
    assert_eq!(keys::MULTI_FACTOR_AUTH_AGE, "aws:MultiFactorAuthAge");
    assert_eq!(keys::TOKEN_ISSUE_TIME, "aws:TokenIssueTime");
    assert_eq!(keys::ALL.len(), 13);
    let ctx = Context::new().with_bool(keys::MULTI_FACTOR_AUTH_PRESENT, true);
    assert!(ctx.get("AWS:MULTIFACTORAUTHPRESENT").is_some());
}

#[test]
fn trust_documents_never_grant_identity_access() {
    let trust = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    let src = PolicySource {
        id: "t".into(),
        kind: SourceType::Role,
        document: Arc::new(trust),
    };
    assert_eq!(
        evaluate(&[src], &request("s3:GetObject", "*")).effect,
        EvalDecision::ImplicitDeny
    );
}
