//! The audit table: appending records and reading the newest back.
//!
//! Appends run on whatever transaction the caller holds: the audit writer's own batch
//! (`Store::append_audit`) or an MFA check's unit inside the replay guard's transaction
//! (`MfaTx::append_audit`), where the record commits with the step it records or not at all.

use super::{from_ts, ts};
use crate::domain::{AuditEvent, Outcome};
use rusqlite::{Connection, Row, params};

const COLS: &str =
    "at, principal, access_key_id, action, source, outcome, error_code, detail, count, last_at";

/// Inserts `events` on `conn`, inside the transaction the caller has open.
pub(super) fn insert(conn: &Connection, events: &[AuditEvent]) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO audit ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?;
    for e in events {
        stmt.execute(params![
            ts(e.at),
            e.principal,
            e.access_key_id,
            e.action,
            e.source,
            e.outcome.as_str(),
            e.error_code,
            e.detail,
            i64::try_from(e.count).unwrap_or(i64::MAX),
            e.last_at.map(ts),
        ])?;
    }
    Ok(())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditEvent> {
    let outcome: String = r.get(5)?;
    Ok(AuditEvent {
        at: from_ts(r.get(0)?),
        principal: r.get(1)?,
        access_key_id: r.get(2)?,
        action: r.get(3)?,
        source: r.get(4)?,
        outcome: if outcome == "success" {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        error_code: r.get(6)?,
        detail: r.get(7)?,
        count: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
        last_at: r.get::<_, Option<i64>>(9)?.map(from_ts),
    })
}

/// The newest `limit` records, newest first.
pub(super) fn recent(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<AuditEvent>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM audit ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], from_row)?;
    rows.collect()
}
