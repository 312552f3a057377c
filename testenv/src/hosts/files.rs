//! The cluster's files on the controller side (key, known_hosts, Clusterfile, password) and
//! the SSH client calls that use them.

use super::{Error, Host, Role};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// File names inside the working directory.
pub(super) const KEY: &str = "id_ed25519";
pub(super) const KNOWN_HOSTS: &str = "known_hosts";
pub(super) const CLUSTERFILE: &str = "Clusterfile";
pub(super) const PASSWORD: &str = "opspw-password";

/// Every file a cluster writes into its working directory (and so the only ones removed).
const ALL_FILES: &[&str] = &[KEY, "id_ed25519.pub", KNOWN_HOSTS, CLUSTERFILE, PASSWORD];

/// How long a node's sshd gets to accept the key after systemd reported the boot done.
const SSH_READY_TIMEOUT: Duration = Duration::from_secs(30);

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// `n` random bytes from the kernel, as lowercase hex.
pub(super) fn random_hex(n: usize) -> Result<String, Error> {
    let path = Path::new("/dev/urandom");
    let mut bytes = vec![0u8; n];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error("read", path))?;
    Ok(installer_proto::manifest::hex(&bytes))
}

/// A fresh cluster name for tests running in parallel: `t` and 10 random hex digits.
pub(super) fn unique_name() -> String {
    match random_hex(5) {
        Ok(hex) => format!("t{hex}"),
        // /dev/urandom always exists on Linux; should it not, the process id and the clock
        // still separate concurrent test processes and calls.
        Err(_) => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            format!("t{:x}{:08x}", std::process::id(), nanos)
        }
    }
}

/// Fails with a clear message when `tool` is not installed.
pub(super) fn require_tool(tool: &'static str, fix: &'static str) -> Result<(), Error> {
    match Command::new(tool)
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingTool { tool, fix }),
        // Any answer (even an error about the flag) shows the program exists.
        _ => Ok(()),
    }
}

pub(super) fn prepare_workdir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(io_error("create", dir))
}

/// Writes `data` to `path` with mode 0600: temp file, fsync, rename.
pub(super) fn write_secret(path: &Path, data: &[u8]) -> Result<(), Error> {
    write_atomic(path, data, 0o600)
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_error("write", &tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io_error("rename into place", path))
}

/// Generates the cluster's ed25519 key pair with `ssh-keygen` (in a temporary directory,
/// then renamed into place, so a half-written key never exists under the final name).
pub(super) fn generate_key(path: &Path, cluster: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".keygen-")
        .tempdir_in(dir)
        .map_err(io_error("create a temporary directory in", dir))?;
    let tmp_key = tmp.path().join(KEY);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C"])
        .arg(format!("installer-testenv-{cluster}"))
        .arg("-f")
        .arg(&tmp_key)
        .stdin(Stdio::null())
        .output()
        .map_err(io_error("run ssh-keygen for", &tmp_key))?;
    if !out.status.success() {
        return Err(Error::Io {
            action: "generate a key with ssh-keygen at",
            path: tmp_key,
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        });
    }
    let tmp_pub = tmp.path().join(format!("{KEY}.pub"));
    let final_pub = path.with_extension("pub");
    for (from, to) in [(&tmp_key, path), (&tmp_pub, final_pub.as_path())] {
        File::open(from)
            .and_then(|f| f.sync_all())
            .map_err(io_error("sync", from))?;
        fs::rename(from, to).map_err(io_error("rename into place", to))?;
    }
    Ok(())
}

/// The public half of the key: `ssh-ed25519 AAAA... comment`.
pub(super) fn read_public_key(key: &Path) -> Result<String, Error> {
    let path = key.with_extension("pub");
    let text = fs::read_to_string(&path).map_err(io_error("read", &path))?;
    Ok(text.trim().to_owned())
}

/// known_hosts with plain (unhashed) `<ip> <type> <key>` lines, every key of every node.
pub(super) fn write_known_hosts(
    path: &Path,
    hosts: &[Host],
    host_keys: &[Vec<String>],
) -> Result<(), Error> {
    let mut text = String::new();
    for (host, keys) in hosts.iter().zip(host_keys) {
        for key in keys {
            text.push_str(&format!("{} {key}\n", host.ip));
        }
    }
    write_atomic(path, text.as_bytes(), 0o644)
}

/// The Clusterfile: one `sealer.io/v2` Cluster with the master and the other nodes.
pub(super) fn write_clusterfile(
    path: &Path,
    name: &str,
    image: &Path,
    key: &Path,
    hosts: &[Host],
) -> Result<(), Error> {
    write_atomic(
        path,
        clusterfile_text(name, image, key, hosts).as_bytes(),
        0o644,
    )
}

