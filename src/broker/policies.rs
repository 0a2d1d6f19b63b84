//! Authorization by IAM policies, and their management.
//!
//! Every call is decided by the policy engine (`crate::policy`) with the request context the
//! README's 'Policies and MFA conditions' describes: default deny, an explicit Deny wins, the identity policies of the user (its
//! own and its groups', inline and managed) or of the role, intersected with a role session's
//! session policy. The root user is always allowed. As in AWS, `sts:GetCallerIdentity` and
//! `sts:GetSessionToken` need no permission, and `sts:AssumeRole` within the account is decided
//! by the role's trust policy unless an identity policy explicitly denies it.
//!
//! Compiled policy sets are cached per principal under the crate's one cache rule (`src/cache.rs`):
//! every change to policies, attachments or group membership invalidates the whole cache after it
//! commits, and a read that started before such a change is not remembered, so a decision made
//! after a change has committed never uses the set from before it.

use super::actions::{PolicyVerb, Resource, ResourceKind, Rpc};
use super::input::{
    Attachment, Authorize, CreateGroup, CreatePolicy, ForGroup, ForPolicy, GroupMembership,
    InlinePolicy, ListAttachedPolicies, ListPolicies, PolicyScope, PrincipalName, PutInlinePolicy,
    Simulate,
};
use super::{Broker, Caller, Principal, SessionInfo, UserView};
use crate::cache::GenerationCache;
use crate::domain::{Group, ManagedPolicy, PrincipalKind, StoreRules};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, Arn, GroupName, IamPath, RoleName, UserName};
use crate::policy::{
    self, Context, ContextValue, Decision, EvalDecision, MatchedStatement, Number, PolicyDocument,
    PolicyKind, PolicySource, Request, SourceType,
};
use std::sync::Arc;
use time::OffsetDateTime;

/// Compiled identity policy sets per principal (`user:ID`, `role:ID`) that a call may be
/// decided with.
pub struct PolicyCache(GenerationCache<String, Arc<Vec<PolicySource>>>);

/// Principals whose policy sets are remembered.
const POLICY_CACHE_ENTRIES: usize = 65_536;

impl Default for PolicyCache {
    fn default() -> Self {
        Self(GenerationCache::new(POLICY_CACHE_ENTRIES))
    }
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

/// One evaluated (action, resource) pair of a simulation.
#[derive(Debug, Clone)]
pub struct SimulationResult {
    pub action: String,
    pub resource: String,
    pub decision: Decision,
}

/// The answer to `Authorize`.
#[derive(Debug, Clone)]
pub struct AuthorizeAnswer {
    pub decision: Decision,
    pub principal_arn: String,
    pub mfa_present: bool,
    pub mfa_age_seconds: Option<i64>,
}

/// Context keys only the broker may set: a resource server's `Authorize` cannot supply them.
const BROKER_OWNED_KEYS: &[&str] = &[
    policy::keys::MULTI_FACTOR_AUTH_PRESENT,
    policy::keys::MULTI_FACTOR_AUTH_AGE,
    policy::keys::TOKEN_ISSUE_TIME,
    policy::keys::CURRENT_TIME,
    policy::keys::EPOCH_TIME,
    policy::keys::PRINCIPAL_ARN,
    policy::keys::PRINCIPAL_ACCOUNT,
    policy::keys::PRINCIPAL_TYPE,
    policy::keys::USERID,
    policy::keys::USERNAME,
];

fn source_type(stored: &str) -> (SourceType, PolicyKind) {
    match stored {
        "user" => (SourceType::User, PolicyKind::UserInline),
        "group" => (SourceType::Group, PolicyKind::GroupInline),
        "role" => (SourceType::Role, PolicyKind::RoleInline),
        _ => (SourceType::UserManaged, PolicyKind::Managed),
    }
}

/// AWS's name for a source type in simulation and `Authorize` answers.
pub fn source_type_name(t: SourceType) -> &'static str {
    match t {
        SourceType::User => "user",
        SourceType::Group => "group",
        SourceType::Role => "role",
        SourceType::UserManaged => "user-managed",
        SourceType::AwsManaged => "aws-managed",
        SourceType::Resource | SourceType::Trust => "resource",
        SourceType::Session => "none",
    }
}

