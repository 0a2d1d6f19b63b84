//! SQLite implementation of [`PolicyStore`]: groups, managed and inline policies, attachments.

use super::{
    SqliteStore, count, delete_unless, from_ts, id_of, name_and_path, rows, touched, ts, unique,
    user_from_row,
};
use crate::domain::{
    Deletion, Dependents, EffectivePolicy, Group, ManagedPolicy, Missing, PolicyStore,
    PrincipalKind, StoreError, Taken, User,
};
use crate::ids::{GroupName, PolicyName};
use rusqlite::{Connection, Row, TransactionBehavior, params};

const POLICY_COLS: &str = "p.id, p.arn, p.name, p.path, p.document, p.description, p.created_at, \
     p.updated_at, (SELECT COUNT(*) FROM policy_attachments a WHERE a.policy_id = p.id)";

fn policy_from_row(r: &Row<'_>) -> rusqlite::Result<ManagedPolicy> {
    let (name, path) = name_and_path(r, 2, PolicyName::parse)?;
    Ok(ManagedPolicy {
        id: r.get(0)?,
        arn: r.get(1)?,
        name,
        path,
        document: r.get(4)?,
        description: r.get(5)?,
        created: from_ts(r.get(6)?),
        updated: from_ts(r.get(7)?),
        attachment_count: r.get(8)?,
    })
}

fn policy_id(conn: &Connection, arn: &str) -> Result<String, StoreError> {
    id_of(
        conn,
        "SELECT id FROM managed_policies WHERE arn = ?1",
        arn,
        || Missing::Policy(arn.to_owned()),
    )
}

/// Counts the managed policies attached to and inline policies embedded in a principal of
/// `kind` (`?1` is its id).
pub(super) fn principal_policies(kind: &str) -> String {
    format!(
        "SELECT (SELECT COUNT(*) FROM policy_attachments WHERE principal_kind = '{kind}' AND principal_id = ?1)
              + (SELECT COUNT(*) FROM inline_policies WHERE principal_kind = '{kind}' AND principal_id = ?1)"
    )
}

impl PolicyStore for SqliteStore {
    fn create_group(&self, g: &Group) -> Result<(), StoreError> {
        let r = self.conn()?.execute(
            "INSERT INTO groups (id, name, name_lower, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![g.id, g.name.as_str(), g.name.as_str().to_lowercase(), g.path.as_str(), ts(g.created)],
        );
        unique(r, || Taken::Group(g.name.clone()))
    }

    fn get_group(&self, name: &GroupName) -> Result<Option<Group>, StoreError> {
        let cols = "id, name, path, created_at";
        self.by_name(cols, "groups", name.as_str(), |r| {
            let (name, path) = name_and_path(r, 1, GroupName::parse)?;
            Ok(Group {
                id: r.get(0)?,
                name,
                path,
                created: from_ts(r.get(3)?),
            })
        })
    }

    fn group_members(&self, group_id: &str) -> Result<Vec<User>, StoreError> {
        rows(
            &*self.conn()?,
            "SELECT u.id, u.name, u.path, u.created_at FROM group_members m JOIN users u ON u.id = m.user_id
             WHERE m.group_id = ?1 ORDER BY u.name_lower",
            [group_id],
            |r| user_from_row(r, 0),
        )
    }

