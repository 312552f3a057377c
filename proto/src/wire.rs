//! The messages on the SSH channel between the controller and the agent.
//!
//! Framing: one JSON object per `\n`-terminated line, both directions. The agent speaks
//! first with [`AgentMsg::Hello`]; the controller answers with [`ControllerMsg::Hello`]; both
//! refuse a different [`PROTOCOL_VERSION`]. File content travels inside the same stream: a
//! [`ControllerMsg::Chunk`] line is followed by exactly `len` raw bytes of a zstd-compressed
//! tar stream, so no second channel or port is needed.
//!
//! A session: `Hello` ⇄ `Hello`, then any of
//! - `Facts` → `Facts`;
//! - `Offer{plan}` → `Need{files}` → `Chunk`… `FilesEnd` → `Received` (skipped when nothing is
//!   needed) → `Run` → `Event`… `Done` (repeatable: `Run{stop_after}` then `Run` again);
//! - on a host whose files come through the registry: `Offer` → `Need`, later `Fetch` →
//!   `Fetched{left}`, then `Chunk`… `FilesEnd` → `Received` for what is left;
//! - on a registry host once its registry answers: `Publish` → `Published`;
//! - `Clean` → `Event`… `Done`;
//! - `Bye` (or end of input) ends it.
//!
//! Any request may be answered by [`AgentMsg::Error`] instead; `Offer` and `Clean` also by
//! [`AgentMsg::Busy`] when another apply or clean holds the host's lock.

use crate::env::Env;
use crate::event::{Event, Outcome};
use crate::facts::Facts;
use crate::fanout::{BlobRef, Fetched, Published};
use crate::plan::{Plan, Plugin, StepKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, Read, Write};

/// The protocol version; both sides must speak the same one.
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest line either side accepts (a plan with a large manifest is a few MB).
pub const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// The largest file-content chunk.
pub const MAX_CHUNK_BYTES: u32 = 4 * 1024 * 1024;

/// Controller → agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControllerMsg {
    /// The controller's side of the handshake.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol_version: u32,
        /// The controller's version, for the agent's log.
        controller_version: String,
    },
    /// Asks for the host's facts and the state of one cluster.
    Facts {
        /// Data root to measure free disk at.
        data_root: String,
        /// Cluster whose state to summarise.
        cluster: String,
    },
    /// Offers a plan; the agent validates it, takes the cluster lock (unless `dry_run`) and
    /// answers with [`AgentMsg::Need`].
    Offer {
        /// The plan.
        plan: Box<Plan>,
        /// Touch nothing: no lock file, no staging, no state.
        dry_run: bool,
    },
    /// `len` raw bytes of the zstd-compressed tar stream follow this line.
    Chunk {
        /// Byte count that follows, at most [`MAX_CHUNK_BYTES`].
        len: u32,
    },
    /// The tar stream is complete; the agent verifies and answers [`AgentMsg::Received`].
    FilesEnd,
    /// Runs the plan's steps, in order, from the first that needs to run.
    Run {
        /// Run every step, even unchanged ones.
        force: bool,
        /// Stop after the last step of this kind (the controller uses it as a barrier,
        /// e.g. registry up on registry hosts before other hosts go on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop_after: Option<StepKind>,
    },
    /// Undoes what the agent recorded for a cluster (SPEC §6).
    Clean {
        /// Cluster name.
        cluster: String,
        /// Data root.
        data_root: String,
        /// Keep `<dataRoot>/<cluster>/rootfs` (a cache for the next apply).
        keep_rootfs: bool,
        /// `pre-clean-host`/`post-clean-host` hooks in this host's scope.
        plugins: Vec<Plugin>,
        /// Env for clean scripts when the host has no recorded env (a partial apply).
        env: Env,
        /// Also delete the agent's own executable when clean succeeds.
        remove_agent: bool,
        /// Restore and remove also what a person changed since apply (kept otherwise).
        #[serde(default)]
        force: bool,
    },
    /// On a registry host whose registry answers: push these files of its rootfs copy into
    /// that registry (see [`crate::fanout`]); answered with [`AgentMsg::Published`].
    Publish {
        /// What the other hosts lack.
        files: Vec<BlobRef>,
    },
    /// Fetch the files this host lacks (the offered plan's need) from the cluster's
    /// registry, at these registry hosts' addresses in turn; answered with
    /// [`AgentMsg::Fetched`]. What could not be fetched is still needed: the controller
    /// sends it as `Chunk`… `FilesEnd`.
    Fetch {
        /// Registry host IPs that published.
        sources: Vec<String>,
    },
    /// Ends the session.
    Bye,
}

/// What the host lacks of an offered plan: the agent computes it, the controller sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    /// Paths of the regular files whose content the host lacks, sorted.
    pub files: Vec<String>,
    /// Their total size.
    pub bytes: u64,
    /// Files of the plan the host already has.
    pub have_files: u64,
    /// Their total size.
    pub have_bytes: u64,
}

