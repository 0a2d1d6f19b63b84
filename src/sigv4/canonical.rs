//! General SigV4 building blocks: canonical request (AWS steps 1 and 2),
//! string to sign (step 3), signature (step 5) and `Authorization` header
//! (step 6).
//!
//! Every builder writes into a [`Sink`], so the same code produces the text
//! (for tests and diagnostics) or feeds SHA-256 / HMAC directly (the verify
//! path, which then allocates nothing).

use hmac::Mac;
use sha2::{Digest, Sha256};

use super::{ALGORITHM, HmacSha256, SCOPE_TERMINATOR, SigV4Error, SigningKey};

/// Something the canonical text can be streamed into.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Sink for HmacSha256 {
    fn put(&mut self, bytes: &[u8]) {
        Mac::update(self, bytes);
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 unreserved characters, the only ones SigV4 leaves unencoded.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Writes `bytes` URI-encoded as SigV4 wants: unreserved bytes as-is,
/// everything else `%XX` with uppercase hex; `/` kept when `keep_slash`.
/// Runs of plain bytes are written in one piece.
pub(crate) fn put_encoded<S: Sink>(sink: &mut S, bytes: &[u8], keep_slash: bool) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            continue;
        }
        sink.put(&bytes[start..i]);
        sink.put(&[
            b'%',
            HEX_UPPER[usize::from(b >> 4)],
            HEX_UPPER[usize::from(b & 0x0f)],
        ]);
        start = i + 1;
    }
    sink.put(&bytes[start..]);
}

/// URI-encodes one component (a path segment, a query name or value) the
/// SigV4 way: everything except RFC 3986 unreserved characters, including `/`.
#[must_use]
pub fn encode_uri_component(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    put_encoded(&mut out, s.as_bytes(), false);
    // Only ASCII is ever written.
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the path needs the dot-segment / empty-segment normalisation.
fn needs_normalisation(path: &str) -> bool {
    !path.starts_with('/')
        || path.contains("//")
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

/// AWS step 1, `CanonicalURI`: the absolute path, normalised for non-S3
/// services (`.` and empty segments dropped, `..` pops one segment, a
/// trailing `/` kept), each segment URI-encoded once.
pub(crate) fn put_canonical_uri<S: Sink>(sink: &mut S, path: &str) {
    if !needs_normalisation(path) {
        // Fast path (every well-formed gRPC path): already normal.
        put_encoded(sink, path.as_bytes(), true);
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    sink.put(b"/");
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            sink.put(b"/");
        }
        put_encoded(sink, seg.as_bytes(), false);
    }
    if !segments.is_empty() && path.ends_with('/') {
        sink.put(b"/");
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes; a `%` not followed by two hex digits stays literal.
/// `+` is literal (RFC 3986 query, not form encoding).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex_val(b[i + 1]), hex_val(b[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn encode_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    put_encoded(&mut out, bytes, false);
    out
}

/// AWS step 1, `CanonicalQueryString`: parameters decoded then re-encoded
/// per RFC 3986, sorted by encoded name then encoded value, joined with `&`;
/// a parameter without `=` gets an empty value.
pub(crate) fn put_canonical_query<S: Sink>(sink: &mut S, query: &str) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (
                encode_bytes(&percent_decode(name)),
                encode_bytes(&percent_decode(value)),
            )
        })
        .collect();
    pairs.sort();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        sink.put(name);
        sink.put(b"=");
        sink.put(value);
    }
}

fn is_header_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// AWS step 1, header value rule: leading/trailing whitespace removed and
/// inner whitespace runs collapsed to one space.
pub(crate) fn put_trimmed_value<S: Sink>(sink: &mut S, value: &str) {
    let mut first = true;
    for word in value.split(is_header_space).filter(|w| !w.is_empty()) {
        if !first {
            sink.put(b" ");
        }
        sink.put(word.as_bytes());
        first = false;
    }
}

/// Checks a `SignedHeaders` list: names non-empty, lowercase HTTP token
/// characters, strictly ascending (so sorted and unique).
pub(crate) fn check_signed_header_names<'n, I>(names: I) -> Result<usize, SigV4Error>
where
    I: IntoIterator<Item = &'n str>,
{
    let mut prev: Option<&str> = None;
    let mut count = 0usize;
    for name in names {
        if name.is_empty() {
            return Err(SigV4Error::InvalidSignedHeaders {
                reason: "empty header name",
            });
        }
        if !name.bytes().all(is_lower_token_byte) {
            return Err(SigV4Error::InvalidSignedHeaders {
                reason: "header names must be lowercase HTTP tokens",
            });
        }
        if prev.is_some_and(|p| p >= name) {
            return Err(SigV4Error::InvalidSignedHeaders {
                reason: "header names must be sorted and unique",
            });
        }
        prev = Some(name);
        count += 1;
    }
    if count == 0 {
        return Err(SigV4Error::InvalidSignedHeaders {
            reason: "no signed headers",
        });
    }
    Ok(count)
}

