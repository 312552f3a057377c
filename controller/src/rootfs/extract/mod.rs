//! Unpacking a rootfs archive into the cache, safely, atomically and within bounds.
//!
//! Safety: every entry must be a clean relative path (`./` prefixes allowed) of UTF-8 names
//! without control characters; every write goes through one `cap_std` directory handle of
//! the target (so nothing can be created outside it), never below a symlink the archive
//! planted; hard links must point at a regular file already unpacked; device nodes or fifos
//! are refused; and once the whole tree is there, every symlink is resolved component by
//! component against it and must stay inside.
//!
//! Bounds: the unpacked size is checked as it grows against a limit and against the free
//! space of the cache's file system, the number of entries is capped, and the tar headers
//! between two entries (GNU long names, PAX records, which the tar reader holds in memory)
//! are capped too. An error says how much was unpacked, what is free and the limit.
//!
//! Atomicity: the tree is unpacked into a temporary directory beside its final name and
//! renamed into place, so a crash or a concurrent run never sees half a tree; a failed
//! unpack is removed.

use super::RootfsError;

mod bounds;

pub use bounds::{LIMIT_ENV, UnpackLimits};
use bounds::{MAX_HEADER_BYTES, Meter, MeterState, Space, size};
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use installer_proto::human;
use installer_proto::manifest::{DirTree, check_rel_path, links, paths};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use tar::EntryType;

/// The compression of an archive, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// `.tar`
    None,
    /// `.tar.gz`, `.tgz`
    Gzip,
    /// `.tar.zst`, `.tzst`
    Zstd,
}

impl Compression {
    /// The compression an archive name implies; `None` when the name is not an archive's.
    pub fn from_name(path: &Path) -> Option<Compression> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar") {
            Some(Compression::None)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Compression::Gzip)
        } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
            Some(Compression::Zstd)
        } else {
            None
        }
    }
}

/// Unpacks `archive` to `<parent>/<key>` unless that already exists, and returns that path.
/// On any error nothing of this unpack is left under `parent`.
pub(super) fn unpack_cached(
    archive: &Path,
    compression: Compression,
    parent: &Path,
    key: &str,
    limits: &UnpackLimits,
) -> Result<PathBuf, RootfsError> {
    let done = parent.join(key);
    if done.is_dir() {
        tracing::debug!(archive = %archive.display(), dir = %done.display(), "rootfs archive already unpacked");
        return Ok(done);
    }
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RootfsError::Io { path, source }
    };
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    tracing::info!(archive = %archive.display(), "unpacking rootfs archive");
    let unpacked = open_decompressed(archive, compression)
        .and_then(|reader| unpack(reader, tmp.path(), archive, limits));
    if let Err(e) = unpacked {
        let staged = tmp.path().to_path_buf();
        if let Err(rm) = tmp.close() {
            tracing::warn!(dir = %staged.display(), error = %rm, "could not remove a partial unpack; the next run removes it");
        }
        return Err(e);
    }
    let staged = tmp.keep();
    if let Err(e) = fs::rename(&staged, &done) {
        // Another run may have finished the same archive first; its tree is identical.
        let _ = fs::remove_dir_all(&staged);
        if !done.is_dir() {
            return Err(RootfsError::Io {
                path: done,
                source: e,
            });
        }
    }
    Ok(done)
}

fn open_decompressed(
    archive: &Path,
    compression: Compression,
) -> Result<Box<dyn Read>, RootfsError> {
    let file = fs::File::open(archive).map_err(|source| RootfsError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    Ok(match compression {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(|source| {
                RootfsError::Archive {
                    archive: archive.to_path_buf(),
                    at: "at its start".into(),
                    source,
                }
            })?)
        }
    })
}

