//! `sts-broker iam <action>`: one subcommand per IamService RPC, spelled and shaped like the aws
//! CLI's, each one entry of the [`verbs!`] table below. Operations AWS answers with an empty
//! output print nothing.

use super::verbs::{Document, Field, TextFile, verbs};
use super::{CallError, output};
use crate::proto::iam::v1 as pb;
use anyhow::Context;
use base64::Engine;
use clap::ValueEnum;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Which secret `create-virtual-mfa-device --outfile` writes (the aws CLI's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BootstrapMethod {
    /// The QR code as a PNG image.
    #[value(name = "QRCodePNG")]
    QrCodePng,
    /// The seed as base32 text.
    #[value(name = "Base32StringSeed")]
    Base32StringSeed,
}

verbs! {
    enum IamAction;
    fn call(client.iam);

    CreateUser => create_user(pb::CreateUserRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] path: Option<String>,
    } => |r| json!({ "User": r.user.as_ref().map(output::user) });

    GetUser => get_user(pb::GetUserRequest) {
        #[arg(long)] user_name: Option<String>,
    } => |r| json!({ "User": r.user.as_ref().map(output::user) });

    ListUsers => list_users(pb::ListUsersRequest) {
        #[arg(long)] path_prefix: Option<String>,
        #[arg(long)] max_items: Option<i32>,
        #[arg(long = "starting-token", value_name = "STARTING_TOKEN")] marker: Option<String>,
    } => |r| paged("Users", r.users.iter().map(output::user), r.marker);

    DeleteUser => delete_user(pb::DeleteUserRequest) {
        #[arg(long)] user_name: String,
    };

    CreateAccessKey => create_access_key(pb::CreateAccessKeyRequest) {
        #[arg(long)] user_name: Option<String>,
    } => |r| {
        let k = r.access_key.unwrap_or_default();
        json!({ "AccessKey": {
            "UserName": k.user_name,
            "AccessKeyId": k.access_key_id,
            "Status": k.status,
            "SecretAccessKey": k.secret_access_key,
            "CreateDate": output::time(k.create_date.as_ref()),
        }})
    };

    ListAccessKeys => list_access_keys(pb::ListAccessKeysRequest) {
        #[arg(long)] user_name: Option<String>,
    } fixed { marker: None, max_items: None }
    => |r| json!({ "AccessKeyMetadata": r.access_key_metadata.iter().map(|k| json!({
        "UserName": k.user_name,
        "AccessKeyId": k.access_key_id,
        "Status": k.status,
        "CreateDate": output::time(k.create_date.as_ref()),
    })).collect::<Vec<_>>() });

    UpdateAccessKey => update_access_key(pb::UpdateAccessKeyRequest) {
        #[arg(long)] user_name: Option<String>,
        #[arg(long)] access_key_id: String,
        /// Active or Inactive.
        #[arg(long)] status: String,
    };

    DeleteAccessKey => delete_access_key(pb::DeleteAccessKeyRequest) {
        #[arg(long)] user_name: Option<String>,
        #[arg(long)] access_key_id: String,
    };

    /// Create a virtual MFA device.
    ///
    /// With --outfile, write the secret chosen by --bootstrap-method there (mode 0600, never over
    /// an existing file) and print only the serial number; without it, print the seed and the QR
    /// PNG (base64) too.
    CreateVirtualMfaDevice => create_virtual_mfa_device(pb::CreateVirtualMfaDeviceRequest) {
        #[arg(long)] virtual_mfa_device_name: String,
        #[arg(long)] path: Option<String>,
        /// File to write the secret chosen by --bootstrap-method to.
        #[arg(long, requires = "bootstrap_method")] outfile: Option<PathBuf>,
        #[arg(long, requires = "outfile")] bootstrap_method: Option<BootstrapMethod>,
        /// Also draw the otpauth URI as a QR code on stderr (light on a dark terminal).
        #[arg(long)] show_qr: bool,
    }
    // Claim the file before the device exists: a refusal then leaves nothing behind.
    before { let out = claim_outfile(outfile, bootstrap_method)?; }
    request { pb::CreateVirtualMfaDeviceRequest { virtual_mfa_device_name, path } }
    => |r| created_device(r, out, show_qr)?;

    /// Enable an MFA device for a user with two consecutive codes.
    EnableMfaDevice => enable_mfa_device(pb::EnableMfaDeviceRequest) {
        #[command(flatten)] codes: DeviceCodes,
    } request { codes.into() };

    /// Resynchronise an MFA device with two consecutive codes.
    ResyncMfaDevice => resync_mfa_device(pb::ResyncMfaDeviceRequest) {
        #[command(flatten)] codes: DeviceCodes,
    } request { codes.into() };

    /// Deactivate an MFA device and detach it from its user.
    DeactivateMfaDevice => deactivate_mfa_device(pb::DeactivateMfaDeviceRequest) {
        #[arg(long)] serial_number: String,
        #[arg(long)] user_name: Option<String>,
    };

    /// Delete a deactivated virtual MFA device.
    DeleteVirtualMfaDevice => delete_virtual_mfa_device(pb::DeleteVirtualMfaDeviceRequest) {
        #[arg(long)] serial_number: String,
    };

    /// List a user's MFA devices (the caller's by default).
    ListMfaDevices => list_mfa_devices(pb::ListMfaDevicesRequest) {
        #[arg(long)] user_name: Option<String>,
    } fixed { marker: None, max_items: None }
    => |r| json!({ "MFADevices": r.mfa_devices.iter().map(output::mfa_device).collect::<Vec<_>>() });

    /// List the account's virtual MFA devices.
    ListVirtualMfaDevices => list_virtual_mfa_devices(pb::ListVirtualMfaDevicesRequest) {
        #[arg(long, value_parser = ["Assigned", "Unassigned", "Any"])]
        assignment_status: Option<String>,
    } fixed { marker: None, max_items: None }
    => |r| json!({ "VirtualMFADevices": r.virtual_mfa_devices.iter()
        .map(output::virtual_mfa_device).collect::<Vec<_>>() });

    /// Show one MFA device.
    GetMfaDevice => get_mfa_device(pb::GetMfaDeviceRequest) {
        #[arg(long)] serial_number: String,
        #[arg(long)] user_name: Option<String>,
    } => |r| {
        let mut v = json!({ "UserName": r.user_name, "SerialNumber": r.serial_number });
        if r.enable_date.is_some() {
            v["EnableDate"] = output::time(r.enable_date.as_ref());
        }
        if !r.certifications.is_empty() {
            v["Certifications"] = json!(r.certifications);
        }
        v
    };

    /// Register hardware TOTP tokens from the vendor's seed file
    /// (`serial,seed,digits,period,algorithm` per line).
    ImportHardwareMfaDevices => import_hardware_mfa_devices(pb::ImportHardwareMfaDevicesRequest) {
        /// `file://PATH` or a plain path.
        #[arg(long)] seed_file: TextFile,
    } request {
        let text = seed_file.read("seed file").map_err(CallError::Local)?;
        pb::ImportHardwareMfaDevicesRequest { seed_file: text.to_string() }
    } => |r| json!({ "SerialNumbers": r.serial_numbers });

    /// Clear a user's MFA failure counter and lockout.
    ResetMfaLockout => reset_mfa_lockout(pb::ResetMfaLockoutRequest) {
        #[arg(long)] user_name: Option<String>,
    };

    /// Create a group.
    CreateGroup => create_group(pb::CreateGroupRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] path: Option<String>,
    } => |r| json!({ "Group": r.group.as_ref().map(output::group) });

    /// Show a group and its members.
    GetGroup => get_group(pb::GetGroupRequest) {
        #[arg(long)] group_name: String,
    } => |r| json!({
        "Group": r.group.as_ref().map(output::group),
        "Users": r.users.iter().map(output::user).collect::<Vec<_>>(),
    });

    DeleteGroup => delete_group(pb::DeleteGroupRequest) {
        #[arg(long)] group_name: String,
    };

    AddUserToGroup => add_user_to_group(pb::AddUserToGroupRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] user_name: String,
    };

    RemoveUserFromGroup => remove_user_from_group(pb::RemoveUserFromGroupRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] user_name: String,
    };

    /// Create a role with a trust policy.
    CreateRole => create_role(pb::CreateRoleRequest) {
        #[arg(long)] role_name: String,
        /// The trust policy, inline JSON or `file://PATH`.
        #[arg(long)] assume_role_policy_document: Document,
        /// Seconds (3600 to 43200).
        #[arg(long)] max_session_duration: Option<i32>,
        #[arg(long)] path: Option<String>,
        #[arg(long)] description: Option<String>,
    } => |r| json!({ "Role": r.role.as_ref().map(output::role) });

    GetRole => get_role(pb::GetRoleRequest) {
        #[arg(long)] role_name: String,
    } => |r| json!({ "Role": r.role.as_ref().map(output::role) });

    DeleteRole => delete_role(pb::DeleteRoleRequest) {
        #[arg(long)] role_name: String,
    };

    /// Replace a role's trust policy.
    UpdateAssumeRolePolicy => update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest) {
        #[arg(long)] role_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)] policy_document: Document,
    };

    /// Create a managed policy.
    CreatePolicy => create_policy(pb::CreatePolicyRequest) {
        #[arg(long)] policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)] policy_document: Document,
        #[arg(long)] path: Option<String>,
        #[arg(long)] description: Option<String>,
    } => |r| json!({ "Policy": r.policy.as_ref().map(output::policy) });

    GetPolicy => get_policy(pb::GetPolicyRequest) {
        #[arg(long)] policy_arn: String,
    } => |r| json!({ "Policy": r.policy.as_ref().map(output::policy) });

    DeletePolicy => delete_policy(pb::DeletePolicyRequest) {
        #[arg(long)] policy_arn: String,
    };

    ListPolicies => list_policies(pb::ListPoliciesRequest) {
        #[arg(long, value_parser = ["All", "AWS", "Local"])] scope: Option<String>,
        /// Only policies attached to a user, group or role.
        #[arg(long)] only_attached: bool,
        #[arg(long)] path_prefix: Option<String>,
        #[arg(long)] max_items: Option<i32>,
        #[arg(long = "starting-token", value_name = "STARTING_TOKEN")] marker: Option<String>,
    } => |r| paged("Policies", r.policies.iter().map(output::policy), r.marker);

    AttachUserPolicy => attach_user_policy(pb::AttachUserPolicyRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] policy_arn: String,
    };

    AttachGroupPolicy => attach_group_policy(pb::AttachGroupPolicyRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] policy_arn: String,
    };

    AttachRolePolicy => attach_role_policy(pb::AttachRolePolicyRequest) {
        #[arg(long)] role_name: String,
        #[arg(long)] policy_arn: String,
    };

    DetachUserPolicy => detach_user_policy(pb::DetachUserPolicyRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] policy_arn: String,
    };

    DetachGroupPolicy => detach_group_policy(pb::DetachGroupPolicyRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] policy_arn: String,
    };

    DetachRolePolicy => detach_role_policy(pb::DetachRolePolicyRequest) {
        #[arg(long)] role_name: String,
        #[arg(long)] policy_arn: String,
    };

    ListAttachedUserPolicies => list_attached_user_policies(pb::ListAttachedUserPoliciesRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] path_prefix: Option<String>,
        #[arg(long)] max_items: Option<i32>,
        #[arg(long = "starting-token", value_name = "STARTING_TOKEN")] marker: Option<String>,
    } => |r| paged(
        "AttachedPolicies",
        r.attached_policies
            .iter()
            .map(|p| json!({ "PolicyName": p.policy_name, "PolicyArn": p.policy_arn })),
        r.marker,
    );

    /// Add or replace a user's inline policy.
    PutUserPolicy => put_user_policy(pb::PutUserPolicyRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)] policy_document: Document,
    };

    /// Add or replace a group's inline policy.
    PutGroupPolicy => put_group_policy(pb::PutGroupPolicyRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)] policy_document: Document,
    };

    /// Add or replace a role's inline policy.
    PutRolePolicy => put_role_policy(pb::PutRolePolicyRequest) {
        #[arg(long)] role_name: String,
        #[arg(long)] policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)] policy_document: Document,
    };

    GetUserPolicy => get_user_policy(pb::GetUserPolicyRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] policy_name: String,
    } => |r| inline_policy("UserName", r.user_name, r.policy_name, &r.policy_document);

    GetGroupPolicy => get_group_policy(pb::GetGroupPolicyRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] policy_name: String,
    } => |r| inline_policy("GroupName", r.group_name, r.policy_name, &r.policy_document);

    GetRolePolicy => get_role_policy(pb::GetRolePolicyRequest) {
        #[arg(long)] role_name: String,
        #[arg(long)] policy_name: String,
    } => |r| inline_policy("RoleName", r.role_name, r.policy_name, &r.policy_document);

    DeleteUserPolicy => delete_user_policy(pb::DeleteUserPolicyRequest) {
        #[arg(long)] user_name: String,
        #[arg(long)] policy_name: String,
    };

    DeleteGroupPolicy => delete_group_policy(pb::DeleteGroupPolicyRequest) {
        #[arg(long)] group_name: String,
        #[arg(long)] policy_name: String,
    };

    DeleteRolePolicy => delete_role_policy(pb::DeleteRolePolicyRequest) {
        #[arg(long)] role_name: String,
        #[arg(long)] policy_name: String,
    };

    /// Evaluate policy documents against actions and resources.
    SimulateCustomPolicy => simulate_custom_policy(pb::SimulateCustomPolicyRequest) {
        /// Policy documents, inline JSON or `file://PATH` (several values or repeated).
        #[arg(long, required = true, num_args = 1..)] policy_input_list: Vec<Document>,
        #[command(flatten)] sim: Simulation,
    } request {
        pb::SimulateCustomPolicyRequest {
            policy_input_list: policy_input_list.into_field()?,
            ..sim.into()
        }
    } => |r| simulation_output(&r);

    /// Evaluate a user's, group's or role's policies (plus any given) against actions and
    /// resources.
    SimulatePrincipalPolicy => simulate_principal_policy(pb::SimulatePrincipalPolicyRequest) {
        #[arg(long)] policy_source_arn: String,
        /// Extra policy documents, inline JSON or `file://PATH` (several values or repeated).
        #[arg(long, num_args = 1..)] policy_input_list: Vec<Document>,
        #[command(flatten)] sim: Simulation,
    } request {
        pb::SimulatePrincipalPolicyRequest {
            policy_source_arn,
            policy_input_list: policy_input_list.into_field()?,
            ..sim.into()
        }
    } => |r| simulation_output(&r);

    /// Invalidate a user's or role's sessions issued before a time (the broker's own).
    RevokeSessions => revoke_sessions(pb::RevokeSessionsRequest) {
        #[arg(long, required_unless_present = "role_name", conflicts_with = "role_name")]
        user_name: Option<String>,
        #[arg(long)] role_name: Option<String>,
        /// RFC 3339, e.g. `2026-01-02T03:04:05Z` (default: now).
        #[arg(long, value_parser = parse_rfc3339)] issued_before: Option<prost_types::Timestamp>,
    };

    /// Replace the session-token signing key (the broker's own).
    RotateSigningKey => rotate_signing_key(pb::RotateSigningKeyRequest) {}
    => |r| json!({ "Kid": r.kid, "PreviousKid": r.previous_kid });

    /// Count the account's IAM entities.
    GetAccountSummary => get_account_summary(pb::GetAccountSummaryRequest) {}
    => |r| {
        let map: serde_json::Map<String, Value> =
            r.summary_map.into_iter().map(|(k, v)| (k, json!(v))).collect();
        json!({ "SummaryMap": map })
    };

    /// Generate the credential report.
    GenerateCredentialReport => generate_credential_report(pb::GenerateCredentialReportRequest) {}
    => |r| json!({ "State": r.state, "Description": r.description });

    /// Fetch the credential report (Content is the CSV, base64-encoded).
    GetCredentialReport => get_credential_report(pb::GetCredentialReportRequest) {}
    => |r| json!({
        "Content": base64::engine::general_purpose::STANDARD.encode(&r.content),
        "ReportFormat": r.report_format,
        "GeneratedTime": output::time(r.generated_time.as_ref()),
    });
}

