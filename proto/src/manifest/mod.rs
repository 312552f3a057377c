//! The file manifest of a merged rootfs: every path with its kind, mode, size and content
//! hash. The controller computes it from the merged tree it is about to ship; the agent
//! verifies received content against it and answers which files it still lacks. Diffing two
//! manifests happens here and nowhere else.
//!
//! What a path may be is in [`paths`]; where a link leads is worked out by [`links`], which
//! resolves it component by component against the tree, so [`Manifest::validate`] refuses
//! a link that leaves the tree through other links, whatever its text.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;

pub mod links;
pub mod paths;

pub use links::{DirTree, LinkError, Lookup, Node, Resolved};
pub use paths::{check_rel_path, join_rel, quote};

/// One path of a tree, relative to the tree's root, `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path such as `etc/containerd/config.toml.tmpl`; see [`check_rel_path`].
    pub path: String,
    /// Permission bits (`mode & 0o7777`). Owners are not carried: the agent writes files as
    /// root, because a rootfs built on a workstation has the builder's uid on every file.
    pub mode: u32,
    /// What the path is.
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// The kind of a manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A regular file with its size and lowercase hex SHA-256.
    File {
        /// Size in bytes.
        size: u64,
        /// Lowercase hex SHA-256 of the content (comparable with `sha256sum`).
        sha256: String,
    },
    /// A directory.
    Dir,
    /// A symbolic link; the target is kept verbatim and must stay inside the tree.
    Symlink {
        /// The link's target as stored in the link.
        target: String,
    },
}

impl Entry {
    /// The content hash when this entry is a regular file.
    pub fn sha256(&self) -> Option<&str> {
        match &self.kind {
            EntryKind::File { sha256, .. } => Some(sha256),
            _ => None,
        }
    }

    /// The size when this entry is a regular file, else 0.
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File { size, .. } => *size,
            _ => 0,
        }
    }

    /// Whether this entry is a regular file.
    pub fn is_file(&self) -> bool {
        matches!(self.kind, EntryKind::File { .. })
    }
}

/// A whole tree: entries sorted by path, each path once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The entries, sorted by `path`.
    pub entries: Vec<Entry>,
}

/// Why a manifest could not be built or accepted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A path is not a clean relative path.
    #[error("{path:?}: {reason}")]
    BadPath {
        /// The offending path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path holds a control character (a newline, an escape sequence, …).
    #[error(
        "{path:?}: contains the control character U+{:04X}; rename it (names with control characters are refused)",
        *ch as u32
    )]
    ControlChar {
        /// The offending path.
        path: String,
        /// The first control character in it.
        ch: char,
    },
    /// A file name read from disk is not UTF-8.
    #[error("{path}: the name is not valid UTF-8; rename it")]
    NotUtf8 {
        /// The path, quoted, with the bytes that are not UTF-8 as `\xNN`.
        path: String,
    },
    /// A symlink does not resolve inside the tree (boxed: it carries the whole chain).
    #[error(transparent)]
    Link(Box<LinkError>),
    /// A file type that cannot be shipped (device, socket, fifo).
    #[error("{path}: {what} cannot be part of a rootfs; remove it")]
    Unsupported {
        /// The offending path.
        path: String,
        /// What kind of file it is.
        what: &'static str,
    },
    /// The same path twice.
    #[error("{0}: listed twice in the manifest")]
    Duplicate(String),
    /// Reading the tree failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path being read.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl From<LinkError> for ManifestError {
    fn from(e: LinkError) -> Self {
        ManifestError::Link(Box::new(e))
    }
}

/// Lowercase hex SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lowercase hex SHA-256 of a file's content.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_reader(fs::File::open(path)?)
}

/// Lowercase hex SHA-256 of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

