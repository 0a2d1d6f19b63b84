//! Request messages → use-case inputs (`crate::broker::input`): every field is parsed here,
//! with the member parsers every door shares (`crate::broker::input::members`), and a bad one
//! refused with a `ValidationError` naming it, before the broker is called.
//!
//! Proto3 cannot tell an empty string from an absent one, so an empty required member is
//! AWS's "Member must not be null", and an empty optional one is absent.

use crate::broker::input::members::*;
use crate::broker::input::*;
use crate::broker::possession::{SignedRequest, Subject};
use crate::domain::PrincipalKind;
use crate::ids::{
    AccessKeyId, Arn, KeyStatus, MaxItems, RoleArn, RoleName, RoleSessionName, SessionDuration,
    ValidationError, VirtualMfaDeviceName, optional, required,
};
use crate::policy::ContextEntry;
use crate::proto::authz::v1 as authz;
use crate::proto::iam::v1 as pb;
use crate::proto::sts::v1 as sts;
use zeroize::Zeroizing;

pub(super) fn entries(list: &[pb::ContextEntry]) -> Vec<ContextEntry> {
    list.iter()
        .map(|e| ContextEntry {
            context_key_name: e.context_key_name.clone(),
            context_key_values: e.context_key_values.clone(),
            context_key_type: e.context_key_type.clone(),
        })
        .collect()
}

/// Whose session an `Authorize` is about: the forwarded signed request (proof of possession),
/// or else the bare `sessionToken`.
fn subject(m: &authz::AuthorizeRequest) -> Parsed<Subject> {
    let Some(r) = &m.signed_request else {
        return Ok(Subject::Bearer(document("sessionToken", &m.session_token)?));
    };
    let headers = r
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let signed = SignedRequest::parse(
        &m.service,
        &r.method,
        &r.path,
        &r.query,
        headers,
        &r.payload_sha256,
    )?;
    if !m.session_token.is_empty() && signed.security_token() != Some(m.session_token.as_str()) {
        return Err(ValidationError::members(
            "sessionToken",
            "'sessionToken' must be empty or equal to the x-amz-security-token header of 'signedRequest'",
        ));
    }
    Ok(Subject::Signed(signed))
}

/// Implements `TryFrom<&Request>` for each row: `Request => Input |m| construction`.
macro_rules! inputs {
    ($($req:ty => $input:ty |$m:ident| $build:expr;)*) => {$(
        impl TryFrom<&$req> for $input {
            type Error = ValidationError;

            fn try_from($m: &$req) -> Parsed<Self> {
                Ok($build)
            }
        }
    )*};
}

