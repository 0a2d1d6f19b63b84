//! IAM users and long-term access keys.

use super::{Broker, Caller, Principal, access_key_binding, required};
use crate::domain::{Owner, OwnerRef, StoreRules, User};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId, IamPath, KeyStatus, UserName};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// AWS's default and largest page sizes for IAM listings.
const DEFAULT_MAX_ITEMS: usize = 100;
const LARGEST_MAX_ITEMS: usize = 1000;

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

fn max_items(v: Option<i32>) -> Result<usize, BrokerError> {
    match v {
        None => Ok(DEFAULT_MAX_ITEMS),
        Some(n) if (1..=1000).contains(&n) => Ok(usize::try_from(n).unwrap_or(LARGEST_MAX_ITEMS)),
        Some(n) => Err(ids::ValidationError::new(
            "maxItems",
            &n.to_string(),
            "Member must have value between 1 and 1000",
        )
        .into()),
    }
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

    fn no_such_user(name: &UserName) -> BrokerError {
        BrokerError::new(
            AwsCode::NoSuchEntity,
            format!("The user with name {name} cannot be found."),
        )
    }

    async fn find_user(&self, name: &UserName) -> Result<Option<User>, BrokerError> {
        let n = name.clone();
        self.blocking(move |s| s.get_user(&n)).await
    }

    /// The ARN a user would have: with its real path if it exists, so authorization is decided
    /// before existence is revealed.
    fn arn_for(&self, name: &UserName, found: Option<&User>) -> String {
        match found {
            Some(u) => ids::user_arn(&self.account, &u.path, &u.name),
            None => ids::user_arn(&self.account, &IamPath::root(), name),
        }
    }

    /// `CreateUser`.
    pub async fn create_user(
        &self,
        caller: &Caller,
        user_name: &str,
        path: Option<&str>,
    ) -> Result<UserView, BrokerError> {
        if user_name.is_empty() {
            return Err(required("userName"));
        }
        let name = UserName::parse(user_name)?;
        let path = match path {
            Some(p) => IamPath::parse("path", p)?,
            None => IamPath::root(),
        };
        self.authorize(
            caller,
            "iam:CreateUser",
            &ids::user_arn(&self.account, &path, &name),
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
    pub async fn get_user(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<UserView, BrokerError> {
        let name = match user_name.filter(|n| !n.is_empty()) {
            Some(n) => UserName::parse(n)?,
            None => {
                self.authorize(caller, "iam:GetUser", &caller.arn).await?;
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
        self.authorize(caller, "iam:GetUser", &self.arn_for(&name, found.as_ref()))
            .await?;
        found
            .map(|u| self.user_view(&u))
            .ok_or_else(|| Self::no_such_user(&name))
    }

    /// `ListUsers`.
    pub async fn list_users(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: Option<i32>,
    ) -> Result<(Vec<UserView>, Option<String>), BrokerError> {
        let prefix = path_prefix.unwrap_or("/").to_owned();
        if !prefix.starts_with('/') || prefix.len() > 512 {
            return Err(ids::ValidationError::new(
                "pathPrefix",
                &prefix,
                r"Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*",
            )
            .into());
        }
        let max = max_items(max)?;
        self.authorize(
            caller,
            "iam:ListUsers",
            &format!("arn:aws:iam::{}:user{prefix}*", self.account),
        )
        .await?;
        let marker = marker.map(str::to_owned);
        let page = self
            .blocking(move |s| s.list_users(&prefix, marker.as_deref(), max))
            .await?;
        Ok((
            page.items.iter().map(|u| self.user_view(u)).collect(),
            page.next_marker,
        ))
    }

    /// `DeleteUser`: only a user that owns nothing (AWS's `DeleteConflict` otherwise).
    pub async fn delete_user(&self, caller: &Caller, user_name: &str) -> Result<(), BrokerError> {
        if user_name.is_empty() {
            return Err(required("userName"));
        }
        let name = UserName::parse(user_name)?;
        let found = self.find_user(&name).await?;
        self.authorize(
            caller,
            "iam:DeleteUser",
            &self.arn_for(&name, found.as_ref()),
        )
        .await?;
        if found.is_none() {
            return Err(Self::no_such_user(&name));
        }
        self.blocking_identity_change(move |s| s.delete_user(&name))
            .await
    }

    /// Resolves whose keys a key call is about and authorizes `action` on it.
    pub(super) async fn key_target(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        action: &str,
    ) -> Result<KeyTarget, BrokerError> {
        let target = match user_name.filter(|n| !n.is_empty()) {
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
            Some(n) => {
                let name = UserName::parse(n)?;
                let found = self.find_user(&name).await?;
                self.authorize(caller, action, &self.arn_for(&name, found.as_ref()))
                    .await?;
                let u = found.ok_or_else(|| Self::no_such_user(&name))?;
                KeyTarget {
                    owner: OwnerRef::User(u.id.clone()),
                    user_name: u.name.to_string(),
                    arn: ids::user_arn(&self.account, &u.path, &u.name),
                }
            }
        };
        self.authorize(caller, action, &target.arn).await?;
        Ok(target)
    }

    /// `CreateAccessKey`: a new key for the named user or the caller; at most two per user.
    pub async fn create_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<CreatedAccessKey, BrokerError> {
        let target = self
            .key_target(caller, user_name, "iam:CreateAccessKey")
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
        user_name: Option<&str>,
    ) -> Result<Vec<AccessKeyView>, BrokerError> {
        let target = self
            .key_target(caller, user_name, "iam:ListAccessKeys")
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
        user_name: Option<&str>,
        access_key_id: &str,
        status: &str,
    ) -> Result<(), BrokerError> {
        if access_key_id.is_empty() {
            return Err(required("accessKeyId"));
        }
        let id = AccessKeyId::parse(access_key_id)?;
        let status = KeyStatus::parse(status)?;
        let target = self
            .key_target(caller, user_name, "iam:UpdateAccessKey")
            .await?;
        self.blocking_identity_change(move |s| s.update_access_key(&target.owner, &id, status))
            .await
    }

    /// `DeleteAccessKey`.
    pub async fn delete_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        access_key_id: &str,
    ) -> Result<(), BrokerError> {
        if access_key_id.is_empty() {
            return Err(required("accessKeyId"));
        }
        let id = AccessKeyId::parse(access_key_id)?;
        let target = self
            .key_target(caller, user_name, "iam:DeleteAccessKey")
            .await?;
        self.blocking_identity_change(move |s| s.delete_access_key(&target.owner, &id))
            .await
    }
}
