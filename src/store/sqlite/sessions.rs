//! SQLite implementation of [`SessionStore`]: signing keys, revocations, roles.

use super::policies::principal_policies;
use super::{
    SqliteStore, count, delete_unless, from_ts, id_of, name_and_path, rows, touched, ts, unique,
    user_from_row,
};
use crate::domain::{
    Deletion, Dependents, Missing, Role, SessionStore, SigningKeyRecord, StoreError, Taken, User,
};
use crate::ids::RoleName;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use time::OffsetDateTime;

const ROLE_COLS: &str =
    "id, name, path, trust_policy, max_session_duration, description, created_at";

fn role_from_row(r: &Row<'_>) -> rusqlite::Result<Role> {
    let (name, path) = name_and_path(r, 1, RoleName::parse)?;
    Ok(Role {
        id: r.get(0)?,
        name,
        path,
        trust_policy: r.get(3)?,
        max_session_duration: r.get(4)?,
        description: r.get(5)?,
        created: from_ts(r.get(6)?),
    })
}

impl SessionStore for SqliteStore {
    fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        rows(
            &*self.conn()?,
            "SELECT kid, public_key, private_blob, created_at, retired_at, publish_until
             FROM signing_keys ORDER BY created_at DESC, rowid DESC",
            [],
            |r| {
                Ok(SigningKeyRecord {
                    kid: r.get(0)?,
                    public_key: r.get(1)?,
                    private_blob: r.get(2)?,
                    created: from_ts(r.get(3)?),
                    retired: r.get::<_, Option<i64>>(4)?.map(from_ts),
                    publish_until: r.get::<_, Option<i64>>(5)?.map(from_ts),
                })
            },
        )
    }

    fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        now: OffsetDateTime,
        publish_retired_until: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let previous: Option<String> = tx
            .query_row(
                "SELECT kid FROM signing_keys WHERE retired_at IS NULL
                 ORDER BY created_at DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            "UPDATE signing_keys SET retired_at = ?1, publish_until = ?2 WHERE retired_at IS NULL",
            params![ts(now), ts(publish_retired_until)],
        )?;
        tx.execute(
            "INSERT INTO signing_keys (kid, public_key, private_blob, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![new.kid, new.public_key, new.private_blob, ts(new.created)],
        )?;
        tx.commit()?;
        Ok(previous)
    }

    fn prune_signing_keys(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM signing_keys WHERE publish_until IS NOT NULL AND publish_until < ?1",
            [ts(now)],
        )?;
        Ok(())
    }

    fn meta_get_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            [key, value],
        )?;
        let v: String =
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))?;
        tx.commit()?;
        Ok(v)
    }

    fn revocations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        rows(
            &*self.conn()?,
            "SELECT principal_arn, revoked_before FROM session_revocations",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn set_revocation(&self, principal_arn: &str, revoked_before: i64) -> Result<(), StoreError> {
        // A later revocation never shortens an earlier, wider one.
        self.conn()?.execute(
            "INSERT INTO session_revocations (principal_arn, revoked_before) VALUES (?1, ?2)
             ON CONFLICT (principal_arn) DO UPDATE SET revoked_before = max(revoked_before, ?2)",
            params![principal_arn, revoked_before],
        )?;
        Ok(())
    }

    fn create_role(&self, role: &Role) -> Result<(), StoreError> {
        let r = self.conn()?.execute(
            "INSERT INTO roles (id, name, name_lower, path, trust_policy, max_session_duration,
                 description, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                role.id,
                role.name.as_str(),
                role.name.as_str().to_lowercase(),
                role.path.as_str(),
                role.trust_policy,
                role.max_session_duration,
                role.description,
                ts(role.created)
            ],
        );
        unique(r, || Taken::Role(role.name.clone()))
    }

    fn get_role(&self, name: &RoleName) -> Result<Option<Role>, StoreError> {
        self.by_name(ROLE_COLS, "roles", name.as_str(), role_from_row)
    }

    fn get_role_by_id(&self, id: &str) -> Result<Option<Role>, StoreError> {
        self.row(
            &format!("SELECT {ROLE_COLS} FROM roles WHERE id = ?1"),
            [id],
            role_from_row,
        )
    }

    fn update_trust_policy(&self, name: &RoleName, policy: &str) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "UPDATE roles SET trust_policy = ?1 WHERE name_lower = ?2",
            params![policy, name.as_str().to_lowercase()],
        )?;
        touched(n, || Missing::Role(name.clone()))
    }

    fn delete_role_if_unused(&self, name: &RoleName) -> Result<Deletion, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = id_of(
            &tx,
            "SELECT id FROM roles WHERE name_lower = ?1",
            &name.as_str().to_lowercase(),
            || Missing::Role(name.clone()),
        )?;
        let d = Dependents {
            policies: count(&tx, &principal_policies("role"), &id)?,
            ..Dependents::default()
        };
        delete_unless(tx, d, &["DELETE FROM roles WHERE id = ?1"], &id)
    }

    fn get_user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.row(
            "SELECT id, name, path, created_at FROM users WHERE id = ?1",
            [id],
            |r| user_from_row(r, 0),
        )
    }
}