impl Manifest {
    /// Builds a manifest from entries, sorting them and rejecting bad or duplicate paths and
    /// escaping symlinks.
    pub fn from_entries(mut entries: Vec<Entry>) -> Result<Manifest, ManifestError> {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        for pair in entries.windows(2) {
            if pair[0].path == pair[1].path {
                return Err(ManifestError::Duplicate(pair[0].path.clone()));
            }
        }
        let manifest = Manifest { entries };
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every path and symlink; also that every entry's parent is a directory entry
    /// (so the agent can create the tree top-down). Call this on any manifest received from
    /// the other side before acting on it.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut dirs = BTreeSet::new();
        let mut prev: Option<&str> = None;
        for entry in &self.entries {
            check_rel_path(&entry.path)?;
            if let Some(p) = prev
                && p >= entry.path.as_str()
            {
                return Err(ManifestError::Duplicate(entry.path.clone()));
            }
            prev = Some(&entry.path);
            if let Some((parent, _)) = entry.path.rsplit_once('/')
                && !dirs.contains(parent)
            {
                return Err(ManifestError::BadPath {
                    path: entry.path.clone(),
                    reason: "its parent directory is not listed before it",
                });
            }
            match &entry.kind {
                EntryKind::Dir => {
                    dirs.insert(entry.path.as_str());
                }
                // Resolved below, once every entry a link may lead through is known.
                EntryKind::Symlink { .. } => {}
                EntryKind::File { sha256, .. } => {
                    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(ManifestError::BadPath {
                            path: entry.path.clone(),
                            reason: "sha256 is not 64 hex digits",
                        });
                    }
                }
            }
        }
        // What the agent places is exactly this tree, so resolving each link against it is
        // resolving it against the host's copy: a link that leaves it is refused, however
        // harmless its text looks.
        for entry in &self.entries {
            if let EntryKind::Symlink { target } = &entry.kind {
                links::resolve(self, &entry.path, target)?;
            }
        }
        Ok(())
    }

    /// Scans a directory into a manifest: walks without following symlinks and hashes every
    /// regular file.
    pub fn scan(root: &Path) -> Result<Manifest, ManifestError> {
        let mut entries = Vec::new();
        scan_dir(root, "", &mut entries)?;
        Manifest::from_entries(entries)
    }

    /// Looks up one path.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Iterates the regular files.
    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_file())
    }

    /// Total size of all regular files.
    pub fn total_bytes(&self) -> u64 {
        self.files().map(Entry::size).sum()
    }

    /// Entries under `prefix` (a directory path without trailing `/`), not including the
    /// directory itself.
    pub fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| {
            e.path.len() > prefix.len()
                && e.path.starts_with(prefix)
                && e.path.as_bytes()[prefix.len()] == b'/'
        })
    }

    /// A copy without `prefix` and everything under it (e.g. `registry` for hosts that do
    /// not run the registry).
    pub fn without(&self, prefix: &str) -> Manifest {
        let entries = self
            .entries
            .iter()
            .filter(|e| {
                !(e.path == prefix
                    || (e.path.starts_with(prefix)
                        && e.path.as_bytes().get(prefix.len()) == Some(&b'/')))
            })
            .cloned()
            .collect();
        Manifest { entries }
    }

    /// A hash of the whole manifest (paths, kinds, modes and content hashes), identifying a
    /// tree's exact content.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for e in &self.entries {
            hasher.update(e.path.as_bytes());
            hasher.update([0]);
            hasher.update(e.mode.to_le_bytes());
            match &e.kind {
                EntryKind::File { size, sha256 } => {
                    hasher.update(b"f");
                    hasher.update(size.to_le_bytes());
                    hasher.update(sha256.as_bytes());
                }
                EntryKind::Dir => hasher.update(b"d"),
                EntryKind::Symlink { target } => {
                    hasher.update(b"l");
                    hasher.update(target.as_bytes());
                }
            }
            hasher.update([0]);
        }
        hex(&hasher.finalize())
    }
}

/// A manifest is the tree an agent builds; links are resolved against its entries.
impl Lookup for Manifest {
    fn node(&self, path: &str) -> io::Result<Node> {
        Ok(match self.get(path).map(|e| &e.kind) {
            None => Node::Missing,
            Some(EntryKind::Dir) => Node::Dir,
            Some(EntryKind::File { .. }) => Node::File,
            Some(EntryKind::Symlink { target }) => Node::Link(target.clone()),
        })
    }
}

/// The regular files of `want` whose content `have` lacks: not present at that path with
/// the same hash. `have` maps path → sha256 of what the receiving side already holds.
pub fn missing_files<'a>(want: &'a Manifest, have: &BTreeMap<String, String>) -> Vec<&'a Entry> {
    want.files()
        .filter(|e| have.get(&e.path).map(String::as_str) != e.sha256())
        .collect()
}

