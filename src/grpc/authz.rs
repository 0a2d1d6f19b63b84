//! `authz.v1.AuthorizationService`. `Authorize` answers UNIMPLEMENTED until the policy engine
//! issue lands (the generated default stub).

use super::Services;
use crate::proto::authz::v1::authorization_service_server::AuthorizationService;

#[tonic::async_trait]
impl AuthorizationService for Services {}
