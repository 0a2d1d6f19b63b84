//! The embedded SQLite backend of the store contract ([`crate::domain::store`]).
//!
//! One connection behind a mutex: a single writer needs no SQLITE_BUSY handling and cannot meet
//! the WAL-reset bug of SQLite 3.7.0 to 3.51.2, where one connection checkpointing while another
//! commits could corrupt the database (sqlite.org, "Write-Ahead Logging", WAL-reset bug). The
//! connection runs WAL with `synchronous=FULL`, so every committed transaction (a consumed TOTP
//! step, a failure counter, a revocation) survives power loss before the answer that depends on it
//! leaves the broker. Every operation the contract calls atomic runs in one `BEGIN IMMEDIATE`
//! transaction, which takes the write lock first, so what it reads cannot change before it writes
//! and a read lock is never upgraded midway.
//!
//! `rusqlite` is named in this module and nowhere else: its errors become
//! [`StoreError::Backend`] here.

mod audit;
mod health;
mod mfa;
pub mod migrations;
mod policies;
mod sessions;

use crate::domain::{
    AccessKeyRecord, AuditEvent, Capped, Deletion, Dependents, Missing, Owner, OwnerRef, Page,
    Store, StoreError, Taken, User,
};
use crate::ids::{AccessKeyId, IamPath, KeyStatus, UserName};
use migrations::{MIGRATIONS, latest_version};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

/// The result of a write whose constraint violation means `taken` (a unique name or serial).
pub(super) fn unique(
    r: rusqlite::Result<usize>,
    taken: impl FnOnce() -> Taken,
) -> Result<(), StoreError> {
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::AlreadyExists(taken()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The result of an UPDATE or DELETE that must touch a row: `missing` when it touched none.
pub(super) fn touched(n: usize, missing: impl FnOnce() -> Missing) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound(missing()))
    } else {
        Ok(())
    }
}

/// The id a lookup (`?1` is `key`) finds, or `NotFound(missing)`.
pub(super) fn id_of(
    conn: &Connection,
    sql: &str,
    key: &str,
    missing: impl FnOnce() -> Missing,
) -> Result<String, StoreError> {
    conn.query_row(sql, [key], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(missing()))
}

/// Every row `sql` selects with `params`, as `read` reads each.
pub(super) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, read)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A `COUNT(*)` as the contract's unsigned count.
pub(super) fn count(conn: &Connection, sql: &str, id: &str) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(sql, [id], |r| r.get(0))?;
    u64::try_from(n).map_err(|_| StoreError::Internal("a negative count".into()))
}

/// What a delete-if-unused did, given the dependents counted in its transaction.
pub(super) fn delete_unless(
    tx: rusqlite::Transaction<'_>,
    d: Dependents,
    delete: &[&str],
    id: &str,
) -> Result<Deletion, StoreError> {
    if !d.is_empty() {
        return Ok(Deletion::Refused(d));
    }
    for sql in delete {
        tx.execute(sql, [id])?;
    }
    tx.commit()?;
    Ok(Deletion::Deleted)
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

pub(super) fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(super) fn from_ts(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(v).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_string(), rusqlite::types::Type::Text)
}

/// The name (column `at`, checked by `parse`) and the path (column `at + 1`) of a user, group or
/// role row.
pub(super) fn name_and_path<N, E: std::fmt::Display>(
    row: &Row<'_>,
    at: usize,
    parse: impl FnOnce(&str) -> Result<N, E>,
) -> rusqlite::Result<(N, IamPath)> {
    let name: String = row.get(at)?;
    let path: String = row.get(at + 1)?;
    Ok((
        parse(&name).map_err(corrupt)?,
        IamPath::parse("path", &path).map_err(corrupt)?,
    ))
}

pub(super) fn user_from_row(row: &Row<'_>, base: usize) -> rusqlite::Result<User> {
    let (name, path) = name_and_path(row, base + 1, UserName::parse)?;
    Ok(User {
        id: row.get(base)?,
        name,
        path,
        created: from_ts(row.get(base + 3)?),
    })
}

fn key_status(s: &str) -> rusqlite::Result<KeyStatus> {
    KeyStatus::parse(s).map_err(corrupt)
}

