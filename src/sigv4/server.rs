//! Server side, in two phases so the secret lookup can sit in between:
//! [`parse`] (no secret needed) then [`ParsedRequest::verify`].

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::canonical::{
    CanonicalRequest, CredentialScope, Sink, UriRule, check_signed_header_names, put_canonical_uri,
    put_string_to_sign, put_trimmed_value,
};
use super::error::sanitize;
use super::{
    ALGORITHM, GRPC_METHOD, HEADER_AUTHORIZATION, HEADER_HOST, HEADER_X_AMZ_CONTENT_SHA256,
    HEADER_X_AMZ_DATE, HEADER_X_AMZ_SECURITY_TOKEN, MAX_CLOCK_SKEW_SECS, SCOPE_TERMINATOR,
    SigV4Error, SigningKey, parse_amz_date, signing_key,
};

/// Longest `authorization` value looked at; longer ones are garbled.
const MAX_AUTHORIZATION_LEN: usize = 4096;
/// Most names accepted in `SignedHeaders`.
const MAX_SIGNED_HEADERS: usize = 32;
/// Longest accepted access key id.
const MAX_ACCESS_KEY_ID_LEN: usize = 128;

/// Gives the value of a signed header other than `host`, `x-amz-date` and
/// `x-amz-security-token` (e.g. `content-type`, `x-amz-content-sha256`).
///
/// `name` is lowercase. Return `None` when the header is absent; when it
/// occurs more than once either join the values with `,` (the SigV4 rule)
/// into storage you own, or return `None` so the request is rejected.
pub trait HeaderSource: Sync {
    /// The header's value, if present.
    fn header(&self, name: &str) -> Option<&str>;
}

/// A [`HeaderSource`] with no headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExtraHeaders;

impl HeaderSource for NoExtraHeaders {
    fn header(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Lookup in a list of (name, value) pairs; names compared ignoring case;
/// a name present more than once yields `None` (rejected).
impl<N, V> HeaderSource for Vec<(N, V)>
where
    N: AsRef<str> + Sync,
    V: AsRef<str> + Sync,
{
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (Some((_, v)), None) => Some(v.as_ref()),
            _ => None,
        }
    }
}

/// What the server received for one gRPC call.
#[derive(Clone, Copy)]
pub struct IncomingRequest<'a> {
    /// `authorization` metadata value, `None` when absent.
    pub authorization: Option<&'a str>,
    /// `x-amz-date` metadata value.
    pub x_amz_date: Option<&'a str>,
    /// `x-amz-security-token` metadata value.
    pub x_amz_security_token: Option<&'a str>,
    /// Values of any other header named in `SignedHeaders`.
    pub other_headers: &'a dyn HeaderSource,
    /// HTTP/2 `:authority` (what the client signed as `host`).
    pub host: &'a str,
    /// The gRPC path, e.g. `/sts.v1.SecurityTokenService/GetSessionToken`.
    pub path: &'a str,
    /// SHA-256 of the received protobuf message bytes.
    pub payload_sha256: [u8; 32],
    /// Server clock, unix seconds.
    pub now: i64,
    /// The region this server signs for.
    pub region: &'a str,
    /// The service being called, `sts` or `iam`.
    pub service: &'a str,
}

/// A request whose header, scope and clock checks passed; the signature is
/// not checked yet. Borrows from the [`IncomingRequest`] inputs.
pub struct ParsedRequest<'a> {
    checked: Checked<'a>,
    host: &'a str,
    path: &'a str,
    payload_hex: [u8; 64],
    other_headers: &'a dyn HeaderSource,
}

impl std::fmt::Debug for ParsedRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SECURITY: the session token is a bearer credential; not printed.
        let c = &self.checked;
        f.debug_struct("ParsedRequest")
            .field("access_key_id", &c.access_key_id)
            .field("amz_date", &c.amz_date)
            .field("region", &c.region)
            .field("service", &c.service)
            .field("signed_headers", &c.signed_headers)
            .field("path", &self.path)
            .field("security_token", &c.security_token.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

struct AuthorizationParts<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: [u8; 32],
}

fn malformed(reason: &'static str) -> SigV4Error {
    SigV4Error::MalformedAuthorization { reason }
}

