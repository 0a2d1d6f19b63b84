//! `sts.v1.SecurityTokenService`.

use super::Services;
use crate::proto::sts::v1::security_token_service_server::SecurityTokenService;
use crate::proto::sts::v1::{GetCallerIdentityRequest, GetCallerIdentityResponse};
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl SecurityTokenService for Services {
    async fn get_caller_identity(
        &self,
        req: Request<GetCallerIdentityRequest>,
    ) -> Result<Response<GetCallerIdentityResponse>, Status> {
        let call = self.begin(req).await?;
        let result =
            self.broker
                .get_caller_identity(&call.caller)
                .map(|(account, arn, user_id)| GetCallerIdentityResponse {
                    account,
                    arn,
                    user_id,
                });
        self.finish(&call, result).await
    }
}
