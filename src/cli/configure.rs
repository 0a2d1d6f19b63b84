//! `sts-broker configure`: writes a profile (`aws_access_key_id`, `aws_secret_access_key`,
//! optionally `mfa_serial`) to the credentials file, as `aws configure` does: the file is created
//! 0600 if missing (its directory 0700), other profiles and comments are kept, and it is replaced
//! atomically. Values come from flags or, for the ones not given, prompts on the terminal.

use super::credentials;
use anyhow::{Context, bail};
use clap::Args;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// The profile to write.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// The credentials file (default ~/.config/sts-broker/credentials).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
    #[arg(long)]
    pub aws_access_key_id: Option<String>,
    /// Prefer the prompt: a value on the command line is visible to other local users.
    #[arg(long)]
    pub aws_secret_access_key: Option<String>,
    /// The MFA device the wrapper verbs use for this profile (an empty value removes it).
    #[arg(long)]
    pub mfa_serial: Option<String>,
    /// Never prompt; values not given keep what the profile has.
    #[arg(long)]
    pub no_prompt: bool,
}

/// A value shown in a prompt: secrets and key ids by their last four characters only.
fn shown(v: Option<&str>, secret: bool) -> String {
    match v {
        None => "None".to_owned(),
        Some(v) if secret || v.len() > 20 => {
            let tail: String = v
                .chars()
                .rev()
                .take(4)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("****************{tail}")
        }
        Some(v) => v.to_owned(),
    }
}