inputs! {
    sts::GetSessionTokenRequest => GetSessionToken |m| {
        let duration = m
            .duration_seconds
            .map(|d| SessionDuration::requested(d, SessionDuration::SESSION_TOKEN_MAX))
            .transpose()?;
        let mfa = mfa(m.serial_number.as_deref(), m.token_code.as_deref())?;
        GetSessionToken { duration, mfa }
    };
    sts::AssumeRoleRequest => AssumeRole |m| {
        let role_arn = RoleArn::parse("roleArn", required("roleArn", &m.role_arn)?)?;
        let session_name = RoleSessionName::parse(&m.role_session_name)?;
        let duration = m
            .duration_seconds
            .map(|d| SessionDuration::requested(d, SessionDuration::ROLE_SESSION_MAX))
            .transpose()?;
        let mfa = mfa(m.serial_number.as_deref(), m.token_code.as_deref())?;
        AssumeRole { role_arn, session_name, duration, mfa, policy: m.policy.clone() }
    };
    authz::AuthorizeRequest => Authorize |m| Authorize {
        subject: subject(m)?,
        action: document("action", &m.action)?,
        resource: document("resource", &m.resource)?,
        context: entries(&m.context_entries),
    };

    pb::CreateUserRequest => CreateUser |m| CreateUser {
        user_name: user(&m.user_name)?,
        path: path(m.path.as_deref())?,
    };
    pb::GetUserRequest => ForUser |m| ForUser { user_name: some_user(m.user_name.as_deref())? };
    pb::ListUsersRequest => ListUsers |m| ListUsers {
        path_prefix: path_prefix(m.path_prefix.as_deref())?,
        marker: m.marker.clone(),
        max_items: MaxItems::parse(m.max_items)?,
    };
    pb::DeleteUserRequest => DeleteUser |m| DeleteUser { user_name: user(&m.user_name)? };
    pb::CreateAccessKeyRequest => ForUser |m| ForUser { user_name: some_user(m.user_name.as_deref())? };
    pb::ListAccessKeysRequest => ForUser |m| ForUser { user_name: some_user(m.user_name.as_deref())? };
    pb::UpdateAccessKeyRequest => UpdateAccessKey |m| UpdateAccessKey {
        user_name: some_user(m.user_name.as_deref())?,
        access_key_id: AccessKeyId::parse(required("accessKeyId", &m.access_key_id)?)?,
        status: KeyStatus::parse(&m.status)?,
    };
    pb::DeleteAccessKeyRequest => DeleteAccessKey |m| DeleteAccessKey {
        user_name: some_user(m.user_name.as_deref())?,
        access_key_id: AccessKeyId::parse(required("accessKeyId", &m.access_key_id)?)?,
    };

    pb::CreateVirtualMfaDeviceRequest => CreateVirtualMfaDevice |m| CreateVirtualMfaDevice {
        name: VirtualMfaDeviceName::parse(&m.virtual_mfa_device_name)?,
        path: path(m.path.as_deref())?,
    };
    pb::EnableMfaDeviceRequest => BindMfaDevice |m|
        bind([&m.user_name, &m.serial_number, &m.authentication_code1, &m.authentication_code2])?;
    pb::ResyncMfaDeviceRequest => BindMfaDevice |m|
        bind([&m.user_name, &m.serial_number, &m.authentication_code1, &m.authentication_code2])?;
    pb::DeactivateMfaDeviceRequest => UserDevice |m| UserDevice {
        user_name: some_user(m.user_name.as_deref())?,
        serial: serial(&m.serial_number)?,
    };
    pb::GetMfaDeviceRequest => UserDevice |m| UserDevice {
        user_name: some_user(m.user_name.as_deref())?,
        serial: serial(&m.serial_number)?,
    };
    pb::DeleteVirtualMfaDeviceRequest => DeleteVirtualMfaDevice |m| DeleteVirtualMfaDevice {
        serial: serial(&m.serial_number)?,
    };
    pb::ListMfaDevicesRequest => ForUser |m| ForUser { user_name: some_user(m.user_name.as_deref())? };
    pb::ListVirtualMfaDevicesRequest => ListVirtualMfaDevices |m| ListVirtualMfaDevices {
        assignment: assignment(m.assignment_status.as_deref())?,
    };
    pb::ImportHardwareMfaDevicesRequest => ImportHardwareMfaDevices |m| ImportHardwareMfaDevices {
        seed_file: Zeroizing::new(m.seed_file.clone()),
    };
    pb::ResetMfaLockoutRequest => ForUser |m| ForUser { user_name: some_user(m.user_name.as_deref())? };

    pb::CreateGroupRequest => CreateGroup |m| CreateGroup {
        group_name: group(&m.group_name)?,
        path: path(m.path.as_deref())?,
    };
    pb::GetGroupRequest => ForGroup |m| ForGroup { group_name: group(&m.group_name)? };
    pb::DeleteGroupRequest => ForGroup |m| ForGroup { group_name: group(&m.group_name)? };
    pb::AddUserToGroupRequest => GroupMembership |m| GroupMembership {
        group_name: group(&m.group_name)?,
        user_name: user(&m.user_name)?,
    };
    pb::RemoveUserFromGroupRequest => GroupMembership |m| GroupMembership {
        group_name: group(&m.group_name)?,
        user_name: user(&m.user_name)?,
    };

    pb::CreateRoleRequest => CreateRole |m| CreateRole {
        role_name: role(&m.role_name)?,
        path: path(m.path.as_deref())?,
        trust_policy: document("assumeRolePolicyDocument", &m.assume_role_policy_document)?,
        max_session_duration: m
            .max_session_duration
            .map_or_else(|| Ok(SessionDuration::one_hour()), SessionDuration::role_maximum)?,
        description: m.description.clone().unwrap_or_default(),
    };
    pb::GetRoleRequest => ForRole |m| ForRole { role_name: role(&m.role_name)? };
    pb::DeleteRoleRequest => ForRole |m| ForRole { role_name: role(&m.role_name)? };
    pb::UpdateAssumeRolePolicyRequest => UpdateAssumeRolePolicy |m| UpdateAssumeRolePolicy {
        role_name: role(&m.role_name)?,
        document: document("policyDocument", &m.policy_document)?,
    };
    pb::RevokeSessionsRequest => RevokeSessions |m| RevokeSessions {
        target: match (some_user(m.user_name.as_deref())?, optional(m.role_name.as_deref(), RoleName::parse)?) {
            (Some(u), None) => RevokeTarget::User(u),
            (None, Some(r)) => RevokeTarget::Role(r),
            _ => {
                return Err(ValidationError::members(
                    "userName",
                    "exactly one of 'userName' and 'roleName' must be given",
                ));
            }
        },
        issued_before: m
            .issued_before
            .as_ref()
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok()),
    };

    pb::CreatePolicyRequest => CreatePolicy |m| CreatePolicy {
        policy_name: policy_name(&m.policy_name)?,
        path: path(m.path.as_deref())?,
        document: document("policyDocument", &m.policy_document)?,
        description: m.description.clone().unwrap_or_default(),
    };
    pb::GetPolicyRequest => ForPolicy |m| ForPolicy { policy_arn: policy_arn(&m.policy_arn)? };
    pb::DeletePolicyRequest => ForPolicy |m| ForPolicy { policy_arn: policy_arn(&m.policy_arn)? };
    pb::ListPoliciesRequest => ListPolicies |m| ListPolicies {
        scope: scope(m.scope.as_deref())?,
        only_attached: m.only_attached.unwrap_or(false),
        path_prefix: path_prefix(m.path_prefix.as_deref())?,
    };

    pb::SimulateCustomPolicyRequest => Simulate |m| Simulate {
        policy_source: None,
        policy_inputs: required_list("policyInputList", &m.policy_input_list)?,
        action_names: required_list("actionNames", &m.action_names)?,
        resource_arns: m.resource_arns.clone(),
        context: entries(&m.context_entries),
    };
    pb::SimulatePrincipalPolicyRequest => Simulate |m| Simulate {
        policy_source: Some(Arn::parse(
            "policySourceArn",
            required("policySourceArn", &m.policy_source_arn)?,
        )?),
        policy_inputs: m.policy_input_list.clone(),
        action_names: required_list("actionNames", &m.action_names)?,
        resource_arns: m.resource_arns.clone(),
        context: entries(&m.context_entries),
    };
}

