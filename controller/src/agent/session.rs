//! The controller's end of the agent protocol (`installer_proto::wire`), over any pair of
//! async byte streams: an SSH exec channel in production, an agent served in-process or a
//! scripted peer in tests.

use installer_proto::event::{Event, Outcome};
use installer_proto::facts::Facts;
use installer_proto::plan::{Plan, Plugin, StepKind};
use installer_proto::wire::{self, AgentMsg, ControllerMsg, PROTOCOL_VERSION};
use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Why talking to an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The stream broke.
    #[error("talking to the agent: {0}")]
    Io(#[from] std::io::Error),
    /// The agent ended the session early.
    #[error("the agent ended the session unexpectedly (while {during})")]
    Closed {
        /// What the controller was waiting for.
        during: &'static str,
    },
    /// A message that does not fit the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The agent speaks another protocol version.
    #[error(
        "the agent on the host speaks protocol {agent}, this installer speaks {ours}; the controller uploads its own agent build, so this means a mismatched agent was configured (check --agent-dir)"
    )]
    VersionMismatch {
        /// The agent's version.
        agent: u32,
        /// Ours.
        ours: u32,
    },
    /// The agent refused a request.
    #[error("{0}")]
    Refused(String),
    /// Another apply or clean holds the host's lock; the agent changed nothing.
    #[error("{0}")]
    Busy(String),
}

pub(crate) use installer_proto::wire::Need;

/// How a clean treats what it finds.
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanOptions {
    /// Keep `<dataRoot>/<cluster>/rootfs` (a cache for the next apply).
    pub keep_rootfs: bool,
    /// Delete the uploaded agent build when clean finishes.
    pub remove_agent: bool,
    /// Restore and remove also what a person changed since apply.
    pub force: bool,
}