/// Agent → controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMsg {
    /// The agent's side of the handshake; sent first, unprompted.
    Hello {
        /// The protocol version it speaks.
        protocol_version: u32,
        /// The agent's version.
        agent_version: String,
        /// `uname -m`.
        arch: String,
    },
    /// Answer to `Facts`.
    Facts(Box<Facts>),
    /// Answer to `Offer`: the regular files whose content the host lacks.
    Need(Need),
    /// Answer to `FilesEnd`: everything arrived and matched the manifest.
    Received {
        /// Files received.
        files: u64,
        /// Bytes received (uncompressed).
        bytes: u64,
    },
    /// Answer to `Publish`.
    Published(Published),
    /// Answer to `Fetch`.
    Fetched(Fetched),
    /// Progress while running or cleaning.
    Event(Event),
    /// A `Run` or `Clean` finished.
    Done(Outcome),
    /// A request failed as a whole (bad plan, verification failure…).
    Error {
        /// What failed and how to fix it.
        message: String,
    },
    /// An `Offer` or `Clean` refused because another apply or clean holds the host's lock;
    /// nothing was changed. Apart from [`AgentMsg::Error`] so the controller can report it
    /// as a refusal (exit 3 when no host changed), not as a failure.
    Busy {
        /// Who holds the lock and what to do.
        message: String,
    },
}

/// Why reading a message failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The underlying stream failed.
    #[error("reading from the other side: {0}")]
    Io(#[from] io::Error),
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("a message line is longer than {MAX_LINE_BYTES} bytes; the stream is corrupt")]
    TooLong,
    /// A line that is not a message of the expected type.
    #[error("unexpected message {line:?}: {source}")]
    Malformed {
        /// The start of the line.
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A chunk larger than [`MAX_CHUNK_BYTES`].
    #[error("chunk of {0} bytes exceeds the {MAX_CHUNK_BYTES}-byte limit")]
    ChunkTooLarge(u32),
}

/// Writes one message as a line and flushes.
pub fn write_msg<W: Write, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one message; `Ok(None)` at a clean end of input.
pub fn read_msg<R: BufRead, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, WireError> {
    let mut line = Vec::new();
    let read = r
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE_BYTES {
        return Err(WireError::TooLong);
    }
    parse_line(&line).map(Some)
}

/// Parses one line (with or without its newline).
pub fn parse_line<T: DeserializeOwned>(line: &[u8]) -> Result<T, WireError> {
    serde_json::from_slice(line).map_err(|source| WireError::Malformed {
        line: String::from_utf8_lossy(&line[..line.len().min(200)])
            .trim_end()
            .to_string(),
        source,
    })
}

/// Reads the raw bytes that follow a `Chunk { len }` line into `buf` (resized to `len`).
pub fn read_chunk<R: Read>(r: &mut R, len: u32, buf: &mut Vec<u8>) -> Result<(), WireError> {
    if len > MAX_CHUNK_BYTES {
        return Err(WireError::ChunkTooLarge(len));
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf)?;
    Ok(())
}

/// Writes a `Chunk` line and its bytes.
pub fn write_chunk<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<()> {
    for piece in bytes.chunks(MAX_CHUNK_BYTES as usize) {
        let header = ControllerMsg::Chunk {
            // A piece is at most MAX_CHUNK_BYTES long, which fits u32.
            len: piece.len() as u32,
        };
        let mut line = serde_json::to_vec(&header).map_err(io::Error::other)?;
        line.push(b'\n');
        w.write_all(&line)?;
        w.write_all(piece)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn messages_round_trip_as_lines() {
        let mut out = Vec::new();
        write_msg(
            &mut out,
            &ControllerMsg::Run {
                force: false,
                stop_after: Some(StepKind::InitRegistry),
            },
        )
        .unwrap();
        write_msg(&mut out, &ControllerMsg::Bye).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"type\":\"run\",\"force\":false,\"stop_after\":\"init-registry\"}\n{\"type\":\"bye\"}\n"
        );
        let mut r = Cursor::new(out);
        let first: ControllerMsg = read_msg(&mut r).unwrap().unwrap();
        assert!(matches!(first, ControllerMsg::Run { force: false, .. }));
        let second: ControllerMsg = read_msg(&mut r).unwrap().unwrap();
        assert_eq!(second, ControllerMsg::Bye);
        assert!(read_msg::<_, ControllerMsg>(&mut r).unwrap().is_none());
    }

    #[test]
    fn need_is_a_flat_message_on_the_wire() {
        let need = AgentMsg::Need(Need {
            files: vec!["bin/kubelet".into()],
            bytes: 5,
            have_files: 2,
            have_bytes: 7,
        });
        let mut out = Vec::new();
        write_msg(&mut out, &need).unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"type\":\"need\",\"files\":[\"bin/kubelet\"],\"bytes\":5,\"have_files\":2,\"have_bytes\":7}\n"
        );
        let back: AgentMsg = read_msg(&mut Cursor::new(out)).unwrap().unwrap();
        assert_eq!(back, need);
    }

    #[test]
    fn chunks_interleave_with_lines() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        write_chunk(&mut out, &payload).unwrap();
        write_msg(&mut out, &ControllerMsg::FilesEnd).unwrap();
        let mut r = Cursor::new(out);
        let mut got = Vec::new();
        let mut buf = Vec::new();
        loop {
            match read_msg::<_, ControllerMsg>(&mut r).unwrap().unwrap() {
                ControllerMsg::Chunk { len } => {
                    read_chunk(&mut r, len, &mut buf).unwrap();
                    got.extend_from_slice(&buf);
                }
                ControllerMsg::FilesEnd => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, payload);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let mut r = Cursor::new(b"hello world\n".to_vec());
        let err = read_msg::<_, AgentMsg>(&mut r).unwrap_err().to_string();
        assert!(
            err.starts_with("unexpected message \"hello world\""),
            "{err}"
        );
        let mut r = Cursor::new(Vec::new());
        assert!(matches!(
            read_chunk(&mut r, MAX_CHUNK_BYTES + 1, &mut Vec::new()),
            Err(WireError::ChunkTooLarge(_))
        ));
    }
}
