//! The transport: authentication of the raw message bytes before anything decodes them.

use crate::helpers::*;
use bytes::{Buf, BufMut};
use sts_broker::client::Credentials;
use sts_broker::domain::Outcome;
use sts_broker::sigv4::{GrpcSignParams, Payload, sign_grpc};
use time::OffsetDateTime;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;

const CREATE_USER: &str = "/iam.v1.IamService/CreateUser";

/// Field 1 (`user_name`) holding one byte that is not UTF-8: no `CreateUserRequest` decodes
/// from it.
const UNDECODABLE: &[u8] = &[0x0a, 0x01, 0xff];

/// A codec that sends and receives message bytes as they are.
#[derive(Debug, Default, Clone)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

fn now(app: &TestApp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(sts_broker::clock::Clock::unix(&app.clock)).unwrap()
}

/// The signature headers of `creds` for a call to `path` whose message is `signed`.
fn sign_for(
    app: &TestApp,
    creds: &Credentials,
    path: &str,
    signed: &[u8],
) -> sts_broker::sigv4::SignedHeaders {
    let host = app.addr.to_string();
    sign_grpc(&GrpcSignParams {
        access_key_id: &creds.access_key_id,
        secret_access_key: creds.secret_access_key.as_bytes(),
        session_token: creds.session_token.as_deref(),
        region: "us-east-1",
        service: if path.starts_with("/iam.") {
            "iam"
        } else {
            "sts"
        },
        host: &host,
        path,
        payload: Payload::Bytes(signed),
        time: now(app),
    })
    .unwrap()
}

/// Sends `sent` to `path`, signed by `creds` as if the message were `signed`.
async fn raw_call(
    app: &TestApp,
    creds: &Credentials,
    path: &'static str,
    signed: &[u8],
    sent: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let headers = sign_for(app, creds, path, signed);
    let mut req = tonic::Request::new(sent);
    let md = req.metadata_mut();
    md.insert(
        "authorization",
        MetadataValue::try_from(headers.authorization.as_str()).unwrap(),
    );
    md.insert(
        "x-amz-date",
        MetadataValue::try_from(headers.x_amz_date.as_str()).unwrap(),
    );
    let mut grpc = app.raw_grpc().await;
    grpc.ready().await.unwrap();
    grpc.unary(req, http::uri::PathAndQuery::from_static(path), Raw)
        .await
        .map(tonic::Response::into_inner)
}

async fn no_users(app: &TestApp) {
    use sts_broker::proto::iam::v1 as iam;
    let req = app
        .client
        .signed(
            "/iam.v1.IamService/ListUsers",
            iam::ListUsersRequest::default(),
        )
        .unwrap();
    let users = app.client.iam().list_users(req).await.unwrap().into_inner();
    assert!(users.users.is_empty(), "no user was created: {users:?}");
}

/// The audit record of the one failed `iam:CreateUser`, after checking its code there and in
/// `/metrics`.
async fn failed_create_user(app: &TestApp, code: &str) -> sts_broker::domain::AuditEvent {
    let event = app.audit_event("iam:CreateUser").await;
    assert_eq!(event.outcome, Outcome::Failure);
    assert_eq!(event.error_code.as_deref(), Some(code));
    let m = http_get(app.addr, "/metrics").await;
    let counted = format!("{{action=\"iam:CreateUser\",code=\"{code}\"}} 1");
    assert!(m.contains(&counted), "{m}");
    event
}

#[tokio::test]
async fn a_body_changed_after_signing_that_does_not_decode_is_a_failed_authentication() {
    let app = spawn_app().await;
    let good = prost::Message::encode_to_vec(&sts_broker::proto::iam::v1::CreateUserRequest {
        user_name: "alice".into(),
        path: None,
    });
    let r = raw_call(&app, &app.root, CREATE_USER, &good, UNDECODABLE.to_vec()).await;
    assert_error(r, Code::Unauthenticated, "SignatureDoesNotMatch");

    let refused = failed_create_user(&app, "SignatureDoesNotMatch").await;
    assert_eq!(refused.detail.as_deref(), Some("signature does not match"));
    assert_eq!(
        refused.access_key_id.as_deref(),
        Some(app.root.access_key_id.as_str())
    );
    no_users(&app).await;
}

