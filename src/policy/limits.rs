//! The bounds on what one request may ask the policy engine to evaluate, in one place.
//!
//! AWS's numbers come from the IAM API Reference (the shapes `ResourceNameType`, `arnType`,
//! `ActionNameType`, `policyDocumentType` and `ContextKeyNameType` of `SimulateCustomPolicy`,
//! `SimulatePrincipalPolicy` and `ContextEntry`) and from the IAM User Guide page "IAM and AWS
//! STS quotas" (`UG:reference_iam-quotas.md`). AWS documents no maximum *number* of actions,
//! resources, policies or context entries in a simulation; where a bound below is the broker's
//! own choice, its comment says so and why the number is large enough for real use.
//!
//! Documents given to the engine are bounded separately by their kind, at parse time
//! ([`super::PolicyKind::max_chars`]: 6,144 non-whitespace characters for a managed policy or a
//! simulation input, 2,048 for a user inline policy, 10,240 for a role inline policy, ...), so
//! no single pattern in a document can be longer than its document.
//!
//! The checks run before anything is parsed or evaluated, and a value over a bound is a
//! `ValidationError` naming the field and the limit. Together with linear-time wildcard
//! matching (`pattern::Matcher`) they make one (action, resource) evaluation cost at most about
//! (policy text) × (longest ARN or context value); [`MAX_SIMULATION_RESULTS`] bounds how many
//! such evaluations one simulation may ask for.

use crate::ids::ValidationError;

use super::ContextEntry;

/// Longest ARN the broker accepts as a request's resource or a simulation's resource or policy
/// source: 2,048 characters, AWS's `ResourceNameType`/`arnType` maximum.
pub const MAX_ARN_CHARS: usize = 2048;

/// Longest action name: 128 characters, AWS's `ActionNameType` maximum.
pub const MAX_ACTION_NAME_CHARS: usize = 128;

/// Longest policy document in a simulation's `PolicyInputList`, whitespace included: 131,072
/// characters, AWS's `policyDocumentType` maximum. The document must then also fit the managed
/// policy quota of 6,144 non-whitespace characters, which the parser checks.
pub const MAX_SIMULATION_POLICY_CHARS: usize = 131_072;

/// Most documents in a simulation's `PolicyInputList`. The broker's choice: 20 is the most
/// managed policies AWS lets one user or role have attached (after a quota increase; the
/// default is 10), so a principal's managed policies always fit in one simulation.
pub const MAX_SIMULATION_POLICIES: usize = 20;

/// Most results one simulation may produce: `actionNames` × `resourceArns` (an empty resource
/// list counts as one, `*`). The broker's choice: 1,000 is the most results one page of AWS's
/// answer can carry (`MaxItems` is at most 1,000), and the broker answers in one page.
pub const MAX_SIMULATION_RESULTS: usize = 1000;

/// Longest context key name: 256 characters, AWS's `ContextKeyNameType` maximum.
pub const MAX_CONTEXT_KEY_CHARS: usize = 256;

/// Most context entries in one request. The broker's choice: AWS defines fewer than a hundred
/// global condition keys and a service adds a few dozen of its own; 100 leaves room for both.
pub const MAX_CONTEXT_ENTRIES: usize = 100;

/// Most values of one context entry. The broker's choice: 50 is the most tags a resource or
/// principal can carry in AWS, the largest multi-valued key (`aws:TagKeys`) AWS builds itself.
pub const MAX_CONTEXT_VALUES: usize = 50;

/// Longest context value. The broker's choice: the longest single value AWS places in a
/// request context is an ARN (`aws:SourceArn`, `aws:PrincipalArn`), so [`MAX_ARN_CHARS`].
pub const MAX_CONTEXT_VALUE_CHARS: usize = MAX_ARN_CHARS;

