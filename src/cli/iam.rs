//! `sts-broker iam <action>`: one subcommand per IamService RPC, spelled and shaped like the aws
//! CLI's. Operations AWS answers with an empty output print nothing (`None`).

use super::{CallError, output, read_document};
use crate::client::Client;
use crate::proto::iam::v1 as pb;
use anyhow::Context;
use base64::Engine;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Signs `$req` for the gRPC path `/iam.v1.IamService/$op` (`$op` is the proto's rpc name), calls
/// `$method` and unwraps the answer; a failure returns from the enclosing function as a
/// [`CallError`].
macro_rules! rpc {
    ($c:expr, $method:ident, $op:literal, $req:expr) => {
        $c.iam()
            .$method($c.signed(concat!("/iam.v1.IamService/", $op), $req)?)
            .await?
            .into_inner()
    };
}

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

#[derive(Debug, Subcommand)]
pub enum IamAction {
    CreateUser {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        path: Option<String>,
    },
    GetUser {
        #[arg(long)]
        user_name: Option<String>,
    },
    ListUsers {
        #[arg(long)]
        path_prefix: Option<String>,
        #[arg(long)]
        max_items: Option<i32>,
        #[arg(long)]
        starting_token: Option<String>,
    },
    DeleteUser {
        #[arg(long)]
        user_name: String,
    },
    CreateAccessKey {
        #[arg(long)]
        user_name: Option<String>,
    },
    ListAccessKeys {
        #[arg(long)]
        user_name: Option<String>,
    },
    UpdateAccessKey {
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        access_key_id: String,
        /// Active or Inactive.
        #[arg(long)]
        status: String,
    },
    DeleteAccessKey {
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        access_key_id: String,
    },
    /// Create a virtual MFA device.
    ///
    /// With --outfile, write the secret chosen by --bootstrap-method there (mode 0600, never over
    /// an existing file) and print only the serial number; without it, print the seed and the QR
    /// PNG (base64) too.
    CreateVirtualMfaDevice {
        #[arg(long)]
        virtual_mfa_device_name: String,
        #[arg(long)]
        path: Option<String>,
        /// File to write the secret chosen by --bootstrap-method to.
        #[arg(long, requires = "bootstrap_method")]
        outfile: Option<PathBuf>,
        #[arg(long, requires = "outfile")]
        bootstrap_method: Option<BootstrapMethod>,
        /// Also draw the otpauth URI as a QR code on stderr (light on a dark terminal).
        #[arg(long)]
        show_qr: bool,
    },
    /// Enable an MFA device for a user with two consecutive codes.
    EnableMfaDevice {
        #[command(flatten)]
        codes: DeviceCodes,
    },
    /// Resynchronise an MFA device with two consecutive codes.
    ResyncMfaDevice {
        #[command(flatten)]
        codes: DeviceCodes,
    },
    /// Deactivate an MFA device and detach it from its user.
    DeactivateMfaDevice {
        #[arg(long)]
        serial_number: String,
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Delete a deactivated virtual MFA device.
    DeleteVirtualMfaDevice {
        #[arg(long)]
        serial_number: String,
    },
    /// List a user's MFA devices (the caller's by default).
    ListMfaDevices {
        #[arg(long)]
        user_name: Option<String>,
    },
    /// List the account's virtual MFA devices.
    ListVirtualMfaDevices {
        #[arg(long, value_parser = ["Assigned", "Unassigned", "Any"])]
        assignment_status: Option<String>,
    },
    /// Show one MFA device.
    GetMfaDevice {
        #[arg(long)]
        serial_number: String,
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Register hardware TOTP tokens from the vendor's seed file
    /// (`serial,seed,digits,period,algorithm` per line).
    ImportHardwareMfaDevices {
        /// `file://PATH` or a plain path.
        #[arg(long)]
        seed_file: String,
    },
    /// Clear a user's MFA failure counter and lockout.
    ResetMfaLockout {
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Create a group.
    CreateGroup {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        path: Option<String>,
    },
    /// Show a group and its members.
    GetGroup {
        #[arg(long)]
        group_name: String,
    },
    DeleteGroup {
        #[arg(long)]
        group_name: String,
    },
    AddUserToGroup {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        user_name: String,
    },
    RemoveUserFromGroup {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        user_name: String,
    },
    /// Create a role with a trust policy.
    CreateRole {
        #[arg(long)]
        role_name: String,
        /// The trust policy, inline JSON or `file://PATH`.
        #[arg(long)]
        assume_role_policy_document: String,
        /// Seconds (3600 to 43200).
        #[arg(long)]
        max_session_duration: Option<i32>,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    GetRole {
        #[arg(long)]
        role_name: String,
    },
    DeleteRole {
        #[arg(long)]
        role_name: String,
    },
    /// Replace a role's trust policy.
    UpdateAssumeRolePolicy {
        #[arg(long)]
        role_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)]
        policy_document: String,
    },
    /// Create a managed policy.
    CreatePolicy {
        #[arg(long)]
        policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)]
        policy_document: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    GetPolicy {
        #[arg(long)]
        policy_arn: String,
    },
    DeletePolicy {
        #[arg(long)]
        policy_arn: String,
    },
    ListPolicies {
        #[arg(long, value_parser = ["All", "AWS", "Local"])]
        scope: Option<String>,
        /// Only policies attached to a user, group or role.
        #[arg(long)]
        only_attached: bool,
        #[arg(long)]
        path_prefix: Option<String>,
        #[arg(long)]
        max_items: Option<i32>,
        #[arg(long)]
        starting_token: Option<String>,
    },
    AttachUserPolicy {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    AttachGroupPolicy {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    AttachRolePolicy {
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    DetachUserPolicy {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    DetachGroupPolicy {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    DetachRolePolicy {
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_arn: String,
    },
    ListAttachedUserPolicies {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        path_prefix: Option<String>,
        #[arg(long)]
        max_items: Option<i32>,
        #[arg(long)]
        starting_token: Option<String>,
    },
    /// Add or replace a user's inline policy.
    PutUserPolicy {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)]
        policy_document: String,
    },
    /// Add or replace a group's inline policy.
    PutGroupPolicy {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)]
        policy_document: String,
    },
    /// Add or replace a role's inline policy.
    PutRolePolicy {
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_name: String,
        /// Inline JSON or `file://PATH`.
        #[arg(long)]
        policy_document: String,
    },
    GetUserPolicy {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        policy_name: String,
    },
    GetGroupPolicy {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        policy_name: String,
    },
    GetRolePolicy {
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_name: String,
    },
    DeleteUserPolicy {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        policy_name: String,
    },
    DeleteGroupPolicy {
        #[arg(long)]
        group_name: String,
        #[arg(long)]
        policy_name: String,
    },
    DeleteRolePolicy {
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_name: String,
    },
    /// Evaluate policy documents against actions and resources.
    SimulateCustomPolicy {
        /// Policy documents, inline JSON or `file://PATH` (several values or repeated).
        #[arg(long, required = true, num_args = 1..)]
        policy_input_list: Vec<String>,
        #[command(flatten)]
        sim: Simulation,
    },
    /// Evaluate a user's, group's or role's policies (plus any given) against actions and
    /// resources.
    SimulatePrincipalPolicy {
        #[arg(long)]
        policy_source_arn: String,
        /// Extra policy documents, inline JSON or `file://PATH` (several values or repeated).
        #[arg(long, num_args = 1..)]
        policy_input_list: Vec<String>,
        #[command(flatten)]
        sim: Simulation,
    },
    /// Invalidate a user's or role's sessions issued before a time (the broker's own).
    RevokeSessions {
        #[arg(
            long,
            required_unless_present = "role_name",
            conflicts_with = "role_name"
        )]
        user_name: Option<String>,
        #[arg(long)]
        role_name: Option<String>,
        /// RFC 3339, e.g. `2026-01-02T03:04:05Z` (default: now).
        #[arg(long, value_parser = parse_rfc3339)]
        issued_before: Option<prost_types::Timestamp>,
    },
    /// Replace the session-token signing key (the broker's own).
    RotateSigningKey,
    /// Count the account's IAM entities.
    GetAccountSummary,
    /// Generate the credential report.
    GenerateCredentialReport,
    /// Fetch the credential report (Content is the CSV, base64-encoded).
    GetCredentialReport,
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

/// The entries one `--context-entries` value gives (JSON may give several).
#[derive(Debug, Clone)]
pub struct ContextEntries(pub Vec<pb::ContextEntry>);

/// Every entry of a repeated `--context-entries`.
pub(super) fn flatten_entries(list: Vec<ContextEntries>) -> Vec<pb::ContextEntry> {
    list.into_iter().flat_map(|e| e.0).collect()
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

/// The documents of `--policy-input-list`, each inline or `file://PATH`.
fn read_documents(list: &[String]) -> Result<Vec<String>, CallError> {
    list.iter()
        .map(|d| read_document(d))
        .collect::<anyhow::Result<_>>()
        .map_err(CallError::Local)
}

fn doc(arg: &str) -> Result<String, CallError> {
    read_document(arg).map_err(CallError::Local)
}

/// The JSON SimulateCustomPolicy and SimulatePrincipalPolicy print.
fn simulation_output(r: &pb::SimulatePolicyResponse) -> Value {
    let results: Vec<_> = r
        .evaluation_results
        .iter()
        .map(output::evaluation_result)
        .collect();
    let mut v = json!({ "EvaluationResults": results });
    if let Some(m) = &r.marker {
        v["NextToken"] = json!(m);
    }
    v
}

/// `{"<Owner>": name, "PolicyName": …, "PolicyDocument": …}` for the Get*Policy actions.
fn inline_policy(owner: &str, name: String, policy_name: String, document: &str) -> Value {
    let mut v = serde_json::Map::new();
    v.insert(owner.to_owned(), json!(name));
    v.insert("PolicyName".to_owned(), json!(policy_name));
    v.insert("PolicyDocument".to_owned(), output::document(document));
    Value::Object(v)
}

/// Runs `action`; `None` when the operation has no output.
pub(super) async fn call(c: &Client, action: IamAction) -> Result<Option<Value>, CallError> {
    use IamAction as A;
    Ok(Some(match action {
        A::CreateUser { user_name, path } => {
            let r = rpc!(
                c,
                create_user,
                "CreateUser",
                pb::CreateUserRequest { user_name, path }
            );
            json!({ "User": r.user.map(|u| output::user(&u)) })
        }
        A::GetUser { user_name } => {
            let r = rpc!(c, get_user, "GetUser", pb::GetUserRequest { user_name });
            json!({ "User": r.user.map(|u| output::user(&u)) })
        }
        A::ListUsers {
            path_prefix,
            max_items,
            starting_token,
        } => {
            let req = pb::ListUsersRequest {
                path_prefix,
                marker: starting_token,
                max_items,
            };
            let r = rpc!(c, list_users, "ListUsers", req);
            let mut v = json!({ "Users": r.users.iter().map(output::user).collect::<Vec<_>>() });
            if let Some(m) = r.marker {
                v["NextToken"] = json!(m);
            }
            v
        }
        A::DeleteUser { user_name } => {
            rpc!(
                c,
                delete_user,
                "DeleteUser",
                pb::DeleteUserRequest { user_name }
            );
            return Ok(None);
        }
        A::CreateAccessKey { user_name } => {
            let req = pb::CreateAccessKeyRequest { user_name };
            let k = rpc!(c, create_access_key, "CreateAccessKey", req)
                .access_key
                .unwrap_or_default();
            json!({ "AccessKey": {
                "UserName": k.user_name,
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "SecretAccessKey": k.secret_access_key,
                "CreateDate": output::time(k.create_date.as_ref()),
            }})
        }
        A::ListAccessKeys { user_name } => {
            let req = pb::ListAccessKeysRequest {
                user_name,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_access_keys, "ListAccessKeys", req);
            json!({ "AccessKeyMetadata": r.access_key_metadata.iter().map(|k| json!({
                "UserName": k.user_name,
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "CreateDate": output::time(k.create_date.as_ref()),
            })).collect::<Vec<_>>() })
        }
        A::UpdateAccessKey {
            user_name,
            access_key_id,
            status,
        } => {
            let req = pb::UpdateAccessKeyRequest {
                user_name,
                access_key_id,
                status,
            };
            rpc!(c, update_access_key, "UpdateAccessKey", req);
            return Ok(None);
        }
        A::DeleteAccessKey {
            user_name,
            access_key_id,
        } => {
            let req = pb::DeleteAccessKeyRequest {
                user_name,
                access_key_id,
            };
            rpc!(c, delete_access_key, "DeleteAccessKey", req);
            return Ok(None);
        }
        A::CreateVirtualMfaDevice {
            virtual_mfa_device_name,
            path,
            outfile,
            bootstrap_method,
            show_qr,
        } => {
            // Claim the file before the device exists: a refusal then leaves nothing behind.
            let out = match (outfile, bootstrap_method) {
                (Some(f), Some(m)) => Some((Outfile::claim(f).map_err(CallError::Local)?, m)),
                _ => None,
            };
            let req = pb::CreateVirtualMfaDeviceRequest {
                virtual_mfa_device_name,
                path,
            };
            let d = rpc!(c, create_virtual_mfa_device, "CreateVirtualMfaDevice", req)
                .virtual_mfa_device
                .unwrap_or_default();
            let serial = d.serial_number;
            let seed = Zeroizing::new(d.base32_string_seed);
            let png = Zeroizing::new(d.qr_code_png);
            let uri = Zeroizing::new(d.otpauth_uri);
            if show_qr {
                draw_qr(&uri);
            }
            match out {
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
            }
        }
        A::EnableMfaDevice { codes } => {
            rpc!(c, enable_mfa_device, "EnableMfaDevice", codes.enable());
            return Ok(None);
        }
        A::ResyncMfaDevice { codes } => {
            rpc!(c, resync_mfa_device, "ResyncMfaDevice", codes.resync());
            return Ok(None);
        }
        A::DeactivateMfaDevice {
            serial_number,
            user_name,
        } => {
            let req = pb::DeactivateMfaDeviceRequest {
                user_name,
                serial_number,
            };
            rpc!(c, deactivate_mfa_device, "DeactivateMfaDevice", req);
            return Ok(None);
        }
        A::DeleteVirtualMfaDevice { serial_number } => {
            let req = pb::DeleteVirtualMfaDeviceRequest { serial_number };
            rpc!(c, delete_virtual_mfa_device, "DeleteVirtualMfaDevice", req);
            return Ok(None);
        }
        A::ListMfaDevices { user_name } => {
            let req = pb::ListMfaDevicesRequest {
                user_name,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_mfa_devices, "ListMfaDevices", req);
            let devices: Vec<_> = r.mfa_devices.iter().map(output::mfa_device).collect();
            json!({ "MFADevices": devices })
        }
        A::ListVirtualMfaDevices { assignment_status } => {
            let req = pb::ListVirtualMfaDevicesRequest {
                assignment_status,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_virtual_mfa_devices, "ListVirtualMfaDevices", req);
            let devices: Vec<_> = r
                .virtual_mfa_devices
                .iter()
                .map(output::virtual_mfa_device)
                .collect();
            json!({ "VirtualMFADevices": devices })
        }
        A::GetMfaDevice {
            serial_number,
            user_name,
        } => {
            let req = pb::GetMfaDeviceRequest {
                serial_number,
                user_name,
            };
            let r = rpc!(c, get_mfa_device, "GetMfaDevice", req);
            let mut v = json!({ "UserName": r.user_name, "SerialNumber": r.serial_number });
            if r.enable_date.is_some() {
                v["EnableDate"] = output::time(r.enable_date.as_ref());
            }
            if !r.certifications.is_empty() {
                v["Certifications"] = json!(r.certifications);
            }
            v
        }
        A::ImportHardwareMfaDevices { seed_file } => {
            let seed_file = read_seed_file(&seed_file).map_err(CallError::Local)?;
            let req = pb::ImportHardwareMfaDevicesRequest {
                seed_file: seed_file.to_string(),
            };
            let r = rpc!(
                c,
                import_hardware_mfa_devices,
                "ImportHardwareMfaDevices",
                req
            );
            json!({ "SerialNumbers": r.serial_numbers })
        }
        A::ResetMfaLockout { user_name } => {
            let req = pb::ResetMfaLockoutRequest { user_name };
            rpc!(c, reset_mfa_lockout, "ResetMfaLockout", req);
            return Ok(None);
        }
        A::CreateGroup { group_name, path } => {
            let req = pb::CreateGroupRequest { group_name, path };
            let r = rpc!(c, create_group, "CreateGroup", req);
            json!({ "Group": r.group.as_ref().map(output::group) })
        }
        A::GetGroup { group_name } => {
            let r = rpc!(c, get_group, "GetGroup", pb::GetGroupRequest { group_name });
            json!({
                "Group": r.group.as_ref().map(output::group),
                "Users": r.users.iter().map(output::user).collect::<Vec<_>>(),
            })
        }
        A::DeleteGroup { group_name } => {
            let req = pb::DeleteGroupRequest { group_name };
            rpc!(c, delete_group, "DeleteGroup", req);
            return Ok(None);
        }
        A::AddUserToGroup {
            group_name,
            user_name,
        } => {
            let req = pb::AddUserToGroupRequest {
                group_name,
                user_name,
            };
            rpc!(c, add_user_to_group, "AddUserToGroup", req);
            return Ok(None);
        }
        A::RemoveUserFromGroup {
            group_name,
            user_name,
        } => {
            let req = pb::RemoveUserFromGroupRequest {
                group_name,
                user_name,
            };
            rpc!(c, remove_user_from_group, "RemoveUserFromGroup", req);
            return Ok(None);
        }
        A::CreateRole {
            role_name,
            assume_role_policy_document,
            max_session_duration,
            path,
            description,
        } => {
            let req = pb::CreateRoleRequest {
                role_name,
                assume_role_policy_document: doc(&assume_role_policy_document)?,
                max_session_duration,
                path,
                description,
            };
            let r = rpc!(c, create_role, "CreateRole", req);
            json!({ "Role": r.role.as_ref().map(output::role) })
        }
        A::GetRole { role_name } => {
            let r = rpc!(c, get_role, "GetRole", pb::GetRoleRequest { role_name });
            json!({ "Role": r.role.as_ref().map(output::role) })
        }
        A::DeleteRole { role_name } => {
            rpc!(
                c,
                delete_role,
                "DeleteRole",
                pb::DeleteRoleRequest { role_name }
            );
            return Ok(None);
        }
        A::UpdateAssumeRolePolicy {
            role_name,
            policy_document,
        } => {
            let req = pb::UpdateAssumeRolePolicyRequest {
                role_name,
                policy_document: doc(&policy_document)?,
            };
            rpc!(c, update_assume_role_policy, "UpdateAssumeRolePolicy", req);
            return Ok(None);
        }
        A::CreatePolicy {
            policy_name,
            policy_document,
            path,
            description,
        } => {
            let req = pb::CreatePolicyRequest {
                policy_name,
                policy_document: doc(&policy_document)?,
                path,
                description,
            };
            let r = rpc!(c, create_policy, "CreatePolicy", req);
            json!({ "Policy": r.policy.as_ref().map(output::policy) })
        }
        A::GetPolicy { policy_arn } => {
            let r = rpc!(
                c,
                get_policy,
                "GetPolicy",
                pb::GetPolicyRequest { policy_arn }
            );
            json!({ "Policy": r.policy.as_ref().map(output::policy) })
        }
        A::DeletePolicy { policy_arn } => {
            let req = pb::DeletePolicyRequest { policy_arn };
            rpc!(c, delete_policy, "DeletePolicy", req);
            return Ok(None);
        }
        A::ListPolicies {
            scope,
            only_attached,
            path_prefix,
            max_items,
            starting_token,
        } => {
            let req = pb::ListPoliciesRequest {
                scope,
                only_attached: only_attached.then_some(true),
                path_prefix,
                marker: starting_token,
                max_items,
            };
            let r = rpc!(c, list_policies, "ListPolicies", req);
            let mut v =
                json!({ "Policies": r.policies.iter().map(output::policy).collect::<Vec<_>>() });
            if let Some(m) = r.marker {
                v["NextToken"] = json!(m);
            }
            v
        }
        A::AttachUserPolicy {
            user_name,
            policy_arn,
        } => {
            let req = pb::AttachUserPolicyRequest {
                user_name,
                policy_arn,
            };
            rpc!(c, attach_user_policy, "AttachUserPolicy", req);
            return Ok(None);
        }
        A::AttachGroupPolicy {
            group_name,
            policy_arn,
        } => {
            let req = pb::AttachGroupPolicyRequest {
                group_name,
                policy_arn,
            };
            rpc!(c, attach_group_policy, "AttachGroupPolicy", req);
            return Ok(None);
        }
        A::AttachRolePolicy {
            role_name,
            policy_arn,
        } => {
            let req = pb::AttachRolePolicyRequest {
                role_name,
                policy_arn,
            };
            rpc!(c, attach_role_policy, "AttachRolePolicy", req);
            return Ok(None);
        }
        A::DetachUserPolicy {
            user_name,
            policy_arn,
        } => {
            let req = pb::DetachUserPolicyRequest {
                user_name,
                policy_arn,
            };
            rpc!(c, detach_user_policy, "DetachUserPolicy", req);
            return Ok(None);
        }
        A::DetachGroupPolicy {
            group_name,
            policy_arn,
        } => {
            let req = pb::DetachGroupPolicyRequest {
                group_name,
                policy_arn,
            };
            rpc!(c, detach_group_policy, "DetachGroupPolicy", req);
            return Ok(None);
        }
        A::DetachRolePolicy {
            role_name,
            policy_arn,
        } => {
            let req = pb::DetachRolePolicyRequest {
                role_name,
                policy_arn,
            };
            rpc!(c, detach_role_policy, "DetachRolePolicy", req);
            return Ok(None);
        }
        A::ListAttachedUserPolicies {
            user_name,
            path_prefix,
            max_items,
            starting_token,
        } => {
            let req = pb::ListAttachedUserPoliciesRequest {
                user_name,
                path_prefix,
                marker: starting_token,
                max_items,
            };
            let r = rpc!(
                c,
                list_attached_user_policies,
                "ListAttachedUserPolicies",
                req
            );
            let attached: Vec<_> = r
                .attached_policies
                .iter()
                .map(|p| json!({ "PolicyName": p.policy_name, "PolicyArn": p.policy_arn }))
                .collect();
            let mut v = json!({ "AttachedPolicies": attached });
            if let Some(m) = r.marker {
                v["NextToken"] = json!(m);
            }
            v
        }
        A::PutUserPolicy {
            user_name,
            policy_name,
            policy_document,
        } => {
            let req = pb::PutUserPolicyRequest {
                user_name,
                policy_name,
                policy_document: doc(&policy_document)?,
            };
            rpc!(c, put_user_policy, "PutUserPolicy", req);
            return Ok(None);
        }
        A::PutGroupPolicy {
            group_name,
            policy_name,
            policy_document,
        } => {
            let req = pb::PutGroupPolicyRequest {
                group_name,
                policy_name,
                policy_document: doc(&policy_document)?,
            };
            rpc!(c, put_group_policy, "PutGroupPolicy", req);
            return Ok(None);
        }
        A::PutRolePolicy {
            role_name,
            policy_name,
            policy_document,
        } => {
            let req = pb::PutRolePolicyRequest {
                role_name,
                policy_name,
                policy_document: doc(&policy_document)?,
            };
            rpc!(c, put_role_policy, "PutRolePolicy", req);
            return Ok(None);
        }
        A::GetUserPolicy {
            user_name,
            policy_name,
        } => {
            let req = pb::GetUserPolicyRequest {
                user_name,
                policy_name,
            };
            let r = rpc!(c, get_user_policy, "GetUserPolicy", req);
            inline_policy("UserName", r.user_name, r.policy_name, &r.policy_document)
        }
        A::GetGroupPolicy {
            group_name,
            policy_name,
        } => {
            let req = pb::GetGroupPolicyRequest {
                group_name,
                policy_name,
            };
            let r = rpc!(c, get_group_policy, "GetGroupPolicy", req);
            inline_policy("GroupName", r.group_name, r.policy_name, &r.policy_document)
        }
        A::GetRolePolicy {
            role_name,
            policy_name,
        } => {
            let req = pb::GetRolePolicyRequest {
                role_name,
                policy_name,
            };
            let r = rpc!(c, get_role_policy, "GetRolePolicy", req);
            inline_policy("RoleName", r.role_name, r.policy_name, &r.policy_document)
        }
        A::DeleteUserPolicy {
            user_name,
            policy_name,
        } => {
            let req = pb::DeleteUserPolicyRequest {
                user_name,
                policy_name,
            };
            rpc!(c, delete_user_policy, "DeleteUserPolicy", req);
            return Ok(None);
        }
        A::DeleteGroupPolicy {
            group_name,
            policy_name,
        } => {
            let req = pb::DeleteGroupPolicyRequest {
                group_name,
                policy_name,
            };
            rpc!(c, delete_group_policy, "DeleteGroupPolicy", req);
            return Ok(None);
        }
        A::DeleteRolePolicy {
            role_name,
            policy_name,
        } => {
            let req = pb::DeleteRolePolicyRequest {
                role_name,
                policy_name,
            };
            rpc!(c, delete_role_policy, "DeleteRolePolicy", req);
            return Ok(None);
        }
        A::SimulateCustomPolicy {
            policy_input_list,
            sim,
        } => {
            let req = pb::SimulateCustomPolicyRequest {
                policy_input_list: read_documents(&policy_input_list)?,
                action_names: sim.action_names,
                resource_arns: sim.resource_arns,
                context_entries: flatten_entries(sim.context_entries),
                caller_arn: None,
            };
            simulation_output(&rpc!(
                c,
                simulate_custom_policy,
                "SimulateCustomPolicy",
                req
            ))
        }
        A::SimulatePrincipalPolicy {
            policy_source_arn,
            policy_input_list,
            sim,
        } => {
            let req = pb::SimulatePrincipalPolicyRequest {
                policy_source_arn,
                policy_input_list: read_documents(&policy_input_list)?,
                action_names: sim.action_names,
                resource_arns: sim.resource_arns,
                context_entries: flatten_entries(sim.context_entries),
                caller_arn: None,
            };
            let r = rpc!(c, simulate_principal_policy, "SimulatePrincipalPolicy", req);
            simulation_output(&r)
        }
        A::RevokeSessions {
            user_name,
            role_name,
            issued_before,
        } => {
            let req = pb::RevokeSessionsRequest {
                user_name,
                role_name,
                issued_before,
            };
            rpc!(c, revoke_sessions, "RevokeSessions", req);
            return Ok(None);
        }
        A::RotateSigningKey => {
            let req = pb::RotateSigningKeyRequest {};
            let r = rpc!(c, rotate_signing_key, "RotateSigningKey", req);
            json!({ "Kid": r.kid, "PreviousKid": r.previous_kid })
        }
        A::GetAccountSummary => {
            let req = pb::GetAccountSummaryRequest {};
            let r = rpc!(c, get_account_summary, "GetAccountSummary", req);
            let map: serde_json::Map<String, Value> = r
                .summary_map
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            json!({ "SummaryMap": map })
        }
        A::GenerateCredentialReport => {
            let req = pb::GenerateCredentialReportRequest {};
            let r = rpc!(
                c,
                generate_credential_report,
                "GenerateCredentialReport",
                req
            );
            json!({ "State": r.state, "Description": r.description })
        }
        A::GetCredentialReport => {
            let req = pb::GetCredentialReportRequest {};
            let r = rpc!(c, get_credential_report, "GetCredentialReport", req);
            json!({
                "Content": base64::engine::general_purpose::STANDARD.encode(&r.content),
                "ReportFormat": r.report_format,
                "GeneratedTime": output::time(r.generated_time.as_ref()),
            })
        }
    }))
}

impl DeviceCodes {
    fn enable(self) -> pb::EnableMfaDeviceRequest {
        pb::EnableMfaDeviceRequest {
            user_name: self.user_name,
            serial_number: self.serial_number,
            authentication_code1: self.authentication_code1,
            authentication_code2: self.authentication_code2,
        }
    }

    fn resync(self) -> pb::ResyncMfaDeviceRequest {
        pb::ResyncMfaDeviceRequest {
            user_name: self.user_name,
            serial_number: self.serial_number,
            authentication_code1: self.authentication_code1,
            authentication_code2: self.authentication_code2,
        }
    }
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

/// The contents of `--seed-file`, given as `file://PATH` (as aws takes file arguments) or a path.
fn read_seed_file(arg: &str) -> anyhow::Result<Zeroizing<String>> {
    let path = Path::new(arg.strip_prefix("file://").unwrap_or(arg));
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot read seed file `{}`", path.display()))
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
        assert_eq!(read_seed_file(&url).unwrap().as_str(), "X\n");
        assert_eq!(
            read_seed_file(&f.display().to_string()).unwrap().as_str(),
            "X\n"
        );
        let e = read_seed_file("file:///nonexistent/seeds").unwrap_err();
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
