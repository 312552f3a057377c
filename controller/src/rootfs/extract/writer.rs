//! Writing tar streams into one tree under the safety rules and bounds of the module doc:
//! a plain rootfs archive is one stream; an image is one stream per layer, applied in order
//! into the same tree, with whiteouts (see [`super::whiteout`]).

use super::bounds::{MAX_HEADER_BYTES, Meter, MeterState, Space, size};
use super::whiteout::{self, Planted, Tree, Whiteout};
use crate::rootfs::{RootfsError, TooLarge, UnpackLimits};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use installer_proto::human;
use installer_proto::manifest::{DirTree, check_rel_path, links, paths};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use tar::EntryType;

/// What a stream is: a whole rootfs archive, or one image layer over the layers before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// A rootfs archive: `.wh.` names are plain files, and the stream must hold something.
    Archive,
    /// An image layer: whiteouts delete from lower layers, an entry may replace a lower
    /// layer's directory, and an empty layer is fine.
    Layer,
}

/// A tree being unpacked from one or more tar streams into the empty directory `dest`.
pub(crate) struct TreeWriter<'a> {
    dest: &'a Path,
    tree: Tree,
    space: Space<'a>,
}

impl<'a> TreeWriter<'a> {
    /// Starts a tree in the empty directory `dest`, bounded by `limits` over all streams.
    pub(crate) fn new(dest: &'a Path, limits: &'a UnpackLimits) -> Result<Self, RootfsError> {
        let dir = Dir::open_ambient_dir(dest, cap_std::ambient_authority()).map_err(|source| {
            RootfsError::Io {
                path: dest.to_path_buf(),
                source,
            }
        })?;
        Ok(TreeWriter {
            dest,
            tree: Tree {
                dir,
                links: BTreeMap::new(),
                dirs: BTreeMap::new(),
            },
            space: Space {
                limits,
                dest,
                unpacked: 0,
                entries: 0,
                since_check: 0,
            },
        })
    }

