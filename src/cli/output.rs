//! Rendering answers and errors the way the aws CLI does.

use crate::proto::iam::v1 as iam;
use clap::ValueEnum;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tonic_types::StatusExt;

/// RFC 3339 in UTC with `Z`, as `credential_process` consumers and the SDKs want it.
const RFC3339_Z: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// `2026-11-27T23:28:33Z` for a Unix time (`credential_process`, `AWS_CREDENTIAL_EXPIRATION`).
pub fn time_z(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(RFC3339_Z).ok())
        .unwrap_or_default()
}

/// `--output` for `sts` and `iam` actions, as the aws CLI offers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Json,
    /// Tab-separated lines, as `aws --output text` prints them.
    Text,
    /// A boxed table for people.
    Table,
}

/// Renders an answer of operation `op` (e.g. `GetSessionToken`) in `format`, ending in a newline.
pub fn render(op: &str, v: &Value, format: Format) -> String {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Text => text(v),
        Format::Table => table(op, v),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// aws's text format: per object, its scalar members sorted by name on one tab-separated line
/// (after the upper-cased member name that holds the object, if any), then its non-scalar members
/// in name order.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    text_into(v, None, &mut out);
    out
}

fn text_into(v: &Value, id: Option<&str>, out: &mut String) {
    let line = |out: &mut String, mut fields: Vec<String>| {
        if let Some(id) = id {
            fields.insert(0, id.to_uppercase());
        }
        out.push_str(&fields.join("\t"));
        out.push('\n');
    };
    match v {
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let scalars: Vec<String> = members
                .iter()
                .filter(|(_, v)| is_scalar(v))
                .map(|(_, v)| scalar(v))
                .collect();
            if !scalars.is_empty() {
                line(out, scalars);
            }
            for (k, v) in members.iter().filter(|(_, v)| !is_scalar(v)) {
                text_into(v, Some(k), out);
            }
        }
        Value::Array(items) if items.iter().all(is_scalar) => {
            if id.is_some() {
                for i in items {
                    line(out, vec![scalar(i)]);
                }
            } else if !items.is_empty() {
                line(out, items.iter().map(scalar).collect());
            }
        }
        Value::Array(items) => {
            for i in items {
                text_into(i, id, out);
            }
        }
        other => line(out, vec![scalar(other)]),
    }
}

enum Row {
    Section(String),
    Pair(String, String),
}

fn table_rows(name: &str, m: &Map<String, Value>, rows: &mut Vec<Row>) {
    let mut members: Vec<(&String, &Value)> = m.iter().collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    let scalars: Vec<_> = members.iter().filter(|(_, v)| is_scalar(v)).collect();
    if !scalars.is_empty() && !name.is_empty() {
        rows.push(Row::Section(name.to_owned()));
    }
    for (k, v) in scalars {
        rows.push(Row::Pair((*k).clone(), scalar(v)));
    }
    for (k, v) in members.iter().filter(|(_, v)| !is_scalar(v)) {
        let sub = if name.is_empty() {
            (*k).clone()
        } else {
            format!("{name}.{k}")
        };
        match v {
            Value::Object(o) => table_rows(&sub, o, rows),
            Value::Array(items) if items.iter().all(is_scalar) => {
                let joined: Vec<String> = items.iter().map(scalar).collect();
                rows.push(Row::Pair((*k).clone(), joined.join(", ")));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let sub = format!("{sub}[{i}]");
                    match item {
                        Value::Object(o) => table_rows(&sub, o, rows),
                        other => rows.push(Row::Pair(sub, scalar(other))),
                    }
                }
            }
            _ => {}
        }
    }
}