pub(super) fn owner_sql(owner: &OwnerRef) -> Option<&str> {
    match owner {
        OwnerRef::Root => None,
        OwnerRef::User(id) => Some(id.as_str()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending migrations, and refuses
    /// a file that is not a database, is damaged, or was written by a newer build.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        Self::setup(conn, true)
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    /// Runs raw SQL on the store's connection: a test's way to damage a row or add a trigger.
    #[cfg(test)]
    pub(crate) fn execute_batch_for_tests(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn()?.execute_batch(sql)?)
    }

    fn setup(mut conn: Connection, file: bool) -> Result<Self, StoreError> {
        let bad = |e: rusqlite::Error| {
            StoreError::Unavailable(format!("the database is unreadable: {e}"))
        };
        if file {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(bad)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Unavailable(format!(
                    "the database refused WAL mode (got `{mode}`)"
                )));
            }
        }
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             PRAGMA secure_delete = ON;
             PRAGMA trusted_schema = OFF;",
        )
        .map_err(bad)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(bad)?;
        if check != "ok" {
            return Err(StoreError::Unavailable(format!(
                "the database failed its integrity check: {check}"
            )));
        }
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Internal("store mutex poisoned".into()))
    }

    /// The row `sql` selects with `params` (the first, if several), as `read` reads it.
    pub(super) fn row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.conn()?.query_row(sql, params, read).optional()?)
    }

    /// The `cols` of the row of `table` named `name`, as `read` reads them. IAM names are unique
    /// without regard to case (AWS IAM User Guide, "IAM identifiers"), so the lookup is on the
    /// `name_lower` column.
    pub(super) fn by_name<T>(
        &self,
        cols: &str,
        table: &str,
        name: &str,
        read: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        let sql = format!("SELECT {cols} FROM {table} WHERE name_lower = ?1");
        self.row(&sql, [name.to_lowercase()], read)
    }

    /// The schema version on disk.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()?
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub(super) fn user_id_by_name(
        conn: &Connection,
        name: &UserName,
    ) -> Result<String, StoreError> {
        id_of(
            conn,
            "SELECT id FROM users WHERE name_lower = ?1",
            &name.as_str().to_lowercase(),
            || Missing::User(name.clone()),
        )
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {current}, newer than this build of sts-broker knows \
             ({latest}); run a newer sts-broker or restore a backup"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

const USER_COLS: &str = "id, name, path, created_at";

impl Store for SqliteStore {
    fn probe_write(&self, at: OffsetDateTime) -> Result<(), StoreError> {
        health::probe_write(self, at)
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
    }

    fn initialise(
        &self,
        meta: &[(&str, &str)],
        root_key: &AccessKeyId,
        root_secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: i64 = tx.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get(0))?;
        if existing > 0 {
            return Err(StoreError::Internal("store is already initialised".into()));
        }
        for (k, v) in meta {
            tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, v])?;
        }
        tx.execute(
            "INSERT INTO access_keys (id, user_id, secret_blob, status, created_at)
             VALUES (?1, NULL, ?2, 'Active', ?3)",
            params![root_key.as_str(), root_secret_blob, ts(now)],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let r = self.conn()?.execute(
            "INSERT INTO users (id, name, name_lower, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                user.id,
                user.name.as_str(),
                user.name.as_str().to_lowercase(),
                user.path.as_str(),
                ts(user.created)
            ],
        );
        unique(r, || Taken::User(user.name.clone()))
    }

    fn get_user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        self.by_name(USER_COLS, "users", name.as_str(), |r| user_from_row(r, 0))
    }

    fn list_users(
        &self,
        path_prefix: &str,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<Page<User>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLS}, name_lower FROM users
             WHERE substr(path, 1, length(?1)) = ?1 AND name_lower >= ?2
             ORDER BY name_lower LIMIT ?3"
        ))?;
        let limit = i64::try_from(max_items.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![path_prefix, marker.unwrap_or(""), limit], |r| {
            Ok((user_from_row(r, 0)?, r.get::<_, String>(4)?))
        })?;
        let mut items = Vec::new();
        let mut next_marker = None;
        for row in rows {
            let (user, key) = row?;
            if items.len() == max_items {
                next_marker = Some(key);
                break;
            }
            items.push(user);
        }
        Ok(Page { items, next_marker })
    }

    fn delete_user_if_unused(&self, name: &UserName) -> Result<Deletion, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = Self::user_id_by_name(&tx, name)?;
        let d = Dependents {
            access_keys: count(
                &tx,
                "SELECT COUNT(*) FROM access_keys WHERE user_id = ?1",
                &id,
            )?,
            mfa_devices: count(
                &tx,
                "SELECT COUNT(*) FROM mfa_devices WHERE user_id = ?1",
                &id,
            )?,
            policies: count(&tx, &policies::principal_policies("user"), &id)?,
            groups: count(
                &tx,
                "SELECT COUNT(*) FROM group_members WHERE user_id = ?1",
                &id,
            )?,
            ..Dependents::default()
        };
        delete_unless(
            tx,
            d,
            &[
                "DELETE FROM mfa_lockout WHERE principal = ?1",
                "DELETE FROM users WHERE id = ?1",
            ],
            &id,
        )
    }

    fn insert_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Capped, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user_id = owner_sql(owner);
        let keys: i64 = tx.query_row(
            "SELECT COUNT(*) FROM access_keys WHERE user_id IS ?1",
            [user_id],
            |r| r.get(0),
        )?;
        if keys >= i64::from(limit) {
            return Ok(Capped::AtLimit);
        }
        tx.execute(
            "INSERT INTO access_keys (id, user_id, secret_blob, status, created_at)
             VALUES (?1, ?2, ?3, 'Active', ?4)",
            params![id.as_str(), user_id, secret_blob, ts(now)],
        )?;
        tx.commit()?;
        Ok(Capped::Inserted)
    }

    fn get_access_key(&self, id: &AccessKeyId) -> Result<Option<AccessKeyRecord>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT k.id, k.secret_blob, k.status, k.created_at,
                        u.id, u.name, u.path, u.created_at, k.user_id IS NULL
                 FROM access_keys k LEFT JOIN users u ON u.id = k.user_id
                 WHERE k.id = ?1",
                [id.as_str()],
                |r| {
                    let is_root: bool = r.get(8)?;
                    let owner = if is_root {
                        Owner::Root
                    } else {
                        Owner::User(user_from_row(r, 4)?)
                    };
                    let kid: String = r.get(0)?;
                    Ok(AccessKeyRecord {
                        id: AccessKeyId::parse(&kid).map_err(corrupt)?,
                        owner,
                        secret_blob: r.get(1)?,
                        status: key_status(&r.get::<_, String>(2)?)?,
                        created: from_ts(r.get(3)?),
                    })
                },
            )
            .optional()?)
    }

    fn list_access_keys(&self, owner: &OwnerRef) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let conn = self.conn()?;
        let owner_full = match owner {
            OwnerRef::Root => Owner::Root,
            OwnerRef::User(id) => Owner::User(
                conn.query_row(
                    &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                    [id],
                    |r| user_from_row(r, 0),
                )
                .optional()?
                .ok_or(StoreError::NotFound(Missing::UserId))?,
            ),
        };
        let mut stmt = conn.prepare(
            "SELECT id, secret_blob, status, created_at FROM access_keys
             WHERE user_id IS ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([owner_sql(owner)], |r| {
            let kid: String = r.get(0)?;
            Ok(AccessKeyRecord {
                id: AccessKeyId::parse(&kid).map_err(corrupt)?,
                owner: owner_full.clone(),
                secret_blob: r.get(1)?,
                status: key_status(&r.get::<_, String>(2)?)?,
                created: from_ts(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn update_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        status: KeyStatus,
    ) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "UPDATE access_keys SET status = ?1 WHERE id = ?2 AND user_id IS ?3",
            params![status.as_str(), id.as_str(), owner_sql(owner)],
        )?;
        touched(n, || Missing::AccessKey(id.clone()))
    }

    fn delete_access_key(&self, owner: &OwnerRef, id: &AccessKeyId) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM access_keys WHERE id = ?1 AND user_id IS ?2",
            params![id.as_str(), owner_sql(owner)],
        )?;
        touched(n, || Missing::AccessKey(id.clone()))
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        audit::insert(&tx, events)?;
        tx.commit()?;
        Ok(())
    }

    fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(audit::recent(&*self.conn()?, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::store::contract::tests!(SqliteStore::open_in_memory().unwrap());

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        drop(c);
        let e = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("newer than this build"), "{e}");
    }

    #[test]
    fn audit_rows_from_before_aggregation_read_as_single_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let c = Connection::open(&path).unwrap();
        for sql in &MIGRATIONS[..4] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute(
            "INSERT INTO audit (at, action, outcome) VALUES (1772323200, 'iam:ListUsers', 'success')",
            [],
        )
        .unwrap();
        drop(c);
        let s = SqliteStore::open(&path).unwrap();
        let old = s.recent_audit(10).unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!((old[0].count, old[0].last_at), (1, None));
        let aggregate = AuditEvent {
            count: 5000,
            last_at: Some(from_ts(1_772_323_259)),
            ..AuditEvent::single(
                from_ts(1_772_323_200),
                "sts:GetCallerIdentity",
                crate::domain::Outcome::Failure,
            )
        };
        s.append_audit(std::slice::from_ref(&aggregate)).unwrap();
        assert_eq!(s.recent_audit(1).unwrap(), [aggregate]);
    }

    #[test]
    fn garbage_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let e = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("unreadable"), "{e}");
    }
}