/// One conversation with one agent.
pub struct AgentSession<R, W> {
    reader: BufReader<R>,
    writer: W,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> AgentSession<R, W> {
    /// Reads the agent's Hello, checks the protocol version and answers.
    pub async fn handshake(reader: R, writer: W) -> Result<Self, SessionError> {
        let mut session = AgentSession {
            // Lines may be longer (a Need of a large rootfs); the buffer only batches reads,
            // and every host's session holds one for the whole run.
            reader: BufReader::with_capacity(64 * 1024, reader),
            writer,
            line: Vec::new(),
        };
        match session.recv("waiting for the agent's hello").await? {
            AgentMsg::Hello {
                protocol_version,
                agent_version,
                arch,
            } => {
                if protocol_version != PROTOCOL_VERSION {
                    return Err(SessionError::VersionMismatch {
                        agent: protocol_version,
                        ours: PROTOCOL_VERSION,
                    });
                }
                // The version and arch are for diagnostics: the arch was chosen before
                // upload and the protocol version is what must match.
                tracing::debug!(%agent_version, %arch, "agent handshake");
            }
            other => return Err(unexpected("hello", &other)),
        }
        session
            .send(&ControllerMsg::Hello {
                protocol_version: PROTOCOL_VERSION,
                controller_version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .await?;
        Ok(session)
    }

    /// Asks for the host's facts and the state of `cluster`.
    pub async fn facts(&mut self, data_root: &str, cluster: &str) -> Result<Facts, SessionError> {
        self.send(&ControllerMsg::Facts {
            data_root: data_root.to_string(),
            cluster: cluster.to_string(),
        })
        .await?;
        match self.recv("waiting for facts").await? {
            AgentMsg::Facts(facts) => Ok(*facts),
            AgentMsg::Error { message } => Err(SessionError::Refused(message)),
            other => Err(unexpected("facts", &other)),
        }
    }

    /// Offers a plan; the agent validates it, locks the cluster (unless `dry_run`) and says
    /// which files it lacks.
    pub async fn offer(&mut self, plan: &Plan, dry_run: bool) -> Result<Need, SessionError> {
        self.send(&ControllerMsg::Offer {
            plan: Box::new(plan.clone()),
            dry_run,
        })
        .await?;
        match self
            .recv("waiting for the agent's answer to the plan")
            .await?
        {
            AgentMsg::Need(need) => Ok(need),
            AgentMsg::Error { message } => Err(SessionError::Refused(message)),
            AgentMsg::Busy { message } => Err(SessionError::Busy(message)),
            other => Err(unexpected("need", &other)),
        }
    }

    /// Sends one piece of the compressed tar stream.
    pub async fn send_chunk(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        write_chunk(&mut self.writer, bytes).await
    }

    /// Ends the file stream and waits for the agent's verification. Progress events that
    /// arrive meanwhile go to `on_event`.
    pub async fn finish_files(
        &mut self,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<(u64, u64), SessionError> {
        self.send(&ControllerMsg::FilesEnd).await?;
        loop {
            match self
                .recv("waiting for the agent to verify the files")
                .await?
            {
                AgentMsg::Received { files, bytes } => return Ok((files, bytes)),
                AgentMsg::Event(e) => on_event(e),
                AgentMsg::Error { message } => return Err(SessionError::Refused(message)),
                other => return Err(unexpected("received", &other)),
            }
        }
    }

    /// Asks a registry host's agent to push `files` into its registry for the other hosts.
    pub async fn publish(
        &mut self,
        files: Vec<installer_proto::fanout::BlobRef>,
    ) -> Result<installer_proto::fanout::Published, SessionError> {
        self.send(&ControllerMsg::Publish { files }).await?;
        match self.recv("waiting for the agent to push blobs").await? {
            AgentMsg::Published(p) => Ok(p),
            AgentMsg::Error { message } => Err(SessionError::Refused(message)),
            other => Err(unexpected("published", &other)),
        }
    }

    /// Asks the agent to fetch what it lacks from the registry at `sources`; what is left
    /// still has to be sent.
    pub async fn fetch(
        &mut self,
        sources: Vec<String>,
    ) -> Result<installer_proto::fanout::Fetched, SessionError> {
        self.send(&ControllerMsg::Fetch { sources }).await?;
        match self
            .recv("waiting for the agent to fetch from the registry")
            .await?
        {
            AgentMsg::Fetched(f) => Ok(f),
            AgentMsg::Error { message } => Err(SessionError::Refused(message)),
            other => Err(unexpected("fetched", &other)),
        }
    }

    /// Runs the plan's steps (through `stop_after`), streaming events to `on_event`.
    pub async fn run(
        &mut self,
        force: bool,
        stop_after: Option<StepKind>,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Outcome, SessionError> {
        self.send(&ControllerMsg::Run { force, stop_after }).await?;
        self.events_until_done("running steps", on_event).await
    }

    /// Asks the agent to undo everything it recorded for `cluster`.
    pub async fn clean(
        &mut self,
        cluster: &str,
        data_root: &str,
        plugins: Vec<Plugin>,
        env: BTreeMap<String, String>,
        opts: CleanOptions,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Outcome, SessionError> {
        self.send(&ControllerMsg::Clean {
            cluster: cluster.to_string(),
            data_root: data_root.to_string(),
            keep_rootfs: opts.keep_rootfs,
            plugins,
            env,
            remove_agent: opts.remove_agent,
            force: opts.force,
        })
        .await?;
        self.events_until_done("cleaning", on_event).await
    }

    /// Says goodbye and closes our side of the stream.
    pub async fn bye(mut self) -> Result<(), SessionError> {
        self.send(&ControllerMsg::Bye).await?;
        self.writer.shutdown().await?;
        Ok(())
    }

    async fn events_until_done(
        &mut self,
        during: &'static str,
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<Outcome, SessionError> {
        loop {
            match self.recv(during).await? {
                AgentMsg::Event(e) => on_event(e),
                AgentMsg::Done(outcome) => return Ok(outcome),
                AgentMsg::Error { message } => return Err(SessionError::Refused(message)),
                AgentMsg::Busy { message } => return Err(SessionError::Busy(message)),
                other => return Err(unexpected("events", &other)),
            }
        }
    }

    async fn send(&mut self, msg: &ControllerMsg) -> Result<(), SessionError> {
        write_msg_to(&mut self.writer, msg).await
    }

    async fn recv(&mut self, during: &'static str) -> Result<AgentMsg, SessionError> {
        recv_from(&mut self.reader, &mut self.line, during).await
    }

    /// Runs the plan's steps (through `stop_after`) while sending the file stream that
    /// `pieces` yields: the agent starts its steps at once and each waits only for its own
    /// files (SPEC §5.3). `on_sent` hears the compressed bytes sent so far, and whether the
    /// stream has ended (its last call). Returns the
    /// steps' outcome, what the agent said of the files (received files and bytes, or why
    /// it refused them) and the compressed bytes sent.
    pub async fn run_while_sending(
        &mut self,
        force: bool,
        stop_after: Option<StepKind>,
        mut pieces: tokio::sync::mpsc::Receiver<Vec<u8>>,
        on_sent: &mut (dyn FnMut(u64, bool) + Send),
        on_event: &mut (dyn FnMut(Event) + Send),
    ) -> Result<(Outcome, Result<(u64, u64), String>, u64), SessionError> {
        self.send(&ControllerMsg::Run { force, stop_after }).await?;
        let AgentSession {
            reader,
            writer,
            line,
        } = self;
        // Both run to the end in this one task: nothing is cancelled half-way.
        let write = async {
            let mut sent = 0u64;
            while let Some(piece) = pieces.recv().await {
                write_chunk(writer, &piece).await?;
                sent += piece.len() as u64;
                on_sent(sent, false);
            }
            // Also after a stream that stopped early: the agent then finds files missing
            // and says so, and the steps waiting for them end.
            write_msg_to(writer, &ControllerMsg::FilesEnd).await?;
            on_sent(sent, true);
            Ok::<u64, SessionError>(sent)
        };
        let read = async {
            let (mut outcome, mut files) = (None, None);
            while outcome.is_none() || files.is_none() {
                match recv_from(reader, line, "running steps while sending files").await? {
                    AgentMsg::Event(e) => on_event(e),
                    AgentMsg::Done(o) => outcome = Some(o),
                    AgentMsg::Received { files: n, bytes } => files = Some(Ok((n, bytes))),
                    AgentMsg::Error { message } => files = Some(Err(message)),
                    other => return Err(unexpected("events", &other)),
                }
            }
            Ok((outcome, files))
        };
        let (sent, answers) = tokio::join!(write, read);
        let (outcome, files) = answers?;
        let sent = sent?;
        match (outcome, files) {
            (Some(outcome), Some(files)) => Ok((outcome, files, sent)),
            _ => Err(SessionError::Protocol(
                "the run ended without its answers".into(),
            )),
        }
    }
}

/// One message from the agent.
async fn recv_from<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
    during: &'static str,
) -> Result<AgentMsg, SessionError> {
    line.clear();
    let n = reader
        .take(wire::MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', line)
        .await?;
    if n == 0 {
        return Err(SessionError::Closed { during });
    }
    if line.len() > wire::MAX_LINE_BYTES {
        return Err(SessionError::Protocol("message line too long".into()));
    }
    wire::parse_line(line).map_err(|e| SessionError::Protocol(e.to_string()))
}

/// One message to the agent, flushed.
async fn write_msg_to<W: AsyncWrite + Unpin>(
    writer: &mut W,
    msg: &ControllerMsg,
) -> Result<(), SessionError> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await?;
    Ok(())
}

/// File content as `Chunk` messages of at most [`wire::MAX_CHUNK_BYTES`].
async fn write_chunk<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
) -> Result<(), SessionError> {
    for piece in bytes.chunks(wire::MAX_CHUNK_BYTES as usize) {
        let header = ControllerMsg::Chunk {
            // A piece is at most MAX_CHUNK_BYTES (a u32) long.
            len: piece.len() as u32,
        };
        let mut line = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        line.push(b'\n');
        writer.write_all(&line).await?;
        writer.write_all(piece).await?;
    }
    Ok(())
}

fn unexpected(wanted: &str, got: &AgentMsg) -> SessionError {
    let got = serde_json::to_string(got).unwrap_or_default();
    let got: String = got.chars().take(200).collect();
    SessionError::Protocol(format!("expected a {wanted} message, got {got}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// An agent that says hello, then answers every request after the controller's hello
    /// with `answer`.
    async fn agent_answering(answer: AgentMsg) -> AgentSession<impl AsyncRead, impl AsyncWrite> {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (our_read, our_write) = tokio::io::split(ours);
        let (their_read, mut their_write) = tokio::io::split(theirs);
        tokio::spawn(async move {
            let line = |m: &AgentMsg| format!("{}\n", serde_json::to_string(m).unwrap());
            let hello = AgentMsg::Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "test".into(),
                arch: "x86_64".into(),
            };
            their_write
                .write_all(line(&hello).as_bytes())
                .await
                .unwrap();
            let mut lines = BufReader::new(their_read).lines();
            let _controller_hello = lines.next_line().await.unwrap();
            while let Ok(Some(_request)) = lines.next_line().await {
                their_write
                    .write_all(line(&answer).as_bytes())
                    .await
                    .unwrap();
            }
        });
        AgentSession::handshake(our_read, our_write).await.unwrap()
    }

    #[tokio::test]
    async fn an_agent_that_says_busy_is_told_apart_from_a_failure() {
        let busy = AgentMsg::Busy {
            message: "another installer-agent is running on this host (pid 7, apply of cluster a)"
                .into(),
        };
        let mut session = agent_answering(busy).await;
        let mut on_event = |_| {};
        let err = session
            .clean(
                "c",
                "/var/lib/sealer/data",
                Vec::new(),
                BTreeMap::new(),
                CleanOptions::default(),
                &mut on_event,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SessionError::Busy(m) if m.contains("pid 7, apply of cluster a")),
            "{err:?}"
        );

        let error = AgentMsg::Error {
            message: "the plan is invalid".into(),
        };
        let mut session = agent_answering(error).await;
        let err = session
            .clean(
                "c",
                "/var/lib/sealer/data",
                Vec::new(),
                BTreeMap::new(),
                CleanOptions::default(),
                &mut on_event,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SessionError::Refused(_)), "{err:?}");
    }
}
