//! IAM users and long-term access keys.

use super::actions::{Resource, ResourceKind, Rpc};
use super::input::{CreateUser, DeleteAccessKey, DeleteUser, ForUser, ListUsers, UpdateAccessKey};
use super::{Broker, Caller, Principal, access_key_binding};
use crate::domain::{Owner, OwnerRef, StoreRules, User};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId, IamPath, KeyStatus, UserName};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A user as IAM describes it (also used for the root user, which has no name or path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub name: String,
    pub path: String,
    pub user_id: String,
    pub arn: String,
    pub created: OffsetDateTime,
}

/// An access key's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyView {
    pub user_name: String,
    pub access_key_id: String,
    pub status: KeyStatus,
    pub created: OffsetDateTime,
}

/// A key just created: the only time its secret is returned.
pub struct CreatedAccessKey {
    pub key: AccessKeyView,
    pub secret_access_key: Zeroizing<String>,
}

impl std::fmt::Debug for CreatedAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedAccessKey")
            .field("key", &self.key)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Whose keys a key call is about.
pub(super) struct KeyTarget {
    pub(super) owner: OwnerRef,
    pub(super) user_name: String,
    arn: String,
}

impl Broker {
    pub(super) fn user_view(&self, u: &User) -> UserView {
        UserView {
            name: u.name.to_string(),
            path: u.path.as_str().to_owned(),
            user_id: u.id.clone(),
            arn: ids::user_arn(&self.account, &u.path, &u.name),
            created: u.created,
        }
    }

    /// AWS's `NoSuchEntity` for the `kind` (`user`, `group`, `role`) named `name`.
    pub(super) fn no_such_named(kind: &str, name: impl std::fmt::Display) -> BrokerError {
        BrokerError::new(
            AwsCode::NoSuchEntity,
            format!("The {kind} with name {name} cannot be found."),
        )
    }

    pub(super) fn no_such_user(name: &UserName) -> BrokerError {
        Self::no_such_named("user", name)
    }

    pub(super) async fn find_user(&self, name: &UserName) -> Result<Option<User>, BrokerError> {
        let n = name.clone();
        self.blocking(move |s| s.get_user(&n)).await
    }

    /// The ARN a user would have: with its real path if it exists, so authorization is decided
    /// before existence is revealed.
    fn arn_for(&self, name: &UserName, found: Option<&User>) -> Resource {
        let (path, name) = match found {
            Some(u) => (&u.path, &u.name),
            None => (&IamPath::root(), name),
        };
        Resource::named(ResourceKind::User, &self.account, path, name.as_str())
    }

    /// `CreateUser`.
    pub async fn create_user(
        &self,
        caller: &Caller,
        CreateUser {
            user_name: name,
            path,
        }: CreateUser,
    ) -> Result<UserView, BrokerError> {
        self.authorize(
            caller,
            Rpc::CreateUser,
            &Resource::named(ResourceKind::User, &self.account, &path, name.as_str()),
        )
        .await?;
        let user = User {
            id: ids::generate_unique_id("AIDA"),
            name,
            path,
            created: self.clock.now(),
        };
        let u = user.clone();
        self.blocking(move |s| s.create_user(&u)).await?;
        Ok(self.user_view(&user))
    }

    /// `GetUser`: the named user, or the caller itself when no name is given.
    pub async fn get_user(&self, caller: &Caller, input: ForUser) -> Result<UserView, BrokerError> {
        let name = match input.user_name {
            Some(n) => n,
            None => {
                self.authorize(
                    caller,
                    Rpc::GetUser,
                    &Resource::known(ResourceKind::User, caller.arn.as_str()),
                )
                .await?;
                return Ok(match &caller.principal {
                    Principal::Root => UserView {
                        name: String::new(),
                        path: String::new(),
                        user_id: self.account.to_string(),
                        arn: caller.arn.clone(),
                        created: OffsetDateTime::UNIX_EPOCH,
                    },
                    Principal::User(u) => self.user_view(u),
                    Principal::AssumedRole { .. } => {
                        return Err(BrokerError::new(
                            AwsCode::ValidationError,
                            "Must specify userName when calling with non-User credentials",
                        ));
                    }
                });
            }
        };
        let found = self.find_user(&name).await?;
        self.authorize(caller, Rpc::GetUser, &self.arn_for(&name, found.as_ref()))
            .await?;
        found
            .map(|u| self.user_view(&u))
            .ok_or_else(|| Self::no_such_user(&name))
    }

    /// `ListUsers`.
    pub async fn list_users(
        &self,
        caller: &Caller,
        input: ListUsers,
    ) -> Result<(Vec<UserView>, Option<String>), BrokerError> {
        let prefix = input.path_prefix.as_str().to_owned();
        let max = input.max_items.get();
        self.authorize(
            caller,
            Rpc::ListUsers,
            &Resource::all_under(ResourceKind::UsersUnder, &self.account, &prefix),
        )
        .await?;
        let marker = input.marker;
        let page = self
            .blocking(move |s| s.list_users(&prefix, marker.as_deref(), max))
            .await?;
        Ok((
            page.items.iter().map(|u| self.user_view(u)).collect(),
            page.next_marker,
        ))
    }

