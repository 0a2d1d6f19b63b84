//! Issue 12, defects 4 and 5: an issued credential always has its issuance record on disk before
//! it leaves (in the replay guard's transaction with MFA, group-committed without), nothing is
//! issued when that record cannot be written, and failed authentications reach the audit trail
//! aggregated (a bounded number of rows per interval) and counted in `/metrics`.
//!
//! Faults are injected with a trigger that refuses every insert into the audit table, created on
//! a second connection to the broker's database: the broker's own connection sees it at once.

use crate::foundation::create_key;
use crate::helpers::*;
use crate::mfa::{create_device, enable, enrolled, now_step, person};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use sts_broker::client::{Client, Credentials};
use sts_broker::domain::{AuditEvent, Outcome, Store};
use sts_broker::proto::iam::v1 as iam;
use sts_broker::proto::sts::v1 as sts;
use tonic::Code;
use tonic_types::StatusExt;
use zeroize::Zeroizing;

/// A second connection to the data dir's database, for fault injection.
fn db(data_dir: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(data_dir.join("broker.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Makes every insert into the audit table fail, as a full disk would.
fn break_audit(c: &rusqlite::Connection) {
    c.execute_batch(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit
         BEGIN SELECT RAISE(ABORT, 'injected: the audit table refuses writes'); END;",
    )
    .unwrap();
}

fn mend_audit(c: &rusqlite::Connection) {
    c.execute_batch("DROP TRIGGER refuse_audit").unwrap();
}

async fn session_token(
    c: &Client,
    mfa: Option<(&str, &str)>,
) -> Result<sts::Credentials, tonic::Status> {
    let req = sts::GetSessionTokenRequest {
        duration_seconds: None,
        serial_number: mfa.map(|m| m.0.to_owned()),
        token_code: mfa.map(|m| m.1.to_owned()),
    };
    let r = c.sts().get_session_token(req).await?;
    Ok(r.into_inner().credentials.unwrap())
}

/// The issuance record naming `akid`, if the trail has one.
fn issuance_of<'a>(events: &'a [AuditEvent], akid: &str) -> Option<&'a AuditEvent> {
    let named = format!("issued {akid} until ");
    events.iter().find(|e| {
        e.action == "sts:GetSessionToken"
            && e.outcome == Outcome::Success
            && e.detail.as_deref().is_some_and(|d| d.starts_with(&named))
    })
}

#[tokio::test]
async fn an_mfa_issuance_whose_record_cannot_be_written_issues_nothing_and_spares_the_code() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    let as_alice = app.as_(&alice.creds);
    let code = totp_at_step(&seed, now_step(&app));
    let conn = db(&app.data_dir());

    break_audit(&conn);
    let r = session_token(&as_alice, Some((&serial, &code))).await;
    assert_error(r, Code::Internal, "ServiceFailure");
    mend_audit(&conn);

    // The code was not consumed (its step was rolled back with the record), and no failure
    // was counted: the same code works now, once.
    let creds = session_token(&as_alice, Some((&serial, &code)))
        .await
        .expect("the same code is accepted once the store writes again");
    let again = session_token(&as_alice, Some((&serial, &code))).await;
    assert_denied(again);
    let trail = app.audit().await;
    let record = issuance_of(&trail, &creds.access_key_id).expect("its issuance record");
    assert_eq!(record.principal.as_deref(), Some(alice.caller.arn.as_str()));
    assert!(
        record
            .detail
            .as_deref()
            .unwrap()
            .ends_with(&format!("mfa: {serial}")),
        "{record:?}"
    );
    let issued = trail
        .iter()
        .filter(|e| e.action == "sts:GetSessionToken" && e.outcome == Outcome::Success)
        .filter(|e| {
            e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("issued "))
        })
        .count();
    assert_eq!(issued, 1, "one credential issued, one record");
    let replay = trail.iter().find(|e| {
        e.detail
            .as_deref()
            .is_some_and(|d| d == "mfa refused: otp_replay")
    });
    assert!(replay.is_some(), "the replay's refusal is on record too");
    // The credential works.
    caller_identity(&app.as_(&session_credentials(&creds)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_issuance_without_mfa_whose_record_cannot_be_written_is_refused() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let as_alice = app.as_(&alice.creds);
    let conn = db(&app.data_dir());

    break_audit(&conn);
    let r = session_token(&as_alice, None).await;
    assert_error(r, Code::Internal, "ServiceFailure");
    mend_audit(&conn);

    let creds = session_token(&as_alice, None).await.unwrap();
    let trail = app.audit().await;
    assert!(issuance_of(&trail, &creds.access_key_id).is_some());
    let records = trail
        .iter()
        .filter(|e| {
            e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("issued "))
        })
        .count();
    assert_eq!(
        records, 1,
        "the refused call issued nothing and recorded nothing"
    );
}

