//! The session cache of the wrapper verbs: one file per (endpoint, access key id, MFA serial,
//! role) under `$XDG_CACHE_HOME/sts-broker/` (else `~/.cache/sts-broker/`), directory 0700, files
//! 0600, each written to a temporary file and renamed into place. Only temporary credentials are
//! stored, never the long-term secret they were obtained with.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// Cached sessions are reused until this long before they expire.
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// What a cached session is for; the cache file's name is a hash of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub endpoint: String,
    pub access_key_id: String,
    pub serial_number: Option<String>,
    pub role_arn: Option<String>,
}

impl Key {
    fn file_name(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.endpoint.trim_end_matches('/'),
            &self.access_key_id,
            self.serial_number.as_deref().unwrap_or(""),
            self.role_arn.as_deref().unwrap_or(""),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        format!("{}.json", &hex::encode(h.finalize())[..32])
    }
}

/// A cached session: the temporary credentials and what they were obtained for.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    pub endpoint: String,
    pub source_access_key_id: String,
    pub serial_number: Option<String>,
    pub role_arn: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds.
    pub expiration: i64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.secret_access_key.zeroize();
        self.session_token.zeroize();
    }
}

impl Entry {
    pub fn matches(&self, key: &Key) -> bool {
        self.endpoint.trim_end_matches('/') == key.endpoint.trim_end_matches('/')
            && self.source_access_key_id == key.access_key_id
            && self.serial_number == key.serial_number
            && self.role_arn == key.role_arn
    }
}

/// The cache directory (not created).
pub fn dir() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("sts-broker"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache/sts-broker")),
        None => bail!("no cache directory: set XDG_CACHE_HOME or HOME, or pass --no-cache"),
    }
}

/// The entry for `key` if it is still good at `now` (more than the margin before its expiry).
/// An unreadable or foreign file is ignored (and replaced by the next store).
pub fn load(key: &Key, now: i64) -> Option<Entry> {
    let path = dir().ok()?.join(key.file_name());
    let text = Zeroizing::new(fs::read_to_string(path).ok()?);
    let e: Entry = serde_json::from_str(&text).ok()?;
    (e.matches(key) && e.expiration - REFRESH_MARGIN_SECS > now).then_some(e)
}

/// Every readable entry in the cache (for `whoami`).
pub fn all() -> Vec<Entry> {
    let Ok(d) = dir() else { return Vec::new() };
    let Ok(rd) = fs::read_dir(d) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| {
            let text = Zeroizing::new(fs::read_to_string(e.path()).ok()?);
            serde_json::from_str(&text).ok()
        })
        .collect()
}

fn ensure_dir() -> anyhow::Result<PathBuf> {
    let d = dir()?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("cannot create cache directory `{}`", d.display()))?;
    // `recursive` leaves an existing directory's mode alone; the cache is ours, keep it private.
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict cache directory `{}`", d.display()))?;
    Ok(d)
}

/// Stores `entry` under `key`: written to a 0600 temporary file in the same directory, then
/// renamed over the old entry, so a reader never sees half a file.
pub fn store(key: &Key, entry: &Entry) -> anyhow::Result<PathBuf> {
    let d = ensure_dir()?;
    let body = Zeroizing::new(serde_json::to_vec(entry)?);
    super::configure::replace_private(&d, &key.file_name(), &body)
        .with_context(|| format!("cannot write cache file in `{}`", d.display()))
}

/// Removes every cached session; returns how many files were removed.
pub fn clear() -> anyhow::Result<usize> {
    let d = dir()?;
    let rd = match fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", d.display())),
    };
    let mut n = 0;
    for e in rd {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".json") || name.ends_with(".tmp") {
            remove(&e.path())?;
            if name.ends_with(".json") {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn remove(p: &Path) -> anyhow::Result<()> {
    fs::remove_file(p).with_context(|| format!("cannot remove `{}`", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part() {
        let k = Key {
            endpoint: "http://a:1".into(),
            access_key_id: "AKIA1".into(),
            serial_number: Some("s".into()),
            role_arn: None,
        };
        let mut k2 = k.clone();
        k2.endpoint.push('/');
        assert_eq!(
            k.file_name(),
            k2.file_name(),
            "a trailing slash is the same endpoint"
        );
        for other in [
            Key {
                serial_number: None,
                ..k.clone()
            },
            Key {
                access_key_id: "AKIA2".into(),
                ..k.clone()
            },
            Key {
                role_arn: Some("r".into()),
                ..k.clone()
            },
        ] {
            assert_ne!(k.file_name(), other.file_name());
        }
    }
}