/// Strict parse of `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`.
fn parse_authorization(value: &str) -> Result<AuthorizationParts<'_>, SigV4Error> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(malformed("header too long"));
    }
    let Some((algorithm, rest)) = value.split_once(' ') else {
        return Err(if value.is_empty() {
            malformed("empty header")
        } else if value.contains('=') {
            malformed("missing algorithm")
        } else {
            SigV4Error::UnsupportedAlgorithm {
                algorithm: sanitize(value),
            }
        });
    };
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedAlgorithm {
            algorithm: sanitize(algorithm),
        });
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        let Some((key, val)) = part.split_once('=') else {
            return Err(malformed("each part must be `name=value`"));
        };
        if val.is_empty() {
            return Err(malformed("empty parameter value"));
        }
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed("unknown parameter")),
        };
        if slot.replace(val).is_some() {
            return Err(malformed("duplicate parameter"));
        }
    }
    let credential = credential.ok_or_else(|| malformed("missing Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?;
    let signature_hex = signature.ok_or_else(|| malformed("missing Signature"))?;
    let is_lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if signature_hex.len() != 64 || !signature_hex.bytes().all(is_lower_hex) {
        return Err(malformed("Signature must be 64 lowercase hex digits"));
    }
    let mut signature = [0u8; 32];
    hex::decode_to_slice(signature_hex, &mut signature)
        .map_err(|_| malformed("Signature must be 64 lowercase hex digits"))?;
    Ok(AuthorizationParts {
        credential,
        signed_headers,
        signature,
    })
}

/// The header values the checks of [`parse`] and [`parse_http`] share, whatever carried them.
struct Fields<'a> {
    authorization: Option<&'a str>,
    x_amz_date: Option<&'a str>,
    security_token: Option<&'a str>,
    now: i64,
    region: &'a str,
    service: &'a str,
}

/// What every request that passed the secret-free checks carries: the parsed `authorization`
/// and date, already checked against the expected scope and the clock.
#[derive(Clone, Copy)]
struct Checked<'a> {
    access_key_id: &'a str,
    amz_date: &'a str,
    scope_date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: [u8; 32],
    security_token: Option<&'a str>,
    request_time: i64,
}

