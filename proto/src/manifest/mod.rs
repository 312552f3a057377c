//! The file manifest of a merged rootfs: every path with its kind, mode, size and content
//! hash. The controller forms it from the merged tree it is about to ship
//! (`MergedTree::manifest`, in the rootfs module); the agent validates it before acting on it,
//! verifies received content against it and answers which files it still lacks.
//!
//! What a path may be is in [`paths`]; where a link leads is worked out by [`links`], which
//! resolves it component by component against the tree, so [`Manifest::validate`] refuses
//! a link that leaves the tree through other links, whatever its text. Content hashes are
//! computed by [`hash`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io;

pub mod hash;
pub mod links;
pub mod paths;

pub use hash::{hex, sha256_bytes, sha256_file, sha256_reader};
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

#[cfg(test)]
mod tests;