/// `From<Group>` for each request the flag group fills (the rest of the request at its default).
macro_rules! group_into {
    ($Group:ident => $($Req:ident),+; |$g:ident| $fields:tt) => {$(
        impl From<$Group> for pb::$Req {
            fn from($g: $Group) -> Self {
                Self $fields
            }
        }
    )+};
}

/// The arguments EnableMFADevice and ResyncMFADevice share.
#[derive(Debug, clap::Args)]
pub struct DeviceCodes {
    #[arg(long)]
    user_name: String,
    #[arg(long)]
    serial_number: String,
    /// A code the device shows.
    #[arg(long, alias = "authentication-code-1")]
    authentication_code1: String,
    /// The code the device shows next.
    #[arg(long, alias = "authentication-code-2")]
    authentication_code2: String,
}

group_into!(DeviceCodes => EnableMfaDeviceRequest, ResyncMfaDeviceRequest; |d| {
    user_name: d.user_name,
    serial_number: d.serial_number,
    authentication_code1: d.authentication_code1,
    authentication_code2: d.authentication_code2,
});

/// The arguments SimulateCustomPolicy and SimulatePrincipalPolicy share.
#[derive(Debug, clap::Args)]
pub struct Simulation {
    /// Actions to evaluate, e.g. `s3:GetObject` (several values or repeated).
    #[arg(long, required = true, num_args = 1..)]
    action_names: Vec<String>,
    /// Resource ARNs to evaluate each action on (default `*`; several values or repeated).
    #[arg(long, num_args = 1..)]
    resource_arns: Vec<String>,
    /// Request-context keys (several values or repeated), each in aws's shorthand
    /// `ContextKeyName=K,ContextKeyValues=V1,V2,ContextKeyType=stringList`: values follow
    /// `ContextKeyValues=` up to the next `Name=` member, may be bracketed
    /// (`ContextKeyValues=[V1,V2]`) or given by repeating `ContextKeyValues=`; ContextKeyType
    /// defaults to `string`. A JSON object or array of objects with those members works too.
    #[arg(long, num_args = 1.., value_parser = parse_context_entries)]
    context_entries: Vec<ContextEntries>,
}

