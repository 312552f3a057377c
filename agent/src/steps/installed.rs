//! Files the agent places outside the rootfs copy (install-bin's binaries and links, the
//! registry's trust files): how a path becomes the agent's before anything is written there,
//! and whether what it left is still there. Each is recorded in the journal's `installed`
//! with a backup of what it replaced, so clean restores exactly that (`clean::files`).

use super::{Ctx, step_err};
use crate::fingerprint::{Comparison, Fingerprint};
use crate::fsutil;
use crate::journal::{Installed, Journal};
use crate::root::HostRoot;
use installer_proto::event::{Event, StepError};
use installer_proto::manifest::sha256_file;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// What one placed path must be.
pub(crate) enum Want {
    /// A regular file with this content hash (hex sha256) and mode.
    File {
        /// The content's sha256.
        sha256: String,
        /// The mode.
        mode: u32,
    },
    /// A symlink with this target.
    Link(String),
}

impl Want {
    /// Whether `target` already is exactly this.
    pub(crate) fn is_at(&self, target: &Path) -> bool {
        let Ok(meta) = fs::symlink_metadata(target) else {
            return false;
        };
        match self {
            Want::File { sha256, mode } => {
                meta.file_type().is_file()
                    && meta.permissions().mode() & 0o7777 == *mode
                    && sha256_file(target).ok().as_deref() == Some(sha256.as_str())
            }
            Want::Link(to) => {
                meta.file_type().is_symlink()
                    && fs::read_link(target).is_ok_and(|t| t == Path::new(to))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Want::File { .. } => "a file".to_string(),
            Want::Link(to) => format!("a link to {to}"),
        }
    }
}

/// Makes `host_path` (at `target` on this root) the step's before anything is written there:
/// records it, with a backup of the file that was there, unless it already is. `false` when
/// it already holds exactly `want` and is not ours: it is left alone and nothing is
/// recorded. `source` names what replaces it, for the warning when a person changed the
/// file since apply left it.
pub(crate) fn claim(
    ctx: &mut Ctx<'_>,
    host_path: &str,
    target: &Path,
    source: &str,
    want: &Want,
) -> Result<bool, StepError> {
    let recorded = ctx.journal.record.installed.get(host_path).cloned();
    if let Some(installed) = recorded {
        if let Some(left) = installed.left
            && left.compare(target) == Comparison::Changed
        {
            ctx.sink.event(Event::Warning {
                message: format!(
                    "{host_path} was changed since apply installed it; replaced with {source}"
                ),
            });
        }
        return Ok(true);
    }
    let backup = match fs::symlink_metadata(target) {
        Err(_) => None,
        Ok(_) if want.is_at(target) => return Ok(false),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(step_err(format!(
                "{host_path} is a symlink; move it aside (apply places {} there) and apply again",
                want.describe()
            )));
        }
        Ok(meta) if meta.file_type().is_dir() => {
            return Err(step_err(format!(
                "{host_path} is a directory; move it aside (apply places {} there) and apply again",
                want.describe()
            )));
        }
        Ok(_) => {
            let backup_dir: PathBuf = ctx.journal.backup_dir();
            fs::create_dir_all(&backup_dir)
                .map_err(|e| step_err(fsutil::ctx(&backup_dir, "creating")(e)))?;
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let backup_name = format!("{:03}-{name}", ctx.journal.record.installed.len());
            fsutil::copy_atomic(target, &backup_dir.join(&backup_name)).map_err(step_err)?;
            Some(backup_name)
        }
    };
    ctx.journal
        .update(|r| {
            r.installed
                .insert(host_path.to_string(), Installed { backup, left: None });
        })
        .map_err(step_err)?;
    Ok(true)
}

/// Records what the step left at `host_path` (read back from `target`), so clean and the
/// next apply can tell whether anyone changed it.
pub(crate) fn record_left(
    ctx: &mut Ctx<'_>,
    host_path: &str,
    target: &Path,
    link: bool,
) -> Result<(), StepError> {
    let left = if link {
        Fingerprint::of_link(target)
    } else {
        Fingerprint::of(target)
    }
    .map_err(|e| step_err(format!("{host_path}: reading back: {e}")))?;
    ctx.journal
        .update(|r| {
            if let Some(i) = r.installed.get_mut(host_path) {
                i.left = Some(left);
            }
        })
        .map_err(step_err)
}

/// Why `host_path` no longer holds what the step left there (or, when it found `want`
/// already in place and recorded nothing, no longer holds `want`); `None` when it does.
pub(crate) fn drift(
    root: &HostRoot,
    journal: &Journal,
    host_path: &str,
    want: &Want,
) -> Option<String> {
    let target = root.path(host_path);
    let state = match journal
        .record
        .installed
        .get(host_path)
        .and_then(|i| i.left.as_ref())
    {
        Some(left) => left.compare(&target),
        None if want.is_at(&target) => Comparison::Same,
        None if fs::symlink_metadata(&target).is_err() => Comparison::Missing,
        None => Comparison::Changed,
    };
    match state {
        Comparison::Same => None,
        Comparison::Missing => Some(format!("{host_path} is missing")),
        Comparison::Changed => Some(format!("{host_path} changed")),
    }
}

/// Records directories the agent created (host paths), so `clean` removes exactly them.
pub(crate) fn record_created_dirs(ctx: &mut Ctx<'_>, created: &[PathBuf]) -> Result<(), StepError> {
    if created.is_empty() {
        return Ok(());
    }
    let host: Vec<String> = created.iter().map(|p| ctx.root.host_path_of(p)).collect();
    ctx.journal
        .update(|r| r.created_dirs.extend(host))
        .map_err(step_err)
}
