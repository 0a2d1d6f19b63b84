//! The embedded SQLite backend.
//!
//! One connection behind a mutex: a single writer removes SQLITE_BUSY handling and the WAL-reset
//! race (security.md section 6.2). The connection runs WAL with `synchronous=FULL`, so every
//! committed transaction (a consumed TOTP step, a failure counter, a revocation) survives power
//! loss before the answer that depends on it leaves the broker. Read-modify-write sequences use
//! `BEGIN IMMEDIATE` so a read lock is never upgraded mid-transaction.

use super::migrations::{MIGRATIONS, latest_version};
use super::{AccessKeyRecord, AuditEvent, Outcome, Owner, OwnerRef, Page, Store, StoreError, User};
use crate::ids::{AccessKeyId, IamPath, KeyStatus, UserName};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use time::OffsetDateTime;

/// Maximum access keys per principal, as AWS allows.
pub const MAX_ACCESS_KEYS: i64 = 2;

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

pub(super) fn user_from_row(row: &Row<'_>, base: usize) -> rusqlite::Result<User> {
    let name: String = row.get(base + 1)?;
    let path: String = row.get(base + 2)?;
    Ok(User {
        id: row.get(base)?,
        name: UserName::parse(&name).map_err(corrupt)?,
        path: IamPath::parse("path", &path).map_err(corrupt)?,
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
            .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
        Self::setup(conn, true)
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?, false)
    }

    fn setup(mut conn: Connection, file: bool) -> Result<Self, StoreError> {
        let bad = |e: rusqlite::Error| StoreError::Open(format!("the database is unreadable: {e}"));
        if file {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(bad)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Open(format!(
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
            return Err(StoreError::Open(format!(
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
        conn.query_row(
            "SELECT id FROM users WHERE name_lower = ?1",
            [name.as_str().to_lowercase()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("The user with name {name} cannot be found.")))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::Open(format!(
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
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()?
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
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
        let conn = self.conn()?;
        let r = conn.execute(
            "INSERT INTO users (id, name, name_lower, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                user.id,
                user.name.as_str(),
                user.name.as_str().to_lowercase(),
                user.path.as_str(),
                ts(user.created)
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::AlreadyExists(format!(
                    "User with name {} already exists.",
                    user.name
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn get_user(&self, name: &UserName) -> Result<Option<User>, StoreError> {
        Ok(self
            .conn()?
            .query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE name_lower = ?1"),
                [name.as_str().to_lowercase()],
                |r| user_from_row(r, 0),
            )
            .optional()?)
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

    fn delete_user(&self, name: &UserName) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = Self::user_id_by_name(&tx, name)?;
        let keys: i64 = tx.query_row(
            "SELECT COUNT(*) FROM access_keys WHERE user_id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        if keys > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        let devices: i64 = tx.query_row(
            "SELECT COUNT(*) FROM mfa_devices WHERE user_id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        if devices > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete entity, must remove MFA device first.".into(),
            ));
        }
        let attached: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM policy_attachments WHERE principal_kind = 'user' AND principal_id = ?1)
                  + (SELECT COUNT(*) FROM inline_policies WHERE principal_kind = 'user' AND principal_id = ?1)",
            [&id],
            |r| r.get(0),
        )?;
        if attached > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        let groups: i64 = tx.query_row(
            "SELECT COUNT(*) FROM group_members WHERE user_id = ?1",
            [&id],
            |r| r.get(0),
        )?;
        if groups > 0 {
            return Err(StoreError::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        tx.execute("DELETE FROM mfa_lockout WHERE principal = ?1", [&id])?;
        tx.execute("DELETE FROM users WHERE id = ?1", [&id])?;
        tx.commit()?;
        Ok(())
    }

    fn create_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user_id = owner_sql(owner);
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM access_keys WHERE user_id IS ?1",
            [user_id],
            |r| r.get(0),
        )?;
        if count >= MAX_ACCESS_KEYS {
            return Err(StoreError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"
            )));
        }
        tx.execute(
            "INSERT INTO access_keys (id, user_id, secret_blob, status, created_at)
             VALUES (?1, ?2, ?3, 'Active', ?4)",
            params![id.as_str(), user_id, secret_blob, ts(now)],
        )?;
        tx.commit()?;
        Ok(())
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
                .ok_or_else(|| StoreError::NotFound("The user cannot be found.".into()))?,
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
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "The Access Key with id {id} cannot be found."
            )));
        }
        Ok(())
    }

    fn delete_access_key(&self, owner: &OwnerRef, id: &AccessKeyId) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM access_keys WHERE id = ?1 AND user_id IS ?2",
            params![id.as_str(), owner_sql(owner)],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "The Access Key with id {id} cannot be found."
            )));
        }
        Ok(())
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit (at, principal, access_key_id, action, source, outcome, error_code, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in events {
                stmt.execute(params![
                    ts(e.at),
                    e.principal,
                    e.access_key_id,
                    e.action,
                    e.source,
                    e.outcome.as_str(),
                    e.error_code,
                    e.detail
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT at, principal, access_key_id, action, source, outcome, error_code, detail
             FROM audit ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
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
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            id: crate::ids::generate_unique_id("AIDA"),
            name: UserName::parse(name).unwrap(),
            path: IamPath::root(),
            created: from_ts(1_700_000_000),
        }
    }

    #[test]
    fn user_names_are_unique_case_insensitively() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.create_user(&user("Alice")).unwrap();
        let e = s.create_user(&user("alice")).unwrap_err();
        assert!(matches!(e, StoreError::AlreadyExists(_)), "{e}");
        let found = s
            .get_user(&UserName::parse("ALICE").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(found.name.as_str(), "Alice", "case is preserved");
    }

    #[test]
    fn third_access_key_is_refused_and_not_stored() {
        let s = SqliteStore::open_in_memory().unwrap();
        let u = user("bob");
        s.create_user(&u).unwrap();
        let owner = OwnerRef::User(u.id.clone());
        for _ in 0..2 {
            s.create_access_key(&owner, &AccessKeyId::generate_long_term(), b"x", from_ts(0))
                .unwrap();
        }
        let e = s
            .create_access_key(&owner, &AccessKeyId::generate_long_term(), b"x", from_ts(0))
            .unwrap_err();
        assert!(matches!(e, StoreError::LimitExceeded(_)));
        assert_eq!(s.list_access_keys(&owner).unwrap().len(), 2);
    }

    #[test]
    fn user_with_keys_cannot_be_deleted() {
        let s = SqliteStore::open_in_memory().unwrap();
        let u = user("carol");
        s.create_user(&u).unwrap();
        let k = AccessKeyId::generate_long_term();
        s.create_access_key(&OwnerRef::User(u.id.clone()), &k, b"x", from_ts(0))
            .unwrap();
        let e = s.delete_user(&u.name).unwrap_err();
        assert!(matches!(e, StoreError::DeleteConflict(_)));
        assert!(s.get_user(&u.name).unwrap().is_some(), "nothing changed");
        s.delete_access_key(&OwnerRef::User(u.id.clone()), &k)
            .unwrap();
        s.delete_user(&u.name).unwrap();
        assert!(s.get_user(&u.name).unwrap().is_none());
    }

    #[test]
    fn keys_are_scoped_to_their_owner() {
        let s = SqliteStore::open_in_memory().unwrap();
        let a = user("a1");
        let b = user("b1");
        s.create_user(&a).unwrap();
        s.create_user(&b).unwrap();
        let k = AccessKeyId::generate_long_term();
        s.create_access_key(&OwnerRef::User(a.id.clone()), &k, b"x", from_ts(0))
            .unwrap();
        let other = OwnerRef::User(b.id.clone());
        assert!(
            s.update_access_key(&other, &k, KeyStatus::Inactive)
                .is_err()
        );
        assert!(s.delete_access_key(&other, &k).is_err());
        let rec = s.get_access_key(&k).unwrap().unwrap();
        assert_eq!(rec.status, KeyStatus::Active);
        assert_eq!(rec.owner, Owner::User(a));
    }

    #[test]
    fn listing_pages_in_name_order() {
        let s = SqliteStore::open_in_memory().unwrap();
        for n in ["c", "a", "b"] {
            s.create_user(&user(n)).unwrap();
        }
        let p1 = s.list_users("/", None, 2).unwrap();
        let names: Vec<_> = p1
            .items
            .iter()
            .map(|u| u.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let p2 = s.list_users("/", p1.next_marker.as_deref(), 2).unwrap();
        assert_eq!(p2.items.len(), 1);
        assert_eq!(p2.items[0].name.as_str(), "c");
        assert!(p2.next_marker.is_none());
    }

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
    fn garbage_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let e = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("unreadable"), "{e}");
    }
}
