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
mod whiteout;
mod writer;

pub use bounds::{LIMIT_ENV, UnpackLimits};
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::Path;
pub(crate) use writer::{Stream, TreeWriter};

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

/// Unpacks `archive` into a new `.unpacking-*` directory under `parent`, removed when the
/// returned handle is dropped; on an error nothing of it is left.
pub(crate) fn unpack_staged(
    archive: &Path,
    compression: Compression,
    parent: &Path,
    limits: &UnpackLimits,
) -> Result<tempfile::TempDir, RootfsError> {
    let tmp = staging_dir(parent)?;
    tracing::info!(archive = %archive.display(), "unpacking rootfs archive");
    let unpacked = open_decompressed(archive, compression)
        .and_then(|reader| unpack(reader, tmp.path(), archive, limits));
    match unpacked {
        Ok(()) => Ok(tmp),
        Err(e) => {
            discard(tmp);
            Err(e)
        }
    }
}

/// A new empty `.unpacking-*` directory under `parent` (created when missing); the name
/// lets [`super::prune`] remove one a dead run left.
pub(crate) fn staging_dir(parent: &Path) -> Result<tempfile::TempDir, RootfsError> {
    let io_err = |source| RootfsError::Io {
        path: parent.to_path_buf(),
        source,
    };
    fs::create_dir_all(parent).map_err(io_err)?;
    tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(parent)
        .map_err(io_err)
}

/// Removes a staged tree that is not wanted; a failure is left to a later prune.
pub(crate) fn discard(tmp: tempfile::TempDir) {
    // Kept from the drop's plain removal: the tree may hold read-only directories.
    let staged = tmp.keep();
    if let Err(rm) = super::prune::remove_tree(&staged) {
        tracing::warn!(dir = %staged.display(), error = %rm, "could not remove a partial unpack; the next run removes it");
    }
}

/// Renames a finished staged tree to `done`, so a crash or a concurrent run never sees half
/// a tree.
pub(crate) fn place(staged: tempfile::TempDir, done: &Path) -> Result<(), RootfsError> {
    let staged = staged.keep();
    if let Err(e) = fs::rename(&staged, done) {
        // Another run may have finished the same archive first; its tree is identical.
        let _ = fs::remove_dir_all(&staged);
        if !done.is_dir() {
            return Err(RootfsError::Io {
                path: done.to_path_buf(),
                source: e,
            });
        }
    }
    Ok(())
}

pub(crate) fn open_decompressed(
    archive: &Path,
    compression: Compression,
) -> Result<Box<dyn Read>, RootfsError> {
    let file = fs::File::open(archive).map_err(|source| RootfsError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    decompress(file, compression).map_err(|source| RootfsError::Archive {
        archive: archive.to_path_buf(),
        at: "at its start".into(),
        source,
    })
}

/// `reader` decompressed.
pub(crate) fn decompress<'a>(
    reader: impl Read + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(BufReader::new(reader)),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(reader))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// Unpacks a tar stream into the empty directory `dest`.
pub(super) fn unpack(
    reader: impl Read,
    dest: &Path,
    archive: &Path,
    limits: &UnpackLimits,
) -> Result<(), RootfsError> {
    let mut tree = TreeWriter::new(dest, limits)?;
    tree.apply(reader, archive, Stream::Archive)?;
    tree.finish()
}