group_into!(Simulation => SimulateCustomPolicyRequest, SimulatePrincipalPolicyRequest; |s| {
    action_names: s.action_names,
    resource_arns: s.resource_arns,
    context_entries: flatten_entries(s.context_entries),
    ..Default::default()
});

/// The entries one `--context-entries` value gives (JSON may give several).
#[derive(Debug, Clone)]
pub struct ContextEntries(pub Vec<pb::ContextEntry>);

/// Every entry of a repeated `--context-entries`.
fn flatten_entries(list: Vec<ContextEntries>) -> Vec<pb::ContextEntry> {
    list.into_iter().flat_map(|e| e.0).collect()
}

impl Field<Vec<pb::ContextEntry>> for Vec<ContextEntries> {
    fn into_field(self) -> Result<Vec<pb::ContextEntry>, CallError> {
        Ok(flatten_entries(self))
    }
}

/// Parses one `--context-entries` value: aws shorthand or JSON (see the flag's help).
pub(super) fn parse_context_entries(arg: &str) -> Result<ContextEntries, String> {
    let t = arg.trim();
    if t.starts_with('{') || t.starts_with('[') {
        return context_entries_json(t).map(ContextEntries);
    }
    let (mut name, mut values, mut kind) = (None, Vec::new(), None);
    // The member the last `Key=` opened; bare items continue ContextKeyValues only.
    let mut current = "";
    for item in t.split(',') {
        let (key, value) = match item.split_once('=') {
            Some((k, v))
                if matches!(
                    k.trim(),
                    "ContextKeyName" | "ContextKeyValues" | "ContextKeyType"
                ) =>
            {
                (k.trim(), v)
            }
            _ if current == "ContextKeyValues" => ("ContextKeyValues", item),
            _ => {
                return Err(format!(
                    "`{item}`: expected ContextKeyName=, ContextKeyValues= or ContextKeyType="
                ));
            }
        };
        current = key;
        match key {
            "ContextKeyName" => name = Some(value.to_owned()),
            "ContextKeyType" => kind = Some(value.to_owned()),
            _ => {
                let v = value.trim_start_matches('[').trim_end_matches(']');
                if !v.is_empty() {
                    values.push(v.to_owned());
                }
            }
        }
    }
    let name = name.ok_or("ContextKeyName= is required")?;
    Ok(ContextEntries(vec![pb::ContextEntry {
        context_key_name: name,
        context_key_values: values,
        context_key_type: kind.unwrap_or_else(|| "string".to_owned()),
    }]))
}

