//! Every malformed-document rule, each asserting that the message names the problem and where.

use crate::policy::{PolicyDocument, PolicyError, PolicyKind};

fn reject(text: &str, kind: PolicyKind) -> String {
    match PolicyDocument::parse(text, kind) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

fn reject_identity(statement: &str) -> String {
    reject(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"*"}},{statement}]}}"#
        ),
        PolicyKind::Managed,
    )
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn effect_is_case_sensitive() {
    let m = reject_identity(r#"{"Effect":"allow","Action":"s3:*","Resource":"*"}"#);
    assert_eq!(
        m,
        "statement 2: `Effect` must be `Allow` or `Deny`, got `allow`"
    );
}

#[test]
fn effect_missing_or_wrong_type() {
    assert_has(
        &reject_identity(r#"{"Action":"s3:*","Resource":"*"}"#),
        &["statement 2", "missing `Effect`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":true,"Action":"s3:*","Resource":"*"}"#),
        &["statement 2", "`Effect`", "a boolean"],
    );
}

#[test]
fn unknown_elements() {
    assert_has(
        &reject(
            r#"{"Version":"2012-10-17","Statment":[]}"#,
            PolicyKind::Managed,
        ),
        &["policy", "unknown element `Statment`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","Conditions":{}}"#),
        &["statement 2", "unknown element `Conditions`"],
    );
    assert_has(
        &reject_identity(r#"{"effect":"Allow","Action":"s3:*","Resource":"*"}"#),
        &[
            "statement 2",
            "unknown element `effect`",
            "did you mean `Effect`",
        ],
    );
}

#[test]
fn action_and_notaction() {
    assert_has(
        &reject_identity(
            r#"{"Effect":"Allow","Action":"s3:*","NotAction":"iam:*","Resource":"*"}"#,
        ),
        &["statement 2", "both `Action` and `NotAction`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Resource":"*"}"#),
        &["statement 2", "must contain `Action` or `NotAction`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3","Resource":"*"}"#),
        &[
            "statement 2",
            "`Action`",
            "`s3`",
            "service-prefix:ActionName",
        ],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:Get Object","Resource":"*"}"#),
        &["statement 2", "invalid action name"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#),
        &["statement 2", "`Action` must not be an empty array"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":["s3:*",3],"Resource":"*"}"#),
        &[
            "statement 2",
            "`Action` must be a string or an array of strings",
            "a number",
        ],
    );
}

#[test]
fn resource_and_notresource() {
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}"#),
        &["statement 2", "both `Resource` and `NotResource`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:*"}"#),
        &["statement 2", "must contain `Resource` or `NotResource`"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":"bucket/key"}"#),
        &["statement 2", "`Resource`", "`bucket/key` is not an ARN"],
    );
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Action":"s3:*","Resource":{"a":1}}"#),
        &[
            "statement 2",
            "`Resource` must be a string or an array of strings",
            "an object",
        ],
    );
    assert_has(
        &reject_identity(
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username"}"#,
        ),
        &["statement 2", "unterminated policy variable"],
    );
    assert_has(
        &reject_identity(
            r#"{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${aws:username, default}"}"#,
        ),
        &["statement 2", "single quotes"],
    );
}

#[test]
fn principal_rules() {
    assert_has(
        &reject_identity(r#"{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}"#),
        &[
            "statement 2",
            "`Principal` is not allowed in an identity-based policy",
        ],
    );
    let trust = |st: &str| {
        reject(
            &format!(r#"{{"Version":"2012-10-17","Statement":[{st}]}}"#),
            PolicyKind::Trust,
        )
    };
    assert_has(
        &trust(r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#),
        &[
            "statement 1",
            "a trust policy statement must contain `Principal`",
        ],
    );
    assert_has(
        &trust(r#"{"Effect":"Allow","Principal":{"AWS":"1234"},"Action":"sts:AssumeRole"}"#),
        &[
            "statement 1",
            "`Principal`",
            "`1234`",
            "12-digit account id",
        ],
    );
    assert_has(
        &trust(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"sts:AssumeRole"}"#,
        ),
        &["without wildcards"],
    );
    assert_has(
        &trust(
            r#"{"Effect":"Allow","Principal":{"Aws":"111122223333"},"Action":"sts:AssumeRole"}"#,
        ),
        &["unknown principal type `Aws`"],
    );
    assert_has(
        &trust(r#"{"Effect":"Allow","Principal":"111122223333","Action":"sts:AssumeRole"}"#),
        &["`Principal`: must be `*` or an object"],
    );
    assert_has(
        &trust(
            r#"{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"sts:AssumeRole"}"#,
        ),
        &["both `Principal` and `NotPrincipal`"],
    );
    assert_has(
        &trust(r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}"#),
        &["`Resource` is not allowed in a trust policy"],
    );
}

#[test]
fn condition_rules() {
    let cond = |c: &str| {
        reject_identity(&format!(
            r#"{{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{c}}}"#
        ))
    };
    // (the `Condition` block, the parts its message must have)
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{"StringEqual":{"a:b":"c"}}"#,
            &["statement 2", "unknown condition operator `StringEqual`"],
        ),
        (
            r#"{"stringequals":{"a:b":"c"}}"#,
            &["unknown condition operator `stringequals`"],
        ),
        (r#"{"NullIfExists":{"a:b":"true"}}"#, &["`NullIfExists`"]),
        (
            r#"{"ForEveryValue:StringEquals":{"a:b":"c"}}"#,
            &["unknown condition operator"],
        ),
        (
            r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"an hour"}}"#,
            &[
                "condition `NumericLessThan`",
                "key `aws:MultiFactorAuthAge`",
                "`an hour` is not a number",
            ],
        ),
        (
            r#"{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}"#,
            &["`tomorrow` is not an ISO 8601 date"],
        ),
        (
            r#"{"Bool":{"aws:MultiFactorAuthPresent":"yes"}}"#,
            &["`yes` is not `true` or `false`"],
        ),
        (
            r#"{"Null":{"aws:TokenIssueTime":"maybe"}}"#,
            &["`maybe` is not `true` or `false`"],
        ),
        (
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/99"}}"#,
            &["is not an IP address or CIDR block"],
        ),
        (r#"{"BinaryEquals":{"k:b":"%%%"}}"#, &["is not base-64"]),
        (
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3"}}"#,
            &["is not an ARN"],
        ),
        (
            r#"{"StringEquals":{"a:b":{"x":1}}}"#,
            &["values must be strings, numbers or booleans, got an object"],
        ),
        (r#"{"StringEquals":{"a:b":[]}}"#, &["value list is empty"]),
        (r#"{"StringEquals":{"a:b":null}}"#, &["got null"]),
        (
            r#"{"StringEquals":"a:b"}"#,
            &["must map condition keys to values, got a string"],
        ),
        (r#"{"StringEquals":{}}"#, &["has no condition keys"]),
        (
            r#"["StringEquals"]"#,
            &["`Condition` must be an object, got an array"],
        ),
        (
            r#"{"StringEquals":{"aws:SourceVpc":"a","AWS:sourcevpc":"b"}}"#,
            &["duplicate condition key `AWS:sourcevpc`"],
        ),
    ];
    for (c, parts) in cases {
        assert_has(&cond(c), parts);
    }
}

#[test]
fn version_rules() {
    assert_eq!(
        reject(
            r#"{"Version":"2012-10-18","Statement":[]}"#,
            PolicyKind::Managed
        ),
        "policy: `Version` must be `2012-10-17` or `2008-10-17`, got `2012-10-18`"
    );
    assert_has(
        &reject(r#"{"Version":2012,"Statement":[]}"#, PolicyKind::Managed),
        &["`Version` must be a string, got a number"],
    );
    assert_has(
        &reject(r#"{"Version":"2012-10-17"}"#, PolicyKind::Managed),
        &["missing `Statement`"],
    );
    assert_has(
        &reject(
            r#"{"Version":"2012-10-17","Statement":"x"}"#,
            PolicyKind::Managed,
        ),
        &["`Statement` must be an object or an array of objects"],
    );
    assert_has(
        &reject(
            r#"{"Version":"2012-10-17","Statement":["x"]}"#,
            PolicyKind::Managed,
        ),
        &["statement 1: must be an object, got a string"],
    );
    assert_has(
        &reject(
            r#"{"Version":"2012-10-17","Id":5,"Statement":[]}"#,
            PolicyKind::Managed,
        ),
        &["`Id` must be a string"],
    );
    assert_has(
        &reject_identity(r#"{"Sid":1,"Effect":"Allow","Action":"s3:*","Resource":"*"}"#),
        &["`Sid` must be a string"],
    );
}

#[test]
fn json_and_duplicates() {
    let m = reject(
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [,]\n}",
        PolicyKind::Managed,
    );
    assert_has(&m, &["not valid JSON", "line 3"]);
    let m = reject(
        r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}"#,
        PolicyKind::Managed,
    );
    assert_has(&m, &["duplicate key `Version`"]);
    let m = reject_identity(r#"{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}"#);
    assert_has(&m, &["duplicate key `Effect`"]);
    assert_has(
        &reject("[]", PolicyKind::Managed),
        &["policy: must be a JSON object, got an array"],
    );
}

#[test]
fn characters_are_restricted() {
    let m = reject(
        "{\"Version\":\"2012-10-17\",\"Statement\":[],\"Id\":\"\u{4e2d}\"}",
        PolicyKind::Managed,
    );
    assert!(matches!(
        PolicyDocument::parse(
            "{\"Id\":\"\u{4e2d}\",\"Statement\":[]}",
            PolicyKind::Managed
        ),
        Err(PolicyError::InvalidCharacter {
            code: 0x4e2d,
            line: 1,
            column: 8
        })
    ));
    assert_has(&m, &["U+4E2D"]);
    assert_has(
        &reject(r#"{"Id":"\ue000","Statement":[]}"#, PolicyKind::Managed),
        &["U+E000"],
    );
    // Latin-1 is allowed.
    assert!(
        PolicyDocument::parse(
            "{\"Id\":\"caf\u{e9}\",\"Statement\":[]}",
            PolicyKind::Managed
        )
        .is_ok()
    );
}

/// A document padded with a long Sid to exactly `n` non-whitespace characters.
fn doc_of_size(n: usize, principal: bool) -> String {
    let head = if principal {
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Sid":""#
    } else {
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Sid":""#
    };
    let tail = r#""}]}"#;
    let pad = n - head.len() - tail.len();
    format!("{head}{}{tail}", "a".repeat(pad))
}

#[test]
fn size_limits_per_kind() {
    for (kind, limit, principal) in [
        (PolicyKind::Managed, 6144, false),
        (PolicyKind::UserInline, 2048, false),
        (PolicyKind::GroupInline, 5120, false),
        (PolicyKind::RoleInline, 10240, false),
        (PolicyKind::Session, 2048, false),
        (PolicyKind::Trust, 2048, true),
    ] {
        assert_eq!(kind.max_chars(), limit);
        let at = doc_of_size(limit, principal);
        assert!(
            PolicyDocument::parse(&at, kind).is_ok(),
            "{kind:?} at limit"
        );
        // Whitespace does not count.
        let spaced = at.replace(",", " ,\n ");
        assert!(
            PolicyDocument::parse(&spaced, kind).is_ok(),
            "{kind:?} with whitespace"
        );
        let over = doc_of_size(limit + 1, principal);
        let err = PolicyDocument::parse(&over, kind).unwrap_err();
        assert_eq!(
            err,
            PolicyError::TooLarge {
                kind: kind.name(),
                limit,
                actual: limit + 1
            },
            "{kind:?}"
        );
        assert_has(
            &err.to_string(),
            &[&format!("{}", limit + 1), &format!("{limit}")],
        );
    }
}

#[test]
fn sid_rules() {
    assert_has(
        &reject_identity(r#"{"Sid":"deny-all","Effect":"Deny","Action":"s3:*","Resource":"*"}"#),
        &[
            "statement 2",
            "`Sid` `deny-all` may contain only ASCII letters and digits",
        ],
    );
    let dup = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Sid":"B","Effect":"Allow","Action":"s3:*","Resource":"*"},
        {"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;
    assert_eq!(
        reject(dup, PolicyKind::Managed),
        "statement 3: `Sid` `A` is already used by statement 1"
    );
    // Empty Sids (as in the CLI guide's trust policy) are allowed and may repeat.
    let empty = r#"{"Statement":[{"Sid":"","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    assert!(PolicyDocument::parse(empty, PolicyKind::Managed).is_ok());
}