/// The checks that need no secret, for any request shape. `present(name)` says whether a
/// signed header other than `x-amz-date` and `x-amz-security-token` is in the request.
fn check<'a>(f: &Fields<'a>, present: &dyn Fn(&str) -> bool) -> Result<Checked<'a>, SigV4Error> {
    let authorization = f.authorization.ok_or(SigV4Error::MissingAuthorization)?;
    let parts = parse_authorization(authorization)?;

    // Credential = AKID/DATE/REGION/SERVICE/TERMINATOR, exactly five parts.
    let mut cred = parts.credential.split('/');
    let (
        Some(access_key_id),
        Some(scope_date),
        Some(region),
        Some(service),
        Some(terminator),
        None,
    ) = (
        cred.next(),
        cred.next(),
        cred.next(),
        cred.next(),
        cred.next(),
        cred.next(),
    )
    else {
        return Err(SigV4Error::MalformedCredential {
            reason: "expected AKID/DATE/REGION/SERVICE/aws4_request",
        });
    };
    if access_key_id.is_empty()
        || access_key_id.len() > MAX_ACCESS_KEY_ID_LEN
        || !access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(SigV4Error::MalformedCredential {
            reason: "access key id must be 1-128 ASCII letters or digits",
        });
    }
    if scope_date.len() != 8 || !scope_date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SigV4Error::MalformedCredential {
            reason: "scope date must be YYYYMMDD",
        });
    }

    let amz_date = f.x_amz_date.ok_or(SigV4Error::MissingDate)?;
    let request_time = parse_amz_date(amz_date)?;

    // SignedHeaders: syntax, bounded size, required members, all present.
    let count = check_signed_header_names(parts.signed_headers.split(';'))?;
    if count > MAX_SIGNED_HEADERS {
        return Err(SigV4Error::InvalidSignedHeaders {
            reason: "too many signed headers",
        });
    }
    let (mut has_host, mut has_date, mut has_token) = (false, false, false);
    for name in parts.signed_headers.split(';') {
        match name {
            HEADER_X_AMZ_DATE => has_date = true,
            HEADER_X_AMZ_SECURITY_TOKEN => {
                has_token = true;
                if f.security_token.is_none() {
                    return Err(SigV4Error::signed_header_missing(name));
                }
            }
            // SECURITY: the authorization header carries the signature and
            // cannot be part of what it signs.
            HEADER_AUTHORIZATION => {
                return Err(SigV4Error::InvalidSignedHeaders {
                    reason: "authorization cannot be signed",
                });
            }
            other => {
                has_host |= other == HEADER_HOST;
                if !present(other) {
                    return Err(SigV4Error::signed_header_missing(other));
                }
            }
        }
    }
    if !has_host {
        return Err(SigV4Error::HeaderNotSigned { name: HEADER_HOST });
    }
    if !has_date {
        return Err(SigV4Error::HeaderNotSigned {
            name: HEADER_X_AMZ_DATE,
        });
    }
    // SECURITY: an unsigned token could be swapped by anyone who sees the
    // request; the token decides whose session is used, so it must be signed.
    if f.security_token.is_some() && !has_token {
        return Err(SigV4Error::HeaderNotSigned {
            name: HEADER_X_AMZ_SECURITY_TOKEN,
        });
    }

    // Scope checks (AWS reports these as SignatureDoesNotMatch).
    if terminator != SCOPE_TERMINATOR {
        return Err(SigV4Error::ScopeTerminatorMismatch {
            terminator: sanitize(terminator),
        });
    }
    if service != f.service {
        return Err(SigV4Error::ScopeServiceMismatch {
            expected: sanitize(f.service),
            service: sanitize(service),
        });
    }
    if region != f.region {
        return Err(SigV4Error::ScopeRegionMismatch {
            region: sanitize(region),
        });
    }
    if amz_date.get(..8) != Some(scope_date) {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: sanitize(scope_date),
            amz_date: sanitize(amz_date),
        });
    }

    // SECURITY: the window bounds replay of a captured request; checked in
    // both directions so a client cannot pre-sign far into the future.
    if request_time.abs_diff(f.now) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(SigV4Error::RequestExpired {
            request_time,
            now: f.now,
        });
    }

    Ok(Checked {
        access_key_id,
        amz_date,
        scope_date,
        region,
        service,
        signed_headers: parts.signed_headers,
        signature: parts.signature,
        security_token: f.security_token,
        request_time,
    })
}

impl Checked<'_> {
    /// AWS steps 3 to 5 over the hash of the canonical request, compared with the signature sent.
    fn verify(
        &self,
        key: &SigningKey,
        canonical_request_sha256: &[u8; 32],
    ) -> Result<(), SigV4Error> {
        let mut mac = key.mac();
        let scope = CredentialScope {
            date: self.scope_date,
            region: self.region,
            service: self.service,
        };
        put_string_to_sign(&mut mac, self.amz_date, &scope, canonical_request_sha256);
        // SECURITY: `verify_slice` compares in constant time, so timing
        // reveals nothing about how much of a forged signature is right.
        mac.verify_slice(&self.signature)
            .map_err(|_| SigV4Error::SignatureMismatch)
    }
}

/// Phase 1: checks everything that needs no secret.
///
/// In order: `authorization` present and well-formed; `x-amz-date` present
/// and well-formed; `SignedHeaders` well-formed and containing `host`,
/// `x-amz-date` and, when the token is sent, `x-amz-security-token`; every
/// signed header present; scope terminator, service, region and date; clock
/// window of [`MAX_CLOCK_SKEW_SECS`].
///
/// # Errors
/// See [`SigV4Error::aws_code`] for the mapping to AWS codes.
pub fn parse<'a>(req: &IncomingRequest<'a>) -> Result<ParsedRequest<'a>, SigV4Error> {
    let fields = Fields {
        authorization: req.authorization,
        x_amz_date: req.x_amz_date,
        security_token: req.x_amz_security_token,
        now: req.now,
        region: req.region,
        service: req.service,
    };
    // `host` is the `:authority`, always there.
    let present = |name: &str| name == HEADER_HOST || req.other_headers.header(name).is_some();
    let checked = check(&fields, &present)?;

    let mut payload_hex = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input length.
    let _ = hex::encode_to_slice(req.payload_sha256, &mut payload_hex);

    Ok(ParsedRequest {
        checked,
        host: req.host,
        path: req.path,
        payload_hex,
        other_headers: req.other_headers,
    })
}

