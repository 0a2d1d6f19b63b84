//! Text to [`PolicyDocument`]: checks size and characters, reads JSON with positions, validates
//! the grammar of `UG:reference_policies_grammar.md`, and compiles every pattern and condition.
//!
//! Everything that can be known to be wrong without a request is refused here, with a message
//! that names the element and the statement (1-based, in document order).

use super::condition;
use super::document::{
    ActionIndex, ActionSet, Effect, PolicyDocument, PolicyKind, Position, PrincipalEntry,
    PrincipalSet, ResourceSet, Statement, Version,
};
use super::error::PolicyError;
use super::json::{self, Json, LineIndex, Node};
use super::pattern::{ActionPattern, ArnPattern, has_wildcard};
use crate::ids::Arn;

const TOP_LEVEL: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Parses and validates a policy document of the given kind.
pub fn parse_policy(text: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
    parse_with_limit(text, kind, kind.max_chars())
}

/// Parses without the size limit (tests that need very large documents).
#[cfg(test)]
pub(crate) fn parse_policy_unchecked(text: &str) -> Result<PolicyDocument, PolicyError> {
    parse_with_limit(text, PolicyKind::Managed, usize::MAX)
}

fn parse_with_limit(
    text: &str,
    kind: PolicyKind,
    limit: usize,
) -> Result<PolicyDocument, PolicyError> {
    let lines = LineIndex::new(text);
    if let Some((offset, c)) = text
        .char_indices()
        .find(|(_, c)| !json::is_allowed_char(*c))
    {
        let (line, column) = lines.position(offset);
        return Err(PolicyError::InvalidCharacter {
            code: u32::from(c),
            line,
            column,
        });
    }
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    if size > limit {
        return Err(PolicyError::TooLarge {
            kind: kind.name(),
            limit,
            actual: size,
        });
    }
    let root = json::parse(text)?;
    let Json::Object(members) = &root.value else {
        return Err(PolicyError::malformed(
            "policy",
            format!("must be a JSON object, got {}", root.value.type_name()),
        ));
    };
    check_known("policy", members, TOP_LEVEL)?;

    let version = match find(members, "Version") {
        None => Version::V2008_10_17,
        Some(n) => match &n.value {
            Json::Str(s) if s == "2012-10-17" => Version::V2012_10_17,
            Json::Str(s) if s == "2008-10-17" => Version::V2008_10_17,
            Json::Str(s) => {
                return Err(PolicyError::malformed(
                    "policy",
                    format!("`Version` must be `2012-10-17` or `2008-10-17`, got `{s}`"),
                ));
            }
            other => {
                return Err(PolicyError::malformed(
                    "policy",
                    format!("`Version` must be a string, got {}", other.type_name()),
                ));
            }
        },
    };
    let id = find(members, "Id")
        .map(|n| string_of(n, "policy", "Id"))
        .transpose()?;
    let Some(st_node) = find(members, "Statement") else {
        return Err(PolicyError::malformed("policy", "missing `Statement`"));
    };
    let st_nodes: Vec<&Node> = match &st_node.value {
        Json::Object(_) => vec![st_node],
        Json::Array(items) => items.iter().collect(),
        other => {
            return Err(PolicyError::malformed(
                "policy",
                format!(
                    "`Statement` must be an object or an array of objects, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    let vars = version.substitutes_variables();
    let statements = st_nodes
        .iter()
        .enumerate()
        .map(|(i, n)| statement(n, i + 1, kind, vars, &lines))
        .collect::<Result<Vec<_>, _>>()?;
    // IAM: "Statement IDs (SID) in a single policy must be unique" (empty Sids are exempt).
    for (i, st) in statements.iter().enumerate() {
        if let Some(sid) = st.sid.as_deref().filter(|s| !s.is_empty())
            && let Some(j) = statements
                .get(..i)
                .and_then(|prev| prev.iter().position(|p| p.sid.as_deref() == Some(sid)))
        {
            return Err(PolicyError::malformed(
                format!("statement {}", i + 1),
                format!("`Sid` `{sid}` is already used by statement {}", j + 1),
            ));
        }
    }
    let index = ActionIndex::build(&statements);
    Ok(PolicyDocument {
        version,
        id,
        kind,
        statements,
        index,
    })
}

fn find<'a>(members: &'a [(String, Node)], key: &str) -> Option<&'a Node> {
    members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn check_known(loc: &str, members: &[(String, Node)], known: &[&str]) -> Result<(), PolicyError> {
    for (k, _) in members {
        if !known.contains(&k.as_str()) {
            let hint = known
                .iter()
                .find(|n| n.eq_ignore_ascii_case(k))
                .map(|n| format!(" (element names are case-sensitive: did you mean `{n}`?)"))
                .unwrap_or_default();
            return Err(PolicyError::malformed(
                loc,
                format!("unknown element `{k}`{hint}"),
            ));
        }
    }
    Ok(())
}

fn string_of(n: &Node, loc: &str, element: &str) -> Result<String, PolicyError> {
    match &n.value {
        Json::Str(s) => Ok(s.clone()),
        other => Err(PolicyError::malformed(
            loc,
            format!("`{element}` must be a string, got {}", other.type_name()),
        )),
    }
}

/// A string or a non-empty array of strings.
fn strings_of(n: &Node, loc: &str, element: &str) -> Result<Vec<String>, PolicyError> {
    let bad = |what: &str| {
        PolicyError::malformed(
            loc,
            format!("`{element}` must be a string or an array of strings, got {what}"),
        )
    };
    match &n.value {
        Json::Str(s) => Ok(vec![s.clone()]),
        Json::Array(items) if items.is_empty() => Err(PolicyError::malformed(
            loc,
            format!("`{element}` must not be an empty array"),
        )),
        Json::Array(items) => items
            .iter()
            .map(|i| match &i.value {
                Json::Str(s) => Ok(s.clone()),
                other => Err(bad(&format!("an array containing {}", other.type_name()))),
            })
            .collect(),
        other => Err(bad(other.type_name())),
    }
}

/// Exactly one of `a`/`b` when `required`, at most one otherwise. Returns (node, negated).
fn one_of<'a>(
    members: &'a [(String, Node)],
    a: &str,
    b: &str,
    loc: &str,
    required: bool,
) -> Result<Option<(&'a Node, bool)>, PolicyError> {
    match (find(members, a), find(members, b)) {
        (Some(_), Some(_)) => Err(PolicyError::malformed(
            loc,
            format!("has both `{a}` and `{b}`; use one"),
        )),
        (Some(n), None) => Ok(Some((n, false))),
        (None, Some(n)) => Ok(Some((n, true))),
        (None, None) if required => Err(PolicyError::malformed(
            loc,
            format!("must contain `{a}` or `{b}`"),
        )),
        (None, None) => Ok(None),
    }
}

fn statement(
    node: &Node,
    number: usize,
    kind: PolicyKind,
    vars: bool,
    lines: &LineIndex<'_>,
) -> Result<Statement, PolicyError> {
    let loc = format!("statement {number}");
    let Json::Object(members) = &node.value else {
        return Err(PolicyError::malformed(
            &loc,
            format!("must be an object, got {}", node.value.type_name()),
        ));
    };
    check_known(&loc, members, STATEMENT_ELEMENTS)?;

    let sid = find(members, "Sid")
        .map(|n| string_of(n, &loc, "Sid"))
        .transpose()?;
    if let Some(bad) = sid
        .as_deref()
        .filter(|s| !s.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(PolicyError::malformed(
            &loc,
            format!("`Sid` `{bad}` may contain only ASCII letters and digits"),
        ));
    }
    let effect = match find(members, "Effect").map(|n| &n.value) {
        None => return Err(PolicyError::malformed(&loc, "missing `Effect`")),
        Some(Json::Str(s)) if s == "Allow" => Effect::Allow,
        Some(Json::Str(s)) if s == "Deny" => Effect::Deny,
        Some(Json::Str(s)) => {
            return Err(PolicyError::malformed(
                &loc,
                format!("`Effect` must be `Allow` or `Deny`, got `{s}`"),
            ));
        }
        Some(other) => {
            return Err(PolicyError::malformed(
                &loc,
                format!(
                    "`Effect` must be `Allow` or `Deny`, got {}",
                    other.type_name()
                ),
            ));
        }
    };

    let action = match one_of(members, "Action", "NotAction", &loc, true)? {
        Some((n, negated)) => {
            let element = if negated { "NotAction" } else { "Action" };
            let patterns = strings_of(n, &loc, element)?
                .iter()
                .map(|s| {
                    ActionPattern::compile(s)
                        .map_err(|r| PolicyError::malformed(&loc, format!("`{element}`: {r}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ActionSet { negated, patterns }
        }
        None => {
            return Err(PolicyError::malformed(
                &loc,
                "must contain `Action` or `NotAction`",
            ));
        }
    };

    let principal = one_of(members, "Principal", "NotPrincipal", &loc, false)?;
    let principal = match (principal, kind.needs_principal()) {
        (Some((n, negated)), true) => Some(principal_set(n, negated, &loc)?),
        (None, true) => {
            return Err(PolicyError::malformed(
                &loc,
                format!("{} statement must contain `Principal`", kind.name()),
            ));
        }
        (Some((_, negated)), false) => {
            let element = if negated { "NotPrincipal" } else { "Principal" };
            return Err(PolicyError::malformed(
                &loc,
                format!("`{element}` is not allowed in an identity-based policy"),
            ));
        }
        (None, false) => None,
    };

    let resource = one_of(
        members,
        "Resource",
        "NotResource",
        &loc,
        kind.needs_resource(),
    )?;
    let resource = match resource {
        Some((_, negated)) if !kind.needs_resource() => {
            let element = if negated { "NotResource" } else { "Resource" };
            return Err(PolicyError::malformed(
                &loc,
                format!("`{element}` is not allowed in a trust policy"),
            ));
        }
        Some((n, negated)) => {
            let element = if negated { "NotResource" } else { "Resource" };
            let patterns = strings_of(n, &loc, element)?
                .iter()
                .map(|s| {
                    ArnPattern::compile(s, vars, true)
                        .map_err(|r| PolicyError::malformed(&loc, format!("`{element}`: {r}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(ResourceSet { negated, patterns })
        }
        None => None,
    };

    let conditions = match find(members, "Condition") {
        Some(n) => condition::compile(n, vars, &loc)?,
        None => Vec::new(),
    };

    let (sl, sc) = lines.position(node.start);
    let (el, ec) = lines.position(node.end.saturating_sub(1));
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
        start: Some(Position {
            line: sl,
            column: sc,
        }),
        end: Some(Position {
            line: el,
            column: ec,
        }),
    })
}

fn principal_set(node: &Node, negated: bool, loc: &str) -> Result<PrincipalSet, PolicyError> {
    let element = if negated { "NotPrincipal" } else { "Principal" };
    let bad = |r: String| PolicyError::malformed(loc, format!("`{element}`: {r}"));
    let entries = match &node.value {
        Json::Str(s) if s == "*" => vec![PrincipalEntry::Anyone],
        Json::Object(kinds) if !kinds.is_empty() => {
            let mut entries = Vec::new();
            for (k, v) in kinds {
                let values = strings_of(v, loc, &format!("{element}.{k}"))?;
                for value in values {
                    let entry = match k.as_str() {
                        "AWS" => aws_principal(&value).map_err(bad)?,
                        "Service" | "Federated" | "CanonicalUser" => {
                            if value.is_empty() {
                                return Err(bad(format!("empty `{k}` value")));
                            }
                            PrincipalEntry::Other(value)
                        }
                        other => {
                            return Err(bad(format!(
                                "unknown principal type `{other}`; expected `AWS`, `Service`, `Federated` or `CanonicalUser`"
                            )));
                        }
                    };
                    entries.push(entry);
                }
            }
            entries
        }
        _ => {
            return Err(bad(
                "must be `*` or an object such as {\"AWS\": \"123456789012\"}".to_owned(),
            ));
        }
    };
    Ok(PrincipalSet { negated, entries })
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn aws_principal(value: &str) -> Result<PrincipalEntry, String> {
    if value == "*" {
        return Ok(PrincipalEntry::Anyone);
    }
    if is_account_id(value) {
        return Ok(PrincipalEntry::Account(value.to_owned()));
    }
    match Arn::parse("principal", value) {
        Ok(arn) if !has_wildcard(value) => {
            if arn.service() == "iam" && arn.resource() == "root" && is_account_id(arn.account()) {
                Ok(PrincipalEntry::Account(arn.account().to_owned()))
            } else {
                Ok(PrincipalEntry::Arn(value.to_owned()))
            }
        }
        _ => Err(format!(
            "`{value}` is not `*`, a 12-digit account id or a principal ARN without wildcards"
        )),
    }
}
