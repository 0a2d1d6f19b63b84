//! The data directory: first-start creation and the checks every later start makes.
//!
//! First start on an empty `DIR` creates `master.key` (0600), `broker.db`, an account id, and the
//! root user's first access key, written to `root-credentials` (0600) in the AWS shared-credentials
//! format. Later starts reuse all of it and refuse, with a message naming the problem, a directory
//! that is unreadable, has a newer schema, lacks its master key, or whose master key does not open
//! the database's key check. No start overwrites any of these files.
//!
//! One process at a time: every opener (the server and the offline tools such as `recover-root`)
//! holds an exclusive advisory lock on `broker.lock` for as long as it uses the directory, so a
//! second `serve`, or an offline tool run while the broker serves, is refused instead of
//! writing the same database with its own caches and in-memory state. The lock is released
//! when the process exits, however it exits; the file itself stays and holds the last holder's
//! process id for the error message.
//!
//! Crash safety: files are written to a temporary name, synced and renamed. The root credentials
//! are staged as `root-credentials.tmp` before the database commit and renamed after it, so a crash
//! in between is finished by the next start instead of losing the only root key.

use crate::crypto::{Binding, MASTER_KEY_LEN, MasterKey};
use crate::domain::Store;
use crate::ids::{AccessKeyId, AccountId};
use crate::store::sqlite::SqliteStore;
use rand::Rng;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// File names inside the data dir.
pub const DB_FILE: &str = "broker.db";
pub const MASTER_KEY_FILE: &str = "master.key";
pub const ROOT_CREDENTIALS_FILE: &str = "root-credentials";
const ROOT_CREDENTIALS_TMP: &str = "root-credentials.tmp";
pub const LOCK_FILE: &str = "broker.lock";

const META_ACCOUNT: &str = "account_id";
const META_KEY_CHECK: &str = "master_key_check";
const META_CREATED: &str = "created_at";
const KEY_CHECK_PLAINTEXT: &[u8] = b"sts-broker master key check v1";

/// Why a data dir cannot be used. Every message names the path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data dir `{path}`: {what}")]
    Io { path: PathBuf, what: String },
    #[error("data dir `{0}`: the store cannot be opened: {1}")]
    Store(PathBuf, String),
    #[error(
        "data dir `{0}`: `master.key` is missing but `broker.db` holds encrypted secrets; restore the \
         master.key that belongs to this database (it cannot be recreated)"
    )]
    MasterKeyMissing(PathBuf),
    #[error(
        "data dir `{0}`: `master.key` does not match `broker.db` (the key check does not decrypt); \
         this is another broker's key or a damaged file"
    )]
    MasterKeyMismatch(PathBuf),
    #[error(
        "data dir `{0}`: `master.key` is damaged: expected {MASTER_KEY_LEN} bytes as 64 hex characters"
    )]
    MasterKeyFormat(PathBuf),
    #[error(
        "data dir `{0}`: `master.key` is readable by group or others (mode {1:o}); run `chmod 600` on it"
    )]
    MasterKeyPermissions(PathBuf, u32),
    #[error("data dir `{0}`: the database was created for account {1}, not {2}")]
    AccountMismatch(PathBuf, String, String),
    #[error(
        "data dir `{0}`: `root-credentials` already exists but the database is new; refusing to \
         overwrite it (move it away, or point --data-dir at the directory it belongs to)"
    )]
    RootCredentialsExist(PathBuf),
    #[error(
        "data dir `{0}` is in use by another sts-broker process ({1}); stop it first, or point \
         --data-dir at another directory"
    )]
    InUse(PathBuf, String),
}

/// The exclusive hold on a data dir; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock(#[expect(dead_code, reason = "held for its lock, never read")] fs::File);

/// Takes the data dir's lock without waiting.
fn lock_dir(dir: &Path) -> Result<DirLock, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .map_or_else(
                    || "process id unknown".to_owned(),
                    |pid| format!("pid {pid}"),
                );
            return Err(DataDirError::InUse(dir.to_owned(), holder));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io_err(&path, e)),
    }
    // Best effort: the pid only improves the message a second opener gets.
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(DirLock(file))
}

