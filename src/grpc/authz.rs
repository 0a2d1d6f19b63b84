//! `authz.v1.AuthorizationService`: the policy decision point for resource servers.

use super::Services;
use super::iam::{decision_pb, entries, statements_pb};
use crate::proto::authz::v1 as pb;
use crate::proto::authz::v1::authorization_service_server::AuthorizationService;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl AuthorizationService for Services {
    async fn authorize(
        &self,
        req: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        handle!(self, req, |c, m| self
            .broker
            .authorize_token(
                c,
                &m.session_token,
                &m.action,
                &m.resource,
                &entries(&m.context_entries)
            )
            .await
            .map(|a| pb::AuthorizeResponse {
                decision: decision_pb(a.decision.effect),
                matched_statements: statements_pb(&a.decision),
                principal_arn: a.principal_arn,
                mfa_present: a.mfa_present,
                mfa_age_seconds: a.mfa_age_seconds,
            }))
    }
}
