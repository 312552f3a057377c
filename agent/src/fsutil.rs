//! Careful file writes: every file the agent puts in place is written to a temporary name in
//! the same directory, fsynced, and renamed over the target, so a crash leaves either the old
//! file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An I/O failure with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct FsError {
    /// The host path the operation was on.
    pub path: String,
    /// What was being done (`writing`, `renaming into place`, …).
    pub what: &'static str,
    /// The cause.
    #[source]
    pub source: io::Error,
}

/// Builds a closure that wraps an `io::Error` with a path and an action.
pub(crate) fn ctx<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError {
        path: path.display().to_string(),
        what,
        source,
    }
}

/// The temporary sibling a file is written to before it is renamed into place. The name is
/// fixed (one agent runs per host at a time), so a crash's leftover is known from the
/// target alone: every target outside the cluster directory is in the journal before it is
/// written, and the next apply or clean removes its sibling ([`remove_temp_sibling`]).
pub(crate) fn temp_sibling(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.installer-tmp"))
}

/// Removes what a crashed write to `target` left; returns whether there was anything. A
/// symlink there is install-bin's half-placed link (removing a link never touches what it
/// points to).
pub(crate) fn remove_temp_sibling(target: &Path) -> bool {
    let tmp = temp_sibling(target);
    fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_file() || m.file_type().is_symlink())
        && fs::remove_file(&tmp).is_ok()
}

/// Fsyncs a directory so a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ctx(dir, "syncing directory"))
}

/// Writes `bytes` to `target` atomically with `mode`.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    write_atomic_from(target, &mut &bytes[..], mode).map(|_| ())
}

/// Streams `reader` into `target` atomically with `mode`; returns the bytes written.
pub(crate) fn write_atomic_from(
    target: &Path,
    reader: &mut dyn Read,
    mode: u32,
) -> Result<u64, FsError> {
    let tmp = temp_sibling(target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(ctx(&tmp, "creating"))?;
        let n = io::copy(reader, &mut file).map_err(ctx(&tmp, "writing"))?;
        file.flush().map_err(ctx(&tmp, "writing"))?;
        // chmod after writing: the umask must not narrow the mode the rootfs asks for.
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
            .map_err(ctx(&tmp, "setting mode"))?;
        file.sync_all().map_err(ctx(&tmp, "syncing"))?;
        fs::rename(&tmp, target).map_err(ctx(target, "renaming into place"))?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    let n = result?;
    if let Some(parent) = target.parent() {
        sync_dir(parent)?;
    }
    Ok(n)
}

/// Copies `src` to `target` atomically, keeping the mode and (when permitted) the owner.
pub(crate) fn copy_atomic(src: &Path, target: &Path) -> Result<u64, FsError> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(src).map_err(ctx(src, "reading"))?;
    let mut file = File::open(src).map_err(ctx(src, "opening"))?;
    let n = write_atomic_from(target, &mut file, meta.permissions().mode() & 0o7777)?;
    // Ownership matters when restoring a backup; failing to chown as non-root is expected in
    // tests that run without privileges, where every file is ours anyway.
    let _ = std::os::unix::fs::chown(target, Some(meta.uid()), Some(meta.gid()));
    Ok(n)
}

/// Creates `dir` and its missing ancestors; returns the ones it created, outermost first, so
/// the caller can record them and `clean` can remove exactly those.
pub(crate) fn create_dirs(dir: &Path) -> Result<Vec<PathBuf>, FsError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if fs::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    missing.reverse();
    for p in &missing {
        match fs::create_dir(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ctx(p, "creating directory")(e)),
        }
    }
    Ok(missing)
}

/// Modification time in nanoseconds since the epoch: the one clock every cache and record of
/// the agent compares (rootfs index, fingerprints, watch snapshots and store).
pub(crate) fn mtime_ns(meta: &fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// Status-change time in nanoseconds since the epoch (see [`mtime_ns`]).
pub(crate) fn ctime_ns(meta: &fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec())
}

/// Removes a file if it exists.
pub(crate) fn remove_file_if_exists(path: &Path) -> Result<bool, FsError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ctx(path, "removing")(e)),
    }
}
