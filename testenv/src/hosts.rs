//! Real test hosts: node containers running systemd and sshd on a private Docker network.
//!
//! [`Cluster::up`] starts N containers from the [node image](crate::node_image), each with
//! a fixed IP on a network of its own, and writes into the cluster's working directory what
//! the installer needs to reach them: an ed25519 private key (in every node's
//! `authorized_keys` for `root`, `ops` and `opspw`), a `known_hosts` file with each node's
//! real host keys, and a ready `Clusterfile`. It returns once every node's systemd has
//! finished booting and its sshd accepts the key.
//!
//! Nodes are as close to hosts as a container gets: systemd is PID 1, the hostname is the
//! node name, `/etc/hosts` is a plain file, each node has its own cgroup root (so container
//! runtimes installed inside two nodes do not share cgroups), and `/var/lib/containerd` is a
//! Docker volume (overlayfs cannot stack on the container's own overlay root).
//!
//! Everything a cluster creates carries the label `installer-testenv=<name>`;
//! [`down`] removes exactly that. Dropping a [`Cluster`] tears it down unless
//! [`Cluster::keep`] was called.

mod error;
mod files;
mod net;
mod node;
pub mod snapshot;
mod teardown;

use crate::docker::{self, ExecOutput};
use crate::node_image;
use std::ffi::OsStr;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use error::Error;
pub use snapshot::{Change, FileEntry, FileKind, Snapshot, diff};
pub use teardown::{Removed, down, down_all};

/// A host's check, in shell, that the local registry answers `/v2/` at `sea.hub:5000` over
/// TLS, verified with the cluster CA apply placed for docker (the same CA containerd gets).
pub const REGISTRY_ANSWERS_OVER_TLS: &str = "curl -sf -o /dev/null --cacert '/etc/docker/certs.d/sea.hub:5000/ca.crt' https://sea.hub:5000/v2/";

/// A host's command, in shell, pulling `image` from `sea.hub:5000` into containerd namespace
/// `ns` with `ctr`, trusting the registry through the hosts directory apply placed
/// (`/etc/containerd/certs.d`), as containerd's CRI does.
pub fn ctr_pull(ns: &str, image: &str) -> String {
    format!(
        "ctr -n {ns} images pull --hosts-dir /etc/containerd/certs.d sea.hub:5000/{image} >/dev/null"
    )
}

/// The label key on every container, network and volume a cluster creates; its value is
/// the cluster name.
pub const LABEL: &str = "installer-testenv";

/// The cluster name the command line uses when none is given.
pub const DEFAULT_NAME: &str = "testenv";

/// The most nodes a cluster may have (node IPs are `.11` up to `.250` of its /24).
pub const MAX_NODES: usize = 240;

/// The non-root user whose sudo needs no password.
pub const OPS_USER: &str = "ops";

/// The non-root user whose sudo needs the cluster's password ([`Cluster::password`]).
pub const OPSPW_USER: &str = "opspw";

/// How to bring up a cluster.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Number of nodes, 1 to [`MAX_NODES`]. The first is the master.
    pub nodes: usize,
    /// Cluster name (lowercase letters, digits and `-`, at most 32 characters). `None`
    /// picks a unique name, which is what parallel tests want. Leftovers of an earlier run
    /// with the same name are removed first.
    pub name: Option<String>,
    /// The rootfs directory to name in the Clusterfile's `spec.image`. `None` writes a
    /// placeholder path inside the working directory.
    pub rootfs: Option<PathBuf>,
    /// Where to write the key, known_hosts, Clusterfile and password file. `None` uses
    /// `<cache dir>/clusters/<name>`.
    pub workdir: Option<PathBuf>,
}

/// A node's role in the Clusterfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The first node: `roles: [master]`.
    Master,
    /// Every other node: `roles: [node]`.
    Node,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::Node => "node",
        })
    }
}

/// One node of a cluster.
#[derive(Debug, Clone)]
pub struct Host {
    /// The node name, which is also its hostname: `node1`, `node2`, ...
    pub name: String,
    /// Its fixed address on the cluster network.
    pub ip: Ipv4Addr,
    /// Its role in the Clusterfile.
    pub role: Role,
    /// The Docker container name.
    pub container: String,
}

/// A running cluster of node containers. Dropping it removes the containers, the network,
/// the volumes and the files it wrote, unless [`Cluster::keep`] was called.
pub struct Cluster {
    name: String,
    network: String,
    subnet: String,
    hosts: Vec<Host>,
    workdir: PathBuf,
    password: String,
    keep: bool,
}