    /// `DeleteUser`: only a user that owns nothing (AWS's `DeleteConflict` otherwise).
    pub async fn delete_user(&self, caller: &Caller, input: DeleteUser) -> Result<(), BrokerError> {
        let name = input.user_name;
        let found = self.find_user(&name).await?;
        self.authorize(
            caller,
            Rpc::DeleteUser,
            &self.arn_for(&name, found.as_ref()),
        )
        .await?;
        if found.is_none() {
            return Err(Self::no_such_user(&name));
        }
        self.blocking_identity_change(move |s| s.delete_user(&name))
            .await
    }

    /// Resolves whose keys a key call is about and authorizes `rpc` on it.
    pub(super) async fn key_target(
        &self,
        caller: &Caller,
        user_name: Option<&UserName>,
        rpc: Rpc,
    ) -> Result<KeyTarget, BrokerError> {
        let target = match user_name {
            None => match &caller.principal {
                Principal::Root => KeyTarget {
                    owner: OwnerRef::Root,
                    user_name: String::new(),
                    arn: caller.arn.clone(),
                },
                Principal::User(u) => KeyTarget {
                    owner: OwnerRef::User(u.id.clone()),
                    user_name: u.name.to_string(),
                    arn: caller.arn.clone(),
                },
                Principal::AssumedRole { .. } => {
                    return Err(BrokerError::new(
                        AwsCode::ValidationError,
                        "Must specify userName when calling with non-User credentials",
                    ));
                }
            },
            Some(name) => {
                let found = self.find_user(name).await?;
                self.authorize(caller, rpc, &self.arn_for(name, found.as_ref()))
                    .await?;
                let u = found.ok_or_else(|| Self::no_such_user(name))?;
                KeyTarget {
                    owner: OwnerRef::User(u.id.clone()),
                    user_name: u.name.to_string(),
                    arn: ids::user_arn(&self.account, &u.path, &u.name),
                }
            }
        };
        self.authorize(
            caller,
            rpc,
            &Resource::known(ResourceKind::User, target.arn.as_str()),
        )
        .await?;
        Ok(target)
    }

    /// `CreateAccessKey`: a new key for the named user or the caller; at most two per user.
    pub async fn create_access_key(
        &self,
        caller: &Caller,
        input: ForUser,
    ) -> Result<CreatedAccessKey, BrokerError> {
        let target = self
            .key_target(caller, input.user_name.as_ref(), Rpc::CreateAccessKey)
            .await?;
        let id = AccessKeyId::generate_long_term();
        let secret = crate::crypto::random_secret_access_key();
        let owner_binding = match &target.owner {
            OwnerRef::Root => "root".to_owned(),
            OwnerRef::User(id) => id.clone(),
        };
        let blob = self
            .master
            .seal(access_key_binding(&id, &owner_binding), secret.as_bytes())
            .map_err(BrokerError::internal)?;
        let now = self.clock.now();
        let (owner, kid) = (target.owner.clone(), id.clone());
        self.blocking(move |s| s.create_access_key(&owner, &kid, &blob, now))
            .await?;
        Ok(CreatedAccessKey {
            key: AccessKeyView {
                user_name: target.user_name,
                access_key_id: id.to_string(),
                status: KeyStatus::Active,
                created: now,
            },
            secret_access_key: secret,
        })
    }

    /// `ListAccessKeys`: metadata of the named user's or the caller's keys.
    pub async fn list_access_keys(
        &self,
        caller: &Caller,
        input: ForUser,
    ) -> Result<Vec<AccessKeyView>, BrokerError> {
        let target = self
            .key_target(caller, input.user_name.as_ref(), Rpc::ListAccessKeys)
            .await?;
        let owner = target.owner.clone();
        let keys = self.blocking(move |s| s.list_access_keys(&owner)).await?;
        Ok(keys
            .into_iter()
            .map(|k| AccessKeyView {
                user_name: match &k.owner {
                    Owner::Root => String::new(),
                    Owner::User(u) => u.name.to_string(),
                },
                access_key_id: k.id.to_string(),
                status: k.status,
                created: k.created,
            })
            .collect())
    }

    /// `UpdateAccessKey`: Active or Inactive.
    pub async fn update_access_key(
        &self,
        caller: &Caller,
        UpdateAccessKey {
            user_name,
            access_key_id: id,
            status,
        }: UpdateAccessKey,
    ) -> Result<(), BrokerError> {
        let target = self
            .key_target(caller, user_name.as_ref(), Rpc::UpdateAccessKey)
            .await?;
        self.blocking_identity_change(move |s| s.update_access_key(&target.owner, &id, status))
            .await
    }

    /// `DeleteAccessKey`.
    pub async fn delete_access_key(
        &self,
        caller: &Caller,
        DeleteAccessKey {
            user_name,
            access_key_id: id,
        }: DeleteAccessKey,
    ) -> Result<(), BrokerError> {
        let target = self
            .key_target(caller, user_name.as_ref(), Rpc::DeleteAccessKey)
            .await?;
        self.blocking_identity_change(move |s| s.delete_access_key(&target.owner, &id))
            .await
    }
}