#[tokio::test]
async fn an_assume_role_with_mfa_whose_record_cannot_be_written_issues_nothing() {
    let app = spawn_app().await;
    let alice = person(&app, "alice").await;
    let (serial, seed) = enrolled(&app, &alice, "a-phone").await;
    let account = &alice.caller.arn[13..25];
    let trust = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow",
            "Principal": {{"AWS": "{account}"}}, "Action": "sts:AssumeRole",
            "Condition": {{"Bool": {{"aws:MultiFactorAuthPresent": "true"}}}}}}}}"#
    );
    let role = app
        .client
        .iam()
        .create_role(iam::CreateRoleRequest {
            role_name: "admin".into(),
            assume_role_policy_document: trust,
            max_session_duration: None,
            path: None,
            description: None,
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    let as_alice = app.as_(&alice.creds);
    let code = totp_at_step(&seed, now_step(&app));
    let req = sts::AssumeRoleRequest {
        role_arn: role.arn.clone(),
        role_session_name: "work".into(),
        duration_seconds: None,
        serial_number: Some(serial.clone()),
        token_code: Some(code.clone()),
        policy: None,
    };
    let conn = db(&app.data_dir());
    break_audit(&conn);
    let refused = as_alice.sts().assume_role(req.clone()).await;
    assert_error(refused, Code::Internal, "ServiceFailure");
    mend_audit(&conn);
    let r = as_alice.sts().assume_role(req).await;
    let r = r.expect("the unspent code is accepted");
    let akid = r.into_inner().credentials.unwrap().access_key_id;
    let trail = app.audit().await;
    let named = format!("issued {akid} until ");
    let record = trail.iter().find(|e| {
        e.action == "sts:AssumeRole" && e.detail.as_deref().is_some_and(|d| d.starts_with(&named))
    });
    assert!(record.is_some(), "its issuance record: {trail:?}");
}

/// An `AKIA` key the broker has never issued.
fn unknown_key() -> Credentials {
    Credentials {
        access_key_id: "AKIAZZZZZZZZZZZZZZZZ".into(),
        secret_access_key: Zeroizing::new("x".repeat(40)),
        session_token: None,
    }
}

fn unknown_key_rows(trail: &[AuditEvent]) -> Vec<&AuditEvent> {
    trail
        .iter()
        .filter(|e| e.detail.as_deref() == Some("unknown access key"))
        .collect()
}

#[tokio::test]
async fn a_flood_signed_with_an_unknown_key_adds_one_row_per_interval_and_is_counted() {
    const TASKS: usize = 10;
    const PER_TASK: usize = 250;
    const GOOD_EVERY: usize = 50;
    let app = spawn_app().await;
    let before = app.audit().await.len();
    println!("before the flood: {}", rss());
    let mut good_calls = 0;
    // Two intervals of the broker's clock, 2,500 refusals each.
    for phase in 0..2 {
        if phase == 1 {
            app.clock.advance(60);
        }
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (flood, good) = (app.as_(&unknown_key()), app.client.clone());
                tokio::spawn(async move {
                    let mut good_calls = 0;
                    for i in 0..PER_TASK {
                        assert_invalid_token(caller_identity(&flood).await);
                        if i % GOOD_EVERY == 0 {
                            caller_identity(&good)
                                .await
                                .expect("a well-behaved client is served during the flood");
                            good_calls += 1;
                        }
                    }
                    good_calls
                })
            })
            .collect();
        for t in tasks {
            good_calls += t.await.unwrap();
        }
    }
    println!("after the flood: {}", rss());
    let refused = TASKS * PER_TASK * 2;
    let metrics = http_get(app.addr, "/metrics").await;
    let counted = format!(
        "sts_broker_failed_authentications_total{{reason=\"unknown_access_key\"}} {refused}"
    );
    assert!(metrics.contains(&counted), "{metrics}");

    let trail = app.audit().await;
    let rows = unknown_key_rows(&trail);
    assert_eq!(rows.len(), 2, "one row per interval: {rows:?}");
    let total: u64 = rows.iter().map(|r| r.count).sum();
    assert_eq!(
        total,
        u64::try_from(refused).unwrap(),
        "every refusal counted"
    );
    for r in &rows {
        assert_eq!(r.source.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.access_key_id.as_deref(), Some("AKIAZZZZZZZZZZZZZZZZ"));
        assert_eq!(r.error_code.as_deref(), Some("InvalidClientTokenId"));
        assert_eq!(r.action, "sts:GetCallerIdentity");
        assert!(r.last_at.is_some_and(|last| last >= r.at), "{r:?}");
    }
    let grown = trail.len() - before;
    assert!(
        grown <= good_calls + 2,
        "{grown} rows for {refused} refusals and {good_calls} good calls"
    );
    println!("{refused} refusals, {good_calls} good calls: {grown} audit rows");
}

