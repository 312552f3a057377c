//! Unpacking a rootfs archive into the cache, safely and atomically.
//!
//! Safety: every entry must be a clean relative path (`./` prefixes allowed), symlink
//! targets must stay inside the tree, hard links must point at a regular file already
//! unpacked, nothing is written through a symlink the archive planted, and device nodes or
//! fifos are refused. Atomicity: the tree is unpacked into a temporary directory beside its
//! final name and renamed into place, so a crash or a concurrent run never sees half a tree.

use super::RootfsError;
use installer_proto::manifest::{check_rel_path, symlink_stays_inside};
use std::collections::HashSet;
use std::fs;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
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
pub fn unpack_cached(
    archive: &Path,
    compression: Compression,
    parent: &Path,
    key: &str,
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
    let file = fs::File::open(archive).map_err(io_err(archive))?;
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(BufReader::new(file)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(|source| {
                RootfsError::Archive {
                    archive: archive.to_path_buf(),
                    source,
                }
            })?)
        }
    };
    unpack(reader, tmp.path(), archive)?;
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

/// Unpacks a tar stream into the empty directory `dest`.
pub fn unpack(reader: impl Read, dest: &Path, archive: &Path) -> Result<(), RootfsError> {
    let bad = |entry: &str, reason: &str| RootfsError::UnsafeEntry {
        archive: archive.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let read_err = |source: io::Error| RootfsError::Archive {
        archive: archive.to_path_buf(),
        source,
    };
    let mut tar = tar::Archive::new(reader);
    let mut links: HashSet<String> = HashSet::new();
    let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?;
        let Some(raw) = raw.to_str().map(str::to_string) else {
            return Err(bad(&raw.to_string_lossy(), "the name is not valid UTF-8"));
        };
        let Some(rel) = clean(&raw) else { continue };
        check_rel_path(&rel).map_err(|e| bad(&raw, &e.to_string()))?;
        if through_link(&rel, &links) {
            return Err(bad(&raw, "it lies below a symlink of the archive"));
        }
        let target = dest.join(&rel);
        let io = |source| RootfsError::Io {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io)?;
        }
        let header = entry.header();
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let kind = header.entry_type();
        match kind {
            EntryType::Directory => {
                if !fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    remove_existing(&target).map_err(io)?;
                    fs::create_dir(&target).map_err(io)?;
                }
                dirs.push((target.clone(), mode));
            }
            EntryType::Regular | EntryType::Continuous => {
                remove_existing(&target).map_err(io)?;
                let mtime = header.mtime().unwrap_or(0);
                let mut out = fs::File::create_new(&target).map_err(io)?;
                io::copy(&mut entry, &mut out).map_err(read_err)?;
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(io)?;
                // Keeping the archive's mtimes keeps hash-cache stamps stable.
                let _ = out.set_modified(UNIX_EPOCH + Duration::from_secs(mtime));
                links.remove(&rel);
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| bad(&raw, "symlink without a target"))?;
                let link = link
                    .to_str()
                    .ok_or_else(|| bad(&raw, "symlink target is not valid UTF-8"))?
                    .to_string();
                if !symlink_stays_inside(&rel, &link) {
                    return Err(bad(
                        &raw,
                        &format!("symlink target {link:?} leaves the rootfs"),
                    ));
                }
                remove_existing(&target).map_err(io)?;
                std::os::unix::fs::symlink(&link, &target).map_err(io)?;
                links.insert(rel);
            }
            EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| bad(&raw, "hard link without a target"))?;
                let link = link
                    .to_str()
                    .and_then(clean)
                    .ok_or_else(|| bad(&raw, "hard link target is not a clean relative path"))?;
                if check_rel_path(&link).is_err() || through_link(&link, &links) {
                    return Err(bad(
                        &raw,
                        &format!("hard link target {link:?} leaves the rootfs"),
                    ));
                }
                let source = dest.join(&link);
                if !fs::symlink_metadata(&source).is_ok_and(|m| m.is_file()) {
                    return Err(bad(
                        &raw,
                        &format!(
                            "hard link target {link:?} is not a regular file unpacked before it"
                        ),
                    ));
                }
                remove_existing(&target).map_err(io)?;
                fs::hard_link(&source, &target).map_err(io)?;
                links.remove(&rel);
            }
            EntryType::XGlobalHeader
            | EntryType::XHeader
            | EntryType::GNULongName
            | EntryType::GNULongLink => {}
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
    // Directory modes last, deepest first: a read-only directory must not stop its own
    // content from being written.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.as_os_str().len()));
    for (dir, mode) in dirs {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(|source| {
            RootfsError::Io {
                path: dir.clone(),
                source,
            }
        })?;
    }
    Ok(())
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

/// Whether a strict ancestor of `rel` is a symlink the archive created.
fn through_link(rel: &str, links: &HashSet<String>) -> bool {
    rel.match_indices('/')
        .any(|(i, _)| links.contains(&rel[..i]))
}

/// Removes a non-directory at `path` (a later entry replaces an earlier one); a directory
/// stays, since replacing it with a file would drop what was unpacked into it.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a directory of the same name is already in the archive",
        )),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