fn is_lower_token_byte(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// How AWS step 1 turns the request path into `CanonicalURI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriRule {
    /// Every service but S3: the path is normalised (RFC 3986 section 5.2.4 dot segments,
    /// empty segments dropped) and each segment URI-encoded. Given the path as it travels
    /// (already percent-encoded once), this is AWS's "encoded twice".
    Normalized,
    /// S3: the path exactly as sent, already encoded once by the client; not normalised
    /// (AWS SigV4 guide: "Amazon S3 ... only gets URI-encoded once"; botocore's
    /// `S3SigV4Auth` signs the URL path as is).
    AsSent,
}

impl UriRule {
    /// The rule AWS applies for a credential scope's service.
    #[must_use]
    pub fn for_service(service: &str) -> Self {
        if service == "s3" {
            Self::AsSent
        } else {
            Self::Normalized
        }
    }

    fn put<S: Sink>(self, sink: &mut S, path: &str) {
        match self {
            Self::Normalized => put_canonical_uri(sink, path),
            Self::AsSent if path.is_empty() => sink.put(b"/"),
            Self::AsSent => sink.put(path.as_bytes()),
        }
    }
}

/// The credential scope `DATE/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialScope<'a> {
    /// `YYYYMMDD`, the date part of `x-amz-date`.
    pub date: &'a str,
    /// e.g. `us-east-1`.
    pub region: &'a str,
    /// e.g. `sts` or `iam`.
    pub service: &'a str,
}

impl CredentialScope<'_> {
    pub(crate) fn put<S: Sink>(&self, sink: &mut S) {
        sink.put(self.date.as_bytes());
        sink.put(b"/");
        sink.put(self.region.as_bytes());
        sink.put(b"/");
        sink.put(self.service.as_bytes());
        sink.put(b"/");
        sink.put(SCOPE_TERMINATOR.as_bytes());
    }
}

impl std::fmt::Display for CredentialScope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.date, self.region, self.service, SCOPE_TERMINATOR
        )
    }
}

/// The inputs of AWS step 1, for any HTTP request.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    /// HTTP method, used as given (e.g. `POST`).
    pub method: &'a str,
    /// Raw absolute path (not yet encoded), e.g. `/sts.v1.SecurityTokenService/GetSessionToken`.
    pub path: &'a str,
    /// Raw query string without `?` (may be empty).
    pub query: &'a str,
    /// All request headers as (name, value) pairs, any case, possibly repeated.
    pub headers: &'a [(&'a str, &'a str)],
    /// Names to sign: lowercase, sorted, unique.
    pub signed_headers: &'a [&'a str],
    /// Lowercase hex SHA-256 of the body.
    pub payload_sha256_hex: &'a str,
}

impl CanonicalRequest<'_> {
    pub(crate) fn put<S: Sink>(&self, sink: &mut S, uri: UriRule) -> Result<(), SigV4Error> {
        check_signed_header_names(self.signed_headers.iter().copied())?;
        sink.put(self.method.as_bytes());
        sink.put(b"\n");
        uri.put(sink, self.path);
        sink.put(b"\n");
        put_canonical_query(sink, self.query);
        sink.put(b"\n");
        for name in self.signed_headers {
            sink.put(name.as_bytes());
            sink.put(b":");
            let mut found = false;
            for (n, v) in self.headers {
                if n.eq_ignore_ascii_case(name) {
                    if found {
                        sink.put(b",");
                    }
                    put_trimmed_value(sink, v);
                    found = true;
                }
            }
            if !found {
                return Err(SigV4Error::signed_header_missing(name));
            }
            sink.put(b"\n");
        }
        sink.put(b"\n");
        sink.put(self.signed_headers_line().as_bytes());
        sink.put(b"\n");
        sink.put(self.payload_sha256_hex.as_bytes());
        Ok(())
    }

    /// The `SignedHeaders` value, names joined with `;`.
    #[must_use]
    pub fn signed_headers_line(&self) -> String {
        self.signed_headers.join(";")
    }

    /// AWS step 1: the canonical request text, path by [`UriRule::Normalized`].
    ///
    /// # Errors
    /// [`SigV4Error::InvalidSignedHeaders`] for a bad name list,
    /// [`SigV4Error::SignedHeaderMissing`] when a signed header has no value.
    pub fn build(&self) -> Result<String, SigV4Error> {
        self.build_with(UriRule::Normalized)
    }

    /// AWS step 1 with the path rule of the service (see [`UriRule::for_service`]).
    ///
    /// # Errors
    /// As [`CanonicalRequest::build`].
    pub fn build_with(&self, uri: UriRule) -> Result<String, SigV4Error> {
        let mut out = Vec::with_capacity(256);
        self.put(&mut out, uri)?;
        // Header values are `str`, everything else is ASCII.
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// AWS step 2: SHA-256 of the canonical request, path by [`UriRule::Normalized`].
    ///
    /// # Errors
    /// As [`CanonicalRequest::build`].
    pub fn sha256(&self) -> Result<[u8; 32], SigV4Error> {
        self.sha256_with(UriRule::Normalized)
    }

    /// AWS step 2 with the path rule of the service.
    ///
    /// # Errors
    /// As [`CanonicalRequest::build`].
    pub fn sha256_with(&self, uri: UriRule) -> Result<[u8; 32], SigV4Error> {
        let mut h = Sha256::new();
        self.put(&mut h, uri)?;
        Ok(h.finalize().into())
    }
}

