//! Finding the caller's long-term credentials, in the order the aws CLI uses (AWS CLI User
//! Guide, 'Configuration and credential file settings'): `--profile` in the credentials file,
//! then `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, then the file's
//! `default` profile.

use crate::client::Credentials;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Credentials found by [`resolve_full`], where they came from, and the profile's `mfa_serial`.
pub struct Resolved {
    pub credentials: Credentials,
    pub source: String,
    pub mfa_serial: Option<String>,
}

pub fn default_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/sts-broker/credentials"))
}

/// Reads `profile` from an AWS shared-credentials (INI) file.
#[cfg(test)]
pub fn from_file(path: &Path, profile: &str) -> anyhow::Result<Credentials> {
    read_profile(path, profile).map(|(c, _)| c)
}

/// Reads `profile`'s credentials and its `mfa_serial`, if any.
pub fn read_profile(path: &Path, profile: &str) -> anyhow::Result<(Credentials, Option<String>)> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read credentials file `{}`", path.display()))?,
    );
    let mut in_section = false;
    let (mut akid, mut secret, mut token, mut mfa_serial) = (None, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_section =
                name == profile || name.strip_prefix("profile ").map(str::trim) == Some(profile);
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_owned();
            match k.trim() {
                "aws_access_key_id" => akid = Some(v),
                "aws_secret_access_key" => secret = Some(Zeroizing::new(v)),
                "aws_session_token" => token = Some(v),
                "mfa_serial" => mfa_serial = Some(v),
                _ => {}
            }
        }
    }
    match (akid, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok((
            Credentials {
                access_key_id,
                secret_access_key,
                session_token: token,
            },
            mfa_serial,
        )),
        _ => bail!(
            "profile `{profile}` in `{}` needs aws_access_key_id and aws_secret_access_key",
            path.display()
        ),
    }
}

/// Resolves credentials and says where they came from.
pub fn resolve(
    profile: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<(Credentials, String)> {
    resolve_full(profile, file).map(|r| (r.credentials, r.source))
}

/// Resolves credentials, says where they came from, and picks up the profile's `mfa_serial`.
pub fn resolve_full(profile: Option<&str>, file: Option<&Path>) -> anyhow::Result<Resolved> {
    let file = file.map(Path::to_path_buf).or_else(default_file);
    if let Some(p) = profile {
        let f = file.context("no credentials file: pass --credentials-file")?;
        let (credentials, mfa_serial) = read_profile(&f, p)?;
        return Ok(Resolved {
            credentials,
            source: format!("profile `{p}` in {}", f.display()),
            mfa_serial,
        });
    }
    if let (Ok(akid), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(Resolved {
            credentials: Credentials {
                access_key_id: akid,
                secret_access_key: Zeroizing::new(secret),
                session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            },
            source: "environment variables".to_owned(),
            mfa_serial: None,
        });
    }
    match file {
        Some(f) if f.exists() => {
            let (credentials, mfa_serial) = read_profile(&f, "default")?;
            Ok(Resolved {
                credentials,
                source: format!("profile `default` in {}", f.display()),
                mfa_serial,
            })
        }
        _ => bail!(
            "no credentials: pass --credentials-file FILE [--profile NAME], or set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_named_profile() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\naws_secret_access_key = s1\n\n[ci]\naws_access_key_id=AKIABBBBBBBBBBBBBBBB\naws_secret_access_key=s2\naws_session_token = t\n",
        )
        .unwrap();
        let c = from_file(&f, "ci").unwrap();
        assert_eq!(c.access_key_id, "AKIABBBBBBBBBBBBBBBB");
        assert_eq!(c.secret_access_key.as_str(), "s2");
        assert_eq!(c.session_token.as_deref(), Some("t"));
        std::fs::write(
            &f,
            "[dev]\naws_access_key_id = AKIACCCCCCCCCCCCCCCC\naws_secret_access_key = s3\nmfa_serial = arn:aws:iam::1:mfa/p\n",
        )
        .unwrap();
        let (_, serial) = read_profile(&f, "dev").unwrap();
        assert_eq!(serial.as_deref(), Some("arn:aws:iam::1:mfa/p"));
        let e = from_file(&f, "nope").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
