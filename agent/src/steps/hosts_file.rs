//! Write the tagged `/etc/hosts` lines (`<ip> <names> #hostalias-set-by-sealer`): replace
//! tagged lines for the same names, leave every other line byte-identical, and record what
//! was added and replaced so `clean` puts the file back.

use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use crate::journal::HostsRecord;
use crate::root::HostRoot;
use installer_proto::plan::HOSTS_TAG;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The hosts file.
pub(crate) const HOSTS_FILE: &str = "/etc/hosts";

fn is_tagged(line: &str) -> bool {
    line.trim_end().ends_with(HOSTS_TAG)
}

/// The host names of a hosts line (after the address, before any comment).
pub(crate) fn names_of(line: &str) -> Vec<&str> {
    line.split('#')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .collect()
}

/// Follows `host` through symlinks (inside `root`: an absolute target means the host's
/// path) to the file that really holds its content; returns that file's host path.
pub(crate) fn resolve(root: &HostRoot, host: &str) -> Result<String, String> {
    let mut cur = PathBuf::from(host);
    for _ in 0..16 {
        let real = root.path(&cur.to_string_lossy());
        match fs::symlink_metadata(&real) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&real).map_err(|e| format!("{host}: {e}"))?;
                let joined = if target.is_absolute() {
                    target
                } else {
                    cur.parent().unwrap_or(Path::new("/")).join(target)
                };
                cur = normalize(&joined);
            }
            _ => return Ok(cur.to_string_lossy().into_owned()),
        }
    }
    Err(format!("{host}: too many levels of symbolic links"))
}

/// `..` and `.` removed lexically from an absolute path.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// The file the hosts lines are (or will be) in: the recorded one, else `/etc/hosts`
/// followed through its links.
pub(crate) fn hosts_path(root: &HostRoot, record: Option<&HostsRecord>) -> Result<PathBuf, String> {
    let host = match record.and_then(|r| r.file.clone()) {
        Some(file) => file,
        None => resolve(root, HOSTS_FILE)?,
    };
    Ok(root.path(&host))
}

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let file = match ctx
        .journal
        .record
        .hosts
        .as_ref()
        .and_then(|r| r.file.clone())
    {
        Some(f) => f,
        None => resolve(ctx.root, HOSTS_FILE).map_err(step_err)?,
    };
    let path = ctx.root.path(&file);
    if let Some(dir) = path.parent() {
        let created = fsutil::create_dirs(dir).map_err(step_err)?;
        super::installed::record_created_dirs(ctx, &created)?;
    }
    let old = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(step_err(fsutil::ctx(&path, "reading")(e))),
    };
    let mut record = ctx.journal.record.hosts.clone().unwrap_or_default();
    if ctx.journal.record.hosts.is_none() {
        record.no_final_newline = !old.is_empty() && !old.ends_with('\n');
        record.existed = path.exists();
        record.file = (file != HOSTS_FILE).then(|| file.clone());
    }
    let wanted: Vec<String> = ctx.plan.hosts_entries.iter().map(|e| e.line()).collect();
    let wanted_names: Vec<&str> = ctx
        .plan
        .hosts_entries
        .iter()
        .flat_map(|e| e.names.iter().map(String::as_str))
        .collect();
    // Our lines go where the first line they replace was (or at the end), so clean can put
    // the replaced lines back in their place.
    let mut lines: Vec<String> = Vec::new();
    let mut inserted = false;
    for line in old.lines() {
        let ours = is_tagged(line) && record.added.iter().any(|a| a == line);
        let replaces =
            is_tagged(line) && !ours && names_of(line).iter().any(|n| wanted_names.contains(n));
        if ours || replaces {
            if replaces && !record.replaced.iter().any(|r| r == line) {
                record.replaced.push(line.to_string());
            }
            if !inserted {
                lines.extend(wanted.iter().cloned());
                inserted = true;
            }
            continue;
        }
        lines.push(line.to_string());
    }
    if !inserted {
        lines.extend(wanted.iter().cloned());
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    record.added = wanted;
    // Write-ahead: the record names every line before the file holds it.
    ctx.journal
        .update(|r| r.hosts = Some(record))
        .map_err(step_err)?;
    write_hosts(&path, &text).map_err(step_err)?;
    Ok(Written {
        files: 1,
        bytes: text.len() as u64,
    })
}

/// Why the hosts file no longer holds what the step wrote, if it does not.
pub(crate) fn drift(path: &Path, record: Option<&HostsRecord>) -> Option<String> {
    let Some(record) = record else {
        return Some(format!("{HOSTS_FILE} has no recorded lines"));
    };
    let text = fs::read_to_string(path).unwrap_or_default();
    record
        .added
        .iter()
        .find(|line| !text.lines().any(|l| l == line.as_str()))
        .map(|line| format!("{HOSTS_FILE} lacks the line {line:?}"))
}

/// Writes the hosts file atomically; when it is a mount point that cannot be replaced (a
/// container runtime's bind mount answers EBUSY), rewrites it in place instead.
pub(crate) fn write_hosts(path: &Path, text: &str) -> Result<(), fsutil::FsError> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    match fsutil::write_atomic(path, text.as_bytes(), mode) {
        Ok(()) => Ok(()),
        Err(e) if e.source.raw_os_error() == Some(nix::libc::EBUSY) => {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(fsutil::ctx(path, "opening"))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(fsutil::ctx(path, "writing in place"))
        }
        Err(e) => Err(e),
    }
}

/// Undoes the recorded edits: removes the added lines, puts replaced lines back. Returns
/// whether the file changed.
pub(crate) fn undo(path: &Path, record: &HostsRecord) -> Result<bool, fsutil::FsError> {
    let old = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(fsutil::ctx(path, "reading")(e)),
    };
    let mut lines: Vec<&str> = Vec::new();
    let mut restored = false;
    for line in old.lines() {
        if is_tagged(line) && record.added.iter().any(|a| a == line) {
            if !restored {
                lines.extend(record.replaced.iter().map(String::as_str));
                restored = true;
            }
            continue;
        }
        lines.push(line);
    }
    if !restored {
        lines.extend(record.replaced.iter().map(String::as_str));
    }
    let mut text = lines.join("\n");
    if !text.is_empty() && !record.no_final_newline {
        text.push('\n');
    }
    if text == old {
        return Ok(false);
    }
    if text.is_empty() && !record.existed {
        fsutil::remove_file_if_exists(path)?;
        return Ok(true);
    }
    write_hosts(path, &text)?;
    Ok(true)
}
