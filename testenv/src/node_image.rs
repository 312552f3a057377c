//! The node image: Debian bookworm with systemd as PID 1 and sshd, built locally.
//!
//! Nothing is pulled. `mmdebstrap` builds a root tarball from Debian's mirror, with
//! `node_image/setup.sh` applied inside it; `docker import` turns the tarball into the image
//! `installer-testenv/node:<recipe hash>`. The hash covers the suite, the package list, the
//! build options and both scripts, so a changed recipe builds a new image and an unchanged
//! one is reused: when the image exists, [`ensure_node_image`] costs one `docker image
//! inspect`. The tarball is kept in the cache too, so a wiped Docker store only costs the
//! import.

use crate::cache;
use crate::docker::{self, DockerError};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Debian suite the node image is built from.
pub const SUITE: &str = "bookworm";

/// The packages installed on top of `minbase`. Kept lean: what a Kubernetes node prepared
/// by the installer needs from its OS (systemd, sshd, sudo, networking and netfilter tools,
/// kernel-module tools) plus the basics tests use (curl, ping, ps) and what the distribution
/// benchmark's baselines run on a host (rsync, zstd).
pub const PACKAGES: &[&str] = &[
    "openssh-server",
    // Debian 12's scp speaks SFTP by default, and mmdebstrap installs no Recommends.
    "openssh-sftp-server",
    "systemd",
    "systemd-sysv",
    "dbus",
    "sudo",
    "iproute2",
    "iptables",
    "ebtables",
    "ipset",
    "conntrack",
    "ethtool",
    "socat",
    "kmod",
    "procps",
    "ca-certificates",
    "curl",
    "iputils-ping",
    "netbase",
    "less",
    "rsync",
    "zstd",
];

/// The image repository; the tag is the recipe hash.
pub const IMAGE_REPOSITORY: &str = "installer-testenv/node";

/// Label set on the image (its value is the recipe hash), so images can be listed and
/// pruned.
pub const IMAGE_LABEL: &str = "installer-testenv.node-image";

/// Where the node's PID 1 wrapper is installed.
const INIT_PATH: &str = "/usr/local/sbin/testenv-node-init";

const SETUP_SCRIPT: &str = include_str!("node_image/setup.sh");
const INIT_SCRIPT: &str = include_str!("node_image/init.sh");

/// Bump when the build procedure changes in a way the other recipe parts do not show.
const FORMAT: &str = "node-image/1";

/// mmdebstrap options that shape the result (part of the recipe hash).
const MMDEBSTRAP_OPTIONS: &[&str] = &[
    "--variant=minbase",
    "--format=tar",
    "--aptopt=Acquire::Retries \"3\"",
    // Documentation and translations are dead weight on a test node; copyright files stay.
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    // The hooks get their inputs through the environment, never pasted into shell text.
    "--customize-hook=install -D -m 0755 \"$TESTENV_NODE_INIT\" \"$1/usr/local/sbin/testenv-node-init\"",
    "--customize-hook=chroot \"$1\" /bin/sh -eu < \"$TESTENV_NODE_SETUP\"",
];

/// Environment variable naming a Debian mirror to build from instead of mmdebstrap's
/// default (`http://deb.debian.org/debian`). Not part of the recipe: any mirror of the same
/// suite gives the same image.
pub const MIRROR_ENV: &str = "INSTALLER_TESTENV_MIRROR";

