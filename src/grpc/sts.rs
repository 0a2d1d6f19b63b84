//! `sts.v1.SecurityTokenService`.

use super::Services;
use super::timestamp;
use crate::broker::IssuedCredentials;
use crate::proto::sts::v1 as pb;
use crate::proto::sts::v1::security_token_service_server::SecurityTokenService;
use crate::proto::sts::v1::{GetCallerIdentityRequest, GetCallerIdentityResponse};
use tonic::{Request, Response, Status};

fn credentials_pb(c: IssuedCredentials) -> pb::Credentials {
    pb::Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key.to_string(),
        session_token: c.session_token,
        expiration: Some(timestamp(c.expiration)),
    }
}

#[tonic::async_trait]
impl SecurityTokenService for Services {
    async fn get_session_token(
        &self,
        req: Request<pb::GetSessionTokenRequest>,
    ) -> Result<Response<pb::GetSessionTokenResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .get_session_token(
                c,
                m.duration_seconds,
                m.serial_number.as_deref(),
                m.token_code.as_deref(),
            )
            .await
            .map(|c| pb::GetSessionTokenResponse {
                credentials: Some(credentials_pb(c)),
            }))
    }

    async fn assume_role(
        &self,
        req: Request<pb::AssumeRoleRequest>,
    ) -> Result<Response<pb::AssumeRoleResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .assume_role(
                c,
                &m.role_arn,
                &m.role_session_name,
                m.duration_seconds,
                m.serial_number.as_deref(),
                m.token_code.as_deref(),
                m.policy.as_deref(),
            )
            .await
            .map(|(c, u)| pb::AssumeRoleResponse {
                credentials: Some(credentials_pb(c)),
                assumed_role_user: Some(pb::AssumedRoleUser {
                    assumed_role_id: u.assumed_role_id,
                    arn: u.arn,
                }),
                packed_policy_size: u.packed_policy_size,
            }))
    }

    async fn get_caller_identity(
        &self,
        req: Request<GetCallerIdentityRequest>,
    ) -> Result<Response<GetCallerIdentityResponse>, Status> {
        let call = self.begin(req).await?;
        let result =
            self.broker
                .get_caller_identity(&call.caller)
                .await
                .map(|(account, arn, user_id)| GetCallerIdentityResponse {
                    account,
                    arn,
                    user_id,
                });
        self.finish(&call, result).await
    }
}
