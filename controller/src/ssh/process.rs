//! A command running on the far side of an exec channel: stdout as an `AsyncRead`, stdin as
//! an `AsyncWrite`, stderr kept (its tail explains failures), the exit status at the end.

use super::{Secret, SshError};
use russh::ChannelMsg;
use russh::client::Msg;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;

/// The stdout side handed to a protocol client.
pub type ChannelReader = DuplexStream;
/// The stdin side handed to a protocol client.
pub type ChannelWriter = Box<dyn AsyncWrite + Unpin + Send>;

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit status (255 when the channel closed without one).
    pub status: u32,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Progress {
    stdout_bytes: u64,
    stderr_len: usize,
    exit: Option<u32>,
    closed: bool,
}

/// Keeps the last 64 KiB of stderr.
const STDERR_KEEP: usize = 64 * 1024;

/// A running remote command.
pub struct RemoteProcess {
    label: String,
    stdout: Option<DuplexStream>,
    stdin: Option<ChannelWriter>,
    write_half: russh::ChannelWriteHalf<Msg>,
    stderr: Arc<Mutex<Vec<u8>>>,
    progress: watch::Receiver<Progress>,
    pump: tokio::task::JoinHandle<()>,
}

/// A prompt no sudo message contains, so its appearance on stderr means "sudo asks".
pub(super) fn sudo_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "[installer-sudo-{:08x}{:04x}]",
        nanos,
        std::process::id() & 0xffff
    )
}

