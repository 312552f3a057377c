//! One apply or clean at a time per cluster on a host: an exclusive `flock` on
//! `<dataRoot>/<cluster>/.lock`, taken without waiting.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another apply or clean of cluster {cluster:?} is running on this host (lock {path} is held by {holder}); wait for it to finish, or find it with `fuser {path}`"
    )]
    Held {
        /// What the holder wrote (`pid N`).
        holder: String,
        /// Cluster name.
        cluster: String,
        /// The lock file.
        path: String,
    },
    /// The lock file could not be opened.
    #[error("opening lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A held cluster lock; released on drop.
#[derive(Debug)]
pub struct ClusterLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl ClusterLock {
    /// Takes the lock at `path` or fails at once.
    pub fn take(path: &Path, cluster: &str) -> Result<ClusterLock, LockError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| LockError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            LockError::Held {
                cluster: cluster.to_string(),
                path: path.display().to_string(),
                holder: holder.trim().to_string(),
            }
        })?;
        // Who holds it, for the message a second run gets.
        use std::io::{Seek, Write};
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = writeln!(lock, "pid {}", std::process::id());
        Ok(ClusterLock {
            _lock: lock,
            path: path.to_path_buf(),
        })
    }

    /// Whether someone holds the lock at `path` right now (false when there is no file).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else {
            return false;
        };
        Flock::lock(file, FlockArg::LockSharedNonblock).is_err()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
