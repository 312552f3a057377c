//! Keeping the archive cache bounded.
//!
//! Every archive a run resolves is unpacked once into `<cache>/rootfs/<sha256>`; rootfs
//! archives run to gigabytes, so trees nobody used for a while go. A tree's directory
//! mtime is its last use (each run that resolves it touches it), which keeps a tree that a
//! concurrent run is using safe: that run touched it moments ago.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A tree not used for this long is removed.
pub const UNUSED_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

/// A `.unpacking-*` directory this old belongs to a run that died mid-unpack.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Marks `dir` as used now.
pub fn touch(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.set_modified(SystemTime::now())
}

/// Removes, from `parent`, unpacked trees unused for [`UNUSED_FOR`] and abandoned partial
/// unpacks older than [`ABANDONED_AFTER`], never `keep`. Returns what it removed. A tree
/// that cannot be removed is logged and left: pruning never fails a run.
pub fn prune(parent: &Path, keep: &Path, now: SystemTime) -> Vec<String> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if path == keep || !meta.is_dir() {
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let limit = if name.starts_with(".unpacking-") {
            ABANDONED_AFTER
        } else {
            UNUSED_FOR
        };
        if age < limit {
            continue;
        }
        match remove_tree(&path) {
            Ok(()) => {
                tracing::info!(dir = %path.display(), days = age.as_secs() / 86_400, "removed an unpacked rootfs no run used lately");
                removed.push(name);
            }
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "could not remove an old unpacked rootfs; remove it by hand");
            }
        }
    }
    removed
}

/// `remove_dir_all` that also works on trees holding read-only directories (archives keep
/// their directory modes, and a non-root user cannot delete inside a 0555 directory).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    make_writable(path)?;
    fs::remove_dir_all(path)
}

fn make_writable(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(dir: &Path, days: u64) {
        fs::create_dir_all(dir).unwrap();
        let when = SystemTime::now() - Duration::from_secs(days * 86_400);
        fs::File::open(dir).unwrap().set_modified(when).unwrap();
    }

    #[test]
    fn removes_only_trees_unused_for_long_and_dead_unpacks_never_the_current_one() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let old = p.join("aaaa");
        fs::create_dir_all(old.join("etc/ro")).unwrap();
        fs::write(old.join("etc/ro/file"), "x").unwrap();
        fs::set_permissions(old.join("etc/ro"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(old.join("etc"), fs::Permissions::from_mode(0o555)).unwrap();
        aged(&old, 30);
        aged(&p.join("bbbb"), 3);
        aged(&p.join("current"), 90);
        aged(&p.join(".unpacking-dead"), 2);
        aged(&p.join(".unpacking-live"), 0);
        fs::write(p.join("stray-file"), "x").unwrap();

        let mut removed = prune(p, &p.join("current"), SystemTime::now());
        removed.sort();
        assert_eq!(removed, [".unpacking-dead", "aaaa"]);
        for left in ["bbbb", "current", ".unpacking-live", "stray-file"] {
            assert!(p.join(left).exists(), "{left} was removed");
        }
    }

    #[test]
    fn touch_makes_a_tree_recent_again() {
        let parent = tempfile::tempdir().unwrap();
        let tree = parent.path().join("cccc");
        aged(&tree, 40);
        touch(&tree).unwrap();
        assert!(prune(parent.path(), Path::new("/nonexistent"), SystemTime::now()).is_empty());
        assert!(tree.exists());
    }
}
