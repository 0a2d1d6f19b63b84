//! The write-health probe of the SQLite store: one row rewritten in its own `BEGIN IMMEDIATE`
//! transaction. It takes the write lock, writes a page and commits with `synchronous=FULL`, so it
//! fails exactly when an MFA login or an audit record could not be committed either.

use super::{SqliteStore, ts};
use crate::domain::StoreError;
use rusqlite::{TransactionBehavior, params};
use time::OffsetDateTime;

pub(super) fn probe_write(store: &SqliteStore, at: OffsetDateTime) -> Result<(), StoreError> {
    let mut conn = store.conn()?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO health (id, probed_at) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        params![ts(at)],
    )?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::domain::Store;
    use crate::store::sqlite::SqliteStore;
    use time::macros::datetime;

    #[test]
    fn the_probe_writes_until_a_commit_fails_and_again_after() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("broker.db")).unwrap();
        s.probe_write(datetime!(2026-03-01 00:00 UTC)).unwrap();
        s.probe_write(datetime!(2026-03-01 00:00:05 UTC)).unwrap();
        // A deferred foreign-key violation lets the statement run and fails the COMMIT.
        s.execute_batch_for_tests(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TRIGGER poison AFTER UPDATE ON health BEGIN INSERT INTO child VALUES (1); END;",
        )
        .unwrap();
        let e = s
            .probe_write(datetime!(2026-03-01 00:00:10 UTC))
            .unwrap_err();
        assert!(matches!(e, crate::domain::StoreError::Backend(_)), "{e:?}");
        let at: i64 = s
            .conn()
            .unwrap()
            .query_row("SELECT probed_at FROM health", [], |r| r.get(0))
            .unwrap();
        assert_eq!(at, 1_772_323_205, "the failed probe changed nothing");
        s.execute_batch_for_tests("DROP TRIGGER poison").unwrap();
        s.probe_write(datetime!(2026-03-01 00:00:15 UTC)).unwrap();
    }
}
