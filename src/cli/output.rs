//! Rendering answers and errors the way the aws CLI does.

use crate::proto::iam::v1 as iam;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use tonic_types::StatusExt;

/// RFC 3339 in UTC with a numeric offset, as the aws CLI prints timestamps.
const AWS_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");

/// An RFC 3339 timestamp as aws prints it (`2026-11-27T23:28:33+00:00`), or null.
pub fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(AWS_TIME).ok())
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
    }
}