fn context_entries_json(t: &str) -> Result<Vec<pb::ContextEntry>, String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase", deny_unknown_fields)]
    struct Entry {
        context_key_name: String,
        #[serde(default)]
        context_key_values: Vec<String>,
        context_key_type: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Entry),
        Many(Vec<Entry>),
    }
    let entries = match serde_json::from_str(t).map_err(|e| e.to_string())? {
        OneOrMany::One(e) => vec![e],
        OneOrMany::Many(v) => v,
    };
    Ok(entries
        .into_iter()
        .map(|e| pb::ContextEntry {
            context_key_name: e.context_key_name,
            context_key_values: e.context_key_values,
            context_key_type: e.context_key_type.unwrap_or_else(|| "string".to_owned()),
        })
        .collect())
}

fn parse_rfc3339(arg: &str) -> Result<prost_types::Timestamp, String> {
    let t = time::OffsetDateTime::parse(arg, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2026-01-02T03:04:05Z"))?;
    Ok(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    })
}

/// `{"<key>": items}`, plus `NextToken` when the answer was cut short.
fn paged(key: &str, items: impl Iterator<Item = Value>, marker: Option<String>) -> Value {
    let mut v = json!({ key: items.collect::<Vec<_>>() });
    if let Some(m) = marker {
        v["NextToken"] = json!(m);
    }
    v
}