#[tokio::test]
async fn failed_authentications_are_written_when_their_interval_ends() {
    let app = spawn_app().await;
    let flood = app.as_(&unknown_key());
    for _ in 0..20 {
        assert_invalid_token(caller_identity(&flood).await);
    }
    app.clock.advance(61);
    // The broker's once-a-second ticker writes the ended interval without another refusal or
    // a flush; wait for it (bounded), reading the table without flushing.
    let mut rows = Vec::new();
    for _ in 0..100 {
        let trail = app.broker().recent_audit(100).await.unwrap();
        rows = unknown_key_rows(&trail).into_iter().cloned().collect();
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].count, 20);
}

/// `sts-broker serve` on `data`, with the endpoint it printed.
async fn serve(data: &Path) -> (tokio::process::Child, String) {
    serve_process(serve_command(data)).await
}

/// User `name` with a key and a virtual device enabled with the codes of the wall clock's
/// previous and current step: its credentials, serial, seed and the step enabled at.
async fn enrolled_user(root: &Client, name: &str) -> (Credentials, String, String, i64) {
    create_user(root, name).await.unwrap();
    let creds = create_key(root, Some(name)).await.unwrap();
    let d = create_device(root, &format!("{name}-phone")).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let s = step_of(now);
    let seed = d.base32_string_seed;
    let (c1, c2) = (totp_at_step(&seed, s - 1), totp_at_step(&seed, s));
    enable(root, name, &d.serial_number, &c1, &c2)
        .await
        .unwrap();
    (creds, d.serial_number, seed, s)
}

#[tokio::test]
async fn after_kill_9_every_credential_a_client_received_has_its_issuance_record() {
    const USERS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, endpoint) = serve(&data).await;
    let root = read_credentials_file(&data.join("root-credentials"));
    let root = Client::connect(&endpoint, "us-east-1", root).await.unwrap();
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(enrolled_user(&root, &format!("user{i}")).await);
    }

    // Every user asks at once with the code of the step after its enable step (inside the
    // window whether or not the wall clock has moved on since); the broker is killed as soon
    // as half of the answers have arrived.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (creds, serial, seed, s) in users {
        let (c, tx) = (root.with_credentials(creds), tx.clone());
        tokio::spawn(async move {
            let code = totp_at_step(&seed, s + 1);
            let r = session_token(&c, Some((&serial, &code))).await;
            let _ = tx.send(r.map(|c| c.access_key_id));
        });
    }
    drop(tx);
    let mut received = HashSet::new();
    let mut answers = 0;
    let collect = async {
        while let Some(r) = rx.recv().await {
            answers += 1;
            match r {
                Ok(akid) => {
                    received.insert(akid);
                    if received.len() == USERS / 2 {
                        child.start_kill().unwrap();
                    }
                }
                // Only the kill may fail a call: no answer of the broker's own.
                Err(s) => assert!(
                    s.get_details_error_info().is_none(),
                    "the broker refused a call: {s:?}"
                ),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .expect("every call answers or fails");
    let _ = child.start_kill();
    let _ = child.wait().await;
    assert_eq!(answers, USERS);
    assert!(received.len() >= USERS / 2, "{received:?}");

    // The broker comes back on the same data dir and serves.
    let (mut child, endpoint) = serve(&data).await;
    let root = read_credentials_file(&data.join("root-credentials"));
    let again = Client::connect(&endpoint, "us-east-1", root).await.unwrap();
    caller_identity(&again).await.unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;

    let store = sts_broker::store::sqlite::SqliteStore::open(&data.join("broker.db")).unwrap();
    let trail = store.recent_audit(10_000).unwrap();
    let missing: Vec<_> = received
        .iter()
        .filter(|akid| issuance_of(&trail, akid).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "credentials without an issuance record: {missing:?}"
    );
    println!(
        "{} of {USERS} credentials received before kill -9, all recorded",
        received.len()
    );
}
