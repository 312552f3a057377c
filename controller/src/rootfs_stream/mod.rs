//! The tar producer behind phase "ship": one zstd-compressed tar stream of exactly the files the
//! agent asked for, produced on a blocking thread and handed to the async side in pieces.
//! The stream is made of per-file frames compressed once and shared by every host
//! ([`frames`]).
//!
//! Tar entries are regular files only, named by their manifest path, owned by root with
//! mtime 0; modes, directories and symlinks come from the manifest, which the agent already
//! has, so the stream carries nothing the agent has to trust beyond bytes it verifies.

mod frames;

use frames::FileRef;
pub(crate) use frames::FrameCache;
use installer_proto::rootfs::MergedTree;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Size of the pieces handed to the sender: large enough that a piece costs little to hand
/// over, small enough that dozens of hosts in flight hold little (each holds about four).
const PIECE_BYTES: usize = 256 * 1024;

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
    frames: Arc<FrameCache>,
    read: Arc<AtomicU64>,
) -> (mpsc::Receiver<Vec<u8>>, JoinHandle<Result<(), ShipError>>) {
    // Two pieces in flight: reading frames overlaps with sending without buffering much.
    let (tx, rx) = mpsc::channel(2);
    let handle = tokio::task::spawn_blocking(move || produce(&tree, &files, &frames, tx, &read));
    (rx, handle)
}

/// Writes the stream for `files` into `out` (synchronously): each file's frame from
/// `frames` (made there first when missing), then the end frame.
pub(crate) fn write_stream<W: Write>(
    tree: &MergedTree,
    files: &[String],
    frames: &FrameCache,
    mut out: W,
    read: &AtomicU64,
) -> Result<W, ShipError> {
    for path in files {
        let sourced = tree
            .get(path)
            .filter(|s| s.entry.is_file())
            .ok_or_else(|| ShipError::UnknownPath(path.clone()))?;
        let file = FileRef {
            path,
            source: &sourced.source,
            size: sourced.entry.size(),
            mode: sourced.entry.mode,
            sha256: sourced.entry.sha256().unwrap_or_default(),
        };
        let frame = frames.frame(&file)?;
        let name = frame.display().to_string();
        let mut f = std::fs::File::open(&frame).map_err(|e| io_err(&name, e))?;
        io::copy(&mut f, &mut out).map_err(|e| map_write_err(&name, e))?;
        read.fetch_add(file.size, Ordering::Relaxed);
    }
    out.write_all(frames.end()?)
        .map_err(|e| map_write_err("stream", e))?;
    Ok(out)
}

