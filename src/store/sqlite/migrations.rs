//! Versioned schema migrations: a `PRAGMA user_version` ladder. Migration `i` (0-based) takes the
//! schema from version `i` to `i + 1`; each runs in its own transaction with the version bump, so a
//! crash mid-upgrade leaves the previous version intact. A store whose version is newer than this
//! build knows is refused rather than guessed at.

/// The ladder. Append only; never edit a migration that has shipped.
pub const MIGRATIONS: &[&str] = &[
    // 1: metadata, users, access keys, audit trail.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE users (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        name_lower TEXT NOT NULL UNIQUE,
        path       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;

    -- user_id NULL means the account root user.
    CREATE TABLE access_keys (
        id          TEXT PRIMARY KEY,
        user_id     TEXT REFERENCES users(id) ON DELETE RESTRICT,
        secret_blob BLOB NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('Active', 'Inactive')),
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX access_keys_by_user ON access_keys(user_id);

    CREATE TABLE audit (
        id            INTEGER PRIMARY KEY,
        at            INTEGER NOT NULL,
        principal     TEXT,
        access_key_id TEXT,
        action        TEXT NOT NULL,
        source        TEXT,
        outcome       TEXT NOT NULL,
        error_code    TEXT,
        detail        TEXT
    ) STRICT;
    "#,
    // 2: MFA devices, the per-principal failure counter, and the credential report.
    r#"
    -- owner_kind NULL = unassigned; 'root' = the account root user; 'user' = users(user_id).
    -- last_step is the replay guard (RFC 6238 section 5.2); it is never reset, not even when the
    -- device is deactivated and given to someone else, so no step is ever accepted twice.
    CREATE TABLE mfa_devices (
        id           TEXT PRIMARY KEY,
        serial       TEXT NOT NULL,
        serial_lower TEXT NOT NULL UNIQUE,
        kind         TEXT NOT NULL CHECK (kind IN ('virtual', 'hardware')),
        seed_blob    BLOB NOT NULL,
        algorithm    TEXT NOT NULL,
        digits       INTEGER NOT NULL,
        period       INTEGER NOT NULL,
        owner_kind   TEXT CHECK (owner_kind IN ('root', 'user')),
        user_id      TEXT REFERENCES users(id) ON DELETE RESTRICT,
        enabled_at   INTEGER,
        last_step    INTEGER,
        drift        INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        CHECK ((owner_kind IS NULL AND user_id IS NULL AND enabled_at IS NULL)
            OR (owner_kind = 'root' AND user_id IS NULL AND enabled_at IS NOT NULL)
            OR (owner_kind = 'user' AND user_id IS NOT NULL AND enabled_at IS NOT NULL))
    ) STRICT;
    CREATE INDEX mfa_devices_by_user ON mfa_devices(user_id);

    -- principal: 'root' or a user id.
    CREATE TABLE mfa_lockout (
        principal       TEXT PRIMARY KEY,
        failures        INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE credential_report (
        id           INTEGER PRIMARY KEY CHECK (id = 1),
        generated_at INTEGER NOT NULL,
        content      BLOB NOT NULL
    ) STRICT;
    "#,
    // 3: session-token signing keys, revocations, roles.
    r#"
    -- private_blob: the Ed25519 seed sealed under the master key, bound to kid.
    -- A retired key is still published (and verifies) until publish_until, when the last token
    -- it signed has expired.
    CREATE TABLE signing_keys (
        kid           TEXT PRIMARY KEY,
        public_key    BLOB NOT NULL,
        private_blob  BLOB NOT NULL,
        created_at    INTEGER NOT NULL,
        retired_at    INTEGER,
        publish_until INTEGER
    ) STRICT;

    -- Sessions of principal_arn issued before revoked_before are invalid.
    CREATE TABLE session_revocations (
        principal_arn  TEXT PRIMARY KEY,
        revoked_before INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE roles (
        id                   TEXT PRIMARY KEY,
        name                 TEXT NOT NULL,
        name_lower           TEXT NOT NULL UNIQUE,
        path                 TEXT NOT NULL,
        trust_policy         TEXT NOT NULL,
        max_session_duration INTEGER NOT NULL,
        description          TEXT NOT NULL DEFAULT '',
        created_at           INTEGER NOT NULL
    ) STRICT;
    "#,
    // 4: groups, managed and inline policies, attachments.
    r#"
    CREATE TABLE groups (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        name_lower TEXT NOT NULL UNIQUE,
        path       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE group_members (
        group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE RESTRICT,
        user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
        PRIMARY KEY (group_id, user_id)
    ) STRICT;
    CREATE INDEX group_members_by_user ON group_members(user_id);

    CREATE TABLE managed_policies (
        id          TEXT PRIMARY KEY,
        arn         TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        name_lower  TEXT NOT NULL UNIQUE,
        path        TEXT NOT NULL,
        document    TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;

    -- principal_kind: 'user', 'group' or 'role'; principal_id: that entity's unique id.
    CREATE TABLE policy_attachments (
        policy_id      TEXT NOT NULL REFERENCES managed_policies(id) ON DELETE RESTRICT,
        principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'group', 'role')),
        principal_id   TEXT NOT NULL,
        PRIMARY KEY (policy_id, principal_kind, principal_id)
    ) STRICT;
    CREATE INDEX policy_attachments_by_principal ON policy_attachments(principal_kind, principal_id);

    CREATE TABLE inline_policies (
        principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'group', 'role')),
        principal_id   TEXT NOT NULL,
        name           TEXT NOT NULL,
        name_lower     TEXT NOT NULL,
        document       TEXT NOT NULL,
        PRIMARY KEY (principal_kind, principal_id, name_lower)
    ) STRICT;
    "#,
    // 5: aggregated audit records (failed authentications): how many events a row stands for,
    // and when the last of them happened. Rows written before are single events.
    r#"
    ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN last_at INTEGER;
    "#,
    // 6: the write-health probe's row.
    HEALTH,
];

/// The write-health probe's row (`health.rs`): one row the broker rewrites every few seconds to
/// learn whether the store can still commit. Kept apart so it can move to the end of the ladder
/// when other migrations land before it.
const HEALTH: &str = r#"
    CREATE TABLE health (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        probed_at INTEGER NOT NULL
    ) STRICT;
    "#;

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