/// A small boxed table: the operation's name, then each object's scalar members as name | value
/// rows under a heading naming the object.
pub fn table(op: &str, v: &Value) -> String {
    let mut rows = Vec::new();
    match v {
        Value::Object(m) => table_rows("", m, &mut rows),
        other => rows.push(Row::Pair(String::new(), scalar(other))),
    }
    let len = |s: &str| s.chars().count();
    let kw = rows
        .iter()
        .filter_map(|r| match r {
            Row::Pair(k, _) => Some(len(k)),
            Row::Section(_) => None,
        })
        .max()
        .unwrap_or(0);
    let mut vw = rows
        .iter()
        .map(|r| match r {
            Row::Pair(_, v) => len(v),
            Row::Section(s) => len(s).saturating_sub(kw + 3),
        })
        .max()
        .unwrap_or(0)
        .max(len(op).saturating_sub(kw + 3));
    vw = vw.max(1);
    let inner = kw + vw + 3;
    let full = format!("+{}+\n", "-".repeat(inner + 2));
    let split = format!("+{}+{}+\n", "-".repeat(kw + 2), "-".repeat(vw + 2));
    let mut out = String::new();
    out.push_str(&full);
    out.push_str(&format!("| {op:^inner$} |\n"));
    let mut last_section = true;
    for r in &rows {
        match r {
            Row::Section(s) => {
                out.push_str(if last_section { &full } else { &split });
                out.push_str(&format!("| {s:<inner$} |\n"));
                out.push_str(&split);
                last_section = false;
            }
            Row::Pair(k, v) => {
                if last_section {
                    out.push_str(&split);
                    last_section = false;
                }
                out.push_str(&format!("| {k:<kw$} | {v:<vw$} |\n"));
            }
        }
    }
    out.push_str(if last_section { &full } else { &split });
    out
}

/// An RFC 3339 timestamp as aws prints it (`2026-11-27T23:28:33+00:00`), or null.
pub fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .map_or(Value::Null, |t| Value::String(crate::clock::aws_time(t)))
}

/// STS `Credentials` as aws prints them (`Expiration` as `2026-11-27T23:28:33+00:00`).
pub fn credentials(c: &crate::proto::sts::v1::Credentials) -> Value {
    json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "SessionToken": c.session_token,
        "Expiration": time(c.expiration.as_ref()),
    })
}

/// What users, groups and roles print alike, in aws's order: `Path`, `<Kind>Name`, `<Kind>Id`,
/// `Arn` and `CreateDate`.
fn principal(
    kind: &str,
    path: &str,
    [name, id, arn]: [&str; 3],
    created: Option<&prost_types::Timestamp>,
) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("Path".to_owned(), json!(path));
    v.insert(format!("{kind}Name"), json!(name));
    v.insert(format!("{kind}Id"), json!(id));
    v.insert("Arn".to_owned(), json!(arn));
    v.insert("CreateDate".to_owned(), time(created));
    Value::Object(v)
}

pub fn user(u: &iam::User) -> Value {
    let ids = [&*u.user_name, &u.user_id, &u.arn];
    let mut v = principal("User", &u.path, ids, u.create_date.as_ref());
    if u.user_name.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.remove("Path");
        o.remove("UserName");
    }
    v
}

/// An `MFADevice` (ListMFADevices).
pub fn mfa_device(d: &iam::MfaDevice) -> Value {
    json!({
        "UserName": d.user_name,
        "SerialNumber": d.serial_number,
        "EnableDate": time(d.enable_date.as_ref()),
    })
}

/// A `VirtualMFADevice` as listed: `User` and `EnableDate` only when it is assigned.
pub fn virtual_mfa_device(d: &iam::VirtualMfaDevice) -> Value {
    let mut v = json!({ "SerialNumber": d.serial_number });
    if let Some(u) = &d.user {
        v["User"] = user(u);
    }
    if d.enable_date.is_some() {
        v["EnableDate"] = time(d.enable_date.as_ref());
    }
    v
}

/// A policy document as aws prints it: the parsed JSON, or the text when it does not parse.
pub fn document(doc: &str) -> Value {
    serde_json::from_str(doc).unwrap_or_else(|_| Value::String(doc.to_owned()))
}

/// A `Role`; `Description` only when it has one, as aws prints it.
pub fn role(r: &iam::Role) -> Value {
    let ids = [&*r.role_name, &r.role_id, &r.arn];
    let mut v = principal("Role", &r.path, ids, r.create_date.as_ref());
    v["AssumeRolePolicyDocument"] = document(&r.assume_role_policy_document);
    v["MaxSessionDuration"] = json!(r.max_session_duration);
    if !r.description.is_empty() {
        v["Description"] = json!(r.description);
    }
    v
}

pub fn group(g: &iam::Group) -> Value {
    let ids = [&*g.group_name, &g.group_id, &g.arn];
    principal("Group", &g.path, ids, g.create_date.as_ref())
}