/// An opened data dir.
pub struct Opened {
    pub store: Arc<SqliteStore>,
    pub master: Arc<MasterKey>,
    pub account: AccountId,
    /// Set on the start that created the directory's contents.
    pub first_start: Option<FirstStart>,
    pub dir: PathBuf,
    /// Keep it for as long as the directory is in use.
    pub lock: DirLock,
}

/// What a first start created.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub root_access_key_id: AccessKeyId,
    pub root_credentials_path: PathBuf,
}

fn io_err(path: &Path, what: impl std::fmt::Display) -> DataDirError {
    DataDirError::Io {
        path: path.to_owned(),
        what: what.to_string(),
    }
}

/// Writes `contents` to `dir/name` with mode 0600 via a synced temporary file and a rename.
/// Refuses to replace an existing file.
pub fn write_private_file(dir: &Path, name: &str, contents: &[u8]) -> Result<(), DataDirError> {
    let target = dir.join(name);
    if target.exists() {
        return Err(io_err(&target, "exists already; refusing to overwrite it"));
    }
    let tmp = dir.join(format!(".{name}.partial"));
    let _ = fs::remove_file(&tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, e))?;
        f.write_all(contents).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
    }
    fs::rename(&tmp, &target).map_err(|e| io_err(&target, e))?;
    sync_dir(dir);
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The AWS shared-credentials text for a key.
pub fn credentials_file_text(akid: &AccessKeyId, secret: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "[default]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n"
    ))
}

fn read_master_key(dir: &Path) -> Result<Option<MasterKey>, DataDirError> {
    let path = dir.join(MASTER_KEY_FILE);
    let meta = match fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(DataDirError::MasterKeyPermissions(path, mode));
    }
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(|e| io_err(&path, e))?);
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| DataDirError::MasterKeyFormat(path.clone()))?,
    );
    MasterKey::from_bytes(&bytes)
        .map(Some)
        .map_err(|_| DataDirError::MasterKeyFormat(path))
}

fn key_check_binding(account: &str) -> Binding<'_> {
    Binding {
        kind: "master-key-check",
        owner: account,
    }
}

/// Opens a data dir that must already have been initialised by `serve` (for offline tools).
pub fn open_existing(dir: &Path) -> Result<Opened, DataDirError> {
    if !dir.join(DB_FILE).exists() {
        return Err(io_err(
            dir,
            "has no broker.db: it is not an sts-broker data dir (start `sts-broker serve` on it first)",
        ));
    }
    let opened = open_or_init(dir, None, OffsetDateTime::now_utc())?;
    if opened.first_start.is_some() {
        return Err(io_err(
            dir,
            "was not initialised; it has been now, by mistake: remove it",
        ));
    }
    Ok(opened)
}

/// Replaces `root-credentials` after an offline recovery: the old file is kept beside it as
/// `root-credentials.replaced-<unix time>`.
pub fn replace_root_credentials(
    dir: &Path,
    akid: &AccessKeyId,
    secret: &str,
    now: OffsetDateTime,
) -> Result<PathBuf, DataDirError> {
    let target = dir.join(ROOT_CREDENTIALS_FILE);
    if target.exists() {
        let kept = dir.join(format!(
            "{ROOT_CREDENTIALS_FILE}.replaced-{}",
            now.unix_timestamp()
        ));
        fs::rename(&target, &kept).map_err(|e| io_err(&kept, e))?;
    }
    write_private_file(
        dir,
        ROOT_CREDENTIALS_FILE,
        credentials_file_text(akid, secret).as_bytes(),
    )?;
    Ok(target)
}

