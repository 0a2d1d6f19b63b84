//! `authz.v1.AuthorizationService`: the policy decision point for resource servers.

use super::Services;
use super::iam::{decision_pb, statements_pb};
use crate::proto::authz::v1 as pb;
use crate::proto::authz::v1::authorization_service_server::AuthorizationService;

service! { self, AuthorizationService {
    authorize(pb::AuthorizeRequest) -> pb::AuthorizeResponse = |c, m| {
        let a = self.broker.authorize_token(c, m.try_into()?).await?;
        Ok(pb::AuthorizeResponse {
            decision: decision_pb(a.decision.effect),
            matched_statements: statements_pb(&a.decision),
            principal_arn: a.principal_arn,
            mfa_present: a.mfa_present,
            mfa_age_seconds: a.mfa_age_seconds,
        })
    };
}}