    /// Applies one tar stream; `archive` names it in errors (the archive, or the archive and
    /// the layer's blob).
    pub(crate) fn apply(
        &mut self,
        reader: impl Read,
        archive: &Path,
        stream: Stream,
    ) -> Result<(), RootfsError> {
        let TreeWriter { dest, tree, space } = self;
        let dest: &Path = dest;
        let limits = space.limits;
        let bad = |entry: &str, reason: &str| unsafe_entry(archive, entry, reason);
        let state = Rc::new(MeterState::default());
        // `within` says which entry: "after entry \"x\"" for a header, "in entry \"x\"" for content.
        let read_err = |source: io::Error, within: Option<String>| RootfsError::Archive {
            archive: archive.to_path_buf(),
            at: match within {
                Some(entry) => format!("at byte {} of the tar stream, {entry}", state.offset.get()),
                None => format!("at byte {} of the tar stream", state.offset.get()),
            },
            source: printable(source),
        };
        let after = |name: &Option<String>| {
            name.as_ref()
                .map(|n| format!("after entry {}", paths::quote(n)))
        };
        let inside = |name: &str| Some(format!("in entry {}", paths::quote(name)));
        let too_large = |space: &Space, entry: &str, reason: String| {
            let free = space.free().unwrap_or(0);
            RootfsError::TooLarge(Box::new(TooLarge {
                archive: archive.to_path_buf(),
                entry: paths::quote(entry),
                reason,
                unpacked: size(space.unpacked),
                free: size(free),
                dir: dest.parent().unwrap_or(dest).to_path_buf(),
                limit: size(limits.max_bytes),
                keep_free: human::bytes(limits.keep_free),
            }))
        };
        let mut tar = tar::Archive::new(Meter {
            inner: reader,
            state: state.clone(),
        });
        let entries_before = space.entries;
        // What this layer wrote: a whiteout only hides what lower layers wrote.
        let mut this_layer: BTreeSet<String> = BTreeSet::new();
        let layered = stream == Stream::Layer;
        let mut last: Option<String> = None;
        let mut entries = tar.entries().map_err(|e| read_err(e, None))?;
        loop {
            state.budget.set(Some(MAX_HEADER_BYTES));
            let Some(entry) = entries.next() else { break };
            let mut entry = entry.map_err(|e| read_err(e, after(&last)))?;
            state.budget.set(None);
            let raw_bytes = entry.path_bytes();
            let Ok(raw) = std::str::from_utf8(&raw_bytes).map(str::to_string) else {
                return Err(RootfsError::UnsafeEntry {
                    archive: archive.to_path_buf(),
                    entry: paths::quote_bytes(&raw_bytes),
                    reason: "the name is not valid UTF-8".into(),
                });
            };
            last = Some(raw.clone());
            let header = entry.header();
            let kind = header.entry_type();
            if matches!(
                kind,
                EntryType::XGlobalHeader
                    | EntryType::XHeader
                    | EntryType::GNULongName
                    | EntryType::GNULongLink
            ) {
                continue;
            }
            let Some(rel) = clean(&raw) else { continue };
            check_rel_path(&rel).map_err(|e| bad(&raw, &e.to_string()))?;
            space.entry().map_err(|r| too_large(space, &raw, r))?;
            if through_link(&rel, &tree.links) {
                return Err(bad(&raw, "it lies below a symlink of the archive"));
            }
            let target = dest.join(&rel);
            // Errors here come from what the archive holds (a file where it later wants a
            // directory, …): they name the entry.
            let io = |source| RootfsError::Unpack {
                archive: archive.to_path_buf(),
                entry: paths::quote(&raw),
                path: target.clone(),
                source,
            };
            if layered {
                match whiteout::parse(&rel) {
                    Ok(None) => {}
                    Ok(Some(w)) => {
                        tree.whiteout(&w, &this_layer).map_err(io)?;
                        if let Whiteout::Opaque { dir } = w {
                            // The directory is now this layer's: its own entries stay.
                            this_layer.insert(dir);
                        }
                        continue;
                    }
                    Err(reason) => return Err(bad(&raw, &reason)),
                }
            }
            if let Some((parent, _)) = rel.rsplit_once('/') {
                tree.dir.create_dir_all(parent).map_err(io)?;
            }
            let mode = header.mode().map_err(|e| read_err(e, inside(&raw)))? & 0o7777;
            // A lower layer's directory may be replaced by a non-directory; within one
            // stream that would drop what the stream itself put in it.
            let replace_dir = layered && !this_layer.contains(&rel);
            if layered {
                this_layer.insert(rel.clone());
            }
            match kind {
                EntryType::Directory => {
                    if !tree.dir.symlink_metadata(&rel).is_ok_and(|m| m.is_dir()) {
                        tree.clear(&rel, false).map_err(io)?;
                        tree.dir.create_dir(&rel).map_err(io)?;
                    }
                    tree.links.remove(&rel);
                    tree.dirs.insert(rel, mode);
                }
                EntryType::Regular | EntryType::Continuous => {
                    let mtime = header.mtime().unwrap_or(0);
                    let len = entry.size();
                    space
                        .file(len)
                        .map_err(io)?
                        .map_err(|r| too_large(space, &raw, r))?;
                    tree.clear(&rel, replace_dir).map_err(io)?;
                    let out = tree
                        .dir
                        .open_with(
                            &rel,
                            OpenOptions::new().write(true).create_new(true).mode(0o600),
                        )
                        .map_err(io)?;
                    let mut out = out.into_std();
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut left = len;
                    loop {
                        let n = entry
                            .read(&mut buf)
                            .map_err(|e| read_err(e, inside(&raw)))?;
                        if n == 0 {
                            break;
                        }
                        out.write_all(&buf[..n]).map_err(io)?;
                        left = left.saturating_sub(n as u64);
                        space
                            .wrote(n as u64, left)
                            .map_err(io)?
                            .map_err(|r| too_large(space, &raw, r))?;
                    }
                    out.set_permissions(fs::Permissions::from_mode(mode))
                        .map_err(io)?;
                    // Keeping the archive's mtimes keeps hash-cache stamps stable.
                    let _ = out.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
                    tree.links.remove(&rel);
                }
                EntryType::Symlink => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| bad(&raw, "symlink without a target"))?;
                    let link = std::str::from_utf8(&link)
                        .map_err(|_| bad(&raw, "symlink target is not valid UTF-8"))?
                        .to_string();
                    if link.starts_with('/') || link.chars().any(char::is_control) {
                        // Refused whatever the rest of the archive holds; the resolver says why.
                        let why = links::resolve(&DirTree::open(dest).map_err(io)?, &rel, &link)
                            .err()
                            .map_or_else(
                                || "absolute symlink target".to_string(),
                                |e| e.to_string(),
                            );
                        return Err(bad(&raw, &why));
                    }
                    tree.clear(&rel, replace_dir).map_err(io)?;
                    tree.dir.symlink(&link, &rel).map_err(io)?;
                    tree.links.insert(
                        rel,
                        Planted {
                            archive: archive.to_path_buf(),
                            raw: raw.clone(),
                            target: link,
                        },
                    );
                }
                EntryType::Link => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| bad(&raw, "hard link without a target"))?;
                    let link =
                        std::str::from_utf8(&link)
                            .ok()
                            .and_then(clean)
                            .ok_or_else(|| {
                                bad(&raw, "hard link target is not a clean relative path")
                            })?;
                    if check_rel_path(&link).is_err() || through_link(&link, &tree.links) {
                        return Err(bad(
                            &raw,
                            &format!("hard link target {link:?} leaves the rootfs"),
                        ));
                    }
                    if !tree.dir.symlink_metadata(&link).is_ok_and(|m| m.is_file()) {
                        return Err(bad(
                            &raw,
                            &format!(
                                "hard link target {link:?} is not a regular file unpacked before it"
                            ),
                        ));
                    }
                    tree.clear(&rel, replace_dir).map_err(io)?;
                    tree.dir.hard_link(&link, &tree.dir, &rel).map_err(io)?;
                    tree.links.remove(&rel);
                }
                other => {
                    let what = match other {
                        EntryType::Char | EntryType::Block => "a device node",
                        EntryType::Fifo => "a fifo",
                        EntryType::GNUSparse => "a sparse file",
                        _ => "an entry of an unknown type",
                    };
                    return Err(bad(&raw, &format!("{what} cannot be part of a rootfs")));
                }
            }
        }
        if stream == Stream::Archive && space.entries == entries_before {
            return Err(RootfsError::Archive {
                archive: archive.to_path_buf(),
                at: format!("at byte {} of the tar stream", state.offset.get()),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the archive holds no files or directories",
                ),
            });
        }
        Ok(())
    }

    /// Checks every symlink against the whole tree and sets the directory modes.
    pub(crate) fn finish(self) -> Result<(), RootfsError> {
        let TreeWriter { dest, tree, .. } = self;
        // Only now is the whole tree known: a link may lead through links unpacked after it.
        let lookup = DirTree::open(dest).map_err(|source| RootfsError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        for (rel, planted) in &tree.links {
            links::resolve(&lookup, rel, &planted.target)
                .map_err(|e| unsafe_entry(&planted.archive, &planted.raw, &e.to_string()))?;
        }
        // Directory modes last, deepest first: a read-only directory must not stop its own
        // content from being written.
        let mut dirs: Vec<(String, u32)> = tree.dirs.into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (rel, mode) in dirs {
            tree.dir
                .set_permissions(
                    &rel,
                    cap_std::fs::Permissions::from_std(fs::Permissions::from_mode(mode)),
                )
                .map_err(|source| RootfsError::Io {
                    path: dest.join(&rel),
                    source,
                })?;
        }
        Ok(())
    }
}

fn unsafe_entry(archive: &Path, entry: &str, reason: &str) -> RootfsError {
    RootfsError::UnsafeEntry {
        archive: archive.to_path_buf(),
        entry: paths::quote(entry),
        reason: reason.to_string(),
    }
}

/// The tar reader's errors quote header bytes as they are (`… when getting cksum for
/// <name>`); those of a hostile archive must not reach a terminal raw.
fn printable(e: io::Error) -> io::Error {
    let text = e.to_string();
    if !text.chars().any(char::is_control) {
        return e;
    }
    let escaped: String = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    io::Error::new(e.kind(), escaped)
}

/// `./a/b/` → `a/b`; `None` for the archive's root itself.
fn clean(raw: &str) -> Option<String> {
    let mut s = raw;
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.trim_start_matches('/');
    }
    let s = s.trim_end_matches('/');
    (!s.is_empty() && s != ".").then(|| s.to_string())
}

/// Whether a strict ancestor of `rel` is a symlink the archive created. The target starts
/// empty and only this unpack writes to it, so these are all the links there are.
fn through_link<V>(rel: &str, links: &BTreeMap<String, V>) -> bool {
    rel.match_indices('/')
        .any(|(i, _)| links.contains_key(&rel[..i]))
}