/// The getters the gRPC and the HTTP parsed forms share: what the credential and the token
/// header say (both hold the same [`Checked`]).
macro_rules! credential_getters {
    ($l:lifetime) => {
        /// The access key id from the credential (not yet authenticated).
        #[must_use]
        pub fn access_key_id(&self) -> &$l str {
            self.checked.access_key_id
        }

        /// The `x-amz-security-token` value, when sent (it is then signed).
        #[must_use]
        pub fn security_token(&self) -> Option<&$l str> {
            self.checked.security_token
        }
    };
}

impl<'a> ParsedRequest<'a> {
    credential_getters!('a);

    /// Scope date `YYYYMMDD` (with access key id, the key for a signing-key cache).
    #[must_use]
    pub fn scope_date(&self) -> &'a str {
        self.checked.scope_date
    }

    /// Scope region (equal to the expected region).
    #[must_use]
    pub fn region(&self) -> &'a str {
        self.checked.region
    }

    /// Scope service (equal to the expected service).
    #[must_use]
    pub fn service(&self) -> &'a str {
        self.checked.service
    }

    /// Request time from `x-amz-date`, unix seconds.
    #[must_use]
    pub fn request_time(&self) -> i64 {
        self.checked.request_time
    }

    /// The `SignedHeaders` list as sent.
    #[must_use]
    pub fn signed_headers(&self) -> &'a str {
        self.checked.signed_headers
    }

    /// Derives the signing key for this request's scope from `secret`
    /// (for callers that cache keys per access key id and date).
    #[must_use]
    pub fn derive_signing_key(&self, secret: &[u8]) -> SigningKey {
        let c = &self.checked;
        signing_key(secret, c.scope_date, c.region, c.service)
    }

    /// Phase 2: checks the signature with the secret access key.
    ///
    /// # Errors
    /// [`SigV4Error::SignatureMismatch`] when the signature is wrong.
    pub fn verify(&self, secret: &[u8]) -> Result<(), SigV4Error> {
        self.verify_with_key(&self.derive_signing_key(secret))
    }

    /// Phase 2 with an already derived key; the key must be for this
    /// request's (secret, [`Self::scope_date`], region, service).
    ///
    /// # Errors
    /// [`SigV4Error::SignatureMismatch`] when the signature is wrong.
    pub fn verify_with_key(&self, key: &SigningKey) -> Result<(), SigV4Error> {
        let mut hasher = Sha256::new();
        self.put_canonical_request(&mut hasher)?;
        self.checked.verify(key, &hasher.finalize().into())
    }

    /// AWS step 1 for the gRPC shape, rebuilt from what was received.
    fn put_canonical_request<S: Sink>(&self, sink: &mut S) -> Result<(), SigV4Error> {
        let c = &self.checked;
        sink.put(GRPC_METHOD.as_bytes());
        sink.put(b"\n");
        put_canonical_uri(sink, self.path);
        // Empty canonical query string.
        sink.put(b"\n\n");
        for name in c.signed_headers.split(';') {
            let value = match name {
                HEADER_HOST => Some(self.host),
                HEADER_X_AMZ_DATE => Some(c.amz_date),
                HEADER_X_AMZ_SECURITY_TOKEN => c.security_token,
                other => self.other_headers.header(other),
            }
            .ok_or_else(|| SigV4Error::signed_header_missing(name))?;
            sink.put(name.as_bytes());
            sink.put(b":");
            put_trimmed_value(sink, value);
            sink.put(b"\n");
        }
        sink.put(b"\n");
        sink.put(c.signed_headers.as_bytes());
        sink.put(b"\n");
        sink.put(&self.payload_hex);
        Ok(())
    }

    /// The canonical request text this request is checked against (for
    /// tests and debugging; never send it to clients of other accounts).
    ///
    /// # Errors
    /// [`SigV4Error::SignedHeaderMissing`] if a header lookup changed since [`parse`].
    pub fn canonical_request(&self) -> Result<String, SigV4Error> {
        let mut out = Vec::with_capacity(256);
        self.put_canonical_request(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// A whole HTTP request as a resource server received it, signed by its client with SigV4 in
/// the `Authorization` header (AWS SigV4 guide, "Create a signed AWS API request"); the broker
/// checks it at `Authorize` to see that the client holds the session's secret.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// As sent, e.g. `GET`.
    pub method: &'a str,
    /// The path as it travelled, still percent-encoded, e.g. `/reports/q3.csv`.
    pub path: &'a str,
    /// The raw query string without `?`; empty when none.
    pub query: &'a str,
    /// The headers the client sent, names in any case; `host` must be among them.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lowercase hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_sha256: &'a str,
    /// Server clock, unix seconds.
    pub now: i64,
    /// The region the credentials are scoped to.
    pub region: &'a str,
    /// The service the request was for (the scope's SERVICE, e.g. `s3`).
    pub service: &'a str,
}

/// An [`HttpRequest`] that passed the secret-free checks of [`parse_http`].
#[derive(Clone, Copy)]
pub struct ParsedHttpRequest<'a> {
    checked: Checked<'a>,
    request: HttpRequest<'a>,
}