/// Opens `dir`, creating its contents on first start.
pub fn open_or_init(
    dir: &Path,
    account_flag: Option<&AccountId>,
    now: OffsetDateTime,
) -> Result<Opened, DataDirError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    fs::read_dir(dir).map_err(|e| io_err(dir, format!("not readable: {e}")))?;
    let lock = lock_dir(dir)?;

    let db_path = dir.join(DB_FILE);
    if !db_path.exists() {
        // SQLite gives the -wal and -shm files the database's mode, so 0600 here covers all three.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db_path)
            .map_err(|e| io_err(&db_path, e))?;
    }
    let store = SqliteStore::open(&db_path)
        .map_err(|e| DataDirError::Store(dir.to_owned(), e.to_string()))?;
    let store_err =
        |e: crate::domain::StoreError| DataDirError::Store(dir.to_owned(), e.to_string());
    let existing_account = store.get_meta(META_ACCOUNT).map_err(store_err)?;

    match existing_account {
        Some(account) => {
            let master = read_master_key(dir)?
                .ok_or_else(|| DataDirError::MasterKeyMissing(dir.to_owned()))?;
            let check = store.get_meta(META_KEY_CHECK).map_err(store_err)?;
            let blob = check
                .as_deref()
                .and_then(|c| hex::decode(c).ok())
                .ok_or_else(|| {
                    DataDirError::Store(dir.to_owned(), "the key check is missing".into())
                })?;
            match master.open(key_check_binding(&account), &blob) {
                Ok(p) if p.as_slice() == KEY_CHECK_PLAINTEXT => {}
                _ => return Err(DataDirError::MasterKeyMismatch(dir.to_owned())),
            }
            if let Some(flag) = account_flag
                && flag.as_str() != account
            {
                return Err(DataDirError::AccountMismatch(
                    dir.to_owned(),
                    account,
                    flag.to_string(),
                ));
            }
            finish_staged_root_credentials(dir)?;
            let account = AccountId::parse(&account)
                .map_err(|e| DataDirError::Store(dir.to_owned(), e.to_string()))?;
            Ok(Opened {
                store: Arc::new(store),
                master: Arc::new(master),
                account,
                first_start: None,
                dir: dir.to_owned(),
                lock,
            })
        }
        None => first_start(dir, store, lock, account_flag, now),
    }
}

fn finish_staged_root_credentials(dir: &Path) -> Result<(), DataDirError> {
    let staged = dir.join(ROOT_CREDENTIALS_TMP);
    let target = dir.join(ROOT_CREDENTIALS_FILE);
    if staged.exists() {
        if target.exists() {
            fs::remove_file(&staged).map_err(|e| io_err(&staged, e))?;
        } else {
            fs::rename(&staged, &target).map_err(|e| io_err(&target, e))?;
            sync_dir(dir);
        }
    }
    Ok(())
}