#[tokio::test]
async fn a_signed_body_that_does_not_decode_is_a_validation_error() {
    let app = spawn_app().await;
    let r = raw_call(
        &app,
        &app.root,
        CREATE_USER,
        UNDECODABLE,
        UNDECODABLE.to_vec(),
    )
    .await;
    let s = assert_error(r, Code::InvalidArgument, "ValidationError");
    assert!(s.message().contains("protobuf"), "{}", s.message());

    let failed = failed_create_user(&app, "ValidationError").await;
    assert!(failed.principal.as_deref().unwrap().ends_with(":root"));
    no_users(&app).await;
}

/// A well-behaved client on its own connection: it must keep being served.
async fn good_call(app: &TestApp) {
    let c = sts_broker::client::Client::connect(&app.endpoint, "us-east-1", app.root.clone())
        .await
        .unwrap()
        .with_clock(std::sync::Arc::new(app.clock.clone()));
    root_identity(&c).await;
}

/// GetCallerIdentity as root must succeed.
async fn root_identity(c: &sts_broker::client::Client) {
    let req = c
        .signed(
            "/sts.v1.SecurityTokenService/GetCallerIdentity",
            sts_broker::proto::sts::v1::GetCallerIdentityRequest {},
        )
        .unwrap();
    let id = c.sts().get_caller_identity(req).await.unwrap().into_inner();
    assert!(id.arn.ends_with(":root"));
}

/// The `grpc-status` a trailers-only answer carries, "none" without one, or the reset.
async fn grpc_status(response: h2::client::ResponseFuture) -> String {
    match response.await {
        Ok(r) => r
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned(),
        Err(e) => format!("reset: {e}"),
    }
}

/// One h2c connection opening `streams` unauthenticated calls, each sending `chunk` bytes of
/// DATA without ending its stream. Returns the gRPC statuses the broker answered with.
async fn unauthenticated_flood(
    addr: std::net::SocketAddr,
    streams: usize,
    chunk: usize,
) -> Vec<String> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut pending = Vec::new();
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let req = http::Request::post(format!("http://{addr}{CREATE_USER}"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(req, false).unwrap();
        // Header, then junk: the body never ends.
        let mut data = vec![0u8, 0, 4, 0, 0];
        data.resize(chunk, 7);
        body.send_data(bytes::Bytes::from(data), false).unwrap();
        pending.push((response, body));
    }
    let mut statuses = Vec::new();
    for (response, _body) in pending {
        statuses.push(grpc_status(response).await);
    }
    statuses
}

#[tokio::test]
async fn unauthenticated_bodies_are_refused_before_they_are_buffered() {
    let app = spawn_app().await;
    println!("before the flood: {}", rss());
    let floods: Vec<_> = (0..4)
        .map(|_| tokio::spawn(unauthenticated_flood(app.addr, 64, 256 * 1024)))
        .collect();
    good_call(&app).await;
    for f in floods {
        let statuses = f.await.unwrap();
        assert_eq!(statuses.len(), 64);
        assert!(
            statuses.iter().all(|s| s == "16"),
            "every stream is refused as UNAUTHENTICATED from its headers: {statuses:?}"
        );
    }
    good_call(&app).await;
    println!("after the flood: {}", rss());
}

