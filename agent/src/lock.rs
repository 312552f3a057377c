//! One apply or clean at a time per host, whatever the cluster (SPEC §7). The lock is a
//! listening Unix socket in the abstract namespace: the kernel releases it the instant its
//! holder dies (no stale lock after a `kill -9`), and it leaves no file behind for `clean`
//! to account for. A second agent that cannot bind asks the holder who it is: the holder
//! answers every connection with one line naming its pid and what it is doing.

use crate::root::HostRoot;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another agent holds it.
    #[error(
        "another installer-agent is running on this host ({holder}); one apply or clean runs at a time per host — wait for it to finish"
    )]
    Held {
        /// What the holder said of itself (`pid 123, apply of cluster prod`).
        holder: String,
    },
    /// The socket could not be created for another reason.
    #[error("taking the host lock: {0}")]
    Io(#[source] std::io::Error),
}

/// The held host lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct HostLock {
    stop: Arc<AtomicBool>,
    answerer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for HostLock {
    fn drop(&mut self) {
        // The answering thread owns the socket; the lock is free once it has returned.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.answerer.take() {
            let _ = t.join();
        }
    }
}

/// The abstract socket name for `root`: one for the real `/`, one per `--root` sandbox (so
/// previews and tests in different sandboxes do not exclude each other).
fn name_for(root: &HostRoot) -> Vec<u8> {
    let install_root = root.install_root();
    if install_root.is_empty() {
        return b"installer-agent.lock".to_vec();
    }
    let digest = Sha256::digest(install_root.as_bytes());
    let hex = installer_proto::manifest::hex(&digest[..12]);
    format!("installer-agent.lock.{hex}").into_bytes()
}

impl HostLock {
    /// Takes the host lock for `root` or fails at once; `doing` says what this agent does
    /// (`apply of cluster prod`), for the message a second agent gets.
    pub(crate) fn take(root: &HostRoot, doing: &str) -> Result<HostLock, LockError> {
        let addr = SocketAddr::from_abstract_name(name_for(root)).map_err(LockError::Io)?;
        let listener = match UnixListener::bind_addr(&addr) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(LockError::Held {
                    holder: ask_holder(&addr),
                });
            }
            Err(e) => return Err(LockError::Io(e)),
        };
        let answer = format!("pid {}, {doing}\n", std::process::id());
        // Non-blocking, so the thread can notice the drop and close the socket.
        listener.set_nonblocking(true).map_err(LockError::Io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let answerer = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.write_all(answer.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(HostLock {
            stop,
            answerer: Some(answerer),
        })
    }

    /// Whether an agent holds the lock for `root` right now.
    pub(crate) fn is_held(root: &HostRoot) -> bool {
        SocketAddr::from_abstract_name(name_for(root))
            .and_then(|addr| UnixStream::connect_addr(&addr))
            .is_ok()
    }
}

fn ask_holder(addr: &SocketAddr) -> String {
    let line = UnixStream::connect_addr(addr).ok().and_then(|conn| {
        conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    });
    match line {
        Some(l) if !l.is_empty() => l,
        _ => "it did not say who it is".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holders_name_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::at(dir.path());
        let lock = HostLock::take(&root, "apply of cluster a").unwrap();
        assert!(HostLock::is_held(&root));
        let err = HostLock::take(&root, "clean of cluster b").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}, apply of cluster a", std::process::id())),
            "{text}"
        );
        // Another sandbox is another host.
        let other = tempfile::tempdir().unwrap();
        let other_lock = HostLock::take(&HostRoot::at(other.path()), "apply").unwrap();
        drop(lock);
        drop(other_lock);
        HostLock::take(&root, "clean of cluster b").unwrap();
    }
}