/// The per-principal requests: `Request => Input: Kind(name field)`.
macro_rules! principal_inputs {
    ($($req:ident => $input:ident: $kind:ident($name:ident);)*) => {$(
        impl TryFrom<&pb::$req> for $input {
            type Error = ValidationError;

            fn try_from(m: &pb::$req) -> Parsed<Self> {
                principal_input!($input, m, principal(PrincipalKind::$kind, &m.$name)?)
            }
        }
    )*};
}

/// The fields of each per-principal input besides the principal.
macro_rules! principal_input {
    (Attachment, $m:ident, $p:expr) => {
        Ok(Attachment {
            principal: $p,
            policy_arn: policy_arn(&$m.policy_arn)?,
        })
    };
    (PutInlinePolicy, $m:ident, $p:expr) => {
        Ok(PutInlinePolicy {
            principal: $p,
            policy_name: policy_name(&$m.policy_name)?,
            document: document("policyDocument", &$m.policy_document)?,
        })
    };
    (InlinePolicy, $m:ident, $p:expr) => {
        Ok(InlinePolicy {
            principal: $p,
            policy_name: policy_name(&$m.policy_name)?,
        })
    };
    (ListAttachedPolicies, $m:ident, $p:expr) => {
        Ok(ListAttachedPolicies { principal: $p })
    };
}

