//! What the agent left at a path, so that later runs can tell whether it is still so: a
//! person's edit must not be overwritten or deleted silently (SPEC §6), and a re-apply must
//! notice a deleted binary. Metadata answers "unchanged" cheaply; the sha256 decides when
//! the metadata moved (a `touch`, a copy of the same bytes).

use installer_proto::manifest::{sha256_bytes, sha256_file};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// A regular file as the agent left it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    /// Content hash.
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Inode number (a rename over the file changes it).
    pub ino: u64,
    /// For a symbolic link the agent placed (install-bin's links): its target. The other
    /// fields then describe the link itself; only the target is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// How a path compares with what was left there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    /// Same content and mode.
    Same,
    /// Nothing is there.
    Missing,
    /// Something else is there (other content, mode, or not a regular file).
    Changed,
}

impl Fingerprint {
    /// The fingerprint of the regular file at `path`, reading its content.
    pub(crate) fn of(path: &Path) -> std::io::Result<Fingerprint> {
        let meta = fs::symlink_metadata(path)?;
        if !meta.file_type().is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        Ok(Fingerprint {
            sha256: sha256_file(path)?,
            mode: meta.permissions().mode() & 0o7777,
            size: meta.len(),
            mtime_ns: crate::fsutil::mtime_ns(&meta),
            ino: meta.ino(),
            link: None,
        })
    }

    /// The fingerprint of the symbolic link at `path` (not of what it points to).
    pub(crate) fn of_link(path: &Path) -> std::io::Result<Fingerprint> {
        let meta = fs::symlink_metadata(path)?;
        if !meta.file_type().is_symlink() {
            return Err(std::io::Error::other("not a symbolic link"));
        }
        let target = link_text(path)?;
        Ok(Fingerprint {
            sha256: sha256_bytes(target.as_bytes()),
            mode: meta.permissions().mode() & 0o7777,
            size: meta.len(),
            mtime_ns: crate::fsutil::mtime_ns(&meta),
            ino: meta.ino(),
            link: Some(target),
        })
    }

    /// Compares the file now at `path` with this fingerprint; reads the file only when its
    /// metadata moved. A link's fingerprint is the same only for a link with the same
    /// target; a file's only for a regular file (a link there is a change, whatever it
    /// points to).
    pub(crate) fn compare(&self, path: &Path) -> Comparison {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Comparison::Missing,
            Err(_) => return Comparison::Changed,
        };
        if let Some(want) = &self.link {
            return match link_text(path) {
                Ok(t) if meta.file_type().is_symlink() && &t == want => Comparison::Same,
                _ => Comparison::Changed,
            };
        }
        if !meta.file_type().is_file()
            || meta.permissions().mode() & 0o7777 != self.mode
            || meta.len() != self.size
        {
            return Comparison::Changed;
        }
        if meta.ino() == self.ino && crate::fsutil::mtime_ns(&meta) == self.mtime_ns {
            return Comparison::Same;
        }
        match sha256_file(path) {
            Ok(h) if h == self.sha256 => Comparison::Same,
            _ => Comparison::Changed,
        }
    }
}

/// A link's target as text (the agent only places links whose targets are UTF-8 names).
fn link_text(path: &Path) -> std::io::Result<String> {
    fs::read_link(path)?
        .into_os_string()
        .into_string()
        .map_err(|_| std::io::Error::other("symlink target is not UTF-8"))
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

    #[test]
    fn a_link_is_the_same_only_with_the_same_target() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "a").unwrap();
        fs::write(dir.path().join("b"), "b").unwrap();
        let p = dir.path().join("l");
        std::os::unix::fs::symlink("a", &p).unwrap();
        let fp = Fingerprint::of_link(&p).unwrap();
        assert_eq!(fp.link.as_deref(), Some("a"));
        assert!(
            Fingerprint::of(&p).is_err(),
            "a file fingerprint never follows a link"
        );
        assert_eq!(fp.compare(&p), Comparison::Same);
        // Recreated with the same target: still what was left.
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("a", &p).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Same);
        // The file it points to changing is not the link changing.
        fs::write(dir.path().join("a"), "other").unwrap();
        assert_eq!(fp.compare(&p), Comparison::Same);
        fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("b", &p).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Changed);
        fs::remove_file(&p).unwrap();
        fs::write(&p, "a").unwrap();
        assert_eq!(fp.compare(&p), Comparison::Changed);
        fs::remove_file(&p).unwrap();
        assert_eq!(fp.compare(&p), Comparison::Missing);
        // A file's fingerprint does not accept a link to the same content.
        let file_fp = Fingerprint::of(&dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("b", &p).unwrap();
        assert_eq!(file_fp.compare(&p), Comparison::Changed);
    }
}
