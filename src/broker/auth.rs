//! Authentication of a call: SigV4 over the bytes that were sent, then the long-term key lookup.
//!
//! Every failure is audited with what went wrong (unknown key, inactive key, bad signature, clock
//! skew), while the caller sees only AWS's code and wording. Signatures and secrets are never
//! logged or audited.

use super::actions::ServiceScope;
use super::{Broker, Caller, Principal, access_key_binding};
use crate::domain::{AuditEvent, Outcome, Owner};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId, KeyStatus};
use crate::sigv4::{self, HeaderSource, IncomingRequest, SigV4Error};
use std::net::SocketAddr;

/// What the transport captured of a signed call.
pub struct SignedCall<'a> {
    /// The gRPC path, e.g. `/iam.v1.IamService/CreateUser`.
    pub path: &'a str,
    /// The HTTP/2 `:authority`.
    pub host: &'a str,
    /// SHA-256 of the request message as sent; `None` when the body was not one plain message.
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

/// A failed authentication, with the detail that goes to the audit trail only.
struct Refusal {
    error: BrokerError,
    access_key_id: Option<String>,
    principal: Option<String>,
    detail: &'static str,
}

fn sigv4_error(e: &SigV4Error) -> BrokerError {
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

impl Broker {
    /// Authenticates a call, or says why not (and audits the refusal).
    pub async fn authenticate(&self, call: &SignedCall<'_>) -> Result<Caller, BrokerError> {
        match self.verify_call(call).await {
            Ok(caller) => Ok(caller),
            Err(r) => {
                tracing::info!(
                    action = call.action,
                    access_key_id = r.access_key_id.as_deref().unwrap_or("-"),
                    code = r.error.code.as_str(),
                    reason = r.detail,
                    "authentication refused"
                );
                self.audit
                    .record(AuditEvent {
                        at: self.clock.now(),
                        principal: r.principal,
                        access_key_id: r.access_key_id,
                        action: call.action.to_owned(),
                        source: call.source.map(|s| s.to_string()),
                        outcome: Outcome::Failure,
                        error_code: Some(r.error.code.as_str().to_owned()),
                        detail: Some(r.detail.to_owned()),
                    })
                    .await;
                Err(r.error)
            }
        }
    }

    async fn verify_call(&self, call: &SignedCall<'_>) -> Result<Caller, Refusal> {
        let refuse = |error: BrokerError, akid: Option<&str>, detail: &'static str| Refusal {
            error,
            access_key_id: akid.map(str::to_owned),
            principal: None,
            detail,
        };
        let service = ServiceScope::of_path(call.path).ok_or_else(|| {
            refuse(
                BrokerError::new(AwsCode::InvalidInput, "unknown service"),
                None,
                "unknown service",
            )
        })?;
        let incoming = IncomingRequest {
            authorization: call.authorization,
            x_amz_date: call.x_amz_date,
            x_amz_security_token: call.security_token,
            other_headers: call.headers,
            host: call.host,
            path: call.path,
            // A body that was not one plain message cannot match any signature.
            payload_sha256: call.payload_sha256.unwrap_or([0; 32]),
            now: self.clock.unix(),
            region: &self.settings.region,
            service: service.signing_name(),
        };
        let parsed = sigv4::parse(&incoming).map_err(|e| {
            refuse(
                sigv4_error(&e),
                None,
                "malformed or out-of-window signature",
            )
        })?;
        let akid_text = parsed.access_key_id();
        if let Some(token) = parsed.security_token() {
            return self.verify_session_call(call, &parsed, token).await;
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
        parsed.verify(&secret).map_err(|e| {
            with_principal(refuse(
                sigv4_error(&e),
                Some(akid_text),
                "signature does not match",
            ))
        })?;
        Ok(Caller {
            principal,
            arn,
            user_id,
            access_key_id: akid,
            source: call.source,
            session: None,
        })
    }

    /// A call signed with temporary credentials: the token names the key and the principal; the
    /// secret is derived from it; the signature is checked as for any other key.
    async fn verify_session_call(
        &self,
        call: &SignedCall<'_>,
        parsed: &sigv4::ParsedRequest<'_>,
        token: &str,
    ) -> Result<Caller, Refusal> {
        let akid_text = parsed.access_key_id();
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
        let arn = session.claims.sub.clone();
        let secret = self.session_secret(akid_text, &session.claims.jti);
        parsed.verify(secret.as_bytes()).map_err(|e| Refusal {
            principal: Some(arn.clone()),
            ..refuse(sigv4_error(&e), "signature does not match")
        })?;
        let _ = call;
        Ok(Caller {
            principal,
            user_id: session.claims.uid.clone(),
            arn,
            access_key_id: akid,
            source: call.source,
            session: Some(session),
        })
    }
}
