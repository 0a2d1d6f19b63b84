//! `iam.v1.IamService`.

use super::{Services, timestamp};
use crate::broker::{AccessKeyView, DeviceView, UserView};
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

fn role_pb(r: crate::store::Role, arn: String) -> pb::Role {
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

#[tonic::async_trait]
impl IamService for Services {
    async fn create_role(
        &self,
        req: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::CreateRoleResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .create_role(
                &call.caller,
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
            });
        self.finish(&call, result).await
    }

    async fn get_role(
        &self,
        req: Request<pb::GetRoleRequest>,
    ) -> Result<Response<pb::GetRoleResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .get_role(&call.caller, &call.message.role_name)
            .await
            .map(|(r, arn)| pb::GetRoleResponse {
                role: Some(role_pb(r, arn)),
            });
        self.finish(&call, result).await
    }

    async fn delete_role(
        &self,
        req: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<pb::DeleteRoleResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .delete_role(&call.caller, &call.message.role_name)
            .await
            .map(|()| pb::DeleteRoleResponse {});
        self.finish(&call, result).await
    }

    async fn update_assume_role_policy(
        &self,
        req: Request<pb::UpdateAssumeRolePolicyRequest>,
    ) -> Result<Response<pb::UpdateAssumeRolePolicyResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .update_assume_role_policy(&call.caller, &m.role_name, &m.policy_document)
            .await
            .map(|()| pb::UpdateAssumeRolePolicyResponse {});
        self.finish(&call, result).await
    }

    async fn revoke_sessions(
        &self,
        req: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .revoke_sessions(
                &call.caller,
                m.user_name.as_deref(),
                m.role_name.as_deref(),
                instant(m.issued_before.as_ref()),
            )
            .await
            .map(|()| pb::RevokeSessionsResponse {});
        self.finish(&call, result).await
    }

    async fn rotate_signing_key(
        &self,
        req: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .rotate_signing_key(&call.caller)
            .await
            .map(|(kid, previous_kid)| pb::RotateSigningKeyResponse { kid, previous_kid });
        self.finish(&call, result).await
    }

    async fn create_virtual_mfa_device(
        &self,
        req: Request<pb::CreateVirtualMfaDeviceRequest>,
    ) -> Result<Response<pb::CreateVirtualMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .create_virtual_mfa_device(&call.caller, &m.virtual_mfa_device_name, m.path.as_deref())
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
            });
        self.finish(&call, result).await
    }

    async fn enable_mfa_device(
        &self,
        req: Request<pb::EnableMfaDeviceRequest>,
    ) -> Result<Response<pb::EnableMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .enable_mfa_device(
                &call.caller,
                &m.user_name,
                &m.serial_number,
                &m.authentication_code1,
                &m.authentication_code2,
            )
            .await
            .map(|()| pb::EnableMfaDeviceResponse {});
        self.finish(&call, result).await
    }

    async fn resync_mfa_device(
        &self,
        req: Request<pb::ResyncMfaDeviceRequest>,
    ) -> Result<Response<pb::ResyncMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .resync_mfa_device(
                &call.caller,
                &m.user_name,
                &m.serial_number,
                &m.authentication_code1,
                &m.authentication_code2,
            )
            .await
            .map(|()| pb::ResyncMfaDeviceResponse {});
        self.finish(&call, result).await
    }

    async fn deactivate_mfa_device(
        &self,
        req: Request<pb::DeactivateMfaDeviceRequest>,
    ) -> Result<Response<pb::DeactivateMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .deactivate_mfa_device(&call.caller, m.user_name.as_deref(), &m.serial_number)
            .await
            .map(|()| pb::DeactivateMfaDeviceResponse {});
        self.finish(&call, result).await
    }

    async fn delete_virtual_mfa_device(
        &self,
        req: Request<pb::DeleteVirtualMfaDeviceRequest>,
    ) -> Result<Response<pb::DeleteVirtualMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .delete_virtual_mfa_device(&call.caller, &call.message.serial_number)
            .await
            .map(|()| pb::DeleteVirtualMfaDeviceResponse {});
        self.finish(&call, result).await
    }

    async fn list_mfa_devices(
        &self,
        req: Request<pb::ListMfaDevicesRequest>,
    ) -> Result<Response<pb::ListMfaDevicesResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .list_mfa_devices(&call.caller, call.message.user_name.as_deref())
            .await
            .map(|ds| pb::ListMfaDevicesResponse {
                mfa_devices: ds.into_iter().map(mfa_device_pb).collect(),
                is_truncated: false,
                marker: None,
            });
        self.finish(&call, result).await
    }

    async fn list_virtual_mfa_devices(
        &self,
        req: Request<pb::ListVirtualMfaDevicesRequest>,
    ) -> Result<Response<pb::ListVirtualMfaDevicesResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .list_virtual_mfa_devices(&call.caller, call.message.assignment_status.as_deref())
            .await
            .map(|ds| pb::ListVirtualMfaDevicesResponse {
                virtual_mfa_devices: ds.into_iter().map(virtual_device_pb).collect(),
                is_truncated: false,
                marker: None,
            });
        self.finish(&call, result).await
    }

    async fn get_mfa_device(
        &self,
        req: Request<pb::GetMfaDeviceRequest>,
    ) -> Result<Response<pb::GetMfaDeviceResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .get_mfa_device(&call.caller, &m.serial_number, m.user_name.as_deref())
            .await
            .map(|d| pb::GetMfaDeviceResponse {
                user_name: d.user_name,
                serial_number: d.serial,
                enable_date: d.enable_date.map(timestamp),
                certifications: Default::default(),
            });
        self.finish(&call, result).await
    }

    async fn import_hardware_mfa_devices(
        &self,
        req: Request<pb::ImportHardwareMfaDevicesRequest>,
    ) -> Result<Response<pb::ImportHardwareMfaDevicesResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .import_hardware_mfa_devices(&call.caller, &call.message.seed_file)
            .await
            .map(|serial_numbers| pb::ImportHardwareMfaDevicesResponse { serial_numbers });
        self.finish(&call, result).await
    }

    async fn reset_mfa_lockout(
        &self,
        req: Request<pb::ResetMfaLockoutRequest>,
    ) -> Result<Response<pb::ResetMfaLockoutResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .reset_mfa_lockout(&call.caller, call.message.user_name.as_deref())
            .await
            .map(|()| pb::ResetMfaLockoutResponse {});
        self.finish(&call, result).await
    }

    async fn get_account_summary(
        &self,
        req: Request<pb::GetAccountSummaryRequest>,
    ) -> Result<Response<pb::GetAccountSummaryResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self.broker.account_summary(&call.caller).await.map(|m| {
            pb::GetAccountSummaryResponse {
                summary_map: m.into_iter().collect(),
            }
        });
        self.finish(&call, result).await
    }

    async fn generate_credential_report(
        &self,
        req: Request<pb::GenerateCredentialReportRequest>,
    ) -> Result<Response<pb::GenerateCredentialReportResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .generate_credential_report(&call.caller)
            .await
            .map(|state| pb::GenerateCredentialReportResponse {
                state: state.to_owned(),
                description: "The credential report is ready.".to_owned(),
            });
        self.finish(&call, result).await
    }

    async fn get_credential_report(
        &self,
        req: Request<pb::GetCredentialReportRequest>,
    ) -> Result<Response<pb::GetCredentialReportResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .get_credential_report(&call.caller)
            .await
            .map(|r| pb::GetCredentialReportResponse {
                content: r.csv,
                report_format: "text/csv".to_owned(),
                generated_time: Some(timestamp(r.generated)),
            });
        self.finish(&call, result).await
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .create_user(&call.caller, &m.user_name, m.path.as_deref())
            .await
            .map(|u| pb::CreateUserResponse {
                user: Some(user_pb(u)),
            });
        self.finish(&call, result).await
    }

    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .get_user(&call.caller, call.message.user_name.as_deref())
            .await
            .map(|u| pb::GetUserResponse {
                user: Some(user_pb(u)),
            });
        self.finish(&call, result).await
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .list_users(
                &call.caller,
                m.path_prefix.as_deref(),
                m.marker.as_deref(),
                m.max_items,
            )
            .await
            .map(|(users, marker)| pb::ListUsersResponse {
                users: users.into_iter().map(user_pb).collect(),
                is_truncated: marker.is_some(),
                marker,
            });
        self.finish(&call, result).await
    }

    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .delete_user(&call.caller, &call.message.user_name)
            .await
            .map(|()| pb::DeleteUserResponse {});
        self.finish(&call, result).await
    }

    async fn create_access_key(
        &self,
        req: Request<pb::CreateAccessKeyRequest>,
    ) -> Result<Response<pb::CreateAccessKeyResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .create_access_key(&call.caller, call.message.user_name.as_deref())
            .await
            .map(|k| pb::CreateAccessKeyResponse {
                access_key: Some(pb::AccessKey {
                    user_name: k.key.user_name.clone(),
                    access_key_id: k.key.access_key_id.clone(),
                    status: k.key.status.as_str().to_owned(),
                    secret_access_key: k.secret_access_key.to_string(),
                    create_date: Some(timestamp(k.key.created)),
                }),
            });
        self.finish(&call, result).await
    }

    async fn list_access_keys(
        &self,
        req: Request<pb::ListAccessKeysRequest>,
    ) -> Result<Response<pb::ListAccessKeysResponse>, Status> {
        let call = self.begin(req).await?;
        let result = self
            .broker
            .list_access_keys(&call.caller, call.message.user_name.as_deref())
            .await
            .map(|keys| pb::ListAccessKeysResponse {
                access_key_metadata: keys.into_iter().map(key_meta_pb).collect(),
                is_truncated: false,
                marker: None,
            });
        self.finish(&call, result).await
    }

    async fn update_access_key(
        &self,
        req: Request<pb::UpdateAccessKeyRequest>,
    ) -> Result<Response<pb::UpdateAccessKeyResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .update_access_key(
                &call.caller,
                m.user_name.as_deref(),
                &m.access_key_id,
                &m.status,
            )
            .await
            .map(|()| pb::UpdateAccessKeyResponse {});
        self.finish(&call, result).await
    }

    async fn delete_access_key(
        &self,
        req: Request<pb::DeleteAccessKeyRequest>,
    ) -> Result<Response<pb::DeleteAccessKeyResponse>, Status> {
        let call = self.begin(req).await?;
        let m = &call.message;
        let result = self
            .broker
            .delete_access_key(&call.caller, m.user_name.as_deref(), &m.access_key_id)
            .await
            .map(|()| pb::DeleteAccessKeyResponse {});
        self.finish(&call, result).await
    }
}