// SECURITY: neither the headers (token, signature) nor the token are printed.
debug_only!(ParsedHttpRequest<'_>, "ParsedHttpRequest" { access_key_id: checked.access_key_id, service: checked.service, method: request.method, path: request.path });

/// The value of a header that must occur at most once.
fn single<'a>(
    headers: &[(&'a str, &'a str)],
    name: &'static str,
) -> Result<Option<&'a str>, SigV4Error> {
    let mut found = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, v)), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(SigV4Error::RepeatedHeader { name }),
    }
}

/// Phase 1 for a whole HTTP request: the checks of [`parse`] (`authorization`, `x-amz-date`,
/// `SignedHeaders` with `host` and `x-amz-date`, the token signed when sent, scope, clock
/// window), each of `authorization`, `x-amz-date`, `x-amz-security-token` and
/// `x-amz-content-sha256` at most once, and a sent `x-amz-content-sha256` equal to the
/// payload hash.
///
/// # Errors
/// See [`SigV4Error::aws_code`] for the mapping to AWS codes.
pub fn parse_http<'a>(req: &HttpRequest<'a>) -> Result<ParsedHttpRequest<'a>, SigV4Error> {
    let fields = Fields {
        authorization: single(req.headers, HEADER_AUTHORIZATION)?,
        x_amz_date: single(req.headers, HEADER_X_AMZ_DATE)?,
        security_token: single(req.headers, HEADER_X_AMZ_SECURITY_TOKEN)?,
        now: req.now,
        region: req.region,
        service: req.service,
    };
    let present = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let checked = check(&fields, &present)?;
    // SECURITY: S3 clients send the payload hash they signed as `x-amz-content-sha256`; one
    // that differs from the body's hash means the body is not the one signed.
    if single(req.headers, HEADER_X_AMZ_CONTENT_SHA256)?.is_some_and(|h| h != req.payload_sha256) {
        return Err(SigV4Error::PayloadHashMismatch);
    }
    Ok(ParsedHttpRequest {
        checked,
        request: *req,
    })
}

impl<'a> ParsedHttpRequest<'a> {
    credential_getters!('a);

    fn canonical(&self, names: &'a [&'a str]) -> CanonicalRequest<'a> {
        let r = &self.request;
        CanonicalRequest {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            signed_headers: names,
            payload_sha256_hex: r.payload_sha256,
        }
    }

    /// Phase 2: the signature, with the canonical request of AWS step 1 (query sorted and
    /// re-encoded, repeated headers joined with `,`, the path by [`UriRule::for_service`]).
    ///
    /// # Errors
    /// [`SigV4Error::SignatureMismatch`] when the signature is wrong.
    pub fn verify(&self, secret: &[u8]) -> Result<(), SigV4Error> {
        let c = &self.checked;
        let names: Vec<&str> = c.signed_headers.split(';').collect();
        let hash = self
            .canonical(&names)
            .sha256_with(UriRule::for_service(c.service))?;
        let key = signing_key(secret, c.scope_date, c.region, c.service);
        c.verify(&key, &hash)
    }

    /// The canonical request text the signature is checked against (tests and debugging).
    ///
    /// # Errors
    /// As [`CanonicalRequest::build`].
    pub fn canonical_request(&self) -> Result<String, SigV4Error> {
        let names: Vec<&str> = self.checked.signed_headers.split(';').collect();
        self.canonical(&names)
            .build_with(UriRule::for_service(self.checked.service))
    }
}