impl RemoteProcess {
    /// Wraps a channel on which `exec` was sent.
    pub fn start(channel: russh::Channel<Msg>, label: String) -> RemoteProcess {
        let (mut read_half, write_half) = channel.split();
        let stdin: ChannelWriter = Box::new(write_half.make_writer());
        let (mut pipe_in, pipe_out) = tokio::io::duplex(256 * 1024);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = watch::channel(Progress::default());
        let err_buf = stderr.clone();
        let pump = tokio::spawn(async move {
            let mut stdout_open = true;
            while let Some(msg) = read_half.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        if stdout_open && pipe_in.write_all(&data).await.is_err() {
                            // Nobody reads stdout any more; keep draining the channel.
                            stdout_open = false;
                        }
                        tx.send_modify(|p| p.stdout_bytes += data.len() as u64);
                    }
                    ChannelMsg::ExtendedData { data, .. } => {
                        let len = match err_buf.lock() {
                            Ok(mut b) => {
                                b.extend_from_slice(&data);
                                if b.len() > STDERR_KEEP {
                                    let cut = b.len() - STDERR_KEEP;
                                    b.drain(..cut);
                                }
                                b.len()
                            }
                            Err(_) => 0,
                        };
                        tx.send_modify(|p| p.stderr_len = len.max(p.stderr_len + 1));
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        tx.send_modify(|p| p.exit = Some(exit_status));
                    }
                    ChannelMsg::ExitSignal { .. } => tx.send_modify(|p| {
                        p.exit.get_or_insert(255);
                    }),
                    _ => {}
                }
            }
            let _ = pipe_in.shutdown().await;
            tx.send_modify(|p| p.closed = true);
        });
        RemoteProcess {
            label,
            stdout: Some(pipe_out),
            stdin: Some(stdin),
            write_half,
            stderr,
            progress: rx,
            pump,
        }
    }

    fn err(&self, reason: String) -> SshError {
        SshError::Remote {
            host: self.label.clone(),
            reason,
        }
    }

    /// Writes to stdin.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), SshError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.err("stdin is already closed".into()));
        };
        let r = stdin.write_all(bytes).await.and(stdin.flush().await);
        r.map_err(|e| self.err(format!("writing to the remote command: {e}")))
    }

    /// Closes stdin (EOF for the remote command).
    pub async fn close_stdin(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush().await;
        }
        let _ = self.write_half.eof().await;
    }

    /// Reads everything and waits for the end.
    pub async fn collect(mut self) -> Result<ExecOutput, SshError> {
        let mut stdout = Vec::new();
        if let Some(mut out) = self.stdout.take() {
            out.read_to_end(&mut stdout)
                .await
                .map_err(|e| self.err(format!("reading output: {e}")))?;
        }
        let stderr = self.stderr_bytes();
        let status = self.wait().await?;
        Ok(ExecOutput {
            status,
            stdout,
            stderr,
        })
    }

    fn stderr_bytes(&self) -> Vec<u8> {
        self.stderr.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// The last lines of stderr as a suffix for an error message ("" when there is none).
    pub fn stderr_hint(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr_bytes()).to_string();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = &lines[lines.len().saturating_sub(5)..];
        format!(" (remote stderr: {})", tail.join(" | "))
    }

    /// Hands stdout and stdin to a protocol client; the process keeps stderr and the status.
    pub fn into_io(mut self) -> (ChannelReader, ChannelWriter, RemoteProcess) {
        let (reader, _) = tokio::io::duplex(1);
        let stdout = self.stdout.take().unwrap_or(reader);
        let stdin = self
            .stdin
            .take()
            .unwrap_or_else(|| Box::new(tokio::io::sink()));
        (stdout, stdin, self)
    }

    /// Waits for the channel to close; returns the exit status.
    pub async fn wait(self) -> Result<u32, SshError> {
        let mut rx = self.progress.clone();
        let _ = rx.wait_for(|p| p.closed).await;
        let exit = rx.borrow().exit;
        self.pump.abort();
        Ok(exit.unwrap_or(255))
    }

    /// Feeds the sudo password once, when sudo prompts with `marker`; fails at once when sudo
    /// rejects it or ends. Returns when the program behind sudo has written to stdout (it
    /// speaks first) — nothing is consumed from stdout.
    pub async fn feed_sudo_password(
        &mut self,
        password: &Secret,
        marker: &str,
        user: &str,
    ) -> Result<(), SshError> {
        let label = self.label.clone();
        let user_err = |reason: String| SshError::Sudo {
            host: label.clone(),
            user: user.to_string(),
            reason,
        };
        let mut rx = self.progress.clone();
        let prompts = |s: &str| s.matches(marker).count();
        let stderr_text =
            |this: &RemoteProcess| String::from_utf8_lossy(&this.stderr_bytes()).to_string();
        // Phase 1: sudo asks, or the program already runs (credentials cached), or it ends.
        let _ = rx
            .wait_for(|p| p.stdout_bytes > 0 || p.closed || p.stderr_len > 0)
            .await;
        loop {
            let snapshot = rx.borrow().clone();
            let text = stderr_text(self);
            if snapshot.stdout_bytes > 0 {
                return Ok(());
            }
            if prompts(&text) >= 1 {
                break;
            }
            if snapshot.closed {
                return Err(user_err(format!(
                    "sudo ended before asking for a password: {}",
                    text.trim()
                )));
            }
            if rx.changed().await.is_err() {
                return Err(user_err("the connection closed".into()));
            }
        }
        let mut line = password.expose().as_bytes().to_vec();
        line.push(b'\n');
        self.write_all(&line).await?;
        // Phase 2: the program speaks (accepted), or sudo asks again / gives up (rejected).
        loop {
            let snapshot = rx.borrow().clone();
            let text = stderr_text(self);
            if snapshot.stdout_bytes > 0 {
                return Ok(());
            }
            if prompts(&text) >= 2
                || text.contains("incorrect password")
                || text.contains("Sorry, try again")
            {
                self.close_stdin().await;
                return Err(user_err(
                    "the sudo password was rejected; check spec.ssh.passwd or --sudo-password-env"
                        .into(),
                ));
            }
            if snapshot.closed {
                let clean: String = text.replace(marker, "");
                return Err(user_err(format!("sudo ended: {}", clean.trim())));
            }
            if rx.changed().await.is_err() {
                return Err(user_err("the connection closed".into()));
            }
        }
    }
}