/// AWS step 3, streamed: algorithm, request time, scope, hex hash of the
/// canonical request, separated by newlines.
pub(crate) fn put_string_to_sign<S: Sink>(
    sink: &mut S,
    amz_date: &str,
    scope: &CredentialScope<'_>,
    canonical_request_sha256: &[u8; 32],
) {
    let mut hex_buf = [0u8; 64];
    // Cannot fail: the buffer is exactly twice the input length.
    let _ = hex::encode_to_slice(canonical_request_sha256, &mut hex_buf);
    sink.put(ALGORITHM.as_bytes());
    sink.put(b"\n");
    sink.put(amz_date.as_bytes());
    sink.put(b"\n");
    scope.put(sink);
    sink.put(b"\n");
    sink.put(&hex_buf);
}

/// AWS step 3: the string to sign.
#[must_use]
pub fn string_to_sign(
    amz_date: &str,
    scope: &CredentialScope<'_>,
    canonical_request_sha256: &[u8; 32],
) -> String {
    let mut out = Vec::with_capacity(160);
    put_string_to_sign(&mut out, amz_date, scope, canonical_request_sha256);
    String::from_utf8_lossy(&out).into_owned()
}

/// AWS step 5: lowercase hex `HMAC-SHA256(kSigning, string_to_sign)`.
#[must_use]
pub fn signature_hex(key: &SigningKey, string_to_sign: &str) -> String {
    let mut mac = key.mac();
    Mac::update(&mut mac, string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// AWS step 6: the `Authorization` header value.
#[must_use]
pub fn authorization_header(
    access_key_id: &str,
    scope: &CredentialScope<'_>,
    signed_headers: &str,
    signature_hex: &str,
) -> String {
    format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature_hex}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `put(input)` as text.
    fn canonical(put: fn(&mut Vec<u8>, &str), input: &str) -> String {
        let mut v = Vec::new();
        put(&mut v, input);
        String::from_utf8(v).unwrap()
    }

    /// Asserts `put` writes each case's canonical form.
    #[track_caller]
    fn assert_canonical(put: fn(&mut Vec<u8>, &str), cases: &[(&str, &str)]) {
        for &(input, want) in cases {
            assert_eq!(canonical(put, input), want, "{input:?}");
        }
    }

    #[test]
    fn uri_normalisation() {
        assert_canonical(
            put_canonical_uri,
            &[
                (
                    "/sts.v1.SecurityTokenService/GetSessionToken",
                    "/sts.v1.SecurityTokenService/GetSessionToken",
                ),
                ("", "/"),
                ("/", "/"),
                ("//", "/"),
                ("/a/b/..", "/a"),
                ("/a/b/../", "/a/"),
                ("/../..", "/"),
                ("a/b", "/a/b"),
                ("/a%2Fb c", "/a%252Fb%20c"),
            ],
        );
    }

    #[test]
    fn query_canonicalisation() {
        assert_canonical(
            put_canonical_query,
            &[
                ("b=2&a=1&a=0", "a=0&a=1&b=2"),
                ("a&&b=", "a=&b="),
                ("x=%zz&y=a+b", "x=%25zz&y=a%2Bb"),
                ("k=%7e%41", "k=~A"),
                ("k=%4", "k=%254"),
            ],
        );
    }

    #[test]
    fn trimmed_values() {
        let mut v = Vec::new();
        put_trimmed_value(&mut v, "  a \t b   c  ");
        assert_eq!(v, b"a b c");
    }

    #[test]
    fn signed_header_name_rules() {
        assert!(check_signed_header_names(["host", "x-amz-date"]).is_ok());
        assert!(check_signed_header_names(["x-amz-date", "host"]).is_err());
        assert!(check_signed_header_names(["host", "host"]).is_err());
        assert!(check_signed_header_names(["Host"]).is_err());
        assert!(check_signed_header_names(["ho st"]).is_err());
        assert!(check_signed_header_names([""]).is_err());
        assert!(check_signed_header_names(std::iter::empty()).is_err());
    }
}