/// Unpacks a tar stream into the empty directory `dest`.
pub(super) fn unpack(
    reader: impl Read,
    dest: &Path,
    archive: &Path,
    limits: &UnpackLimits,
) -> Result<(), RootfsError> {
    let bad = |entry: &str, reason: &str| RootfsError::UnsafeEntry {
        archive: archive.to_path_buf(),
        entry: paths::quote(entry),
        reason: reason.to_string(),
    };
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
    let dir = Dir::open_ambient_dir(dest, cap_std::ambient_authority()).map_err(|source| {
        RootfsError::Io {
            path: dest.to_path_buf(),
            source,
        }
    })?;
    let mut space = Space {
        limits,
        dest,
        unpacked: 0,
        entries: 0,
        since_check: 0,
    };
    let too_large = |space: &Space, entry: &str, reason: String| {
        let free = space.free().unwrap_or(0);
        RootfsError::TooLarge(Box::new(super::TooLarge {
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
    // Symlinks the archive created (path → raw name, target); nothing is written below them.
    let mut links: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut dirs: Vec<(String, u32)> = Vec::new();
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
        space.entry().map_err(|r| too_large(&space, &raw, r))?;
        if through_link(&rel, &links) {
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
        if let Some((parent, _)) = rel.rsplit_once('/') {
            dir.create_dir_all(parent).map_err(io)?;
        }
        let mode = header.mode().map_err(|e| read_err(e, inside(&raw)))? & 0o7777;
        match kind {
            EntryType::Directory => {
                if !dir.symlink_metadata(&rel).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&dir, &rel).map_err(io)?;
                    dir.create_dir(&rel).map_err(io)?;
                }
                links.remove(&rel);
                dirs.push((rel, mode));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mtime = header.mtime().unwrap_or(0);
                let len = entry.size();
                space
                    .file(len)
                    .map_err(io)?
                    .map_err(|r| too_large(&space, &raw, r))?;
                remove_existing(&dir, &rel).map_err(io)?;
                let out = dir
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
                        .map_err(|r| too_large(&space, &raw, r))?;
                }
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(io)?;
                // Keeping the archive's mtimes keeps hash-cache stamps stable.
                let _ = out.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
                links.remove(&rel);
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
                        .map_or_else(|| "absolute symlink target".to_string(), |e| e.to_string());
                    return Err(bad(&raw, &why));
                }
                remove_existing(&dir, &rel).map_err(io)?;
                dir.symlink(&link, &rel).map_err(io)?;
                links.insert(rel, (raw.clone(), link));
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad(&raw, "hard link without a target"))?;
                let link = std::str::from_utf8(&link)
                    .ok()
                    .and_then(clean)
                    .ok_or_else(|| bad(&raw, "hard link target is not a clean relative path"))?;
                if check_rel_path(&link).is_err() || through_link(&link, &links) {
                    return Err(bad(
                        &raw,
                        &format!("hard link target {link:?} leaves the rootfs"),
                    ));
                }
                if !dir.symlink_metadata(&link).is_ok_and(|m| m.is_file()) {
                    return Err(bad(
                        &raw,
                        &format!(
                            "hard link target {link:?} is not a regular file unpacked before it"
                        ),
                    ));
                }
                remove_existing(&dir, &rel).map_err(io)?;
                dir.hard_link(&link, &dir, &rel).map_err(io)?;
                links.remove(&rel);
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
    if space.entries == 0 {
        return Err(RootfsError::Archive {
            archive: archive.to_path_buf(),
            at: format!("at byte {} of the tar stream", state.offset.get()),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                "the archive holds no files or directories",
            ),
        });
    }
    // Only now is the whole tree known: a link may lead through links unpacked after it.
    let tree = DirTree::open(dest).map_err(|source| RootfsError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    for (rel, (raw, target)) in &links {
        links::resolve(&tree, rel, target).map_err(|e| bad(raw, &e.to_string()))?;
    }
    // Directory modes last, deepest first: a read-only directory must not stop its own
    // content from being written.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
    for (rel, mode) in dirs {
        dir.set_permissions(
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

/// Removes a non-directory at `rel` (a later entry replaces an earlier one); a directory
/// stays, since replacing it with a file would drop what was unpacked into it.
fn remove_existing(dir: &Dir, rel: &str) -> io::Result<()> {
    match dir.symlink_metadata(rel) {
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a directory of the same name is already in the archive",
        )),
        Ok(_) => dir.remove_file(rel),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