fn scan_dir(dir: &Path, rel: &str, out: &mut Vec<Entry>) -> Result<(), ManifestError> {
    let io_err = |path: &Path, source| ManifestError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let item = item.map_err(|e| io_err(dir, e))?;
        names.push(item.file_name());
    }
    names.sort();
    for name in names {
        let name_str = paths::name_str(dir, &name)?;
        let abs = dir.join(&name);
        let path = if rel.is_empty() {
            name_str.to_string()
        } else {
            format!("{rel}/{name_str}")
        };
        let entry = entry_for(&abs, path)?;
        let is_dir = matches!(entry.kind, EntryKind::Dir);
        let path = entry.path.clone();
        out.push(entry);
        if is_dir {
            scan_dir(&abs, &path, out)?;
        }
    }
    Ok(())
}

/// Describes one path on disk as a manifest entry (hashing it when it is a file), without
/// following a symlink at `abs`.
pub fn entry_for(abs: &Path, path: String) -> Result<Entry, ManifestError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    check_rel_path(&path)?;
    let io_err = |source| ManifestError::Io {
        path: abs.display().to_string(),
        source,
    };
    let meta = fs::symlink_metadata(abs).map_err(io_err)?;
    let ft = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File {
            size: meta.len(),
            sha256: sha256_file(abs).map_err(io_err)?,
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(abs).map_err(io_err)?;
        let target = target
            .to_str()
            .ok_or(ManifestError::BadPath {
                path: path.clone(),
                reason: "symlink target is not valid UTF-8",
            })?
            .to_string();
        // Where it leads is judged against the whole tree (see `Manifest::validate`).
        EntryKind::Symlink { target }
    } else {
        let what = if ft.is_block_device() || ft.is_char_device() {
            "a device node"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a fifo"
        };
        return Err(ManifestError::Unsupported { path, what });
    };
    Ok(Entry { path, mode, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn scan_lists_everything_sorted_with_hashes_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc/sub")).unwrap();
        fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("etc/sub/a.conf"), b"hello").unwrap();
        symlink("tool", root.join("bin/alias")).unwrap();

        let m = Manifest::scan(root).unwrap();
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/alias",
                "bin/tool",
                "etc",
                "etc/sub",
                "etc/sub/a.conf"
            ]
        );
        let tool = m.get("bin/tool").unwrap();
        assert_eq!(tool.mode, 0o755);
        assert_eq!(tool.size(), 10);
        assert_eq!(
            m.get("etc/sub/a.conf").unwrap().sha256(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        assert_eq!(
            m.get("bin/alias").unwrap().kind,
            EntryKind::Symlink {
                target: "tool".into()
            }
        );
        assert_eq!(m.total_bytes(), 15);
        m.validate().unwrap();
    }

    #[test]
    fn scan_refuses_escaping_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/etc/shadow", dir.path().join("evil")).unwrap();
        let err = Manifest::scan(dir.path()).unwrap_err().to_string();
        assert!(err.contains("leads outside the rootfs"), "{err}");
    }

    #[test]
    fn scan_refuses_a_chain_of_links_that_leaves_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        symlink("../..", dir.path().join("a/b/up")).unwrap();
        symlink("a/b/up/../etc/shadow", dir.path().join("shadow")).unwrap();
        let err = Manifest::scan(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(r#"symlink "shadow" -> "a/b/up/../etc/shadow" leads outside"#),
            "{err}"
        );
    }

    fn dir(p: &str) -> Entry {
        Entry {
            path: p.into(),
            mode: 0o755,
            kind: EntryKind::Dir,
        }
    }

    fn link(p: &str, target: &str) -> Entry {
        Entry {
            path: p.into(),
            mode: 0o777,
            kind: EntryKind::Symlink {
                target: target.into(),
            },
        }
    }

    /// What an agent receives is checked by where its links lead in the tree it will
    /// build, not by their text: the chain from the report places a link that, on the host,
    /// resolves to `/etc/shadow` from `<dataRoot>/<cluster>/rootfs`.
    #[test]
    fn validate_resolves_links_through_the_tree() {
        let chain = Manifest {
            entries: vec![
                dir("a"),
                dir("a/b"),
                dir("a/b/c"),
                dir("a/b/c/d"),
                link("a/b/c/d/up", "../../../.."),
                dir("etc"),
                link("etc/shadow", "../a/b/c/d/up/../../../../etc/shadow"),
            ],
        };
        let err = chain.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            r#"symlink "etc/shadow" -> "../a/b/c/d/up/../../../../etc/shadow" leads outside the rootfs (to "<rootfs>/../../../../etc/shadow", via "a/b/c/d/up" -> "../../../.."); every link must resolve to a path inside the rootfs"#
        );
        // Forward references are fine: the link is resolved against the whole manifest.
        let fine = Manifest::from_entries(vec![
            link("bin", "opt/bin"),
            dir("opt"),
            dir("opt/bin"),
            link("x", "bin/../opt"),
        ]);
        assert!(fine.is_ok(), "{fine:?}");
        let looped = Manifest::from_entries(vec![link("a", "b"), link("b", "a/x")]);
        assert!(
            looped
                .unwrap_err()
                .to_string()
                .contains("more than 40 links followed"),
        );
    }

    #[test]
    fn validate_refuses_control_characters_in_names_and_targets() {
        let file = |p: &str| Entry {
            path: p.into(),
            mode: 0o755,
            kind: EntryKind::File {
                size: 0,
                sha256: "0".repeat(64),
            },
        };
        let m = Manifest {
            entries: vec![dir("bin"), file("bin/evil\nname")],
        };
        assert_eq!(
            m.validate().unwrap_err().to_string(),
            r#""bin/evil\nname": contains the control character U+000A; rename it (names with control characters are refused)"#
        );
        let m = Manifest {
            entries: vec![link("l", "a\u{1b}[2Jb")],
        };
        let err = m.validate().unwrap_err().to_string();
        assert!(err.contains("U+001B") && !err.contains('\u{1b}'), "{err}");
    }

    #[test]
    fn scan_refuses_a_file_named_with_a_newline() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("evil\nname"), b"x").unwrap();
        let err = Manifest::scan(d.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(r#""evil\nname": contains the control character U+000A"#),
            "{err}"
        );
    }

    #[test]
    fn validate_rejects_received_garbage() {
        let file = |p: &str| Entry {
            path: p.into(),
            mode: 0o644,
            kind: EntryKind::File {
                size: 0,
                sha256: "0".repeat(64),
            },
        };
        let m = Manifest {
            entries: vec![file("../x")],
        };
        assert!(m.validate().is_err());
        let m = Manifest {
            entries: vec![file("dir/x")],
        };
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("parent directory")
        );
        let m = Manifest {
            entries: vec![file("b"), file("a")],
        };
        assert!(m.validate().is_err());
    }

    #[test]
    fn missing_files_compares_hashes() {
        let e = |p: &str, h: char| Entry {
            path: p.into(),
            mode: 0o644,
            kind: EntryKind::File {
                size: 1,
                sha256: h.to_string().repeat(64),
            },
        };
        let want = Manifest::from_entries(vec![e("a", 'a'), e("b", 'b'), e("c", 'c')]).unwrap();
        let have: BTreeMap<String, String> = [
            ("a".to_string(), "a".repeat(64)),
            ("b".to_string(), "f".repeat(64)),
        ]
        .into();
        let missing: Vec<_> = missing_files(&want, &have)
            .iter()
            .map(|e| e.path.clone())
            .collect();
        assert_eq!(missing, ["b", "c"]);
    }

    #[test]
    fn without_and_under_respect_component_boundaries() {
        let d = |p: &str| Entry {
            path: p.into(),
            mode: 0o755,
            kind: EntryKind::Dir,
        };
        let m = Manifest::from_entries(vec![
            d("registry"),
            d("registry/docker"),
            d("registry2"),
            d("etc"),
        ])
        .unwrap();
        let kept: Vec<_> = m
            .without("registry")
            .entries
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(kept, ["etc", "registry2"]);
        let under: Vec<_> = m.under("registry").map(|e| e.path.as_str()).collect();
        assert_eq!(under, ["registry/docker"]);
    }

    #[test]
    fn digest_changes_with_content_and_mode() {
        let f = |mode, h: char| {
            Manifest::from_entries(vec![Entry {
                path: "a".into(),
                mode,
                kind: EntryKind::File {
                    size: 1,
                    sha256: h.to_string().repeat(64),
                },
            }])
            .unwrap()
        };
        assert_eq!(f(0o644, 'a').digest(), f(0o644, 'a').digest());
        assert_ne!(f(0o644, 'a').digest(), f(0o755, 'a').digest());
        assert_ne!(f(0o644, 'a').digest(), f(0o644, 'b').digest());
    }
}
