//! `iam.v1.IamService`: one row per RPC (request → input → broker → response).

use super::{Services, done, timestamp};
use crate::broker::{AccessKeyView, DeviceView, SimulationResult, UserView, source_type_name};
use crate::domain::{Group, ManagedPolicy};
use crate::policy::{Decision, EvalDecision, MatchedStatement};
use crate::proto::iam::v1 as pb;
use crate::proto::iam::v1::iam_service_server::IamService;

fn user_pb(u: UserView) -> pb::User {
    pb::User {
        path: u.path,
        user_name: u.name,
        user_id: u.user_id,
        arn: u.arn,
        create_date: Some(timestamp(u.created)),
    }
}

fn key_meta_pb(k: AccessKeyView) -> pb::AccessKeyMetadata {
    pb::AccessKeyMetadata {
        user_name: k.user_name,
        access_key_id: k.access_key_id,
        status: k.status.as_str().to_owned(),
        create_date: Some(timestamp(k.created)),
    }
}

fn mfa_device_pb(d: DeviceView) -> pb::MfaDevice {
    pb::MfaDevice {
        user_name: d.user_name,
        serial_number: d.serial,
        enable_date: d.enable_date.map(timestamp),
    }
}

fn virtual_device_pb(d: DeviceView) -> pb::VirtualMfaDevice {
    pb::VirtualMfaDevice {
        serial_number: d.serial,
        base32_string_seed: String::new(),
        qr_code_png: Vec::new(),
        otpauth_uri: String::new(),
        user: d.user.map(user_pb),
        enable_date: d.enable_date.map(timestamp),
    }
}

fn each<T, U>(items: Vec<T>, f: impl FnMut(T) -> U) -> Vec<U> {
    items.into_iter().map(f).collect()
}

fn group_pb(g: Group, arn: String) -> pb::Group {
    pb::Group {
        path: g.path.as_str().to_owned(),
        group_name: g.name.to_string(),
        group_id: g.id,
        arn,
        create_date: Some(timestamp(g.created)),
    }
}

fn role_pb(r: crate::domain::Role, arn: String) -> pb::Role {
    pb::Role {
        path: r.path.as_str().to_owned(),
        role_name: r.name.to_string(),
        role_id: r.id,
        arn,
        create_date: Some(timestamp(r.created)),
        assume_role_policy_document: r.trust_policy,
        description: r.description,
        max_session_duration: i32::try_from(r.max_session_duration).unwrap_or(i32::MAX),
    }
}

fn policy_pb(p: ManagedPolicy) -> pb::Policy {
    pb::Policy {
        policy_name: p.name.to_string(),
        policy_id: p.id,
        arn: p.arn,
        path: p.path.as_str().to_owned(),
        default_version_id: "v1".to_owned(),
        attachment_count: i32::try_from(p.attachment_count).unwrap_or(i32::MAX),
        is_attachable: true,
        description: p.description,
        create_date: Some(timestamp(p.created)),
        update_date: Some(timestamp(p.updated)),
        policy_document: p.document,
    }
}

pub(super) fn decision_pb(d: EvalDecision) -> i32 {
    match d {
        EvalDecision::Allowed => pb::EvalDecision::Allowed as i32,
        EvalDecision::ExplicitDeny => pb::EvalDecision::ExplicitDeny as i32,
        EvalDecision::ImplicitDeny => pb::EvalDecision::ImplicitDeny as i32,
    }
}

fn position(p: Option<crate::policy::Position>) -> Option<pb::Position> {
    p.map(|p| pb::Position {
        line: i32::try_from(p.line).unwrap_or(i32::MAX),
        column: i32::try_from(p.column).unwrap_or(i32::MAX),
    })
}

pub(super) fn statements_pb(d: &Decision) -> Vec<pb::Statement> {
    d.matched
        .iter()
        .map(|m: &MatchedStatement| pb::Statement {
            source_policy_id: m.source_policy_id.clone(),
            source_policy_type: source_type_name(m.source_type).to_owned(),
            start_position: position(m.start),
            end_position: position(m.end),
            sid: m.sid.clone().unwrap_or_default(),
        })
        .collect()
}

fn simulation_pb(results: Vec<SimulationResult>) -> pb::SimulatePolicyResponse {
    pb::SimulatePolicyResponse {
        evaluation_results: results
            .into_iter()
            .map(|r| pb::EvaluationResult {
                eval_decision: decision_pb(r.decision.effect),
                matched_statements: statements_pb(&r.decision),
                eval_action_name: r.action,
                eval_resource_name: r.resource,
                missing_context_values: Vec::new(),
            })
            .collect(),
        is_truncated: false,
        marker: None,
    }
}