/// What can go wrong building the node image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Docker is missing or failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// A build tool is not installed.
    #[error("`{tool}` is not installed, and the node image cannot be built without it; {fix}")]
    MissingTool {
        /// The missing program.
        tool: &'static str,
        /// How to install it.
        fix: &'static str,
    },
    /// A file or directory in the cache could not be used.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// mmdebstrap ran and failed.
    #[error(
        "mmdebstrap failed ({status}) building the node image (full log: {log}); its last lines:\n{tail}"
    )]
    Build {
        /// mmdebstrap's exit status.
        status: String,
        /// The log file.
        log: PathBuf,
        /// The end of the log.
        tail: String,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

/// The hash of everything that determines the image's content.
pub fn recipe_hash() -> String {
    let packages = PACKAGES.join(",");
    let options = MMDEBSTRAP_OPTIONS.join("\n");
    let changes = base_import_changes().join("\n");
    cache::recipe_hash([
        FORMAT,
        SUITE,
        packages.as_str(),
        options.as_str(),
        SETUP_SCRIPT,
        INIT_SCRIPT,
        changes.as_str(),
    ])
}

/// The image tag for the current recipe: `installer-testenv/node:<recipe hash>`.
pub fn image_tag() -> String {
    format!("{IMAGE_REPOSITORY}:{}", recipe_hash())
}

/// Makes sure the node image for the current recipe exists and returns its tag.
///
/// Cheap when the image exists. Otherwise builds it (about half a minute, needs
/// `mmdebstrap` and Debian's mirror). Safe to call from several processes at once: builds
/// are serialised by a lock file in the cache directory, and whoever waits finds the image
/// built.
pub fn ensure_node_image() -> Result<String, Error> {
    docker::check_available()?;
    let tag = image_tag();
    if docker::exists("image", &tag)? {
        return Ok(tag);
    }

    let dir = cache::cache_dir().join("node-image");
    fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    let lock_path = dir.join("build.lock");
    let lock = File::create(&lock_path).map_err(io_error("create", &lock_path))?;
    tracing::debug!(path = %lock_path.display(), "waiting for the node image build lock");
    lock.lock().map_err(io_error("lock", &lock_path))?;

    // Someone else may have built it while this process waited for the lock.
    if docker::exists("image", &tag)? {
        return Ok(tag);
    }
    let hash = recipe_hash();
    let tarball = dir.join(format!("{hash}.tar"));
    if !tarball.exists() {
        build_tarball(&dir, &hash, &tarball)?;
    }
    tracing::info!(%tag, "importing the node image");
    let mut args: Vec<String> = vec!["import".into()];
    for change in import_changes() {
        args.push("--change".into());
        args.push(change);
    }
    args.push(tarball.to_string_lossy().into_owned());
    args.push(tag.clone());
    docker::run(&args)?;
    // Dropping the lock file handle releases the lock.
    drop(lock);
    Ok(tag)
}

/// Dockerfile instructions applied at import. The stop signal is not among the
/// instructions `docker import` accepts; containers get it with `--stop-signal`.
fn base_import_changes() -> Vec<String> {
    vec![
        // systemd behaves as in a container (no udev, no hardware) when it sees this.
        "ENV container=docker".to_owned(),
        format!("CMD [\"{INIT_PATH}\"]"),
    ]
}

/// [`base_import_changes`] plus a label carrying the recipe hash (derived from the
/// recipe, so the hash needs not cover it).
fn import_changes() -> Vec<String> {
    let mut changes = base_import_changes();
    changes.push(format!("LABEL {IMAGE_LABEL}={}", recipe_hash()));
    changes
}

fn build_tarball(dir: &Path, hash: &str, tarball: &Path) -> Result<(), Error> {
    match Command::new("mmdebstrap")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingTool {
                tool: "mmdebstrap",
                fix: "install it with `apt-get install mmdebstrap` (Debian/Ubuntu)",
            });
        }
        Err(source) => {
            return Err(Error::Io {
                action: "run",
                path: "mmdebstrap".into(),
                source,
            });
        }
        Ok(_) => {}
    }

    let inputs = tempfile::Builder::new()
        .prefix("node-image-inputs-")
        .tempdir_in(dir)
        .map_err(io_error("create a temporary directory in", dir))?;
    let setup = inputs.path().join("setup.sh");
    let init = inputs.path().join("init.sh");
    fs::write(&setup, SETUP_SCRIPT).map_err(io_error("write", &setup))?;
    fs::write(&init, INIT_SCRIPT).map_err(io_error("write", &init))?;

    // Whoever holds the lock is the only builder, so any partial tarball found here was
    // left by a build that died; clear those before they pile up.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .contains(".tar.partial-")
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let partial = dir.join(format!("{hash}.tar.partial-{}", std::process::id()));
    let log_path = dir.join(format!("{hash}.log"));
    let log = File::create(&log_path).map_err(io_error("create", &log_path))?;
    let log_err = log.try_clone().map_err(io_error("open", &log_path))?;

    tracing::info!(
        suite = SUITE,
        log = %log_path.display(),
        "building the node image root with mmdebstrap (about half a minute)"
    );
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(MMDEBSTRAP_OPTIONS)
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&partial);
    if let Some(mirror) = std::env::var_os(MIRROR_ENV) {
        cmd.arg(mirror);
    }
    let status = cmd
        .env("TESTENV_NODE_SETUP", &setup)
        .env("TESTENV_NODE_INIT", &init)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .map_err(io_error("run mmdebstrap for", &partial))?;
    if !status.success() {
        let _ = fs::remove_file(&partial);
        return Err(Error::Build {
            status: status.to_string(),
            tail: log_tail(&log_path, 25),
            log: log_path,
        });
    }

    // Make the tarball durable before it gets its final name, so a crash never leaves a
    // truncated tarball that later runs would trust.
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(io_error("sync", &partial))?;
    fs::rename(&partial, tarball).map_err(io_error("rename into place", tarball))?;
    Ok(())
}

fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_stable_and_names_the_recipe() {
        assert_eq!(image_tag(), image_tag());
        assert!(image_tag().starts_with("installer-testenv/node:"));
        assert_eq!(recipe_hash().len(), 12);
    }
}
