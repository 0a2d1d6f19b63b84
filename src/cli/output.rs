//! Rendering answers and errors the way the aws CLI does.

use crate::proto::iam::v1 as iam;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonic_types::StatusExt;

/// An RFC 3339 timestamp, or null.
pub fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

pub fn user(u: &iam::User) -> Value {
    let mut v = json!({
        "Path": u.path,
        "UserName": u.user_name,
        "UserId": u.user_id,
        "Arn": u.arn,
        "CreateDate": time(u.create_date.as_ref()),
    });
    if u.user_name.is_empty()
        && let Some(o) = v.as_object_mut()
    {
        o.remove("Path");
        o.remove("UserName");
    }
    v
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