fn malformed(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::new(AwsCode::MalformedPolicyDocument, e.to_string())
}

impl Broker {
    /// Drops every cached policy set and refuses the sets of reads already under way (after any
    /// policy, attachment or membership change has committed).
    fn invalidate_policies(&self) {
        self.policy_cache.0.invalidate();
    }

    /// The compiled identity policies of a principal.
    async fn policies_for(
        &self,
        principal: &Principal,
    ) -> Result<Arc<Vec<PolicySource>>, BrokerError> {
        self.policies_for_with(principal, async {}).await
    }

    /// [`Broker::policies_for`], running `after_read` between the store read and the cache
    /// insert (tests use it to commit a change exactly there).
    async fn policies_for_with(
        &self,
        principal: &Principal,
        after_read: impl std::future::Future<Output = ()>,
    ) -> Result<Arc<Vec<PolicySource>>, BrokerError> {
        let (kind, id) = match principal {
            Principal::Root => return Ok(Arc::new(Vec::new())),
            Principal::User(u) => (PrincipalKind::User, u.id.as_str()),
            Principal::AssumedRole { role, .. } => (PrincipalKind::Role, role.id.as_str()),
        };
        let key = format!("{}:{id}", kind.as_str());
        let load = async {
            let id = id.to_owned();
            let stored = self
                .blocking(move |s| s.effective_policies(kind, &id))
                .await?;
            after_read.await;
            let mut sources = Vec::with_capacity(stored.len());
            for p in stored {
                let (t, k) = source_type(p.source_type);
                // SECURITY: a stored document that no longer parses fails the call closed.
                let document = PolicyDocument::parse(&p.document, k).map_err(|e| {
                    BrokerError::internal(format!(
                        "stored policy {} does not parse: {e}",
                        p.source_id
                    ))
                })?;
                sources.push(PolicySource {
                    id: p.source_id,
                    kind: t,
                    document: Arc::new(document),
                });
            }
            Ok::<_, BrokerError>(Some(Arc::new(sources)))
        };
        let set = self.policy_cache.0.get_or_load(key.as_str(), load).await?;
        Ok(set.unwrap_or_default())
    }

    /// The request context of a call (README, 'Policies and MFA conditions'), with AWS's presence rules for the MFA
    /// keys (absent for long-term keys; present/age for sessions).
    pub(super) fn call_context(&self, caller: &Caller, now: OffsetDateTime) -> Context {
        let mut ctx = self.request_context(caller, now);
        if let Some(s) = &caller.session {
            match s.mfa_auth_time() {
                Some(t) => {
                    ctx.insert(
                        policy::keys::MULTI_FACTOR_AUTH_PRESENT,
                        ContextValue::Bool(true),
                    );
                    ctx.insert(
                        policy::keys::MULTI_FACTOR_AUTH_AGE,
                        ContextValue::Numeric(Number::from_i64((now.unix_timestamp() - t).max(0))),
                    );
                }
                None => ctx.insert(
                    policy::keys::MULTI_FACTOR_AUTH_PRESENT,
                    ContextValue::Bool(false),
                ),
            }
        }
        ctx
    }

    /// Evaluates a caller's policies for one action on one resource.
    async fn decide(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        ctx: Context,
    ) -> Result<Decision, BrokerError> {
        let set = self.policies_for(&caller.principal).await?;
        let session_policy = caller
            .session
            .as_ref()
            .and_then(|s| s.claims.policy.as_deref())
            .map(|p| PolicyDocument::parse(p, PolicyKind::Session))
            .transpose()
            .map_err(BrokerError::internal)?;
        let request = Request {
            action: action.to_owned(),
            resource: resource.to_owned(),
            principal_arn: caller.arn.clone(),
            context: ctx,
        };
        Ok(match session_policy {
            None => policy::evaluate(&set, &request),
            Some(doc) => {
                let mut all = (*set).clone();
                all.push(PolicySource {
                    id: "SessionPolicy".to_owned(),
                    kind: SourceType::Session,
                    document: Arc::new(doc),
                });
                policy::evaluate(&all, &request)
            }
        })
    }