/// The JSON SimulateCustomPolicy and SimulatePrincipalPolicy print.
fn simulation_output(r: &pb::SimulatePolicyResponse) -> Value {
    let results = r.evaluation_results.iter().map(output::evaluation_result);
    paged("EvaluationResults", results, r.marker.clone())
}

/// `{"<Owner>": name, "PolicyName": …, "PolicyDocument": …}` for the Get*Policy actions.
fn inline_policy(owner: &str, name: String, policy_name: String, document: &str) -> Value {
    let mut v = serde_json::Map::new();
    v.insert(owner.to_owned(), json!(name));
    v.insert("PolicyName".to_owned(), json!(policy_name));
    v.insert("PolicyDocument".to_owned(), output::document(document));
    Value::Object(v)
}

/// The outfile and what to write there, claimed when both flags are given.
fn claim_outfile(
    outfile: Option<PathBuf>,
    method: Option<BootstrapMethod>,
) -> Result<Option<(Outfile, BootstrapMethod)>, CallError> {
    match (outfile, method) {
        (Some(f), Some(m)) => Ok(Some((Outfile::claim(f).map_err(CallError::Local)?, m))),
        _ => Ok(None),
    }
}

/// What create-virtual-mfa-device prints: with an outfile, only the serial (the secret went to
/// the file); without one, the seed and the QR PNG too.
fn created_device(
    r: pb::CreateVirtualMfaDeviceResponse,
    out: Option<(Outfile, BootstrapMethod)>,
    show_qr: bool,
) -> Result<Value, CallError> {
    let d = r.virtual_mfa_device.unwrap_or_default();
    let serial = d.serial_number;
    let seed = Zeroizing::new(d.base32_string_seed);
    let png = Zeroizing::new(d.qr_code_png);
    let uri = Zeroizing::new(d.otpauth_uri);
    if show_qr {
        draw_qr(&uri);
    }
    Ok(match out {
        Some((file, method)) => {
            let bytes: &[u8] = match method {
                BootstrapMethod::QrCodePng => &png,
                BootstrapMethod::Base32StringSeed => seed.as_bytes(),
            };
            file.write(bytes).map_err(|e| {
                CallError::Local(e.context(format!("virtual MFA device {serial} created")))
            })?;
            json!({ "VirtualMFADevice": { "SerialNumber": serial } })
        }
        None => json!({ "VirtualMFADevice": {
            "SerialNumber": serial,
            "Base32StringSeed": seed.as_str(),
            "QRCodePNG": base64::engine::general_purpose::STANDARD.encode(&*png),
        }}),
    })
}

