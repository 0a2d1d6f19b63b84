//! Policy evaluation with MFA conditions at 1, 10, 100 and 1000 statements, next to
//! `cedar-policy` evaluating equivalent policies in the same run.
//!
//! Shape of the policy set (both engines): `n - 1` statements that allow another action
//! (`s3:OtherAction{i}`, same service so the service prefix does not filter them) and one that
//! allows `s3:GetObject`; every statement carries the same MFA condition
//! (`aws:MultiFactorAuthPresent` is true and `aws:MultiFactorAuthAge` < 3600). The request is
//! `s3:GetObject` with MFA present and 120 s old, so the answer is Allow in both engines.
//!
//! IAM documents are limited to 6,144 non-whitespace characters (managed policies), so the
//! statements are split over managed policies of at most 25 statements each (1000 statements =
//! 40 documents). Cedar gets one policy per statement, with no schema and no entities.
//!
//! Run: `cargo bench --bench policy`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sts_broker::policy::{
    Context, ContextValue, Number, PolicyDocument, PolicyKind, PolicySource, Request, SourceType,
    evaluate, keys,
};

const SIZES: [usize; 4] = [1, 10, 100, 1000];
const PER_DOCUMENT: usize = 25;

fn iam_statement(action: &str) -> String {
    format!(
        r#"{{"Effect":"Allow","Action":"{action}","Resource":"*","Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"true"}},"NumericLessThan":{{"aws:MultiFactorAuthAge":"3600"}}}}}}"#
    )
}

/// The action of statement `i` of `n`: the last one is the one the request asks for.
fn action_name(i: usize, n: usize) -> String {
    if i + 1 == n {
        "GetObject".to_string()
    } else {
        format!("OtherAction{i}")
    }
}

fn iam_sources(n: usize) -> Vec<PolicySource> {
    let actions: Vec<String> = (0..n)
        .map(|i| format!("s3:{}", action_name(i, n)))
        .collect();
    actions
        .chunks(PER_DOCUMENT)
        .enumerate()
        .map(|(d, chunk)| {
            let statements: Vec<String> = chunk.iter().map(|a| iam_statement(a)).collect();
            let text = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                statements.join(",")
            );
            let document = PolicyDocument::parse(&text, PolicyKind::Managed).expect("parses");
            PolicySource {
                id: format!("arn:aws:iam::123456789012:policy/bench-{d}"),
                kind: SourceType::UserManaged,
                document: Arc::new(document),
            }
        })
        .collect()
}

fn iam_request() -> Request {
    let context = Context::new()
        .with(keys::MULTI_FACTOR_AUTH_PRESENT, ContextValue::Bool(true))
        .with(
            keys::MULTI_FACTOR_AUTH_AGE,
            ContextValue::Numeric(Number::from_i64(120)),
        )
        .with_string(keys::PRINCIPAL_ARN, "arn:aws:iam::123456789012:user/alice");
    Request {
        action: "s3:GetObject".to_string(),
        resource: "arn:aws:s3:::bucket/key".to_string(),
        principal_arn: "arn:aws:iam::123456789012:user/alice".to_string(),
        context,
    }
}

fn cedar_policies(n: usize) -> cedar_policy::PolicySet {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "permit(principal, action == Action::\"{}\", resource) when {{ context.mfa_present == true && context.mfa_age < 3600 }};\n",
                action_name(i, n)
            )
        })
        .collect();
    cedar_policy::PolicySet::from_str(&text).expect("cedar parses")
}

fn cedar_request() -> cedar_policy::Request {
    use cedar_policy::{EntityUid, RestrictedExpression};
    let context = cedar_policy::Context::from_pairs([
        (
            "mfa_present".to_string(),
            RestrictedExpression::new_bool(true),
        ),
        ("mfa_age".to_string(), RestrictedExpression::new_long(120)),
    ])
    .expect("context");
    cedar_policy::Request::new(
        EntityUid::from_str(r#"User::"alice""#).expect("uid"),
        EntityUid::from_str(r#"Action::"GetObject""#).expect("uid"),
        EntityUid::from_str(r#"Object::"bucket/key""#).expect("uid"),
        context,
        None,
    )
    .expect("request")
}

fn evaluation(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_eval_mfa");
    let request = iam_request();
    let cedar_req = cedar_request();
    let authorizer = cedar_policy::Authorizer::new();
    let entities = cedar_policy::Entities::empty();
    for n in SIZES {
        let sources = iam_sources(n);
        // Both engines must agree before their speed is compared.
        assert!(evaluate(&sources, &request).is_allowed());
        let cedar_set = cedar_policies(n);
        assert_eq!(
            authorizer
                .is_authorized(&cedar_req, &cedar_set, &entities)
                .decision(),
            cedar_policy::Decision::Allow
        );
        group.bench_with_input(BenchmarkId::new("broker", n), &n, |b, _| {
            b.iter(|| evaluate(black_box(&sources), black_box(&request)))
        });
        group.bench_with_input(BenchmarkId::new("cedar", n), &n, |b, _| {
            b.iter(|| {
                authorizer.is_authorized(
                    black_box(&cedar_req),
                    black_box(&cedar_set),
                    black_box(&entities),
                )
            })
        });
    }
    group.finish();
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_parse");
    let statements: Vec<String> = (0..PER_DOCUMENT)
        .map(|i| iam_statement(&format!("s3:{}", action_name(i, PER_DOCUMENT))))
        .collect();
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    group.bench_function(format!("broker_{PER_DOCUMENT}_statements"), |b| {
        b.iter(|| PolicyDocument::parse(black_box(&text), PolicyKind::Managed).expect("parses"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::config();
    targets = evaluation, parsing
}
criterion_main!(benches);
