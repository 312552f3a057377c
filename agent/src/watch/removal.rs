//! Removing a directory apply created, with its contents, without crossing into a mount
//! point: a volume mounted inside (a pod's, a bind mount of host data) is left as it is,
//! with the directories that lead to it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Removes `dir` and its contents, leaving (and listing in `kept`) every mount point inside
/// — with whatever leads to them.
pub(crate) fn remove_tree(
    dir: &Path,
    dev: u64,
    mounts: &HashSet<PathBuf>,
    kept: &mut Vec<PathBuf>,
) -> io::Result<()> {
    // Walked parents first (so a mount point is never entered), removed in reverse: each
    // directory is empty, but for what leads to a mount, when its turn comes.
    let walk = walkdir::WalkDir::new(dir).into_iter();
    let mut mounted = Vec::new();
    let entries: Vec<walkdir::DirEntry> = walk
        .filter_entry(|e| {
            let crossing = e.depth() > 0
                && e.file_type().is_dir()
                && (e.metadata().is_ok_and(|m| m.dev() != dev) || mounts.contains(e.path()));
            if crossing {
                mounted.push(e.path().to_path_buf());
            }
            !crossing
        })
        .collect::<Result<_, _>>()?;
    for entry in entries.iter().rev() {
        let path = entry.path();
        if entry.file_type().is_dir() {
            let leads_to_mount = mounted.iter().any(|m| m.starts_with(path));
            if !leads_to_mount {
                fs::remove_dir(path)?;
            }
        } else {
            fs::remove_file(path)?;
        }
    }
    kept.extend(mounted);
    Ok(())
}

/// Every mount point of this system (same-device bind mounts included, which a device
/// check alone would miss).
pub(crate) fn mount_points() -> HashSet<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount(p)))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_removal_leaves_mount_points_and_what_leads_to_them() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("x");
        for p in ["a/deep", "m/inside", "n"] {
            fs::create_dir_all(top.join(p)).unwrap();
        }
        fs::write(top.join("a/deep/f"), "f").unwrap();
        fs::write(top.join("m/inside/g"), "g").unwrap();
        fs::write(top.join("n/h"), "h").unwrap();
        let dev = fs::metadata(&top).unwrap().dev();
        let mounts = HashSet::from([top.join("m")]);
        let mut kept = Vec::new();
        remove_tree(&top, dev, &mounts, &mut kept).unwrap();
        assert_eq!(kept, [top.join("m")]);
        assert!(top.join("m/inside/g").is_file());
        assert!(!top.join("a").exists() && !top.join("n").exists());
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mount(r"/mnt/a\040b\134c"), "/mnt/a b\\c");
        assert_eq!(unescape_mount(r"/x\04"), r"/x\04");
    }
}