service! { self, IamService {
    create_user(pb::CreateUserRequest) -> pb::CreateUserResponse = |c, m|
        Ok(pb::CreateUserResponse { user: Some(user_pb(self.broker.create_user(c, m.try_into()?).await?)) });
    get_user(pb::GetUserRequest) -> pb::GetUserResponse = |c, m|
        Ok(pb::GetUserResponse { user: Some(user_pb(self.broker.get_user(c, m.try_into()?).await?)) });
    list_users(pb::ListUsersRequest) -> pb::ListUsersResponse = |c, m| {
        let (users, marker) = self.broker.list_users(c, m.try_into()?).await?;
        Ok(pb::ListUsersResponse {
            users: users.into_iter().map(user_pb).collect(),
            is_truncated: marker.is_some(),
            marker,
        })
    };
    delete_user(pb::DeleteUserRequest) -> pb::DeleteUserResponse = |c, m|
        done(self.broker.delete_user(c, m.try_into()?).await);
    create_access_key(pb::CreateAccessKeyRequest) -> pb::CreateAccessKeyResponse = |c, m| {
        let k = self.broker.create_access_key(c, m.try_into()?).await?;
        Ok(pb::CreateAccessKeyResponse {
            access_key: Some(pb::AccessKey {
                user_name: k.key.user_name.clone(),
                access_key_id: k.key.access_key_id.clone(),
                status: k.key.status.as_str().to_owned(),
                secret_access_key: k.secret_access_key.to_string(),
                create_date: Some(timestamp(k.key.created)),
            }),
        })
    };
    list_access_keys(pb::ListAccessKeysRequest) -> pb::ListAccessKeysResponse = |c, m| Ok(pb::ListAccessKeysResponse {
        access_key_metadata: each(self.broker.list_access_keys(c, m.try_into()?).await?, key_meta_pb),
        ..Default::default()
    });
    update_access_key(pb::UpdateAccessKeyRequest) -> pb::UpdateAccessKeyResponse = |c, m|
        done(self.broker.update_access_key(c, m.try_into()?).await);
    delete_access_key(pb::DeleteAccessKeyRequest) -> pb::DeleteAccessKeyResponse = |c, m|
        done(self.broker.delete_access_key(c, m.try_into()?).await);

    create_virtual_mfa_device(pb::CreateVirtualMfaDeviceRequest) -> pb::CreateVirtualMfaDeviceResponse = |c, m| {
        let d = self.broker.create_virtual_mfa_device(c, m.try_into()?).await?;
        Ok(pb::CreateVirtualMfaDeviceResponse {
            virtual_mfa_device: Some(pb::VirtualMfaDevice {
                serial_number: d.serial.clone(),
                base32_string_seed: d.base32_seed.to_string(),
                qr_code_png: d.qr_png.to_vec(),
                otpauth_uri: d.otpauth_uri.to_string(),
                user: None,
                enable_date: None,
            }),
        })
    };
    enable_mfa_device(pb::EnableMfaDeviceRequest) -> pb::EnableMfaDeviceResponse = |c, m|
        done(self.broker.enable_mfa_device(c, m.try_into()?).await);
    resync_mfa_device(pb::ResyncMfaDeviceRequest) -> pb::ResyncMfaDeviceResponse = |c, m|
        done(self.broker.resync_mfa_device(c, m.try_into()?).await);
    deactivate_mfa_device(pb::DeactivateMfaDeviceRequest) -> pb::DeactivateMfaDeviceResponse = |c, m|
        done(self.broker.deactivate_mfa_device(c, m.try_into()?).await);
    delete_virtual_mfa_device(pb::DeleteVirtualMfaDeviceRequest) -> pb::DeleteVirtualMfaDeviceResponse = |c, m|
        done(self.broker.delete_virtual_mfa_device(c, m.try_into()?).await);
    list_mfa_devices(pb::ListMfaDevicesRequest) -> pb::ListMfaDevicesResponse = |c, m| Ok(pb::ListMfaDevicesResponse {
        mfa_devices: each(self.broker.list_mfa_devices(c, m.try_into()?).await?, mfa_device_pb),
        ..Default::default()
    });
    list_virtual_mfa_devices(pb::ListVirtualMfaDevicesRequest) -> pb::ListVirtualMfaDevicesResponse = |c, m| Ok(pb::ListVirtualMfaDevicesResponse {
        virtual_mfa_devices: each(self.broker.list_virtual_mfa_devices(c, m.try_into()?).await?, virtual_device_pb),
        ..Default::default()
    });
    get_mfa_device(pb::GetMfaDeviceRequest) -> pb::GetMfaDeviceResponse = |c, m| {
        let d = self.broker.get_mfa_device(c, m.try_into()?).await?;
        Ok(pb::GetMfaDeviceResponse {
            user_name: d.user_name,
            serial_number: d.serial,
            enable_date: d.enable_date.map(timestamp),
            certifications: Default::default(),
        })
    };
    import_hardware_mfa_devices(pb::ImportHardwareMfaDevicesRequest) -> pb::ImportHardwareMfaDevicesResponse = |c, m| {
        let serial_numbers = self.broker.import_hardware_mfa_devices(c, m.try_into()?).await?;
        Ok(pb::ImportHardwareMfaDevicesResponse { serial_numbers })
    };
    reset_mfa_lockout(pb::ResetMfaLockoutRequest) -> pb::ResetMfaLockoutResponse = |c, m|
        done(self.broker.reset_mfa_lockout(c, m.try_into()?).await);

    create_group(pb::CreateGroupRequest) -> pb::CreateGroupResponse = |c, m| {
        let (g, arn) = self.broker.create_group(c, m.try_into()?).await?;
        Ok(pb::CreateGroupResponse { group: Some(group_pb(g, arn)) })
    };
    get_group(pb::GetGroupRequest) -> pb::GetGroupResponse = |c, m| {
        let (g, arn, users) = self.broker.get_group(c, m.try_into()?).await?;
        Ok(pb::GetGroupResponse {
            group: Some(group_pb(g, arn)),
            users: users.into_iter().map(user_pb).collect(),
        })
    };
    delete_group(pb::DeleteGroupRequest) -> pb::DeleteGroupResponse = |c, m|
        done(self.broker.delete_group(c, m.try_into()?).await);
    add_user_to_group(pb::AddUserToGroupRequest) -> pb::AddUserToGroupResponse = |c, m|
        done(self.broker.group_membership(c, m.try_into()?, true).await);
    remove_user_from_group(pb::RemoveUserFromGroupRequest) -> pb::RemoveUserFromGroupResponse = |c, m|
        done(self.broker.group_membership(c, m.try_into()?, false).await);

    create_role(pb::CreateRoleRequest) -> pb::CreateRoleResponse = |c, m| {
        let r = self.broker.create_role(c, m.try_into()?).await?;
        let arn = self.broker.arn_of_role(&r);
        Ok(pb::CreateRoleResponse { role: Some(role_pb(r, arn)) })
    };
    get_role(pb::GetRoleRequest) -> pb::GetRoleResponse = |c, m| {
        let (r, arn) = self.broker.get_role(c, m.try_into()?).await?;
        Ok(pb::GetRoleResponse { role: Some(role_pb(r, arn)) })
    };
    delete_role(pb::DeleteRoleRequest) -> pb::DeleteRoleResponse = |c, m|
        done(self.broker.delete_role(c, m.try_into()?).await);
    update_assume_role_policy(pb::UpdateAssumeRolePolicyRequest) -> pb::UpdateAssumeRolePolicyResponse = |c, m|
        done(self.broker.update_assume_role_policy(c, m.try_into()?).await);
    revoke_sessions(pb::RevokeSessionsRequest) -> pb::RevokeSessionsResponse = |c, m|
        done(self.broker.revoke_sessions(c, m.try_into()?).await);
    rotate_signing_key(pb::RotateSigningKeyRequest) -> pb::RotateSigningKeyResponse = |c, m| {
        let (kid, previous_kid) = self.broker.rotate_signing_key(c).await?;
        Ok(pb::RotateSigningKeyResponse { kid, previous_kid })
    };

    create_policy(pb::CreatePolicyRequest) -> pb::CreatePolicyResponse = |c, m|
        Ok(pb::CreatePolicyResponse { policy: Some(policy_pb(self.broker.create_policy(c, m.try_into()?).await?)) });
    get_policy(pb::GetPolicyRequest) -> pb::GetPolicyResponse = |c, m|
        Ok(pb::GetPolicyResponse { policy: Some(policy_pb(self.broker.get_policy(c, m.try_into()?).await?)) });
    delete_policy(pb::DeletePolicyRequest) -> pb::DeletePolicyResponse = |c, m|
        done(self.broker.delete_policy(c, m.try_into()?).await);
    list_policies(pb::ListPoliciesRequest) -> pb::ListPoliciesResponse = |c, m| Ok(pb::ListPoliciesResponse {
        policies: each(self.broker.list_policies(c, m.try_into()?).await?, policy_pb),
        ..Default::default()
    });
    list_attached_user_policies(pb::ListAttachedUserPoliciesRequest) -> pb::ListAttachedUserPoliciesResponse = |c, m| {
        let list = self.broker.list_attached(c, m.try_into()?).await?;
        let attached = |(policy_name, policy_arn)| pb::AttachedPolicy { policy_name, policy_arn };
        Ok(pb::ListAttachedUserPoliciesResponse { attached_policies: each(list, attached), ..Default::default() })
    };

    attach_user_policy(pb::AttachUserPolicyRequest) -> pb::AttachUserPolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, true).await);
    attach_group_policy(pb::AttachGroupPolicyRequest) -> pb::AttachGroupPolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, true).await);
    attach_role_policy(pb::AttachRolePolicyRequest) -> pb::AttachRolePolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, true).await);
    detach_user_policy(pb::DetachUserPolicyRequest) -> pb::DetachUserPolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, false).await);
    detach_group_policy(pb::DetachGroupPolicyRequest) -> pb::DetachGroupPolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, false).await);
    detach_role_policy(pb::DetachRolePolicyRequest) -> pb::DetachRolePolicyResponse = |c, m| done(self.broker.attachment(c, m.try_into()?, false).await);
    put_user_policy(pb::PutUserPolicyRequest) -> pb::PutUserPolicyResponse = |c, m| done(self.broker.put_inline(c, m.try_into()?).await);
    put_group_policy(pb::PutGroupPolicyRequest) -> pb::PutGroupPolicyResponse = |c, m| done(self.broker.put_inline(c, m.try_into()?).await);
    put_role_policy(pb::PutRolePolicyRequest) -> pb::PutRolePolicyResponse = |c, m| done(self.broker.put_inline(c, m.try_into()?).await);
    delete_user_policy(pb::DeleteUserPolicyRequest) -> pb::DeleteUserPolicyResponse = |c, m| done(self.broker.delete_inline(c, m.try_into()?).await);
    delete_group_policy(pb::DeleteGroupPolicyRequest) -> pb::DeleteGroupPolicyResponse = |c, m| done(self.broker.delete_inline(c, m.try_into()?).await);
    delete_role_policy(pb::DeleteRolePolicyRequest) -> pb::DeleteRolePolicyResponse = |c, m| done(self.broker.delete_inline(c, m.try_into()?).await);
    get_user_policy(pb::GetUserPolicyRequest) -> pb::GetUserPolicyResponse = |c, m| {
        let (policy_name, policy_document) = self.broker.get_inline(c, m.try_into()?).await?;
        Ok(pb::GetUserPolicyResponse { user_name: m.user_name.clone(), policy_name, policy_document })
    };
    get_group_policy(pb::GetGroupPolicyRequest) -> pb::GetGroupPolicyResponse = |c, m| {
        let (policy_name, policy_document) = self.broker.get_inline(c, m.try_into()?).await?;
        Ok(pb::GetGroupPolicyResponse { group_name: m.group_name.clone(), policy_name, policy_document })
    };
    get_role_policy(pb::GetRolePolicyRequest) -> pb::GetRolePolicyResponse = |c, m| {
        let (policy_name, policy_document) = self.broker.get_inline(c, m.try_into()?).await?;
        Ok(pb::GetRolePolicyResponse { role_name: m.role_name.clone(), policy_name, policy_document })
    };

    simulate_custom_policy(pb::SimulateCustomPolicyRequest) -> pb::SimulatePolicyResponse = |c, m|
        Ok(simulation_pb(self.broker.simulate(c, m.try_into()?).await?));
    simulate_principal_policy(pb::SimulatePrincipalPolicyRequest) -> pb::SimulatePolicyResponse = |c, m|
        Ok(simulation_pb(self.broker.simulate(c, m.try_into()?).await?));

    get_account_summary(pb::GetAccountSummaryRequest) -> pb::GetAccountSummaryResponse = |c, m| {
        let summary = self.broker.account_summary(c).await?;
        Ok(pb::GetAccountSummaryResponse { summary_map: summary.into_iter().collect() })
    };
    generate_credential_report(pb::GenerateCredentialReportRequest) -> pb::GenerateCredentialReportResponse = |c, m| {
        let state = self.broker.generate_credential_report(c).await?;
        Ok(pb::GenerateCredentialReportResponse {
            state: state.to_owned(),
            description: "The credential report is ready.".to_owned(),
        })
    };
    get_credential_report(pb::GetCredentialReportRequest) -> pb::GetCredentialReportResponse = |c, m| {
        let r = self.broker.get_credential_report(c).await?;
        Ok(pb::GetCredentialReportResponse {
            content: r.csv,
            report_format: "text/csv".to_owned(),
            generated_time: Some(timestamp(r.generated)),
        })
    };
}}
