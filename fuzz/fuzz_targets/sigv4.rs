//! SigV4: the `Authorization` header parser, the canonical request and the verifier.
//!
//! Input: an HTTP/1.1 request as the AWS SigV4 test suite writes it (`.sreq` files): request
//! line, headers (a line starting with a blank continues the previous value), a blank line, the
//! body. The verifier runs at the suite's clock (2015-08-30T12:36:00Z) for region `us-east-1`,
//! service `service`, with the suite's secret.
//!
//! Invariants: nothing panics; the gRPC frame reader yields a message only from a body that is
//! exactly one uncompressed frame, and then the whole of it; building the canonical request into text and hashing it
//! streamed agree; whenever the server-side parser accepts a request, the canonical request it
//! verifies is the one the general builder makes for the same headers, and the signature is
//! accepted exactly when it is the one recomputed from that text with the public signer steps;
//! a request signed by the gRPC signer for the same host, path, token and body always parses
//! and verifies, and never verifies under another secret. The same request read as a whole HTTP
//! request (the form `Authorize` checks for proof of possession, for this suite's service and for
//! `s3`, whose paths are signed as sent) parses and verifies without panicking, and a request
//! signed by the HTTP signer with its method, path, query, host, token and body parses and
//! verifies under its secret only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use sts_broker::sigv4::{
    CanonicalRequest, CredentialScope, GrpcSignParams, HttpRequest, HttpSignParams,
    IncomingRequest, Payload, parse, parse_amz_date, parse_http, sign_grpc, sign_http,
    signature_hex, signing_key, string_to_sign, unary_message,
};

const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "service";
/// 2015-08-30T12:36:00Z, the time of the AWS test suite.
const NOW: i64 = 1_440_938_160;
const SPECIAL: [&str; 4] = [
    "authorization",
    "host",
    "x-amz-date",
    "x-amz-security-token",
];

struct Raw<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, String)>,
    body: &'a [u8],
}

fn split_request(data: &[u8]) -> Option<Raw<'_>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, rest) = lines.next()?.split_once(' ')?;
    let (target, _version) = rest.rsplit_once(' ').unwrap_or((rest, ""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(&str, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name, value.to_owned()));
    }
    Some(Raw {
        method,
        path,
        query,
        headers,
        body,
    })
}

/// The single value of a header, `None` when absent or repeated.
fn single<'h>(headers: &'h [(&str, String)], name: &str) -> Option<&'h str> {
    let mut it = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Some(v.as_str()),
        _ => None,
    }
}