fn ask(tty: &fs::File, label: &str, current: Option<&str>, secret: bool) -> anyhow::Result<String> {
    let mut w = tty;
    write!(w, "{label} [{}]: ", shown(current, secret))?;
    w.flush().ok();
    let mut line = Zeroizing::new(String::new());
    BufReader::new(tty).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// The raw `key = value` pairs of `profile` in `text`.
fn current(text: &str, profile: &str) -> Vec<(String, String)> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = section_name(t) {
            in_section = name == profile;
        } else if in_section && let Some((k, v)) = t.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

fn section_name(line: &str) -> Option<&str> {
    line.strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .map(|n| n.trim())
        .map(|n| n.strip_prefix("profile ").map_or(n, str::trim))
}

/// `text` with `profile`'s keys set to `values` (`None` removes the key); other sections, keys
/// and comments are kept as they are.
pub fn update(text: &str, profile: &str, values: &[(&str, Option<&str>)]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let start = lines
        .iter()
        .position(|l| section_name(l.trim()) == Some(profile));
    let start = match start {
        Some(i) => i,
        None => {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            if !lines.is_empty() {
                lines.push(String::new());
            }
            lines.push(format!("[{profile}]"));
            lines.len() - 1
        }
    };
    let mut end = lines[start + 1..]
        .iter()
        .position(|l| section_name(l.trim()).is_some())
        .map_or(lines.len(), |p| start + 1 + p);
    for (key, value) in values {
        let found = (start + 1..end).find(|&i| {
            let t = lines[i].trim();
            !t.starts_with('#')
                && !t.starts_with(';')
                && t.split_once('=').is_some_and(|(k, _)| k.trim() == *key)
        });
        match (found, value) {
            (Some(i), Some(v)) => lines[i] = format!("{key} = {v}"),
            (Some(i), None) => {
                lines.remove(i);
                end -= 1;
            }
            (None, Some(v)) => {
                // After the section's last non-blank line.
                let mut at = end;
                while at > start + 1 && lines[at - 1].trim().is_empty() {
                    at -= 1;
                }
                lines.insert(at, format!("{key} = {v}"));
                end += 1;
            }
            (None, None) => {}
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn write_private(path: &Path, body: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create `{}`", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    replace_private(&dir, &name, body)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Writes `body` to `dir/name`, readable by the owner alone (0600): first to a temporary file
/// beside it, then renamed over the old file, so a reader never sees half a file. The temporary
/// file is removed when a step fails. Returns the file's path. The session cache writes its
/// entries through this too.
pub(super) fn replace_private(dir: &Path, name: &str, body: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.{}.{:x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })?;
    Ok(path)
}

pub fn run(a: ConfigureArgs) -> anyhow::Result<i32> {
    let path = a
        .credentials_file
        .clone()
        .or_else(credentials::default_file)
        .context("no credentials file: pass --credentials-file")?;
    let text = Zeroizing::new(match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    });
    let now = current(&text, &a.profile);
    let get = |k: &str| now.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let all_given = a.aws_access_key_id.is_some() && a.aws_secret_access_key.is_some();
    let tty = if a.no_prompt || all_given {
        None
    } else if std::io::stdin().is_terminal() {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
    } else {
        None
    };
    let pick = |given: &Option<String>,
                label: &str,
                key: &str,
                secret: bool|
     -> anyhow::Result<Option<String>> {
        if let Some(v) = given {
            return Ok(Some(v.clone()));
        }
        if let Some(t) = &tty {
            let v = ask(t, label, get(key), secret)?;
            if !v.is_empty() {
                return Ok(Some(v));
            }
        }
        Ok(get(key).map(str::to_owned))
    };
    let akid = pick(
        &a.aws_access_key_id,
        "AWS Access Key ID",
        "aws_access_key_id",
        false,
    )?;
    let secret = Zeroizing::new(pick(
        &a.aws_secret_access_key,
        "AWS Secret Access Key",
        "aws_secret_access_key",
        true,
    )?);
    let mfa = if a.mfa_serial.is_some() || tty.is_some() {
        pick(&a.mfa_serial, "MFA serial", "mfa_serial", false)?
    } else {
        get("mfa_serial").map(str::to_owned)
    };
    let (Some(akid), Some(secret_v)) = (
        akid.filter(|v| !v.trim().is_empty()),
        secret.as_deref().filter(|v| !v.trim().is_empty()),
    ) else {
        bail!(
            "profile `{}` needs an access key id and a secret access key: pass \
             --aws-access-key-id and --aws-secret-access-key, or run on a terminal to be asked",
            a.profile
        );
    };
    let mfa = mfa.filter(|m| !m.is_empty());
    let body = Zeroizing::new(update(
        &text,
        &a.profile,
        &[
            ("aws_access_key_id", Some(&akid)),
            ("aws_secret_access_key", Some(secret_v)),
            ("mfa_serial", mfa.as_deref()),
        ],
    ));
    write_private(&path, body.as_bytes())?;
    eprintln!("profile `{}` written to {}", a.profile, path.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_one_profile_and_keeps_the_rest() {
        let text = "# mine\n[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[ci]\naws_access_key_id = C\naws_secret_access_key = D\nmfa_serial = M\n";
        let out = update(
            text,
            "default",
            &[
                ("aws_access_key_id", Some("A2")),
                ("aws_secret_access_key", Some("B2")),
                ("mfa_serial", Some("S")),
            ],
        );
        assert_eq!(
            out,
            "# mine\n[default]\naws_access_key_id = A2\naws_secret_access_key = B2\nmfa_serial = S\n\n[ci]\naws_access_key_id = C\naws_secret_access_key = D\nmfa_serial = M\n"
        );
        let out = update(text, "ci", &[("mfa_serial", None)]);
        assert!(!out.contains("mfa_serial"), "{out}");
        assert!(out.contains("aws_access_key_id = C"));
        let out = update("", "dev", &[("aws_access_key_id", Some("X"))]);
        assert_eq!(out, "[dev]\naws_access_key_id = X\n");
        let out = update(text, "dev", &[("aws_access_key_id", Some("X"))]);
        assert!(
            out.ends_with("mfa_serial = M\n\n[dev]\naws_access_key_id = X\n"),
            "{out}"
        );
    }
}
