//! Authentication of a call, in two phases so the transport can refuse a request before it reads
//! the body: [`Broker::identify`] checks everything the headers carry (SigV4 syntax, scope, clock
//! window, the access key or session token behind it); [`Broker::confirm`] checks the signature
//! over the message bytes once they have arrived. [`Broker::authenticate`] runs both.
//!
//! Every failure is audited with what went wrong (unknown key, inactive key, bad signature, clock
//! skew), while the caller sees only AWS's code and wording. Signatures and secrets are never
//! logged or audited. Failures reach the audit trail aggregated per source, reason, key id and
//! action per interval (`failed_auth.rs`), so unauthenticated callers cannot grow it at will.

use super::actions::ServiceScope;
use super::failed_auth::Failure;
use super::{Broker, Caller, Principal, access_key_binding};
use crate::domain::Owner;
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId, KeyStatus};
use crate::sigv4::{self, HeaderSource, IncomingRequest, SigV4Error};
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// What the transport captured of a signed call.
pub struct SignedCall<'a> {
    /// The gRPC path, e.g. `/iam.v1.IamService/CreateUser`.
    pub path: &'a str,
    /// The HTTP/2 `:authority`.
    pub host: &'a str,
    /// SHA-256 of the request message as sent; `None` when the body was not one plain message
    /// (or has not been read yet, for [`Broker::identify`]).
    pub payload_sha256: Option<[u8; 32]>,
    pub authorization: Option<&'a str>,
    pub x_amz_date: Option<&'a str>,
    pub security_token: Option<&'a str>,
    /// Any other header the client chose to sign.
    pub headers: &'a dyn HeaderSource,
    pub source: Option<SocketAddr>,
    /// The IAM action, for the audit trail.
    pub action: &'a str,
}

/// A call whose headers passed [`Broker::identify`]: the key behind it exists and is usable, and
/// the request is inside the clock window. Only the signature over the payload is left to check.
pub struct Identified<'a> {
    incoming: IncomingRequest<'a>,
    secret: Zeroizing<Vec<u8>>,
    caller: Caller,
    action: &'a str,
}

// SECURITY: the secret is not printed.
debug_only!(Identified<'_>, "Identified" { caller: caller.arn, action });

impl Identified<'_> {
    /// The principal the headers name (not yet proven: the signature over the body is still to
    /// be checked). The transport uses it to share the request-byte budget out fairly.
    pub fn claimed_arn(&self) -> &str {
        &self.caller.arn
    }
}

/// A failed authentication, with the detail that goes to the audit trail only.
struct Refusal {
    error: BrokerError,
    access_key_id: Option<String>,
    principal: Option<String>,
    detail: &'static str,
}

pub(super) fn sigv4_error(e: &SigV4Error) -> BrokerError {
    let code = match e.aws_code() {
        "MissingAuthenticationToken" => AwsCode::MissingAuthenticationToken,
        "IncompleteSignature" => AwsCode::IncompleteSignature,
        "RequestExpired" => AwsCode::RequestExpired,
        _ => AwsCode::SignatureDoesNotMatch,
    };
    BrokerError::new(code, e.aws_message())
}

fn invalid_token() -> BrokerError {
    BrokerError::new(
        AwsCode::InvalidClientTokenId,
        "The security token included in the request is invalid.",
    )
}

/// What the key lookup yields: who signed, and the secret to check the signature with.
struct Signer {
    caller: Caller,
    secret: Zeroizing<Vec<u8>>,
}

impl Broker {
    /// Authenticates a call whose payload hash is known, or says why not (and audits the refusal).
    pub async fn authenticate(&self, call: &SignedCall<'_>) -> Result<Caller, BrokerError> {
        let identified = self.identify(call).await?;
        self.confirm(identified, call.payload_sha256).await
    }