    fn add_user_to_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO group_members (group_id, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [group_id, user_id],
        )?;
        Ok(())
    }

    fn remove_user_from_group(&self, group_id: &str, user_id: &str) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
            [group_id, user_id],
        )?;
        touched(n, || Missing::GroupMember)
    }

    fn delete_group_if_unused(&self, group_id: &str) -> Result<Deletion, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let d = Dependents {
            members: count(
                &tx,
                "SELECT COUNT(*) FROM group_members WHERE group_id = ?1",
                group_id,
            )?,
            policies: count(&tx, &principal_policies("group"), group_id)?,
            ..Dependents::default()
        };
        delete_unless(tx, d, &["DELETE FROM groups WHERE id = ?1"], group_id)
    }

    fn create_managed_policy(&self, p: &ManagedPolicy) -> Result<(), StoreError> {
        let r = self.conn()?.execute(
            "INSERT INTO managed_policies (id, arn, name, name_lower, path, document, description, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                p.id,
                p.arn,
                p.name.as_str(),
                p.name.as_str().to_lowercase(),
                p.path.as_str(),
                p.document,
                p.description,
                ts(p.created),
                ts(p.updated)
            ],
        );
        unique(r, || Taken::Policy(p.name.clone()))
    }

    fn get_managed_policy(&self, arn: &str) -> Result<Option<ManagedPolicy>, StoreError> {
        self.row(
            &format!("SELECT {POLICY_COLS} FROM managed_policies p WHERE p.arn = ?1"),
            [arn],
            policy_from_row,
        )
    }

    fn delete_managed_policy_if_unused(&self, arn: &str) -> Result<Deletion, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = policy_id(&tx, arn)?;
        let d = Dependents {
            attachments: count(
                &tx,
                "SELECT COUNT(*) FROM policy_attachments WHERE policy_id = ?1",
                &id,
            )?,
            ..Dependents::default()
        };
        delete_unless(tx, d, &["DELETE FROM managed_policies WHERE id = ?1"], &id)
    }

    fn list_managed_policies(
        &self,
        only_attached: bool,
        path_prefix: &str,
    ) -> Result<Vec<ManagedPolicy>, StoreError> {
        let all = rows(
            &*self.conn()?,
            &format!(
                "SELECT {POLICY_COLS} FROM managed_policies p
                 WHERE substr(p.path, 1, length(?1)) = ?1 ORDER BY p.name_lower"
            ),
            [path_prefix],
            policy_from_row,
        )?;
        Ok(all
            .into_iter()
            .filter(|p| !only_attached || p.attachment_count > 0)
            .collect())
    }

    fn attach_policy(
        &self,
        arn: &str,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        let id = policy_id(&conn, arn)?;
        conn.execute(
            "INSERT INTO policy_attachments (policy_id, principal_kind, principal_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![id, kind.as_str(), principal_id],
        )?;
        Ok(())
    }

    fn detach_policy(
        &self,
        arn: &str,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM policy_attachments WHERE principal_kind = ?2 AND principal_id = ?3
               AND policy_id = (SELECT id FROM managed_policies WHERE arn = ?1)",
            params![arn, kind.as_str(), principal_id],
        )?;
        touched(n, || Missing::Attachment(arn.to_owned()))
    }

    fn attached_policies(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        rows(
            &*self.conn()?,
            "SELECT p.name, p.arn FROM policy_attachments a JOIN managed_policies p ON p.id = a.policy_id
             WHERE a.principal_kind = ?1 AND a.principal_id = ?2 ORDER BY p.name_lower",
            [kind.as_str(), principal_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn put_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
        document: &str,
    ) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT INTO inline_policies (principal_kind, principal_id, name, name_lower, document)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (principal_kind, principal_id, name_lower) DO UPDATE SET name = ?3, document = ?5",
            params![kind.as_str(), principal_id, name, name.to_lowercase(), document],
        )?;
        Ok(())
    }

    fn get_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.row(
            "SELECT name, document FROM inline_policies
             WHERE principal_kind = ?1 AND principal_id = ?2 AND name_lower = ?3",
            params![kind.as_str(), principal_id, name.to_lowercase()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn delete_inline_policy(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
        name: &str,
    ) -> Result<(), StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM inline_policies WHERE principal_kind = ?1 AND principal_id = ?2 AND name_lower = ?3",
            params![kind.as_str(), principal_id, name.to_lowercase()],
        )?;
        touched(n, || Missing::InlinePolicy {
            kind,
            name: name.to_owned(),
        })
    }

    fn effective_policies(
        &self,
        kind: PrincipalKind,
        principal_id: &str,
    ) -> Result<Vec<EffectivePolicy>, StoreError> {
        let conn = self.conn()?;
        let mut owners = vec![(kind, principal_id.to_owned())];
        if kind == PrincipalKind::User {
            let mut stmt =
                conn.prepare_cached("SELECT group_id FROM group_members WHERE user_id = ?1")?;
            for g in stmt.query_map([principal_id], |r| r.get::<_, String>(0))? {
                owners.push((PrincipalKind::Group, g?));
            }
        }
        let mut out = Vec::new();
        for (k, id) in owners {
            for (sql, source_type) in [
                (
                    "SELECT name, document FROM inline_policies WHERE principal_kind = ?1 AND principal_id = ?2",
                    k.as_str(),
                ),
                (
                    "SELECT p.arn, p.document FROM policy_attachments a JOIN managed_policies p ON p.id = a.policy_id
                     WHERE a.principal_kind = ?1 AND a.principal_id = ?2",
                    "user-managed",
                ),
            ] {
                let mut stmt = conn.prepare_cached(sql)?;
                for row in stmt.query_map([k.as_str(), &id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })? {
                    let (source_id, document) = row?;
                    out.push(EffectivePolicy {
                        source_id,
                        source_type,
                        document,
                    });
                }
            }
        }
        Ok(out)
    }
}