/// A managed `Policy`; `Description` only when it has one, as aws prints it.
pub fn policy(p: &iam::Policy) -> Value {
    let mut v = json!({
        "PolicyName": p.policy_name,
        "PolicyId": p.policy_id,
        "Arn": p.arn,
        "Path": p.path,
        "DefaultVersionId": p.default_version_id,
        "AttachmentCount": p.attachment_count,
        "IsAttachable": p.is_attachable,
        "CreateDate": time(p.create_date.as_ref()),
        "UpdateDate": time(p.update_date.as_ref()),
    });
    if !p.description.is_empty() {
        v["Description"] = json!(p.description);
    }
    v
}

/// An `EvalDecision` as aws prints it: `allowed`, `explicitDeny` or `implicitDeny`.
pub fn decision(d: i32) -> Value {
    json!(match iam::EvalDecision::try_from(d) {
        Ok(iam::EvalDecision::Allowed) => "allowed",
        Ok(iam::EvalDecision::ExplicitDeny) => "explicitDeny",
        Ok(iam::EvalDecision::ImplicitDeny) => "implicitDeny",
        _ => "unspecified",
    })
}

fn position(p: Option<&iam::Position>) -> Value {
    let p = p.cloned().unwrap_or_default();
    json!({ "Line": p.line, "Column": p.column })
}

/// A matched `Statement` (simulation, authorization).
pub fn statement(s: &iam::Statement) -> Value {
    json!({
        "SourcePolicyId": s.source_policy_id,
        "SourcePolicyType": s.source_policy_type,
        "StartPosition": position(s.start_position.as_ref()),
        "EndPosition": position(s.end_position.as_ref()),
    })
}

pub fn statements(list: &[iam::Statement]) -> Value {
    Value::Array(list.iter().map(statement).collect())
}

/// An `EvaluationResult` of SimulateCustomPolicy / SimulatePrincipalPolicy.
pub fn evaluation_result(r: &iam::EvaluationResult) -> Value {
    json!({
        "EvalActionName": r.eval_action_name,
        "EvalResourceName": r.eval_resource_name,
        "EvalDecision": decision(r.eval_decision),
        "MatchedStatements": statements(&r.matched_statements),
        "MissingContextValues": r.missing_context_values,
    })
}

/// `An error occurred (Code) when calling the Op operation: message`, as aws prints it.
pub fn describe_status(operation: &str, s: &tonic::Status) -> String {
    let code = s
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_else(|| format!("{:?}", s.code()));
    format!(
        "An error occurred ({code}) when calling the {operation} operation: {}",
        s.message()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_the_aws_cli_prints_them() {
        let t = prost_types::Timestamp {
            seconds: 1_795_822_113,
            nanos: 5,
        };
        assert_eq!(time(Some(&t)), json!("2026-11-27T23:28:33+00:00"));
        assert_eq!(time(None), Value::Null);
        assert_eq!(time_z(1_795_822_113), "2026-11-27T23:28:33Z");
    }

    #[test]
    fn text_output_sorts_scalars_and_prefixes_nested_objects() {
        let v = json!({
            "PackedPolicySize": 6,
            "Credentials": {"SessionToken": "t", "AccessKeyId": "ASIA", "SecretAccessKey": "s",
                            "Expiration": "2026-11-27T23:28:33+00:00"},
            "AssumedRoleUser": {"Arn": "arn", "AssumedRoleId": "AROA:x"},
        });
        assert_eq!(
            text(&v),
            "6\nASSUMEDROLEUSER\tarn\tAROA:x\n\
             CREDENTIALS\tASIA\t2026-11-27T23:28:33+00:00\ts\tt\n"
        );
        let id =
            json!({"UserId": "AIDA", "Account": "123456789012", "Arn": "arn:aws:iam::1:user/a"});
        assert_eq!(text(&id), "123456789012\tarn:aws:iam::1:user/a\tAIDA\n");
        assert_eq!(
            text(&json!({"SerialNumbers": ["A", "B"]})),
            "SERIALNUMBERS\tA\nSERIALNUMBERS\tB\n"
        );
    }

    #[test]
    fn table_output_is_boxed_and_aligned() {
        let v = json!({"Credentials": {"AccessKeyId": "ASIA", "Expiration": "2026"}});
        let t = table("GetSessionToken", &v);
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{t}");
        assert!(
            t.contains("GetSessionToken") && t.contains("| Credentials"),
            "{t}"
        );
        assert!(t.contains("| AccessKeyId | ASIA"), "{t}");
        assert!(t.starts_with('+') && t.ends_with("+\n"), "{t}");
    }
}
