//! The transport: authentication of the raw message bytes before anything decodes them.

use crate::helpers::*;
use bytes::{Buf, BufMut};
use sts_broker::client::Credentials;
use sts_broker::sigv4::{GrpcSignParams, Payload, sign_grpc};
use sts_broker::store::Outcome;
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

/// Sends `sent` to `path`, signed by `creds` as if the message were `signed`.
async fn raw_call(
    app: &TestApp,
    creds: &Credentials,
    path: &'static str,
    signed: &[u8],
    sent: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let host = app.addr.to_string();
    let headers = sign_grpc(&GrpcSignParams {
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
    .unwrap();
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
    let channel = tonic::transport::Endpoint::from_shared(app.endpoint.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
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

#[tokio::test]
async fn a_body_changed_after_signing_that_does_not_decode_is_a_failed_authentication() {
    let app = spawn_app().await;
    let good = prost::Message::encode_to_vec(&sts_broker::proto::iam::v1::CreateUserRequest {
        user_name: "alice".into(),
        path: None,
    });
    let r = raw_call(&app, &app.root, CREATE_USER, &good, UNDECODABLE.to_vec()).await;
    assert_error(r, Code::Unauthenticated, "SignatureDoesNotMatch");

    app.broker().flush_audit().await;
    let events = app.broker().recent_audit(100).await.unwrap();
    let refused = events
        .iter()
        .find(|e| e.action == "iam:CreateUser")
        .expect("the refusal is in the audit trail");
    assert_eq!(refused.outcome, Outcome::Failure);
    assert_eq!(refused.error_code.as_deref(), Some("SignatureDoesNotMatch"));
    assert_eq!(refused.detail.as_deref(), Some("signature does not match"));
    assert_eq!(
        refused.access_key_id.as_deref(),
        Some(app.root.access_key_id.as_str())
    );
    let m = http_get(app.addr, "/metrics").await;
    assert!(
        m.contains("{action=\"iam:CreateUser\",code=\"SignatureDoesNotMatch\"} 1"),
        "{m}"
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

    app.broker().flush_audit().await;
    let events = app.broker().recent_audit(100).await.unwrap();
    let failed = events
        .iter()
        .find(|e| e.action == "iam:CreateUser")
        .expect("the call is in the audit trail");
    assert_eq!(failed.outcome, Outcome::Failure);
    assert_eq!(failed.error_code.as_deref(), Some("ValidationError"));
    assert!(failed.principal.as_deref().unwrap().ends_with(":root"));
    let m = http_get(app.addr, "/metrics").await;
    assert!(
        m.contains("{action=\"iam:CreateUser\",code=\"ValidationError\"} 1"),
        "{m}"
    );
    no_users(&app).await;
}
