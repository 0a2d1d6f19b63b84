//! `iam.v1.IamService`.

use super::{Services, timestamp};
use crate::broker::{AccessKeyView, UserView};
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

#[tonic::async_trait]
impl IamService for Services {
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