/// A new, empty mode-0600 file claimed for a secret; removed again unless written.
struct Outfile {
    path: PathBuf,
    file: Option<File>,
}

impl Outfile {
    fn claim(path: PathBuf) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "refusing to overwrite existing file `{}`; choose another --outfile",
                        path.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!("cannot create `{}`", path.display()))
                }
            })?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    fn write(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut file = self.file.take().context("outfile already written")?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&self.path);
            return Err(
                anyhow::Error::new(e).context(format!("cannot write `{}`", self.path.display()))
            );
        }
        Ok(())
    }
}

impl Drop for Outfile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Draws `uri` as a QR code on stderr, light modules as blocks so it scans on a dark terminal.
fn draw_qr(uri: &str) {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let image = Zeroizing::new(
                code.render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .build(),
            );
            eprintln!("{}", image.as_str());
        }
        Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<IamAction, clap::Error> {
        #[derive(Debug, Parser)]
        struct T {
            #[command(subcommand)]
            a: IamAction,
        }
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.a)
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    fn entry(arg: &str) -> pb::ContextEntry {
        let mut e = parse_context_entries(arg).unwrap().0;
        assert_eq!(e.len(), 1, "{arg}");
        e.remove(0)
    }

    #[test]
    fn context_entries_take_the_aws_shorthand_and_json() {
        let e = entry("ContextKeyName=aws:SourceIp,ContextKeyValues=10.0.0.1,ContextKeyType=ip");
        assert_eq!(e.context_key_name, "aws:SourceIp");
        assert_eq!(e.context_key_values, ["10.0.0.1"]);
        assert_eq!(e.context_key_type, "ip");
        for list in [
            "ContextKeyName=k,ContextKeyValues=a,b,ContextKeyType=stringList",
            "ContextKeyName=k,ContextKeyValues=[a,b],ContextKeyType=stringList",
            "ContextKeyName=k,ContextKeyValues=a,ContextKeyValues=b,ContextKeyType=stringList",
            r#"{"ContextKeyName":"k","ContextKeyValues":["a","b"],"ContextKeyType":"stringList"}"#,
        ] {
            let e = entry(list);
            assert_eq!(e.context_key_values, ["a", "b"], "{list}");
            assert_eq!(e.context_key_type, "stringList", "{list}");
        }
        assert_eq!(
            entry("ContextKeyName=k,ContextKeyValues=v").context_key_type,
            "string"
        );
        let many = parse_context_entries(
            r#"[{"ContextKeyName":"a","ContextKeyValues":["1"]},{"ContextKeyName":"b"}]"#,
        )
        .unwrap();
        assert_eq!(many.0.len(), 2);
        assert!(parse_context_entries("ContextKeyValues=v").is_err());
        assert!(parse_context_entries("Name=k,Values=v").is_err());
        assert!(parse_context_entries(r#"{"Bogus":1}"#).is_err());
    }

    #[test]
    fn simulation_lists_take_several_values_or_repeats() {
        let a = parse(&[
            "simulate-custom-policy",
            "--policy-input-list",
            "{}",
            "--action-names",
            "s3:GetObject",
            "s3:PutObject",
            "--action-names",
            "s3:ListBucket",
            "--context-entries",
            "ContextKeyName=a,ContextKeyValues=1",
            "ContextKeyName=b,ContextKeyValues=2",
        ])
        .unwrap();
        let IamAction::SimulateCustomPolicy { sim, .. } = a else {
            unreachable!()
        };
        assert_eq!(
            sim.action_names,
            ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
        );
        assert_eq!(flatten_entries(sim.context_entries).len(), 2);
        assert!(parse(&["simulate-custom-policy", "--action-names", "s3:GetObject"]).is_err());
    }

    #[test]
    fn revoke_sessions_takes_exactly_one_principal_and_an_rfc3339_time() {
        assert!(parse(&["revoke-sessions"]).is_err());
        assert!(parse(&["revoke-sessions", "--user-name", "a", "--role-name", "r"]).is_err());
        assert!(
            parse(&[
                "revoke-sessions",
                "--role-name",
                "r",
                "--issued-before",
                "yesterday"
            ])
            .is_err()
        );
        let a = parse(&[
            "revoke-sessions",
            "--user-name",
            "a",
            "--issued-before",
            "2026-01-02T03:04:05Z",
        ])
        .unwrap();
        let IamAction::RevokeSessions { issued_before, .. } = a else {
            unreachable!()
        };
        assert_eq!(issued_before.unwrap().seconds, 1_767_323_045);
    }

    #[test]
    fn authentication_codes_take_both_spellings() {
        for (one, two) in [
            ("--authentication-code1", "--authentication-code2"),
            ("--authentication-code-1", "--authentication-code-2"),
        ] {
            let a = parse(&[
                "enable-mfa-device",
                "--user-name",
                "alice",
                "--serial-number",
                "S",
                one,
                "111111",
                two,
                "222222",
            ])
            .unwrap();
            let IamAction::EnableMfaDevice { codes } = a else {
                unreachable!()
            };
            assert_eq!(codes.authentication_code1, "111111");
            assert_eq!(codes.authentication_code2, "222222");
        }
    }

    #[test]
    fn outfile_and_bootstrap_method_come_together() {
        let base = [
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "d",
        ];
        assert!(parse(&[&base[..], &["--outfile", "f"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--bootstrap-method", "QRCodePNG"]].concat()).is_err());
        assert!(
            parse(&[&base[..], &["--outfile", "f", "--bootstrap-method", "qr"]].concat()).is_err()
        );
        let a = parse(
            &[
                &base[..],
                &["--outfile", "f", "--bootstrap-method", "Base32StringSeed"],
            ]
            .concat(),
        )
        .unwrap();
        assert!(matches!(
            a,
            IamAction::CreateVirtualMfaDevice {
                bootstrap_method: Some(BootstrapMethod::Base32StringSeed),
                ..
            }
        ));
    }

    #[test]
    fn seed_files_are_read_from_file_urls_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("seeds.csv");
        std::fs::write(&f, "X\n").unwrap();
        let url = format!("file://{}", f.display());
        let read = |arg: String| TextFile::from(arg).read("seed file");
        assert_eq!(read(url).unwrap().as_str(), "X\n");
        assert_eq!(read(f.display().to_string()).unwrap().as_str(), "X\n");
        let e = read("file:///nonexistent/seeds".into()).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/seeds"));
    }

    #[test]
    fn an_outfile_is_private_never_overwritten_and_removed_unless_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("seed");
        let claimed = Outfile::claim(f.clone()).unwrap();
        let e = Outfile::claim(f.clone()).err().unwrap().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
        drop(claimed);
        assert!(!f.exists(), "an unwritten claim is removed");
        Outfile::claim(f.clone()).unwrap().write(b"abc").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abc");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