fn first_start(
    dir: &Path,
    store: SqliteStore,
    lock: DirLock,
    account_flag: Option<&AccountId>,
    now: OffsetDateTime,
) -> Result<Opened, DataDirError> {
    let creds_path = dir.join(ROOT_CREDENTIALS_FILE);
    if creds_path.exists() {
        return Err(DataDirError::RootCredentialsExist(dir.to_owned()));
    }
    // A master.key left by a first start that crashed before its commit is reused; any other
    // key file next to an empty database is equally safe to use, since nothing is sealed yet.
    let master = match read_master_key(dir)? {
        Some(k) => k,
        None => {
            let raw = MasterKey::generate();
            let text = Zeroizing::new(format!("{}\n", hex::encode(raw.as_ref())));
            write_private_file(dir, MASTER_KEY_FILE, text.as_bytes())?;
            MasterKey::from_bytes(raw.as_ref())
                .map_err(|_| DataDirError::MasterKeyFormat(dir.to_owned()))?
        }
    };
    let account = match account_flag {
        Some(a) => a.clone(),
        None => {
            let mut rng = rand::rngs::OsRng;
            let digits: String = (0..12)
                .map(|i| {
                    // No leading zero, so the id survives tools that treat it as a number.
                    let d: u8 = if i == 0 {
                        rng.gen_range(1..10)
                    } else {
                        rng.gen_range(0..10)
                    };
                    char::from(b'0' + d)
                })
                .collect();
            AccountId::parse(&digits).map_err(|e| io_err(dir, e))?
        }
    };
    let store_err =
        |e: crate::domain::StoreError| DataDirError::Store(dir.to_owned(), e.to_string());
    let seal_err = |e: crate::crypto::CryptoError| io_err(dir, e);

    let check = master
        .seal(key_check_binding(account.as_str()), KEY_CHECK_PLAINTEXT)
        .map_err(seal_err)?;
    let root_key = AccessKeyId::generate_long_term();
    let secret = crate::crypto::random_secret_access_key();
    let blob = master
        .seal(
            crate::broker::access_key_binding(&root_key, "root"),
            secret.as_bytes(),
        )
        .map_err(seal_err)?;

    let staged = dir.join(ROOT_CREDENTIALS_TMP);
    let _ = fs::remove_file(&staged);
    write_private_file(
        dir,
        ROOT_CREDENTIALS_TMP,
        credentials_file_text(&root_key, &secret).as_bytes(),
    )?;
    let check_hex = hex::encode(check);
    let created = now.unix_timestamp().to_string();
    store
        .initialise(
            &[
                (META_ACCOUNT, account.as_str()),
                (META_KEY_CHECK, &check_hex),
                (META_CREATED, &created),
            ],
            &root_key,
            &blob,
            now,
        )
        .map_err(store_err)?;
    finish_staged_root_credentials(dir)?;
    Ok(Opened {
        store: Arc::new(store),
        master: Arc::new(master),
        account,
        first_start: Some(FirstStart {
            root_access_key_id: root_key,
            root_credentials_path: creds_path,
        }),
        dir: dir.to_owned(),
        lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn first_start_creates_private_files_and_restart_reuses_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let a = open_or_init(&dir, None, now()).unwrap();
        let first = a.first_start.clone().unwrap();
        for f in [MASTER_KEY_FILE, ROOT_CREDENTIALS_FILE] {
            let mode = fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        let creds = fs::read_to_string(dir.join(ROOT_CREDENTIALS_FILE)).unwrap();
        assert!(creds.starts_with("[default]\naws_access_key_id = AKIA"));
        assert!(creds.contains(first.root_access_key_id.as_str()));
        let account = a.account.clone();
        drop(a);

        let b = open_or_init(&dir, None, now()).unwrap();
        assert!(b.first_start.is_none());
        assert_eq!(b.account, account, "account id is chosen once");
        assert_eq!(
            fs::read_to_string(dir.join(ROOT_CREDENTIALS_FILE)).unwrap(),
            creds,
            "a restart does not rewrite root-credentials"
        );
    }

    #[test]
    fn foreign_master_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (d1, d2) = (tmp.path().join("one"), tmp.path().join("two"));
        drop(open_or_init(&d1, None, now()).unwrap());
        drop(open_or_init(&d2, None, now()).unwrap());
        fs::remove_file(d1.join(MASTER_KEY_FILE)).unwrap();
        fs::copy(d2.join(MASTER_KEY_FILE), d1.join(MASTER_KEY_FILE)).unwrap();
        let e = open_or_init(&d1, None, now()).err().unwrap();
        assert!(matches!(e, DataDirError::MasterKeyMismatch(_)), "{e}");
    }

    #[test]
    fn missing_master_key_is_refused_not_regenerated() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        drop(open_or_init(&dir, None, now()).unwrap());
        fs::remove_file(dir.join(MASTER_KEY_FILE)).unwrap();
        let e = open_or_init(&dir, None, now()).err().unwrap();
        assert!(matches!(e, DataDirError::MasterKeyMissing(_)), "{e}");
        assert!(!dir.join(MASTER_KEY_FILE).exists(), "no new key was made");
    }

    #[test]
    fn loose_master_key_permissions_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        drop(open_or_init(&dir, None, now()).unwrap());
        fs::set_permissions(dir.join(MASTER_KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        let e = open_or_init(&dir, None, now()).err().unwrap();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn account_flag_is_kept_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let acct = AccountId::parse("111122223333").unwrap();
        let a = open_or_init(&dir, Some(&acct), now()).unwrap();
        assert_eq!(a.account, acct);
        drop(a);
        let other = AccountId::parse("444455556666").unwrap();
        let e = open_or_init(&dir, Some(&other), now()).err().unwrap();
        assert!(matches!(e, DataDirError::AccountMismatch(..)), "{e}");
        assert!(open_or_init(&dir, Some(&acct), now()).is_ok());
    }

    #[test]
    fn stale_root_credentials_block_a_new_database() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(ROOT_CREDENTIALS_FILE), "[default]\n").unwrap();
        let e = open_or_init(&dir, None, now()).err().unwrap();
        assert!(matches!(e, DataDirError::RootCredentialsExist(_)), "{e}");
        assert_eq!(
            fs::read_to_string(dir.join(ROOT_CREDENTIALS_FILE)).unwrap(),
            "[default]\n"
        );
    }

    #[test]
    fn unreadable_database_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(DB_FILE), vec![7u8; 4096]).unwrap();
        let e = open_or_init(&dir, None, now()).err().unwrap();
        assert!(matches!(e, DataDirError::Store(..)), "{e}");
    }
}