fn clusterfile_text(name: &str, image: &Path, key: &Path, hosts: &[Host]) -> String {
    // Strings are written as JSON strings, which YAML reads unchanged whatever they hold.
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let ips = |role: Role| {
        let list: Vec<String> = hosts
            .iter()
            .filter(|h| h.role == role)
            .map(|h| quote(&h.ip.to_string()))
            .collect();
        list.join(", ")
    };
    let mut text = format!(
        "apiVersion: sealer.io/v2\n\
         kind: Cluster\n\
         metadata:\n  name: {name}\n\
         spec:\n  image: {image}\n\
         \x20 ssh:\n    user: root\n    pk: {key}\n\
         \x20 hosts:\n    - ips: [{masters}]\n      roles: [master]\n",
        name = quote(name),
        image = quote(&image.to_string_lossy()),
        key = quote(&key.to_string_lossy()),
        masters = ips(Role::Master),
    );
    if hosts.iter().any(|h| h.role == Role::Node) {
        text.push_str(&format!(
            "    - ips: [{nodes}]\n      roles: [node]\n",
            nodes = ips(Role::Node)
        ));
    }
    text.push_str(
        "  containerRuntime:\n    type: containerd\n\
         \x20 registry:\n    localRegistry:\n      domain: sea.hub\n      port: 5000\n",
    );
    text
}

/// `ssh` with only what is given here: the key, the known_hosts file with strict checking,
/// no agent, no user or system configuration, no prompts.
pub(super) fn ssh_command(key: &Path, known_hosts: &Path, user: &str, ip: Ipv4Addr) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "-l", user])
        .arg(ip.to_string());
    cmd
}

/// Waits until `root@host` can log in with the key and the host key matches known_hosts.
pub(super) fn wait_ssh(key: &Path, known_hosts: &Path, host: &Host) -> Result<(), Error> {
    let deadline = Instant::now() + SSH_READY_TIMEOUT;
    loop {
        let out = ssh_command(key, known_hosts, "root", host.ip)
            .arg("true")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::MissingTool {
                        tool: "ssh",
                        fix: "install the OpenSSH client (`apt-get install openssh-client`)",
                    }
                } else {
                    io_error("run ssh for", key)(e)
                }
            })?;
        if out.status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Node {
                node: host.name.clone(),
                container: host.container.clone(),
                message: format!(
                    "sshd at {} did not accept the cluster key within {} s: {}",
                    host.ip,
                    SSH_READY_TIMEOUT.as_secs(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes the files a cluster wrote (only those), then the directory if that left it
/// empty. Best effort: used on teardown, where there is nobody to report to but the log.
pub(super) fn remove_workdir_files(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for name in ALL_FILES {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "could not remove"),
        }
    }
    // Fails (and so keeps the directory) if anything else is in it.
    let _ = fs::remove_dir(dir);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(i: u8, role: Role) -> Host {
        Host {
            name: format!("node{i}"),
            ip: Ipv4Addr::new(10, 231, 5, 10 + i),
            role,
            container: format!("testenv-x-node{i}"),
        }
    }

    #[test]
    fn clusterfile_lists_master_then_nodes() {
        let hosts = [
            host(1, Role::Master),
            host(2, Role::Node),
            host(3, Role::Node),
        ];
        let text = clusterfile_text(
            "demo",
            Path::new("/srv/rootfs \"x\""),
            Path::new("/w/id_ed25519"),
            &hosts,
        );
        assert!(
            text.starts_with("apiVersion: sealer.io/v2\nkind: Cluster\n"),
            "{text}"
        );
        assert!(text.contains("  name: \"demo\"\n"), "{text}");
        assert!(
            text.contains("  image: \"/srv/rootfs \\\"x\\\"\"\n"),
            "{text}"
        );
        assert!(
            text.contains("    user: root\n    pk: \"/w/id_ed25519\"\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "    - ips: [\"10.231.5.11\"]\n      roles: [master]\n    - ips: [\"10.231.5.12\", \"10.231.5.13\"]\n      roles: [node]\n"
            ),
            "{text}"
        );
        assert!(text.contains("    type: containerd\n"), "{text}");
        assert!(
            text.contains("      domain: sea.hub\n      port: 5000\n"),
            "{text}"
        );
    }

    #[test]
    fn single_node_clusterfile_has_no_node_group() {
        let text = clusterfile_text(
            "one",
            Path::new("/r"),
            Path::new("/k"),
            &[host(1, Role::Master)],
        );
        assert!(!text.contains("roles: [node]"), "{text}");
    }

    #[test]
    fn atomic_write_leaves_only_the_final_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_secret(&path, b"one").unwrap();
        write_secret(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    }
}