impl Cluster {
    /// Builds the node image if needed, starts the nodes, writes the cluster's files and
    /// waits until every node has booted and accepts the key over SSH.
    pub fn up(options: UpOptions) -> Result<Cluster, Error> {
        if options.nodes == 0 || options.nodes > MAX_NODES {
            return Err(Error::InvalidNodeCount {
                nodes: options.nodes,
            });
        }
        let name = match options.name {
            Some(name) => {
                validate_name(&name)?;
                name
            }
            None => files::unique_name(),
        };
        files::require_tool(
            "ssh-keygen",
            "install the OpenSSH client (`apt-get install openssh-client`)",
        )?;
        files::require_tool(
            "ssh",
            "install the OpenSSH client (`apt-get install openssh-client`)",
        )?;
        let image = node_image::ensure_node_image()?;

        let stale = down(&name)?;
        if !stale.is_empty() {
            tracing::warn!(cluster = %name, %stale, "removed leftovers of an earlier run");
        }

        let workdir = match options.workdir {
            Some(dir) => dir,
            None => crate::cache::cache_dir().join("clusters").join(&name),
        };
        // From here on, a failure must not leave anything behind: the guard tears down
        // whatever exists under the label (and the files) when dropped without `keep`.
        let mut cluster = Cluster {
            network: format!("testenv-{name}"),
            name,
            subnet: String::new(),
            hosts: Vec::new(),
            workdir,
            password: files::random_hex(16)?,
            keep: false,
        };
        files::prepare_workdir(&cluster.workdir)?;
        let (subnet, prefix) =
            net::create_network(&cluster.name, &cluster.network, &cluster.workdir)?;
        cluster.subnet = subnet;
        cluster.hosts = (0..options.nodes)
            .map(|i| Host {
                name: format!("node{}", i + 1),
                ip: Ipv4Addr::new(prefix[0], prefix[1], prefix[2], (11 + i) as u8),
                role: if i == 0 { Role::Master } else { Role::Node },
                container: format!("testenv-{}-node{}", cluster.name, i + 1),
            })
            .collect();

        files::generate_key(&cluster.key_path(), &cluster.name)?;
        let public_key = files::read_public_key(&cluster.key_path())?;
        files::write_secret(&cluster.password_path(), cluster.password.as_bytes())?;

        let host_keys = std::thread::scope(|scope| {
            let handles: Vec<_> = cluster
                .hosts
                .iter()
                .map(|host| {
                    let (cluster, image, public_key) = (&cluster, &image, &public_key);
                    scope.spawn(move || {
                        node::run(cluster, host, image)?;
                        node::provision(host, public_key, &cluster.password)?;
                        node::wait_booted(host)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<_>, Error>>()
        })?;

        files::write_known_hosts(&cluster.known_hosts_path(), &cluster.hosts, &host_keys)?;
        let image_path = options
            .rootfs
            .unwrap_or_else(|| cluster.workdir.join("rootfs"));
        files::write_clusterfile(
            &cluster.clusterfile_path(),
            &cluster.name,
            &image_path,
            &cluster.key_path(),
            &cluster.hosts,
        )?;
        cluster.wait_ssh_all()?;
        Ok(cluster)
    }

    /// Keeps the cluster running after this value is dropped (the command line's `up`).
    /// Remove it later with [`down`].
    pub fn keep(mut self) -> Cluster {
        self.keep = true;
        self
    }

    /// The cluster name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The nodes, master first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The Docker network the nodes are on.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The network's subnet, e.g. `10.231.17.0/24`.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// The working directory holding the cluster's files.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The generated Clusterfile (`sealer.io/v2` Cluster).
    pub fn clusterfile_path(&self) -> PathBuf {
        self.workdir.join(files::CLUSTERFILE)
    }

    /// The ed25519 private key every node accepts for `root`, `ops` and `opspw`.
    pub fn key_path(&self) -> PathBuf {
        self.workdir.join(files::KEY)
    }

    /// A known_hosts file with every node's host keys (`<ip> <type> <key>` lines).
    pub fn known_hosts_path(&self) -> PathBuf {
        self.workdir.join(files::KNOWN_HOSTS)
    }

    /// The file holding [`Cluster::password`] (mode 0600).
    pub fn password_path(&self) -> PathBuf {
        self.workdir.join(files::PASSWORD)
    }

    /// The sudo password of user `opspw`: random per cluster.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Node `index`, or an error naming the valid range.
    pub fn host(&self, index: usize) -> Result<&Host, Error> {
        self.hosts.get(index).ok_or(Error::NoSuchNode {
            index,
            count: self.hosts.len(),
        })
    }

    /// Runs `argv` as root inside node `index` (`docker exec`, not SSH) and returns its
    /// status and output, whatever the status.
    pub fn exec<S: AsRef<OsStr>>(&self, index: usize, argv: &[S]) -> Result<ExecOutput, Error> {
        let host = self.host(index)?;
        let argv: Vec<&OsStr> = argv.iter().map(AsRef::as_ref).collect();
        Ok(docker::exec(&host.container, &argv, None)?)
    }

    /// Like [`Cluster::exec`], with `stdin` fed to the command (the way to pass secrets).
    pub fn exec_with_stdin<S: AsRef<OsStr>>(
        &self,
        index: usize,
        argv: &[S],
        stdin: &[u8],
    ) -> Result<ExecOutput, Error> {
        let host = self.host(index)?;
        let argv: Vec<&OsStr> = argv.iter().map(AsRef::as_ref).collect();
        Ok(docker::exec(&host.container, &argv, Some(stdin))?)
    }

    /// An `ssh` command for `user@node` with the cluster's key and known_hosts, strict host
    /// key checking and no user configuration; append the remote command and run it.
    pub fn ssh_command(&self, index: usize, user: &str) -> Result<Command, Error> {
        let host = self.host(index)?;
        Ok(files::ssh_command(
            &self.key_path(),
            &self.known_hosts_path(),
            user,
            host.ip,
        ))
    }

    /// Cuts node `index` off the cluster network: nothing reaches it and it reaches
    /// nothing, as if its cable were pulled. It keeps running.
    pub fn disconnect(&self, index: usize) -> Result<(), Error> {
        let host = self.host(index)?;
        docker::run(["network", "disconnect", &self.network, &host.container])?;
        Ok(())
    }

    /// Plugs node `index` back in, with its old address.
    pub fn reconnect(&self, index: usize) -> Result<(), Error> {
        let host = self.host(index)?;
        let ip = host.ip.to_string();
        docker::run([
            "network",
            "connect",
            "--ip",
            &ip,
            &self.network,
            &host.container,
        ])?;
        Ok(())
    }

    /// Shuts node `index` down cleanly (systemd halts, as on `poweroff`).
    pub fn stop(&self, index: usize) -> Result<(), Error> {
        let host = self.host(index)?;
        docker::run(["stop", "--time", "30", &host.container])?;
        Ok(())
    }

    /// Boots node `index` again and waits until it is up and accepts SSH. Its disk (and
    /// so its host keys and users) survived the stop.
    pub fn start(&self, index: usize) -> Result<(), Error> {
        let host = self.host(index)?;
        docker::run(["start", &host.container])?;
        node::wait_booted(host)?;
        self.wait_ssh(host)
    }

    /// A listing of node `index`'s files under [`snapshot::ROOTS`]: type, mode, owner and
    /// content hash, without the machine state named in [`snapshot::EXCLUDES`]. Compare
    /// two with [`diff`].
    pub fn snapshot(&self, index: usize) -> Result<Snapshot, Error> {
        let host = self.host(index)?;
        snapshot::take(host)
    }

    fn wait_ssh_all(&self) -> Result<(), Error> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .hosts
                .iter()
                .map(|host| scope.spawn(move || self.wait_ssh(host)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<Result<Vec<()>, Error>>()
        })?;
        Ok(())
    }

    fn wait_ssh(&self, host: &Host) -> Result<(), Error> {
        files::wait_ssh(&self.key_path(), &self.known_hosts_path(), host)
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Everything but the password, which stays out of logs and panic messages.
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("network", &self.network)
            .field("subnet", &self.subnet)
            .field("hosts", &self.hosts)
            .field("workdir", &self.workdir)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = teardown::remove_cluster(&self.name) {
            tracing::error!(cluster = %self.name, error = %e, "could not remove the cluster");
        }
        files::remove_workdir_files(&self.workdir);
    }
}

/// Cluster names become parts of container, network and file names.
fn validate_name(name: &str) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 32 {
        return invalid("use 1 to 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return invalid("use lowercase letters, digits and '-' only");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return invalid("start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("prod-1").is_ok());
        assert!(validate_name(&files::unique_name()).is_ok());
        for bad in ["", "-a", "a-", "Upper", "a_b", "a/b", &"x".repeat(33)] {
            let err = validate_name(bad).expect_err(bad).to_string();
            assert!(err.contains("invalid cluster name"), "{err}");
        }
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(files::unique_name(), files::unique_name());
    }
}