    /// Phase 1: everything that can be checked from the headers alone (`call.payload_sha256` is
    /// ignored). A refusal is audited.
    pub async fn identify<'a>(
        &'a self,
        call: &SignedCall<'a>,
    ) -> Result<Identified<'a>, BrokerError> {
        let incoming = match self.incoming(call) {
            Ok(incoming) => incoming,
            Err(r) => return Err(self.refused(call.action, call.source, r).await),
        };
        match self.signer(call, &incoming).await {
            Ok(Signer { caller, secret }) => Ok(Identified {
                incoming,
                secret,
                caller,
                action: call.action,
            }),
            Err(r) => Err(self.refused(call.action, call.source, r).await),
        }
    }

    /// Phase 2: the signature over the message whose SHA-256 is `payload_sha256` (`None`: the
    /// body was not one plain message, which no signature matches). The clock window is checked
    /// again, so a slow upload cannot stretch it. A refusal is audited.
    pub async fn confirm(
        &self,
        identified: Identified<'_>,
        payload_sha256: Option<[u8; 32]>,
    ) -> Result<Caller, BrokerError> {
        let Identified {
            incoming,
            secret,
            caller,
            action,
        } = identified;
        let incoming = IncomingRequest {
            // A body that was not one plain message cannot match any signature.
            payload_sha256: payload_sha256.unwrap_or([0; 32]),
            now: self.clock.unix(),
            ..incoming
        };
        let checked = sigv4::parse(&incoming)
            .map_err(|e| (e, "malformed or out-of-window signature"))
            .and_then(|parsed| {
                parsed
                    .verify(&secret)
                    .map_err(|e| (e, "signature does not match"))
            });
        match checked {
            Ok(()) => Ok(caller),
            Err((e, detail)) => {
                let refusal = Refusal {
                    error: sigv4_error(&e),
                    access_key_id: Some(caller.access_key_id.to_string()),
                    principal: Some(caller.arn.clone()),
                    detail,
                };
                Err(self.refused(action, caller.source, refusal).await)
            }
        }
    }

    /// Counts a refusal for the audit trail (aggregated, see `failed_auth.rs`) and `/metrics`,
    /// logs the first of its group in each interval, and gives the error the caller sees.
    async fn refused(&self, action: &str, source: Option<SocketAddr>, r: Refusal) -> BrokerError {
        let failure = Failure {
            source: source.map(|s| s.ip()),
            code: r.error.code.as_str(),
            reason: r.detail,
            access_key_id: r.access_key_id.as_deref(),
            principal: r.principal.as_deref(),
            action,
        };
        let (due, opened) = self.failed_auth.record(&failure, self.clock.now());
        if opened {
            tracing::info!(
                action,
                access_key_id = r.access_key_id.as_deref().unwrap_or("-"),
                code = r.error.code.as_str(),
                reason = r.detail,
                "authentication refused (alike refusals this interval are counted, not logged)"
            );
        }
        for event in due {
            self.audit.record(event).await;
        }
        r.error
    }

    /// The request as the SigV4 verifier sees it, before the payload is known.
    fn incoming<'a>(&'a self, call: &SignedCall<'a>) -> Result<IncomingRequest<'a>, Refusal> {
        let service = ServiceScope::of_path(call.path).ok_or_else(|| Refusal {
            error: BrokerError::new(AwsCode::InvalidInput, "unknown service"),
            access_key_id: None,
            principal: None,
            detail: "unknown service",
        })?;
        Ok(IncomingRequest {
            authorization: call.authorization,
            x_amz_date: call.x_amz_date,
            x_amz_security_token: call.security_token,
            other_headers: call.headers,
            host: call.host,
            path: call.path,
            payload_sha256: [0; 32],
            now: self.clock.unix(),
            region: &self.settings.region,
            service: service.signing_name(),
        })
    }

    /// Checks the headers and finds the key the call claims to be signed with.
    async fn signer(
        &self,
        call: &SignedCall<'_>,
        incoming: &IncomingRequest<'_>,
    ) -> Result<Signer, Refusal> {
        let refuse = |error: BrokerError, akid: Option<&str>, detail: &'static str| Refusal {
            error,
            access_key_id: akid.map(str::to_owned),
            principal: None,
            detail,
        };
        let parsed = sigv4::parse(incoming).map_err(|e| {
            refuse(
                sigv4_error(&e),
                None,
                "malformed or out-of-window signature",
            )
        })?;
        let akid_text = parsed.access_key_id();
        if let Some(token) = parsed.security_token() {
            return self.session_signer(call, akid_text, token).await;
        }
        if akid_text.starts_with("ASIA") {
            return Err(refuse(
                invalid_token(),
                Some(akid_text),
                "temporary key without its session token",
            ));
        }
        let akid = AccessKeyId::parse(akid_text)
            .map_err(|_| refuse(invalid_token(), None, "access key id is malformed"))?;
        let lookup = akid.clone();
        let record = self
            .cached(akid.as_str(), move |s| s.get_access_key(&lookup))
            .await
            .map_err(|e| refuse(e, Some(akid_text), "store failure"))?
            .ok_or_else(|| refuse(invalid_token(), Some(akid_text), "unknown access key"))?;
        let (principal, arn, user_id) = match &record.owner {
            Owner::Root => (
                Principal::Root,
                ids::root_arn(&self.account),
                self.account.to_string(),
            ),
            Owner::User(u) => (
                Principal::User(u.clone()),
                ids::user_arn(&self.account, &u.path, &u.name),
                u.id.clone(),
            ),
        };
        let with_principal = |mut r: Refusal| {
            r.principal = Some(arn.clone());
            r
        };
        if record.status != KeyStatus::Active {
            return Err(with_principal(refuse(
                invalid_token(),
                Some(akid_text),
                "inactive access key",
            )));
        }
        let secret = self
            .master
            .open(
                access_key_binding(&record.id, record.owner.binding_id()),
                &record.secret_blob,
            )
            .map_err(|e| {
                with_principal(refuse(
                    BrokerError::internal(e),
                    Some(akid_text),
                    "secret does not decrypt",
                ))
            })?;
        Ok(Signer {
            caller: Caller {
                principal,
                arn,
                user_id,
                access_key_id: akid,
                source: call.source,
                session: None,
            },
            secret,
        })
    }

    /// A call signed with temporary credentials: the token names the key and the principal; the
    /// secret is derived from it.
    async fn session_signer(
        &self,
        call: &SignedCall<'_>,
        akid_text: &str,
        token: &str,
    ) -> Result<Signer, Refusal> {
        let refuse = |error: BrokerError, detail: &'static str| Refusal {
            error,
            access_key_id: Some(akid_text.to_owned()),
            principal: None,
            detail,
        };
        let akid = AccessKeyId::parse(akid_text)
            .map_err(|_| refuse(invalid_token(), "access key id is malformed"))?;
        if !akid.is_temporary() {
            return Err(refuse(
                invalid_token(),
                "session token sent with a long-term key",
            ));
        }
        let (principal, session) = self
            .resolve_session(token, Some(akid_text))
            .await
            .map_err(|(e, why)| refuse(e, why))?;
        let secret = self.session_secret(akid_text, &session.claims.jti);
        Ok(Signer {
            caller: Caller {
                principal,
                user_id: session.claims.uid.clone(),
                arn: session.claims.sub.clone(),
                access_key_id: akid,
                source: call.source,
                session: Some(session),
            },
            secret: Zeroizing::new(secret.as_bytes().to_vec()),
        })
    }
}