/// One h2c connection opening `streams` calls that carry root's valid signature headers (for an
/// empty message) and announce a message of `message` bytes, all of which they send, without
/// ending the stream: the broker has to hold each body until it ends or is refused. Resolves
/// once `answers` of them have been answered, with how many were refused as `Throttling`; the
/// others stay open until the connection is dropped.
async fn known_key_flood(
    app: &TestApp,
    streams: usize,
    message: usize,
    answers: usize,
) -> (usize, h2::client::SendRequest<bytes::Bytes>) {
    let headers = sign_for(app, &app.root, CREATE_USER, &[]);
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut responses = tokio::task::JoinSet::new();
    for _ in 0..streams {
        client = client.ready().await.unwrap();
        let req = http::Request::post(format!("http://{}{CREATE_USER}", app.addr))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", headers.authorization.as_str())
            .header("x-amz-date", headers.x_amz_date.as_str())
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(req, false).unwrap();
        let mut data = vec![0u8];
        data.extend_from_slice(&u32::try_from(message - 5).unwrap().to_be_bytes());
        data.resize(message, 7);
        body.reserve_capacity(message);
        body.send_data(bytes::Bytes::from(data), false).unwrap();
        responses.spawn(async move {
            let status = grpc_status(response).await;
            drop(body);
            status
        });
    }
    let mut throttled = 0;
    for _ in 0..answers {
        let status = responses.join_next().await.unwrap().unwrap();
        assert!(
            status == "8",
            "a call refused while its body is held is RESOURCE_EXHAUSTED/Throttling, not {status}"
        );
        throttled += 1;
    }
    responses.detach_all();
    (throttled, client)
}

#[tokio::test]
async fn a_known_key_holding_request_bytes_crowds_out_only_its_own_principal() {
    let app = spawn_app().await;
    let alice = {
        let root = app.as_(&app.root);
        create_user(&root, "alice").await.unwrap();
        crate::foundation::create_key(&root, Some("alice"))
            .await
            .unwrap()
    };
    println!("before the flood: {}", rss());
    // 72 calls of 1 MiB each, as root: more than the whole 64 MiB budget. Root's share is
    // 8 MiB, so at most 8 of them can be held and at least 64 are refused.
    let flood = known_key_flood(&app, 72, 1024 * 1024, 64);
    let (throttled, _held) = tokio::time::timeout(std::time::Duration::from_secs(60), flood)
        .await
        .expect("the calls over root's share are refused, not held until the call limit");
    assert_eq!(throttled, 64);
    println!("while root's share is held: {}", rss());
    // Another principal is served meanwhile: root's calls hold at most root's share.
    let id = caller_identity(&app.as_(&alice)).await.unwrap();
    assert!(id.arn.ends_with(":user/alice"), "{}", id.arn);
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_the_broker_keeps_serving() {
    let app = spawn_app().await;
    let big = vec![b'a'; 2 * 1024 * 1024];
    let r = raw_call(&app, &app.root, CREATE_USER, &big, big.clone()).await;
    let s = assert_error(r, Code::ResourceExhausted, "LimitExceeded");
    assert!(s.message().contains("1048576 bytes"), "{}", s.message());
    good_call(&app).await;
}

fn create_user_message(name: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&sts_broker::proto::iam::v1::CreateUserRequest {
        user_name: name.into(),
        path: None,
    })
}

/// `message` gzip-compressed.
fn gzip(message: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(message).unwrap();
    gz.finish().unwrap()
}

/// One gRPC frame: the compressed flag, the length, the bytes.
fn frame(compressed: bool, bytes: &[u8]) -> Vec<u8> {
    let mut f = vec![u8::from(compressed)];
    f.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    f.extend_from_slice(bytes);
    f
}

