//! The controller's SSH layer (russh): connect with host-key checks against known_hosts,
//! authenticate (keys, passphrase keys, ssh-agent, password), run commands over exec
//! channels, start a program as root (through sudo, password fed once on stdin) and upload
//! a file only when the host lacks it. Kept behind this module so the SSH library stays a
//! one-module concern.

mod auth;
mod error;
mod known_hosts;
mod process;

pub use crate::clusterfile::Secret;
pub use error::SshError;
pub use process::{ChannelReader, ChannelWriter, ExecOutput, RemoteProcess};

use russh::client;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// Address or name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// How to authenticate.
    pub auth: AuthConfig,
}

/// Authentication material. Without `private_key`, `~/.ssh/id_ed25519` then `~/.ssh/id_rsa`
/// are tried, then the ssh-agent (when `use_agent`), then the password.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Password.
    pub password: Option<Secret>,
    /// Private key file.
    pub private_key: Option<PathBuf>,
    /// Its passphrase.
    pub key_passphrase: Option<Secret>,
    /// Try identities of the agent at `SSH_AUTH_SOCK`.
    pub use_agent: bool,
}

/// How host keys are checked.
#[derive(Debug, Clone)]
pub struct HostKeyPolicy {
    /// The known_hosts file.
    pub known_hosts: PathBuf,
    /// Record unknown keys instead of refusing them (a changed key is always refused).
    pub accept_new: bool,
}

/// Timeouts.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// How long to wait for the TCP connection and the SSH handshake.
    pub connect_timeout: Duration,
    /// Keepalive interval; three unanswered keepalives end the connection.
    pub keepalive: Duration,
}

/// An authenticated connection.
pub struct Session {
    handle: client::Handle<known_hosts::Checker>,
    label: String,
    user: String,
}

/// Connects, checks the host key and authenticates.
pub async fn connect(
    t: &Target,
    p: &HostKeyPolicy,
    o: &ConnectOptions,
) -> Result<Session, SshError> {
    let label = known_hosts::label(&t.host, t.port);
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(o.keepalive),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let checker = known_hosts::Checker::new(&t.host, t.port, p);
    let verdict = checker.verdict();
    let connecting = client::connect(config, (t.host.as_str(), t.port), checker);
    let mut handle = match tokio::time::timeout(o.connect_timeout, connecting).await {
        Err(_) => {
            return Err(SshError::Timeout {
                host: label,
                waited_for: format!(
                    "the SSH connection and handshake ({} s, --connect-timeout)",
                    o.connect_timeout.as_secs()
                ),
            });
        }
        Ok(Err(e)) => {
            // A refused host key surfaces as a handshake error; report the verdict instead.
            if let Some(refusal) = verdict.take(&label) {
                return Err(refusal);
            }
            return Err(SshError::Connect {
                host: label,
                reason: e.to_string(),
            });
        }
        Ok(Ok(h)) => h,
    };
    if let Some(refusal) = verdict.take(&label) {
        return Err(refusal);
    }
    auth::authenticate(&mut handle, t, &label).await?;
    Ok(Session {
        handle,
        label,
        user: t.user.clone(),
    })
}

impl Session {
    /// `host` or `host:port`, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the login user is root.
    pub fn is_root(&self) -> bool {
        self.user == "root"
    }

    /// Runs `cmd` (a shell command line) and collects its output.
    pub async fn exec(&self, cmd: &str) -> Result<ExecOutput, SshError> {
        let mut p = self.spawn(cmd).await?;
        p.close_stdin().await;
        p.collect().await
    }

    /// Starts `cmd` with piped stdin/stdout; stderr is collected.
    pub async fn spawn(&self, cmd: &str) -> Result<RemoteProcess, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.err(format!("opening a session channel: {e}")))?;
        channel
            .exec(true, cmd)
            .await
            .map_err(|e| self.err(format!("starting `{cmd}`: {e}")))?;
        Ok(RemoteProcess::start(channel, self.label.clone()))
    }

    /// Starts `argv` as root: directly for root, else through `sudo`. With a password,
    /// `sudo -S` reads it once from stdin (never from a command line or a PTY); a rejected
    /// password fails at once. The program must speak first on stdout.
    pub async fn spawn_root(
        &self,
        argv: &[&str],
        sudo_password: Option<&Secret>,
    ) -> Result<RemoteProcess, SshError> {
        let cmd = shlex::try_join(argv.iter().copied())
            .map_err(|_| self.err("a command argument contains a NUL byte".to_string()))?;
        if self.is_root() {
            return self.spawn(&cmd).await;
        }
        match sudo_password {
            None => self.spawn(&format!("sudo -n -- {cmd}")).await,
            Some(password) => {
                let marker = process::sudo_marker();
                let mut p = self
                    .spawn(&format!(
                        "sudo -S -p {} -- {cmd}",
                        shlex::try_quote(&marker).map_err(|_| self.err("bad marker".into()))?
                    ))
                    .await?;
                p.feed_sudo_password(password, &marker, &self.user).await?;
                Ok(p)
            }
        }
    }

    /// Uploads `local` to `remote_rel` under the login user's home (mode 0700; temp name then
    /// rename; content hash checked) unless the host already has exactly that file. Returns
    /// the absolute remote path and whether bytes were sent.
    pub async fn upload_if_changed(
        &self,
        local: &Path,
        remote_rel: &str,
    ) -> Result<(String, bool), SshError> {
        let sha = installer_proto::manifest::sha256_file(local)
            .map_err(|e| self.err(format!("reading {}: {e}", local.display())))?;
        let rel = shlex::try_quote(remote_rel).map_err(|_| self.err("bad path".into()))?;
        let probe = self
            .exec(&format!(
                "cd && printf '%s\\n' \"$PWD\" && sha256sum {rel} 2>/dev/null || true"
            ))
            .await?;
        let text = String::from_utf8_lossy(&probe.stdout).to_string();
        let mut lines = text.lines();
        let home = lines.next().unwrap_or("").trim().to_string();
        if home.is_empty() {
            return Err(self.err("could not find the login user's home directory".into()));
        }
        let abs = format!("{}/{}", home.trim_end_matches('/'), remote_rel);
        if lines.next().and_then(|l| l.split_whitespace().next()) == Some(sha.as_str()) {
            return Ok((abs, false));
        }
        let bytes = tokio::fs::read(local)
            .await
            .map_err(|e| self.err(format!("reading {}: {e}", local.display())))?;
        let script = format!(
            "set -e; cd; f={rel}; d=$(dirname \"$f\"); mkdir -p \"$d\"; chmod 700 \"$d\"; t=\"$f.tmp.$$\"; \
             cat > \"$t\"; chmod 700 \"$t\"; s=$(sha256sum \"$t\" | cut -d' ' -f1); \
             if [ \"$s\" != {sha} ]; then rm -f \"$t\"; echo \"content hash $s does not match\" >&2; exit 1; fi; mv -f \"$t\" \"$f\""
        );
        let mut p = self.spawn(&script).await?;
        p.write_all(&bytes).await?;
        p.close_stdin().await;
        let out = p.collect().await?;
        if out.status != 0 {
            return Err(self.err(format!(
                "uploading to ~/{remote_rel} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok((abs, true))
    }

    /// Ends the connection.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    fn err(&self, reason: String) -> SshError {
        SshError::Remote {
            host: self.label.clone(),
            reason,
        }
    }
}
