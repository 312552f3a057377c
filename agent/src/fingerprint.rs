//! What the agent left at a path, so that later runs can tell whether it is still so: a
//! person's edit must not be overwritten or deleted silently (SPEC §6), and a re-apply must
//! notice a deleted binary. Metadata answers "unchanged" cheaply; the sha256 decides when
//! the metadata moved (a `touch`, a copy of the same bytes).

use installer_proto::manifest::sha256_file;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A regular file as the agent left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Content hash.
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i128,
    /// Inode number (a rename over the file changes it).
    pub ino: u64,
}

/// How a path compares with what was left there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// Same content and mode.
    Same,
    /// Nothing is there.
    Missing,
    /// Something else is there (other content, mode, or not a regular file).
    Changed,
}

impl Fingerprint {
    /// The fingerprint of the regular file at `path`, reading its content.
    pub fn of(path: &Path) -> std::io::Result<Fingerprint> {
        let meta = fs::symlink_metadata(path)?;
        if !meta.file_type().is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(Fingerprint {
            sha256: sha256_file(path)?,
            mode: meta.permissions().mode() & 0o7777,
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
            ino: meta.ino(),
        })
    }

    /// Compares the file now at `path` with this fingerprint; reads the file only when its
    /// metadata moved.
    pub fn compare(&self, path: &Path) -> Comparison {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Comparison::Missing,
            Err(_) => return Comparison::Changed,
        };
        if !meta.file_type().is_file()
            || meta.permissions().mode() & 0o7777 != self.mode
            || meta.len() != self.size
        {
            return Comparison::Changed;
        }
        if meta.ino() == self.ino && mtime_ns(&meta) == self.mtime_ns {
            return Comparison::Same;
        }
        match sha256_file(path) {
            Ok(h) if h == self.sha256 => Comparison::Same,
            _ => Comparison::Changed,
        }
    }
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn same_touched_changed_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, "one").unwrap();
        let fp = Fingerprint::of(&p).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Same);
        // Same bytes written again (new mtime): still what was left.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(&p, "one").unwrap();
        assert_eq!(fp.compare(&p), Comparison::Same);
        fs::write(&p, "two").unwrap();
        assert_eq!(fp.compare(&p), Comparison::Changed);
        fs::write(&p, "one").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Changed);
        fs::remove_file(&p).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Missing);
    }
}
