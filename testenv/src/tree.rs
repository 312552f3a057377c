//! A whole directory tree as a comparable value, for tests that check that a run left a tree
//! exactly as it found it (or changed exactly what it should).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every path under a root (relative to it) with a description of what is there: kind,
/// owner, mode, and content hash or link target. Two trees are the same when their
/// snapshots are equal.
pub type TreeSnapshot = BTreeMap<String, String>;

/// The snapshot of the tree under `root`, links not followed.
pub fn snapshot(root: &Path) -> io::Result<TreeSnapshot> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir)? {
            let path = item?.path();
            let rel = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .display()
                .to_string();
            let meta = fs::symlink_metadata(&path)?;
            let owner = format!(
                "{}:{} {:o}",
                meta.uid(),
                meta.gid(),
                meta.permissions().mode() & 0o7777
            );
            let desc = if meta.is_dir() {
                stack.push(path.clone());
                format!("dir {owner}")
            } else if meta.file_type().is_symlink() {
                format!("link {owner} -> {}", fs::read_link(&path)?.display())
            } else {
                let sha = installer_proto::manifest::sha256_file(&path)?;
                format!("file {owner} {sha}")
            };
            out.insert(rel, desc);
        }
    }
    Ok(out)
}

/// What differs from `before` to `after`, one line a path: `missing`, `changed` or
/// `left behind`; empty when the trees are the same.
pub fn differences(before: &TreeSnapshot, after: &TreeSnapshot) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("missing: {k} ({v})")),
            Some(w) if w != v => diffs.push(format!("changed: {k}: {v} -> {w}")),
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            diffs.push(format!("left behind: {k} ({v})"));
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_change_is_a_difference() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/f"), b"one").unwrap();
        fs::write(root.join("gone"), b"x").unwrap();
        std::os::unix::fs::symlink("d/f", root.join("l")).unwrap();
        let before = snapshot(root).unwrap();
        assert_eq!(before.len(), 4);
        assert!(differences(&before, &snapshot(root).unwrap()).is_empty());

        fs::write(root.join("d/f"), b"two").unwrap();
        fs::remove_file(root.join("gone")).unwrap();
        fs::write(root.join("new"), b"").unwrap();
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o700)).unwrap();
        let diffs = differences(&before, &snapshot(root).unwrap());
        assert_eq!(diffs.len(), 4, "{diffs:?}");
        assert!(diffs[0].starts_with("changed: d: dir "), "{diffs:?}");
        assert!(diffs[1].starts_with("changed: d/f: file "), "{diffs:?}");
        assert!(diffs[2].starts_with("missing: gone ("), "{diffs:?}");
        assert!(diffs[3].starts_with("left behind: new ("), "{diffs:?}");
    }
}
