//! The repository's `Vagrantfile`, driven with the docker provider on the testenv node image:
//! `vagrant validate`, and three machines brought up (and destroyed) for a test. Each run has
//! its own names, network and state directory, so runs do not collide.

use crate::{cache, node_image};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Why Vagrant could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum VagrantError {
    /// `vagrant` is not installed.
    #[error(
        "`vagrant` is not installed; install it with `apt-get install --no-install-recommends vagrant`"
    )]
    Missing,
    /// A vagrant command failed.
    #[error("`vagrant {command}` failed ({status}):\n{output}")]
    Failed {
        /// The subcommand.
        command: String,
        /// Exit status.
        status: String,
        /// Its output (the last part).
        output: String,
    },
    /// The node image could not be built.
    #[error(transparent)]
    Image(#[from] crate::node_image::Error),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The repository root (where the Vagrantfile is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vagrant(env: &[(&str, String)], args: &[&str]) -> Result<String, VagrantError> {
    let out = Command::new("vagrant")
        .args(args)
        .current_dir(repo_root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VagrantError::Missing,
            _ => VagrantError::Io(e),
        })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let tail: String = text
            .chars()
            .rev()
            .take(4000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(VagrantError::Failed {
            command: args.join(" "),
            status: out.status.to_string(),
            output: tail,
        });
    }
    Ok(text)
}

/// Runs `vagrant validate` on the repository's Vagrantfile (all providers).
pub fn validate() -> Result<(), VagrantError> {
    let dir = tempfile::tempdir()?;
    vagrant(
        &[
            ("INSTALLER_VAGRANT_DIR", dir.path().display().to_string()),
            (
                "VAGRANT_DOTFILE_PATH",
                dir.path().join("dot").display().to_string(),
            ),
        ],
        &["validate"],
    )?;
    Ok(())
}

/// Three machines from the Vagrantfile on the docker provider; destroyed on drop.
pub struct VagrantCluster {
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    net: String,
}

impl VagrantCluster {
    /// Brings the machines up with `rootfs` named in the Clusterfile written for them.
    pub fn up(rootfs: &Path) -> Result<VagrantCluster, VagrantError> {
        let image = node_image::ensure_node_image()?;
        let dir = tempfile::Builder::new().prefix("vagrant-").tempdir_in({
            let base = cache::cache_dir();
            std::fs::create_dir_all(&base)?;
            base
        })?;
        // A /24 of 10.233.0.0/16 picked from the directory's random name: runs do not share.
        let seed: u32 = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().bytes().map(u32::from).sum())
            .unwrap_or(0);
        let net = format!("10.233.{}", seed % 250 + 1);
        let name = format!("vg{}", seed % 100_000);
        let env = vec![
            ("INSTALLER_NODE_IMAGE", image),
            (
                "INSTALLER_VAGRANT_DIR",
                dir.path().join("out").display().to_string(),
            ),
            ("INSTALLER_VAGRANT_NET", net.clone()),
            ("INSTALLER_VAGRANT_NAME", name),
            ("INSTALLER_ROOTFS", rootfs.display().to_string()),
            (
                "VAGRANT_DOTFILE_PATH",
                dir.path().join("dot").display().to_string(),
            ),
        ];
        let cluster = VagrantCluster { env, dir, net };
        vagrant(&cluster.env, &["up", "--provider=docker"])?;
        Ok(cluster)
    }

    /// The Clusterfile the Vagrantfile wrote for these machines.
    pub fn clusterfile_path(&self) -> PathBuf {
        self.dir.path().join("out/Clusterfile")
    }

    /// A known_hosts path for this run (empty until something records keys).
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The machines' addresses.
    pub fn ips(&self) -> Vec<String> {
        (11..=13).map(|i| format!("{}.{i}", self.net)).collect()
    }

    /// Runs a command on machine `name` through `vagrant ssh`.
    pub fn ssh(&self, name: &str, command: &str) -> Result<String, VagrantError> {
        vagrant(&self.env, &["ssh", name, "-c", command])
    }

    /// Destroys the machines (also done on drop).
    pub fn destroy(&self) -> Result<(), VagrantError> {
        vagrant(&self.env, &["destroy", "-f"])?;
        Ok(())
    }
}

impl Drop for VagrantCluster {
    fn drop(&mut self) {
        if let Err(e) = self.destroy() {
            tracing::warn!("vagrant destroy failed: {e}");
        }
        // Give Docker a moment to release the network before the next run.
        std::thread::sleep(Duration::from_millis(100));
    }
}