fn produce(
    tree: &MergedTree,
    files: &[String],
    frames: &FrameCache,
    tx: mpsc::Sender<Vec<u8>>,
    read: &AtomicU64,
) -> Result<(), ShipError> {
    let writer = ChannelWriter {
        tx,
        buf: Vec::with_capacity(PIECE_BYTES),
    };
    let mut writer = write_stream(tree, files, frames, writer, read)?;
    writer.flush().map_err(|e| map_write_err("stream", e))
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

    /// The entries of a stream: (path, content length, uid).
    fn entries(compressed: &[u8]) -> Vec<(String, usize)> {
        let mut archive = tar::Archive::new(zstd::Decoder::new(compressed).unwrap());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            assert_eq!(entry.header().uid().unwrap(), 0);
            assert_eq!(entry.header().mtime().unwrap(), 0);
            seen.push((path, data.len()));
        }
        seen
    }

    #[tokio::test]
    async fn stream_holds_exactly_the_requested_files() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(site.join("etc/deep")).unwrap();
        std::fs::write(site.join("etc/a.conf"), b"alpha").unwrap();
        let long = format!("etc/deep/{}", "x".repeat(150));
        std::fs::write(site.join(&long), vec![7u8; 300_000]).unwrap();
        std::fs::write(site.join("etc/skip"), b"not asked").unwrap();
        let tree =
            Arc::new(MergedTree::merge(&site, "amd64", &[], &mut hash_file_content).unwrap());
        let frames = Arc::new(FrameCache::new(dir.path().join("frames"), DEFAULT_LEVEL));
        let files = vec!["etc/a.conf".to_string(), long.clone()];
        let read = Arc::new(AtomicU64::new(0));
        let (mut rx, handle) = spawn_stream(tree, files, frames, read.clone());
        let mut compressed = Vec::new();
        while let Some(piece) = rx.recv().await {
            compressed.extend_from_slice(&piece);
        }
        handle.await.unwrap().unwrap();
        assert_eq!(
            entries(&compressed),
            [("etc/a.conf".to_string(), 5), (long, 300_000)],
            "a long name survives its own frame"
        );
        assert_eq!(
            read.load(Ordering::Relaxed),
            300_005,
            "file bytes, uncompressed"
        );
        assert!(compressed.len() < 10_000, "repetitive data compresses");
    }

    #[test]
    fn each_file_is_compressed_once_and_every_stream_shares_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(site.join(name), name.repeat(10_000)).unwrap();
        }
        let tree = MergedTree::merge(&site, "amd64", &[], &mut hash_file_content).unwrap();
        let frames = FrameCache::new(dir.path().join("frames"), 1);
        let stream = |files: &[&str]| {
            let files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
            write_stream(&tree, &files, &frames, Vec::new(), &AtomicU64::new(0)).unwrap()
        };
        let one = stream(&["a", "b"]);
        // A frame made again is a new file renamed into place: a new inode.
        let frame_files = || -> Vec<(std::path::PathBuf, u64)> {
            use std::os::unix::fs::MetadataExt;
            let mut v = Vec::new();
            for sub in std::fs::read_dir(dir.path().join("frames")).unwrap() {
                for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                    let f = f.unwrap();
                    v.push((f.path(), f.metadata().unwrap().ino()));
                }
            }
            v.sort();
            v
        };
        let made = frame_files();
        assert_eq!(made.len(), 2, "one frame per file");
        // Another host lacking b and c: b's frame is reused as it is, only c's is made.
        let two = stream(&["b", "c"]);
        let now = frame_files();
        assert_eq!(now.len(), 3);
        for (path, modified) in &made {
            assert!(
                now.contains(&(path.clone(), *modified)),
                "{} was made again",
                path.display()
            );
        }
        assert_eq!(
            entries(&one),
            [("a".to_string(), 10_000), ("b".to_string(), 10_000)]
        );
        assert_eq!(
            entries(&two),
            [("b".to_string(), 10_000), ("c".to_string(), 10_000)]
        );
        // A file whose content changed is a new frame, not the old one.
        std::fs::write(site.join("a"), "new".repeat(10)).unwrap();
        let changed = MergedTree::merge(&site, "amd64", &[], &mut hash_file_content).unwrap();
        let files = vec!["a".to_string()];
        let three =
            write_stream(&changed, &files, &frames, Vec::new(), &AtomicU64::new(0)).unwrap();
        assert_eq!(entries(&three), [("a".to_string(), 30)]);
        assert_eq!(frame_files().len(), 4);
    }

    #[test]
    fn frames_no_run_used_for_a_while_are_pruned_and_used_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("old"), "o").unwrap();
        std::fs::write(site.join("used"), "u").unwrap();
        let tree = MergedTree::merge(&site, "amd64", &[], &mut hash_file_content).unwrap();
        let frames = FrameCache::new(dir.path().join("frames"), 1);
        let both = ["old".to_string(), "used".to_string()];
        write_stream(&tree, &both, &frames, Vec::new(), &AtomicU64::new(0)).unwrap();
        let month_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
        for sub in std::fs::read_dir(dir.path().join("frames")).unwrap() {
            for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                let f = std::fs::File::options()
                    .write(true)
                    .open(f.unwrap().path())
                    .unwrap();
                f.set_modified(month_ago).unwrap();
            }
        }
        // A run uses "used" again: its frame is fresh, "old"'s is not.
        let used = ["used".to_string()];
        write_stream(&tree, &used, &frames, Vec::new(), &AtomicU64::new(0)).unwrap();
        assert_eq!(
            frames.prune_unused(std::time::Duration::from_secs(30 * 86_400)),
            1
        );
        let left = write_stream(&tree, &both, &frames, Vec::new(), &AtomicU64::new(0)).unwrap();
        assert_eq!(
            entries(&left),
            [("old".to_string(), 1), ("used".to_string(), 1)],
            "a pruned frame is made again"
        );
    }

    #[test]
    fn unknown_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        let tree = MergedTree::merge(dir.path(), "amd64", &[], &mut hash_file_content).unwrap();
        let frames = FrameCache::new(dir.path().join("frames"), 1);
        let err = write_stream(
            &tree,
            &["../etc/shadow".to_string()],
            &frames,
            Vec::new(),
            &AtomicU64::new(0),
        )
        .unwrap_err();
        assert!(matches!(err, ShipError::UnknownPath(_)));
    }
}