/// Checks the inputs of `SimulateCustomPolicy` (`policy_source_arn` = `None`) and
/// `SimulatePrincipalPolicy` against the bounds above, before anything is parsed.
pub fn check_simulation(
    policy_source_arn: Option<&str>,
    policy_inputs: &[impl AsRef<str>],
    action_names: &[impl AsRef<str>],
    resource_arns: &[impl AsRef<str>],
    context_entries: &[ContextEntry],
) -> Result<(), ValidationError> {
    if let Some(arn) = policy_source_arn {
        max_chars("policySourceArn", arn, MAX_ARN_CHARS)?;
    }
    max_items(
        "policyInputList",
        policy_inputs.len(),
        MAX_SIMULATION_POLICIES,
    )?;
    for p in policy_inputs {
        max_chars(
            "policyInputList.member",
            p.as_ref(),
            MAX_SIMULATION_POLICY_CHARS,
        )?;
    }
    max_items("actionNames", action_names.len(), MAX_SIMULATION_RESULTS)?;
    max_items("resourceArns", resource_arns.len(), MAX_SIMULATION_RESULTS)?;
    let results = action_names
        .len()
        .saturating_mul(resource_arns.len().max(1));
    if results > MAX_SIMULATION_RESULTS {
        return Err(ValidationError {
            field: "actionNames",
            shown: format!(
                "of {} actionNames and {} resourceArns",
                action_names.len(),
                resource_arns.len()
            ),
            expected: format!(
                "the number of actionNames times the number of resourceArns must be less than or equal to {MAX_SIMULATION_RESULTS}"
            ),
        });
    }
    for a in action_names {
        max_chars("actionNames.member", a.as_ref(), MAX_ACTION_NAME_CHARS)?;
    }
    for r in resource_arns {
        max_chars("resourceArns.member", r.as_ref(), MAX_ARN_CHARS)?;
    }
    check_context(context_entries)
}

/// Checks the inputs of `Authorize` against the bounds above, before the token is verified.
pub fn check_authorize(
    action: &str,
    resource: &str,
    context_entries: &[ContextEntry],
) -> Result<(), ValidationError> {
    max_chars("action", action, MAX_ACTION_NAME_CHARS)?;
    max_chars("resource", resource, MAX_ARN_CHARS)?;
    check_context(context_entries)
}

fn check_context(entries: &[ContextEntry]) -> Result<(), ValidationError> {
    max_items("contextEntries", entries.len(), MAX_CONTEXT_ENTRIES)?;
    for e in entries {
        max_chars(
            "contextEntries.member.contextKeyName",
            &e.context_key_name,
            MAX_CONTEXT_KEY_CHARS,
        )?;
        max_items(
            "contextEntries.member.contextKeyValues",
            e.context_key_values.len(),
            MAX_CONTEXT_VALUES,
        )?;
        for v in &e.context_key_values {
            max_chars(
                "contextEntries.member.contextKeyValues.member",
                v,
                MAX_CONTEXT_VALUE_CHARS,
            )?;
        }
    }
    Ok(())
}

fn max_chars(field: &'static str, value: &str, limit: usize) -> Result<(), ValidationError> {
    // A string with at most `limit` bytes has at most `limit` characters: skip the count.
    if value.len() <= limit || value.chars().count() <= limit {
        return Ok(());
    }
    Err(ValidationError::new(
        field,
        value,
        format!("Member must have length less than or equal to {limit}"),
    ))
}

