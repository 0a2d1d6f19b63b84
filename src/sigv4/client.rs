//! Client side: signs one gRPC call into the three metadata values.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::canonical::{
    CanonicalRequest, CredentialScope, UriRule, authorization_header, signature_hex,
};
use super::{
    GRPC_METHOD, HEADER_HOST, HEADER_X_AMZ_DATE, HEADER_X_AMZ_SECURITY_TOKEN, SigV4Error,
    format_amz_date, signing_key, string_to_sign,
};

/// The request body, or its SHA-256 when the caller already has it.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The encoded protobuf message bytes.
    Bytes(&'a [u8]),
    /// SHA-256 of those bytes.
    Sha256([u8; 32]),
}

/// Everything needed to sign one gRPC call.
pub struct GrpcSignParams<'a> {
    /// Access key id, e.g. `AKIDEXAMPLE`.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a [u8],
    /// Session token of temporary credentials; sent and signed as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    /// Region of the scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// Service of the scope, `sts` or `iam`.
    pub service: &'a str,
    /// HTTP/2 `:authority`, e.g. `localhost:50051`.
    pub host: &'a str,
    /// gRPC path, e.g. `/sts.v1.SecurityTokenService/GetSessionToken`.
    pub path: &'a str,
    /// The protobuf request bytes (or their hash).
    pub payload: Payload<'a>,
    /// Signing time (any offset; converted to UTC).
    pub time: OffsetDateTime,
}

impl std::fmt::Debug for GrpcSignParams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SECURITY: the secret and the session token are never printed.
        f.debug_struct("GrpcSignParams")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .field("region", &self.region)
            .field("service", &self.service)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// The gRPC metadata values to attach to the call.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `authorization` value.
    pub authorization: String,
    /// `x-amz-date` value.
    pub x_amz_date: String,
    /// `x-amz-security-token` value, when signing with temporary credentials.
    pub x_amz_security_token: Option<String>,
}

impl std::fmt::Debug for SignedHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SECURITY: the token is a bearer credential and a signature can be
        // replayed inside the clock window, so neither is printed.
        f.debug_struct("SignedHeaders")
            .field("authorization", &"<redacted>")
            .field("x_amz_date", &self.x_amz_date)
            .field(
                "x_amz_security_token",
                &self.x_amz_security_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The protobuf message a unary gRPC call carries, whose SHA-256 is the payload hash: the body
/// must be exactly one frame (1 byte compressed flag, 0 here; 4 bytes big-endian length; the
/// message), as tonic sends a unary request. `None` for anything else.
pub fn unary_message(body: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = body.split_first()?;
    if flag != 0 {
        return None;
    }
    let (len, msg) = rest.split_first_chunk::<4>()?;
    (usize::try_from(u32::from_be_bytes(*len)).ok()? == msg.len()).then_some(msg)
}

/// Signs a gRPC call: `POST`, the gRPC path, empty query, signed headers
/// `host;x-amz-date[;x-amz-security-token]`, payload hash of the message.
///
/// # Errors
/// [`SigV4Error::InvalidSigningTime`] when `time` is outside years 0000-9999.
pub fn sign_grpc(params: &GrpcSignParams<'_>) -> Result<SignedHeaders, SigV4Error> {
    let payload_hash: [u8; 32] = match params.payload {
        Payload::Bytes(b) => Sha256::digest(b).into(),
        Payload::Sha256(h) => h,
    };
    sign_http(&HttpSignParams {
        access_key_id: params.access_key_id,
        secret_access_key: params.secret_access_key,
        session_token: params.session_token,
        region: params.region,
        service: params.service,
        method: GRPC_METHOD,
        host: params.host,
        path: params.path,
        query: "",
        headers: &[],
        payload_sha256: &hex::encode(payload_hash),
        time: params.time,
    })
}

/// Everything needed to sign one HTTP request (e.g. a client's call to a resource server that
/// checks it with `Authorize`).
pub struct HttpSignParams<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret_access_key: &'a [u8],
    /// Session token; sent and signed as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
    /// Region of the scope.
    pub region: &'a str,
    /// Service of the scope, e.g. `s3`; it also picks the path rule ([`UriRule::for_service`]).
    pub service: &'a str,
    /// HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The `host` header (`host[:port]`).
    pub host: &'a str,
    /// The path as it will travel, already percent-encoded.
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: &'a str,
    /// Further headers to send and sign, names lowercase (e.g. `x-amz-content-sha256`).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lowercase hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_sha256: &'a str,
    /// Signing time (any offset; converted to UTC).
    pub time: OffsetDateTime,
}

// SECURITY: the secret and the session token are never printed.
debug_only!(HttpSignParams<'_>, "HttpSignParams" { access_key_id, service, method, host, path, time });

/// Signs an HTTP request (AWS steps 1 to 6): signed headers `host`, `x-amz-date`, the session
/// token when given, and every header of `params.headers`.
///
/// # Errors
/// [`SigV4Error::InvalidSigningTime`] when `time` is outside years 0000-9999;
/// [`SigV4Error::InvalidSignedHeaders`] when an extra header name is not a lowercase token or
/// repeats one of the others.
pub fn sign_http(params: &HttpSignParams<'_>) -> Result<SignedHeaders, SigV4Error> {
    let amz_date = format_amz_date(params.time)?;
    let mut headers: Vec<(&str, &str)> =
        vec![(HEADER_HOST, params.host), (HEADER_X_AMZ_DATE, &amz_date)];
    if let Some(token) = params.session_token {
        headers.push((HEADER_X_AMZ_SECURITY_TOKEN, token));
    }
    headers.extend_from_slice(params.headers);
    headers.sort_unstable_by_key(|h| h.0);
    let signed: Vec<&str> = headers.iter().map(|h| h.0).collect();
    let creq = CanonicalRequest {
        method: params.method,
        path: params.path,
        query: params.query,
        headers: &headers,
        signed_headers: &signed,
        payload_sha256_hex: params.payload_sha256,
    };
    let creq_hash = creq.sha256_with(UriRule::for_service(params.service))?;
    let scope = CredentialScope {
        date: amz_date.get(..8).unwrap_or_default(),
        region: params.region,
        service: params.service,
    };
    let sts = string_to_sign(&amz_date, &scope, &creq_hash);
    let key = signing_key(
        params.secret_access_key,
        scope.date,
        scope.region,
        scope.service,
    );
    let signature = signature_hex(&key, &sts);
    let authorization = authorization_header(
        params.access_key_id,
        &scope,
        &creq.signed_headers_line(),
        &signature,
    );
    Ok(SignedHeaders {
        authorization,
        x_amz_date: amz_date,
        x_amz_security_token: params.session_token.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::unary_message;

    #[test]
    fn the_message_is_read_from_exactly_one_uncompressed_frame() {
        assert_eq!(unary_message(&[0, 0, 0, 0, 2, 7, 8]), Some(&[7u8, 8][..]));
        assert_eq!(unary_message(&[0, 0, 0, 0, 0]), Some(&[][..]));
        assert_eq!(unary_message(&[1, 0, 0, 0, 1, 7]), None, "compressed");
        assert_eq!(unary_message(&[0, 0, 0, 0, 3, 7]), None, "short");
        assert_eq!(unary_message(&[0, 0, 0, 0, 1, 7, 9]), None, "two messages");
        assert_eq!(unary_message(&[0, 0, 0]), None, "no length");
        assert_eq!(unary_message(&[]), None);
    }
}
