//! Data-driven test over the AWS SigV4 test suite
//! (`tests/testdata/aws-sig-v4-test-suite/`, see its README.md).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    CanonicalRequest, CredentialScope, HttpRequest, HttpSignParams, SigV4Error,
    authorization_header, parse_amz_date, parse_http, sign_http, signature_hex, signing_key,
    string_to_sign,
};

const SUITE_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/testdata/aws-sig-v4-test-suite"
);
const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";
const AMZ_DATE: &str = "20150830T123600Z";
/// The suite has 34 cases (including the nested `normalize-path/*` and
/// `post-sts-token/*` ones); all of them are run.
const MIN_CASES: usize = 34;
/// Cases skipped, with the reason. Empty: unlike botocore we run
/// `normalize-path/get-space` (our request-line parser splits on the last
/// space) and the repeated-query-key cases (our query canonicaliser keeps
/// repeated names).
const SKIPPED: &[(&str, &str)] = &[];

struct RawRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses the suite's `.req` files: request line, headers (a line starting
/// with whitespace continues the previous value), blank line, body.
fn parse_req(text: &str) -> RawRequest {
    let (head, body) = match text.split_once("\n\n") {
        Some((h, b)) => (h, b.as_bytes().to_vec()),
        None => (text.trim_end_matches('\n'), Vec::new()),
    };
    let mut lines = head.split('\n');
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let (target, version) = rest.rsplit_once(' ').expect("http version");
    assert!(
        version.starts_with("HTTP/"),
        "bad request line {request_line:?}"
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation without header");
            last.1.push(' ');
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("header colon");
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    RawRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    }
}

/// Directories holding a `<dirname>.req`, recursively, sorted.
fn case_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read suite dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for d in entries {
        let name = d.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
        if d.join(format!("{name}.req")).is_file() {
            out.push(d.clone());
        }
        case_dirs(&d, out);
    }
}

fn read(dir: &Path, ext: &str) -> String {
    let name = dir.file_name().and_then(|n| n.to_str()).expect("name");
    fs::read_to_string(dir.join(format!("{name}.{ext}"))).expect("read case file")
}

/// Runs one case; returns a description of the first mismatch.
fn run_case(dir: &Path) -> Result<(), String> {
    let req = parse_req(&read(dir, "req"));
    let expected_creq = read(dir, "creq");
    let expected_sts = read(dir, "sts");
    let expected_authz = read(dir, "authz");

    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    // As in the suite's own harness: a session token appears in the expected
    // canonical request; the signer adds it when the request lacks it.
    let token = expected_creq
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-security-token:"));
    if let Some(token) = token
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
    {
        headers.push(("X-Amz-Security-Token", token));
    }
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let amz_date = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
        .map_or(AMZ_DATE, |(_, v)| v.trim());
    let payload_hex = hex::encode(Sha256::digest(&req.body));

    let creq = CanonicalRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &headers,
        signed_headers: &signed,
        payload_sha256_hex: &payload_hex,
    };
    let creq_text = creq.build().map_err(|e| format!("creq error: {e}"))?;
    if creq_text != expected_creq {
        return Err(format!(
            "canonical request\n--- got\n{creq_text}\n--- want\n{expected_creq}"
        ));
    }
    let creq_hash = creq.sha256().map_err(|e| format!("hash error: {e}"))?;
    if creq_hash != <[u8; 32]>::from(Sha256::digest(creq_text.as_bytes())) {
        return Err("streamed hash differs from hash of text".to_owned());
    }
    let scope = CredentialScope {
        date: &amz_date[..8],
        region: REGION,
        service: SERVICE,
    };
    let sts = string_to_sign(amz_date, &scope, &creq_hash);
    if sts != expected_sts {
        return Err(format!(
            "string to sign\n--- got\n{sts}\n--- want\n{expected_sts}"
        ));
    }
    let key = signing_key(SECRET.as_bytes(), scope.date, REGION, SERVICE);
    let sig = signature_hex(&key, &sts);
    let authz = authorization_header(ACCESS_KEY_ID, &scope, &creq.signed_headers_line(), &sig);
    if authz != expected_authz {
        return Err(format!(
            "authorization\n--- got\n{authz}\n--- want\n{expected_authz}"
        ));
    }
    // The verifier of whole HTTP requests accepts what the suite signed, and only with its secret.
    let mut received = headers.clone();
    received.push(("Authorization", expected_authz.trim_end()));
    let http = HttpRequest {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &received,
        payload_sha256: &payload_hex,
        now: parse_amz_date(amz_date).map_err(|e| e.to_string())?,
        region: REGION,
        service: SERVICE,
    };
    let parsed = parse_http(&http).map_err(|e| format!("parse_http: {e}"))?;
    parsed
        .verify(SECRET.as_bytes())
        .map_err(|e| format!("verify: {e}"))?;
    if parsed.verify(b"another secret").is_ok() {
        return Err("a wrong secret verified".to_owned());
    }
    Ok(())
}

