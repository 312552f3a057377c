//! One node container: how it is started, provisioned and waited for.

use super::{Cluster, Error, Host, LABEL};
use crate::docker::{self, DockerError};

/// Label on each node container naming the node.
const NODE_LABEL: &str = "installer-testenv.node";

/// Installs the cluster key for every login user and sets `opspw`'s password. Reads the
/// password (line 1) and the public key (line 2) from stdin: neither goes into arguments.
const PROVISION_SCRIPT: &str = r#"set -eu
IFS= read -r password
IFS= read -r pubkey
for user in root ops opspw; do
    home=$(getent passwd "$user" | cut -d: -f6)
    group=$(id -gn "$user")
    install -d -m 0700 -o "$user" -g "$group" "$home/.ssh"
    printf '%s\n' "$pubkey" > "$home/.ssh/authorized_keys"
    chown "$user:$group" "$home/.ssh/authorized_keys"
    chmod 0600 "$home/.ssh/authorized_keys"
done
printf 'opspw:%s\n' "$password" | chpasswd
"#;

/// Waits until systemd has finished booting (`running`, or `degraded` with the failed units
/// listed), then prints the host's public host keys. `systemctl` fails while systemd is
/// still starting its bus, hence the retry loop around `--wait`.
const WAIT_SCRIPT: &str = r#"set -u
tries=0
while :; do
    state=$(timeout 90 systemctl is-system-running --wait 2>/dev/null) || true
    case "$state" in
        running|degraded) break ;;
    esac
    tries=$((tries + 1))
    if [ "$tries" -ge 150 ]; then
        echo "systemd did not finish booting (state: ${state:-none})" >&2
        systemctl --failed --no-legend --plain >&2 || true
        exit 3
    fi
    sleep 0.2
done
echo "state $state"
if [ "$state" = degraded ]; then
    systemctl --failed --no-legend --plain | sed 's/^/failed /'
fi
if ! systemctl is-active --quiet ssh.service; then
    echo "ssh.service is not active:" >&2
    systemctl status --no-pager ssh.service >&2 || true
    exit 4
fi
for f in /etc/ssh/ssh_host_*_key.pub; do
    echo "hostkey $(cut -d' ' -f1,2 "$f")"
done
"#;

/// Starts the node's container.
pub(super) fn run(cluster: &Cluster, host: &Host, image: &str) -> Result<(), Error> {
    let ip = host.ip.to_string();
    let cluster_label = format!("{LABEL}={}", cluster.name);
    let node_label = format!("{NODE_LABEL}={}", host.name);
    let volume = format!(
        "type=volume,dst=/var/lib/containerd,volume-label={LABEL}={}",
        cluster.name
    );
    let args: Vec<&str> = vec![
        "run",
        "--detach",
        "--name",
        &host.container,
        "--hostname",
        &host.name,
        "--label",
        &cluster_label,
        "--label",
        &node_label,
        "--network",
        &cluster.network,
        "--ip",
        &ip,
        // `--privileged` needs every capability in the bounding set, which some CI
        // machines lack (CAP_SYS_RESOURCE); all the others are enough for systemd, mounts,
        // netfilter and nested containers.
        "--cap-add",
        "ALL",
        "--cap-drop",
        "SYS_RESOURCE",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        // Writable /proc/sys (sysctls are part of preparing a node) and no masked paths.
        "--security-opt",
        "systempaths=unconfined",
        // The node's own cgroup namespace: its cgroup is the root of everything it sees,
        // so nested runtimes of different nodes never share a cgroup (see init.sh).
        "--cgroupns",
        "private",
        "--tmpfs",
        "/run:rw,exec,nosuid,nodev,mode=755",
        "--tmpfs",
        "/run/lock:rw,noexec,nosuid,nodev",
        "--tmpfs",
        "/tmp:rw,exec,nosuid,nodev,mode=1777",
        // Overlayfs cannot use the container's own (overlay) root as its upper layer; a
        // volume gives nested containerd a plain filesystem for its snapshots.
        "--mount",
        &volume,
        // systemd shuts down cleanly on SIGRTMIN+3.
        "--stop-signal",
        "SIGRTMIN+3",
        "--env",
        "container=docker",
        image,
    ];
    docker::run(&args).map_err(|e| node_error(host, "could not start the container", e))?;
    Ok(())
}

/// Installs the key for root, ops and opspw and sets opspw's password.
pub(super) fn provision(host: &Host, public_key: &str, password: &str) -> Result<(), Error> {
    let stdin = format!("{password}\n{public_key}\n");
    docker::run_with_stdin(
        [
            "exec",
            "-i",
            &host.container,
            "/bin/sh",
            "-c",
            PROVISION_SCRIPT,
        ],
        stdin.as_bytes(),
    )
    .map_err(|e| node_error(host, "could not install the key and password", e))?;
    Ok(())
}

/// Waits for the node to finish booting; returns its host keys (`<type> <base64>`).
pub(super) fn wait_booted(host: &Host) -> Result<Vec<String>, Error> {
    let out = docker::run(["exec", &host.container, "/bin/sh", "-c", WAIT_SCRIPT])
        .map_err(|e| node_error(host, "did not boot", e))?;
    let mut keys = Vec::new();
    let mut failed = Vec::new();
    for line in out.lines() {
        if let Some(key) = line.strip_prefix("hostkey ") {
            keys.push(key.to_owned());
        } else if let Some(unit) = line.strip_prefix("failed ") {
            failed.push(unit.to_owned());
        }
    }
    if !failed.is_empty() {
        tracing::warn!(node = %host.name, failed = ?failed, "node booted degraded");
    }
    if keys.is_empty() {
        return Err(Error::Node {
            node: host.name.clone(),
            container: host.container.clone(),
            message: "booted but has no SSH host keys in /etc/ssh".into(),
        });
    }
    Ok(keys)
}

fn node_error(host: &Host, what: &str, e: DockerError) -> Error {
    Error::Node {
        node: host.name.clone(),
        container: host.container.clone(),
        message: format!("{what}: {e}"),
    }
}