/// The whole-HTTP-request form: the request as received, then as the HTTP signer makes it.
fn http_form(
    raw: &Raw<'_>,
    all: &[(&str, &str)],
    payload_hex: &str,
    time: i64,
    signed_at: time::OffsetDateTime,
) {
    let host = single(&raw.headers, "host").unwrap_or_default();
    let token = single(&raw.headers, "x-amz-security-token");
    for service in [SERVICE, "s3"] {
        let received = HttpRequest {
            method: raw.method,
            path: raw.path,
            query: raw.query,
            headers: all,
            payload_sha256: payload_hex,
            now: NOW,
            region: REGION,
            service,
        };
        if let Ok(parsed) = parse_http(&received) {
            let _ = parsed.canonical_request();
            let _ = parsed.verify(SECRET);
        }
        let Ok(signed) = sign_http(&HttpSignParams {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: SECRET,
            session_token: token,
            region: REGION,
            service,
            method: raw.method,
            host,
            path: raw.path,
            query: raw.query,
            headers: &[],
            payload_sha256: payload_hex,
            time: signed_at,
        }) else {
            continue;
        };
        let mut sent = vec![
            ("host", host),
            ("x-amz-date", signed.x_amz_date.as_str()),
            ("authorization", signed.authorization.as_str()),
        ];
        sent.extend(
            signed
                .x_amz_security_token
                .as_deref()
                .map(|t| ("x-amz-security-token", t)),
        );
        let parsed = parse_http(&HttpRequest {
            headers: &sent,
            now: time,
            ..received
        })
        .unwrap_or_else(|e| panic!("what the HTTP signer signs parses ({service}): {e}"));
        assert!(
            parsed.verify(SECRET).is_ok(),
            "what the HTTP signer signs verifies ({service})"
        );
        assert!(
            parsed.verify(b"another secret").is_err(),
            "it does not verify under another secret ({service})"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(raw) = split_request(data) else {
        return;
    };
    // The body as a gRPC frame: a message comes out only of exactly one uncompressed frame.
    if let Some(message) = unary_message(raw.body) {
        let declared = raw
            .body
            .get(1..5)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]));
        assert_eq!(raw.body.first(), Some(&0), "uncompressed");
        assert_eq!(
            declared,
            u32::try_from(message.len()).ok(),
            "the declared length"
        );
        assert_eq!(&raw.body[5..], message, "the whole rest of the body");
    }
    let payload: [u8; 32] = Sha256::digest(raw.body).into();
    let payload_hex = hex::encode(payload);
    let all: Vec<(&str, &str)> = raw.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();

    // The general builder, signing every header sent: text and streamed hash agree.
    let mut names: Vec<String> = all
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| n != "authorization")
        .collect();
    names.sort();
    names.dedup();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let general = CanonicalRequest {
        method: raw.method,
        path: raw.path,
        query: raw.query,
        headers: &all,
        signed_headers: &names,
        payload_sha256_hex: &payload_hex,
    };
    if let (Ok(text), Ok(hash)) = (general.build(), general.sha256()) {
        let direct: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        assert_eq!(direct, hash, "canonical text and streamed hash agree");
    }

    // The server side, against the general builder and the public signer steps.
    let host = single(&raw.headers, "host").unwrap_or_default();
    let amz_date = single(&raw.headers, "x-amz-date");
    let token = single(&raw.headers, "x-amz-security-token");
    let others: Vec<(&str, &str)> = all
        .iter()
        .copied()
        .filter(|(n, _)| !SPECIAL.iter().any(|s| n.eq_ignore_ascii_case(s)))
        .collect();
    let incoming = IncomingRequest {
        authorization: single(&raw.headers, "authorization").map(str::trim),
        x_amz_date: amz_date.map(str::trim),
        x_amz_security_token: token,
        other_headers: &others,
        host,
        path: raw.path,
        payload_sha256: payload,
        now: NOW,
        region: REGION,
        service: SERVICE,
    };
    if let Ok(parsed) = parse(&incoming) {
        let server_text = parsed
            .canonical_request()
            .unwrap_or_else(|e| panic!("a parsed request rebuilds: {e}"));
        let mut seen: Vec<(&str, &str)> = vec![("host", host)];
        seen.extend(incoming.x_amz_date.map(|d| ("x-amz-date", d)));
        seen.extend(token.map(|t| ("x-amz-security-token", t)));
        seen.extend(others.iter().copied());
        let signed: Vec<&str> = parsed.signed_headers().split(';').collect();
        let grpc_shape = CanonicalRequest {
            method: "POST",
            path: raw.path,
            query: "",
            headers: &seen,
            signed_headers: &signed,
            payload_sha256_hex: &payload_hex,
        };
        let builder_text = grpc_shape
            .build()
            .unwrap_or_else(|e| panic!("the builder accepts what the parser accepted: {e}"));
        assert_eq!(server_text, builder_text, "server and builder agree");

        let scope = CredentialScope {
            date: parsed.scope_date(),
            region: parsed.region(),
            service: parsed.service(),
        };
        let hash: [u8; 32] = Sha256::digest(builder_text.as_bytes()).into();
        let sts = string_to_sign(incoming.x_amz_date.unwrap_or_default(), &scope, &hash);
        let key = signing_key(SECRET, scope.date, scope.region, scope.service);
        let expected = signature_hex(&key, &sts);
        let sent = incoming.authorization.and_then(|a| {
            a.split(',')
                .find_map(|part| part.trim_matches(' ').split_once("Signature="))
                .map(|(_, s)| s)
        });
        assert_eq!(
            parsed.verify(SECRET).is_ok(),
            sent == Some(expected.as_str()),
            "the signature is accepted exactly when it is the recomputed one"
        );
    }

    // Round trip through the gRPC signer with this request's host, path, token and body.
    let time = amz_date
        .and_then(|d| parse_amz_date(d.trim()).ok())
        .unwrap_or(NOW);
    let Ok(signed_at) = time::OffsetDateTime::from_unix_timestamp(time) else {
        return;
    };
    http_form(&raw, &all, &payload_hex, time, signed_at);
    let Ok(headers) = sign_grpc(&GrpcSignParams {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: SECRET,
        session_token: token,
        region: REGION,
        service: SERVICE,
        host,
        path: raw.path,
        payload: Payload::Bytes(raw.body),
        time: signed_at,
    }) else {
        return;
    };
    let no_others: Vec<(&str, &str)> = Vec::new();
    let parsed = parse(&IncomingRequest {
        authorization: Some(&headers.authorization),
        x_amz_date: Some(&headers.x_amz_date),
        x_amz_security_token: headers.x_amz_security_token.as_deref(),
        other_headers: &no_others,
        host,
        path: raw.path,
        payload_sha256: payload,
        now: time,
        region: REGION,
        service: SERVICE,
    })
    .unwrap_or_else(|e| panic!("what the signer signs parses: {e}"));
    assert!(
        parsed.verify(SECRET).is_ok(),
        "what the signer signs verifies"
    );
    assert!(
        parsed.verify(b"another secret").is_err(),
        "it does not verify under another secret"
    );
});