principal_inputs! {
    AttachUserPolicyRequest         => Attachment: User(user_name);
    AttachGroupPolicyRequest        => Attachment: Group(group_name);
    AttachRolePolicyRequest         => Attachment: Role(role_name);
    DetachUserPolicyRequest         => Attachment: User(user_name);
    DetachGroupPolicyRequest        => Attachment: Group(group_name);
    DetachRolePolicyRequest         => Attachment: Role(role_name);
    PutUserPolicyRequest            => PutInlinePolicy: User(user_name);
    PutGroupPolicyRequest           => PutInlinePolicy: Group(group_name);
    PutRolePolicyRequest            => PutInlinePolicy: Role(role_name);
    GetUserPolicyRequest            => InlinePolicy: User(user_name);
    GetGroupPolicyRequest           => InlinePolicy: Group(group_name);
    GetRolePolicyRequest            => InlinePolicy: Role(role_name);
    DeleteUserPolicyRequest         => InlinePolicy: User(user_name);
    DeleteGroupPolicyRequest        => InlinePolicy: Group(group_name);
    DeleteRolePolicyRequest         => InlinePolicy: Role(role_name);
    ListAttachedUserPoliciesRequest => ListAttachedPolicies: User(user_name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: std::fmt::Debug>(r: Parsed<T>) -> &'static str {
        r.unwrap_err().field
    }

    #[test]
    fn each_bad_field_is_named() {
        let mut m = sts::AssumeRoleRequest {
            role_arn: "arn:aws:iam::123456789012:role/ops".into(),
            role_session_name: "ci".into(),
            ..Default::default()
        };
        assert!(AssumeRole::try_from(&m).is_ok());
        m.duration_seconds = Some(43_201);
        assert_eq!(field(AssumeRole::try_from(&m)), "durationSeconds");
        m.duration_seconds = None;
        m.token_code = Some("12345".into());
        assert_eq!(field(AssumeRole::try_from(&m)), "tokenCode");
        m.token_code = None;
        m.serial_number = Some("short".into());
        assert_eq!(field(AssumeRole::try_from(&m)), "serialNumber");
        m.serial_number = None;
        m.role_session_name = "a b".into();
        assert_eq!(field(AssumeRole::try_from(&m)), "roleSessionName");
        m.role_arn = "arn:aws:iam::123456789012:user/ops".into();
        assert_eq!(field(AssumeRole::try_from(&m)), "roleArn");

        let m = pb::EnableMfaDeviceRequest {
            user_name: String::new(),
            serial_number: "GAHT12345678".into(),
            authentication_code1: "123456".into(),
            authentication_code2: "12345x".into(),
        };
        let e = BindMfaDevice::try_from(&m).unwrap_err();
        assert_eq!(e.field, "authenticationCode2");
        assert!(!e.to_string().contains("12345x"), "codes are never echoed");

        let m = pb::PutGroupPolicyRequest {
            group_name: "ops".into(),
            policy_name: "p".into(),
            policy_document: String::new(),
        };
        assert_eq!(field(PutInlinePolicy::try_from(&m)), "policyDocument");
        let m = pb::DetachRolePolicyRequest {
            role_name: "r".repeat(65),
            policy_arn: "arn:aws:iam::123456789012:policy/p".into(),
        };
        assert_eq!(field(Attachment::try_from(&m)), "roleName");
        let m = pb::AttachUserPolicyRequest {
            user_name: "bob".into(),
            policy_arn: String::new(),
        };
        let e = Attachment::try_from(&m).unwrap_err();
        assert_eq!(
            (e.field, e.expected.as_str()),
            ("policyArn", "Member must not be null")
        );

        let m = pb::RevokeSessionsRequest {
            user_name: Some("bob".into()),
            role_name: Some("ops".into()),
            issued_before: None,
        };
        assert!(RevokeSessions::try_from(&m).is_err());
        let m = pb::ListUsersRequest {
            max_items: Some(0),
            ..Default::default()
        };
        assert_eq!(field(ListUsers::try_from(&m)), "maxItems");
        let m = pb::SimulatePrincipalPolicyRequest {
            policy_source_arn: "bob".into(),
            action_names: vec!["iam:GetUser".into()],
            ..Default::default()
        };
        assert_eq!(field(Simulate::try_from(&m)), "policySourceArn");
    }

    #[test]
    fn per_principal_inputs_name_the_right_kind() {
        let m = pb::GetRolePolicyRequest {
            role_name: "ops".into(),
            policy_name: "inline".into(),
        };
        let i = InlinePolicy::try_from(&m).unwrap();
        assert_eq!(
            i.principal,
            PrincipalName::Role(RoleName::parse("ops").unwrap())
        );
        let m = pb::DeleteGroupPolicyRequest {
            group_name: "eng".into(),
            policy_name: "inline".into(),
        };
        assert_eq!(
            InlinePolicy::try_from(&m).unwrap().principal.kind(),
            PrincipalKind::Group
        );
    }
}