#[test]
fn aws_sigv4_test_suite() {
    let mut dirs = Vec::new();
    case_dirs(Path::new(SUITE_DIR), &mut dirs);
    let mut ran = 0usize;
    let mut failures = Vec::new();
    for dir in &dirs {
        let rel = dir
            .strip_prefix(SUITE_DIR)
            .expect("inside suite")
            .to_string_lossy()
            .trim_start_matches('/')
            .to_owned();
        if SKIPPED.iter().any(|(name, _)| *name == rel) {
            continue;
        }
        ran += 1;
        if let Err(msg) = run_case(dir) {
            failures.push(format!("{rel}: {msg}"));
        }
    }
    crate::test_support::assert_no_failures(&failures, "test-suite");
    assert!(
        ran >= MIN_CASES,
        "only {ran} cases ran, expected at least {MIN_CASES}"
    );
}

#[test]
fn signing_key_vector() {
    // AWS documentation example for the key derivation.
    let key = signing_key(
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20120215",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex::encode(key.as_bytes()),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
    assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
}

#[test]
fn signing_key_long_secret_matches_plain_hmac() {
    // A secret longer than the HMAC block takes the hashed-key path; check it
    // against a straightforward HMAC chain.
    use hmac::{Mac, digest::KeyInit};
    type H = hmac::Hmac<Sha256>;
    fn h(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <H as KeyInit>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    for len in [0usize, 1, 40, 59, 60, 61, 64, 65, 100, 300] {
        let secret = vec![b'k'; len];
        let mut k = b"AWS4".to_vec();
        k.extend_from_slice(&secret);
        let want = h(
            &h(&h(&h(&k, b"20240101"), b"eu-west-1"), b"sts"),
            b"aws4_request",
        );
        let got = signing_key(&secret, "20240101", "eu-west-1", "sts");
        assert_eq!(got.as_bytes().as_slice(), want.as_slice(), "len {len}");
    }
}

/// Signatures made by botocore 1.43 (`S3SigV4Auth` for `s3`, `SigV4Auth` otherwise) for
/// `GET http://files.example:8080/reports/q%203.csv?b=2&a=x%2By` with session credentials: an
/// independent signer, so the S3 path rule (as sent) and the other services' (encoded again)
/// are both checked against what real clients send.
#[test]
fn botocore_signatures_verify_with_the_path_rule_of_their_service() {
    const AMZ: &str = "20261202T162624Z";
    let cases = [
        (
            "s3",
            "host;x-amz-content-sha256;x-amz-date;x-amz-security-token",
            "fb3b18411e550a07273e8ef0672286e7a355f1581500343ee18f6aae4af732b4",
        ),
        (
            "reports",
            "host;x-amz-date;x-amz-security-token",
            "72a4536e8babcc2feca54ddf20a30c61d7813e51a635dcf0b153c606dfbf8b40",
        ),
    ];
    let empty = hex::encode(Sha256::digest(b""));
    for (service, signed, signature) in cases {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY123456/20261202/us-east-1/{service}/aws4_request, SignedHeaders={signed}, Signature={signature}"
        );
        let mut headers = vec![
            ("Host", "files.example:8080"),
            ("X-Amz-Date", AMZ),
            ("X-Amz-Security-Token", "the-session-token"),
            ("Authorization", authorization.as_str()),
            ("User-Agent", "python-requests/2.34.2"),
        ];
        if service == "s3" {
            headers.push(("X-Amz-Content-SHA256", &empty));
        }
        let http = HttpRequest {
            method: "GET",
            path: "/reports/q%203.csv",
            query: "b=2&a=x%2By",
            headers: &headers,
            payload_sha256: &empty,
            now: parse_amz_date(AMZ).unwrap() + 299,
            region: "us-east-1",
            service,
        };
        let parsed = parse_http(&http).unwrap();
        assert_eq!(parsed.security_token(), Some("the-session-token"));
        parsed
            .verify(SECRET.as_bytes())
            .unwrap_or_else(|e| panic!("{service}: {e}\n{}", parsed.canonical_request().unwrap()));
        // A dot segment: S3 signs the path as sent, the other services normalise it away.
        let dotted = HttpRequest {
            path: "/reports/./q%203.csv",
            ..http
        };
        let want = if service == "s3" {
            Err(SigV4Error::SignatureMismatch)
        } else {
            Ok(())
        };
        assert_eq!(
            parse_http(&dotted).unwrap().verify(SECRET.as_bytes()),
            want,
            "{service}"
        );
    }
}

/// `sign_http` and `parse_http` agree, and every part the signature covers is checked.
#[test]
fn http_signatures_cover_method_path_query_headers_body_and_time() {
    const NOW: i64 = 1_772_323_200;
    let body = hex::encode(Sha256::digest(b"{}"));
    let signed = sign_http(&HttpSignParams {
        access_key_id: "ASIAEXAMPLE",
        secret_access_key: SECRET.as_bytes(),
        session_token: Some("tok"),
        region: REGION,
        service: "s3",
        method: "PUT",
        host: "files.example",
        path: "/a%20b/c",
        query: "z=1&y=2",
        headers: &[
            ("x-amz-content-sha256", &body),
            ("content-type", "application/json"),
        ],
        payload_sha256: &body,
        time: time::OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
    })
    .unwrap();
    let token = signed.x_amz_security_token.clone().unwrap();
    let base: Vec<(&str, &str)> = vec![
        ("host", "files.example"),
        ("x-amz-date", &signed.x_amz_date),
        ("x-amz-security-token", &token),
        ("x-amz-content-sha256", &body),
        ("content-type", "application/json"),
        ("authorization", &signed.authorization),
    ];
    let ok = HttpRequest {
        method: "PUT",
        path: "/a%20b/c",
        query: "y=2&z=1",
        headers: &base,
        payload_sha256: &body,
        now: NOW,
        region: REGION,
        service: "s3",
    };
    let check = |r: &HttpRequest<'_>| parse_http(r).and_then(|p| p.verify(SECRET.as_bytes()));
    check(&ok).unwrap();

    let mismatch = Err(SigV4Error::SignatureMismatch);
    assert_eq!(
        check(&HttpRequest {
            method: "POST",
            ..ok
        }),
        mismatch
    );
    assert_eq!(
        check(&HttpRequest {
            path: "/a%20b/d",
            ..ok
        }),
        mismatch
    );
    assert_eq!(
        check(&HttpRequest {
            query: "y=2&z=2",
            ..ok
        }),
        mismatch
    );
    let mut changed = base.clone();
    changed[4] = ("content-type", "text/plain");
    assert_eq!(
        check(&HttpRequest {
            headers: &changed,
            ..ok
        }),
        mismatch
    );
    // A body other than the one signed: the hash no longer matches x-amz-content-sha256.
    let other_body = hex::encode(Sha256::digest(b"[]"));
    assert_eq!(
        check(&HttpRequest {
            payload_sha256: &other_body,
            ..ok
        }),
        Err(SigV4Error::PayloadHashMismatch)
    );
    // Five minutes either way is the limit.
    assert!(
        check(&HttpRequest {
            now: NOW + 300,
            ..ok
        })
        .is_ok()
    );
    assert!(matches!(
        check(&HttpRequest {
            now: NOW + 301,
            ..ok
        }),
        Err(SigV4Error::RequestExpired { .. })
    ));
    // Another service than the scope's.
    assert!(matches!(
        check(&HttpRequest {
            service: "reports",
            ..ok
        }),
        Err(SigV4Error::ScopeServiceMismatch { .. })
    ));
    // Two authorization headers are ambiguous.
    let mut twice = base.clone();
    twice.push(("Authorization", &signed.authorization));
    assert_eq!(
        check(&HttpRequest {
            headers: &twice,
            ..ok
        }),
        Err(SigV4Error::RepeatedHeader {
            name: "authorization"
        })
    );
    // A signed header that did not arrive.
    let without: Vec<(&str, &str)> = base
        .iter()
        .copied()
        .filter(|h| h.0 != "content-type")
        .collect();
    assert!(matches!(
        check(&HttpRequest {
            headers: &without,
            ..ok
        }),
        Err(SigV4Error::SignedHeaderMissing { .. })
    ));
}
