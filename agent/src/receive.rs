//! Receiving rootfs content: a zstd-compressed tar stream (from the controller) or copies
//! from a local tree (hand-run), written into the staging directory. Every file is checked
//! against the plan's manifest before it becomes visible: only paths the agent asked for,
//! regular files only, content hash equal to the manifest's. Nothing can land outside staging:
//! paths are checked, staging holds only directories the agent made, and no link is followed.

use crate::fsutil::{self, FsError};
use installer_proto::manifest::{Manifest, check_rel_path, join_rel, sha256_file};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Why received content was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// A path that would land outside the rootfs, or that was not asked for.
    #[error("refused {path:?}: {reason}")]
    Refused {
        /// The path as sent.
        path: String,
        /// Which path rule it breaks (absolute, `..`, not in the plan, …).
        reason: String,
    },
    /// Content that does not match the manifest.
    #[error(
        "{path}: content hash {got} does not match the plan's {want}; the transfer was corrupted — run apply again"
    )]
    HashMismatch {
        /// The rootfs path whose received bytes hashed wrong.
        path: String,
        /// The manifest's hash.
        want: String,
        /// What arrived.
        got: String,
    },
    /// Files that were asked for but never arrived.
    #[error("{count} requested file(s) did not arrive, first {first:?}; run apply again")]
    Missing {
        /// How many.
        count: usize,
        /// The first one.
        first: String,
    },
    /// The stream itself is broken.
    #[error("reading the file stream: {0}")]
    Stream(#[source] io::Error),
    /// Writing failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Totals of what arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Files.
    pub files: u64,
    /// Bytes (uncompressed).
    pub bytes: u64,
}

/// Accepts the files the agent asked for into `staging`.
pub(crate) struct Receiver<'a> {
    manifest: &'a Manifest,
    pending: BTreeSet<String>,
    staging: &'a Path,
    totals: Totals,
    /// Told of every verified file, while steps wait for them.
    arrivals: Option<std::sync::Arc<crate::incoming::Arrivals>>,
}

impl<'a> Receiver<'a> {
    /// Expects exactly `wanted` (paths of regular files of `manifest`).
    pub(crate) fn new(
        manifest: &'a Manifest,
        wanted: &[String],
        staging: &'a Path,
    ) -> Receiver<'a> {
        Receiver {
            manifest,
            pending: wanted.iter().cloned().collect(),
            staging,
            totals: Totals::default(),
            arrivals: None,
        }
    }

    /// The same receiver, telling `arrivals` of each file once it is verified.
    pub(crate) fn telling(
        mut self,
        arrivals: std::sync::Arc<crate::incoming::Arrivals>,
    ) -> Receiver<'a> {
        self.arrivals = Some(arrivals);
        self
    }

    /// Stores one file's content after checking its path and, once written, its hash.
    pub(crate) fn accept(
        &mut self,
        path: &str,
        content: &mut dyn Read,
    ) -> Result<(), ReceiveError> {
        let refused = |reason: &str| ReceiveError::Refused {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        check_rel_path(path).map_err(|e| refused(&e.to_string()))?;
        if !self.pending.contains(path) {
            return Err(refused("not a file this host asked for"));
        }
        let want = self
            .manifest
            .get(path)
            .and_then(|e| e.sha256().map(str::to_string))
            .ok_or_else(|| refused("not a regular file of the plan's manifest"))?;
        let target = join_rel(self.staging, path).map_err(|e| refused(&e.to_string()))?;
        if let Some(parent) = target.parent() {
            self.make_dirs(parent)?;
        }
        let n = fsutil::write_atomic_from(&target, content, 0o600)?;
        let got = sha256_file(&target).map_err(fsutil::ctx(&target, "hashing"))?;
        if got != want {
            let _ = fs::remove_file(&target);
            return Err(ReceiveError::HashMismatch {
                path: path.to_string(),
                want,
                got,
            });
        }
        self.pending.remove(path);
        self.totals.files += 1;
        self.totals.bytes += n;
        if let Some(a) = &self.arrivals {
            a.arrived(path);
        }
        Ok(())
    }

    /// Creates directories inside staging, refusing anything that is not a real directory
    /// on the way (a symlink planted there must not redirect a write).
    fn make_dirs(&self, dir: &Path) -> Result<(), ReceiveError> {
        let rel = dir
            .strip_prefix(self.staging)
            .map_err(|_| ReceiveError::Refused {
                path: dir.display().to_string(),
                reason: "outside staging".into(),
            })?;
        let mut cur = self.staging.to_path_buf();
        for part in rel.components() {
            cur.push(part);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => {
                    return Err(ReceiveError::Refused {
                        path: cur.display().to_string(),
                        reason: "something other than a directory is in the way".into(),
                    });
                }
                Err(_) => match fs::create_dir(&cur) {
                    Ok(()) => {}
                    // Another receiver into the same staging made it meanwhile: it must
                    // be a real directory all the same.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if !fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_dir()) {
                            return Err(ReceiveError::Refused {
                                path: cur.display().to_string(),
                                reason: "something other than a directory is in the way".into(),
                            });
                        }
                    }
                    Err(e) => return Err(fsutil::ctx(&cur, "creating directory")(e).into()),
                },
            }
        }
        Ok(())
    }

    /// Reads a zstd-compressed tar stream and accepts every entry; any entry that is not a
    /// requested regular file fails the whole stream.
    pub(crate) fn accept_tar_zst(&mut self, stream: impl Read) -> Result<(), ReceiveError> {
        let decoder = zstd::stream::read::Decoder::new(stream).map_err(ReceiveError::Stream)?;
        let mut archive = tar::Archive::new(decoder);
        for entry in archive.entries().map_err(ReceiveError::Stream)? {
            let mut entry = entry.map_err(ReceiveError::Stream)?;
            let raw = entry.path_bytes().into_owned();
            let path = String::from_utf8_lossy(&raw).into_owned();
            if !entry.header().entry_type().is_file() {
                return Err(ReceiveError::Refused {
                    path,
                    reason: "only regular files are sent; links and devices are refused".into(),
                });
            }
            self.accept(&path, &mut entry)?;
        }
        Ok(())
    }

    /// Copies the requested files from a local tree (`source(path)` gives where each is).
    pub(crate) fn copy_from(
        &mut self,
        source: &dyn Fn(&str) -> Option<std::path::PathBuf>,
    ) -> Result<(), ReceiveError> {
        let wanted: Vec<String> = self.pending.iter().cloned().collect();
        for path in wanted {
            let Some(src) = source(&path) else { continue };
            let mut file = fs::File::open(&src).map_err(fsutil::ctx(&src, "opening"))?;
            self.accept(&path, &mut file)?;
        }
        Ok(())
    }

    /// Ends receiving: everything asked for must have arrived.
    pub(crate) fn finish(self) -> Result<Totals, ReceiveError> {
        if let Some(first) = self.pending.iter().next() {
            return Err(ReceiveError::Missing {
                count: self.pending.len(),
                first: first.clone(),
            });
        }
        Ok(self.totals)
    }
}

/// A `Read` over chunks handed in by another thread, so the tar decoder can run while the
/// protocol loop keeps reading messages.
pub(crate) struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    /// A reader fed by `rx`; it ends when the sender is dropped.
    pub(crate) fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> ChunkReader {
        ChunkReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
