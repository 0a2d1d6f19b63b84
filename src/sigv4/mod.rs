//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): the signer and the verifier
//! the broker uses to authenticate gRPC calls carried in gRPC metadata.
//!
//! This module owns:
//! - the general SigV4 primitives, written against the steps of the AWS
//!   guide "Create a signed AWS API request" (IAM User Guide, `create-signed-request`):
//!   - step 1 and 2, the canonical request and its hash ([`CanonicalRequest`]),
//!   - step 3, the string to sign ([`string_to_sign`]),
//!   - step 4, the derived signing key ([`signing_key`]),
//!   - step 5, the signature ([`signature_hex`]),
//!   - step 6, the `Authorization` header ([`authorization_header`]);
//! - the client side for gRPC ([`sign_grpc`]) and for any HTTP request ([`sign_http`]);
//! - the two-phase server side: [`parse`] checks everything that needs no
//!   secret (header syntax, required signed headers, credential scope, clock
//!   window) and yields a [`ParsedRequest`]; the caller then looks the access
//!   key up in its store and calls [`ParsedRequest::verify`] (or
//!   [`ParsedRequest::verify_with_key`] with a cached derived key);
//! - the same two phases for a whole HTTP request a resource server received
//!   ([`parse_http`], [`ParsedHttpRequest::verify`]): proof of possession at
//!   `Authorize`, with AWS's canonical query string and S3's path rule ([`UriRule`]).
//!
//! The gRPC contract: method `POST`, canonical URI = the gRPC path, empty
//! query, signed headers at least `host;x-amz-date` (plus
//! `x-amz-security-token` when sent), payload hash = SHA-256 of the protobuf
//! message bytes, scope `DATE/REGION/SERVICE/aws4_request`, and at most
//! [`MAX_CLOCK_SKEW_SECS`] between the request time and the server clock.
//!
//! Nothing here reads the clock, the network or the store: time and secrets
//! come in as parameters.

mod canonical;
mod client;
mod error;
mod server;
mod time_fmt;

#[cfg(test)]
mod tests_grpc;
#[cfg(test)]
mod tests_suite;

use hmac::digest::{FixedOutput, KeyInit, Update};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use canonical::{
    CanonicalRequest, CredentialScope, UriRule, authorization_header, encode_uri_component,
    signature_hex, string_to_sign,
};
pub use client::{
    GrpcSignParams, HttpSignParams, Payload, SignedHeaders, sign_grpc, sign_http, unary_message,
};
pub use error::SigV4Error;
pub use server::{
    HeaderSource, HttpRequest, IncomingRequest, NoExtraHeaders, ParsedHttpRequest, ParsedRequest,
    parse, parse_http,
};
pub use time_fmt::{format_amz_date, parse_amz_date};

/// The only algorithm accepted and produced.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The fixed last element of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";
/// Largest allowed distance, in either direction, between `x-amz-date` and
/// the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// gRPC calls are always HTTP/2 `POST`.
pub const GRPC_METHOD: &str = "POST";

/// Metadata key names (lowercase, as gRPC metadata requires).
pub const HEADER_AUTHORIZATION: &str = "authorization";
/// See [`HEADER_AUTHORIZATION`].
pub const HEADER_X_AMZ_DATE: &str = "x-amz-date";
/// See [`HEADER_AUTHORIZATION`].
pub const HEADER_X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";
/// See [`HEADER_AUTHORIZATION`].
pub const HEADER_HOST: &str = "host";
/// The payload hash S3 clients send and sign (AWS S3 API reference, "Common Request Headers").
pub const HEADER_X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The payload hash of a request whose body is not signed (S3's `x-amz-content-sha256` value).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

type HmacSha256 = hmac::Hmac<Sha256>;
const HMAC_BLOCK: usize = 64;

/// A derived SigV4 signing key (`kSigning`, AWS step 4).
///
/// It is valid for one (secret, date, region, service), so it can be cached
/// per (access key id, date) by the caller. It is wiped on drop and its
/// `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// Wraps raw key bytes (e.g. from a cache).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA256 keyed with this signing key, ready to absorb a string to sign.
    fn mac(&self) -> HmacSha256 {
        hmac_with_key(&self.0[..])
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// AWS step 4: derives `kSigning` from the secret access key.
///
/// `kDate = HMAC("AWS4" + secret, yyyymmdd)`, `kRegion = HMAC(kDate, region)`,
/// `kService = HMAC(kRegion, service)`, `kSigning = HMAC(kService, "aws4_request")`.
#[must_use]
pub fn signing_key(secret: &[u8], yyyymmdd: &str, region: &str, service: &str) -> SigningKey {
    // SECURITY: "AWS4" + secret is assembled in a wiped stack block (or hashed
    // incrementally when longer than the HMAC block, as RFC 2104 prescribes),
    // so the secret is never copied to the heap.
    let mut block = Zeroizing::new([0u8; HMAC_BLOCK]);
    let prefix = b"AWS4";
    if prefix.len() + secret.len() <= HMAC_BLOCK {
        block[..prefix.len()].copy_from_slice(prefix);
        block[prefix.len()..prefix.len() + secret.len()].copy_from_slice(secret);
    } else {
        let mut h = Sha256::new();
        Digest::update(&mut h, prefix);
        Digest::update(&mut h, secret);
        let digest = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        block[..32].copy_from_slice(&digest[..]);
    }
    let k_date = hmac_block(&block, yyyymmdd.as_bytes());
    let k_region = hmac_key32(&k_date, region.as_bytes());
    let k_service = hmac_key32(&k_region, service.as_bytes());
    SigningKey(hmac_key32(&k_service, SCOPE_TERMINATOR.as_bytes()))
}

/// HMAC keyed with an already block-padded key.
fn hmac_block(block: &[u8; HMAC_BLOCK], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // RFC 2104: a key no longer than the block is zero-padded to the block
    // size, so keying with the padded block is the same HMAC and the
    // constructor is infallible (no `unwrap` needed).
    let mut mac = HmacSha256::new(hmac::digest::Key::<HmacSha256>::from_slice(block));
    mac.update(data);
    Zeroizing::new(mac.finalize_fixed().into())
}

fn hmac_key32(key: &[u8; 32], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut block = Zeroizing::new([0u8; HMAC_BLOCK]);
    block[..32].copy_from_slice(key);
    hmac_block(&block, data)
}

fn hmac_with_key(key: &[u8]) -> HmacSha256 {
    let mut block = Zeroizing::new([0u8; HMAC_BLOCK]);
    if key.len() <= HMAC_BLOCK {
        block[..key.len()].copy_from_slice(key);
    } else {
        let digest: [u8; 32] = Sha256::digest(key).into();
        block[..32].copy_from_slice(&digest);
    }
    HmacSha256::new(hmac::digest::Key::<HmacSha256>::from_slice(&block[..]))
}

/// Lowercase hex of SHA-256, the payload hash format of the canonical request.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