fn max_items(field: &'static str, count: usize, limit: usize) -> Result<(), ValidationError> {
    if count <= limit {
        return Ok(());
    }
    Err(ValidationError {
        field,
        shown: format!("with {count} members"),
        expected: format!("Member must have length less than or equal to {limit}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    fn entry(name: &str, values: Vec<String>) -> ContextEntry {
        ContextEntry {
            context_key_name: name.to_owned(),
            context_key_values: values,
            context_key_type: "stringList".to_owned(),
        }
    }

    fn message(r: Result<(), ValidationError>) -> String {
        r.expect_err("over the limit").to_string()
    }

    #[test]
    fn values_at_each_limit_pass() {
        let arn = format!("arn:aws:s3:::{}", "a".repeat(MAX_ARN_CHARS - 13));
        let action = format!("s3:{}", "A".repeat(MAX_ACTION_NAME_CHARS - 3));
        let policies = vec![" ".repeat(MAX_SIMULATION_POLICY_CHARS); MAX_SIMULATION_POLICIES];
        let actions = vec![action.clone(); MAX_SIMULATION_RESULTS];
        let value = "é".repeat(MAX_CONTEXT_VALUE_CHARS);
        let entries = vec![
            entry(
                &"k".repeat(MAX_CONTEXT_KEY_CHARS),
                vec![value; MAX_CONTEXT_VALUES]
            );
            MAX_CONTEXT_ENTRIES
        ];
        check_simulation(Some(&arn), &policies, &actions, &[&arn], &entries).unwrap();
        check_simulation(None, &policies, &[&action], &vec![&arn; 1000], &[]).unwrap();
        check_authorize(&action, &arn, &entries).unwrap();
    }

    #[test]
    fn each_bound_names_its_field_and_limit() {
        let long_arn = format!("arn:aws:s3:::{}", "a".repeat(MAX_ARN_CHARS));
        let long_action = format!("s3:{}", "A".repeat(MAX_ACTION_NAME_CHARS));
        let ok_action = "s3:GetObject";
        let cases: Vec<(Result<(), ValidationError>, &str, usize)> = vec![
            (
                check_simulation(Some(&long_arn), NONE, &[ok_action], NONE, &[]),
                "'policySourceArn'",
                2048,
            ),
            (
                check_simulation(None, &vec!["{}"; 21], &[ok_action], NONE, &[]),
                "'policyInputList'",
                20,
            ),
            (
                check_simulation(None, &[" ".repeat(131_073)], &[ok_action], NONE, &[]),
                "'policyInputList.member'",
                131_072,
            ),
            (
                check_simulation(None, &["{}"], &vec![ok_action; 1001], NONE, &[]),
                "'actionNames'",
                1000,
            ),
            (
                check_simulation(None, &["{}"], &[ok_action], &vec!["*"; 1001], &[]),
                "'resourceArns'",
                1000,
            ),
            (
                check_simulation(None, &["{}"], &vec![ok_action; 40], &vec!["*"; 26], &[]),
                "'actionNames'",
                1000,
            ),
            (
                check_simulation(None, &["{}"], &[&long_action], NONE, &[]),
                "'actionNames.member'",
                128,
            ),
            (
                check_simulation(None, &["{}"], &[ok_action], &[&long_arn], &[]),
                "'resourceArns.member'",
                2048,
            ),
            (check_authorize(&long_action, "*", &[]), "'action'", 128),
            (
                check_authorize(ok_action, &long_arn, &[]),
                "'resource'",
                2048,
            ),
            (
                check_authorize(ok_action, "*", &vec![entry("aws:x", vec![]); 101]),
                "'contextEntries'",
                100,
            ),
            (
                check_authorize(ok_action, "*", &[entry(&"k".repeat(257), vec![])]),
                "'contextEntries.member.contextKeyName'",
                256,
            ),
            (
                check_authorize(ok_action, "*", &[entry("aws:x", vec![String::new(); 51])]),
                "'contextEntries.member.contextKeyValues'",
                50,
            ),
            (
                check_authorize(ok_action, "*", &[entry("aws:x", vec!["v".repeat(2049)])]),
                "'contextEntries.member.contextKeyValues.member'",
                2048,
            ),
        ];
        for (result, field, limit) in cases {
            let m = message(result);
            assert!(m.contains(&format!("at {field} failed")), "{m}");
            assert!(m.contains(&format!("less than or equal to {limit}")), "{m}");
            assert!(m.len() < 400, "the value is echoed only in part: {m}");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        // 2,048 two-byte characters are 4,096 bytes but within the limit.
        let arn = "é".repeat(MAX_ARN_CHARS);
        check_authorize("s3:GetObject", &arn, &[]).unwrap();
        let over = "é".repeat(MAX_ARN_CHARS + 1);
        assert!(check_authorize("s3:GetObject", &over, &[]).is_err());
    }
}
