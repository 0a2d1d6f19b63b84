//! `iam.v1.IamService`.

use super::{Services, timestamp};
use crate::broker::{AccessKeyView, DeviceView, SimulationResult, UserView, source_type_name};
use crate::domain::{ManagedPolicy, PrincipalKind};
use crate::policy::{ContextEntry, Decision, EvalDecision, MatchedStatement};
use crate::proto::iam::v1 as pb;
use crate::proto::iam::v1::iam_service_server::IamService;
use tonic::{Request, Response, Status};

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

fn instant(t: Option<&prost_types::Timestamp>) -> Option<time::OffsetDateTime> {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
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

pub(super) fn entries(list: &[pb::ContextEntry]) -> Vec<ContextEntry> {
    list.iter()
        .map(|e| ContextEntry {
            context_key_name: e.context_key_name.clone(),
            context_key_values: e.context_key_values.clone(),
            context_key_type: e.context_key_type.clone(),
        })
        .collect()
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

#[tonic::async_trait]
impl IamService for Services {
    async fn create_group(
        &self,
        req: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::CreateGroupResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_group(c, &m.group_name, m.path.as_deref())
            .await
            .map(|(g, arn)| pb::CreateGroupResponse {
                group: Some(pb::Group {
                    path: g.path.as_str().to_owned(),
                    group_name: g.name.to_string(),
                    group_id: g.id,
                    arn,
                    create_date: Some(timestamp(g.created)),
                }),
            }))
    }

    async fn get_group(
        &self,
        req: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_group(c, &m.group_name)
            .await
            .map(|(g, arn, users)| pb::GetGroupResponse {
                group: Some(pb::Group {
                    path: g.path.as_str().to_owned(),
                    group_name: g.name.to_string(),
                    group_id: g.id,
                    arn,
                    create_date: Some(timestamp(g.created)),
                }),
                users: users.into_iter().map(user_pb).collect(),
            }))
    }

    async fn delete_group(
        &self,
        req: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_group(c, &m.group_name)
            .await
            .map(|()| pb::DeleteGroupResponse {}))
    }

    async fn add_user_to_group(
        &self,
        req: Request<pb::AddUserToGroupRequest>,
    ) -> Result<Response<pb::AddUserToGroupResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .group_membership(c, &m.group_name, &m.user_name, true)
            .await
            .map(|()| pb::AddUserToGroupResponse {}))
    }

    async fn remove_user_from_group(
        &self,
        req: Request<pb::RemoveUserFromGroupRequest>,
    ) -> Result<Response<pb::RemoveUserFromGroupResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .group_membership(c, &m.group_name, &m.user_name, false)
            .await
            .map(|()| pb::RemoveUserFromGroupResponse {}))
    }

    async fn create_policy(
        &self,
        req: Request<pb::CreatePolicyRequest>,
    ) -> Result<Response<pb::CreatePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_policy(
                c,
                &m.policy_name,
                &m.policy_document,
                m.path.as_deref(),
                m.description.as_deref()
            )
            .await
            .map(|p| pb::CreatePolicyResponse {
                policy: Some(policy_pb(p))
            }))
    }

    async fn get_policy(
        &self,
        req: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_policy(c, &m.policy_arn)
            .await
            .map(|p| pb::GetPolicyResponse {
                policy: Some(policy_pb(p))
            }))
    }

    async fn delete_policy(
        &self,
        req: Request<pb::DeletePolicyRequest>,
    ) -> Result<Response<pb::DeletePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_policy(c, &m.policy_arn)
            .await
            .map(|()| pb::DeletePolicyResponse {}))
    }

    async fn list_policies(
        &self,
        req: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_policies(
                c,
                m.scope.as_deref(),
                m.only_attached.unwrap_or(false),
                m.path_prefix.as_deref()
            )
            .await
            .map(|ps| pb::ListPoliciesResponse {
                policies: ps.into_iter().map(policy_pb).collect(),
                is_truncated: false,
                marker: None,
            }))
    }

    async fn attach_user_policy(
        &self,
        req: Request<pb::AttachUserPolicyRequest>,
    ) -> Result<Response<pb::AttachUserPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::User, &m.user_name, &m.policy_arn, true)
            .await
            .map(|()| pb::AttachUserPolicyResponse {}))
    }

    async fn attach_group_policy(
        &self,
        req: Request<pb::AttachGroupPolicyRequest>,
    ) -> Result<Response<pb::AttachGroupPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::Group, &m.group_name, &m.policy_arn, true)
            .await
            .map(|()| pb::AttachGroupPolicyResponse {}))
    }

    async fn attach_role_policy(
        &self,
        req: Request<pb::AttachRolePolicyRequest>,
    ) -> Result<Response<pb::AttachRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::Role, &m.role_name, &m.policy_arn, true)
            .await
            .map(|()| pb::AttachRolePolicyResponse {}))
    }

    async fn detach_user_policy(
        &self,
        req: Request<pb::DetachUserPolicyRequest>,
    ) -> Result<Response<pb::DetachUserPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::User, &m.user_name, &m.policy_arn, false)
            .await
            .map(|()| pb::DetachUserPolicyResponse {}))
    }

    async fn detach_group_policy(
        &self,
        req: Request<pb::DetachGroupPolicyRequest>,
    ) -> Result<Response<pb::DetachGroupPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::Group, &m.group_name, &m.policy_arn, false)
            .await
            .map(|()| pb::DetachGroupPolicyResponse {}))
    }

    async fn detach_role_policy(
        &self,
        req: Request<pb::DetachRolePolicyRequest>,
    ) -> Result<Response<pb::DetachRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .attachment(c, PrincipalKind::Role, &m.role_name, &m.policy_arn, false)
            .await
            .map(|()| pb::DetachRolePolicyResponse {}))
    }

    async fn list_attached_user_policies(
        &self,
        req: Request<pb::ListAttachedUserPoliciesRequest>,
    ) -> Result<Response<pb::ListAttachedUserPoliciesResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_attached(c, PrincipalKind::User, &m.user_name)
            .await
            .map(|list| pb::ListAttachedUserPoliciesResponse {
                attached_policies: list
                    .into_iter()
                    .map(|(policy_name, policy_arn)| pb::AttachedPolicy {
                        policy_name,
                        policy_arn
                    })
                    .collect(),
                is_truncated: false,
                marker: None,
            }))
    }

    async fn put_user_policy(
        &self,
        req: Request<pb::PutUserPolicyRequest>,
    ) -> Result<Response<pb::PutUserPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .put_inline(
                c,
                PrincipalKind::User,
                &m.user_name,
                &m.policy_name,
                &m.policy_document
            )
            .await
            .map(|()| pb::PutUserPolicyResponse {}))
    }

    async fn put_group_policy(
        &self,
        req: Request<pb::PutGroupPolicyRequest>,
    ) -> Result<Response<pb::PutGroupPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .put_inline(
                c,
                PrincipalKind::Group,
                &m.group_name,
                &m.policy_name,
                &m.policy_document
            )
            .await
            .map(|()| pb::PutGroupPolicyResponse {}))
    }

    async fn put_role_policy(
        &self,
        req: Request<pb::PutRolePolicyRequest>,
    ) -> Result<Response<pb::PutRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .put_inline(
                c,
                PrincipalKind::Role,
                &m.role_name,
                &m.policy_name,
                &m.policy_document
            )
            .await
            .map(|()| pb::PutRolePolicyResponse {}))
    }

    async fn get_user_policy(
        &self,
        req: Request<pb::GetUserPolicyRequest>,
    ) -> Result<Response<pb::GetUserPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_inline(c, PrincipalKind::User, &m.user_name, &m.policy_name)
            .await
            .map(|(policy_name, policy_document)| {
                pb::GetUserPolicyResponse {
                    user_name: m.user_name.clone(),
                    policy_name,
                    policy_document,
                }
            }))
    }

    async fn get_group_policy(
        &self,
        req: Request<pb::GetGroupPolicyRequest>,
    ) -> Result<Response<pb::GetGroupPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_inline(c, PrincipalKind::Group, &m.group_name, &m.policy_name)
            .await
            .map(|(policy_name, policy_document)| {
                pb::GetGroupPolicyResponse {
                    group_name: m.group_name.clone(),
                    policy_name,
                    policy_document,
                }
            }))
    }

    async fn get_role_policy(
        &self,
        req: Request<pb::GetRolePolicyRequest>,
    ) -> Result<Response<pb::GetRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_inline(c, PrincipalKind::Role, &m.role_name, &m.policy_name)
            .await
            .map(|(policy_name, policy_document)| {
                pb::GetRolePolicyResponse {
                    role_name: m.role_name.clone(),
                    policy_name,
                    policy_document,
                }
            }))
    }

    async fn delete_user_policy(
        &self,
        req: Request<pb::DeleteUserPolicyRequest>,
    ) -> Result<Response<pb::DeleteUserPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_inline(c, PrincipalKind::User, &m.user_name, &m.policy_name)
            .await
            .map(|()| pb::DeleteUserPolicyResponse {}))
    }

    async fn delete_group_policy(
        &self,
        req: Request<pb::DeleteGroupPolicyRequest>,
    ) -> Result<Response<pb::DeleteGroupPolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_inline(c, PrincipalKind::Group, &m.group_name, &m.policy_name)
            .await
            .map(|()| pb::DeleteGroupPolicyResponse {}))
    }

    async fn delete_role_policy(
        &self,
        req: Request<pb::DeleteRolePolicyRequest>,
    ) -> Result<Response<pb::DeleteRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_inline(c, PrincipalKind::Role, &m.role_name, &m.policy_name)
            .await
            .map(|()| pb::DeleteRolePolicyResponse {}))
    }

    async fn simulate_custom_policy(
        &self,
        req: Request<pb::SimulateCustomPolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .simulate(
                c,
                None,
                &m.policy_input_list,
                &m.action_names,
                &m.resource_arns,
                &entries(&m.context_entries)
            )
            .await
            .map(simulation_pb))
    }

    async fn simulate_principal_policy(
        &self,
        req: Request<pb::SimulatePrincipalPolicyRequest>,
    ) -> Result<Response<pb::SimulatePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .simulate(
                c,
                Some(&m.policy_source_arn),
                &m.policy_input_list,
                &m.action_names,
                &m.resource_arns,
                &entries(&m.context_entries)
            )
            .await
            .map(simulation_pb))
    }

    async fn create_role(
        &self,
        req: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_role(
                c,
                &m.role_name,
                &m.assume_role_policy_document,
                m.max_session_duration,
                m.path.as_deref(),
                m.description.as_deref(),
            )
            .await
            .map(|r| {
                let arn = self.broker.arn_of_role(&r);
                pb::CreateRoleResponse {
                    role: Some(role_pb(r, arn)),
                }
            }))
    }

    async fn get_role(
        &self,
        req: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::GetRoleResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_role(c, &m.role_name)
            .await
            .map(|(r, arn)| pb::GetRoleResponse {
                role: Some(role_pb(r, arn)),
            }))
    }

    async fn delete_role(
        &self,
        req: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_role(c, &m.role_name)
            .await
            .map(|()| pb::DeleteRoleResponse {}))
    }

    async fn update_assume_role_policy(
        &self,
        req: Request<pb::UpdateAssumeRolePolicyRequest>,
    ) -> Result<Response<pb::UpdateAssumeRolePolicyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .update_assume_role_policy(c, &m.role_name, &m.policy_document)
            .await
            .map(|()| pb::UpdateAssumeRolePolicyResponse {}))
    }

    async fn revoke_sessions(
        &self,
        req: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .revoke_sessions(
                c,
                m.user_name.as_deref(),
                m.role_name.as_deref(),
                instant(m.issued_before.as_ref()),
            )
            .await
            .map(|()| pb::RevokeSessionsResponse {}))
    }

    async fn rotate_signing_key(
        &self,
        req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .rotate_signing_key(c)
            .await
            .map(|(kid, previous_kid)| pb::RotateSigningKeyResponse {
                kid,
                previous_kid
            }))
    }

    async fn create_virtual_mfa_device(
        &self,
        req: Request<pb::CreateVirtualMfaDeviceRequest>,
    ) -> Result<Response<pb::CreateVirtualMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_virtual_mfa_device(c, &m.virtual_mfa_device_name, m.path.as_deref())
            .await
            .map(|d| pb::CreateVirtualMfaDeviceResponse {
                virtual_mfa_device: Some(pb::VirtualMfaDevice {
                    serial_number: d.serial.clone(),
                    base32_string_seed: d.base32_seed.to_string(),
                    qr_code_png: d.qr_png.to_vec(),
                    otpauth_uri: d.otpauth_uri.to_string(),
                    user: None,
                    enable_date: None,
                }),
            }))
    }

    async fn enable_mfa_device(
        &self,
        req: Request<pb::EnableMfaDeviceRequest>,
    ) -> Result<Response<pb::EnableMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .enable_mfa_device(
                c,
                &m.user_name,
                &m.serial_number,
                &m.authentication_code1,
                &m.authentication_code2,
            )
            .await
            .map(|()| pb::EnableMfaDeviceResponse {}))
    }

    async fn resync_mfa_device(
        &self,
        req: Request<pb::ResyncMfaDeviceRequest>,
    ) -> Result<Response<pb::ResyncMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .resync_mfa_device(
                c,
                &m.user_name,
                &m.serial_number,
                &m.authentication_code1,
                &m.authentication_code2,
            )
            .await
            .map(|()| pb::ResyncMfaDeviceResponse {}))
    }

    async fn deactivate_mfa_device(
        &self,
        req: Request<pb::DeactivateMfaDeviceRequest>,
    ) -> Result<Response<pb::DeactivateMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .deactivate_mfa_device(c, m.user_name.as_deref(), &m.serial_number)
            .await
            .map(|()| pb::DeactivateMfaDeviceResponse {}))
    }

    async fn delete_virtual_mfa_device(
        &self,
        req: Request<pb::DeleteVirtualMfaDeviceRequest>,
    ) -> Result<Response<pb::DeleteVirtualMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_virtual_mfa_device(c, &m.serial_number)
            .await
            .map(|()| pb::DeleteVirtualMfaDeviceResponse {}))
    }

    async fn list_mfa_devices(
        &self,
        req: Request<pb::ListMfaDevicesRequest>,
    ) -> Result<Response<pb::ListMfaDevicesResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_mfa_devices(c, m.user_name.as_deref())
            .await
            .map(|ds| pb::ListMfaDevicesResponse {
                mfa_devices: ds.into_iter().map(mfa_device_pb).collect(),
                is_truncated: false,
                marker: None,
            }))
    }

    async fn list_virtual_mfa_devices(
        &self,
        req: Request<pb::ListVirtualMfaDevicesRequest>,
    ) -> Result<Response<pb::ListVirtualMfaDevicesResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_virtual_mfa_devices(c, m.assignment_status.as_deref())
            .await
            .map(|ds| pb::ListVirtualMfaDevicesResponse {
                virtual_mfa_devices: ds.into_iter().map(virtual_device_pb).collect(),
                is_truncated: false,
                marker: None,
            }))
    }

    async fn get_mfa_device(
        &self,
        req: Request<pb::GetMfaDeviceRequest>,
    ) -> Result<Response<pb::GetMfaDeviceResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_mfa_device(c, &m.serial_number, m.user_name.as_deref())
            .await
            .map(|d| pb::GetMfaDeviceResponse {
                user_name: d.user_name,
                serial_number: d.serial,
                enable_date: d.enable_date.map(timestamp),
                certifications: Default::default(),
            }))
    }

    async fn import_hardware_mfa_devices(
        &self,
        req: Request<pb::ImportHardwareMfaDevicesRequest>,
    ) -> Result<Response<pb::ImportHardwareMfaDevicesResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .import_hardware_mfa_devices(c, &m.seed_file)
            .await
            .map(|serial_numbers| pb::ImportHardwareMfaDevicesResponse {
                serial_numbers
            }))
    }

    async fn reset_mfa_lockout(
        &self,
        req: Request<pb::ResetMfaLockoutRequest>,
    ) -> Result<Response<pb::ResetMfaLockoutResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .reset_mfa_lockout(c, m.user_name.as_deref())
            .await
            .map(|()| pb::ResetMfaLockoutResponse {}))
    }

    async fn get_account_summary(
        &self,
        req: Request<pb::GetAccountSummaryRequest>,
    ) -> Result<Response<pb::GetAccountSummaryResponse>, Status> {
        handle!(self, req, |c, m| self.broker.account_summary(c).await.map(
            |m| {
                pb::GetAccountSummaryResponse {
                    summary_map: m.into_iter().collect(),
                }
            }
        ))
    }

    async fn generate_credential_report(
        &self,
        req: Request<pb::GenerateCredentialReportRequest>,
    ) -> Result<Response<pb::GenerateCredentialReportResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .generate_credential_report(c)
            .await
            .map(|state| pb::GenerateCredentialReportResponse {
                state: state.to_owned(),
                description: "The credential report is ready.".to_owned(),
            }))
    }

    async fn get_credential_report(
        &self,
        req: Request<pb::GetCredentialReportRequest>,
    ) -> Result<Response<pb::GetCredentialReportResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_credential_report(c)
            .await
            .map(|r| pb::GetCredentialReportResponse {
                content: r.csv,
                report_format: "text/csv".to_owned(),
                generated_time: Some(timestamp(r.generated)),
            }))
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_user(c, &m.user_name, m.path.as_deref())
            .await
            .map(|u| pb::CreateUserResponse {
                user: Some(user_pb(u)),
            }))
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_user(c, m.user_name.as_deref())
            .await
            .map(|u| pb::GetUserResponse {
                user: Some(user_pb(u)),
            }))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_users(
                c,
                m.path_prefix.as_deref(),
                m.marker.as_deref(),
                m.max_items,
            )
            .await
            .map(|(users, marker)| pb::ListUsersResponse {
                users: users.into_iter().map(user_pb).collect(),
                is_truncated: marker.is_some(),
                marker,
            }))
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_user(c, &m.user_name)
            .await
            .map(|()| pb::DeleteUserResponse {}))
    }

    async fn create_access_key(
        &self,
        req: Request<pb::CreateAccessKeyRequest>,
    ) -> Result<Response<pb::CreateAccessKeyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .create_access_key(c, m.user_name.as_deref())
            .await
            .map(|k| pb::CreateAccessKeyResponse {
                access_key: Some(pb::AccessKey {
                    user_name: k.key.user_name.clone(),
                    access_key_id: k.key.access_key_id.clone(),
                    status: k.key.status.as_str().to_owned(),
                    secret_access_key: k.secret_access_key.to_string(),
                    create_date: Some(timestamp(k.key.created)),
                }),
            }))
    }

    async fn list_access_keys(
        &self,
        req: Request<pb::ListAccessKeysRequest>,
    ) -> Result<Response<pb::ListAccessKeysResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .list_access_keys(c, m.user_name.as_deref())
            .await
            .map(|keys| pb::ListAccessKeysResponse {
                access_key_metadata: keys.into_iter().map(key_meta_pb).collect(),
                is_truncated: false,
                marker: None,
            }))
    }

    async fn update_access_key(
        &self,
        req: Request<pb::UpdateAccessKeyRequest>,
    ) -> Result<Response<pb::UpdateAccessKeyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .update_access_key(c, m.user_name.as_deref(), &m.access_key_id, &m.status,)
            .await
            .map(|()| pb::UpdateAccessKeyResponse {}))
    }

    async fn delete_access_key(
        &self,
        req: Request<pb::DeleteAccessKeyRequest>,
    ) -> Result<Response<pb::DeleteAccessKeyResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .delete_access_key(c, m.user_name.as_deref(), &m.access_key_id)
            .await
            .map(|()| pb::DeleteAccessKeyResponse {}))
    }
}
