//! `sts.v1.SecurityTokenService`.

use super::Services;
use super::timestamp;
use crate::broker::IssuedCredentials;
use crate::broker::actions::Rpc;
use crate::broker::input::GetSessionToken;
use crate::proto::sts::v1 as pb;
use crate::proto::sts::v1::security_token_service_server::SecurityTokenService;

fn credentials_pb(c: IssuedCredentials) -> pb::Credentials {
    pb::Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key.to_string(),
        session_token: c.session_token,
        expiration: Some(timestamp(c.expiration)),
    }
}

service! { self, SecurityTokenService {
    get_session_token(pb::GetSessionTokenRequest) -> pb::GetSessionTokenResponse = |c, m| {
        let input = match GetSessionToken::try_from(m) {
            Ok(input) => input,
            Err(e) => return Err(self.broker.refuse_input(c, Rpc::GetSessionToken, e).await),
        };
        let credentials = self.broker.get_session_token(c, input).await?;
        Ok(pb::GetSessionTokenResponse { credentials: Some(credentials_pb(credentials)) })
    };
    assume_role(pb::AssumeRoleRequest) -> pb::AssumeRoleResponse = |c, m| {
        let (credentials, u) = self.broker.assume_role(c, m.try_into()?).await?;
        Ok(pb::AssumeRoleResponse {
            credentials: Some(credentials_pb(credentials)),
            assumed_role_user: Some(pb::AssumedRoleUser {
                assumed_role_id: u.assumed_role_id,
                arn: u.arn,
            }),
            packed_policy_size: u.packed_policy_size,
        })
    };
    get_caller_identity(pb::GetCallerIdentityRequest) -> pb::GetCallerIdentityResponse = |c, m| {
        let (account, arn, user_id) = self.broker.get_caller_identity(c).await?;
        Ok(pb::GetCallerIdentityResponse { account, arn, user_id })
    };
}}
