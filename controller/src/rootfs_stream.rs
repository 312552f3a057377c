//! The tar producer behind phase "ship": one zstd-compressed tar stream of exactly the files the
//! agent asked for, produced on a blocking thread and handed to the async side in pieces.
//!
//! Tar entries are regular files only, named by their manifest path, owned by root with
//! mtime 0; modes, directories and symlinks come from the manifest, which the agent already
//! has, so the stream carries nothing the agent has to trust beyond bytes it verifies.

use installer_proto::rootfs::MergedTree;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Size of the pieces handed to the sender.
const PIECE_BYTES: usize = 1024 * 1024;

/// zstd level: fast enough that a 2-core controller keeps up with the network, and most
/// bytes in a rootfs (image layers) are already compressed anyway.
pub(crate) const DEFAULT_LEVEL: i32 = 3;

/// Why a stream could not be produced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShipError {
    /// A requested path is not in the merged tree.
    #[error("the agent asked for {0}, which is not in the rootfs")]
    UnknownPath(String),
    /// A file changed between scanning and sending.
    #[error("{path} changed while it was being sent ({expected} bytes expected); run apply again")]
    Changed {
        /// The file's source path.
        path: String,
        /// The size the manifest recorded.
        expected: u64,
    },
    /// Reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The receiving side went away.
    #[error("the connection closed while sending")]
    Closed,
}

/// Starts producing the stream for `files` on a blocking thread. Pieces arrive on the
/// returned receiver; the handle reports how the producer ended. `read` counts the file
/// bytes (uncompressed) taken into the stream so far, the unit of the plan's total.
pub(crate) fn spawn_stream(
    tree: Arc<MergedTree>,
    files: Vec<String>,
    level: i32,
    read: Arc<AtomicU64>,
) -> (mpsc::Receiver<Vec<u8>>, JoinHandle<Result<(), ShipError>>) {
    // Two pieces in flight: compression overlaps with sending without buffering much.
    let (tx, rx) = mpsc::channel(2);
    let handle = tokio::task::spawn_blocking(move || produce(&tree, &files, level, tx, &read));
    (rx, handle)
}

/// Writes the stream for `files` into `out` (synchronously).
pub(crate) fn write_stream<W: Write>(
    tree: &MergedTree,
    files: &[String],
    level: i32,
    out: W,
    read: &AtomicU64,
) -> Result<W, ShipError> {
    let manifest = tree_entries(tree);
    let encoder = zstd::Encoder::new(out, level).map_err(|e| io_err("zstd encoder", e))?;
    let mut builder = tar::Builder::new(encoder);
    for path in files {
        let (source, size, mode) =
            manifest(path).ok_or_else(|| ShipError::UnknownPath(path.clone()))?;
        let file =
            std::fs::File::open(&source).map_err(|e| io_err(&source.display().to_string(), e))?;
        let actual = file
            .metadata()
            .map_err(|e| io_err(&source.display().to_string(), e))?
            .len();
        if actual != size {
            return Err(ShipError::Changed {
                path: source.display().to_string(),
                expected: size,
            });
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(
                &mut header,
                path,
                Counted {
                    inner: std::io::Read::take(file, size),
                    read,
                },
            )
            .map_err(|e| map_write_err(&source.display().to_string(), e))?;
    }
    let encoder = builder.into_inner().map_err(|e| map_write_err("tar", e))?;
    encoder.finish().map_err(|e| map_write_err("zstd", e))
}

fn tree_entries(tree: &MergedTree) -> impl Fn(&str) -> Option<(std::path::PathBuf, u64, u32)> + '_ {
    move |path| {
        tree.get(path).and_then(|s| {
            s.entry
                .is_file()
                .then(|| (s.source.clone(), s.entry.size(), s.entry.mode))
        })
    }
}

fn produce(
    tree: &MergedTree,
    files: &[String],
    level: i32,
    tx: mpsc::Sender<Vec<u8>>,
    read: &AtomicU64,
) -> Result<(), ShipError> {
    let writer = ChannelWriter {
        tx,
        buf: Vec::with_capacity(PIECE_BYTES),
    };
    let mut writer = write_stream(tree, files, level, writer, read)?;
    writer.flush().map_err(|e| map_write_err("stream", e))
}

/// A reader that adds what it reads to a shared counter.
struct Counted<'a, R> {
    inner: R,
    read: &'a AtomicU64,
}

impl<R: io::Read> io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A `Write` that hands full pieces to an async receiver, blocking while it is busy.
struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PIECE_BYTES - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE_BYTES {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE_BYTES));
        self.tx
            .blocking_send(piece)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "receiver closed"))
    }
}

fn io_err(path: &str, source: io::Error) -> ShipError {
    ShipError::Io {
        path: path.to_string(),
        source,
    }
}

fn map_write_err(path: &str, source: io::Error) -> ShipError {
    if source.kind() == io::ErrorKind::BrokenPipe {
        ShipError::Closed
    } else {
        io_err(path, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::rootfs::hash_file_content;
    use std::io::Read;

    #[tokio::test]
    async fn stream_holds_exactly_the_requested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/deep")).unwrap();
        std::fs::write(dir.path().join("etc/a.conf"), b"alpha").unwrap();
        let long = format!("etc/deep/{}", "x".repeat(150));
        std::fs::write(dir.path().join(&long), vec![7u8; 300_000]).unwrap();
        std::fs::write(dir.path().join("etc/skip"), b"not asked").unwrap();
        let tree =
            Arc::new(MergedTree::merge(dir.path(), "amd64", &[], &mut hash_file_content).unwrap());
        let files = vec!["etc/a.conf".to_string(), long.clone()];
        let read = Arc::new(AtomicU64::new(0));
        let (mut rx, handle) = spawn_stream(tree, files, DEFAULT_LEVEL, read.clone());
        let mut compressed = Vec::new();
        while let Some(piece) = rx.recv().await {
            compressed.extend_from_slice(&piece);
        }
        handle.await.unwrap().unwrap();
        let mut archive = tar::Archive::new(zstd::Decoder::new(&compressed[..]).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(entry.header().uid().unwrap(), 0);
            seen.push((path, data.len()));
        }
        assert_eq!(seen, [("etc/a.conf".to_string(), 5), (long, 300_000)]);
        assert_eq!(
            read.load(Ordering::Relaxed),
            300_005,
            "file bytes, uncompressed"
        );
        assert!(compressed.len() < 10_000, "repetitive data compresses");
    }

    #[test]
    fn unknown_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        let tree = MergedTree::merge(dir.path(), "amd64", &[], &mut hash_file_content).unwrap();
        let err = write_stream(
            &tree,
            &["../etc/shadow".to_string()],
            1,
            Vec::new(),
            &AtomicU64::new(0),
        )
        .unwrap_err();
        assert!(matches!(err, ShipError::UnknownPath(_)));
    }
}
