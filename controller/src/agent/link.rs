//! What carries a running agent besides its byte streams. Over SSH that is the connection
//! and the remote process (stderr tail, exit status); the phases only need the stderr tail
//! for their error messages and a way to end the link, so they see [`AgentLink`] and never
//! SSH itself — which is also what lets an agent served in-process stand in for a host.

use super::session::AgentSession;
use crate::ssh;
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// The agent's stdout, as the session reads it.
pub(crate) type AgentReader = Box<dyn AsyncRead + Unpin + Send>;
/// The agent's stdin, as the session writes it.
pub(crate) type AgentWriter = Box<dyn AsyncWrite + Unpin + Send>;
/// The conversation with one running agent.
pub(crate) type AgentIo = AgentSession<AgentReader, AgentWriter>;

/// A future that ends a link.
pub(crate) type Closing = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The side of a running agent that is not the protocol stream.
pub trait AgentLink: Send {
    /// The last lines the agent wrote to stderr, as a suffix for an error message (`""`
    /// when there are none).
    fn stderr_hint(&self) -> String;

    /// Waits for the agent to exit (after it was told goodbye) and releases what carried
    /// it.
    fn close(self: Box<Self>) -> Closing;
}

/// An agent started over SSH: the connection stays open while the agent runs.
pub(crate) struct SshLink {
    /// The SSH connection.
    pub session: ssh::Session,
    /// The agent's remote process.
    pub process: ssh::RemoteProcess,
}

impl AgentLink for SshLink {
    fn stderr_hint(&self) -> String {
        self.process.stderr_hint()
    }

    fn close(self: Box<Self>) -> Closing {
        Box::pin(async move {
            let SshLink { session, process } = *self;
            let _ = process.wait().await;
            session.close().await;
        })
    }
}
