//! A real OpenSSH server on a loopback port, without Docker: Debian's `/usr/sbin/sshd` run
//! in the foreground with its own host key, config and authorized key in a temporary
//! directory. It logs in as the user running the tests (root in CI) and accepts only the
//! key it generated. For SSH-layer tests that need no host to change: a non-standard port,
//! host-key policies, key auth, commands.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's openssh-server puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum SshdError {
    /// No sshd binary.
    #[error("{SSHD} not found; install Debian's openssh-server (scripts/prereqs.sh does)")]
    Missing,
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `ssh-keygen` failed.
    #[error("ssh-keygen failed for {0}")]
    Keygen(PathBuf),
    /// sshd exited or never listened.
    #[error("sshd did not start on 127.0.0.1:{port}: {log}")]
    NotListening {
        /// The port it was given.
        port: u16,
        /// Its own words.
        log: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SshdError {
    let what = what.into();
    move |source| SshdError::Io { what, source }
}

/// A running loopback sshd; stopped when dropped.
pub struct LoopbackSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl std::fmt::Debug for LoopbackSshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackSshd")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl LoopbackSshd {
    /// Starts one on a free loopback port and waits until it accepts connections.
    pub fn start() -> Result<LoopbackSshd, SshdError> {
        if !Path::new(SSHD).exists() {
            return Err(SshdError::Missing);
        }
        // sshd refuses to start without its privilege separation directory, which the
        // Debian package only creates when its service runs.
        if nix::unistd::geteuid().is_root() && !Path::new("/run/sshd").exists() {
            fs::create_dir_all("/run/sshd").map_err(io_err("creating /run/sshd"))?;
        }
        let dir = tempfile::Builder::new()
            .prefix("loopback-sshd-")
            .tempdir()
            .map_err(io_err("creating the sshd directory"))?;
        keygen(&dir.path().join("host_ed25519"))?;
        keygen(&dir.path().join("id_ed25519"))?;
        fs::copy(
            dir.path().join("id_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .map_err(io_err("writing authorized_keys"))?;
        // A port the kernel just handed out is free unless something grabs it in between;
        // a second try covers that.
        let mut last = None;
        for _ in 0..3 {
            let port = free_port().map_err(io_err("finding a free loopback port"))?;
            match spawn(dir.path(), port) {
                Ok(child) => return Ok(LoopbackSshd { dir, port, child }),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(SshdError::NotListening {
            port: 0,
            log: "no attempt was made".into(),
        }))
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private key it accepts (no passphrase).
    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }

    /// Its host public key, as `<type> <base64>`.
    pub fn host_public_key(&self) -> Result<String, SshdError> {
        let text = fs::read_to_string(self.dir.path().join("host_ed25519.pub"))
            .map_err(io_err("reading the host key"))?;
        Ok(text
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Replaces its host key and restarts it on the same port: what a reinstalled host
    /// looks like to a client that knew it.
    pub fn change_host_key(&mut self) -> Result<(), SshdError> {
        self.stop();
        for name in ["host_ed25519", "host_ed25519.pub"] {
            fs::remove_file(self.dir.path().join(name))
                .map_err(io_err(format!("removing {name}")))?;
        }
        keygen(&self.dir.path().join("host_ed25519"))?;
        self.child = spawn(self.dir.path(), self.port)?;
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LoopbackSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path) -> Result<(), SshdError> {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "loopback-sshd", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(())
        .ok_or_else(|| SshdError::Keygen(path.to_path_buf()))
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Writes the config for `port` and runs sshd until it accepts a TCP connection.
fn spawn(dir: &Path, port: u16) -> Result<Child, SshdError> {
    let d = dir.display();
    let config = format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_ed25519\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         StrictModes no\n\
         Subsystem sftp internal-sftp\n\
         LogLevel ERROR\n"
    );
    let config_path = dir.join("sshd_config");
    fs::write(&config_path, config).map_err(io_err("writing sshd_config"))?;
    let log_path = dir.join(format!("sshd-{port}.log"));
    let log = fs::File::create(&log_path).map_err(io_err("creating the sshd log"))?;
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(io_err(format!("starting {SSHD}")))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SshdError::NotListening {
                port,
                log: fs::read_to_string(&log_path)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