/// A root-signed `CreateUser` whose body is `body` as it is, with `grpc-encoding: encoding`,
/// signed as if its message were `signed`, on a bare HTTP/2 connection. Returns the response's
/// headers and its status (from the headers of a trailers-only answer, else the trailers).
async fn h2_create_user(
    app: &TestApp,
    encoding: &str,
    signed: &[u8],
    body: Vec<u8>,
) -> (http::HeaderMap, tonic::Status) {
    let headers = sign_for(app, &app.root, CREATE_USER, signed);
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post(format!("http://{}{CREATE_USER}", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-encoding", encoding)
        .header("authorization", headers.authorization.as_str())
        .header("x-amz-date", headers.x_amz_date.as_str())
        .body(())
        .unwrap();
    let (response, mut stream) = client.send_request(req, false).unwrap();
    stream.send_data(body.into(), true).unwrap();
    let (parts, mut body) = response.await.unwrap().into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return (parts.headers, status);
    }
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    let status = tonic::Status::from_header_map(&trailers).expect("a status in the trailers");
    (parts.headers, status)
}

fn failed(status: tonic::Status) -> Result<(), tonic::Status> {
    if status.code() == Code::Ok {
        Ok(())
    } else {
        Err(status)
    }
}

#[tokio::test]
async fn a_gzip_message_is_signed_over_its_plain_bytes() {
    let app = spawn_app().await;
    let plain = create_user_message("gus");
    let compressed = gzip(&plain);

    let (_, s) = h2_create_user(&app, "gzip", &compressed, frame(true, &compressed)).await;
    assert_error(failed(s), Code::Unauthenticated, "SignatureDoesNotMatch");
    no_users(&app).await;

    let (headers, s) = h2_create_user(&app, "gzip", &plain, frame(true, &compressed)).await;
    assert_eq!(s.code(), Code::Ok, "{s:?}");
    assert_eq!(headers["grpc-accept-encoding"], "identity,gzip");

    // The client does the same: it signs the plain message, then compresses it.
    let gz = app.client.with_gzip();
    let req = sts_broker::proto::iam::v1::CreateUserRequest {
        user_name: "ida".into(),
        path: None,
    };
    gz.iam().create_user(req).await.unwrap();
    let listed = app
        .client
        .iam()
        .list_users(sts_broker::proto::iam::v1::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.users.iter().map(|u| u.user_name.as_str()).collect();
    assert_eq!(names, ["gus", "ida"]);
}

#[tokio::test]
async fn a_compression_bomb_is_refused_at_the_limit_and_the_broker_keeps_serving() {
    let app = spawn_app().await;
    // 8 MiB of one byte: eight times the message limit, a few KiB compressed.
    let bomb = gzip(&vec![b'a'; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    println!("before the bomb: {}", rss());
    for _ in 0..4 {
        let (_, s) = h2_create_user(&app, "gzip", b"", frame(true, &bomb)).await;
        let s = assert_error(failed(s), Code::ResourceExhausted, "LimitExceeded");
        assert!(s.message().contains("inflates"), "{}", s.message());
    }
    good_call(&app).await;
    println!("after the bomb: {}", rss());
    // A gzip stream that is not gzip cannot be hashed: its signature cannot match.
    let (_, s) = h2_create_user(&app, "gzip", b"junk", frame(true, b"junk")).await;
    assert_error(failed(s), Code::Unauthenticated, "SignatureDoesNotMatch");
    no_users(&app).await;
}

#[tokio::test]
async fn an_encoding_other_than_gzip_is_unimplemented_and_says_what_is_accepted() {
    let app = spawn_app().await;
    let plain = create_user_message("bob");
    let (headers, s) = h2_create_user(&app, "br", &plain, frame(true, &plain)).await;
    let s = assert_error(failed(s), Code::Unimplemented, "NotImplemented");
    assert!(s.message().contains("`br`"), "{}", s.message());
    assert!(s.message().contains("identity,gzip"), "{}", s.message());
    assert_eq!(headers["grpc-accept-encoding"], "identity,gzip");
    no_users(&app).await;
}

#[tokio::test]
async fn statuses_tonic_writes_carry_error_info_too() {
    let app = spawn_app().await;
    // A signed call to a method the service does not have: tonic answers it.
    let path = "/iam.v1.IamService/NoSuchMethod";
    let r = raw_call(&app, &app.root, path, b"", Vec::new()).await;
    assert_error(r, Code::Unimplemented, "NotImplemented");
    // An unsigned service the broker does not serve at all.
    let r = raw_call(&app, &app.root, "/nope.v1.Nope/Nothing", b"", Vec::new()).await;
    assert_error(r, Code::Unimplemented, "NotImplemented");
    // The health service's own refusal.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        tonic::transport::Endpoint::from_shared(app.endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await;
    assert_error(r, Code::NotFound, "NoSuchEntity");
}

/// Opens `n` TCP connections that never send a byte.
fn silent_connections(addr: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// How many of `conns` the broker has closed (a read sees end of stream or a reset).
fn closed(conns: &[std::net::TcpStream]) -> usize {
    use std::io::{ErrorKind, Read};
    conns
        .iter()
        .filter(|&c| match { c }.read(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        })
        .count()
}

#[tokio::test]
async fn silent_connections_cannot_keep_a_client_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("data"));
    cfg.limits.max_pending_connections = 16;
    // So long that only evicting the oldest silent connection can let the client in.
    cfg.limits.handshake_timeout = std::time::Duration::from_secs(600);
    let app = start_with(dir, sts_broker::clock::ManualClock::at(T0), cfg).await;
    println!("before the flood: {}", rss());
    let addr = app.addr;
    let silent = tokio::task::spawn_blocking(move || silent_connections(addr, 300))
        .await
        .unwrap();
    good_call(&app).await;
    // The broker closes the evicted ones on its own schedule: look a bounded number of times.
    let mut shut = 0;
    for _ in 0..100 {
        shut = closed(&silent);
        if shut >= 300 - 16 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        shut >= 300 - 16,
        "at most 16 silent connections stay open; {shut} of 300 were closed"
    );
    good_call(&app).await;
    println!("after the flood: {}", rss());
}

#[tokio::test]
async fn under_a_low_descriptor_limit_silent_connections_cannot_keep_a_client_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let script = format!(
        "ulimit -n 256 && exec {} serve --data-dir {} --listen 127.0.0.1:0",
        env!("CARGO_BIN_EXE_sts-broker"),
        data.display()
    );
    let mut cmd = tokio::process::Command::new("sh");
    cmd.args(["-c", &script]);
    let (mut child, endpoint) = serve_process(cmd).await;
    let addr: std::net::SocketAddr = endpoint.trim_start_matches("http://").parse().unwrap();

    let silent = tokio::task::spawn_blocking(move || silent_connections(addr, 300))
        .await
        .unwrap();
    let root = read_credentials_file(&data.join("root-credentials"));
    let c = sts_broker::client::Client::connect(&endpoint, "us-east-1", root)
        .await
        .unwrap();
    root_identity(&c).await;
    assert!(closed(&silent) > 0, "the broker shed silent connections");
    child.kill().await.unwrap();
}

/// Polls `/healthz` (a bounded number of times) until its answer contains `want`.
async fn healthz_until(app: &TestApp, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..250 {
        last = http_get(app.addr, "/healthz").await;
        if last.contains(want) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("/healthz never answered `{want}`; last answer:\n{last}");
}

#[tokio::test]
async fn healthz_answers_503_with_the_reason_while_the_store_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path().join("data"));
    cfg.limits.store_probe_interval = std::time::Duration::from_millis(20);
    let app = start_with(dir, sts_broker::clock::ManualClock::at(T0), cfg).await;
    let ok = healthz_until(&app, "\r\n\r\nok").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");

    // From outside the broker: a trigger whose deferred foreign-key violation fails every COMMIT
    // that rewrites the probe's row, as a full disk fails it.
    let db = rusqlite::Connection::open(app.data_dir().join(sts_broker::datadir::DB_FILE)).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER poison AFTER UPDATE ON health BEGIN INSERT INTO child VALUES (1); END;",
    )
    .unwrap();
    let down = healthz_until(&app, "FOREIGN KEY constraint failed").await;
    assert!(down.starts_with("HTTP/1.1 503"), "{down}");
    assert!(down.contains("unhealthy: the store cannot write"), "{down}");
    // The broker still answers calls that need no write.
    good_call(&app).await;

    db.execute_batch("DROP TRIGGER poison").unwrap();
    let up = healthz_until(&app, "\r\n\r\nok").await;
    assert!(up.starts_with("HTTP/1.1 200"), "{up}");
}
