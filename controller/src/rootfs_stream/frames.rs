//! Each file's part of the ship stream, compressed once: the file's tar entry (its header,
//! content and padding) as a zstd frame of its own, kept on disk in the controller's cache
//! under a key of everything it holds (path, mode, size, content hash, level). A host's
//! stream is the frames of the files it lacks, one after another, then a frame holding the
//! tar's end: zstd decodes concatenated frames as one stream, so the agent reads the same tar
//! it always did. Hosts that lack the same file share its frame — compressed once however
//! many hosts need it, and not again on a later run — and a frame is read from disk as it is
//! sent, so the controller holds no host's stream in memory.

use super::ShipError;
use installer_proto::manifest::sha256_bytes;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Bumped when a frame's layout changes: old frames are then simply not found.
const FORMAT: &str = "installer-frame-v1";

/// The two zero blocks that end a tar.
const TAR_END: usize = 1024;

/// The frames of one compression level, under one directory.
#[derive(Debug)]
pub(crate) struct FrameCache {
    dir: PathBuf,
    level: i32,
    /// One lock per frame being made, so that hosts needing the same file wait for the one
    /// compressing it instead of compressing it too.
    making: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    end: OnceLock<Vec<u8>>,
}

/// What the stream needs of one file.
pub(crate) struct FileRef<'a> {
    /// The tar name (manifest path).
    pub path: &'a str,
    /// Where its content is read from.
    pub source: &'a Path,
    /// Its size, as the manifest recorded it.
    pub size: u64,
    /// Its mode.
    pub mode: u32,
    /// Its content hash, as the manifest recorded it.
    pub sha256: &'a str,
}

impl FrameCache {
    /// Frames of zstd `level` under `dir` (created when the first frame is made).
    pub(crate) fn new(dir: PathBuf, level: i32) -> FrameCache {
        FrameCache {
            dir,
            level,
            making: Mutex::new(HashMap::new()),
            end: OnceLock::new(),
        }
    }

    /// The frame that ends every stream: the tar's two zero blocks.
    pub(crate) fn end(&self) -> Result<&[u8], ShipError> {
        if let Some(end) = self.end.get() {
            return Ok(end);
        }
        let end =
            zstd::encode_all(&[0u8; TAR_END][..], self.level).map_err(|e| io_err("zstd", e))?;
        Ok(self.end.get_or_init(|| end))
    }

    /// The path of `file`'s frame, made now when no earlier run or host made it.
    pub(crate) fn frame(&self, file: &FileRef<'_>) -> Result<PathBuf, ShipError> {
        let key = sha256_bytes(
            format!(
                "{FORMAT}\0{}\0{}\0{:o}\0{}\0{}",
                self.level, file.path, file.mode, file.size, file.sha256
            )
            .as_bytes(),
        );
        let path = self.dir.join(&key[..2]).join(format!("{key}.zst"));
        if path.is_file() {
            touch(&path);
            return Ok(path);
        }
        let lock = {
            let mut making = self.making.lock().unwrap_or_else(|e| e.into_inner());
            making.entry(key.clone()).or_default().clone()
        };
        let _making = lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another host may have made it while this one waited.
        if !path.is_file() {
            self.make(file, &path)?;
        }
        Ok(path)
    }

    /// Removes the frames no run used for `age` (a use refreshes a frame's mtime), so the
    /// cache holds what recent rootfs trees need and does not grow with every image ever
    /// shipped. Best effort: a frame that cannot be removed stays. Returns how many went.
    pub(crate) fn prune_unused(&self, age: std::time::Duration) -> usize {
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(age) else {
            return 0;
        };
        let mut removed = 0;
        for sub in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for frame in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
                let old = frame
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < cutoff);
                if old && fs::remove_file(frame.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Compresses `file`'s tar entry into `target`: written under a temporary name in the
    /// same directory, synced, renamed, so a crash leaves no half frame under a real key.
    fn make(&self, file: &FileRef<'_>, target: &Path) -> Result<(), ShipError> {
        let dir = target.parent().unwrap_or(&self.dir);
        fs::create_dir_all(dir).map_err(|e| io_err(&dir.display().to_string(), e))?;
        let source_name = file.source.display().to_string();
        let content = fs::File::open(file.source).map_err(|e| io_err(&source_name, e))?;
        let actual = content
            .metadata()
            .map_err(|e| io_err(&source_name, e))?
            .len();
        if actual != file.size {
            return Err(ShipError::Changed {
                path: source_name,
                expected: file.size,
            });
        }
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| io_err(&dir.display().to_string(), e))?;
        let encoder = zstd::Encoder::new(tmp, self.level).map_err(|e| io_err("zstd", e))?;
        let mut builder = tar::Builder::new(WithoutTarEnd::new(encoder));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.size);
        header.set_mode(file.mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, file.path, content.take(file.size))
            .map_err(|e| io_err(&source_name, e))?;
        let encoder = builder
            .into_inner()
            .map_err(|e| io_err("tar", e))?
            .into_inner();
        let tmp = encoder.finish().map_err(|e| io_err("zstd", e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err(&target.display().to_string(), e))?;
        tmp.persist(target)
            .map_err(|e| io_err(&target.display().to_string(), e.error))?;
        Ok(())
    }
}

/// Marks `frame` used now (its mtime), for [`FrameCache::prune_unused`]. Best effort: a
/// frame that cannot be touched is only pruned earlier and then made again.
fn touch(frame: &Path) {
    if let Ok(f) = fs::OpenOptions::new().write(true).open(frame) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// A writer that forwards all but the last [`TAR_END`] bytes written to it: the tar builder
/// ends every archive with two zero blocks, and a frame holds one entry, not an archive.
struct WithoutTarEnd<W: Write> {
    inner: W,
    held: Vec<u8>,
}

impl<W: Write> WithoutTarEnd<W> {
    fn new(inner: W) -> Self {
        WithoutTarEnd {
            inner,
            held: Vec::with_capacity(2 * TAR_END),
        }
    }

    /// The inner writer; the held tail (the tar's end) is dropped.
    fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for WithoutTarEnd<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(data);
        if self.held.len() > TAR_END {
            let pass = self.held.len() - TAR_END;
            self.inner.write_all(&self.held[..pass])?;
            self.held.drain(..pass);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(path: &str, source: io::Error) -> ShipError {
    ShipError::Io {
        path: path.to_string(),
        source,
    }
}
