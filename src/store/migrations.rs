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
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}