    /// Authorizes `action` on `resource` for the caller, or says why not in AWS's words.
    pub(super) async fn authorize(
        &self,
        caller: &Caller,
        rpc: Rpc,
        resource: &Resource,
    ) -> Result<(), BrokerError> {
        // INVARIANT: the table row of `rpc` says what it is authorized on; a call site that
        // passes another kind of resource is a bug, and fails closed.
        if !rpc.admits(resource) {
            return Err(BrokerError::internal(format!(
                "{} was to be authorized on a {:?} resource",
                rpc.action(),
                resource.kind()
            )));
        }
        let (action, resource) = (rpc.action(), resource.arn());
        Self::temporary_credential_limits(caller, action)?;
        if matches!(rpc, Rpc::GetCallerIdentity | Rpc::GetSessionToken)
            || matches!(caller.principal, Principal::Root)
        {
            return Ok(());
        }
        let ctx = self.call_context(caller, self.clock.now());
        let decision = self.decide(caller, action, resource, ctx).await?;
        match decision.effect {
            EvalDecision::Allowed => Ok(()),
            EvalDecision::ExplicitDeny => Err(BrokerError::new(
                AwsCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource} with an explicit deny in an identity-based policy",
                    caller.arn
                ),
            )),
            // Within the account the role's trust policy decides AssumeRole.
            EvalDecision::ImplicitDeny if rpc == Rpc::AssumeRole => Ok(()),
            EvalDecision::ImplicitDeny => Err(BrokerError::new(
                AwsCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
                    caller.arn
                ),
            )),
        }
    }

    // ---------------------------------------------------------------- principals by name

    fn arn(&self, kind: PrincipalKind, path: &IamPath, name: &str) -> Resource {
        let kind = match kind {
            PrincipalKind::User => ResourceKind::User,
            PrincipalKind::Group => ResourceKind::Group,
            PrincipalKind::Role => ResourceKind::Role,
        };
        Resource::named(kind, &self.account, path, name)
    }

    /// Resolves a user, group or role by name to (unique id, ARN), authorizing `rpc` on it.
    async fn principal_by_name(
        &self,
        caller: &Caller,
        principal: &PrincipalName,
        rpc: Rpc,
    ) -> Result<(String, String), BrokerError> {
        let (kind, name) = (principal.kind(), principal.as_str());
        let found = match principal.clone() {
            PrincipalName::User(n) => self
                .blocking(move |s| s.get_user(&n))
                .await?
                .map(|u| (u.id.clone(), self.arn(kind, &u.path, u.name.as_str()))),
            PrincipalName::Group(n) => self
                .blocking(move |s| s.get_group(&n))
                .await?
                .map(|g| (g.id.clone(), self.arn(kind, &g.path, g.name.as_str()))),
            PrincipalName::Role(n) => self
                .blocking(move |s| s.get_role(&n))
                .await?
                .map(|r| (r.id.clone(), self.arn(kind, &r.path, r.name.as_str()))),
        };
        let resource = found.as_ref().map_or_else(
            || self.arn(kind, &IamPath::root(), name),
            |(_, a)| a.clone(),
        );
        self.authorize(caller, rpc, &resource).await?;
        let found = found.map(|(id, r)| (id, r.into_arn()));
        found.ok_or_else(|| Self::no_such_named(kind.as_str(), name))
    }

    // ---------------------------------------------------------------- groups

    /// `CreateGroup`.
    pub async fn create_group(
        &self,
        caller: &Caller,
        CreateGroup {
            group_name: name,
            path,
        }: CreateGroup,
    ) -> Result<(Group, String), BrokerError> {
        let resource = self.arn(PrincipalKind::Group, &path, name.as_str());
        self.authorize(caller, Rpc::CreateGroup, &resource).await?;
        let arn = resource.into_arn();
        let g = Group {
            id: ids::generate_unique_id("AGPA"),
            name,
            path,
            created: self.clock.now(),
        };
        let g2 = g.clone();
        self.blocking(move |s| s.create_group(&g2)).await?;
        Ok((g, arn))
    }

    /// `GetGroup`: the group and its members.
    pub async fn get_group(
        &self,
        caller: &Caller,
        input: ForGroup,
    ) -> Result<(Group, String, Vec<UserView>), BrokerError> {
        let name = input.group_name;
        let (id, arn) = self
            .principal_by_name(caller, &PrincipalName::Group(name.clone()), Rpc::GetGroup)
            .await?;
        let n = name.clone();
        let group = self
            .blocking(move |s| s.get_group(&n))
            .await?
            .ok_or_else(|| Self::no_such_named("group", &name))?;
        let members = self.blocking(move |s| s.group_members(&id)).await?;
        Ok((
            group,
            arn,
            members.iter().map(|u| self.user_view(u)).collect(),
        ))
    }

    /// `DeleteGroup`.
    pub async fn delete_group(&self, caller: &Caller, input: ForGroup) -> Result<(), BrokerError> {
        let group = PrincipalName::Group(input.group_name);
        let (id, _) = self
            .principal_by_name(caller, &group, Rpc::DeleteGroup)
            .await?;
        self.blocking(move |s| s.delete_group(&id)).await
    }

    /// `AddUserToGroup` / `RemoveUserFromGroup`.
    pub async fn group_membership(
        &self,
        caller: &Caller,
        GroupMembership {
            group_name,
            user_name,
        }: GroupMembership,
        add: bool,
    ) -> Result<(), BrokerError> {
        let group = PrincipalName::Group(group_name);
        let rpc = Rpc::group_membership(add);
        let (gid, _) = self.principal_by_name(caller, &group, rpc).await?;
        let u = self
            .find_user(&user_name)
            .await?
            .ok_or_else(|| Self::no_such_user(&user_name))?;
        let uid = u.id;
        if add {
            self.blocking(move |s| s.add_user_to_group(&gid, &uid))
                .await?;
        } else {
            self.blocking(move |s| s.remove_user_from_group(&gid, &uid))
                .await?;
        }
        self.invalidate_policies();
        Ok(())
    }

    // ---------------------------------------------------------------- managed policies

    /// `CreatePolicy`.
    pub async fn create_policy(
        &self,
        caller: &Caller,
        CreatePolicy {
            policy_name: name,
            document,
            path,
            description,
        }: CreatePolicy,
    ) -> Result<ManagedPolicy, BrokerError> {
        PolicyDocument::parse(&document, PolicyKind::Managed).map_err(malformed)?;
        let resource = Resource::named(ResourceKind::Policy, &self.account, &path, name.as_str());
        self.authorize(caller, Rpc::CreatePolicy, &resource).await?;
        let arn = resource.into_arn();
        let now = self.clock.now();
        let p = ManagedPolicy {
            id: ids::generate_unique_id("ANPA"),
            arn,
            name,
            path,
            document,
            description,
            created: now,
            updated: now,
            attachment_count: 0,
        };
        let p2 = p.clone();
        self.blocking(move |s| s.create_managed_policy(&p2)).await?;
        Ok(p)
    }

    fn policy_resource(arn: &ids::PolicyArn) -> Resource {
        Resource::known(ResourceKind::Policy, arn.as_str())
    }

    /// `GetPolicy`.
    pub async fn get_policy(
        &self,
        caller: &Caller,
        ForPolicy { policy_arn: arn }: ForPolicy,
    ) -> Result<ManagedPolicy, BrokerError> {
        self.authorize(caller, Rpc::GetPolicy, &Self::policy_resource(&arn))
            .await?;
        let a = arn.to_string();
        self.blocking(move |s| s.get_managed_policy(&a))
            .await?
            .ok_or_else(|| {
                BrokerError::new(
                    AwsCode::NoSuchEntity,
                    format!("Policy {arn} does not exist or is not attachable."),
                )
            })
    }

    /// `DeletePolicy`: only an unattached policy.
    pub async fn delete_policy(
        &self,
        caller: &Caller,
        input: ForPolicy,
    ) -> Result<(), BrokerError> {
        let arn = input.policy_arn;
        self.authorize(caller, Rpc::DeletePolicy, &Self::policy_resource(&arn))
            .await?;
        let a = arn.to_string();
        self.blocking(move |s| s.delete_managed_policy(&a)).await?;
        self.invalidate_policies();
        Ok(())
    }

    /// `ListPolicies` (the broker has only customer-managed, `Local`, policies).
    pub async fn list_policies(
        &self,
        caller: &Caller,
        input: ListPolicies,
    ) -> Result<Vec<ManagedPolicy>, BrokerError> {
        self.authorize(caller, Rpc::ListPolicies, &Resource::any())
            .await?;
        if input.scope == PolicyScope::Aws {
            return Ok(Vec::new());
        }
        let only_attached = input.only_attached;
        let prefix = input.path_prefix.as_str().to_owned();
        self.blocking(move |s| s.list_managed_policies(only_attached, &prefix))
            .await
    }

    /// `Attach{User,Group,Role}Policy` / `Detach…Policy`.
    pub async fn attachment(
        &self,
        caller: &Caller,
        input: Attachment,
        attach: bool,
    ) -> Result<(), BrokerError> {
        let kind = input.principal.kind();
        let verb = if attach {
            PolicyVerb::Attach
        } else {
            PolicyVerb::Detach
        };
        let (id, _) = self
            .principal_by_name(caller, &input.principal, Rpc::principal_policy(verb, kind))
            .await?;
        let arn = input.policy_arn.to_string();
        if attach {
            self.blocking(move |s| s.attach_policy(&arn, kind, &id))
                .await?;
        } else {
            self.blocking(move |s| s.detach_policy(&arn, kind, &id))
                .await?;
        }
        self.invalidate_policies();
        Ok(())
    }

    /// `ListAttachedUserPolicies` (and the group/role equivalents): (name, ARN) pairs.
    pub async fn list_attached(
        &self,
        caller: &Caller,
        input: ListAttachedPolicies,
    ) -> Result<Vec<(String, String)>, BrokerError> {
        let kind = input.principal.kind();
        let (id, _) = self
            .principal_by_name(caller, &input.principal, Rpc::ListAttachedUserPolicies)
            .await?;
        self.blocking(move |s| s.attached_policies(kind, &id)).await
    }

    // ---------------------------------------------------------------- inline policies

    /// `Put{User,Group,Role}Policy`.
    pub async fn put_inline(
        &self,
        caller: &Caller,
        PutInlinePolicy {
            principal,
            policy_name: pname,
            document,
        }: PutInlinePolicy,
    ) -> Result<(), BrokerError> {
        let kind = principal.kind();
        let doc_kind = match kind {
            PrincipalKind::User => PolicyKind::UserInline,
            PrincipalKind::Group => PolicyKind::GroupInline,
            PrincipalKind::Role => PolicyKind::RoleInline,
        };
        PolicyDocument::parse(&document, doc_kind).map_err(malformed)?;
        let rpc = Rpc::principal_policy(PolicyVerb::Put, kind);
        let (id, _) = self.principal_by_name(caller, &principal, rpc).await?;
        let doc = document;
        self.blocking(move |s| s.put_inline_policy(kind, &id, pname.as_str(), &doc))
            .await?;
        self.invalidate_policies();
        Ok(())
    }

    /// `Get{User,Group,Role}Policy`: (policy name, document).
    pub async fn get_inline(
        &self,
        caller: &Caller,
        input: InlinePolicy,
    ) -> Result<(String, String), BrokerError> {
        let kind = input.principal.kind();
        let (pname, policy_name) = (input.policy_name.clone(), input.policy_name);
        let rpc = Rpc::principal_policy(PolicyVerb::Get, kind);
        let (id, _) = self
            .principal_by_name(caller, &input.principal, rpc)
            .await?;
        self.blocking(move |s| s.get_inline_policy(kind, &id, pname.as_str()))
            .await?
            .ok_or_else(|| {
                BrokerError::new(
                    AwsCode::NoSuchEntity,
                    format!(
                        "The {} policy with name {policy_name} cannot be found.",
                        kind.as_str()
                    ),
                )
            })
    }

    /// `Delete{User,Group,Role}Policy`.
    pub async fn delete_inline(
        &self,
        caller: &Caller,
        InlinePolicy {
            principal,
            policy_name: pname,
        }: InlinePolicy,
    ) -> Result<(), BrokerError> {
        let kind = principal.kind();
        let rpc = Rpc::principal_policy(PolicyVerb::Delete, kind);
        let (id, _) = self.principal_by_name(caller, &principal, rpc).await?;
        self.blocking(move |s| s.delete_inline_policy(kind, &id, pname.as_str()))
            .await?;
        self.invalidate_policies();
        Ok(())
    }

    // ---------------------------------------------------------------- simulation

    /// `SimulateCustomPolicy` (`principal_arn` = None) and `SimulatePrincipalPolicy`.
    pub async fn simulate(
        &self,
        caller: &Caller,
        input: Simulate,
    ) -> Result<Vec<SimulationResult>, BrokerError> {
        policy::limits::check_simulation(
            input.policy_source.as_ref().map(Arn::as_str),
            &input.policy_inputs,
            &input.action_names,
            &input.resource_arns,
            &input.context,
        )?;
        let (rpc, resource) = match &input.policy_source {
            Some(arn) => (
                Rpc::SimulatePrincipalPolicy,
                Resource::known(ResourceKind::PolicySource, arn.as_str()),
            ),
            None => (Rpc::SimulateCustomPolicy, Resource::any()),
        };
        self.authorize(caller, rpc, &resource).await?;
        let Simulate {
            policy_source,
            policy_inputs: inputs,
            action_names: actions,
            resource_arns: resources,
            context: entries,
        } = input;
        let principal_arn = policy_source.as_ref().map(Arn::as_str);
        for a in &actions {
            policy::validate_action_name(a)
                .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        }
        let mut sources = Vec::new();
        if let Some(arn) = &policy_source {
            sources.extend(self.policies_of_arn(arn).await?.iter().cloned());
        }
        for (i, text) in inputs.iter().enumerate() {
            let doc = PolicyDocument::parse(text, PolicyKind::Managed).map_err(malformed)?;
            sources.push(PolicySource {
                id: format!("PolicyInputList.{}", i + 1),
                kind: SourceType::UserManaged,
                document: Arc::new(doc),
            });
        }
        let context = Context::from_entries(&entries)
            .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        let resources: Vec<String> = if resources.is_empty() {
            vec!["*".to_owned()]
        } else {
            resources
        };
        let principal = principal_arn.unwrap_or_default().to_owned();
        let grid = policy::evaluate_grid(sources, actions, resources, principal, context)
            .await
            .map_err(BrokerError::internal)?;
        Ok(grid
            .into_iter()
            .map(|(action, resource, decision)| SimulationResult {
                action,
                resource,
                decision,
            })
            .collect())
    }

    /// The identity policies of a user, group or role named by ARN.
    async fn policies_of_arn(&self, arn: &Arn) -> Result<Arc<Vec<PolicySource>>, BrokerError> {
        let not_found = || {
            BrokerError::new(
                AwsCode::NoSuchEntity,
                format!("The entity {arn} cannot be found."),
            )
        };
        let in_account = (arn.partition(), arn.service(), arn.region(), arn.account())
            == ("aws", "iam", "", self.account.as_str());
        if !in_account {
            return Err(not_found());
        }
        let rest = arn.resource();
        let name = rest.rsplit('/').next().unwrap_or_default();
        let (kind, id) = if rest.starts_with("user/") {
            let n = UserName::parse(name)?;
            (
                PrincipalKind::User,
                self.blocking(move |s| s.get_user(&n)).await?.map(|u| u.id),
            )
        } else if rest.starts_with("group/") {
            let n = GroupName::parse(name)?;
            (
                PrincipalKind::Group,
                self.blocking(move |s| s.get_group(&n)).await?.map(|g| g.id),
            )
        } else if rest.starts_with("role/") {
            let n = RoleName::parse(name)?;
            (
                PrincipalKind::Role,
                self.blocking(move |s| s.get_role(&n)).await?.map(|r| r.id),
            )
        } else {
            return Err(not_found());
        };
        let id = id.ok_or_else(not_found)?;
        let stored = self
            .blocking(move |s| s.effective_policies(kind, &id))
            .await?;
        let mut sources = Vec::new();
        for p in stored {
            let (t, k) = source_type(p.source_type);
            let doc = PolicyDocument::parse(&p.document, k).map_err(BrokerError::internal)?;
            sources.push(PolicySource {
                id: p.source_id,
                kind: t,
                document: Arc::new(doc),
            });
        }
        Ok(Arc::new(sources))
    }

    // ---------------------------------------------------------------- Authorize

    /// `Authorize`: the decision point for resource servers. The caller (a resource server) must
    /// be allowed `sts:Authorize`; the client's signed request is verified with its session's
    /// secret (`possession.rs`; a bare token only with `--allow-bearer-authorize`), the token is
    /// verified (signature, expiry, revocation) and its principal's policies decide, with the MFA facts from the token and the broker's clock.
    /// Context entries from the resource server may add keys but never override the ones the
    /// broker owns (MFA, time, principal).
    pub async fn authorize_token(
        &self,
        caller: &Caller,
        input: Authorize,
    ) -> Result<AuthorizeAnswer, BrokerError> {
        policy::limits::check_authorize(&input.action, &input.resource, &input.context)?;
        self.authorize(caller, Rpc::Authorize, &Resource::any())
            .await?;
        let (action, resource, entries) = (
            input.action.as_str(),
            input.resource.as_str(),
            input.context.as_slice(),
        );
        policy::validate_action_name(action)
            .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        let (principal, session) = self.subject_session(&input.subject).await?;
        let subject = Caller {
            principal,
            arn: session.claims.sub.clone(),
            user_id: session.claims.uid.clone(),
            access_key_id: crate::ids::AccessKeyId::parse(&session.claims.akid)?,
            source: None,
            session: Some(SessionInfo {
                claims: session.claims.clone(),
            }),
        };
        let now = self.clock.now();
        let mfa_time = session.mfa_auth_time();
        let mut ctx = self.call_context(&subject, now);
        let extra = Context::from_entries(entries)
            .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        for e in entries {
            let key = e.context_key_name.as_str();
            if BROKER_OWNED_KEYS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(key))
            {
                continue;
            }
            if let Some(values) = extra.get(key) {
                ctx.insert_list(key, values.to_vec());
            }
        }
        let decision = if matches!(subject.principal, Principal::Root) {
            Decision {
                effect: EvalDecision::Allowed,
                matched: Vec::<MatchedStatement>::new(),
                undecidable: Vec::new(),
            }
        } else if Self::temporary_credential_limits(&subject, action).is_err() {
            Decision {
                effect: EvalDecision::ImplicitDeny,
                matched: Vec::new(),
                undecidable: Vec::new(),
            }
        } else {
            self.decide(&subject, action, resource, ctx).await?
        };
        Ok(AuthorizeAnswer {
            decision,
            principal_arn: subject.arn,
            mfa_present: mfa_time.is_some(),
            mfa_age_seconds: mfa_time.map(|t| (now.unix_timestamp() - t).max(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::tests::{NOW, caller, started};
    use crate::domain::User;

    fn statement(effect: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Action":"iam:ListUsers","Resource":"*"}}]}}"#
        )
    }

    /// A read of alice's policy set that started before a PutUserPolicy adding a Deny and
    /// finishes after it must not leave the old set in the cache: her next call is denied.
    #[tokio::test]
    async fn a_policy_read_that_raced_a_policy_write_does_not_bring_the_old_set_back() {
        let handle = started();
        let b = handle.broker();
        let root = caller(Principal::Root, "arn:aws:iam::123456789012:root");
        let user = User {
            id: "AIDAALICE".to_owned(),
            name: UserName::parse("alice").unwrap(),
            path: IamPath::root(),
            created: OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
        };
        b.store.create_user(&user).unwrap();
        let alice = caller(
            Principal::User(user),
            "arn:aws:iam::123456789012:user/alice",
        );
        let inline = |name: &str, effect: &str| PutInlinePolicy {
            principal: PrincipalName::User(UserName::parse("alice").unwrap()),
            policy_name: ids::PolicyName::parse(name).unwrap(),
            document: statement(effect),
        };
        b.put_inline(&root, inline("allow", "Allow")).await.unwrap();
        // The read sees only the Allow; the Deny commits before the read stores its result.
        let commit_deny = async {
            b.put_inline(&root, inline("deny", "Deny")).await.unwrap();
        };
        let raced = b
            .policies_for_with(&alice.principal, commit_deny)
            .await
            .unwrap();
        assert_eq!(raced.len(), 1, "the read happened before the Deny");
        let users = Resource::all_under(ResourceKind::UsersUnder, b.account(), "/");
        let after = b.authorize(&alice, Rpc::ListUsers, &users).await;
        let err = after.expect_err("the Deny committed before this call must apply");
        assert_eq!(err.code, AwsCode::AccessDenied);
        assert!(err.message.contains("explicit deny"), "{}", err.message);
        handle.shutdown().await;
    }
}
